"""Time to key a 60 s line onto a 15-shape-key rig, bulk (keyframes.write_line) against a
keyframe_insert loop.

    .venv/bin/python benchmarks/blender_keys.py                       # the bpy module
    blender -b --factory-startup --python benchmarks/blender_keys.py  # a Blender binary

Rig: a mesh with the 15 VRChat viseme shape keys. Curves: dense (a key every frame per channel)
and realistic (what `lipsync say` makes of the Harvard sentences at that fps, cut to 60 s;
oculus15 channel X is written to vrc.v_x). "first" writes into a new action, "re-bake" writes
the same line again over it (best of 3 each) (its range is replaced); the keyframe_insert loop writes the same
keys into a new action, one key at a time.
"""

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402

from blender_addon import keyframes  # noqa: E402

VISEMES = "sil PP FF TH DD kk CH SS nn RR aa E ih oh ou".split()
SECONDS = 60.0


def rig():
    """A fresh scene with a one-triangle mesh carrying the 15 VRChat viseme shape keys."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    mesh = bpy.data.meshes.new("Rig")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new("Rig", mesh)
    bpy.context.scene.collection.objects.link(obj)
    for name in ["Basis", *(f"vrc.v_{v.lower()}" for v in VISEMES)]:
        obj.shape_key_add(name=name)
    return obj


def dense(fps):
    """A key every frame on every channel for 60 s."""
    n = int(SECONDS * fps) + 1
    return [
        {
            "channel": f"vrc.v_{v.lower()}",
            "keys": [[i / fps, 0.5 + 0.5 * math.sin(i * 0.1 + c)] for i in range(n)],
            "interpolation": "linear",
        }
        for c, v in enumerate(VISEMES)
    ]


def realistic(fps, folder: Path):
    """`lipsync say` of the Harvard sentences (twice, to pass 60 s), cut to 60 s."""
    text = folder / "harvard.txt"
    text.write_text((ROOT / "tests" / "data" / "harvard.txt").read_text() * 2)
    out = folder / f"line{fps}.json"
    lipsync = ROOT / ".venv" / "bin" / "lipsync"
    subprocess.run(
        [str(lipsync), "say", "--text-file", str(text), "--timeline", str(out)]
        + ["--fps", str(fps), "-q"],
        check=True,
    )
    curves = json.loads(out.read_text())["curves"]
    return [
        {
            "channel": f"vrc.v_{c['channel'].lower()}",
            "keys": [k for k in c["keys"] if k[0] <= SECONDS],
            "interpolation": c["interpolation"],
        }
        for c in curves
    ]


def bulk(curves, fps, repeats=3):
    """Best seconds of `repeats` for a first write and for a re-bake of the same line."""
    first, rebake = [], []
    for _ in range(repeats):
        obj = rig()
        for times in (first, rebake):
            began = time.perf_counter()
            keyframes.write_line(obj, curves, fps=fps, action_name="Line")
            times.append(time.perf_counter() - began)
    return min(first), min(rebake)


def insert_loop(curves, fps):
    """Seconds for the same keys with keyframe_insert, one key at a time."""
    blocks = rig().data.shape_keys.key_blocks
    began = time.perf_counter()
    for curve in curves:
        block = blocks[curve["channel"]]
        for t, w in curve["keys"]:
            block.value = w
            block.keyframe_insert("value", frame=t * fps)
    return time.perf_counter() - began


def row(name, fps, curves):
    keys = sum(len(c["keys"]) for c in curves)
    first, rebake = bulk(curves, fps)
    loop = insert_loop(curves, fps)
    return (
        f"| {name} | {fps} | {keys} | {first * 1000:.0f} ms | {rebake * 1000:.0f} ms "
        f"| {loop:.2f} s | {loop / first:.0f}x |"
    )


def main():
    print(f"Blender {bpy.app.version_string}, 60 s line, 15 channels\n")
    print("| curves | fps | keys | bulk, first | bulk, re-bake | keyframe_insert loop | x faster |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for fps in (24, 30, 60):
            print(row("dense", fps, dense(fps)), flush=True)
            print(row("realistic", fps, realistic(fps, Path(tmp))), flush=True)


main()
