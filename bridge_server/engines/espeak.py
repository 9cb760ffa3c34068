"""eSpeak NG through pyttsx3's libespeak-ng binding: speech plus the exact sample of every phoneme.

libespeak-ng reports PHONEME events (IPA names, with the sample where each starts) and WORD
events (with the character span) from its synth callback; we keep both instead of estimating.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
from dataclasses import dataclass

import numpy as np

from ..core.errors import Cancelled, EngineUnavailable, InputError, require
from ..core.phonemes import normalize, split_ipa
from ..core.progress import Progress, check_cancel, no_progress
from ..core.scripts import Voice
from ..core.timeline import Phoneme
from .base import Speech, assign_words, span_words

log = logging.getLogger(__name__)

INSTALL = "sudo apt-get install espeak-ng libespeak-ng1 && pip install pyttsx3  (or ./setup.sh)"
_PHONEME_EVENTS, _IPA_NAMES = 0x0001, 0x0002
_EV_END_LIST, _EV_WORD, _EV_PHONEME = 0, 1, 7
_lock = threading.Lock()  # libespeak-ng keeps global state: one synthesis at a time


def _lib():
    return require("pyttsx3.drivers._espeak", INSTALL)


def check_espeak() -> str:
    e = _lib()
    return f"libespeak-ng {e.Info(None).decode(errors='replace').split()[0]} via pyttsx3"


NORMAL_WPM = 175  # eSpeak NG's own default speaking rate (espeakRATE_NORMAL)


def create_espeak(voice: str = "", rate_wpm: int | None = None, lang: str = "", **_) -> EspeakVoice:
    """eSpeak voices are languages: --voice or --lang picks one (default en-us)."""
    return EspeakVoice(find_voice(voice or lang or "en-us").name, rate_wpm)


def phonemize(words: list[str], voice: str) -> list[str]:
    """IPA of each word said alone, in any language eSpeak speaks."""
    e = _lib()
    name = find_voice(voice).name  # before the lock: listing the voices takes it
    with _lock:
        _init(e)
        _set_voice(e, name)
        return [_ipa_of(e, w) for w in words]


def _set_voice(e, voice: str) -> None:
    if e.SetVoiceByName(voice.encode()) != 0:
        raise InputError(f"eSpeak has no voice '{voice}'; run 'lipsync voices' to list them.")


@functools.cache
def voices() -> list[Voice]:
    """The voices libespeak-ng offers, by the name --voice takes ('en-us', 'de', 'ja')."""
    e = _lib()
    with _lock:
        _init(e)
        found = [_voice(v, e.VOICE.languages.offset) for v in e.ListVoices(None)]
    log.debug("eSpeak NG has %d voices", len(found))
    return sorted(found, key=lambda v: v.name)


def _voice(v, languages_at: int) -> Voice:
    """One espeak_VOICE: its file name (what SetVoiceByName takes) and its languages."""
    identifier = v.identifier.decode()
    title = v.name.decode(errors="replace").strip()
    languages = _languages(ctypes.c_void_p.from_buffer(v, languages_at).value)
    name = identifier.rsplit("/", 1)[-1].lower()
    aliases = (identifier.lower(), title.lower(), *languages)
    return Voice("espeak", name, languages[0] if languages else name, title, aliases)


def _languages(address: int | None) -> list[str]:
    """espeak_VOICE.languages: (priority byte, code, NUL) repeated, ended by a NUL byte
    (ctypes' c_char_p would stop at the first code)."""
    out: list[str] = []
    while address and ctypes.c_ubyte.from_address(address).value:
        code = ctypes.string_at(address + 1)
        out.append(code.decode(errors="replace").lower())
        address += len(code) + 2
    return out


def find_voice(name: str) -> Voice:
    """The voice called `name`: its file name, identifier ('gmw/en-US'), title ('Klingon') or a
    language it speaks ('fr-fr', 'zh'); InputError naming `lipsync voices` when none."""
    wanted = name.strip().lower().replace("_", "-")
    known = voices()
    for v in known:
        if wanted == v.name or wanted in v.aliases[:2]:
            return v
    for v in known:
        if wanted == v.language or wanted in v.aliases:
            return v
    raise InputError(f"eSpeak has no voice '{name}'; run 'lipsync voices' to list them.")


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
    """A PHONEME event: where a phone starts, and its IPA name ("" or "_..." for a pause)."""

    sample: int
    name: str


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
            _set_voice(e, self.voice)
            # the rate is libespeak's global state: set it every time, or one voice's --rate
            # would slow every later voice in the process (the bridge serves many)
            e.SetParameter(e.RATE, self.rate_wpm or NORMAL_WPM, 0)
            audio, events = _run(e, text, progress)
            phonemes, warnings = _phonemes(events, len(audio), sr)
            words, owners = assign_words(text, [p.ipa for p in phonemes], lambda w: _ipa_of(e, w))
        for p, w in zip(phonemes, owners):
            p.word = w
        span_words(words, phonemes)
        named = [ev.sample / sr for ev in events if ev.name.strip("_ ")]
        return Speech(audio, sr, words, phonemes, "espeak", self.voice, warnings, named)


def _run(e, text: str, progress: Progress) -> tuple[np.ndarray, list[_Event]]:
    """Synthesise, collecting audio and PHONEME events; WORD events only report progress."""
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
            i += 1
            if x.type == _EV_PHONEME:
                raw = ctypes.string_at(ctypes.addressof(x) + id_offset, 8).split(b"\0")[0]
                events.append(_Event(x.sample, raw.decode(errors="replace")))
            elif x.type == _EV_WORD:
                try:
                    done = min(0.99, x.text_position / max(1, len(text)))
                    check_cancel(progress, done, "speaking")
                except BaseException as err:  # stop the C loop; re-raised below
                    failure.append(err)
                    return 1
        return 0

    e.SetSynthCallback(callback)
    e.Synth(text.encode("utf-8"), flags=e.CHARS_UTF8)
    if failure:
        raise failure[0] if isinstance(failure[0], Cancelled) else Cancelled(str(failure[0]))
    audio = np.frombuffer(b"".join(chunks), dtype=np.int16).astype(np.float32) / 32768.0
    return audio, events


def _phonemes(events: list[_Event], n_samples: int, sr: int) -> tuple[list[Phoneme], list[str]]:
    """Each phone runs from its event to the next; a compound name ("ɑːɹ") shares its time."""
    out: list[Phoneme] = []
    warnings: list[str] = []
    ends = [ev.sample for ev in events[1:]] + [n_samples]
    for ev, end in zip(events, ends):
        if not ev.name.strip("_ "):
            continue  # a pause: the gap stays silent
        parts = split_ipa(ev.name) or [ev.name]
        step = (end - ev.sample) / len(parts)
        for k, part in enumerate(parts):
            ipa, warning = normalize(part)
            if warning:
                warnings.append(warning)
            if ipa != "_":
                start = ev.sample + k * step
                out.append(Phoneme(ipa, start / sr, (start + step) / sr))
    return out, warnings


@functools.cache
def _text_to_phonemes(dll):
    """espeak_TextToPhonemes with its C signature (pyttsx3's binding lacks it); set up once."""
    f = dll.espeak_TextToPhonemes
    f.restype = ctypes.c_char_p
    f.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
    return f


def _ipa_of(e, word: str) -> str:
    """The IPA eSpeak gives a word said alone (espeak_TextToPhonemes)."""
    f = _text_to_phonemes(e.dll)
    buf = ctypes.create_string_buffer(word.encode("utf-8"))
    ptr = ctypes.c_void_p(ctypes.addressof(buf))
    out = []
    while ptr.value:
        out.append((f(ctypes.byref(ptr), e.CHARS_UTF8, _IPA_NAMES) or b"").decode(errors="replace"))
    return " ".join(out)
