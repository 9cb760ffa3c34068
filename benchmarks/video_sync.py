"""Reference video on the GRID clips: face found, mouth against speech, and the A/V offset.

    .venv/bin/python benchmarks/video_sync.py [--shifts -200,-100,-50,0,50,100,200]

For each clip in ../shared/data/grid/videos: the face is tracked (bridge_server.engines.face),
the mouth measured (bridge_server.mouth.controls.track_mouth), and the sound decoded. Prints:

- face: frames with a face found / frames;
- r: Pearson correlation of lips_apart with the speech loudness (dB per 10 ms, averaged to the
  video's frame period), at zero lag;
- offset as-is: the sync estimate (ms, + = the sound is late) on the clip as it is, and its
  confidence;
- then, with the sound shifted by each known amount (silence added or the start cut), the
  error of the estimate: estimate - shift (ms), and the same relative to the as-is estimate
  (the clip's own offset removed). Summary: mean absolute error over clips and shifts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge_server.engines import face  # noqa: E402
from bridge_server.media.audio import load_audio, shifted  # noqa: E402
from bridge_server.mouth.controls import speech_envelope, sync_offset, track_mouth  # noqa: E402

GRID = Path(__file__).resolve().parents[2] / "shared" / "data" / "grid" / "videos"


def correlation(times, lips, sound) -> float:
    et, env = speech_envelope(sound.samples, sound.sample_rate)
    period = float(np.median(np.diff(times)))
    env = np.convolve(
        env, np.ones(max(1, round(period / 0.01))) / max(1, round(period / 0.01)), "same"
    )
    return float(np.corrcoef(lips, np.interp(times, et, env))[0, 1])


def measure(clip: Path, shifts: list[int]) -> dict:
    tracked = face.track(clip)
    mouth = track_mouth(tracked.times, tracked.points)
    sound = load_audio(clip)
    lips = mouth.controls["lips_apart"]

    def offset(shift_ms: int):
        moved = shifted(sound, shift_ms / 1000)
        return sync_offset(mouth.times, lips, moved.samples, moved.sample_rate)

    base = offset(0)
    errors = {s: offset(s).offset_ms - s for s in shifts if s}
    return {
        "clip": clip.stem,
        "face": f"{int((tracked.faces > 0).sum())}/{len(tracked.times)}",
        "r": correlation(mouth.times, lips, sound),
        "offset": base.offset_ms,
        "confidence": base.confidence,
        "errors": errors,
        "relative": {s: e - base.offset_ms for s, e in errors.items()},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shifts", default="-200,-100,-50,0,50,100,200")
    shifts = [int(s) for s in p.parse_args().shifts.split(",")]
    rows = [measure(clip, shifts) for clip in sorted(GRID.glob("*.mpg"))]
    moved = [s for s in shifts if s]
    head = " | ".join(f"{s:+d}" for s in moved)
    print(f"| clip | face | r | offset as-is ms | confidence | error at shift {head} |")
    print("|---|---|---|---|---|" + "---|" * len(moved))
    for r in rows:
        errs = " | ".join(f"{r['errors'][s]:+.0f}" for s in moved)
        print(f"| {r['clip']} | {r['face']} | {r['r']:.2f} | {r['offset']:+.1f} "
              f"| {r['confidence']:.2f} | {errs} |")  # fmt: skip
    absolute = np.mean([abs(e) for r in rows for e in r["errors"].values()])
    relative = np.mean([abs(e) for r in rows for e in r["relative"].values()])
    worst = max(abs(e) for r in rows for e in r["errors"].values())
    print(f"\nmean |error| {absolute:.1f} ms (worst {worst:.1f}); with each clip's own offset "
          f"removed {relative:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
