"""Batch baking: every recording in a folder onto one character, headless.

    blender -b scene.blend -P <add-on>/batch.py -- --object Head --audio lines/ --out baked.blend
    python <add-on>/batch.py --blend scene.blend --object Head --audio lines/ --out baked.blend
    blender -b scene.blend -P <add-on>/batch.py -- --object Head --timelines baked/ --nla

--timelines applies what `lipsync batch INPUTS --out baked/ --shape-keys NAMES` (or --rig
PRESET) made, on a cluster or anywhere: no bridge, Blender only writes the keys.

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
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--audio", nargs="+", help="files or folders of recordings")
    source.add_argument("--timelines", metavar="DIR", help="a `lipsync batch` folder: apply its "
                        "timelines (curves named after the rig), no bridge needed")  # fmt: skip
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
        if a.timelines:
            rows = bake_all(addon, scene, obj, made(Path(a.timelines)), a, _from_folder(addon))
        else:
            started = _ensure_bridge(addon.client, bridge, a.start)
            rows = bake_all(addon, scene, obj, recordings(a.audio), a, _from_bridge(addon, bridge))
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


def made(folder: Path) -> list[dict]:
    """The records of a `lipsync batch` folder's manifest, in the order of their names."""
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        raise _addon().bake.BakeError(
            f"{folder} has no manifest.jsonl; make the timelines with `lipsync batch INPUTS "
            f"--out {folder} --shape-keys NAMES` (or --rig PRESET)"
        )
    records = [json.loads(t) for t in manifest.read_text(encoding="utf-8").splitlines() if t]
    return sorted(records, key=lambda r: r["id"])


def bake_all(addon, scene, obj, items: list, a, fetch) -> list[dict]:
    """Each item (a recording, or a `lipsync batch` record) keyed in turn; `fetch` gives the
    line and its timeline."""
    rows, offset = [], scene.frame_start
    for i, item in enumerate(items, 1):
        name = item.name if isinstance(item, Path) else item["id"]
        print(f"batch: [{i}/{len(items)}] {name}", flush=True)
        began = time.perf_counter()
        try:
            line, fetched = fetch(scene, obj, item, a, offset - scene.frame_start)
            written = addon.bake.apply(scene, obj, line, fetched)
        except (addon.bake.BakeError, addon.client.BridgeError, ValueError, OSError) as e:
            rows.append({"file": name, "error": str(e)})
            continue
        said = addon.dialogue.keep(written.action, fetched.timeline, line.fields.get("text", ""))
        rows.append(
            {
                "file": name,
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


def _from_bridge(addon, bridge):
    """Recordings: the panel's steps, the bridge doing the work."""

    def fetch(scene, obj, path: Path, a, frame_offset: int):
        line = addon.bake.prepare(scene, obj, _settings(a, path, frame_offset), bridge)
        return line, addon.request.fetch(bridge, line)

    return fetch


def _from_folder(addon):
    """`lipsync batch` records: the timeline it wrote, its sound, no bridge."""

    def fetch(scene, obj, record: dict, a, frame_offset: int):
        if record.get("status") != "ok":
            raise addon.bake.BakeError(f"lipsync batch failed on it: {record.get('error')}")
        folder = Path(a.timelines)
        timeline = addon.timeline.load(folder / f"{record['id']}.json")  # its schema checked
        _check_names(addon, obj, timeline)
        spoken = folder / f"{record['id']}.wav"  # a text line's speech
        recorded = Path(record.get("source") or "")  # a recording's (a text line's: its words)
        sound = spoken if spoken.is_file() else recorded if recorded.is_file() else ""
        rows = [(c.channel, c.shape_key) for c in obj.lipsync.mapping]
        line = addon.request.Request(
            kind="audio", name=record["id"], fields={"text": timeline["source"].get("text", "")},
            mapping={}, frame_offset=scene.frame_start + frame_offset,
            fps=addon.frames.scene_fps(scene), sound_path=str(sound),
            add_strip=a.nla, chosen=addon.mapping.chosen(rows),
        )  # fmt: skip
        return line, addon.request.Fetched(timeline)

    return fetch


def _check_names(addon, obj, timeline: dict) -> None:
    """Shape keys are keyed by the curves' names: at least one must be the object's."""
    if addon.targets.kind(obj) != "SHAPE_KEYS":
        return
    keys = [k.name for k in obj.data.shape_keys.key_blocks[1:]]
    if not {c["channel"] for c in timeline["curves"]} & set(keys):
        raise addon.bake.BakeError(
            f"its curves are named for the {timeline['viseme_set']} set, not after "
            f"{obj.name}'s shape keys; make the timelines with `lipsync batch ... --shape-keys "
            f'"{",".join(keys)}"`'
        )


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
    for name in ("bake", "client", "compat", "dialogue", "frames", "mapping", "request", "targets",
                 "timeline"):  # fmt: skip
        importlib.import_module(f"{HERE.name}.{name}")
    if not hasattr(__import__("bpy").types.Object, "lipsync"):  # not enabled as an add-on
        package.properties.register()
    return package


if __name__ == "__main__":
    if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
        del sys.path[0]  # `python batch.py`: the add-on's modules load as its package, not bare
    args = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    sys.exit(main(args))
