"""Bakes onto rigs without shape keys, through the real bridge: an armature (a jaw bone and
viseme poses kept as actions) and a 2D mouth (a Grease Pencil layer per mouth shape). In the
bpy module (Blender 5.0) and, by a script, in Debian's Blender 3.4; the checks are shared."""

import json
import math
import shutil
import subprocess

import pytest

from blender_addon import bake, compat, targets
from blender_addon.client import Bridge
from blender_addon.request import BakeError
from tests.addon import target_rigs as rigs
from tests.addon.conftest import ROOT, bpy

LINE = "Bob put the big blue map back in the box."
FPS = 24
CLOSURES = ("p", "b", "m")
WIDE = ("ɑ", "æ", "ʌ", "aɪ", "aʊ")  # the Oculus aa viseme's vowels
JAW_ANGLE = 0.3490658503988659  # the default, 20 degrees; the jaw bone is 1 long


@pytest.fixture(scope="module")
def take(espeak, tmp_path_factory):
    """LINE spoken into take.wav, its script beside it (take.txt): a recording aligns the same
    every time, so the bridge's timeline for it is the one the bake got (eSpeak's own timing
    of a typed line varies by a few milliseconds from run to run)."""
    from bridge_server.media.audio import wav_bytes

    folder = tmp_path_factory.mktemp("take")
    speech = espeak.synthesize(LINE)
    (folder / "take.wav").write_bytes(wav_bytes(speech.audio, speech.sample_rate))
    (folder / "take.txt").write_text(LINE)
    return folder / "take.wav"


def bridge_timeline(url: str, take, visemes: str) -> dict:
    """The bridge's timeline for the take: the phonemes and cues the bake got."""
    bridge, fields = Bridge(url), {"text": LINE, "visemes": visemes, "fps": FPS}
    return bridge.wait(bridge.start_upload("/lipsync/audio", take.name, take.read_bytes(), fields))


def middles(timeline: dict, sounds) -> list[int]:
    """The whole frame nearest the middle of each phoneme in `sounds` (the line starts at 1)."""
    return [
        round(1 + (p["start"] + p["end"]) / 2 * FPS)
        for p in timeline["phonemes"]
        if p["ipa"] in sounds
    ]


def observe_armature(rig, last: int) -> dict:
    """What the armature shows at frames 1..last: the chin's drop, the upper lip's height."""
    frames = range(1, last + 1)
    return {
        "jaw": [rigs.jaw_drop(rig, f) for f in frames],
        "lip": [rigs.lip(rig, f, "lip_upper", "location", 2) for f in frames],
    }


def check_armature(seen: dict, timeline: dict) -> None:
    """The jaw opens on open vowels and is shut with the lips pressed on every p, b, m."""
    full = math.sin(JAW_ANGLE)  # the chin's drop at the Jaw Angle
    for frame in middles(timeline, WIDE):
        assert seen["jaw"][frame - 1] > 0.5 * full, frame
    for frame in middles(timeline, CLOSURES):
        assert abs(seen["jaw"][frame - 1]) < 0.01 * full, frame
        assert seen["lip"][frame - 1] == pytest.approx(-0.1, abs=1e-3), frame  # mouth_PP's
    assert max(seen["jaw"]) == pytest.approx(full, rel=0.02)  # never past the Jaw Angle


def check_drawings(seen: list[list[str]], timeline: dict) -> None:
    """One drawing at a time, the cue's, and the closed mouth (A) on every p, b, m."""
    for frame, layers in enumerate(seen, 1):
        t = (frame - 1) / FPS
        cue = [c for c in timeline["visemes"] if c["start"] <= t + 1e-6][-1]
        assert layers == ["mouth_" + cue["viseme"]], frame
    for frame in middles(timeline, CLOSURES):
        assert seen[frame - 1] == ["mouth_A"], frame


def fcurves(action, id_block) -> list:
    return list(compat.fcurves(action, id_block))


def bake_line(scene, take) -> None:
    scene.render.fps = FPS
    scene.lipsync.source, scene.lipsync.audio_path = "AUDIO", str(take)
    assert bpy.ops.lipsync.bake() == {"FINISHED"}


# --- armature ---------------------------------------------------------------------------------


def test_the_jaw_opens_on_vowels_and_the_lips_take_the_poses(scene, take, bridge_url):
    rig = rigs.make_armature()
    bake_line(scene, take)

    action = rig.animation_data.action
    assert action.name == "Rig: take"
    keyed = {(fc.data_path, fc.array_index, fc.group.name) for fc in fcurves(action, rig)}
    assert ('pose.bones["jaw"].rotation_quaternion', 1, "jaw") in keyed
    assert ('pose.bones["lip_upper"].location', 2, "lip_upper") in keyed
    assert ('pose.bones["lip_lower"].scale', 0, "lip_lower") in keyed
    assert {m.channel: m.shape_key for m in rig.lipsync.mapping}["aa"] == "mouth_AA"
    last = round(scene.frame_end)
    check_armature(observe_armature(rig, last), bridge_timeline(bridge_url, take, "oculus15"))


def test_the_previous_action_is_kept_and_a_rebake_replaces_its_line(scene, take):
    rig = rigs.make_armature()
    rig.pose.bones["lip_upper"].keyframe_insert("location", frame=500)  # the animator's own
    rig.animation_data.action.name = "hand made"
    bake_line(scene, take)
    action = rig.animation_data.action
    assert action["lipsync_previous"] == "hand made"
    assert bpy.data.actions["hand made"].use_fake_user  # kept through save and reload
    count = sum(len(fc.keyframe_points) for fc in fcurves(action, rig))

    bake_line(scene, take)

    assert rig.animation_data.action == action
    assert sum(len(fc.keyframe_points) for fc in fcurves(action, rig)) == count
    assert len([a for a in bpy.data.actions if a.name.startswith("Rig: ")]) == 1
    assert "Rig: take" not in targets.names(rig)  # a bake is never a pose


def test_a_rig_without_poses_moves_its_jaw_alone(scene, take):
    rig = rigs.make_armature(poses={})
    bake_line(scene, take)
    paths = {fc.data_path for fc in fcurves(rig.animation_data.action, rig)}
    assert paths == {'pose.bones["jaw"].rotation_quaternion'}
    assert "the jaw alone moves" in rig.lipsync.message
    assert max(rigs.jaw_drop(rig, f) for f in range(1, 30)) > 0.3


def test_a_picked_jaw_bone_turns_in_its_own_rotation_mode(scene, take):
    rig = rigs.make_armature(poses={}, jaw="Kiefer")  # not named like a jaw
    with pytest.raises(BakeError, match="no jaw bone and no viseme poses: name the jaw bone"):
        bake.check_target(rig)
    rig.lipsync.jaw_bone = "Chin"
    with pytest.raises(BakeError, match="no bone named 'Chin': pick the jaw bone as Jaw Bone"):
        bake.check_target(rig)
    rig.lipsync.jaw_bone = "Kiefer"
    rig.pose.bones["Kiefer"].rotation_mode = "XYZ"

    bake_line(scene, take)

    keyed = {(fc.data_path, fc.array_index) for fc in fcurves(rig.animation_data.action, rig)}
    assert keyed == {('pose.bones["Kiefer"].rotation_euler', 0)}
    assert max(rigs.jaw_drop(rig, f, "Kiefer") for f in range(1, 30)) > 0.3


def test_with_no_jaw_angle_the_poses_alone_move_the_bones(scene, take):
    rig = rigs.make_armature()
    rig.lipsync.jaw_angle = 0.0
    bake_line(scene, take)
    paths = {fc.data_path for fc in fcurves(rig.animation_data.action, rig)}
    assert not any("jaw" in p for p in paths) and paths


# --- 2D: a Grease Pencil layer per mouth shape ---------------------------------------------------


def test_one_drawing_shows_at_a_time_following_the_mouth_shapes(scene, take, bridge_url):
    mouth = rigs.make_gp_mouth()
    bake_line(scene, take)

    action = mouth.data.animation_data.action
    assert action.name == "Mouth: take" and mouth.lipsync.viseme_set == "rhubarb"
    curves = fcurves(action, mouth.data)
    assert {fc.data_path for fc in curves} == {f'layers["mouth_{s}"].hide' for s in rigs.RHUBARB}
    assert {p.interpolation for fc in curves for p in fc.keyframe_points} == {"CONSTANT"}
    seen = [rigs.shown(mouth, f) for f in range(1, round(scene.frame_end) + 1)]
    check_drawings(seen, bridge_timeline(bridge_url, take, "rhubarb"))
    count = sum(len(fc.keyframe_points) for fc in curves)
    bake_line(scene, take)
    assert sum(len(fc.keyframe_points) for fc in fcurves(action, mouth.data)) == count


def test_a_2d_mouth_needs_layers_named_after_mouth_shapes(scene):
    empty = rigs.make_gp_mouth(shapes=[])
    with pytest.raises(BakeError, match="has no layers: draw each mouth shape on a layer"):
        bake.check_target(empty)
    rigs.make_gp_mouth("Face", shapes=["Eyes", "Nose"], prefix="")
    scene.lipsync.source, scene.lipsync.text = "TEXT", LINE
    before = len(bpy.data.actions)
    with pytest.raises(RuntimeError, match="or pick a layer for each oculus15 channel"):
        bpy.ops.lipsync.bake()
    assert len(bpy.data.actions) == before  # nothing changed


def test_other_objects_are_refused_with_what_to_select(scene):
    camera = rigs.link_active(bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam")))
    assert not bpy.ops.lipsync.bake.poll()
    with pytest.raises(BakeError, match="not a mouth Lip Sync can key.*its armature.*Grease Pen"):
        bake.check_target(camera)


# --- the same in Blender 3.4 ----------------------------------------------------------------------

BLENDER_34_SCRIPT = """
import json, sys
root, url, take = sys.argv[sys.argv.index("--") + 1:]
sys.path.insert(0, root)
import addon_utils, bpy
from tests.addon import target_rigs as rigs
addon_utils.enable("blender_addon", default_set=True)
bpy.context.preferences.addons["blender_addon"].preferences.url = url
scene = bpy.context.scene
scene.render.fps = 24
scene.lipsync.source, scene.lipsync.audio_path = "AUDIO", take
rig = rigs.make_armature()
rig.pose.bones["lip_upper"].keyframe_insert("location", frame=500)
rig.animation_data.action.name = "hand made"
assert bpy.ops.lipsync.bake() == {"FINISHED"}
action = rig.animation_data.action
count = lambda: sum(len(fc.keyframe_points) for fc in action.fcurves)
first = count()
assert bpy.ops.lipsync.bake() == {"FINISHED"}
mouth = rigs.make_gp_mouth()
assert bpy.ops.lipsync.bake() == {"FINISHED"}
drawn = mouth.data.animation_data.action
last = round(scene.frame_end)
print("RESULT " + json.dumps({
    "version": bpy.app.version_string,
    "action": action.name, "keys": [first, count()],
    "previous": action.get("lipsync_previous"),
    "previous_kept": bpy.data.actions["hand made"].use_fake_user,
    "groups": sorted({fc.group.name for fc in action.fcurves}),
    "jaw": [rigs.jaw_drop(rig, f) for f in range(1, last + 1)],
    "lip": [rigs.lip(rig, f, "lip_upper", "location", 2) for f in range(1, last + 1)],
    "drawn": drawn.name,
    "interpolations": sorted({p.interpolation for fc in drawn.fcurves for p in fc.keyframe_points}),
    "shown": [rigs.shown(mouth, f) for f in range(1, last + 1)],
}))
"""


@pytest.mark.skipif(shutil.which("blender") is None, reason="no `blender` binary on PATH")
def test_the_same_bakes_in_blender_34(take, bridge_url, tmp_path):
    script = tmp_path / "targets.py"
    script.write_text(BLENDER_34_SCRIPT)
    command = ["blender", "-b", "--factory-startup", "--python-exit-code", "1", "--python"]
    done = subprocess.run(
        [*command, str(script), "--", str(ROOT), bridge_url, str(take)],
        capture_output=True,
        text=True,
        timeout=300,
    )

    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[0].removeprefix("RESULT "))
    assert result["version"].startswith("3.4")
    assert result["action"] == "Rig: take" and result["keys"][0] == result["keys"][1]
    assert result["previous"] == "hand made" and result["previous_kept"]
    assert result["groups"] == ["jaw", "lip_lower", "lip_upper"]
    check_armature(result, bridge_timeline(bridge_url, take, "oculus15"))
    assert result["drawn"] == "Mouth: take" and result["interpolations"] == ["CONSTANT"]
    check_drawings(result["shown"], bridge_timeline(bridge_url, take, "rhubarb"))


# --- in Blender 3.4's UI: the modal bake, and one undo ------------------------------------------

UI_SESSION = """
import json, sys
import bpy
root, url, take, out = sys.argv[sys.argv.index("--") + 1:]
sys.path.insert(0, root)
import addon_utils
from tests.addon import target_rigs as rigs
addon_utils.enable("blender_addon", default_set=True)
bpy.context.preferences.addons["blender_addon"].preferences.url = url
report = {}


def context():
    window = bpy.context.window_manager.windows[0]
    area = next(a for a in window.screen.areas if a.type == "VIEW_3D")
    region = next(r for r in area.regions if r.type == "WINDOW")
    return bpy.context.temp_override(window=window, area=area, region=region)


def action(name):
    obj = bpy.data.objects[name]
    anim = (obj if obj.type == "ARMATURE" else obj.data).animation_data
    return anim.action.name if anim and anim.action else None


def steps():
    yield
    with context():
        rig = rigs.make_armature()
        rig.pose.bones["lip_upper"].keyframe_insert("location", frame=500)
        rig.animation_data.action.name = "hand made"
        rigs.make_gp_mouth()
    for name in ("Rig", "Mouth"):
        with context():
            bpy.context.view_layer.objects.active = bpy.data.objects[name]
            bpy.ops.ed.undo_push(message="before the bake")
            settings = bpy.context.scene.lipsync
            settings.source, settings.audio_path = "AUDIO", take
            report[name] = {"invoke": list(bpy.ops.lipsync.bake("INVOKE_DEFAULT"))}
        while bpy.context.scene.lipsync.running:
            yield
        report[name]["baked"] = action(name)
        with context():
            bpy.ops.ed.undo()
        report[name]["after_undo"] = action(name)
        report[name]["actions"] = sorted(a.name for a in bpy.data.actions if "take" in a.name)


def tick(state=steps()):
    try:
        next(state)
        return 0.1
    except Exception as e:
        if not isinstance(e, StopIteration):
            report["error"] = repr(e)
        with open(out, "w") as f:
            json.dump(report, f)
        bpy.ops.wm.quit_blender()
        return None


bpy.app.timers.register(tick, first_interval=1.0)
"""


@pytest.mark.skipif(
    not (shutil.which("blender") and shutil.which("xvfb-run")),
    reason="needs Blender and Xvfb (apt-get install blender xvfb xauth)",
)
def test_one_undo_takes_a_bake_away_in_blender_34s_ui(take, bridge_url, tmp_path):
    script, out = tmp_path / "session.py", tmp_path / "report.json"
    script.write_text(UI_SESSION)
    run = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x720x24", "blender", "--factory-startup",
         "--python", str(script), "--", str(ROOT), bridge_url, str(take), str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert "error" not in report, report["error"]
    for name, before in (("Rig", "hand made"), ("Mouth", None)):
        assert report[name]["invoke"] == ["RUNNING_MODAL"]  # the bridge works in a thread
        assert report[name]["baked"] == f"{name}: take"
        assert report[name]["after_undo"] == before  # the action it had, and no other
        assert report[name]["actions"] == []  # the bake's action went with the undo
