"""Where a script's words lie in a recording, roughly (to a frame of 40 ms, usually a few):
eSpeak reads the script, and dynamic time warping matches the sound of its reading to the
recording's, as aeneas does. It costs a few percent of transcribing the recording, and is
good enough to cut the recording at pauses into stretches for exact alignment.
"""

from __future__ import annotations

import numpy as np

from .. import engines
from ..core.timeline import Word
from ..engines.base import TOKEN

HOP_S = 0.04
BAND_S = 40.0  # how far the recording may drift from an even pace through the script
_MELS, _CEPS, _FMAX = 24, 13, 4000.0


def locate(samples: np.ndarray, rate: int, words: list[str]) -> list[Word]:
    """Approximate times of `words` (the script's spoken words) in `samples`."""
    speech = engines.create("espeak").synthesize(" ".join(words))
    path = warp(features(samples, rate), features(speech.audio, speech.sample_rate))
    # the real frame of each synthetic frame: the first one the path pairs with it
    to_real = np.zeros(path[-1][1] + 1, int)
    for i, j in reversed(path):
        to_real[j] = i

    def at(t: float) -> float:
        return float(to_real[min(int(t / HOP_S), len(to_real) - 1)]) * HOP_S

    # eSpeak's timed words are tokens ("librivox.org" is two): a word spans its tokens
    out, k, end = [], 0, 0.0
    for w in words:
        n = len(TOKEN.findall(w))
        spoken = speech.words[k : k + n]
        if spoken:  # a word eSpeak gave no phone ("a" in "a cat") has no time: keep order
            start, end = max(end, at(spoken[0].start)), max(end, at(spoken[-1].end))
        else:
            start = end
        out.append(Word(w, start, end))
        k += n
    return out


def features(samples: np.ndarray, rate: int) -> np.ndarray:
    """Per 40 ms: log energy and 12 cepstral coefficients below 4 kHz, each scaled to zero mean
    and unit variance over the file, so a voice and a synthesiser become comparable."""
    hop, size = round(HOP_S * rate), 1 << int(np.ceil(np.log2(HOP_S * rate)))
    n = max(1, (len(samples) - size) // hop + 1)
    padded = np.pad(np.asarray(samples, np.float32), (0, max(0, size - len(samples))))
    window, filters = np.hanning(size).astype(np.float32), _mel_filters(size, rate).T
    dct = np.cos(np.pi * np.arange(_CEPS)[:, None] * (np.arange(_MELS) + 0.5) / _MELS).T
    ceps = np.empty((n, _CEPS))
    for first in range(0, n, _BLOCK * 8):  # a block at a time: all frames at once took 250 MB
        rows = np.arange(first, min(n, first + _BLOCK * 8))
        frames = padded[np.arange(size)[None, :] + hop * rows[:, None]] * window
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        ceps[rows] = np.log(power @ filters + 1e-10) @ dct
    return (ceps - ceps.mean(0)) / (ceps.std(0) + 1e-6)


def _mel_filters(size: int, rate: int) -> np.ndarray:
    def mel(f):
        return 2595 * np.log10(1 + f / 700)

    edges = 700 * (10 ** (np.linspace(mel(80.0), mel(_FMAX), _MELS + 2) / 2595) - 1)
    freqs = np.fft.rfftfreq(size, 1 / rate)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))


def warp(x: np.ndarray, y: np.ndarray) -> list[tuple[int, int]]:
    """The cheapest monotonic pairing of the rows of x with those of y, end to end.

    Steps (1,1), (1,2) (y twice as fast) and (1,0) (x pauses longer than y) let a whole row be
    computed at once; a band around the even pace keeps cost and memory linear in length.
    """
    n, m = len(x), len(y)
    band = max(int(BAND_S / HOP_S), abs(n - m) + 2)
    centres = np.round(np.arange(n) * (m - 1) / max(1, n - 1)).astype(int)
    los, his = np.maximum(0, centres - band), np.minimum(m, centres + band + 1)
    # accumulated cost of the previous row, column j stored at j + 2 (two inf pads)
    prev = np.full(m + 2, np.inf, np.float32)
    prev[2] = 0.0
    moves = []
    for first in range(0, n, _BLOCK):
        rows = range(first, min(n, first + _BLOCK))
        costs, a = _distances(x[first : rows.stop], y, los[first], his[rows.stop - 1])
        for i in rows:
            lo, hi = los[i], his[i]
            c = np.full(hi - lo + 1, np.inf, np.float32)  # c[0]: column lo - 1
            c[max(0, a - lo + 1) :] = costs[i - first, max(0, lo - 1 - a) : hi - a]
            options = np.stack([prev[lo + 1 : hi + 1], prev[lo:hi] + c[:-1], prev[lo + 2 : hi + 2]])
            move = options.argmin(0).astype(np.int8)
            row = np.full(m + 2, np.inf, np.float32)
            row[lo + 2 : hi + 2] = c[1:] + options.min(0)
            if i == 0:  # the path starts at (0, 0)
                row[3:], move[:] = np.inf, 0
            moves.append(move)
            prev = row
    return _backtrack(moves, los, n, m)


_BLOCK = 256  # rows of x whose distances to y are computed in one matrix product


def _distances(x: np.ndarray, y: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, int]:
    """Euclidean distances of the rows of x to y[lo-1:hi], and the first column's index."""
    a = max(0, lo - 1)
    part = y[a:hi]
    squared = (x**2).sum(1)[:, None] + (part**2).sum(1)[None, :] - 2 * x @ part.T
    return np.sqrt(np.maximum(squared, 0)).astype(np.float32), a


def _backtrack(moves, los, n: int, m: int) -> list[tuple[int, int]]:
    i, j = n - 1, m - 1
    path = [(i, j)]
    while i > 0:
        move = moves[i][j - los[i]]
        if move == 0:
            i, j = i - 1, j - 1
        elif move == 1:
            path.append((i, j - 1))
            i, j = i - 1, j - 2
        else:
            i -= 1
        if i < 0 or j < 0:
            break
        path.append((i, j))
    return path[::-1]
