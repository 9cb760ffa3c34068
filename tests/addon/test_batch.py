"""Batch baking: Debian's Blender 3.4 (`blender -b ... -P batch.py`) and the bpy module, each
through a real bridge, going on past a bad file."""

import json
import shutil
import subprocess
import sys

import pytest

from blender_addon import compat
from tests.addon.conftest import ROOT, bpy, make_rig
from tests.bridge import free_port

BATCH = str(ROOT / "blender_addon" / "batch.py")
MAKE_SCENE_34 = """
import sys, bpy
bpy.ops.mesh.primitive_plane_add()
head = bpy.context.object
head.name = "Head"
head.shape_key_add(name="Basis")
for v in "sil pp ff th dd kk ch ss nn rr aa e ih oh ou".split():
    head.shape_key_add(name="vrc.v_" + v).data[0].co.z = 0.5
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""
LINES = {"a_hello": "Hello there.", "b_bob": "Bob put the map back."}


@pytest.fixture
def shot(scene, espeak, tmp_path):
    """scene.blend with the rig "Head", and lines/ with two recordings (one with its script
    beside it) and a damaged file."""
    from bridge_server.media.audio import wav_bytes

    make_rig([f"vrc.v_{v}" for v in "sil pp ff th dd kk ch ss nn rr aa e ih oh ou".split()])
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    lines = tmp_path / "lines"
    lines.mkdir()
    for name, text in LINES.items():
        speech = espeak.synthesize(text)
        (lines / f"{name}.wav").write_bytes(wav_bytes(speech.audio, speech.sample_rate))
    (lines / "a_hello.txt").write_text(LINES["a_hello"])
    (lines / "c_broken.wav").write_bytes(b"RIFF\x00\x00garbage" * 40)
    return blend, lines


def check_summary(run: subprocess.CompletedProcess) -> None:
    assert run.returncode == 1, run.stdout + run.stderr  # one file failed
    assert "2 of 3 lines baked" in run.stdout
    assert "FAILED c_broken.wav: c_broken.wav is not an audio or video file" in run.stdout


@pytest.mark.skipif(
    shutil.which("blender") is None, reason="needs Blender (apt-get install blender)"
)
def test_blender_binary_bakes_a_folder_onto_nla_strips(shot, bridge_url, tmp_path):
    _, lines = shot
    blend, out = tmp_path / "scene34.blend", tmp_path / "baked.blend"
    made = subprocess.run(  # Blender 3.4 cannot read a file saved by 5.0: make the scene in 3.4
        ["blender", "-b", "--factory-startup", "--python-expr", MAKE_SCENE_34, "--", str(blend)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert blend.exists(), made.stdout + made.stderr
    run = subprocess.run(
        ["blender", "-b", str(blend), "-P", BATCH, "--", "--object", "Head", "--audio",
         str(lines), "--out", str(out), "--bridge", bridge_url, "--nla"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    check_summary(run)
    bpy.ops.wm.open_mainfile(filepath=str(out))
    key = bpy.data.objects["Head"].data.shape_keys
    actions = {a.name: a for a in bpy.data.actions}
    assert {"Head: a_hello", "Head: b_bob"} <= set(actions)
    assert all(actions[n].use_fake_user for n in ("Head: a_hello", "Head: b_bob"))
    strips = sorted(
        (s for t in key.animation_data.nla_tracks for s in t.strips), key=lambda s: s.frame_start
    )
    assert [s.action.name for s in strips] == ["Head: a_hello", "Head: b_bob"]
    assert strips[1].frame_start > strips[0].frame_end  # one after the other
    sounds = compat.strips(bpy.context.scene)
    assert sounds["b_bob"].frame_start == pytest.approx(strips[1].frame_start, abs=1)


def test_bpy_module_bakes_each_file_onto_its_own_action(shot, bridge_url, tmp_path):
    blend, lines = shot
    out = tmp_path / "baked.blend"
    run = subprocess.run(
        [sys.executable, BATCH, "--blend", str(blend), "--object", "Head", "--audio",
         str(lines), "--out", str(out), "--bridge", bridge_url],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    check_summary(run)
    bpy.ops.wm.open_mainfile(filepath=str(out))
    for name in LINES:
        action = bpy.data.actions[f"Head: {name}"]
        assert action.use_fake_user and action.frame_range[1] > action.frame_range[0]


def test_a_missing_object_or_bridge_stops_before_anything_is_written(shot, tmp_path):
    blend, lines = shot
    out = tmp_path / "baked.blend"
    run = subprocess.run(
        [sys.executable, BATCH, "--blend", str(blend), "--object", "Face", "--audio", str(lines),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2 and "no object named 'Face'; meshes in this file: Head" in run.stderr
    assert not out.exists()


def batch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, BATCH, *args], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_a_rerun_with_nla_lays_each_line_once_and_says_what_each_said(shot, bridge_url, tmp_path):
    blend, lines = shot
    out, report = tmp_path / "baked.blend", tmp_path / "report.json"
    common = ["--object", "Head", "--audio", str(lines), "--bridge", bridge_url, "--nla"]
    check_summary(batch("--blend", str(blend), "--out", str(out), *common))
    run = batch("--blend", str(out), *common, "--report", str(report))  # the same folder again
    check_summary(run)
    assert "action 'Head: a_hello'" in run.stdout and ': "Hello there."' in run.stdout
    rows = {r["file"]: r for r in json.loads(report.read_text())}
    assert rows["a_hello.wav"]["said"] == "Hello there."  # the script beside it
    assert "map" in rows["b_bob.wav"]["said"].lower()  # recognised: no script
    assert rows["b_bob.wav"]["words"] == rows["b_bob.wav"]["said"].split()
    bpy.ops.wm.open_mainfile(filepath=str(out))
    anim = bpy.data.objects["Head"].data.shape_keys.animation_data
    tracks = [t for t in anim.nla_tracks if t.name.startswith("Lip Sync")]
    assert [[s.name for s in t.strips] for t in tracks] == [["Head: a_hello", "Head: b_bob"]]
    said = bpy.data.actions["Head: a_hello"]["lipsync_transcript"]
    assert said == "Hello there."


def test_a_batch_where_every_line_failed_saves_nothing(shot, bridge_url, tmp_path):
    blend, lines = shot
    out = tmp_path / "baked.blend"
    run = batch("--blend", str(blend), "--object", "Head", "--audio", str(lines / "c_broken.wav"),
                str(tmp_path / "missing.wav"), "--out", str(out), "--bridge", bridge_url)  # fmt: skip
    assert run.returncode == 1 and "0 of 2 lines baked; nothing saved" in run.stdout
    assert not out.exists()


def test_a_bridge_that_is_down_names_the_batch_flag(shot, tmp_path):
    blend, lines = shot
    url = f"http://127.0.0.1:{free_port()}"
    run = batch("--blend", str(blend), "--object", "Head", "--audio", str(lines), "--bridge", url)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "does not answer" in run.stderr and 'give --start "/path/to/' in run.stderr
    assert "Lip Sync panel" not in run.stderr


@pytest.mark.skipif(
    shutil.which("blender") is None, reason="needs Blender (apt-get install blender)"
)
def test_blender_keys_timelines_made_by_lipsync_batch_without_a_bridge(shot, tmp_path):
    from bridge_server.batch import find_lines, run

    _, lines = shot
    names = ",".join(f"vrc.v_{v}" for v in "sil pp ff th dd kk ch ss nn rr aa e ih oh ou".split())
    baked = tmp_path / "baked"
    summary = run(find_lines([lines]), baked, options={"shape_keys": names}, workers=1)
    assert summary.done == 2 and len(summary.failed) == 1  # the damaged file, recorded
    blend, out = tmp_path / "scene34.blend", tmp_path / "keyed.blend"
    subprocess.run(["blender", "-b", "--factory-startup", "--python-expr", MAKE_SCENE_34, "--",
                    str(blend)], capture_output=True, text=True, timeout=300)  # fmt: skip
    run34 = subprocess.run(  # no --bridge and none running: Blender only writes keys
        ["blender", "-b", str(blend), "-P", BATCH, "--", "--object", "Head", "--timelines",
         str(baked), "--out", str(out), "--nla", "--bridge", f"http://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run34.returncode == 1, run34.stdout + run34.stderr  # the failed line is reported
    assert "2 of 3 lines baked" in run34.stdout and "FAILED c_broken" in run34.stdout
    assert '"Hello there."' in run34.stdout  # what each line says, from its timeline
    bpy.ops.wm.open_mainfile(filepath=str(out))
    key = bpy.data.objects["Head"].data.shape_keys
    strips = sorted(
        (s for t in key.animation_data.nla_tracks for s in t.strips), key=lambda s: s.frame_start
    )
    assert [s.action.name for s in strips] == ["Head: a_hello", "Head: b_bob"]
    action = strips[1].action  # made in 3.4, opened in 5.0: its curves in whatever slot it got
    fcurves = [f for layer in action.layers for s in layer.strips for bag in s.channelbags
               for f in bag.fcurves]  # fmt: skip
    assert any("vrc.v_pp" in f.data_path and len(f.keyframe_points) > 1 for f in fcurves)
    sounds = [s.name for s in compat.strips(bpy.context.scene) if s.type == "SOUND"]
    assert sorted(sounds) == ["a_hello", "b_bob"]
