"""A/V sync on speakers the sync model never saw, on clips as they are and with the sound
moved by known amounts. (The loudness correlation it replaced, measured the same way before
its removal: 34-48% of s4's clips within 40 ms against the model's 86-96%; see issue 16's note.)

    .venv/bin/python benchmarks/video_sync.py NAME=DS [NAME=DS ...]

DS: folders `lipsync dataset build` wrote (clips/<id>/frames.npz: the tracked lips;
audio.wav: the clip's sound). GRID is recorded in sync, so a clip's true offset is 0, and with
the sound started `shift` ms later (silence first) or earlier (its start cut) the true offset is
`shift`: the same samples a remux with a delayed audio stream gives. For each method and
shift: the share of clips found within 40 ms (1 frame at 25 fps) and 80 ms (2 frames), and the
median error; then the speed of each as x realtime.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.lipread_grid import dataset_clips  # noqa: E402
from bridge_server.media.audio import load_audio, shifted  # noqa: E402
from bridge_server.mouth.sync import SyncModel, measure  # noqa: E402

SHIFTS_MS = (-400, -200, -80, 0, 80, 200, 400)


def clips(ds: Path):
    """(id, mouth, sound) of each usable clip of a dataset folder."""
    for clip_id, _, mouth, _ in dataset_clips(ds):
        yield clip_id, mouth, load_audio(ds / "clips" / clip_id / "audio.wav")


def model(mouth, sound, _model=SyncModel.shipped()) -> float:
    return measure(mouth, sound.samples, sound.sample_rate, _model).offset_ms


def main(argv: list[str]) -> int:
    methods = {"sync model": model}
    print("| set | method | shift ms | clips | within 40 ms | within 80 ms | median error ms |")
    print("|---|---|---|---|---|---|---|")
    seconds = dict.fromkeys(methods, 0.0)
    audio_s = 0.0
    for item in argv:
        name, ds = item.split("=", 1)
        found = {(m, s): [] for m in methods for s in SHIFTS_MS}
        for _, mouth, sound in clips(Path(ds).expanduser()):
            audio_s += len(SHIFTS_MS) * sound.duration
            for shift in SHIFTS_MS:
                moved = shifted(sound, shift / 1000)
                for m, estimate in methods.items():
                    began = time.perf_counter()
                    found[m, shift].append(estimate(mouth, moved) - shift)
                    seconds[m] += time.perf_counter() - began
        for (m, shift), errors in found.items():
            e = np.abs(errors)
            print(f"| {name} | {m} | {shift:+d} | {len(e)} | {np.mean(e <= 40):.0%} | "
                  f"{np.mean(e <= 80):.0%} | {np.median(e):.0f} |", flush=True)  # fmt: skip
    for m, s in seconds.items():
        print(f"\n{m}: {audio_s / max(s, 1e-9):.0f}x realtime (lips already tracked)", end="")
    size = SyncModel.shipped().path.stat().st_size
    print(f"\nsync model: {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
