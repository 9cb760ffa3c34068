"""The lips as numbers a trained model reads, per video frame: the ONE definition that the
lip reader and the sync model use in training and at run time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.errors import InputError
from .controls import CONTROLS

FEATURES_VERSION = "controls+lips-z+diff-2"  # change when `features` changes; stored in models
STD_FLOOR = 0.02  # controls are 0..1: a control that barely moves in a clip is not amplified
LIP_SCALE_FLOOR = 1e-3  # canonical face units: a clip whose lips never move is not amplified


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


def features(mouth: Any, valid: np.ndarray | None = None, lips: np.ndarray | None = None):
    """(T, 180) float32 per frame: the 10 controls z-scored over the clip's valid frames (std
    floored at STD_FLOOR), the 40 lip points' x, y less their clip mean and divided by the
    clip's RMS lip motion, then the first differences of both (0 at the first frame).

    Per-clip normalisation is the speaker normalisation: it removes the speaker's resting
    shape, size and range, so another face at another distance reads alike; the differences
    say where the mouth is going. Invalid frames (no usable face) and NaN read as the clip's
    mean (0). `mouth` is a mouth.Mouth (controls, lips and valid from it) or the controls.
    """
    c = controls_array(mouth)
    valid = getattr(mouth, "valid", None) if valid is None else valid
    lips = getattr(mouth, "lips", None) if lips is None else lips
    ok = np.ones(len(c), bool) if valid is None else np.asarray(valid, bool).copy()
    if ok.shape != (len(c),):
        raise InputError(f"valid must be ({len(c)},) like the controls, got {ok.shape}")
    if lips is None or np.shape(lips)[:2] != (len(c), LIP_POINTS):
        raise InputError(f"lip points must be ({len(c)}, {LIP_POINTS}, 2 or 3), got "
                         f"{None if lips is None else np.shape(lips)}")  # fmt: skip
    xy = np.asarray(lips, dtype=float)[:, :, :2].reshape(len(c), -1)
    ok &= ~np.isnan(c).any(axis=1) & ~np.isnan(xy).any(axis=1)
    z = np.zeros((len(c), N_CONTROLS + 2 * LIP_POINTS))
    if ok.any():
        mean, std = c[ok].mean(axis=0), np.maximum(c[ok].std(axis=0), STD_FLOOR)
        z[:, :N_CONTROLS] = (np.nan_to_num(c) - mean) / std
        centred = np.nan_to_num(xy) - xy[ok].mean(axis=0)
        scale = max(float(np.sqrt((centred[ok] ** 2).mean())), LIP_SCALE_FLOOR)
        z[:, N_CONTROLS:] = centred / scale
        z[~ok] = 0.0
    diff = np.diff(z, axis=0, prepend=z[:1])
    return np.concatenate([z, diff], axis=1).astype(np.float32)


LIP_POINTS = 40
N_CONTROLS = len(_controls_names())
N_FEATURES = 2 * (N_CONTROLS + 2 * LIP_POINTS)
