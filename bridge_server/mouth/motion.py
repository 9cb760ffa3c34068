"""Mouth motion learned from real faces: timed phonemes -> the ten mouth controls per frame.

A small temporal convolution (models/train_motion.py) learned, from GRID's tracked talking
faces, how a mouth moves through a line: how far the jaw drops on each vowel, how neighbours
pull on each other, how early the lips round. It reads the phonemes and their times, so any
voice works (text-to-speech included). Its controls become any set's channels the way a
tracked face's do (controls.visemes_from_controls), and the rules' guarantees are kept on top:
where the rules close the lips (p b m) or touch the teeth (f v), their shape takes over, so
every closure still shuts fully.

It also hears how loud the sound is, overall and in three bands, where it is at hand (bake, say,
track): loudness says how wide this speaker opens on this syllable and where the speech really
starts and stops, which the phonemes alone cannot (models/motion.md measures both). Without
the sound (a timeline re-animated from its file) it reads the phonemes alone, as it learned to.

    sound_bands(samples, rate)     -> (A, 4) loudness per 10 ms, relative to the line
    features (phonemes, duration, bands) -> (N, F) at 100 frames a second   the ONE definition
    MotionModel.run(features)      -> (N, 10 + K) controls, then K ARKit mouth blendshapes
                                      learned from the face landmarker's scores   onnxruntime
    learned_channels                  core.curves' "learned" motion     registered below
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from ..core.curves import CurveSettings, Sound, register_motion, to_channels, viseme_weights
from ..core.errors import InputError
from ..core.phonemes import phoneme_table
from ..core.timeline import Phoneme
from ..core.visemes import VisemeSet
from ..engines import onnx
from ..media.mel import log_mel
from .controls import CONTROLS, visemes_from_controls

HOP_S = 0.01  # the model's frame step: finer than any animation rate
SETS = ("oculus15", "rhubarb", "preston_blair", "vrm5")  # each phoneme's class in each set
BANDS = ((0, 40), (0, 12), (12, 24), (24, 40))  # mel bands summed: all, low, mid, high
FEATURES_VERSION = "classes4+position+bands4-2"  # change when `features` changes; stored in models
SHIPPED = Path(__file__).resolve().parents[2] / "models" / "motion.onnx"
TRAIN_COMMAND = "python models/train_motion.py ~/data/ds/s1 --out models/motion.onnx"
OPENING = [c for c in CONTROLS if c != "mouth_close"]  # what --intensity scales
SEAL = "mouthClose"  # ARKit's lips held together while the jaw is open


@functools.cache
def classes() -> tuple[tuple[str, str], ...]:
    """(set, viseme) of every class a phoneme can have in SETS (phonemes.tsv's columns)."""
    table = phoneme_table()
    return tuple((s, v) for s in SETS for v in sorted({row[s] for row in table.values()}))


def n_features() -> int:
    return len(classes()) + 3 + len(BANDS)


def sound_bands(samples: np.ndarray, rate: int) -> np.ndarray:
    """(A, 4) log energy of the sound per HOP_S in BANDS (`features` puts it on the line's
    own scale)."""
    energy = np.exp(log_mel(samples, rate, HOP_S).astype(np.float64))
    return np.log(np.stack([energy[:, a:b].sum(1) for a, b in BANDS], 1) + 1e-10)


def features(phonemes: list[Phoneme], duration: float, bands: np.ndarray | None = None
             ) -> np.ndarray:  # fmt: skip
    """(N, F) float32, one row per HOP_S from 0 to `duration`: the phoneme heard there as its
    class in each of SETS (one-hot per set; silence outside phonemes), how far through it
    (0..1), the log of its length (0 = 0.1 s), 1 inside a phoneme; then the sound's
    `sound_bands`, each scaled to mean 0 and spread 1 over the line: how loud each moment is
    against the rest of the line, so that any microphone, level or voice reads alike (the
    whole log-mel, so scaled, learned the training speaker's formants), and where the speech
    really starts and stops. Without the sound they are 0 (the model learned that too)."""
    table, index = phoneme_table(), {c: i for i, c in enumerate(classes())}
    n = int(np.ceil(max(duration, 0.0) / HOP_S)) + 1
    x = np.zeros((n, n_features()), np.float32)
    x[:, [index[(s, table["_"][s])] for s in SETS]] = 1.0  # silence
    ph = len(index)  # the phoneme's position, length and presence follow its classes
    for p in phonemes:
        row = table.get(p.ipa)
        if row is None:
            raise InputError(f"phoneme {p.ipa!r} is not in phonemes.tsv; normalise it first.")
        a = min(max(int(round(p.start / HOP_S)), 0), n)
        b = min(max(int(round(p.end / HOP_S)), a + 1), n)
        if a >= b:
            continue
        x[a:b, :ph] = 0.0
        x[a:b, [index[(s, row[s])] for s in SETS]] = 1.0
        x[a:b, ph] = (np.arange(b - a) + 0.5) / (b - a)
        x[a:b, ph + 1] = np.log(max(p.end - p.start, 1e-3) / 0.1)
        x[a:b, ph + 2] = 1.0
    if bands is not None and len(bands):
        heard = np.asarray(bands)[np.minimum(np.arange(n), len(bands) - 1)]  # may end a hop early
        x[:, ph + 3 :] = (heard - heard.mean(0)) / (heard.std(0) + 1e-3)
    return x


class MotionModel:
    """The trained motion model (ONNX): features (1, T, F) -> controls (1, T, 10) and, in a
    model trained on the tracker's blendshape scores, arkit (1, T, K): ARKit mouth channels,
    each 0..1 over the training speaker's own range (the metadata names them)."""

    def __init__(self, session, path: Path):
        self.session, self.path = session, path
        self.metadata = session.get_modelmeta().custom_metadata_map
        self.arkit = tuple(json.loads(self.metadata.get("arkit", "[]")))
        self.outputs = ["controls", "arkit"] if self.arkit else ["controls"]
        self.names = CONTROLS + self.arkit  # the columns `run` gives
        self._check()

    @classmethod
    def load(cls, path: str | Path) -> MotionModel:
        path = Path(path)
        session = onnx.session(
            path,
            "motion model",
            f"train one with `{TRAIN_COMMAND}`, or use --motion rules",
            threads=1,
        )  # a line is small: threads cost more
        return cls(session, path)

    @classmethod
    @functools.cache
    def shipped(cls) -> MotionModel:
        """The project's model (models/motion.onnx), loaded once per process."""
        return cls.load(SHIPPED)

    def _check(self) -> None:
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        shape = ins[0].shape if ins else None
        if [i.name for i in ins] != ["features"] or not shape or shape[2] != n_features() or \
                [o.name for o in outs] != self.outputs:  # fmt: skip
            raise InputError(f"{self.path.name} is not a motion model for these features: it "
                             f"needs input 'features' (1, T, {n_features()}) and outputs "
                             f"{self.outputs}; fix: train it with `{TRAIN_COMMAND}`")  # fmt: skip
        version = self.metadata.get("features_version")
        if version != FEATURES_VERSION:
            raise InputError(f"{self.path.name} was trained on features {version!r}, not "
                             f"{FEATURES_VERSION!r}; fix: train it again with `{TRAIN_COMMAND}`")  # fmt: skip

    def run(self, x: np.ndarray) -> np.ndarray:
        """(T, len(names)) for (T, F) features, less what the model shows in silence: a mouth
        at rest is exactly the rest shape (it learned a speaker whose tracked rest is not
        quite 0)."""
        return np.clip(self._raw(np.asarray(x, np.float32)) - self.rest, 0.0, 1.0)

    def _raw(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([o[0] for o in self.session.run(self.outputs, {"features": x[None]})],
                              axis=1)  # fmt: skip

    @functools.cached_property
    def rest(self) -> np.ndarray:
        """(len(names),) what the model gives in a long silence."""
        return self._raw(features([], 2.0))[100]


def controls_at(phonemes: list[Phoneme], times: np.ndarray, model: MotionModel | None = None,
                sound: Sound | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """The learned mouth controls at `times` (seconds) for a line's timed phonemes (and its
    sound, when given), and the model's ARKit channels when it has them."""
    model = model or MotionModel.shipped()
    times = np.asarray(times, float)
    end = max(float(times[-1]) if len(times) else 0.0, max((p.end for p in phonemes), default=0))
    bands = sound_bands(*sound) if sound is not None else None
    c = model.run(features(phonemes, end + HOP_S, bands))
    grid = np.arange(len(c)) * HOP_S
    return {name: np.interp(times, grid, c[:, i]) for i, name in enumerate(model.names)}


def learned_channels(
    phonemes: list[Phoneme],
    vset: VisemeSet,
    times: np.ndarray,
    settings: CurveSettings,
    sound: Sound | None = None,
    model: MotionModel | None = None,
) -> dict[str, np.ndarray]:
    """Channel weights of `vset` from the learned controls, the rules' contacts on top: k, the
    rules' weight of the closed and teeth shapes (1 on their frames, easing off around them),
    blends out = (1 - k) learned + k rules, so every p/b/m closes and every f/v touches. ARKit
    says how the jaw and the lips move apart: there the jaw keeps the learned opening (a real
    jaw is not shut on "b": forcing it shut cost the unseen speakers' jaw r 0.04 to 0.09) and
    mouthClose = k x jawOpen holds the lips together over it. ARKit channels the model learned
    from the tracker's blendshapes replace those the controls' table makes."""
    lead = np.asarray(times, float) + settings.lead  # a lead moves the mouth before the sound
    controls = controls_at(phonemes, lead, model, sound)
    arkit = [n for n in controls if n not in CONTROLS]  # the ARKit channels the model learned
    for name in OPENING + arkit:
        controls[name] = np.clip(controls[name] * settings.intensity, 0.0, 1.0)
    learned = visemes_from_controls(controls, vset)
    if vset.name == "arkit":
        learned.update({n: controls[n] for n in arkit})
    weights = viseme_weights(phonemes, vset, times, settings)  # never holds: those are rules
    rules = to_channels(weights, vset)
    k = np.clip(weights[vset.closed] + weights[vset.teeth], 0.0, 1.0)
    out = {ch: np.clip((1 - k) * learned[ch] + k * rules[ch], 0.0, 1.0) for ch in rules}
    if SEAL in out:  # ARKit: the jaw keeps its opening through a contact, the lips seal over it
        out["jawOpen"] = learned["jawOpen"]
        out[SEAL] = np.clip(k * learned["jawOpen"], 0.0, 1.0)
    return out


register_motion("learned", learned_channels)
