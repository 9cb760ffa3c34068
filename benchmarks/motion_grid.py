"""Learned mouth motion against the rules, measured on real faces the model never saw.

    .venv/bin/python benchmarks/motion_grid.py NAME=DS [NAME=DS ...] [--bake N]

Each DS is a folder `lipsync dataset build` wrote (tracked mouth controls per video frame, the
sound's aligned phonemes); NAME=DS@test keeps only the test split of the speaker the model
trained on (models/train_motion.py's split). Per set, for the shipped model
(models/motion.onnx) and the rules on the same phonemes: mean Pearson r per clip between the
product's ARKit channel and the tracked mouth (jawOpen / jaw_open, mouthLowerDownLeft /
lips_apart, mouthFunnel + mouthPucker / funnel + pucker) and the p/b/m closures that shut.

`--bake N` also runs the whole product on the first N clips of each set, as a user would:
`pipeline.bake(video, text=transcript, viseme_set="arkit", fps=25, motion=...)` (the clip's
sound aligned again, keys reduced), jawOpen sampled at the video's frames against the tracked
jaw_open. `--visemes SET ...` measures viseme rigs: what a rig of SET shows (each channel's
weight x its viseme's control prototype, data/viseme_controls.json, summed) against the tracked
mouth, for the learned motion (its controls mixed into the set's shapes by
data/viseme_mapping.json) and the rules. Speed: the model alone (features + onnxruntime) and the rules' curves over every
line, as x realtime; the model's size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "models")]

import train_motion as TM  # noqa: E402  (models/: data, evaluation)

from bridge_server.core.curves import CurveSettings, channel_weights  # noqa: E402
from bridge_server.core.visemes import load_set  # noqa: E402
from bridge_server.formats.plot import curves_png  # noqa: E402
from bridge_server.mouth import motion  # noqa: E402
from bridge_server.mouth.controls import CONTROLS, prototypes  # noqa: E402
from bridge_server.pipeline import bake  # noqa: E402


def lines_of(ds: str):
    path = ds.removesuffix("@test")
    lines = TM.load(path)
    return [x for x in lines if TM.LR.split_of(x.id) == "test"] if ds.endswith("@test") else lines


def baked_jaw_r(ds: str, lines, how: str, keys: list | None = None) -> list[float]:
    """r of the baked jawOpen (the whole product on the clip's video) with the tracked jaw;
    `keys` gathers the keys per second of every curve baked."""
    folder = Path(ds.removesuffix("@test")).expanduser()
    videos = {}
    for row in (folder / "manifest.jsonl").read_text().splitlines():
        item = json.loads(row)
        videos[item["id"]] = (item["video"], item["transcript"])
    found = []
    for line in lines:
        video, text = videos[line.id]
        timeline = bake(video, text=text, viseme_set="arkit", fps=25,
                        settings=CurveSettings(motion=how))  # fmt: skip
        jaw_keys = np.array(next(c.keys for c in timeline.curves if c.channel == "jawOpen"))
        jaw = np.interp(line.times, jaw_keys[:, 0], jaw_keys[:, 1])
        if keys is not None:
            moving = [c for c in timeline.curves if len(c.keys) > 2]  # flat curves need 2
            keys += [len(c.keys) / timeline.duration for c in moving]
        v = line.valid
        found.append(TM.pearson(jaw[v], line.controls[v, CONTROLS.index("jaw_open")]))
    return found


def rig_shows(channels: dict, name: str) -> np.ndarray:
    """(N, 10) the controls a rig of the set shows: each channel's weight x the prototype of
    the viseme that is that channel alone."""
    vset, shown = load_set(name), 0.0
    for v, p in prototypes(name).items():
        (ch,) = vset.visemes[v].channels if len(vset.visemes[v].channels) == 1 else (None,)
        if ch is not None and vset.visemes[v].channels[ch] == 1.0:
            shown = shown + np.outer(channels[ch], p)
    return shown


def rig_r(lines, name: str) -> dict[str, tuple[float, float]]:
    """Mean r per clip, learned and rules, of the jaw and the rounding a SET rig shows."""
    vset, model, found = load_set(name), motion.MotionModel.shipped(), {}
    measures = {"jaw": ["jaw_open"], "rounding": ["funnel", "pucker"]}
    for how in ("learned", "rules"):
        r = {k: [] for k in measures}
        for x in lines:
            ch = (channel_weights(x.phonemes, vset, x.times, CurveSettings()) if how == "rules"
                  else motion.learned_channels(x.phonemes, vset, x.times,
                                               CurveSettings(motion="learned"), x.sound, model))  # fmt: skip
            shown, v = rig_shows(ch, name), x.valid
            for k, cols in measures.items():
                idx = [CONTROLS.index(c) for c in cols]
                r[k].append(TM.pearson(shown[v][:, idx].sum(1), x.controls[v][:, idx].sum(1)))
        found[how] = {k: float(np.nanmean(v)) for k, v in r.items()}
    return found


def jaw_png(line, name: str) -> bytes:
    """The tracked jaw of one clip with the learned and the rules' jawOpen, r in the legend."""
    tracked = line.controls[:, CONTROLS.index("jaw_open")]
    drawn = {"tracked jaw_open (the video)": tracked}
    for how in ("learned", "rules"):
        jaw = TM.curves(line, how, motion.MotionModel.shipped())["jawOpen"]
        r = TM.pearson(jaw[line.valid], tracked[line.valid])
        drawn[f"{how} jawOpen (r = {r:.2f})"] = jaw
    title = f"{name} clip {line.id} (speaker {line.speaker}): jaw from the sound and its phonemes"
    return curves_png(line.times, drawn, title, "0..1")


def speed(lines) -> tuple[float, float]:
    """x realtime of the learned controls (the sound's bands, features, model) and of the
    rules' curves, over every line at 25 fps."""
    seconds = sum(float(x.times[-1]) for x in lines)
    model, arkit = motion.MotionModel.shipped(), load_set("arkit")
    began = time.perf_counter()
    for x in lines:  # the sound's bands, the features and the model
        motion.controls_at(x.phonemes, x.times, model, x.sound)
    learned = seconds / (time.perf_counter() - began)
    began = time.perf_counter()
    for x in lines:
        channel_weights(x.phonemes, arkit, x.times, CurveSettings())
    return learned, seconds / (time.perf_counter() - began)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sets", nargs="+", metavar="NAME=DS")
    p.add_argument("--bake", type=int, default=0, metavar="N", help="bake N clips of each set")
    p.add_argument("--visemes", nargs="*", default=[], metavar="SET",
                   help="measure what rigs of these viseme sets show")  # fmt: skip
    p.add_argument("--plot", metavar="PNG", help="draw the first set's first clip: both jaws and "
                   "the tracked one")  # fmt: skip
    args = p.parse_args()
    model = motion.MotionModel.shipped()
    print(TM.HEADER)
    every, baked, rigs = [], [], []
    for item in args.sets:
        name, ds = item.split("=", 1)
        lines = lines_of(ds)
        every += lines
        print("\n".join(TM._rows(name, TM.evaluate(model, lines), len(lines))), flush=True)
        if args.bake:
            chosen, keys = lines[: args.bake], {"learned": [], "rules": []}
            r = {how: np.nanmean(baked_jaw_r(ds, chosen, how, keys[how])) for how in keys}
            baked.append(f"| {name} | {len(chosen)} | {r['learned']:.3f} | {r['rules']:.3f} | "
                         f"{np.mean(keys['learned']):.1f} | {np.mean(keys['rules']):.1f} |")  # fmt: skip
        for vs in args.visemes:
            r = rig_r(lines, vs)
            rigs.append(f"| {name} | {vs} | {len(lines)} | {r['learned']['jaw']:.3f} | "
                        f"{r['rules']['jaw']:.3f} | {r['learned']['rounding']:.3f} | "
                        f"{r['rules']['rounding']:.3f} |")  # fmt: skip
    if rigs:
        print("\nViseme rigs: the controls the rig's shapes show against the tracked mouth, mean r")
        print("per clip (jaw_open; funnel + pucker):\n")
        print("| set | visemes | clips | jaw r learned | jaw r rules | rounding r learned "
              "| rounding r rules |\n|---|---|---|---|---|---|---|")  # fmt: skip
        print("\n".join(rigs))
    if baked:
        print("\nThe whole product (`bake VIDEO --text ... --visemes arkit --fps 25 --motion M`),")
        print("jawOpen against the tracked jaw_open, mean r per clip; keys per second of each")
        print("moving curve after the keyframe reduction (--max-error 0.01):\n")
        print("| set | clips | jaw r learned | jaw r rules | keys/s learned | keys/s rules |")
        print("|---|---|---|---|---|---|")
        print("\n".join(baked))
    if args.plot:
        name, ds = args.sets[0].split("=", 1)
        Path(args.plot).write_bytes(jaw_png(lines_of(ds)[0], name))
        print(f"\nwrote {args.plot}")
    learned, rules = speed(every)
    size = motion.SHIPPED.stat().st_size / 1024
    print(f"\nspeed over {len(every)} lines: the model alone {learned:,.0f}x realtime, the rules' "
          f"curves {rules:,.0f}x realtime; model {size:.0f} KB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
