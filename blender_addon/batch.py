"""Batch baking: every recording in a folder onto one character, headless.

    blender -b scene.blend -P <add-on>/batch.py -- --object Head --audio lines/ --out baked.blend
    python <add-on>/batch.py --blend scene.blend --object Head --audio lines/ --out baked.blend

Each file becomes its own action named after it ("Head: line01"), kept with a fake user; with
--nla they are also laid one after another as NLA strips, with their sound in the sequencer
(a rerun lays them anew: one Lip Sync track, one strip per line). A script beside a recording
(line01.txt) is used for exact timing; what each line says is kept on its action and listed in
the summary (and --report). A bad file is named in the summary and the batch goes on; the exit
code is 1 when any file failed, and nothing is saved when none was baked.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
AUDIO = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aiff"}
OPTIONS = {o["name"]: o for o in json.loads((HERE / "options.json").read_text())["animation"]}
VIDEO = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg"}
NUMBERS = ("intensity", "smoothing", "lead", "max_error")  # the bridge's options, as in the panel


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="batch.py", description=__doc__.splitlines()[0])
    p.add_argument("--blend", help="open this .blend first (with the bpy module)")
    p.add_argument(
        "--object", required=True, help="the mesh with mouth shape keys, armature or 2D mouth"
    )
    p.add_argument("--audio", nargs="+", required=True, help="files or folders of recordings")
    p.add_argument("--out", help="save the result here (default: save over the opened .blend)")
    p.add_argument("--bridge", default="http://127.0.0.1:8765", help="the bridge's URL")
    p.add_argument("--token", default="", help="the bridge's token, if it has one")
    p.add_argument("--start", metavar="COMMAND", help="start the bridge with this command if down")
    p.add_argument("--nla", action="store_true", help="also lay the lines out as NLA strips")
    p.add_argument("--report", metavar="JSON", help="also write the summary here, with the words")
    p.add_argument("--gap", type=float, default=0.5, help="seconds between lines with --nla")
    p.add_argument("--visemes", default="AUTO", help="viseme set (default: the rig's)")
    p.add_argument("--engine", default="auto", help="auto, whisper, phoneloop, allosaurus")
    p.add_argument("--lang", default="", help="language, e.g. en; default: detected")
    for name in NUMBERS:
        o = OPTIONS[name]
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, type=float, default=o["default"], help=o["help"])
    p.add_argument("--holds", action="store_true", help=OPTIONS["holds"]["help"])
    p.add_argument("--rhubarb-rules", action="store_true", help=OPTIONS["rhubarb_rules"]["help"])
    p.add_argument("--motion", choices=OPTIONS["motion"]["choices"],
                   default=OPTIONS["motion"]["default"], help=OPTIONS["motion"]["help"])  # fmt: skip
    p.add_argument("--video-weight", type=float, default=0.5, help="videos: follow the face 0..1")
    return p.parse_args(argv)


def recordings(paths: list[str]) -> list[Path]:
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO | VIDEO)
        else:
            found.append(path)  # a missing file is reported in the summary
    return found


def main(argv: list[str]) -> int:
    a = parse(argv)
    import bpy

    addon = _addon()
    if a.blend:
        bpy.ops.wm.open_mainfile(filepath=a.blend)
    obj = bpy.data.objects.get(a.object)
    scene = bpy.context.scene
    bridge = addon.client.Bridge(a.bridge, a.token)
    bridge.start_hint = 'give --start "/path/to/.venv/bin/lipsync serve"'  # no panel here
    started = None
    try:
        addon.bake.check_target(_found(obj, a.object))
        started = _ensure_bridge(addon.client, bridge, a.start)
        rows = bake_all(addon, scene, obj, bridge, recordings(a.audio), a)
    except (addon.bake.BakeError, addon.client.BridgeError) as e:
        print(f"batch: {e}", file=sys.stderr)
        return 2
    finally:
        addon.client.stop_bridge(started)
    out = a.out or bpy.data.filepath
    if not any(not r["error"] for r in rows):
        out = ""  # nothing baked: the file stays as it was
    if out:
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(out).resolve()))
    print(summary(rows, out))
    if a.report:
        Path(a.report).write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    return 1 if any(r["error"] for r in rows) or not rows else 0


def bake_all(addon, scene, obj, bridge, files: list[Path], a) -> list[dict]:
    rows, offset = [], scene.frame_start
    for i, path in enumerate(files, 1):
        print(f"batch: [{i}/{len(files)}] {path.name}", flush=True)
        settings = _settings(a, path, offset - scene.frame_start)
        began = time.perf_counter()
        try:
            line = addon.bake.prepare(scene, obj, settings, bridge)
            fetched = addon.request.fetch(bridge, line)
            written = addon.bake.apply(scene, obj, line, fetched)
        except (addon.bake.BakeError, addon.client.BridgeError, ValueError) as e:
            rows.append({"file": path.name, "error": str(e)})
            continue
        said = addon.dialogue.keep(written.action, fetched.timeline, line.fields.get("text", ""))
        rows.append(
            {
                "file": path.name,
                "error": "",
                "action": written.action.name,
                "keys": written.keys,
                "frames": f"{written.frame_start:.0f}-{written.frame_end:.0f}",
                "seconds": time.perf_counter() - began,
                "said": said,
                "words": list(addon.dialogue.of(written.action)[1]),
            }
        )
        written.action.use_fake_user = True  # each line's action survives the next one
        if a.nla:
            target = addon.targets.animated(obj)  # shape keys, armature or Grease Pencil data
            _unpush(addon.compat, target, written.action)
            addon.compat.push_to_nla(target, written.action, written.frame_start)
            gap = a.gap * addon.frames.scene_fps(scene)
            offset = int(round(written.frame_end + gap))
    return rows


def _unpush(compat, target, action) -> None:
    """Take the line's strips off the Lip Sync tracks (a rerun lays it anew, not beside
    itself), and the tracks that leaves empty."""
    anim = target.animation_data
    tracks = list(anim.nla_tracks) if anim else []
    for track in [t for t in tracks if t.name.startswith(compat.NLA_TRACK)]:
        for strip in [s for s in track.strips if s.action == action]:
            track.strips.remove(strip)
        if not track.strips:
            anim.nla_tracks.remove(track)


def summary(rows: list[dict], out: str) -> str:
    ok = [r for r in rows if not r["error"]]
    saved = f", saved to {out}" if out else ("; nothing saved" if not ok else "")
    lines = [f"batch: {len(ok)} of {len(rows)} lines baked{saved}"]
    for r in rows:
        if r["error"]:
            lines.append(f"  FAILED {r['file']}: {r['error']}")
        else:
            lines.append(
                f"  ok     {r['file']}: {r['keys']} keys, frames {r['frames']}, "
                f'action {r["action"]!r}, {r["seconds"]:.1f} s: "{r["said"]}"'
            )
    return "\n".join(lines)


def _settings(a, path: Path, frame_offset: int) -> SimpleNamespace:
    """What the panel would hold for this line."""
    video = path.suffix.lower() in VIDEO
    return SimpleNamespace(
        source="VIDEO" if video else "AUDIO",
        audio_path=str(path),
        video_path=str(path),
        script="",
        lang=a.lang,
        engine=a.engine,
        viseme_set=a.visemes,
        holds=a.holds,
        rhubarb_rules=a.rhubarb_rules,
        motion=a.motion,
        **{name: getattr(a, name) for name in NUMBERS},
        frame_offset=frame_offset,
        add_strip=a.nla,
        video_weight=a.video_weight,
        show_video=False,
    )


def _ensure_bridge(client, bridge, command: str | None):
    try:
        bridge.health()
        return None
    except client.BridgeError:
        if not command:
            raise
    print(f"batch: starting the bridge: {command}", flush=True)
    return client.start_bridge(command, bridge.url)


def _found(obj, name: str):
    import bpy

    if obj is None:
        meshes = ", ".join(o.name for o in bpy.data.objects if o.type == "MESH") or "none"
        raise _addon().bake.BakeError(f"no object named {name!r}; meshes in this file: {meshes}.")
    return obj


def _addon():
    """The add-on package this script sits in, whatever its folder is called."""
    if str(HERE.parent) not in sys.path:
        sys.path.insert(0, str(HERE.parent))
    package = importlib.import_module(HERE.name)
    for name in ("bake", "client", "compat", "dialogue", "frames", "request", "targets"):
        importlib.import_module(f"{HERE.name}.{name}")
    if not hasattr(__import__("bpy").types.Object, "lipsync"):  # not enabled as an add-on
        package.properties.register()
    return package


if __name__ == "__main__":
    if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
        del sys.path[0]  # `python batch.py`: the add-on's modules load as its package, not bare
    args = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    sys.exit(main(args))
