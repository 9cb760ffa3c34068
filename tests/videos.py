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


def late_sound(src: Path, dst: Path, seconds: float, rate: int = 44100) -> Path:
    """`src` (picture copied) with its sound `seconds` late in the samples themselves (silence
    first, 16-bit PCM): late in every player, Blender's sound strips too, which play a
    container's delayed sound stream from its first sample."""
    from bridge_server.media.audio import load_audio, shifted

    sound = shifted(load_audio(src, sample_rate=rate), seconds).samples
    pcm = (np.clip(sound, -1.0, 1.0) * 32767).astype(np.int16)[None, :]
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        aout = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        for packet in inp.demux(vin):
            if packet.dts is not None:
                packet.stream = vout
                out.mux(packet)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        out.mux(aout.encode(frame))
        out.mux(aout.encode())
    return dst
