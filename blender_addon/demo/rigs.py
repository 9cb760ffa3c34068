"""A bone-rigged puppet and a 2D mouth chart, baked with the Lip Sync add-on through the bridge
and rendered as a strip: the picture of the tutorial's armature and 2D section.

    .venv/bin/python blender_addon/demo/rigs.py -- --out docs/images/targets_strip.png

The puppet's mouth moves by bones: a jaw bone (found by its name, turned by the Jaw Angle) and
lip bones posed by one action per mouth shape, named after it (mouth_AA, mouth_PP...). The 2D
mouth is a Grease Pencil object with one layer per Rhubarb mouth shape (mouth_A ... mouth_X,
drawn from mouth_chart.json). The line is spoken by the bridge for the puppet's bake; the 2D
mouth is baked from the sound strip that bake left, so both follow the same sound. The bridge
is started (`lipsync serve` beside this Python) when it is not running, and stopped after.
Runs in the bpy module (Pillow stacks the two rows).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bpy  # noqa: E402
from mathutils import Matrix, Vector  # noqa: E402

from blender_addon import client, compat  # noqa: E402
from blender_addon.demo import contact_sheet  # noqa: E402

HERE = Path(__file__).resolve().parent
CHART = json.loads((HERE / "mouth_chart.json").read_text(encoding="utf-8"))
LINE = "Bob put the big blue map back in the box."
COLOURS = {"skin": (0.9, 0.55, 0.4, 1), "lips": (0.75, 0.15, 0.2, 1), "mouth": (0.15, 0.02, 0.04, 1),
           "eye": (0.05, 0.05, 0.1, 1)}  # fmt: skip
PUPPET = json.loads((HERE / "puppet.json").read_text(encoding="utf-8"))  # bones and poses
GAP = 8.0  # the 2D mouth stands this far to the side of the puppet


def main(argv: list[str]) -> int:
    a = _parse(argv)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    _enable_addon(a.bridge)
    scene = bpy.context.scene
    scene.render.fps = 24
    puppet, chart = build_puppet(), build_mouth_chart(Vector((GAP, 0, 0)))
    started = _ensure_bridge(a.bridge)
    try:
        line = bake(scene, puppet, "TEXT", a.text)
        bake(scene, chart, "STRIP", line)
        phonemes = heard(scene, line, a.text, a.bridge)
    finally:
        client.stop_bridge(started)
    held = drawings_held(chart, a.cells)
    sounds = [(f, f"frame {f}   /{_phoneme_at(phonemes, (f - 1) / 24)}/") for f, _ in held]
    shapes = [(f, f"drawing {shape}") for f, shape in held]
    rows = [_row(scene, puppet, sounds, "puppet", a.size), _row(scene, chart, shapes, "2d", a.size)]
    _stack(rows, Path(a.out))
    print(f"{len(held)} frames of {line!r} -> {a.out}")
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rigs.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the strip (PNG)")
    p.add_argument("--text", default=LINE, help="the line to speak")
    p.add_argument("--bridge", default="http://127.0.0.1:8765", help="the bridge's URL")
    p.add_argument("--cells", type=int, default=8, help="frames in the strip")
    p.add_argument("--size", type=int, default=200, help="cell size in pixels")
    return p.parse_args(argv)


# --- the puppet: a jaw bone, lip bones, a pose per mouth shape --------------------------------


def build_puppet(name: str = "Puppet"):
    """An armature with the face's parts parented to its bones, and one action per pose."""
    rig = _link(bpy.data.objects.new(name, bpy.data.armatures.new(name)))
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    for bone, (head, tail, parent) in PUPPET["bones"].items():
        edit = rig.data.edit_bones.new(bone)
        edit.head, edit.tail = head, tail
        edit.parent = rig.data.edit_bones.get(parent or "")
    bpy.ops.object.mode_set(mode="OBJECT")
    _part("Head", (0, 0.25, 0.25), (0.95, 0.8, 1.1), "skin")
    _part("Mouth", (0, -0.72, -0.3), (0.36, 0.05, 0.2), "mouth")
    for side in (-1, 1):
        _part(f"Eye.{side}", (0.33 * side, -0.6, 0.55), (0.1, 0.05, 0.14), "eye")
    _part("Chin", (0, -0.55, -0.5), (0.52, 0.3, 0.26), "skin", rig, "jaw")
    _part("UpperLip", (0, -0.9, -0.21), (0.34, 0.08, 0.07), "lips", rig, "lip_upper")
    _part("LowerLip", (0, -0.9, -0.37), (0.3, 0.08, 0.07), "lips", rig, "lip_lower")
    for pose, channels in PUPPET["poses"].items():
        _keep_pose(rig, pose, channels)
    rig.lipsync.jaw_angle = math.radians(14)  # a small puppet's jaw
    _camera(rig, Vector((0, 0, 0.05)), 2.9)
    return rig


def _keep_pose(rig, name: str, channels: list) -> None:
    """Key the pose at frame 1 into an action of its own, as an animator keeps a pose."""
    for bone, prop, index, value in channels:
        getattr(rig.pose.bones[bone], prop)[index] = value
        rig.pose.bones[bone].keyframe_insert(prop, index=index, frame=1, group=bone)
    rig.animation_data.action.name = name
    rig.animation_data.action = None
    for bone in rig.pose.bones:
        bone.location, bone.scale = (0, 0, 0), (1, 1, 1)


def _part(name, centre, radii, colour, rig=None, bone=None):
    """A flattened sphere, parented to `bone` where it stays as it is in the rest pose."""
    import bmesh

    mesh = bpy.data.meshes.new(name)
    shape = bmesh.new()
    bmesh.ops.create_uvsphere(shape, u_segments=32, v_segments=16, radius=1.0)
    bmesh.ops.scale(shape, vec=radii, verts=shape.verts)
    bmesh.ops.translate(shape, vec=centre, verts=shape.verts)
    shape.to_mesh(mesh)
    shape.free()
    mesh.materials.append(_material(colour))
    for polygon in mesh.polygons:
        polygon.use_smooth = True
    obj = _link(bpy.data.objects.new(name, mesh))
    if rig is not None:
        obj.parent, obj.parent_type, obj.parent_bone = rig, "BONE", bone
        rest = rig.data.bones[bone]
        tip = Matrix.Translation((0, rest.length, 0))  # a bone's children hang from its tail
        obj.matrix_parent_inverse = (rig.matrix_world @ rest.matrix_local @ tip).inverted()
    return obj


def _material(colour: str):
    material = bpy.data.materials.get(colour) or bpy.data.materials.new(colour)
    material.diffuse_color = COLOURS[colour]
    return material


# --- the 2D mouth chart: a Grease Pencil layer per mouth shape ---------------------------------


def build_mouth_chart(at: Vector, name: str = "Mouth"):
    """A Grease Pencil object facing -Y with a layer per mouth shape of mouth_chart.json."""
    data = compat.new_grease_pencil(name)
    chart = _link(bpy.data.objects.new(name, data))
    chart.location = at
    ink, inside, teeth, tongue = (_gp_material(*m) for m in (
        ("Ink", (0.12, 0.03, 0.04, 1), None), ("Inside", (0.12, 0.03, 0.04, 1), (0.3, 0.04, 0.07, 1)),
        ("Teeth", (0.12, 0.03, 0.04, 1), (1, 1, 1, 1)), ("Tongue", (0.12, 0.03, 0.04, 1), (0.9, 0.4, 0.45, 1)),
    ))  # fmt: skip
    for material in (ink, inside, teeth, tongue):
        data.materials.append(material)
    for shape, look in sorted(CHART.items()):
        if not shape.startswith("_"):
            _draw(data.layers.new(f"mouth_{shape}").frames.new(1), look)
    _head_outline(data)
    _camera(chart, at + Vector((0, 0, 0.45)), 2.6)
    return chart


def _draw(frame, look: dict) -> None:
    """The mouth of `look`: lips (filled dark when open), teeth and tongue inside."""
    w, h = look["width"], look["open"]
    if h <= 0:
        lips = [(x * w, 0.0, look.get("smile", 0) * (2 * x * x) - 0.01 * (1 - x * x))
                for x in _steps(-1, 1, 17)]  # fmt: skip
        _stroke(frame, lips, 0, cyclic=False)
        return
    _stroke(frame, _ellipse((0, 0, 0), w, h, 40), 1, cyclic=True)
    if look.get("teeth"):
        top = h * 0.95
        band = [(-w * 0.6, -0.01, top), (w * 0.6, -0.01, top), (w * 0.55, -0.01, top - 0.06),
                (-w * 0.55, -0.01, top - 0.06)]  # fmt: skip
        _stroke(frame, band, 2, cyclic=True)
    if look.get("tongue"):
        arc = [(w * 0.45 * math.cos(a), -0.01, -h * 0.95 + h * 0.45 * math.sin(a))
               for a in _steps(0, math.pi, 12)]  # fmt: skip
        _stroke(frame, arc, 3, cyclic=True)
    if look.get("lip_in"):
        _stroke(frame, [(-w * 0.7, -0.02, -h), (w * 0.7, -0.02, -h)], 0, cyclic=False)


def _head_outline(data) -> None:
    """A face around the mouth on a layer of its own (never keyed: not a mouth shape)."""
    frame = data.layers.new("Face").frames.new(1)
    _stroke(frame, _ellipse((0, 0.01, 0.45), 0.95, 1.05, 48), 0, cyclic=True)
    for side in (-1, 1):
        _stroke(frame, _ellipse((0.33 * side, 0.0, 0.75), 0.07, 0.11, 16), 0, cyclic=True)


def _ellipse(centre: tuple, rx: float, rz: float, n: int) -> list:
    x, y, z = centre
    return [(x + rx * math.cos(a), y, z + rz * math.sin(a)) for a in _steps(0, 2 * math.pi, n)[:-1]]


def _steps(lo: float, hi: float, n: int) -> list[float]:
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _stroke(frame, points: list, material: int, cyclic: bool) -> None:
    """One stroke through `points`: Grease Pencil v3 (4.3+) keeps strokes on the frame's
    drawing with a radius per point; before, on the frame, with a width in pixels."""
    if hasattr(frame, "drawing"):
        frame.drawing.add_strokes([len(points)])
        stroke = frame.drawing.strokes[-1]
        for point, co in zip(stroke.points, points):
            point.position, point.radius = co, 0.018
        stroke.cyclic, stroke.material_index = cyclic, material
        return
    stroke = frame.strokes.new()
    stroke.points.add(len(points))
    for point, co in zip(stroke.points, points):
        point.co = co
    stroke.line_width, stroke.use_cyclic, stroke.material_index = 60, cyclic, material


def _gp_material(name: str, line: tuple, fill: tuple | None):
    material = bpy.data.materials.new(f"Chart.{name}")
    bpy.data.materials.create_gpencil_data(material)
    style = material.grease_pencil
    style.color = line
    if fill is not None:
        style.show_fill, style.fill_color = True, fill
    return material


# --- baking and rendering -------------------------------------------------------------------


def bake(scene, obj, source: str, line: str) -> str:
    """Bake `line` (typed text, or the name of a sound strip) onto `obj`; the line's name."""
    for other in scene.objects:
        other.select_set(False)
    bpy.context.view_layer.objects.active = obj
    settings = scene.lipsync
    settings.source = source
    if source == "TEXT":
        settings.text = line
    else:
        settings.strip = line
    if bpy.ops.lipsync.bake() != {"FINISHED"}:
        raise RuntimeError(f"the bake onto {obj.name} failed")
    return next(s.name for s in _strips(scene)) if source == "TEXT" else line


def drawings_held(chart, count: int) -> list[tuple[int, str]]:
    """(frame, mouth shape) in the middle of `count` drawings the 2D mouth holds for two frames
    or more: each shape's first hold before any shape's second."""
    fcurves = _fcurves(chart.data.animation_data.action, chart.data)
    changes = sorted({round(p.co[0]) for fc in fcurves for p in fc.keyframe_points})
    holds = []
    for start, end in zip(changes, changes[1:]):
        if end - start >= 2:
            holds.append(((start + end) // 2, _drawing_at(chart, (start + end) // 2)))
    seen, first = set(), []
    for hold in holds:
        if hold[1] not in seen:
            seen.add(hold[1])
            first.append(hold)
    rest = [h for h in holds if h not in first]
    return sorted(first[:count] + rest[: max(0, count - len(first))])


def _drawing_at(chart, frame: int) -> str:
    bpy.context.scene.frame_set(frame)
    shown = [_layer_name(layer) for layer in _shown(chart)]
    return next(name for name in shown if name != "Face").removeprefix("mouth_")


def heard(scene, line: str, text: str, url: str) -> list[dict]:
    """The phonemes of the sound strip `line`, as the bridge aligns them to the text."""
    path = Path(bpy.path.abspath(_strips(scene)[line].sound.filepath))
    bridge, fields = client.Bridge(url), {"text": text, "visemes": "rhubarb", "fps": 24}
    job = bridge.start_upload("/lipsync/audio", path.name, path.read_bytes(), fields)
    return bridge.wait(job)["phonemes"]


def _phoneme_at(phonemes: list[dict], t: float) -> str:
    return next((p["ipa"] for p in phonemes if p["start"] <= t < p["end"]), "-")


def _row(scene, obj, cells, name: str, size: int) -> Path:
    scene.camera = bpy.data.objects[f"{obj.name}.Camera"]
    path = Path(tempfile.gettempdir()) / f"lipsync-strip-{name}.png"
    contact_sheet.render_contact_sheet(scene, obj, cells, path, size=size, columns=len(cells))
    return path


def _stack(rows: list[Path], out: Path) -> None:
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in rows]
    strip = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
    y = 0
    for image in images:
        strip.paste(image, (0, y))
        y += image.height
    out.parent.mkdir(parents=True, exist_ok=True)
    strip.save(out, optimize=True)


def _camera(obj, centre: Vector, height: float):
    """An orthographic camera in front of `obj` (looking along +Y), named after it."""
    name = f"{obj.name}.Camera"
    cam = _link(bpy.data.objects.new(name, bpy.data.cameras.new(name)))
    cam.data.type, cam.data.ortho_scale, cam.data.clip_end = "ORTHO", height, 30.0
    cam.location = centre + Vector((0, -8, 0))
    cam.rotation_euler = (math.pi / 2, 0, 0)
    bpy.context.scene.camera = cam
    return cam


def _link(obj):
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _layer_name(layer) -> str:
    return getattr(layer, "name", None) or layer.info


def _shown(chart) -> list:
    data = chart.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    return [layer for layer in data.layers if not layer.hide]


def _fcurves(action, id_block):
    from blender_addon import compat

    return compat.fcurves(action, id_block)


def _strips(scene):
    from blender_addon import compat

    return compat.strips(scene)


def _enable_addon(url: str) -> None:
    import addon_utils

    addon_utils.enable("blender_addon", default_set=True)
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.url, prefs.autostart = url, False


def _ensure_bridge(url: str):
    """The bridge's process when this script started it, else None (it was running)."""
    try:
        client.Bridge(url).health()
        return None
    except client.BridgeError:
        return client.start_bridge(f"{Path(sys.executable).with_name('lipsync')} serve", url)


if __name__ == "__main__":
    sys.exit(main(sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]))
