"""Video in: RGB frames with their exact times (any file FFmpeg reads, via PyAV). No tracking here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError, require
from .audio import Source
from .open import open_media

INSTALL = "pip install av  (or ./setup.sh)"
FIX = "fix: give a video file (MP4, MOV, MKV, WEBM, AVI, MPG) with a face in it"


@dataclass
class VideoInfo:
    """What a video's headers (and its first frame) say; sizes as the frames are displayed."""

    width: int
    height: int
    fps: float  # average rate
    duration: float  # seconds
    frames: int | None  # from the header; None where the container does not count them
    has_audio: bool
    codec: str
    sound_delay: float = 0.0  # seconds the sound starts after the picture (negative: before)


def probe(source: Source, *, name: str = "") -> VideoInfo:
    """The video's size, rate, length and codec; decodes one frame to prove it can be read."""
    av = require("av", INSTALL)
    label = _label(source, name)
    with open_media(av, source, label, "video", FIX) as container:
        stream = _video_track(av, container, label)
        first = next(_decoded(av, container, stream, label), None)
        if first is None:
            raise _no_frames(label)
        height, width = _rgb(first, None).shape[:2]
        return VideoInfo(
            width=width,
            height=height,
            fps=_fps(stream),
            duration=_duration(container, stream),
            frames=stream.frames or None,
            has_audio=bool(container.streams.audio),
            codec=stream.codec_context.name,
            sound_delay=_sound_delay(container, stream),
        )


def iter_frames(
    source: Source,
    *,
    max_side: int | None = None,
    name: str = "",
    warnings: list[str] | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds from the stream's start, HxWx3 uint8 RGB) for every frame, in order.

    Times come from each frame's own pts, so variable frame rates keep their timing. Frames
    are turned upright as the file's rotation says (phone videos) and scaled down so neither
    side exceeds max_side. A file damaged midway yields the frames before the damage and adds
    a warning to `warnings` (when given).
    """
    av = require("av", INSTALL)
    label = _label(source, name)
    with open_media(av, source, label, "video", FIX) as container:
        stream = _video_track(av, container, label)
        stream.thread_type = "AUTO"  # frame threads: decoding ~2x faster, same frames
        start = stream.start_time or 0
        step = 1.0 / (_fps(stream) or 25.0)
        count = 0
        for frame in _decoded(av, container, stream, label, warnings):
            t = float((frame.pts - start) * stream.time_base) if frame.pts is not None else None
            yield (count * step if t is None else t), _rgb(frame, max_side)
            count += 1
        if not count:
            raise _no_frames(label)


def _sound_delay(container, picture) -> float:
    """Where the sound starts on the picture's clock: containers delay one track against the
    other by start times, and decoders hand out samples from the sound's own start."""
    if not container.streams.audio:
        return 0.0
    sound = container.streams.audio[0]

    def start(s):
        return float((s.start_time or 0) * s.time_base)

    return start(sound) - start(picture)


def _label(source: Source, name: str) -> str:
    if name:
        return name
    return "uploaded video" if isinstance(source, bytes) else Path(source).name


def _video_track(av, container, label: str):
    """The first video stream; sound-only files (cover art is no video) go to `lipsync bake`."""
    cover = av.stream.Disposition.attached_pic
    videos = [s for s in container.streams.video if not s.disposition & cover]
    if videos:
        return videos[0]
    if container.streams.audio:
        raise InputError(
            f"{label} has no video track, it has only sound: use `lipsync bake` for audio; {FIX}"
        )
    raise InputError(
        f"{label} has no video track (FFmpeg reads it as {container.format.long_name}); {FIX}"
    )


def _decoded(av, container, stream, label: str, warnings: list[str] | None = None):
    """Decoded frames; damage after the first frame ends them with a warning, before it is an
    error (as in audio.py: the frames before the damage keep their exact times)."""
    count = 0
    try:
        for frame in container.decode(stream):
            count += 1
            yield frame
    except av.FFmpegError as e:
        if not count:
            raise InputError(
                f"{label} is damaged: no frame of it decodes ({e.strerror}); "
                "fix: re-export or re-download the file"
            ) from None
        if warnings is not None:
            warnings.append(
                f"{label} cannot be decoded past frame {count} ({e.strerror}); only the frames "
                "before it are used; fix: re-export or re-download the file"
            )


def _no_frames(label: str) -> InputError:
    return InputError(
        f"{label} has a video track but no frame of it decodes; "
        "fix: re-export or re-download the file"
    )


def _rgb(frame, max_side: int | None) -> np.ndarray:
    """The frame as contiguous RGB (mediapipe refuses PyAV's padded rows), upright, scaled down
    in FFmpeg (swscale) when it is larger than max_side."""
    quarter = round((frame.rotation or 0) / 90) % 4
    width, height = frame.width, frame.height
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    image = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
    # The display matrix's angle is counter-clockwise, as np.rot90 turns.
    return np.ascontiguousarray(np.rot90(image, quarter) if quarter else image)


def _fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _duration(container, stream) -> float:
    if stream.duration is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / 1_000_000 if container.duration else 0.0  # AV_TIME_BASE units
