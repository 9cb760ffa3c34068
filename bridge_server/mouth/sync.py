"""How late the sound is against the lips, by a learned sync model (SyncNet's idea).

The model (models/train_sync.py makes it; models/sync.onnx) embeds 200 ms of the lips (5 video
frames of mouth.features) and 200 ms of the sound (20 hops of 40-band log-mel) so that in-sync
pairs are close. At run time every video frame's lips are compared with the sound at every
shift within ±1 s, in 10 ms hops; the shift where they agree best, refined between hops by a
parabola, is the offset. Long takes are also measured in segments, so drift shows.

    lip_windows / sound_windows   the model's inputs (the ONE definition, training and run time)
    SyncModel                     load(path) -> embeddings (onnxruntime)
    measure                       mouth + sound -> Sync (offset, confidence, curve, segments)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..engines import onnx
from ..media.mel import MELS, log_mel
from .features import N_FEATURES, features

FEATURES_VERSION = "lips5+logmel20-1"
HOP_S = 0.01  # sound hop
LIP_FRAMES, SOUND_HOPS = 5, 20  # 200 ms each side
LIP_WINDOW_FEATURES = LIP_FRAMES * N_FEATURES
SOUND_WINDOW_FEATURES = SOUND_HOPS * MELS
EMBEDDING = 64
HOPS_PER_FRAME = 4  # at 25 fps, the rate the model trained at
MAX_OFFSET_S = 1.0
SEGMENT_S = 6.0  # long takes are measured in pieces this long, to show drift
SHIPPED = Path(__file__).resolve().parents[2] / "models" / "sync.onnx"
TRAIN_COMMAND = ".venv/bin/python models/train_sync.py DS --out models/sync.onnx"


# --- inputs -------------------------------------------------------------------------------


def lip_windows(controls, valid=None, lips=None) -> np.ndarray:
    """(T, 5*F) float32: each video frame's features with its two neighbours on each side."""
    f = features(controls, valid, lips)
    padded = np.pad(f, ((LIP_FRAMES // 2, LIP_FRAMES // 2), (0, 0)), mode="edge")
    return np.stack([padded[i : i + len(f)] for i in range(LIP_FRAMES)], axis=1).reshape(len(f), -1)


def sound_windows(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(A, 20*40) float32: per 10 ms hop, the log-mel of the 200 ms around it, z-scored over
    the clip per band (a quiet or loud recording, another voice, reads alike)."""
    m = log_mel(samples, sample_rate)
    m = (m - m.mean(axis=0)) / np.maximum(m.std(axis=0), 1e-3)
    half = SOUND_HOPS // 2
    padded = np.pad(m, ((half, half), (0, 0)))
    return np.stack([padded[i : i + len(m)] for i in range(SOUND_HOPS)], axis=1).reshape(len(m), -1)


def shift(windows: np.ndarray, hops: int) -> np.ndarray:
    """The sound `hops` later (positive) or earlier: what a late or early sound track gives."""
    out = np.zeros_like(windows)
    if hops >= 0:
        out[hops:] = windows[: len(windows) - hops]
    else:
        out[:hops] = windows[-hops:]
    return out


# --- the model ----------------------------------------------------------------------------


@dataclass
class SyncModel:
    path: Path
    session: Any

    @classmethod
    def load(cls, path: str | Path) -> SyncModel:
        path = Path(path)
        session = onnx.session(path, "sync model", "use the project's models/sync.onnx, or "
                               f"train one with `{TRAIN_COMMAND}`")  # fmt: skip
        meta = session.get_modelmeta().custom_metadata_map
        if meta.get("features_version") != FEATURES_VERSION:
            raise InputError(f"{path} is not a sync model for features {FEATURES_VERSION}; "
                             f"fix: train it again with `{TRAIN_COMMAND}`")  # fmt: skip
        return cls(path, session)

    @classmethod
    @functools.cache
    def shipped(cls) -> SyncModel:
        return cls.load(SHIPPED)

    def embed(self, lips: np.ndarray, sound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v, a = self.session.run(None, {"lips": lips[None].astype(np.float32),
                                       "sound": sound[None].astype(np.float32)})  # fmt: skip
        return v[0], a[0]


# --- the offset ---------------------------------------------------------------------------


@dataclass
class Sync:
    """offset_ms > 0: the sound is LATE (it comes after the mouth shows it): move the sound
    earlier, or the picture later, by offset_ms to fix it."""

    offset_ms: float
    confidence: float  # how far the best offset stands out of the others (0 = not at all)
    curve: np.ndarray  # (L, 2): offset in ms, mean similarity of lips and sound there
    segments: list[dict] = field(default_factory=list)  # {start, end, offset_ms, confidence}
    reason: str = ""  # why the confidence is low, in words ("" when it is not)
    # How late the file's container starts the sound after the picture (ms). Players that play
    # the sound from its first sample (Blender's sound strips) see offset_ms minus this.
    container_delay_ms: float = 0.0


def best_offset(
    lip_emb: np.ndarray, sound_emb: np.ndarray, frame_hops: np.ndarray | None = None
) -> Sync:
    """The shift (in 10 ms hops, ±MAX_OFFSET_S) where each video frame's lips agree best with
    the sound, on average over the frames; `frame_hops` is each video frame's hop (25 fps: 4t)."""
    t = np.arange(len(lip_emb))
    at = HOPS_PER_FRAME * t if frame_hops is None else np.asarray(frame_hops)
    reach = int(round(MAX_OFFSET_S / HOP_S))
    lags = np.arange(-reach, reach + 1)
    sims = lip_emb @ sound_emb.T  # (T, A)
    idx = at[:, None] + lags[None, :]
    ok = (idx >= 0) & (idx < len(sound_emb))
    vals = sims[t[:, None], idx.clip(0, len(sound_emb) - 1)]
    counts = ok.sum(axis=0)
    sums = np.where(ok, vals, 0.0).sum(axis=0)
    curve = np.where(counts >= max(3, len(t) // 4), sums / np.maximum(counts, 1), np.nan)
    if np.isnan(curve).all():
        return Sync(0.0, 0.0, np.stack([lags * HOP_S * 1000, curve], 1), [], "too short to compare")
    i = int(np.nanargmax(curve))
    refined = lags[i] + _parabola(curve, i)
    away = np.abs(lags - lags[i]) > 8  # other offsets, more than 2 frames off the best
    rest = curve[away & ~np.isnan(curve)]
    spread = float(np.std(rest)) if len(rest) > 1 else 1.0
    confidence = float((curve[i] - np.max(rest)) / max(spread, 1e-6)) if len(rest) else 0.0
    return Sync(float(refined * HOP_S * 1000), max(confidence, 0.0),
                np.stack([lags * HOP_S * 1000, curve], 1))  # fmt: skip


def _parabola(y: np.ndarray, i: int) -> float:
    if 0 < i < len(y) - 1 and np.isfinite(y[i - 1 : i + 2]).all():
        a, b, c = y[i - 1], y[i], y[i + 1]
        den = a - 2 * b + c
        return float(0.5 * (a - c) / den) if den < 0 else 0.0
    return 0.0


LOW_CONFIDENCE = 0.5  # below: the best offset hardly stands out of the others


def measure(mouth, samples: np.ndarray, sample_rate: int, model: SyncModel | None = None) -> Sync:
    """The sound's offset against the lips of `mouth` (a mouth.Mouth on the video's clock),
    for the whole take and per segment of SEGMENT_S; a low confidence is said in words."""
    lips = lip_windows(mouth)
    sound = sound_windows(samples, sample_rate)
    v, a = (model or SyncModel.shipped()).embed(lips, sound)
    hops = np.round(np.asarray(mouth.times) / HOP_S).astype(int)
    found = best_offset(v, a, hops)
    found.reason = _reason(found, mouth, samples)
    found.segments = _segments(v, a, hops, np.asarray(mouth.times))
    return found


def _segments(v: np.ndarray, a: np.ndarray, hops: np.ndarray, times: np.ndarray) -> list[dict]:
    """The offset per SEGMENT_S of a take at least 1.5 segments long (a short tail joins the
    segment before it), so a sound that slides against the picture shows."""
    step = int(round(SEGMENT_S / float(np.median(np.diff(times))))) if len(times) > 1 else 0
    if not step or len(times) < 1.5 * step:
        return []
    starts = list(range(0, len(times) - step // 2, step))
    ends = starts[1:] + [len(times)]
    out = []
    for s, e in zip(starts, ends):
        part = best_offset(v[s:e], a, hops[s:e])
        out.append({"start": round(float(times[s]), 2), "end": round(float(times[e - 1]), 2),
                    "offset_ms": round(part.offset_ms, 1), "confidence": round(part.confidence, 2)})  # fmt: skip
    return out


def _reason(found: Sync, mouth, samples: np.ndarray) -> str:
    if found.confidence >= LOW_CONFIDENCE:
        return ""
    if np.mean(np.asarray(mouth.valid, bool)) < 0.5:
        return "the face is missing from most frames"
    loud = np.sqrt(np.mean(np.square(np.asarray(samples, float)))) if len(samples) else 0.0
    if loud < 1e-3:
        return "the sound is silent"
    return ("no offset stands out: the lips may not be speaking what is heard (music, another "
            "speaker, a voice-over), or the take is too short")  # fmt: skip
