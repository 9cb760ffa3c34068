"""Audio (and its script, when given) -> words and timed phonemes, lined up with what is heard.

script, short audio   ─► pocketsphinx forced alignment of the whole file
no script / long file ─► Whisper words ─► stretches of ≤ 30 s ─► alignment per stretch
alignment fails       ─► phones spread over the stretch's word times (a warning says so)
not English           ─► G2P per word, spread over Whisper's word times (a warning says so)
--engine allosaurus / phoneloop ─► phones straight from the audio, no words
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher

import numpy as np

from . import engines
from .audio import Audio
from .engines.base import Progress, no_progress
from .errors import InputError
from .g2p import pronounce
from .spread import spread
from .timeline import Phoneme, Word

WHOLE_FILE_MAX_S = 120.0  # alignment memory grows with length squared (120 s: 0.6 GB): longer files
# go by Whisper stretches of <= 30 s, which also align faster (356 s in one pass: 3.4 GB)
STRETCH_S = 30.0
WHISPER_PIECE_S = 600.0
RATE = 16000


@dataclass
class Recognized:
    words: list[Word]
    phonemes: list[Phoneme]
    language: str
    transcript: str  # "script", "whisper" or "none"
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Stretch:
    start: float
    end: float
    words: list[Word]  # Whisper's words (times known) or script words placed in this stretch


def part(progress: Progress, lo: float, hi: float) -> Progress:
    """A progress callback for one share (lo..hi) of the whole job."""
    return lambda done, stage: progress(lo + (hi - lo) * done, stage)


def recognize(
    audio: Audio,
    *,
    text: str | None = None,
    engine: str = "auto",
    model: str = "tiny.en",
    lang: str = "",
    progress: Progress = no_progress,
) -> Recognized:
    """Words and phonemes of `audio`; the strategy follows the inputs (see the module doc)."""
    if engine in ("allosaurus", "phoneloop"):
        return _phones_only(audio, engine, progress)
    if engine not in ("auto", "pocketsphinx", "whisper"):
        raise InputError(
            f"unknown engine '{engine}'; choose auto, whisper, allosaurus or phoneloop."
        )
    english = not lang or lang.lower().startswith("en")
    if text is not None and english and audio.duration <= WHOLE_FILE_MAX_S:
        result = _align_script(audio, text, progress)
        if result:
            return result
    # An English-only model (tiny.en) needs no detection: tell it, so it does not warn.
    hint = lang or ("en" if model.endswith(".en") else None)
    language, heard, warnings = _transcribe(audio, model, hint, part(progress, 0.0, 0.5))
    language = lang or language
    if text is not None:
        heard = _place_script(text, heard, language, warnings)
    if not heard:
        return Recognized(
            [], [], language, "whisper", warnings + [f"no speech found in {audio.source}"]
        )
    stretches = _stretches(heard, audio.duration)
    english = language.lower().startswith("en")
    if not english:
        warnings.append(
            f"language '{language}': phonemes come from pronunciation rules timed by Whisper's "
            f"word times, so lip sync is less accurate than for English"
        )
    words, phonemes = [], []
    for k, s in enumerate(stretches):
        align = english and engine != "whisper"
        w, p = _stretch(audio, s, language, align, len(words), warnings)
        words += w
        phonemes += p
        progress(0.5 + 0.5 * (k + 1) / len(stretches), "aligning")
    return Recognized(
        words, phonemes, language, "script" if text is not None else "whisper", warnings
    )


def _transcribe(
    audio: Audio, model: str, hint: str | None, progress: Progress
) -> tuple[str, list[Word], list[str]]:
    """Whisper's words, in pieces of at most WHISPER_PIECE_S cut at quiet moments: Whisper
    computes features for all it is given at once (an hour in one piece peaked at 3.9 GB)."""
    whisper = engines.create("whisper", model=model)
    cuts = _quiet_cuts(audio.samples, WHISPER_PIECE_S)
    language, words, warnings = hint or "en", [], []
    for a, b in zip(cuts, cuts[1:]):
        t = whisper.transcribe(
            audio.samples[a:b], language=hint, progress=part(progress, a / cuts[-1], b / cuts[-1])
        )
        language = t.language
        warnings += [w for w in t.warnings if w not in warnings]
        offset = a / RATE
        words += [
            Word(w.text, w.start + offset, w.end + offset) for s in t.segments for w in s.words
        ]
    return language, words, warnings


def _quiet_cuts(samples, piece_s: float) -> list[int]:
    """Sample indices 0 .. n cutting the audio into pieces of at most piece_s, each cut at the
    quietest 100 ms within the last 10 s of a piece, so no word is split."""
    n, piece, search = len(samples), int(piece_s * RATE), 10 * RATE
    cuts = [0]
    while n - cuts[-1] > piece:
        lo = cuts[-1] + piece - search
        window = samples[lo : lo + search]
        frames = window[: len(window) // 1600 * 1600].reshape(-1, 1600)
        quietest = int(np.argmin((frames.astype(np.float32) ** 2).mean(axis=1)))
        cuts.append(lo + quietest * 1600 + 800)
    return cuts + [n]


def _align_script(audio: Audio, text: str, progress: Progress) -> Recognized | None:
    """Force-align the whole script; None when it does not fit the audio (the caller falls back)."""
    from .engines import pocketsphinx

    spoken = [p.word for p in pronounce(text)]
    if not spoken:
        raise InputError(
            "the script has no words; give the words spoken in the audio, or no script."
        )
    a = pocketsphinx.align(audio.samples, spoken, progress=progress)
    if a.failed:
        return None
    return Recognized(a.words, a.phonemes, "en", "script", list(a.warnings))


def _place_script(text: str, heard: list[Word], language: str, warnings: list[str]) -> list[Word]:
    """The script's words, timed by matching them to Whisper's words (long or unaligned files)."""
    script = [p.word for p in pronounce(text, language if language != "en" else "en-us")]
    if not heard:
        return []
    key = [w.text.strip(".,!?;:\"'").lower() for w in heard]
    placed: list[Word | None] = [None] * len(script)
    matcher = SequenceMatcher(None, [s.lower() for s in script], key, autojunk=False)
    for a, b, n in matcher.get_matching_blocks():
        for k in range(n):
            placed[a + k] = Word(script[a + k], heard[b + k].start, heard[b + k].end)
    matched = sum(p is not None for p in placed)
    if matched < 0.5 * len(script):
        warnings.append(
            f"the script matches only {matched} of {len(script)} words Whisper heard; "
            "check that the script belongs to this audio"
        )
    # Unmatched script words share the time between their matched neighbours.
    out, k = [], 0
    while k < len(placed):
        if placed[k] is not None:
            out.append(placed[k])
            k += 1
            continue
        j = k
        while j < len(placed) and placed[j] is None:
            j += 1
        lo = out[-1].end if out else heard[0].start
        hi = placed[j].start if j < len(placed) else heard[-1].end
        step = max(hi - lo, 0.0) / (j - k)
        out += [Word(script[i], lo + (i - k) * step, lo + (i - k + 1) * step) for i in range(k, j)]
        k = j
    return out


def _stretches(words: list[Word], duration: float) -> list[_Stretch]:
    """Consecutive words grouped into stretches of at most STRETCH_S, cut at the longest pauses."""
    out: list[_Stretch] = []
    current: list[Word] = []
    for w in words:
        if current and w.end - current[0].start > STRETCH_S:
            out.append(_close(current, duration))
            current = []
        current.append(w)
    if current:
        out.append(_close(current, duration))
    return out


def _close(words: list[Word], duration: float) -> _Stretch:
    return _Stretch(max(0.0, words[0].start - 0.15), min(duration, words[-1].end + 0.15), words)


def _stretch(
    audio: Audio, s: _Stretch, language: str, align: bool, first: int, warnings: list[str]
) -> tuple[list[Word], list[Phoneme]]:
    """One stretch: forced alignment where possible, else phones spread over the word times."""
    prons = pronounce(" ".join(w.text for w in s.words), language if not align else "en-us")
    if align and prons:
        from .engines import pocketsphinx

        samples = audio.samples[int(s.start * RATE) : int(s.end * RATE)]
        a = pocketsphinx.align(samples, [p.word for p in prons], offset=s.start)
        if not a.failed:
            for p in a.phonemes:
                p.word += first
            return a.words, a.phonemes
        warnings.append(
            f"alignment failed for {s.start:.1f}-{s.end:.1f} s; phones there are spread over "
            "Whisper's word times"
        )
    words = [Word(w.text, w.start, w.end) for w in s.words]
    by_word = _pronunciations(words, language)
    return words, spread(words, by_word, first)


def _pronunciations(words: list[Word], language: str) -> list[list[str]]:
    lang = "en-us" if language.lower().startswith("en") else language
    out = []
    for w in words:
        p = pronounce(w.text, lang)
        out.append([ph for x in p for ph in x.phonemes])
    return out


def _phones_only(audio: Audio, engine: str, progress: Progress) -> Recognized:
    """Transcript-free: phones straight from the audio, in any language."""
    if engine == "phoneloop":
        from .engines import pocketsphinx

        phones = pocketsphinx.recognize_phones(audio.samples, progress=progress)
    else:
        phones = engines.create("allosaurus").recognize(audio.samples, progress=progress)
    warnings = [] if phones else [f"no speech sounds found in {audio.source}"]
    return Recognized([], phones, "", "none", warnings)
