"""A tracked face joins a timeline: mouth controls and lip landmarks recorded, the curves made
from the sound's phonemes and the face's mouth together (mouth.fuse), the A/V offset checked."""

from __future__ import annotations

import logging

import numpy as np

from ..core.curves import CurveSettings, channel_weights, curves_from, frame_times, viseme_weights
from ..core.errors import EngineUnavailable
from ..core.timeline import Landmarks, Timeline
from ..core.visemes import load_set
from .controls import closed_channels, fuse, lip_indices, mesh, visemes_from_controls
from .sync import LOW_CONFIDENCE, measure

CONTROL_ERROR = 0.005  # keyframe reduction of the recorded controls
log = logging.getLogger(__name__)
SYNC_WARN_MS = 60.0  # beyond this (when sure), say the picture and the sound are out of sync
SMALL_FACE_PX = 40.0  # eye corners closer than this: the lips are a few pixels tall


def add_video(timeline: Timeline, tracked, mouth, info, weight: float,
              settings: CurveSettings, sound=None) -> None:  # fmt: skip
    """Record the face in `timeline` and remake its curves from sound and face."""
    vset = load_set(timeline.viseme_set)
    times = frame_times(timeline.fps, timeline.duration)
    usable = _at(times, mouth.times, mouth.valid.astype(float)) > 0.5
    video = visemes_from_controls(
        {k: _at(times, mouth.times, v) for k, v in mouth.controls.items()},
        vset,
        blendshapes=_rows_at(times, tracked.times, tracked.blendshapes),
        blendshape_names=tracked.blendshape_names,
    )
    heard = (sound.samples, sound.sample_rate) if sound is not None else None
    if not timeline.phonemes:  # no sound: the face alone
        values = video
    elif settings.holds:  # one held shape at a time comes from the phonemes only
        values = channel_weights(timeline.phonemes, vset, times, settings, heard)
        timeline.warn("video", "holds mode keeps the sound's shapes; the face is recorded only")
    else:
        audio = channel_weights(timeline.phonemes, vset, times, settings, heard)
        closure = viseme_weights(timeline.phonemes, vset, times, settings)[vset.closed]
        values = fuse(audio, video, _at(times, mouth.times, mouth.amplitude()), weight,
                      closure=closure, closed=closed_channels(vset), usable=usable)  # fmt: skip
    timeline.curves = curves_from(times, values, settings)
    timeline.mouth_controls = curves_from(
        mouth.times, mouth.controls, CurveSettings(max_error=CONTROL_ERROR)
    )
    timeline.landmarks = _landmarks(tracked, info.fps)
    timeline.source["video"] = _summary(tracked, mouth, info, weight)
    _warn(timeline, tracked, mouth)
    if sound is not None and mouth.valid.any():
        _check_sync(timeline, mouth, sound)


def _at(times: np.ndarray, at: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values measured at the video's frame times, resampled to the animation's frames."""
    return np.interp(times, at, values) if len(at) else np.zeros(len(times))


def _rows_at(times, at, rows):
    if rows is None:
        return None
    filled = np.nan_to_num(rows, nan=0.0)
    return np.stack([_at(times, at, filled[:, j]) for j in range(rows.shape[1])], axis=1)


def _landmarks(tracked, fps: float) -> Landmarks:
    """The 40 lip points per video frame, in pixels of the tracked frames ([] without a face)."""
    lips = tracked.points[:, lip_indices(), :2]
    frames = [[] if np.isnan(f).any() else np.round(f, 1).tolist() for f in lips]
    return Landmarks(fps=fps, names=[f"lip{i}" for i in lip_indices()], frames=frames)


def _summary(tracked, mouth, info, weight: float) -> dict:
    n = len(tracked.times)
    return {
        "width": info.width,
        "height": info.height,
        "fps": round(info.fps, 3),
        "frames": n,
        "face_found": round(float((tracked.faces > 0).mean()) if n else 0.0, 4),
        "model": tracked.model,
        "weight": weight,
    }


def _warn(timeline: Timeline, tracked, mouth) -> None:
    n = max(1, len(tracked.times))
    missing = int((tracked.faces == 0).sum())
    if missing:
        timeline.warn("video", f"no face in {missing} of {n} frames; the sound alone drives "
                      "the mouth there (short gaps are filled in)")  # fmt: skip
    several = int((tracked.faces > 1).sum())
    if several:
        timeline.warn("video", f"{several} frames show more than one face; the largest was "
                      "followed: crop the video to the speaker if that is wrong")  # fmt: skip
    turned = int(mouth.flags.get("turned_away", np.zeros(0)).sum())
    if turned:
        timeline.warn("video", f"the face turns away in {turned} frames; the sound drives them")
    dark = tracked.dark()
    if dark:
        timeline.warn("video", f"the picture is dark (mean brightness {dark:.0f} of 255); "
                      "light the face for steadier tracking")  # fmt: skip
    eyes = _eye_distance(tracked.points)
    if eyes < SMALL_FACE_PX:
        timeline.warn("video", f"the face is small ({eyes:.0f} pixels between the eyes); "
                      "film closer or at a higher resolution for finer mouth shapes")  # fmt: skip
    for message in tracked.warnings:
        timeline.warn("video", message)


def _eye_distance(points: np.ndarray) -> float:
    """The median distance between the outer eye corners, in pixels (inf without a face)."""
    right, left = mesh()["eye_outer"]["right"], mesh()["eye_outer"]["left"]
    d = np.linalg.norm(points[:, right, :2] - points[:, left, :2], axis=1)
    return float(np.nanmedian(d)) if not np.isnan(d).all() else float("inf")


def _check_sync(timeline: Timeline, mouth, sound) -> None:
    try:
        found = measure(mouth, sound.samples, sound.sample_rate)
    except EngineUnavailable as e:  # the take still animates; only the check is missing
        log.warning("no A/V sync check: %s", e)
        return
    video = timeline.source["video"]
    video["av_offset_ms"], video["av_confidence"] = (
        round(found.offset_ms, 1),
        round(found.confidence, 2),
    )
    if abs(found.offset_ms) > SYNC_WARN_MS and found.confidence >= LOW_CONFIDENCE:
        late = "late" if found.offset_ms > 0 else "early"
        timeline.warn("video", f"the sound is about {abs(found.offset_ms):.0f} ms {late} against "
                      "the picture; the animation follows the sound ('lipsync sync' measures it, --fix-sync moves it)")  # fmt: skip
