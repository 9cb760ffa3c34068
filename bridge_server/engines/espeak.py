"""eSpeak NG through pyttsx3's libespeak-ng binding: speech plus the exact sample of every phoneme.

libespeak-ng reports PHONEME events (IPA names, with the sample where each starts) and WORD
events (with the character span) from its synth callback; we keep both instead of estimating.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import Cancelled, EngineUnavailable, InputError
from ..phonemes import normalize, split_ipa
from ..timeline import Phoneme, Word
from .base import Progress, Speech, check_cancel, no_progress, require, span_words

INSTALL = "sudo apt-get install espeak-ng libespeak-ng1 && pip install pyttsx3  (or ./setup.sh)"
_PHONEME_EVENTS, _IPA_NAMES = 0x0001, 0x0002
_EV_END_LIST, _EV_WORD, _EV_PHONEME = 0, 1, 7
_lock = threading.Lock()  # libespeak-ng keeps global state: one synthesis at a time


def _lib():
    return require("pyttsx3.drivers._espeak", INSTALL)


def check_espeak() -> str:
    e = _lib()
    return f"libespeak-ng {e.Info(None).decode(errors='replace').split()[0]} via pyttsx3"


def create_espeak(voice: str = "en-us", rate_wpm: int | None = None, **_) -> EspeakVoice:
    return EspeakVoice(voice or "en-us", rate_wpm)


def voices() -> list[str]:
    """Voice names libespeak-ng offers (languages like 'en-us', 'de', 'fr')."""
    e = _lib()
    with _lock:
        _init(e)
        return sorted({v.contents.name.decode() for v in e.ListVoices(None) if v})


_sample_rate = 0


def _init(e) -> int:
    global _sample_rate
    if not _sample_rate:
        _sample_rate = e.Initialize(
            e.AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _PHONEME_EVENTS | _IPA_NAMES
        )
        if _sample_rate <= 0:
            raise EngineUnavailable(f"libespeak-ng failed to initialise; fix: {INSTALL}")
    return _sample_rate


@dataclass
class _Event:
    kind: int
    sample: int
    text_pos: int = 0  # words: 0-based character offset
    length: int = 0
    name: str = ""  # phonemes: IPA name, "" for a pause


class EspeakVoice:
    engine = "espeak"

    def __init__(self, voice: str, rate_wpm: int | None):
        self.voice, self.rate_wpm = voice, rate_wpm
        if rate_wpm is not None and not 80 <= rate_wpm <= 450:
            raise InputError(
                f"rate {rate_wpm} wpm is outside eSpeak's 80..450; pick a rate in that range."
            )

    def synthesize(self, text: str, progress: Progress = no_progress) -> Speech:
        """Speak `text`; phoneme starts are the synthesiser's own sample positions."""
        e = _lib()
        with _lock:
            sr = _init(e)
            if e.SetVoiceByName(self.voice.encode()) != 0:
                raise InputError(
                    f"eSpeak has no voice '{self.voice}'; run 'lipsync voices' to list them."
                )
            if self.rate_wpm:
                e.SetParameter(e.RATE, self.rate_wpm, 0)
            audio, events = _run(e, text, progress)
        return _speech(text, audio, events, sr, self.voice)


def _run(e, text: str, progress: Progress) -> tuple[np.ndarray, list[_Event]]:
    chunks: list[bytes] = []
    events: list[_Event] = []
    failure: list[BaseException] = []
    id_offset = e.EVENT.id.offset

    def callback(wav, n, ev) -> int:
        if wav and n > 0:
            chunks.append(ctypes.string_at(wav, n * 2))
        i = 0
        while ev[i].type != _EV_END_LIST:
            x = ev[i]
            if x.type == _EV_WORD:
                events.append(_Event(_EV_WORD, x.sample, x.text_position - 1, x.length))
            elif x.type == _EV_PHONEME:
                raw = ctypes.string_at(ctypes.addressof(x) + id_offset, 8).split(b"\0")[0]
                events.append(_Event(_EV_PHONEME, x.sample, name=raw.decode(errors="replace")))
            i += 1
            if x.type == _EV_WORD:
                try:
                    check_cancel(
                        progress, min(0.99, x.text_position / max(1, len(text))), "speaking"
                    )
                except BaseException as err:  # stop the C loop, re-raise below
                    failure.append(err)
                    return 1
        return 0

    e.SetSynthCallback(callback)
    e.Synth(text.encode("utf-8"), flags=e.CHARS_UTF8)
    if failure:
        raise failure[0] if isinstance(failure[0], Cancelled) else Cancelled(str(failure[0]))
    audio = np.frombuffer(b"".join(chunks), dtype=np.int16).astype(np.float32) / 32768.0
    return audio, events


def _speech(text: str, audio: np.ndarray, events: list[_Event], sr: int, voice: str) -> Speech:
    words: list[Word] = []
    spans: list[tuple[int, int]] = []
    phonemes: list[Phoneme] = []
    warnings: list[str] = []
    pending: tuple[_Event, int] | None = None  # a phoneme waits for the next one to know its end
    for ev in events:
        if ev.kind == _EV_WORD:
            start, end = ev.text_pos, ev.text_pos + ev.length
            if spans and start < spans[-1][1]:  # "42" arrives as two WORD events over one span
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
                words.append(Word("", ev.sample / sr, ev.sample / sr))
            continue
        if pending:
            _add(phonemes, warnings, pending[0], ev.sample, pending[1], sr)
        silent = not ev.name.strip() or ev.name.startswith("_")
        pending = None if silent else (ev, len(words) - 1)
    if pending:
        _add(phonemes, warnings, pending[0], len(audio), pending[1], sr)
    for i, (s, e) in enumerate(spans):
        words[i].text = text[s:e]
    span_words(words, phonemes)
    named = [ev.sample / sr for ev in events if ev.kind == _EV_PHONEME and ev.name.strip("_ ")]
    return Speech(audio, sr, words, phonemes, "espeak", voice, warnings, named)


def _add(out: list[Phoneme], warnings: list[str], ev: _Event, end: int, word: int, sr: int) -> None:
    """Append one PHONEME event's phones; a compound name like "ɑːɹ" shares its time equally."""
    parts = split_ipa(ev.name) or [ev.name]
    step = (end - ev.sample) / len(parts)
    for k, part in enumerate(parts):
        ipa, warning = normalize(part)
        if warning:
            warnings.append(warning)
        if ipa != "_":
            out.append(
                Phoneme(ipa, (ev.sample + k * step) / sr, (ev.sample + (k + 1) * step) / sr, word)
            )
