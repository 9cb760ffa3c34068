"""Audio -> IPA phones without a transcript: allosaurus (universal phone recogniser, PyTorch).

allosaurus downloads its model from GitHub on first use into its own `pretrained/` folder.
Where that fails the error says how to install the model by hand. Its timestamps are the
CTC frames where a phone is emitted, so phone ends here are the next phone's start (capped):
approximate, as allosaurus itself warns. The recognise path cannot run on machines without
the model (the project's CI): it is kept small and follows allosaurus' documented output.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import socket
import sys
import tempfile
import threading
import wave
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ..core.errors import EngineUnavailable, InputError, require
from ..core.phonemes import normalize
from ..core.progress import Progress, check_cancel, no_progress
from ..core.timeline import Phoneme

SAMPLE_RATE = 16000
INSTALL = "pip install allosaurus torch  (or ./setup.sh)"
DOWNLOAD_TIMEOUT_S = 15.0  # per socket operation: a blocked network fails, a slow one still works
MAX_PHONE_S = 0.25  # an emitted phone holds until the next one, at most this long
_timeout_lock = threading.Lock()


def _pretrained() -> Path:
    """allosaurus' model folder: `pretrained/` beside its package (see allosaurus.model)."""
    spec = importlib.util.find_spec("allosaurus")
    if spec is None or spec.origin is None:
        raise EngineUnavailable(f"the Python package 'allosaurus' is missing; fix: {INSTALL}")
    return Path(spec.origin).parent / "pretrained"


def _installed(model: str) -> Path | None:
    """The model's folder if present; 'latest' is the newest one, as allosaurus resolves it."""
    folders = sorted((p for p in _pretrained().glob("*") if p.is_dir()), reverse=True)
    if model == "latest":
        return folders[0] if folders else None
    return next((p for p in folders if p.name == model), None)


def _missing(model: str, tried: bool) -> EngineUnavailable:
    what = "is not installed and could not be downloaded" if tried else "is not installed"
    return EngineUnavailable(
        f"the allosaurus model '{model}' {what}; fix: on a connected machine run "
        f"`python -m allosaurus.bin.download_model -m {model}`, or copy a downloaded model "
        f"folder (e.g. uni2005) into {_pretrained()}/"
    )


def check_allosaurus() -> str:
    for module in ("allosaurus", "torch"):
        if importlib.util.find_spec(module) is None:  # no import: torch takes seconds to load
            raise EngineUnavailable(f"the Python package '{module}' is missing; fix: {INSTALL}")
    found = _installed("latest")
    if found is None:
        raise _missing("latest", tried=False)

    return f"allosaurus {version('allosaurus')}, model {found.name}"


def create_allosaurus(model: str = "latest", lang: str = "ipa", **_) -> AllosaurusEngine:
    return AllosaurusEngine(model or "latest", lang or "ipa")


@contextlib.contextmanager
def _download_guard():
    """A short socket timeout (allosaurus' urlopen has none, so a blocked network would hang)
    and its prints moved to stderr (stdout may carry the CLI's result)."""
    with _timeout_lock:
        before = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                yield
        finally:
            socket.setdefaulttimeout(before)


@functools.lru_cache(maxsize=2)
def _load(model: str):
    app = require("allosaurus.app", INSTALL)
    from allosaurus.bin.download_model import download_model

    tried = _installed(model) is None
    try:
        with _download_guard():
            if tried and model != "latest":
                download_model(model)  # read_recognizer only ever fetches 'latest' itself
            return app.read_recognizer(model)
    except Exception as e:  # allosaurus hides the network error, then fails on the missing folder
        if _installed(model) is None:
            raise _missing(model, tried) from None
        raise EngineUnavailable(f"cannot load the allosaurus model '{model}': {e}") from None


class AllosaurusEngine:
    engine = "allosaurus"

    def __init__(self, model: str = "latest", lang: str = "ipa"):
        self._recognizer = _load(model)
        if lang != "ipa" and not self._recognizer.is_available(lang):
            raise InputError(
                f"allosaurus has no phone inventory for '{lang}'; give an ISO 639-3 code "
                "(e.g. eng, ces; list them: python -m allosaurus.bin.list_lang) or 'ipa'."
            )
        self.lang = lang

    def recognize(
        self,
        samples: np.ndarray,
        *,
        offset: float = 0.0,
        progress: Progress = no_progress,
        warnings: list[str] | None = None,
    ) -> list[Phoneme]:
        """IPA phones with times (seconds + offset); unknown symbols' warnings go to `warnings`."""
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim != 1:
            raise InputError(f"audio must be mono samples (1-D), got shape {audio.shape}.")
        check_cancel(progress, 0.0, "recognizing phones")
        with tempfile.TemporaryDirectory() as tmp:  # allosaurus reads only .wav files
            path = Path(tmp) / "audio.wav"
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(SAMPLE_RATE)
                w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
            lines = self._recognizer.recognize(str(path), self.lang, timestamp=True)
        check_cancel(progress, 1.0, "recognizing phones")
        return _phonemes(lines, len(audio) / SAMPLE_RATE, offset, warnings)


def _phonemes(
    lines: str, duration: float, offset: float, warnings: list[str] | None
) -> list[Phoneme]:
    """Parse allosaurus' 'start duration phone' lines into Phonemes in project IPA."""
    emitted = []
    for line in lines.splitlines():
        parts = line.split()
        if len(parts) == 3:
            emitted.append((float(parts[0]), parts[2]))
    out = []
    for i, (start, symbol) in enumerate(emitted):
        following = emitted[i + 1][0] if i + 1 < len(emitted) else duration
        end = max(min(following, start + MAX_PHONE_S, duration), start)
        ipa, warning = normalize(symbol)
        if warning and warnings is not None:
            warnings.append(warning)
        out.append(Phoneme(ipa, start + offset, end + offset))
    return out
