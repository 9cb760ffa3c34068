"""Seconds <-> frames: the one place that knows how the timeline's seconds land on frames."""

SNAP = 1e-3  # frames


def scene_fps(scene) -> float:
    """The scene's true frame rate: fps / fps_base, so 30 / 1.001 gives 29.97..."""
    return scene.render.fps / scene.render.fps_base


def to_frame(seconds: float, fps: float, offset_frames: float = 0.0) -> float:
    """Frame (sub-frames kept) at which `seconds` into a line falls when the line starts at
    `offset_frames`. Within SNAP of a whole frame it is that frame: the timeline's seconds are
    rounded to microseconds, and 0.033333 s at 30 fps should key frame 1, not 0.99999."""
    frame = offset_frames + seconds * fps
    whole = round(frame)
    return float(whole) if abs(frame - whole) < SNAP else frame


def to_seconds(frame: float, fps: float, offset_frames: float = 0.0) -> float:
    """Seconds into a line that starts at `offset_frames`, for `frame`: the inverse of to_frame."""
    return (frame - offset_frames) / fps
