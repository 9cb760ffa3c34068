"""A trained lip reader at run time: the mouth's geometry -> GRID words and visemes per frame.

The model (models/train_lipreader.py makes it) is an ONNX file: input "features" (1, T, F)
float32; outputs "words" (1, T, V), a score per word of its vocabulary (metadata "words",
"sil" among them) and "logits" (1, T, 15), a score per oculus15 viseme in `VISEMES` order.
onnxruntime only; no torch.

    features         the per-frame features, the ONE definition training and run time share
    LipReaderModel   load(path) -> word_log_posteriors / posteriors (visemes) per frame
    read_with_model  a grammar's best sentences (decode.read_slots), or candidate lines
                     ranked by the words when the model knows them all, else by time warping
                     of their expected visemes (eSpeak's phonemes) against the posteriors
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.timeline import viseme_at
from ..core.visemes import load_set
from ..engines import onnx
from ..mouth.features import FEATURES_VERSION, N_FEATURES, features
from ..pipeline import say
from . import decode

VISEME_SET = "oculus15"
VISEMES: tuple[str, ...] = tuple(load_set(VISEME_SET).visemes)  # the 15 classes, in set order
SILENCE = VISEMES.index(load_set(VISEME_SET).rest)
TRAIN_COMMAND = ".venv/bin/python models/train_lipreader.py DS --out models/lipreader.onnx"
SHIPPED = Path(__file__).resolve().parents[2] / "models" / "lipreader.onnx"  # see its .md card
METHODS = ("model", "template")  # the trained reader (default) or template matching


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed stably."""
    return np.exp(log_softmax(logits))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@dataclass
class LipReaderModel:
    """An ONNX lip reader loaded once; `posteriors` is safe to call from any thread."""

    path: Path
    session: Any
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> LipReaderModel:
        """Open the model; a missing file or onnxruntime is EngineUnavailable, a file that is not
        a lip reader of this version is InputError, each saying what to do."""
        path = Path(path)
        session = onnx.session(path, "lip-reader model", "use the project's models/lipreader.onnx, "
                               f"train one with `{TRAIN_COMMAND}`, or read with --method template")  # fmt: skip
        model = cls(path, session, dict(session.get_modelmeta().custom_metadata_map))
        model._check()
        return model

    @classmethod
    @functools.cache
    def shipped(cls) -> LipReaderModel:
        """The project's model (models/lipreader.onnx), loaded once per process."""
        return cls.load(SHIPPED)

    def _check(self) -> None:
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        shape = ins[0].shape if ins else None
        if (
            [i.name for i in ins] != ["features"]
            or not {"logits", "words"} <= {o.name for o in outs}
            or not shape
            or len(shape) != 3
            or shape[2] != N_FEATURES
        ):
            raise InputError(
                f"{self.path} is an ONNX model but not a lip reader: it needs input 'features' "
                f"(1, T, {N_FEATURES}) and outputs 'words' and 'logits'; fix: train it with `{TRAIN_COMMAND}`"
            )
        version = self.metadata.get("features_version")
        if version is not None and version != FEATURES_VERSION:
            raise InputError(
                f"{self.path} was trained on features {version!r}, this code computes "
                f"{FEATURES_VERSION!r}; fix: train it again with `{TRAIN_COMMAND}`"
            )
        classes = self.metadata.get("classes")
        if classes is not None and tuple(json.loads(classes)) != VISEMES:
            raise InputError(f"{self.path} predicts other classes than {VISEME_SET}: {classes}")
        if decode.SILENCE not in self.vocab:
            raise InputError(f"{self.path} has no word list with '{decode.SILENCE}' in its metadata; "
                             f"fix: train it again with `{TRAIN_COMMAND}`")  # fmt: skip

    @functools.cached_property
    def vocab(self) -> list[str]:
        """The words the model scores, in output order ("sil" among them)."""
        return list(json.loads(self.metadata.get("words", "[]")))

    def run(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, V) word and (T, 15) viseme scores for (T, F) features."""
        x = np.asarray(feats, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != N_FEATURES:
            raise InputError(f"features must be (frames, {N_FEATURES}), got {x.shape}")
        if not len(x):
            return np.zeros((0, len(self.vocab)), np.float32), np.zeros(
                (0, len(VISEMES)), np.float32
            )
        words, visemes = self.session.run(["words", "logits"], {"features": x[None]})
        return words[0], visemes[0]

    def word_log_posteriors(self, feats: np.ndarray) -> np.ndarray:
        """(T, V) log probability of each word of `vocab` per frame."""
        return log_softmax(self.run(feats)[0].astype(np.float64))

    def posteriors(self, feats: np.ndarray) -> np.ndarray:
        """(T, 15) probability of each viseme per frame (rows sum to 1)."""
        return softmax(self.run(feats)[1].astype(np.float64))


# --- sentences ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def expected_visemes(text: str, fps: float) -> tuple[int, ...]:
    """The viseme classes (indices into VISEMES) eSpeak's reading of `text` shows at each
    frame of `fps`, leading and trailing silence removed."""
    _, timeline = say(text, fps=fps, viseme_set=VISEME_SET)
    times = np.arange(int(np.floor(timeline.duration * fps)) + 1) / fps
    return tuple(int(v) for v in _trim(viseme_at(timeline.visemes, list(VISEMES), times)))


def _trim(seq: np.ndarray) -> np.ndarray:
    speech = np.flatnonzero(seq != SILENCE)
    return seq[speech[0] : speech[-1] + 1] if len(speech) else seq[:0]


def warp_cost(neg_log_post: np.ndarray, template: Sequence[int]) -> float:
    """Mean cost per frame of the best alignment of `template` (class per frame) to the
    observed frames, cost -log p. Every observed frame is used once: the template may stretch
    without limit and shrink to half; frames before and after it cost -log p(silence), so the
    speech can sit anywhere in the clip (free silence at both ends)."""
    cost = np.asarray(neg_log_post, dtype=float)
    n, m = len(cost), len(template)
    if n == 0:
        return float("inf")
    sil = np.concatenate([[0.0], np.cumsum(cost[:, SILENCE])])  # sil[t]: frames < t silent
    if m == 0:
        return float(sil[-1] / n)
    c = cost[:, list(template)]  # (n, m)
    best = np.full(m, np.inf)
    finish = np.inf
    for t in range(n):
        prev = best
        best = np.full(m, np.inf)
        best[0] = min(prev[0], sil[t]) + c[t, 0]  # stay on, or start the speech here
        if m > 1:
            step = np.minimum(prev[1:], prev[:-1])  # stay or advance one
            step[1:] = np.minimum(step[1:], prev[:-2])  # or skip one (speech twice as fast)
            best[1:] = step + c[t, 1:]
        finish = min(finish, best[-1] + sil[n] - sil[t + 1])  # silent after the last frame
    return float(finish / n)


def rank_posteriors(
    posteriors: np.ndarray, fps: float, choices: Sequence[str], floor: float = 1e-4
) -> list[tuple[str, float]]:
    """Candidate sentences with their warp costs (mean -log p per frame), best first.
    `floor` bounds a frame's cost, so one confident mistake cannot veto a sentence."""
    neg = -np.log(np.maximum(np.asarray(posteriors, dtype=float), floor))
    scored = [(text, warp_cost(neg, expected_visemes(text, float(fps)))) for text in choices]
    return sorted(scored, key=lambda item: item[1])


def read_with_model(
    model: LipReaderModel,
    mouth: Any,
    fps: float,
    *,
    slots: Sequence[Sequence[str]] | None = None,
    choices: Sequence[str] | None = None,
    best: int = 5,
) -> list[decode.Read]:
    """What the lips say: a grammar's `best` readings, or every candidate line ranked, best
    first. Lines made only of words the model knows are read like a grammar of one word per
    slot; other lines are ranked by time warping their visemes (scores on one scale: the
    mean log probability per frame)."""
    feats = features(mouth)
    if slots is not None:
        unknown = sorted({w for slot in slots for w in slot} - set(model.vocab))
        if unknown:
            raise InputError(f"the lip-reading model does not know {', '.join(unknown[:10])}; "
                             "give a grammar of its words (the GRID grammar) or candidate lines")  # fmt: skip
        return decode.read_slots(model.word_log_posteriors(feats), model.vocab,
                                 [list(s) for s in slots], fps, best)  # fmt: skip
    if not choices:
        raise InputError("no candidate sentences to choose from; give at least one")
    return _rank_lines(model, feats, fps, list(choices))


def _rank_lines(model: LipReaderModel, feats: np.ndarray, fps: float, choices: list[str]):
    words = [c.lower().split() for c in choices]
    n = max(len(feats), 1)
    if all(w and set(w) <= set(model.vocab) for w in words):
        lp = model.word_log_posteriors(feats)
        found = []
        for line in words:
            read = decode.read_slots(lp, model.vocab, [[w] for w in line], fps, best=1)
            found += read or [decode.Read(line, -np.inf, [])]
        return decode.with_confidence(found, n)
    ranked = rank_posteriors(model.posteriors(feats), fps, choices)
    return decode.with_confidence([decode.Read(t.split(), -cost * n, []) for t, cost in ranked], n)
