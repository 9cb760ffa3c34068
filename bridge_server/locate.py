"""Where a script's words lie in a recording, roughly (to a frame of 40 ms, usually a few):
eSpeak reads the script, and dynamic time warping matches the sound of its reading to the
recording's, as aeneas does. It costs a few percent of transcribing the recording, and is
good enough to cut the recording at pauses into stretches for exact alignment.
"""

from __future__ import annotations

import numpy as np

from .timeline import Word

HOP_S = 0.04
BAND_S = 40.0  # how far the recording may drift from an even pace through the script
_MELS, _CEPS, _FMAX = 24, 13, 4000.0


def locate(samples: np.ndarray, rate: int, words: list[str]) -> list[Word]:
    """Approximate times of `words` (the script's spoken words) in `samples`."""
    from . import engines
    from .engines.base import TOKEN

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
    idx = np.arange(size)[None, :] + hop * np.arange(n)[:, None]
    frames = padded[idx] * np.hanning(size).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = np.log(power @ _mel_filters(size, rate).T + 1e-10)
    k = np.arange(_CEPS)[:, None]
    dct = np.cos(np.pi * k * (np.arange(_MELS) + 0.5) / _MELS)
    ceps = mel @ dct.T
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

    Steps (1,1), (1,2) and (2,1) keep the local pace within 2x either way and let a whole row be
    computed at once; a band around the even pace keeps cost and memory linear in length.
    """
    n, m = len(x), len(y)
    band = max(int(BAND_S / HOP_S), abs(n - m) + 2)
    # rows of accumulated cost D and of local cost c, column j stored at j + 2 (two inf pads)
    d1, d2, c1 = (np.full(m + 2, np.inf, np.float32) for _ in range(3))
    moves, los = [], []
    for i in range(n):
        centre = round(i * (m - 1) / max(1, n - 1))
        lo, hi = max(0, centre - band), min(m, centre + band + 1)
        c = np.full(m + 2, np.inf, np.float32)
        c[lo + 2 : hi + 2] = np.sqrt(((y[lo:hi] - x[i]) ** 2).sum(1))
        d = np.full(m + 2, np.inf, np.float32)
        if i == 0:
            d[2] = c[2]
            move = np.zeros(hi - lo, np.int8)
        else:
            options = np.stack(
                [
                    d1[lo + 1 : hi + 1],  # (1,1)
                    d1[lo:hi] + c[lo + 1 : hi + 1],  # (1,2): one more frame of y
                    d2[lo + 1 : hi + 1] + c1[lo + 2 : hi + 2],  # (2,1): one more frame of x
                    d1[lo + 2 : hi + 2],  # (1,0): x pauses longer than y does
                ]
            )
            move = np.argmin(options, 0).astype(np.int8)
            d[lo + 2 : hi + 2] = c[lo + 2 : hi + 2] + np.take_along_axis(options, move[None], 0)[0]
        moves.append(move)
        los.append(lo)
        d2, d1, c1 = d1, d, c
    return _backtrack(moves, los, n, m)


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
        elif move == 3:
            i -= 1
        else:
            path.append((i - 1, j))
            i, j = i - 2, j - 1
        if i < 0 or j < 0:
            break
        path.append((i, j))
    return path[::-1]
