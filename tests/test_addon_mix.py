"""The add-on's bpy-free mix of a line for rigs without shape keys (blender_addon/mix.py), in
plain Python: channel weights at key frames, the jaw's opening, the pose blend, the jaw bone's
name, and a 2D mouth's held drawings."""

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.test_addon_pure import LOAD, PACKAGE, load

mix = load("mix")


def test_the_mix_imports_where_bpy_cannot():
    block = "sys.modules['bpy'] = None\n"  # `import bpy` now raises ImportError
    code = LOAD + block + f"importlib.import_module('{PACKAGE}.mix')\nprint('ok')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "ok", run.stderr


CURVES = [
    {"channel": "aa", "keys": [[0.0, 0.0], [0.5, 1.0], [1.0, 0.0]], "interpolation": "linear"},
    {"channel": "PP", "keys": [[0.25, 1.0], [0.75, 0.0]], "interpolation": "linear"},
]


def test_weights_are_taken_where_any_curve_has_a_key_and_held_outside_its_keys():
    line = mix.sample(CURVES, fps=24, offset=10)

    assert line.frames == [10, 16, 22, 28, 34]
    assert line.weights["aa"] == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0])
    assert line.weights["PP"] == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])  # held before its first
    assert not line.constant


def test_stepped_curves_hold_each_value_until_the_next_key():
    held = [dict(c, interpolation="constant") for c in CURVES]
    line = mix.sample(held, fps=24, offset=0)
    assert line.constant
    assert line.weights["aa"] == [0.0, 0.0, 1.0, 1.0, 0.0]


def test_the_jaw_opens_with_open_vowels_and_stays_shut_for_closures():
    line = mix.Line([0, 1, 2, 3], {"aa": [0, 1, 0.5, 0], "PP": [1, 0, 0, 0], "E": [0, 0, 0.5, 0]},
                    False)  # fmt: skip
    opening = mix.jaw_opening(line, "oculus15")
    assert opening == pytest.approx([0.0, 1.0, 0.5 + 0.5 * 0.56, 0.0])
    assert mix.jaw_opening(line, "no such set") == [0.0] * 4


def test_the_jaw_table_is_the_bridges_jaw_opening_scaled_to_the_widest_vowel():
    controls = json.loads((ROOT / "bridge_server/data/viseme_controls.json").read_text())["sets"]
    for name, visemes in controls.items():
        widest = max(v.get("jaw_open", 0) for v in visemes.values())
        expected = {c: round(v["jaw_open"] / widest, 2) for c, v in visemes.items()
                    if v.get("jaw_open")}  # fmt: skip
        assert mix.JAW_OPEN[name] == expected, name
    assert mix.JAW_OPEN["arkit"] == {"jawOpen": 1.0}


def test_poses_blend_as_offsets_from_rest_by_weight():
    loc, quat = 'pose.bones["lip"].location', 'pose.bones["lip"].rotation_quaternion'
    poses = {"shut": {(loc, 2): -0.1}, "open": {(loc, 2): 0.2, (quat, 0): 0.0, (quat, 1): 1.0}}
    line = mix.Line([0, 1, 2], {"PP": [1, 0, 1], "aa": [0, 1, 1], "sil": [0, 0, 0]}, False)

    values = mix.blend(line, poses, {"PP": "shut", "aa": "open", "sil": "rest pose (no action)"})

    assert values[(loc, 2)] == pytest.approx([-0.1, 0.2, 0.05])  # overlapping: scaled to sum 1
    assert values[(quat, 0)] == pytest.approx([1.0, 0.0, 0.5])  # from the rest quaternion
    assert values[(quat, 1)] == pytest.approx([0.0, 1.0, 0.5])


@pytest.mark.parametrize(
    "names, jaw",
    [
        (["root", "DEF-jaw", "ORG-jaw", "jaw_master"], "jaw_master"),  # Rigify: its control
        (["spine", "c_jawbone.x"], "c_jawbone.x"),  # Auto-Rig Pro
        (["Jaw_tweak", "Jaw"], "Jaw"),
        (["mixamorig:Head", "mixamorig:Jaw"], "mixamorig:Jaw"),
        (["head", "lip.T"], ""),
    ],
    ids=["rigify", "auto-rig-pro", "plain", "mixamo", "none"],
)
def test_the_jaw_bone_is_found_by_name(names, jaw):
    assert mix.jaw_bone(names) == jaw


def test_pose_bone_transforms_are_told_from_other_paths():
    assert mix.bone_channel('pose.bones["lip.L"].location') == ("lip.L", "location")
    assert mix.bone_channel('pose.bones["say \\"a\\""].scale') == ('say "a"', "scale")
    assert mix.bone_channel('pose.bones["lip"]["my_prop"]') is None
    assert mix.bone_channel("location") is None
    assert mix.rest_value('pose.bones["x"].rotation_axis_angle', 2) == 1.0
    assert mix.rest_value('pose.bones["x"].scale', 1) == 1.0
    assert math.isclose(mix.rest_value('pose.bones["x"].rotation_quaternion', 0), 1.0)


CUES = [
    {"viseme": "X", "start": 0.0, "end": 0.25},
    {"viseme": "A", "start": 0.25, "end": 0.5},
    {"viseme": "G", "start": 0.5, "end": 0.75},  # no drawing: the one before stays
    {"viseme": "D", "start": 0.75, "end": 1.0},
]


def test_drawings_change_with_the_held_mouth_shapes():
    chosen = {"X": "rest", "A": "closed", "D": "wide"}
    assert mix.held(CUES, chosen, fps=24, offset=1) == [
        (1, "rest"), (7, "closed"), (19, "wide"), (25, "wide")
    ]  # fmt: skip
    assert mix.undrawn(CUES, chosen) == ["G"]


def test_a_first_shape_without_a_drawing_shows_the_next_drawing():
    assert mix.held(CUES, {"D": "wide"}, fps=24, offset=0) == [(0, "wide"), (24, "wide")]
    assert mix.held(CUES, {}, fps=24, offset=0) == []
