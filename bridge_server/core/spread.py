"""Phones spread over known word times by typical durations: the fallback when alignment fails
or the language has no acoustic model, so a stretch still moves the mouth plausibly."""

from __future__ import annotations

from .phonemes import VOWELS
from .timeline import Phoneme, Word

# Relative lengths in connected speech: vowels are long, stops and flaps short.
_WEIGHT = {"vowel": 2.0, "stop": 0.8, "other": 1.0}
_STOPS = set("pbtdkɡʔɾ")


def weight(ipa: str) -> float:
    if ipa[:1] in VOWELS:
        return _WEIGHT["vowel"]
    return _WEIGHT["stop"] if ipa[:1] in _STOPS else _WEIGHT["other"]


def spread(
    words: list[Word], pronunciations: list[list[str]], first_word: int = 0
) -> list[Phoneme]:
    """Each word's phonemes share its time in proportion to their typical lengths."""
    out = []
    for i, (w, phones) in enumerate(zip(words, pronunciations)):
        total = sum(weight(p) for p in phones) or 1.0
        t = w.start
        for p in phones:
            d = (w.end - w.start) * weight(p) / total
            out.append(Phoneme(p, t, t + d, first_word + i))
            t += d
    return out
