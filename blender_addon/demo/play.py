"""Play a timeline on the demo head and render a contact sheet of its mouths.

    python blender_addon/demo/play.py -- --timeline line.json --out sheet.png        # the bpy module
    blender -b --factory-startup --python-exit-code 1 -P blender_addon/demo/play.py -- \\
        --timeline line.json --out sheet.png [--audio line.wav] [--blend line.blend] [--preset P]

An empty scene, a demo head with the shape keys the timeline's curves are named after (the
viseme set's channels, or a rig preset's names: the first preset of that set that has them all),
the curves keyed on (keyframes.write_line, the line's time 0 at frame 1), and a sheet with a cell
per viseme of the line (at most 24) at its middle frame, labelled with time, phoneme and viseme.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script (-P or python play.py): the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bpy  # noqa: E402

from blender_addon import compat  # noqa: E402
from blender_addon.demo import contact_sheet  # noqa: E402
from blender_addon.demo import head as demo_head  # noqa: E402
from blender_addon.keyframes import write_line  # noqa: E402
from blender_addon.timeline import TimelineError, load  # noqa: E402

MAX_CELLS = 24
FIRST_FRAME = 1


def main(argv: list[str]) -> int:
    args = _parse(argv)
    try:
        timeline = load(args.timeline)
    except TimelineError as e:
        print(e, file=sys.stderr)
        return 2
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    fps = float(timeline["fps"])
    _set_fps(scene, fps)
    viseme_set, shape_keys = head_keys(timeline, args.preset)
    head = demo_head.build_demo_head(shape_keys, viseme_set)
    demo_head.frame_head(scene, head)
    written = write_line(
        head, timeline["curves"], fps=fps, frame_offset=FIRST_FRAME, action_name="LipsyncDemo"
    )
    if written.missing:
        print(f"no shape key for: {', '.join(written.missing)}", file=sys.stderr)
    scene.frame_start = FIRST_FRAME
    scene.frame_end = max(FIRST_FRAME + 1, math.ceil(FIRST_FRAME + timeline["duration"] * fps))
    if args.audio:
        _add_sound(scene, args.audio)
    started = time.perf_counter()
    cells = sheet_cells(timeline, fps)
    sheet = contact_sheet.render_contact_sheet(scene, head, cells, args.out, size=args.size)
    print(
        f"{written.keys} keys on {len(written.channels)} shape keys; {sheet.cells} cells "
        f"({sheet.width}x{sheet.height}) in {time.perf_counter() - started:.1f} s, "
        f"{sheet.seconds_per_cell:.3f} s per cell -> {sheet.path}"
    )
    if args.blend:
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(args.blend).resolve()))
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="play.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeline", required=True, help="timeline JSON (lipsync say/bake)")
    parser.add_argument("--out", required=True, help="contact sheet PNG")
    parser.add_argument("--audio", help="the line's sound, added as a sound strip at frame 1")
    parser.add_argument("--blend", help="also save the scene as this .blend")
    parser.add_argument("--preset", help="rig preset whose shape keys the curves are named after")
    parser.add_argument("--size", type=int, default=192, help="cell size in pixels")
    return parser.parse_args(argv)


def head_keys(timeline: dict, preset: str | None = None) -> tuple[str, dict[str, str]]:
    """(viseme set, channel -> shape key) of a head whose shape keys the curves drive."""
    if preset:
        found = demo_head.load_preset(preset)
        return found["viseme_set"], found["shape_keys"]
    viseme_set = timeline["viseme_set"]
    named = {c["channel"] for c in timeline["curves"]}
    channels = demo_head.mouth_shapes().get(viseme_set, {})
    if named <= set(channels):
        return viseme_set, {c: c for c in channels}
    for name in demo_head.preset_names():
        found = demo_head.load_preset(name)
        if found["viseme_set"] == viseme_set and named <= set(found["shape_keys"].values()):
            return viseme_set, found["shape_keys"]
    raise SystemExit(
        f"the curves ({', '.join(sorted(named))}) are neither {viseme_set} channels nor the "
        "shape keys of a rig preset: name the preset with --preset"
    )


def sheet_cells(timeline: dict, fps: float) -> list[tuple[float, str]]:
    """(frame, "t=1.23s  p  MBP") per viseme cue (at most MAX_CELLS, evenly chosen): the cue's
    middle frame. Cues are held on whole frames, so a whole frame shows the cue's mouth fully."""
    cues = timeline["visemes"]
    if len(cues) > MAX_CELLS:
        cues = [cues[round(i * (len(cues) - 1) / (MAX_CELLS - 1))] for i in range(MAX_CELLS)]
    cells = []
    for cue in cues:
        first = math.ceil(cue["start"] * fps - 1e-6)
        last = max(first, math.ceil(cue["end"] * fps - 1e-6) - 1)
        frame = min(last, max(first, math.floor((cue["start"] + cue["end"]) / 2 * fps)))
        t = frame / fps
        phone = _phoneme_at(timeline["phonemes"], t)
        cells.append((FIRST_FRAME + frame, f"t={t:.2f}s  {phone}  {cue['viseme']}"))
    return cells


def _phoneme_at(phonemes: list[dict], t: float) -> str:
    """The phoneme sounding at `t`, else the nearest one ("-" for none)."""
    if not phonemes:
        return "-"
    for p in phonemes:
        if p["start"] <= t < p["end"]:
            return p["ipa"]
    return min(phonemes, key=lambda p: min(abs(p["start"] - t), abs(p["end"] - t)))["ipa"]


def _set_fps(scene, fps: float) -> None:
    """29.97 as 30 / 1.001, as Blender spells it."""
    scene.render.fps = max(1, round(fps))
    scene.render.fps_base = scene.render.fps / fps


def _add_sound(scene, path: str) -> None:
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = getattr(editor, compat.STRIPS_ATTR)
    strips.new_sound("line", str(Path(path).resolve()), channel=1, frame_start=FIRST_FRAME)


def _argv() -> list[str]:
    return sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]


if __name__ == "__main__":
    sys.exit(main(_argv()))
