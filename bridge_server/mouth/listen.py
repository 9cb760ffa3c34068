"""The mouth from the sound alone, as it comes: for live streaming, any language, no recogniser.

A causal convolution (models/train_live_motion.py) reads the log-mel bands of the last
RECEPTIVE_HOPS hops of sound and says the ten mouth controls of the moment LOOKAHEAD_HOPS
hops before the newest: it may hear 20 ms ahead, no more. Fed 20 ms at a time, a Listener
answers each chunk with the controls of the hops that have become final.

    log_mel (mouth.sync)        sound -> (A, 40) per 10 ms hop
    LiveMotionModel.run         (A, 40) -> (A, 10) controls, (A, 2) contacts (lips closed, lip
                                on teeth), (A, K) the ARKit channels it learned (K may be 0);
                                row i is the mouth at hop i - lookahead
    Listener.feed(samples)      the new hops' Heard (times, controls, contacts, arkit), as the
                                sound arrives
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..core.errors import InputError
from ..engines import onnx
from .controls import CONTROLS
from .sync import HOP_S, MELS, log_mel

RATE = 16000
CONTACTS = {"closed": ("p", "b", "m"), "teeth": ("f", "v")}  # what the model also hears
WINDOW_S = 0.025  # a hop's log-mel needs this much sound around it (half after it)
FEATURES_VERSION = "logmel40-global-1"  # change when `normalised` changes; stored in models
SHIPPED = Path(__file__).resolve().parents[2] / "models" / "motion_live.onnx"
TRAIN_COMMAND = "python models/train_live_motion.py ~/data/ds/s1bs --out models/motion_live.onnx"


class LiveMotionModel:
    """The trained causal model (ONNX): mel (1, A, 40) -> controls (1, A, 10), contacts
    (1, A, 2) and, in a model trained on the tracker's blendshape scores, arkit (1, A, K): ARKit
    mouth channels named in its metadata; all 0..1."""

    def __init__(self, session, path: Path):
        self.session, self.path = session, path
        meta = session.get_modelmeta().custom_metadata_map
        inputs = [(i.name, i.shape[-1]) for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        self.arkit = tuple(json.loads(meta.get("arkit", "[]")))
        expected = ["controls", "contacts"] + (["arkit"] if self.arkit else [])
        if meta.get("features_version") != FEATURES_VERSION or inputs != [("mel", MELS)] or \
                outputs != expected:  # fmt: skip
            raise InputError(f"{path.name} is not a live motion model for these features; fix: "
                             f"train it with `{TRAIN_COMMAND}`")  # fmt: skip
        self.lookahead = int(meta["lookahead_hops"])
        self.receptive = int(meta["receptive_hops"])
        self.mean = np.array(json.loads(meta["mel_mean"]), np.float32)
        self.std = np.array(json.loads(meta["mel_std"]), np.float32)

    @classmethod
    def load(cls, path: str | Path) -> LiveMotionModel:
        path = Path(path)
        session = onnx.session(
            path,
            "live motion model",
            f"train one with `{TRAIN_COMMAND}`, or use --motion rules",
            threads=1,
        )  # live: small steps
        return cls(session, path)

    @classmethod
    @functools.cache
    def shipped(cls) -> LiveMotionModel:
        return cls.load(SHIPPED)

    def normalised(self, mel: np.ndarray) -> np.ndarray:
        """Log-mel bands on the training data's scale (fixed: nothing from the future)."""
        return ((np.asarray(mel, np.float32) - self.mean) / self.std).astype(np.float32)

    def run(self, mel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A, 10) controls, (A, 2) contacts, (A, K) ARKit channels; row i is the mouth at hop
        i - lookahead."""
        controls, contacts, *arkit = self.session.run(None, {"mel": self.normalised(mel)[None]})
        return controls[0], contacts[0], arkit[0][0] if arkit else np.zeros((len(controls[0]), 0))


class Heard(NamedTuple):
    """The mouth of the hops that became final: their times (s) and, per hop, the controls
    (n, 10), contacts (n, 2) and the model's ARKit channels (n, K)."""

    times: np.ndarray
    controls: np.ndarray
    contacts: np.ndarray
    arkit: np.ndarray


class Listener:
    """The mouth, fed sound (16 kHz float samples) as it arrives. Only the new hops' log-mel
    is computed per chunk (small sums: no BLAS threads spinning between chunks), and the model
    reads the last `receptive + lookahead` hops of it."""

    BACK = 2  # hops of earlier sound before the first new hop: its window reaches that far

    def __init__(self, model: LiveMotionModel | None = None):
        self.model = model or LiveMotionModel.shipped()
        self.hop = int(round(HOP_S * RATE))
        self.samples = np.zeros(self.BACK * self.hop, np.float32)  # silence before the stream
        self.start = -self.BACK * self.hop  # the first kept sample's index in the stream
        self.mel = np.zeros((0, MELS), np.float32)  # the log-mel of hops mel_from..ready-1
        self.mel_from = 0
        self.done = 0  # hops whose mouth has been given

    def feed(self, chunk: np.ndarray) -> Heard:
        """The mouth of the hops that became final with `chunk`."""
        self.samples = np.concatenate([self.samples, np.asarray(chunk, np.float32)])
        heard = self.start + len(self.samples)  # samples so far
        # a hop's log-mel is final once half a window of sound after it has arrived
        ready = (heard - int(WINDOW_S * RATE / 2)) // self.hop  # hops 0..ready-1 have their mel
        self._add_mel(ready)
        final = ready - self.model.lookahead  # hops whose mouth the model can give now
        if final <= self.done:
            return Heard(np.zeros(0), np.zeros((0, len(CONTROLS))),
                         np.zeros((0, len(CONTACTS))), np.zeros((0, len(self.model.arkit))))  # fmt: skip
        heads = self.model.run(self.mel)  # row j: the mouth at hop mel_from + j - lookahead
        rows = np.arange(self.done, final) - self.mel_from + self.model.lookahead
        ok = rows >= 0
        hops = np.arange(self.done, final)[ok]
        self.done = final
        return Heard(hops * HOP_S, *(h[rows[ok]] for h in heads))

    def _add_mel(self, ready: int) -> None:
        """The log-mel of the hops from the last one computed to `ready`, then forget what the
        model will not read again (its receptive field, the lookahead, a little margin)."""
        new_from = self.mel_from + len(self.mel)
        if ready <= new_from:
            return
        begin = (new_from - self.BACK) * self.hop - self.start  # whole hops before the first new
        frames = log_mel(self.samples[begin:], RATE)[self.BACK : self.BACK + ready - new_from]
        self.mel = np.concatenate([self.mel, frames])
        drop = len(self.mel) - (self.model.receptive + self.model.lookahead + 4)
        if drop > 0:
            self.mel, self.mel_from = self.mel[drop:], self.mel_from + drop
        spare = (ready - self.BACK) * self.hop - self.start  # sound no window needs any more
        if spare > 0:
            self.samples, self.start = self.samples[spare:], self.start + spare


def controls_dict(rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: rows[:, i] for i, name in enumerate(CONTROLS)}
