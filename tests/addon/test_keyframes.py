"""Shape-key keyframes from a line's curves, in the bpy 5.0 module and in Debian's Blender 3.4."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy", reason="the bpy module (pip install bpy) runs the add-on tests")

from blender_addon import compat, frames, keyframes  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden_timeline.json"
SOUND = ROOT.parent / "shared" / "data" / "librivox_kittens" / "en_male_electricity.ogg"
FPS_2997 = 30000 / 1001

LINE = [
    {"channel": "aa", "keys": [[0.0, 0.0], [0.5, 1.0], [1.0, 0.0]], "interpolation": "linear"},
    {"channel": "PP", "keys": [[0.25, 1.0], [0.75, 0.0]], "interpolation": "constant"},
]


def make_head(name="Head", shape_keys=("Basis", "aa", "PP", "oh")):
    """A one-triangle mesh object with the given shape keys (none when empty)."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    for key in shape_keys:
        obj.shape_key_add(name=key)
    return obj


def fcurve(obj, channel):
    shape_keys = obj.data.shape_keys
    action = shape_keys.animation_data.action
    return compat.fcurves(action, shape_keys).find(f'key_blocks["{channel}"].value')


def keys(obj, channel):
    """(frame, value, interpolation) of each key on the channel."""
    points = fcurve(obj, channel).keyframe_points
    return [(round(p.co[0], 3), round(p.co[1], 4), p.interpolation) for p in points]


@pytest.fixture
def head():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return make_head()


def test_scene_fps_reads_fps_base():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    render = bpy.context.scene.render
    render.fps, render.fps_base = 30, 1.001
    assert frames.scene_fps(bpy.context.scene) == pytest.approx(29.97003)
    assert frames.to_seconds(frames.to_frame(1.25, 29.97, 10.0), 29.97, 10.0) == pytest.approx(1.25)


@pytest.mark.parametrize("fps", [24.0, FPS_2997], ids=["24fps", "29.97fps"])
@pytest.mark.parametrize("offset", [0.0, 100.5], ids=["at-0", "offset-100.5"])
def test_keys_land_on_frame_offset_plus_seconds_times_fps(head, fps, offset):
    written = keyframes.write_line(head, LINE, fps=fps, frame_offset=offset, action_name="Line")

    assert written.keys == 5
    assert written.channels == ["aa", "PP"]
    frames_aa = [f for f, _, _ in keys(head, "aa")]
    assert frames_aa == pytest.approx([offset, offset + 0.5 * fps, offset + fps], abs=1e-3)
    assert [v for _, v, _ in keys(head, "aa")] == [0.0, 1.0, 0.0]
    assert written.frame_start == pytest.approx(offset)
    assert written.frame_end == pytest.approx(offset + fps, abs=1e-3)


def test_linear_and_constant_interpolation(head):
    keyframes.write_line(head, LINE, fps=24, action_name="Line")

    assert {i for _, _, i in keys(head, "aa")} == {"LINEAR"}
    assert {i for _, _, i in keys(head, "PP")} == {"CONSTANT"}
    assert fcurve(head, "aa").evaluate(6) == pytest.approx(0.5)  # halfway up the ramp
    assert fcurve(head, "PP").evaluate(17) == pytest.approx(1.0)  # held until the next key


def test_keys_drive_the_shape_keys(head):
    keyframes.write_line(head, LINE, fps=24, action_name="Line")

    bpy.context.scene.frame_set(12)
    assert head.data.shape_keys.key_blocks["aa"].value == pytest.approx(1.0)


def test_previous_action_is_kept_with_fake_user_and_named(head):
    shape_keys = head.data.shape_keys
    shape_keys.key_blocks["oh"].keyframe_insert("value", frame=1)  # the animator's own action
    hand = shape_keys.animation_data.action

    written = keyframes.write_line(head, LINE, fps=24, action_name="Line")

    assert shape_keys.animation_data.action == written.action
    assert written.previous == hand.name
    assert written.action["lipsync_previous"] == hand.name
    assert hand.use_fake_user
    again = keyframes.write_line(head, LINE, fps=24, action_name="Line")
    assert again.previous == hand.name  # re-baking still knows what came before


def test_no_previous_action(head):
    assert keyframes.write_line(head, LINE, fps=24, action_name="Line").previous == ""


def test_rebake_replaces_only_the_lines_range(head):
    keyframes.write_line(head, LINE, fps=24, action_name="Line")  # frames 0-24
    later = [{"channel": "aa", "keys": [[0.0, 0.3], [0.5, 0.0]], "interpolation": "linear"}]
    keyframes.write_line(head, later, fps=24, frame_offset=100, action_name="Line")
    hand = fcurve(head, "aa").keyframe_points.insert(50, 0.7)  # a hand key between the lines
    hand.interpolation, hand.handle_left_type, hand.handle_right_type = "BEZIER", "VECTOR", "VECTOR"

    retake = [{"channel": "aa", "keys": [[0.0, 0.2], [1.0, 0.4]], "interpolation": "constant"}]
    written = keyframes.write_line(head, retake, fps=24, action_name="Line")

    assert written.keys == 2
    assert keys(head, "aa") == [
        (0.0, 0.2, "CONSTANT"),
        (24.0, 0.4, "CONSTANT"),
        (50.0, 0.7, "BEZIER"),
        (100.0, 0.3, "LINEAR"),
        (112.0, 0.0, "LINEAR"),
    ]
    kept = fcurve(head, "aa").keyframe_points[2]
    assert (kept.handle_left_type, kept.handle_right_type) == ("VECTOR", "VECTOR")
    assert keys(head, "PP") == [(6.0, 1.0, "CONSTANT"), (18.0, 0.0, "CONSTANT")]  # not in retake


def test_missing_shape_keys_are_listed_and_skipped(head):
    line = [*LINE, {"channel": "TH", "keys": [[0.0, 1.0]], "interpolation": "linear"}]

    written = keyframes.write_line(head, line, fps=24, action_name="Line")

    assert written.missing == ["TH"]
    assert written.channels == ["aa", "PP"]
    assert written.keys == 5


def test_mesh_without_shape_keys_is_refused():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bare = make_head("Bare", shape_keys=())

    with pytest.raises(ValueError, match="no shape keys.*add shape keys.*another object"):
        keyframes.write_line(bare, LINE, fps=24, action_name="Line")


def test_no_matching_shape_key_is_refused(head):
    line = [{"channel": "vrc.v_aa", "keys": [[0.0, 1.0]], "interpolation": "linear"}]

    with pytest.raises(ValueError, match="vrc.v_aa"):
        keyframes.write_line(head, line, fps=24, action_name="Line")
    assert head.data.shape_keys.animation_data is None  # nothing was touched


def test_two_curves_for_one_shape_key_are_refused(head):
    with pytest.raises(ValueError, match="two curves for shape key 'aa'"):
        keyframes.write_line(head, [LINE[0], LINE[0]], fps=24, action_name="Line")


def test_golden_timeline_curves(head):
    curves = json.loads(GOLDEN.read_text())["curves"]
    rig = make_head("Rig", ["Basis", *(c["channel"] for c in curves)])

    written = keyframes.write_line(rig, curves, fps=24, frame_offset=1, action_name="Golden")

    assert written.keys == sum(len(c["keys"]) for c in curves)
    assert written.missing == []
    assert len(keys(rig, "PP")) == 15


def test_save_and_reload_keeps_keys_and_previous_action(head, tmp_path):
    head.data.shape_keys.key_blocks["oh"].keyframe_insert("value", frame=1)
    written = keyframes.write_line(head, LINE, fps=24, frame_offset=10, action_name="Line")
    before = keys(head, "aa")
    path = str(tmp_path / "line.blend")

    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=path)

    reloaded = bpy.data.objects["Head"]
    assert keys(reloaded, "aa") == before
    assert reloaded.data.shape_keys.animation_data.action.name == "Line"
    assert written.previous in bpy.data.actions  # unassigned, kept by its fake user


def test_lines_pushed_to_nla_play_at_their_frames(head):
    shape_keys = head.data.shape_keys
    for i, offset in enumerate([10.5, 40, 20]):  # the third overlaps the first: a new track
        line = [
            {"channel": "aa", "keys": [[0, 0.2 * (i + 1)], [0.5, 0]], "interpolation": "linear"}
        ]
        written = keyframes.write_line(head, line, fps=24, frame_offset=offset, action_name=f"L{i}")
        compat.push_to_nla(shape_keys, written.action, written.frame_start)

    assert shape_keys.animation_data.action is None
    tracks = [
        [(s.name, s.frame_start) for s in t.strips] for t in shape_keys.animation_data.nla_tracks
    ]
    assert tracks == [[("L0", 10.5), ("L1", 40.0)], [("L2", 20.0)]]
    for frame, value in [(0, 0.2), (10.5, 0.2), (40, 0.4), (20, 0.6), (33, 0.0), (60, 0.0)]:
        bpy.context.scene.frame_set(int(frame), subframe=frame % 1)
        assert shape_keys.key_blocks["aa"].value == pytest.approx(value)


def test_sound_strip_replaced_by_name_on_a_free_channel():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    compat.add_sound_strip(scene, "line", str(SOUND), 1)
    compat.add_sound_strip(scene, "other", str(SOUND), 10)  # overlaps "line": channel 2
    compat.add_sound_strip(scene, "line", str(SOUND), 100)  # a retake, later: channel 1 is free

    placed = {s.name: (s.channel, s.frame_final_start) for s in compat.strips(scene)}
    assert placed == {"other": (2, 10), "line": (1, 100)}
    assert compat.add_sound_strip(scene, "pinned", str(SOUND), 1, channel=5).channel == 5


BLENDER_34_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[sys.argv.index("--") + 1])
import bpy
from blender_addon import compat, keyframes

LINE = json.loads(sys.argv[sys.argv.index("--") + 3])
mesh = bpy.data.meshes.new("Head")
mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
head = bpy.data.objects.new("Head", mesh)
bpy.context.scene.collection.objects.link(head)
for name in ("Basis", "aa", "PP", "oh"):
    head.shape_key_add(name=name)
head.data.shape_keys.key_blocks["oh"].keyframe_insert("value", frame=1)
first = keyframes.write_line(head, LINE, fps=30000 / 1001, frame_offset=10, action_name="Line")
hand = compat.fcurves(first.action, head.data.shape_keys).find('key_blocks["aa"].value')
hand = hand.keyframe_points.insert(60, 0.7)  # after the line: must survive the retake as it is
hand.interpolation, hand.handle_left_type, hand.handle_right_type = "BEZIER", "VECTOR", "VECTOR"
retake = [dict(LINE[0], keys=[[0.0, 0.2], [1.0, 0.4]])]
second = keyframes.write_line(head, retake, fps=30000 / 1001, frame_offset=10, action_name="Line")
path = sys.argv[sys.argv.index("--") + 2]
bpy.ops.wm.save_as_mainfile(filepath=path)
bpy.ops.wm.open_mainfile(filepath=path)
shape_keys = bpy.data.objects["Head"].data.shape_keys
fcurves = compat.fcurves(shape_keys.animation_data.action, shape_keys)


def keys(channel):
    points = fcurves.find(f'key_blocks["{channel}"].value').keyframe_points
    return [(round(p.co[0], 3), round(p.co[1], 4), p.interpolation, p.handle_left_type)
            for p in points]


print("RESULT " + json.dumps({
    "version": bpy.app.version_string,
    "keys": [first.keys, second.keys],
    "aa": keys("aa"),
    "PP": keys("PP"),
    "previous": second.previous,
    "previous_kept": bpy.data.actions[second.previous].use_fake_user,
}))
"""


@pytest.mark.skipif(shutil.which("blender") is None, reason="no `blender` binary on PATH")
def test_same_code_in_blender_binary(tmp_path):
    script = tmp_path / "bake.py"
    script.write_text(BLENDER_34_SCRIPT)
    blend = tmp_path / "line.blend"
    command = ["blender", "-b", "--factory-startup", "--python-exit-code", "1"]
    command += ["--python", str(script), "--", str(ROOT), str(blend), json.dumps(LINE)]

    done = subprocess.run(command, capture_output=True, text=True, timeout=120)

    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(lines[0].removeprefix("RESULT "))
    assert result["keys"] == [5, 2]
    assert result["aa"] == [
        [10.0, 0.2, "LINEAR", "AUTO_CLAMPED"],
        [39.97, 0.4, "LINEAR", "AUTO_CLAMPED"],
        [60.0, 0.7, "BEZIER", "VECTOR"],
    ]
    assert [k[:3] for k in result["PP"]] == [[17.493, 1.0, "CONSTANT"], [32.478, 0.0, "CONSTANT"]]
    assert result["previous"] != "" and result["previous_kept"]
