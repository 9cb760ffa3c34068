"""Small videos written with PyAV for the video and face tests."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .conftest import SHARED

GRID = sorted((SHARED / "grid" / "videos").glob("*.mpg"))
MS = Fraction(1, 1000)


def write_video(path: Path, images, times, *, fmt: str | None = None, rotation: int = 0) -> Path:
    """H.264 frames (RGB uint8, even sizes) at the given times in seconds (ms precision)."""
    images = list(images)
    height, width = images[0].shape[:2]
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = stream.time_base = MS
        if rotation:
            stream.set_display_rotation(rotation)
        for image, t in zip(images, times, strict=True):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), MS
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def grid_frames(index: int = 0) -> list[np.ndarray]:
    """The RGB frames of one GRID clip (360x288, 25 fps, 75 frames)."""
    with av.open(str(GRID[index])) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
