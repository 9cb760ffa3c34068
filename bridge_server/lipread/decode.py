"""Sentences from a lip reader's per-frame word posteriors, by segmental dynamic programming.

Every frame belongs to exactly one segment: silence, then one word per slot in order with
optional silence between words, then silence. A segment's score is the sum of its frames'
log posteriors for its word, so a sentence's score is a log probability of the whole clip.

    read_slots    the best sentence of a grammar (one word list per slot), its n-best and
                  each word's span; free candidate lines are grammars of one word per slot
    activity      when the lips speak: 1 - P(silence) per frame, smoothed
    spans_over    the stretches where it stays over a threshold
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import numpy as np

SILENCE = "sil"
MIN_WORD_FRAMES = 2  # at 25 fps a word is at least 80 ms on the lips
MAX_WORD_S = 1.2  # longer "words" are the decoder hiding silence in them
PER_SLOT = 4  # alternatives per slot combined into the n-best


@dataclass
class Read:
    """One sentence read from the lips: its words, their spans and how sure the reader is."""

    words: list[str]
    score: float  # log probability of the clip's frames under this reading (higher is better)
    spans: list[tuple[int, int]]  # (first frame, end frame) per word
    word_confidence: list[float] = field(default_factory=list)  # per word, 0..1 within its slot
    confidence: float = 0.0  # among the n-best, 0..1

    @property
    def text(self) -> str:
        return " ".join(self.words)


def read_slots(
    log_post: np.ndarray, vocab: list[str], slots: list[list[str]], fps: float, best: int = 5
) -> list[Read]:
    """The `best` readings of (T, V) word log posteriors under a grammar, best first."""
    missing = sorted({w for slot in slots for w in slot if w not in vocab})
    if missing:
        raise KeyError(", ".join(missing))
    lp = np.asarray(log_post, dtype=float)
    cum = np.vstack([np.zeros((1, lp.shape[1])), np.cumsum(lp, axis=0)])
    sil = cum[:, vocab.index(SILENCE)]
    ids = [[vocab.index(w) for w in slot] for slot in slots]
    spans = _segment(cum, sil, ids, max(MIN_WORD_FRAMES, 1), max(2, int(MAX_WORD_S * fps)))
    if spans is None:
        return []
    # With the spans fixed, each slot's words compete on the same frames: the n-best combines
    # each slot's best alternatives, the rest of the clip (silence) scoring the same for all.
    per_slot = [cum[b, slot] - cum[a, slot] for slot, (a, b) in zip(ids, spans)]
    rest = float(sil[-1]) - sum(float(sil[b] - sil[a]) for a, b in spans)
    return with_confidence(_n_best(per_slot, slots, spans, rest, best), len(lp))


def with_confidence(reads: list[Read], frames: int) -> list[Read]:
    """Each reading's share among `reads`, from its mean log probability per frame (per frame,
    so that a long clip does not make the best reading certain), best first."""
    reads = sorted(reads, key=lambda r: -r.score)
    if not reads:
        return reads
    totals = np.array([r.score for r in reads], dtype=float)
    share = np.exp((totals - totals[0]) / max(frames, 1))
    for r, c in zip(reads, share / share.sum()):
        r.confidence = float(c)
    return reads


def _segment(cum, sil, ids, shortest: int, longest: int):
    """The best spans of the slots' words: DP over (slot, end frame), silence before, between
    and after the words; None when the clip is too short for one frame per word."""
    t_end = len(cum) - 1
    if t_end < shortest * len(ids):
        return None
    ready = sil.copy()  # ready[t]: best score with frames < t used (leading silence so far)
    back = []
    for slot in ids:
        done = np.full(t_end + 1, -np.inf)  # done[b]: the slot's word ends at frame b
        start = np.zeros(t_end + 1, int)
        for length in range(shortest, min(longest, t_end) + 1):
            word = (cum[length:, slot] - cum[:-length, slot]).max(axis=1)  # word from a to a+L
            total = ready[:-length] + word
            better = total > done[length:]
            done[length:] = np.where(better, total, done[length:])
            start[length:] = np.where(better, np.arange(len(total)), start[length:])
        # optional silence after the word: ready[b] = max over e <= b of done[e] + sil(e..b)
        pause_from = _argmax_accumulate(done - sil)
        ready = np.maximum.accumulate(done - sil) + sil
        back.append((start, pause_from))
    end = t_end  # the silence after the last word is already in ready[t_end]
    if not np.isfinite(ready[end]):
        return None
    spans = []
    for start, pause_from in reversed(back):
        word_end = int(pause_from[end])
        end = int(start[word_end])
        spans.append((end, word_end))
    return spans[::-1]


def _argmax_accumulate(x: np.ndarray) -> np.ndarray:
    """Index of the running maximum of x up to each position."""
    idx = np.arange(len(x))
    best = np.where(x == np.maximum.accumulate(x), idx, 0)
    return np.maximum.accumulate(best)


def _n_best(per_slot, slots, spans, rest: float, best: int) -> list[Read]:
    tops = [np.argsort(-s)[:PER_SLOT] for s in per_slot]
    combos = []
    for pick in product(*tops):
        score = rest + sum(float(s[i]) for s, i in zip(per_slot, pick))
        combos.append((score, pick))
    combos.sort(key=lambda c: -c[0])
    reads = []
    for score, pick in combos[: max(best, 1)]:
        confidence = [_share(s, i, b - a) for s, i, (a, b) in zip(per_slot, pick, spans)]
        words = [slot[i] for slot, i in zip(slots, pick)]
        reads.append(Read(words, score, list(spans), confidence))
    return reads


def _share(scores: np.ndarray, i: int, frames: int) -> float:
    """Word i's share among its slot's words, from their mean log posterior over the span."""
    mean = scores / max(frames, 1)
    p = np.exp(mean - mean.max())
    return float(p[i] / p.sum())


def activity(log_post: np.ndarray, vocab: list[str], smooth_frames: int = 3) -> np.ndarray:
    """(T,) 0..1: how likely the lips are speaking in each frame (1 - P(silence)), averaged
    over `smooth_frames` so one uncertain frame does not split a word."""
    p = 1.0 - np.exp(np.asarray(log_post, dtype=float)[:, vocab.index(SILENCE)])
    if smooth_frames > 1 and len(p) >= smooth_frames:
        p = np.convolve(np.pad(p, smooth_frames // 2, mode="edge"),
                        np.ones(smooth_frames) / smooth_frames, mode="valid")  # fmt: skip
    return np.clip(p, 0.0, 1.0)


def spans_over(values: np.ndarray, times: np.ndarray, threshold: float = 0.5,
               shortest_s: float = 0.1) -> list[tuple[float, float]]:  # fmt: skip
    """(start, end) seconds of the runs of frames whose value is over `threshold`, runs
    shorter than `shortest_s` dropped; a run ends one frame step after its last frame."""
    over = np.asarray(values) > threshold
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
    edges = np.flatnonzero(np.diff(np.concatenate([[0], over.astype(int), [0]])))
    runs = [(float(times[a]), float(times[b - 1]) + step) for a, b in zip(edges[::2], edges[1::2])]
    return [(a, b) for a, b in runs if b - a >= shortest_s]
