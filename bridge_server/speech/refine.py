"""Boundary refinement: move each aligned phone boundary to where the sound puts it.

Every bake runs it after recognition (`recognize(refine=True)`; `bake --no-refine` skips it).
The aligner's boundaries come on a 10 ms grid from a model of phones, not of their
edges. A small trained model (models/train_boundaries.py makes it) looks at 40-band
log-mel in 5 ms hops for 160 ms each side of a boundary, told the broad classes of the phones
on either side, and scores the candidate positions within +-50 ms; the boundary moves to the
expected position when the model is sure enough. Where the forced aligner placed the phones,
the scores are weighed by a prior around its boundary (ALIGNED_PRIOR_S). A phone next to a
pause or the recording's edge then starts and ends where its sound does (SILENCE_DB): the
aligner lets a phone run on into silence, far beyond the model's reach (on 8 TIMIT utterances
the last phone ran 30-120 ms on in six, and three first stops started 40-90 ms before their
burst). Phones keep their order and at least MIN_PHONE_S (the aligner's own shortest phone; one
already shorter keeps its length); words follow their first and last phones.

    boundaries / windows / class_inputs   the model's inputs (ONE definition: training, run time)
    BoundaryModel                         load(path) / shipped() -> scores (onnxruntime)
    refine                                phonemes (and words) of a sound -> refined copies
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.phonemes import VOWELS, is_silence
from ..core.timeline import Phoneme, Word
from ..engines import onnx
from ..media.audio import Audio, hop_rms
from ..media.mel import MELS, log_mel

log = logging.getLogger(__name__)

FEATURES_VERSION = "logmel40-5ms-65-classes7-1"  # change when the inputs change; in models
HOP_S = 0.005
HALF = 32  # hops each side of the boundary the model sees (160 ms)
REACH = 10  # candidate positions each side, one hop apart (+-50 ms)
MIN_PHONE_S = 0.03  # at 0.01 GRID s1's "at" (60 ms by GRID's alignment) shrank to 20 ms
# How far the forced aligner's boundary is likely off in real speech (a normal prior of this
# width weighs the model's scores). The model learned the aligner's errors on synthesisers,
# which are wider; alone, its moves on real speech were a coin flip. Chosen on GRID s1's word
# edges (within 20 ms, 200 clips: none 57.6, 30 ms 58.8, 20 ms 60.3, 15 ms 61.5, 10 ms 61.6%).
ALIGNED_PRIOR_S = 0.015
# A hop this far below the speech's loud level (its 95th percentile) is silence: where a
# waveform looks flat to a labeller. In noise louder than that, nothing is trimmed.
SILENCE_DB = 35.0
CLASSES = ("silence", "stop", "affricate", "fricative", "nasal", "approximant", "vowel")
STOP_CLASSES = (1, 2)  # phones that start with a closure: silence of their own
_CLASS_OF = {**dict.fromkeys("pbtdkgʔɾ", 1), "tʃ": 2, "dʒ": 2, **dict.fromkeys("fvθðszʃʒhxç", 3),
             **dict.fromkeys("mnŋɲ", 4), **dict.fromkeys("lɹrjwɫɻʍɦ", 5)}  # fmt: skip
SHIPPED = Path(__file__).resolve().parents[2] / "models" / "boundaries.onnx"
TRAIN_COMMAND = "python models/train_boundaries.py --out models/boundaries.onnx"


def phone_class(ipa: str) -> int:
    if is_silence(ipa):
        return 0
    if ipa in _CLASS_OF:
        return _CLASS_OF[ipa]
    return 6 if ipa[:1] in VOWELS else _CLASS_OF.get(ipa[:1], 3)


@dataclass(frozen=True)
class Boundary:
    """A phone edge: `after` is the phone that ends there (or -1), `before` the one that starts
    there (or -1); the sides' classes are the model's context."""

    time: float
    after: int
    before: int
    left: int
    right: int


def boundaries(phonemes: list[Phoneme]) -> list[Boundary]:
    """Every phone start, and every phone end that is not the next phone's start (a pause)."""
    out = []
    for i, p in enumerate(phonemes):
        prev = phonemes[i - 1] if i else None
        joined = prev is not None and abs(prev.end - p.start) < 1e-6
        left = phone_class(prev.ipa) if joined else 0
        out.append(Boundary(p.start, i - 1 if joined else -1, i, left, phone_class(p.ipa)))
        nxt = phonemes[i + 1] if i + 1 < len(phonemes) else None
        if nxt is None or abs(nxt.start - p.end) >= 1e-6:
            out.append(Boundary(p.end, i, -1, phone_class(p.ipa), 0))
    return out


def features(audio: Audio) -> np.ndarray:
    """(A, 40) log-mel per 5 ms hop, scaled per band over the sound (a loud or quiet take, a
    voice or a synthesiser, read alike)."""
    mel = log_mel(audio.samples, audio.sample_rate, HOP_S)
    return ((mel - mel.mean(0)) / (mel.std(0) + 1e-5)).astype(np.float32)


def windows(mel: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(B, 2*HALF+1, 40): the hops around each time (zeros past the ends)."""
    padded = np.pad(mel, ((HALF, HALF + 1), (0, 0)))
    centres = np.clip(np.rint(np.asarray(times) / HOP_S).astype(int), 0, len(mel))
    return padded[centres[:, None] + np.arange(2 * HALF + 1)[None, :]]


def class_inputs(found: list[Boundary]) -> np.ndarray:
    """(B, 2*7): one-hot classes of the phone before and the phone after each boundary."""
    out = np.zeros((len(found), 2 * len(CLASSES)), np.float32)
    for k, b in enumerate(found):
        out[k, b.left] = out[k, len(CLASSES) + b.right] = 1.0
    return out


class BoundaryModel:
    """The trained scorer (ONNX): mel (B, 65, 40), classes (B, 14) -> logits (B, 21) over the
    offsets -REACH..REACH hops."""

    def __init__(self, session, path: Path):
        self.session, self.path = session, path
        meta = session.get_modelmeta().custom_metadata_map
        inputs = [(i.name, i.shape[-1]) for i in session.get_inputs()]
        if meta.get("features_version") != FEATURES_VERSION or inputs != [
            ("mel", MELS), ("classes", 2 * len(CLASSES))
        ]:  # fmt: skip
            raise InputError(f"{path.name} is not a boundary model for these features; fix: "
                             f"train it with `{TRAIN_COMMAND}`")  # fmt: skip
        self.sure = float(json.loads(meta.get("sure", "0.0")))

    @classmethod
    def load(cls, path: str | Path) -> BoundaryModel:
        path = Path(path)
        remedy = f"train one with `{TRAIN_COMMAND}`"
        return cls(onnx.session(path, "boundary model", remedy), path)

    @classmethod
    @functools.cache
    def shipped(cls) -> BoundaryModel:
        return cls.load(SHIPPED)

    def offsets(
        self, mel: np.ndarray, classes: np.ndarray, prior_s: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expected offset (s) of each boundary and the top probability; with `prior_s`, the
        model's scores weighed by a normal prior of that width around the boundary as given."""
        if not len(mel):
            return np.zeros(0), np.zeros(0)
        logits = self.session.run(None, {"mel": mel, "classes": classes})[0]
        steps = np.arange(-REACH, REACH + 1) * HOP_S
        if prior_s:
            logits = logits - 0.5 * (steps / prior_s) ** 2
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return p @ steps, p.max(1)


def refine(
    audio: Audio,
    phonemes: list[Phoneme],
    words: list[Word],
    model: BoundaryModel | None = None,
    prior_s: float | None = None,
) -> tuple[list[Phoneme], list[Word]]:
    """Copies of `phonemes` with each boundary where the model hears it (weighed by a prior
    of width `prior_s` around where they are, if given), and `words` spanning their refined
    phones."""
    if not phonemes:
        return phonemes, words
    model = model or BoundaryModel.shipped()
    found = boundaries(phonemes)
    times = np.array([b.time for b in found])
    shift, sure = model.offsets(windows(features(audio), times), class_inputs(found), prior_s)
    moved = times + np.where(sure >= model.sure, shift, 0.0)
    starts = [p.start for p in phonemes]
    ends = [p.end for p in phonemes]
    for b, t in zip(found, moved):
        if b.before >= 0:
            starts[b.before] = float(t)
        if b.after >= 0:
            ends[b.after] = float(t)
    joined = [i > 0 and phonemes[i - 1].end == p.start for i, p in enumerate(phonemes)]
    shortest = [min(MIN_PHONE_S, p.end - p.start) for p in phonemes]
    starts, ends = _ordered(starts, ends, joined, shortest)
    # A stop after a pause inside the line keeps its start: that silence is its closure.
    opens = [not j and (i == 0 or phone_class(p.ipa) not in STOP_CLASSES)
             for i, (j, p) in enumerate(zip(joined, phonemes))]  # fmt: skip
    closes = [i + 1 == len(joined) or not joined[i + 1] for i in range(len(joined))]
    silent = silent_hops(audio, phonemes)
    starts, ends = _out_of_silence(silent, starts, ends, opens, closes, shortest)
    out = [replace(p, start=s, end=e) for p, s, e in zip(phonemes, starts, ends)]
    return out, _words_follow(words, phonemes, out)


def _ordered(s: list[float], e: list[float], joined: list[bool], shortest: list[float]):
    """Every phone at least its `shortest` long and in order; joined phones stay joined."""
    for i in range(len(s)):
        lo = 0.0 if i == 0 else s[i - 1] + shortest[i - 1] if joined[i] else e[i - 1]
        s[i] = max(s[i], lo)
        if joined[i]:
            e[i - 1] = s[i]
        e[i] = max(e[i], s[i] + shortest[i])
    return s, e


def silent_hops(audio: Audio, phonemes: list[Phoneme]) -> np.ndarray:
    """Which HOP_S hops of the sound are silence: SILENCE_DB below the loud level of the speech
    (its hops' 95th percentile; a loud noise or music elsewhere in the recording is no measure)."""
    rms = hop_rms(audio.samples, int(round(HOP_S * audio.sample_rate)))
    if not len(rms):
        return np.zeros(0, bool)
    level = 10 * np.log10(np.square(rms) + 1e-12)
    speech = np.zeros(len(rms), bool)
    for p in phonemes:
        speech[int(p.start / HOP_S) : int(np.ceil(p.end / HOP_S))] = True
    return level < np.percentile(level[speech] if speech.any() else level, 95) - SILENCE_DB


def _out_of_silence(silent: np.ndarray, s: list[float], e: list[float], opens: list[bool],
                    closes: list[bool], shortest: list[float]):  # fmt: skip
    """Phones that `opens` (after a pause or at the start) start, and phones that `closes` (before
    a pause or at the end) end, where the sound does: silent hops at those edges go to the
    pause, the phone keeping its `shortest`."""
    n = len(silent)
    for i in range(len(s)):
        if opens[i]:
            k = first = int(round(s[i] / HOP_S))
            while k < n and silent[k] and (k + 1) * HOP_S <= e[i] - shortest[i]:
                k += 1
            s[i] = k * HOP_S if k > first else s[i]
        if closes[i]:
            k = last = int(round(e[i] / HOP_S))
            while 0 < k <= n and silent[k - 1] and (k - 1) * HOP_S >= s[i] + shortest[i]:
                k -= 1
            e[i] = k * HOP_S if k < last else e[i]
    return s, e


def _words_follow(words: list[Word], old: list[Phoneme], new: list[Phoneme]) -> list[Word]:
    first: dict[int, Phoneme] = {}
    last: dict[int, Phoneme] = {}
    for o, n in zip(old, new):
        first.setdefault(o.word, n)
        last[o.word] = n
    return [replace(w, start=first[k].start, end=last[k].end) if k in first else w
            for k, w in enumerate(words)]  # fmt: skip
