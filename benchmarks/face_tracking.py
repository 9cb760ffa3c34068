"""Face tracking speed against decoding alone, for both mediapipe models, at two frame sizes.

    .venv/bin/python benchmarks/face_tracking.py [--repeat N]

The four GRID clips (360x288, 25 fps, 75 frames each) as they are, and the same clips scaled
to 720 lines and centred on a 1280x720 canvas (written once with PyAV into a temporary folder,
so the face keeps its shape), and that 720p copy tracked with max_side=640. Per row:
- decode fps: `video.iter_frames` alone (demux, decode, RGB conversion, scaling);
- track fps: `face.track` (decode included, and the model's start per clip, as a user gets it);
- ratio: decode fps / track fps, how much tracking costs over decoding;
- start ms: creating and closing the model once (already in track fps);
- cores: process CPU time / wall time while tracking (mediapipe's own threads).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from functools import partial
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge_server.engines import face  # noqa: E402
from bridge_server.media import video  # noqa: E402

GRID = sorted((ROOT.parent / "shared" / "data" / "grid" / "videos").glob("*.mpg"))


def upscale(clip: Path, out: Path, size=(1280, 720)) -> Path:
    """The clip scaled to the canvas height, centred on a black canvas, near-lossless H.264."""
    width, height = size
    with av.open(str(out), "w") as sink:
        stream = sink.add_stream("libx264", rate=25, options={"crf": "12", "preset": "fast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 25)
        for i, (_, image) in enumerate(video.iter_frames(clip)):
            inner = round(image.shape[1] * height / image.shape[0]) // 2 * 2
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            canvas = np.zeros((height, width, 3), np.uint8)
            left = (width - inner) // 2
            canvas[:, left : left + inner] = frame.to_ndarray(
                width=inner, height=height, format="rgb24", interpolation="BICUBIC"
            )
            out_frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            out_frame.pts = i
            sink.mux(stream.encode(out_frame))
        sink.mux(stream.encode())
    return out


def timed(work, repeat: int) -> tuple[float, float, int]:
    """Best wall seconds of `repeat` runs, CPU seconds of that run, and what work returned."""
    best = (float("inf"), 0.0, 0)
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best = min(best, (wall, cpu, result))
    return best


def decode(clips: list[Path], max_side: int | None) -> int:
    return sum(1 for clip in clips for _ in video.iter_frames(clip, max_side=max_side))


def track(clips: list[Path], model: str, max_side: int | None) -> int:
    found = 0
    for clip in clips:
        tracking = face.track(clip, model=model, max_side=max_side)
        found += int((tracking.faces > 0).sum())
    return found


def start_ms(model: str) -> float:
    wall = time.perf_counter()
    face._open(model).close()
    return (time.perf_counter() - wall) * 1000


def rows(sets: list[tuple[str, list[Path], int | None]], repeat: int) -> list[str]:
    out = []
    frames = sum(1 for _ in video.iter_frames(GRID[0])) * len(GRID)
    for label, clips, max_side in sets:
        wall, _, _ = timed(partial(decode, clips, max_side), repeat)
        decode_fps = frames / wall
        for model in ("landmarker", "facemesh"):
            wall, cpu, found = timed(partial(track, clips, model, max_side), repeat)
            out.append(
                f"| {label} | {model} | {decode_fps:.0f} | {frames / wall:.0f} | "
                f"{decode_fps * wall / frames:.1f} | {start_ms(model):.0f} | {cpu / wall:.2f} | "
                f"{found}/{frames} |"
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the fastest is kept")
    a = ap.parse_args()
    face.track(GRID[0], model="facemesh")  # import mediapipe (~3 s) outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        big = [upscale(c, Path(tmp) / f"{c.stem}.mp4") for c in GRID]
        sets = [
            ("360x288", GRID, None),
            ("1280x720", big, None),
            ("1280x720 max_side=640", big, 640),
        ]
        table = rows(sets, a.repeat)
    print(
        f"{len(GRID)} GRID clips, 75 frames each; best of {a.repeat}\n\n"
        "| frames | model | decode fps | track fps | ratio | start ms | cores | faces |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|"
    )
    print("\n".join(table))


if __name__ == "__main__":
    main()
