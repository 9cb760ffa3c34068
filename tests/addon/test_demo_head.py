"""The demo head's mouth shapes and the contact sheet, in the bpy 5.0 module; the demo script in
Debian's Blender 3.4."""

import json
import math
import shutil
import struct
import subprocess
import sys
from array import array
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy", reason="the bpy module (pip install bpy) runs the add-on tests")

from blender_addon.demo import contact_sheet  # noqa: E402
from blender_addon.demo import head as demo_head  # noqa: E402
from blender_addon.demo import play as demo  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LIPSYNC = Path(sys.executable).parent / "lipsync"
LINE = "Bob put the big blue map back in the box."

# preset -> (closed key or None, open key, round keys)
MOUTHS = {
    "demo_head": ("MBP", "AI", ["O", "U", "WQ"]),
    "vrchat": ("vrc.v_pp", "vrc.v_aa", ["vrc.v_oh", "vrc.v_ou"]),
    "rhubarb": ("mouth_A", "mouth_D", ["mouth_E", "mouth_F"]),
    "vrm0": (None, "A", ["U", "O"]),
    "arkit": (None, "jawOpen", ["mouthFunnel", "mouthPucker"]),
}


@pytest.fixture
def empty():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def points(obj, key: str, landmark: str):
    return obj.data.shape_keys.key_blocks[key].data[obj["lipsync_mouth"][landmark]].co


def gap(obj, key: str) -> float:
    """Distance between the middles of the upper and lower lips' inner edges."""
    return (points(obj, key, "upper_lip") - points(obj, key, "lower_lip")).length


def width(obj, key: str) -> float:
    return (points(obj, key, "left_corner") - points(obj, key, "right_corner")).length


def data_counts() -> tuple[int, ...]:
    """Objects, meshes, curves, materials, worlds, fonts and images (not Blender's own Render Result)."""
    images = [i for i in bpy.data.images if i.type != "RENDER_RESULT"]
    data = bpy.data
    return (
        *map(len, (data.objects, data.meshes, data.curves, data.materials, data.worlds)),
        len(images),
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def png_pixels(path: Path) -> array:
    image = bpy.data.images.load(str(path))
    try:
        pixels = array("f", bytes(4 * len(image.pixels)))
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels


def luminance_variance(pixels: array) -> float:
    lum = [0.3 * r + 0.6 * g + 0.1 * b for r, g, b in zip(pixels[0::4], pixels[1::4], pixels[2::4])]
    mean = sum(lum) / len(lum)
    return sum((v - mean) ** 2 for v in lum) / len(lum)


def mouth_cavity_pixels(pixels: array, width_px: int, x0: int, x1: int) -> int:
    """Dark red pixels (the open mouth's inside) in columns x0..x1 of an RGBA image."""
    count = 0
    for i in range(0, len(pixels), 4):
        x = (i // 4) % width_px
        r, g, b = pixels[i], pixels[i + 1], pixels[i + 2]
        count += x0 <= x < x1 and r < 0.3 and r > 1.6 * g and r > 1.4 * b
    return count


@pytest.mark.parametrize("preset", list(MOUTHS))
def test_the_head_has_exactly_the_presets_shape_keys(empty, preset):
    head = demo_head.build_demo_head_for_preset(preset)

    names = [k.name for k in head.data.shape_keys.key_blocks]
    expected = json.loads((ROOT / "rigs" / f"{preset}.json").read_text())["shape_keys"]
    assert names == ["Basis", *expected.values()]
    assert head.name in empty.objects
    assert all(p.use_smooth for p in head.data.polygons)


def test_the_default_head_is_the_demo_head_preset(empty):
    head = demo_head.build_demo_head()

    names = [k.name for k in head.data.shape_keys.key_blocks][1:]
    assert names == "rest MBP FV AI E O U WQ L etc".split()
    assert demo_head.preset_path("demo_head") == ROOT / "rigs" / "demo_head.json"


def test_a_channel_outside_the_set_is_refused(empty):
    with pytest.raises(ValueError, match="not in viseme set 'oculus15'"):
        demo_head.build_demo_head({"MBP": "MBP"}, "oculus15")


@pytest.mark.parametrize("preset", list(MOUTHS))
def test_closed_keys_close_the_lips_and_open_keys_open_them(empty, preset):
    closed, opened, _ = MOUTHS[preset]
    head = demo_head.build_demo_head_for_preset(preset)

    rest = gap(head, "Basis")
    assert 0.0 < rest < 0.02  # relaxed: the lips just touch
    assert gap(head, opened) > 0.15
    if closed:
        assert gap(head, closed) < 1e-4


@pytest.mark.parametrize("preset", list(MOUTHS))
def test_round_keys_narrow_the_mouth(empty, preset):
    _, _, rounds = MOUTHS[preset]
    head = demo_head.build_demo_head_for_preset(preset)

    for key in rounds:
        assert width(head, key) < 0.8 * width(head, "Basis"), key


@pytest.mark.parametrize(("preset", "key"), [("demo_head", "FV"), ("vrchat", "vrc.v_ff")])
def test_fv_tucks_the_lower_lip_under_the_upper_teeth(empty, preset, key):
    head = demo_head.build_demo_head_for_preset(preset)

    lower, rest = points(head, key, "lower_lip"), points(head, "Basis", "lower_lip")
    assert lower.z - rest.z > 0.01  # up
    assert lower.y - rest.y > 0.002  # and back, behind the teeth
    assert gap(head, key) < 0.02  # no open mouth


def test_arkit_left_and_right_halves_make_the_whole(empty):
    head = demo_head.build_demo_head_for_preset("arkit")
    keys = head.data.shape_keys.key_blocks
    basis = [v.co.copy() for v in keys["Basis"].data]

    left, right = keys["mouthSmileLeft"].data, keys["mouthSmileRight"].data
    corner = head["lipsync_mouth"]["left_corner"]
    assert left[corner].co.z > basis[corner].z + 0.01  # the character's left corner rises
    assert right[corner].co.z == pytest.approx(basis[corner].z, abs=1e-6)


def test_contact_sheet_renders_labelled_cells_and_restores_the_scene(empty, tmp_path):
    head = demo_head.build_demo_head()
    demo_head.frame_head(empty, head)
    keys = head.data.shape_keys.key_blocks
    for frame, name in ((1, "MBP"), (2, "AI")):
        for other in ("MBP", "AI"):
            keys[other].value = float(other == name)
            keys[other].keyframe_insert("value", frame=frame)
    render = empty.render
    render.engine, render.resolution_x, render.resolution_y = "CYCLES", 640, 480
    render.filepath = "//user/"
    empty.frame_set(7)
    before = data_counts()
    cells = [(1.0, "t=0.00s  m  MBP"), (2.0, "t=0.04s  ɑ  AI"), (1.5, "half")]

    sheet = contact_sheet.render_contact_sheet(
        empty, head, cells, tmp_path / "sheet.png", size=96, columns=2
    )

    assert png_size(sheet.path) == (192, 192) == (sheet.width, sheet.height)
    pixels = png_pixels(sheet.path)
    assert luminance_variance(pixels) > 0.005
    top_row = pixels[4 * 192 * 96 :]  # rows are stored from the bottom
    opened, closed = (mouth_cavity_pixels(top_row, 192, x, x + 96) for x in (96, 0))
    assert opened > 50 and closed < opened / 4, (opened, closed)  # AI open, MBP closed
    assert (render.engine, render.resolution_x, render.resolution_y) == ("CYCLES", 640, 480)
    assert (render.filepath, empty.frame_current, empty.world) == ("//user/", 7, None)
    assert data_counts() == before


def test_demo_keys_a_rig_named_timeline_and_renders_its_visemes(empty, tmp_path, capsys):
    curves = [
        {"channel": "vrc.v_pp", "keys": [[0.0, 1.0], [0.1, 0.0]], "interpolation": "linear"},
        {"channel": "vrc.v_aa", "keys": [[0.0, 0.0], [0.2, 1.0]], "interpolation": "linear"},
    ]
    timeline = {
        "schema_version": "1.0",
        "fps": 30000 / 1001,
        "duration": 0.3,
        "viseme_set": "oculus15",
        "phonemes": [
            {"ipa": "p", "start": 0.0, "end": 0.08},
            {"ipa": "ɑ", "start": 0.08, "end": 0.3},
        ],
        "visemes": [
            {"viseme": "PP", "start": 0.0, "end": 0.1},
            {"viseme": "aa", "start": 0.1, "end": 0.3},
        ],
        "curves": curves,
    }
    path = tmp_path / "line.json"
    path.write_text(json.dumps(timeline))

    assert demo.head_keys(timeline)[1]["aa"] == "vrc.v_aa"
    assert demo.sheet_cells(timeline, timeline["fps"]) == [
        (2, "t=0.03s  p  PP"),
        (6, "t=0.17s  ɑ  aa"),
    ]
    assert (
        demo.main(["--timeline", str(path), "--out", str(tmp_path / "s.png"), "--size", "64"]) == 0
    )
    assert png_size(tmp_path / "s.png") == (128, 64)
    scene = bpy.context.scene
    assert scene.render.fps == 30 and scene.render.fps_base == pytest.approx(1.001)
    path.write_text(json.dumps(timeline | {"schema_version": "2.0"}))  # from a newer bridge
    assert demo.main(["--timeline", str(path), "--out", str(tmp_path / "n.png")]) == 2
    assert "update the Lip Sync add-on" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("blender") is None, reason="no `blender` binary on PATH")
def test_demo_script_in_blender_3_4(tmp_path):
    timeline = tmp_path / "t.json"
    say = [str(LIPSYNC), "say", LINE, "--timeline", str(timeline), "--visemes", "preston_blair"]
    subprocess.run([*say, "-q"], check=True, timeout=120, cwd=tmp_path)
    out, blend = tmp_path / "sheet.png", tmp_path / "line.blend"
    command = ["blender", "-b", "--factory-startup", "--python-exit-code", "1"]
    command += ["-P", str(ROOT / "blender_addon" / "demo" / "play.py"), "--"]
    command += ["--timeline", str(timeline), "--out", str(out), "--blend", str(blend)]

    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "s per cell" in done.stdout and blend.is_file()
    visemes = len(json.loads(timeline.read_text())["visemes"])
    cells = min(visemes, demo.MAX_CELLS)
    assert png_size(out) == (6 * 192, math.ceil(cells / 6) * 192)
    assert luminance_variance(png_pixels(out)) > 0.005
