"""A trained lip reader at run time: mouth controls -> oculus15 viseme posteriors -> sentences.

The model (models/train_lipreader.py makes it) is an ONNX file: input "features" (1, T, F)
float32, output "logits" (1, T, 15) in the order of `VISEMES`. onnxruntime only; no torch.

    features         the per-frame features, the ONE definition training and run time share
    LipReaderModel   load(path) -> posteriors(features) (T, 15) softmax
    rank_with_model  candidate sentences ranked by time warping of their expected visemes
                     (eSpeak's phonemes of the sentence) against the posteriors
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import EngineUnavailable, InputError
from ..core.visemes import load_set
from ..dataset import viseme_at
from ..mouth.controls import CONTROLS
from ..pipeline import say

VISEME_SET = "oculus15"
VISEMES: tuple[str, ...] = tuple(load_set(VISEME_SET).visemes)  # the 15 classes, in set order
SILENCE = VISEMES.index(load_set(VISEME_SET).rest)
FEATURES_VERSION = "controls-z+diff-1"  # change when `features` changes; stored in the model
STD_FLOOR = 0.02  # controls are 0..1: a control that barely moves in a clip is not amplified
TRAIN_COMMAND = ".venv/bin/python models/train_lipreader.py ds/ --out models/lipreader.onnx"


def _controls_names() -> tuple[str, ...]:
    return CONTROLS


def controls_array(mouth_or_controls: Any) -> np.ndarray:
    """(T, 10) float controls in mouth.CONTROLS order from a mouth.Mouth, a dict name -> (T,)
    or an array (T, 10) already in that order."""
    controls = getattr(mouth_or_controls, "controls", mouth_or_controls)
    names = _controls_names()
    if isinstance(controls, Mapping):
        missing = [k for k in names if k not in controls]
        if missing:
            raise InputError(f"mouth controls lack {', '.join(missing)}; give all of {names}")
        c = np.stack([np.asarray(controls[k], dtype=float) for k in names], axis=1)
    else:
        c = np.asarray(controls, dtype=float)
    if c.ndim != 2 or c.shape[1] != len(names):
        raise InputError(f"mouth controls must be (frames, {len(names)}), got {c.shape}")
    return c


def features(mouth_or_controls: Any, valid: np.ndarray | None = None) -> np.ndarray:
    """(T, 20) float32: the 10 controls z-scored over the clip's valid frames (std floored at
    STD_FLOOR), then their first differences (0 at the first frame). Invalid frames (no
    usable face) and NaN read as the clip's mean (0 after z-scoring).

    Per-clip normalisation removes the speaker's resting offsets and range (another face,
    another distance to the camera); the differences say where the mouth is going.
    """
    c = controls_array(mouth_or_controls)
    if valid is None:
        valid = getattr(mouth_or_controls, "valid", None)
    ok = np.ones(len(c), bool) if valid is None else np.asarray(valid, bool).copy()
    if ok.shape != (len(c),):
        raise InputError(f"valid must be ({len(c)},) like the controls, got {ok.shape}")
    ok &= ~np.isnan(c).any(axis=1)
    if ok.any():
        mean, std = c[ok].mean(axis=0), np.maximum(c[ok].std(axis=0), STD_FLOOR)
        z = np.where(ok[:, None], (np.nan_to_num(c) - mean) / std, 0.0)
    else:
        z = np.zeros_like(c)
    diff = np.diff(z, axis=0, prepend=z[:1])
    return np.concatenate([z, diff], axis=1).astype(np.float32)


N_FEATURES = 2 * len(_controls_names())


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed stably."""
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


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
        if not path.is_file():
            raise EngineUnavailable(
                f"no lip-reader model at {path}; fix: train one with `{TRAIN_COMMAND}` "
                "(the project ships none: four clips do not make one that beats time warping)"
            )
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise EngineUnavailable(
                f"onnxruntime is not installed ({e}); fix: .venv/bin/pip install onnxruntime"
            ) from e
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors come back as exceptions, not console noise
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise InputError(
                f"{path} is not a readable ONNX model ({str(e).splitlines()[0][:200]}); fix: "
                f"train it again with `{TRAIN_COMMAND}`"
            ) from e
        model = cls(path, session, dict(session.get_modelmeta().custom_metadata_map))
        model._check()
        return model

    def _check(self) -> None:
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        shape = ins[0].shape if ins else None
        if (
            [i.name for i in ins] != ["features"]
            or "logits" not in [o.name for o in outs]
            or not shape
            or len(shape) != 3
            or shape[2] != N_FEATURES
        ):
            raise InputError(
                f"{self.path} is an ONNX model but not a lip reader: it needs input 'features' "
                f"(1, T, {N_FEATURES}) and output 'logits'; fix: train it with `{TRAIN_COMMAND}`"
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

    def logits(self, feats: np.ndarray) -> np.ndarray:
        """(T, 15) raw scores for (T, F) features."""
        x = np.asarray(feats, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != N_FEATURES:
            raise InputError(f"features must be (frames, {N_FEATURES}), got {x.shape}")
        if not len(x):
            return np.zeros((0, len(VISEMES)), np.float32)
        return self.session.run(["logits"], {"features": x[None]})[0][0]

    def posteriors(self, feats: np.ndarray) -> np.ndarray:
        """(T, 15) probability of each viseme per frame (rows sum to 1)."""
        return softmax(self.logits(feats).astype(np.float64))


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


def rank_with_model(
    model: LipReaderModel,
    controls: Any,
    valid: np.ndarray | None,
    fps: float,
    choices: Sequence[str],
) -> list[tuple[str, float]]:
    """Which of `choices` the mouth said: (text, cost) best first, lower cost = more likely.

    The model's viseme posteriors for the clip against each sentence's expected viseme
    sequence (eSpeak's phonemes, timed at `fps`), by `warp_cost`.
    """
    if not choices:
        raise InputError("no candidate sentences to choose from; give at least one")
    return rank_posteriors(model.posteriors(features(controls, valid)), fps, choices)
