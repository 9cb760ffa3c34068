"""What engines return, and the small helpers they share."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Protocol

import numpy as np

from ..core.progress import Progress, no_progress
from ..core.timeline import Phoneme, Word

# What a voice reads as one word: its timed words are these tokens of the text.
TOKEN = re.compile(r"[\w'’-]+")


@dataclass
class Speech:
    """Synthesised audio with the engine's own word and phoneme times (phonemes already IPA)."""

    audio: np.ndarray  # float32 mono in -1..1
    sample_rate: int
    words: list[Word]
    phonemes: list[Phoneme]
    engine: str
    voice: str
    warnings: list[str] = field(default_factory=list)
    # The synthesiser's own phone start times (seconds), kept to verify the timeline against.
    events: list[float] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


# What the engines of each job (engines.SPEECH, ...) are: the pipeline calls only these.


class Synthesizer(Protocol):
    """Text -> speech with the engine's own phoneme times (eSpeak, Piper)."""

    def synthesize(self, text: str, progress: Progress = no_progress) -> Speech: ...


class Transcriber(Protocol):
    """Audio -> words with times (Whisper); returns engines.whisper.Transcript."""

    def transcribe(self, samples: np.ndarray, **options) -> object: ...


class PhoneRecognizer(Protocol):
    """Audio -> IPA phones with times, no transcript (phone loop, allosaurus)."""

    def recognize(
        self, samples: np.ndarray, *, offset: float = 0.0, progress: Progress = no_progress
    ) -> list[Phoneme]: ...


def span_words(words: list[Word], phonemes: list[Phoneme]) -> None:
    """Set each word's start and end to those of its first and last phoneme; a word the voice
    said no phone of ("a", run into the word before) gets no length where it falls."""
    seen: set[int] = set()
    for p in phonemes:
        if 0 <= p.word < len(words):
            w = words[p.word]
            if p.word not in seen:
                w.start = p.start
                seen.add(p.word)
            w.end = p.end
    end = 0.0
    for i, w in enumerate(words):
        if i not in seen:
            w.start = w.end = end
        end = w.end


def assign_words(
    text: str, spoken: list[str], phonemize: Callable[[str], str]
) -> tuple[list[Word], list[int]]:
    """The text's words, and the word each spoken phone (IPA) belongs to.

    Voices read text as a whole: eSpeak joins "for the" into one word, reads "42" as two.
    So each word is phonemized alone and that sequence is aligned to the spoken one.
    """
    tokens = TOKEN.findall(text)
    ref: list[str] = []
    ref_word: list[int] = []
    for i, token in enumerate(tokens):
        letters = [c for c in phonemize(token) if c.isalpha() and unicodedata.category(c) != "Lm"]
        ref += letters
        ref_word += [i] * len(letters)
    owners = _align([p[:1] for p in spoken], ref, ref_word)
    last = 0
    for k, w in enumerate(owners):  # an unmatched phone joins the word before; order is kept
        last = owners[k] = max(last, w)
    return [Word(t, 0.0, 0.0) for t in tokens], owners


def _align(spoken: list[str], ref: list[str], ref_word: list[int], window: int = 200) -> list[int]:
    """The word of each spoken letter (-1 if unmatched), matching in overlapping windows so a
    long text stays linear (one SequenceMatcher over thousands of phones is quadratic)."""
    owners = [-1] * len(spoken)
    i = j = 0
    while i < len(ref) and j < len(spoken):
        last = i + window >= len(ref)
        matcher = SequenceMatcher(
            None, ref[i : i + window], spoken[j : j + window * 5 // 4], autojunk=False
        )
        end = None
        for a, b, n in matcher.get_matching_blocks():
            for k in range(n):
                if last or a + k < window * 3 // 4:  # the window's tail is matched again next time
                    owners[j + b + k] = ref_word[i + a + k]
                    end = (a + k + 1, b + k + 1)
        if last:
            break
        di, dj = end or (window // 2, window // 2)
        i, j = i + di, j + dj
    return owners
