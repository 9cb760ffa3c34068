"""The add-on registered in the bpy module, baking through a real running bridge."""

import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest

from blender_addon import compat
from tests.addon.conftest import bpy, make_rig
from tests.bridge import free_port

LINE = "Bob put the big blue map back in the box."


def keys_of(obj) -> dict[str, list[tuple[float, float]]]:
    """Shape key -> [(frame, value)] of the shape keys' action."""
    key = obj.data.shape_keys
    out = {}
    for fc in compat.fcurves(key.animation_data.action, key):
        name = fc.data_path.split('"')[1]
        out[name] = [tuple(p.co) for p in fc.keyframe_points]
    return out


def value_at(obj, shape_key: str, frame: float) -> float:
    """The shape key's animated value at `frame`, as Blender plays it."""
    key = obj.data.shape_keys
    path = f'key_blocks["{shape_key}"].value'
    curve = next(c for c in compat.fcurves(key.animation_data.action, key) if c.data_path == path)
    return curve.evaluate(frame)


def bridge_timeline(url: str, text: str, fps: float) -> dict:
    body = json.dumps({"text": text, "visemes": "oculus15", "fps": fps, "wait": True}).encode()
    request = urllib.request.Request(
        url + "/lipsync/text", body, headers={"Content-Type": "application/json"}
    )
    return json.loads(urllib.request.urlopen(request, timeout=60).read())


def test_a_typed_line_is_spoken_and_keyed_with_its_sound(head, scene, bridge_url):
    scene.render.fps = 30
    settings = scene.lipsync
    settings.source, settings.text = "TEXT", LINE
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    action = head.data.shape_keys.animation_data.action
    assert action.name == "Head: Bob put the big..."
    keys = keys_of(head)
    assert {"vrc.v_pp", "vrc.v_aa", "vrc.v_sil"} <= set(keys)
    assert head.lipsync.viseme_set == "oculus15"  # detected from the names, kept on the object
    frames = [f for points in keys.values() for f, _ in points]
    assert all(f == round(f) for f in frames)  # on whole frames: no sub-frame keys to tidy up
    # The lips close (PP near 1) at each p/b/m the bridge timed for the same line.
    timeline = bridge_timeline(bridge_url, LINE, 30)
    closures = [p for p in timeline["phonemes"] if p["ipa"] in ("p", "b", "m")]
    for p in closures:
        middle = scene.frame_start + (p["start"] + p["end"]) / 2 * 30
        assert value_at(head, "vrc.v_pp", middle) > 0.5, p
    # The sound is in the sequencer at the first frame, and playback reaches the end.
    strip = compat.strips(scene)["Bob put the big..."]
    assert strip.frame_start == scene.frame_start
    assert scene.frame_end >= max(f for f, _ in keys["vrc.v_pp"])
    # Lead (Advanced): the bake sends it, and the mouth moves that much before the sound.
    frames = range(scene.frame_start + 6, scene.frame_start + 60)
    on_time = [value_at(head, "vrc.v_pp", f) for f in frames]
    settings.lead = 0.1  # 3 frames at 30 fps
    assert bpy.ops.lipsync.bake() == {"FINISHED"}

    # The line is spoken again, and eSpeak's timing varies by a few ms between runs, enough to
    # move a closure's edge by a frame: find the shift that matches best, not an exact match.
    def mismatch(shift):
        return sum(abs(value_at(head, "vrc.v_pp", f - shift) - v) for f, v in zip(frames, on_time))

    assert min(range(7), key=mismatch) == 3  # the mouth moves 3 frames earlier
    assert mismatch(3) < 0.3 * mismatch(0)


def test_a_recording_with_its_script_beside_it_lands_at_the_offset(head, scene, espeak, tmp_path):
    from bridge_server.media.audio import wav_bytes

    speech = espeak.synthesize("Maybe a bomb.")
    wav = tmp_path / "take01.wav"
    wav.write_bytes(wav_bytes(speech.audio, speech.sample_rate))
    (tmp_path / "take01.txt").write_text("Maybe a bomb.")
    scene.render.fps, scene.render.fps_base = 30000, 1001  # 29.97
    settings = scene.lipsync
    settings.source, settings.audio_path, settings.frame_offset = "AUDIO", str(wav), 10
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    keys = keys_of(head)
    first = min(f for points in keys.values() for f, _ in points)
    assert first == pytest.approx(scene.frame_start + 10, abs=0.01)
    assert head.data.shape_keys.animation_data.action.name == "Head: take01"
    # "bomb": the lips shut mid-line (the aligner puts the m that starts the recording, with no
    # silence before it, up to 0.1 s late, depending on eSpeak's pitch flutter between calls)
    b = [p for p in speech.phonemes if p.ipa == "b"][-1]
    fps = 30000 / 1001
    assert value_at(head, "vrc.v_pp", 11 + (b.start + b.end) / 2 * fps) > 0.5
    assert compat.strips(scene)["take01"].frame_start == 11


def test_a_sound_strip_is_followed_where_it_lies(head, scene, espeak, tmp_path):
    from bridge_server.media.audio import wav_bytes

    speech = espeak.synthesize("Hello there.")
    wav = tmp_path / "hello.wav"
    wav.write_bytes(wav_bytes(speech.audio, speech.sample_rate))
    compat.add_sound_strip(scene, "hello", str(wav), 40)
    settings = scene.lipsync
    settings.source, settings.strip = "STRIP", "hello"
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    first = min(f for points in keys_of(head).values() for f, _ in points)
    assert first == pytest.approx(40)
    assert len(compat.strips(scene)) == 1  # no second copy of the sound


def test_the_previous_animation_is_kept_and_a_rebake_replaces_only_its_line(head, scene):
    key = head.data.shape_keys
    key.key_blocks["vrc.v_aa"].value = 0.3
    key.key_blocks["vrc.v_aa"].keyframe_insert("value", frame=500)
    hand_made = key.animation_data.action
    hand_made.name = "hand made"
    settings = scene.lipsync
    settings.source, settings.text = "TEXT", "Hello there."
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    assert key.animation_data.action.name == "Head: Hello there."
    assert bpy.data.actions["hand made"].use_fake_user  # kept through save and reload
    count = sum(len(v) for v in keys_of(head).values())
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    assert sum(len(v) for v in keys_of(head).values()) == count  # replaced, not doubled
    assert len([a for a in bpy.data.actions if a.name.startswith("Head: Hello")]) == 1


def test_a_corrected_mapping_is_used_and_can_be_saved_and_loaded(head, scene, tmp_path):
    settings = scene.lipsync
    settings.source, settings.text = "TEXT", "Bob."
    assert bpy.ops.lipsync.detect_rig() == {"FINISHED"}
    pp = next(c for c in head.lipsync.mapping if c.channel == "PP")
    pp.shape_key = "vrc.v_sil"  # the user's correction: PP drives another key
    next(c for c in head.lipsync.mapping if c.channel == "sil").shape_key = ""
    preset = tmp_path / "my_rig.json"
    assert bpy.ops.lipsync.save_mapping(filepath=str(preset)) == {"FINISHED"}
    saved = json.loads(preset.read_text())
    assert saved["viseme_set"] == "oculus15" and saved["shape_keys"]["PP"] == "vrc.v_sil"
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    keys = keys_of(head)
    assert "vrc.v_pp" not in keys and max(v for _, v in keys["vrc.v_sil"]) > 0.5
    head.lipsync.mapping.clear()
    assert bpy.ops.lipsync.load_mapping(filepath=str(preset)) == {"FINISHED"}
    assert {c.channel: c.shape_key for c in head.lipsync.mapping}["PP"] == "vrc.v_sil"


def test_save_and_reload_keep_keys_sound_and_mapping(head, scene, tmp_path):
    settings = scene.lipsync
    settings.source, settings.text = "TEXT", "Hello there."
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    before = keys_of(head)
    path = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    head = bpy.data.objects["Head"]
    assert keys_of(head) == before
    assert "Hello there." in compat.strips(bpy.context.scene)
    assert len(head.lipsync.mapping) == 15


# --- bad input: a clear message, and the scene as it was ---------------------------------------


def unchanged(scene) -> tuple:
    return len(bpy.data.actions), len(compat.strips(scene)), scene.frame_end


def fails(match: str) -> None:
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.lipsync.bake()


def test_the_panels_options_are_the_bridges_from_the_shipped_snapshot(scene):
    from blender_addon import options

    props = type(scene.lipsync).bl_rna.properties
    for name in options.ANIMATION:
        o, prop = options.option(name), props[name]
        assert prop.description == o["help"], name
        assert prop.default == pytest.approx(o["default"]), name  # Blender keeps 32-bit floats
        if o["min"] is not None:
            assert (prop.hard_min, prop.hard_max) == pytest.approx((o["min"], o["max"])), name
    ids = lambda name: [item.identifier for item in props[name].enum_items]  # noqa: E731
    assert ids("engine") == options.SNAPSHOT["engines"]["audio"]
    assert ids("voice_engine") == options.SNAPSHOT["engines"]["text"]
    assert ids("viseme_set") == ["AUTO", *options.SNAPSHOT["viseme_sets"]]


def test_without_a_mesh_with_shape_keys_bake_is_off_and_says_why(scene):
    assert not bpy.ops.lipsync.bake.poll()
    make_rig([]).shape_key_clear()
    assert not bpy.ops.lipsync.bake.poll()


def test_shape_keys_that_match_nothing_leave_a_list_to_fill(scene):
    obj = make_rig(["blink_left", "brow_up"])
    scene.lipsync.source, scene.lipsync.text = "TEXT", "Hello."
    before = unchanged(scene)
    fails(
        "name them like vrc.v_aa.*or pick a shape key for each oculus15 channel in the panel's Mapping list"
    )
    assert unchanged(scene) == before
    assert len(obj.lipsync.mapping) > 0 and not any(c.shape_key for c in obj.lipsync.mapping)


def test_a_bridge_that_is_down_is_named_with_the_fix(head, scene):
    bpy.context.preferences.addons[
        "blender_addon"
    ].preferences.url = f"http://127.0.0.1:{free_port()}"
    scene.lipsync.source, scene.lipsync.text = "TEXT", "Hello."
    before = unchanged(scene)
    fails("does not answer.*press Start in the Lip Sync panel")
    assert unchanged(scene) == before


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "cannot read"),
        (b"", "is empty"),
        (b"RIFF\x00\x01garbage" * 50, "not an audio or video file"),
    ],
    ids=["missing", "empty", "corrupt"],
)
def test_an_unusable_file_is_named_and_nothing_changes(head, scene, tmp_path, content, match):
    path = tmp_path / "line.wav"
    if content is not None:
        path.write_bytes(content)
    scene.lipsync.source, scene.lipsync.audio_path = "AUDIO", str(path)
    before = unchanged(scene)
    fails(match)
    assert unchanged(scene) == before


def test_linked_data_is_refused_with_the_way_out(scene, tmp_path):
    make_rig(["vrc.v_pp", "vrc.v_aa"], name="Linked")
    library = tmp_path / "library.blend"
    bpy.data.libraries.write(str(library), {bpy.data.objects["Linked"]})
    bpy.ops.wm.read_homefile(use_empty=True)
    with bpy.data.libraries.load(str(library), link=True) as (src, dst):
        dst.objects = ["Linked"]
    obj = dst.objects[0]
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    scene = bpy.context.scene
    scene.lipsync.source, scene.lipsync.text = "TEXT", "Hello."
    fails("is linked from .*library.blend; make it local")


def test_the_add_on_starts_the_bridge_when_needed_and_stops_what_it_started(head, scene):
    from blender_addon import operators
    from tests.bridge import LIPSYNC

    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.url, prefs.command, prefs.autostart = (
        f"http://127.0.0.1:{free_port()}",
        LIPSYNC + " serve",
        True,
    )
    scene.lipsync.source, scene.lipsync.text = "TEXT", "Hello."
    assert bpy.ops.lipsync.bake() == {"FINISHED"}  # the bridge was down: started, then baked
    process = operators.STATE["process"]
    assert process is not None and process.poll() is None
    assert bpy.ops.lipsync.bridge_stop() == {"FINISHED"}
    assert process.wait(timeout=30) is not None and operators.STATE["process"] is None
    prefs.command = "/nowhere/lipsync serve"
    with pytest.raises(RuntimeError, match="cannot start the bridge.*set the full path"):
        bpy.ops.lipsync.bridge_start()


def test_one_button_on_the_demo_head(scene):
    from blender_addon.demo import head as demo_head  # the repository's demo, not in the zips

    head = demo_head.build_demo_head()
    bpy.context.view_layer.objects.active = head
    scene.lipsync.source, scene.lipsync.text = "TEXT", LINE
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    assert head.lipsync.viseme_set == "preston_blair"
    keys = keys_of(head)
    assert {"MBP", "AI", "O", "FV", "rest"} <= set(keys)
    assert max(v for _, v in keys["MBP"]) > 0.9


def test_a_reference_video_keys_the_face_and_shows_the_picture(head, scene):
    from tests.conftest import SHARED

    clip = SHARED / "grid" / "videos" / "lbax4n.mpg"
    settings = scene.lipsync
    settings.source, settings.video_path = "VIDEO", str(clip)
    settings.script, settings.video_weight = "lay blue at x four now", 0.8
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    keys = keys_of(head)
    assert max(v for _, v in keys["vrc.v_aa"]) > 0.3
    strips = compat.strips(scene)
    assert strips["lbax4n"].type == "SOUND" and strips["lbax4n (video)"].type == "MOVIE"
    assert strips["lbax4n (video)"].frame_start == scene.frame_start


def test_a_script_is_timed_to_the_lips_of_a_video_without_its_sound(head, scene):
    from tests.conftest import SHARED

    clip = SHARED / "grid" / "videos" / "pwij3p.mpg"
    settings = scene.lipsync
    settings.source, settings.video_path = "LIPS", str(clip)
    settings.script = ""
    with pytest.raises(RuntimeError, match="type the script"):
        bpy.ops.lipsync.bake()
    settings.script = "place white in j three please"
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    assert max(v for _, v in keys_of(head)["vrc.v_pp"]) > 0.9  # "place", "please"
    strips = compat.strips(scene)
    assert [s.type for s in strips] == ["MOVIE"]  # the picture, and no sound strip


def test_check_sync_measures_a_late_sound_and_shift_sound_moves_its_strip(head, scene, tmp_path):
    from blender_addon import request, sync
    from tests.conftest import SHARED
    from tests.videos import late_sound

    clip = late_sound(SHARED / "grid" / "videos" / "pwij3p.mpg", tmp_path / "late.mkv", 0.2)
    scene.render.fps, scene.render.fps_base = 25, 1
    settings = scene.lipsync
    settings.source, settings.video_path = "VIDEO", str(clip)
    settings.script = "place white in j three please"
    assert not bpy.ops.lipsync.shift_sound.poll()  # nothing checked yet
    assert bpy.ops.lipsync.check_sync() == {"FINISHED"}
    assert settings.sync_ms == pytest.approx(200, abs=40) and settings.sync_reason == ""
    assert unchanged(scene) == (0, 0, scene.frame_end)  # a check changes nothing
    late = request.sync_words(settings.sync_ms, 25)
    assert sync.result(scene, settings) == (late, 5) and late.endswith("ms late (5 frames)")
    with pytest.raises(RuntimeError, match="no sound strip of late.mkv in the sequencer: bake"):
        bpy.ops.lipsync.shift_sound()
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    keys, strips = keys_of(head), compat.strips(scene)
    sound, movie = strips["late"], strips["late (video)"]
    start = sound.frame_start
    assert bpy.ops.lipsync.shift_sound() == {"FINISHED"}
    assert sound.frame_start == start - 5  # 200 ms earlier at 25 fps
    assert movie.frame_start == start and keys_of(head) == keys  # the picture and keys stay
    assert sync.result(scene, settings) == ("In sync (moved 5 frames)", 0)
    assert not bpy.ops.lipsync.shift_sound.poll()  # nothing left to move
    assert "UNDO" in sync.LIPSYNC_OT_shift_sound.bl_options
    settings.source = "TEXT"
    assert not bpy.ops.lipsync.check_sync.poll()  # a typed line has no picture


# --- the panel: legible at the sidebar's default width, the list filled without the bridge -----


def test_the_panels_fixed_texts_fit_the_default_sidebar_width(scene):
    """5.0's UI font at the default sidebar width (the bpy module has no window to draw the
    panel in; test_ui.py draws it in 3.4 and checks every text it drew)."""
    from blender_addon import fit, panels, request

    width, panel = fit.box_px(), fit.panel_px()
    share = fit.column_share(list(panels.FIELD_LABELS), width)
    props = type(scene.lipsync).bl_rna.properties
    menu, icon = panels.MENU_PX * fit.scale(), fit.ICON_PX * fit.scale()

    def choices(name):
        return [(i.name, i.icon != "NONE") for i in props[name].enum_items]

    texts = [(t, False, share * width) for t in panels.FIELD_LABELS]
    texts += [(t, False, width) for t in ("Source", "Visemes", "Said (99 words timed)")]
    texts += [(t, True, width) for t in (panels.ADVANCED, "Check Sync", "Shift Sound")]
    slider = width - panels.PAD_PX * fit.scale()  # the room between name and value kept
    for name in ("intensity", "smoothing", "lead", "max_error"):  # at both ends of the range
        for value in (props[name].hard_min, props[name].hard_max):
            setattr(scene.lipsync, name, value)
            texts += [(panels.slider_text(scene.lipsync, name), False, slider)]
    texts += [(w, True, 0.6 * panel) for w, _ in [*panels.BRIDGE_WORDS.values(), panels.UNCHECKED]]
    texts += [(f"{w} 100%", False, panel - icon) for w in request.STAGES.values()]
    cut = [t for t, icon, slot in texts if not fit.fits(t, slot, icon)]
    menus = [(n, i, width - menu) for n, i in choices("source")]
    menus += [
        (n, i, (1 - share) * width - menu) for n, i in choices("engine") + choices("voice_engine")
    ]
    menus += [(n, i, width - icon - menu) for n, i in choices("viseme_set")]
    cut += [n for n, icon, slot in menus if not fit.fits(n, slot, icon)]
    assert cut == []
    # the measure fails where Blender cuts: the old status label, in a third of its row
    assert not fit.fits("Bridge: running (0.1.0)", panel / 3, icon=True)
    assert fit.wrap("rig preset 'vrchat': 15 of 15 oculus15 channels", width) == [
        "rig preset 'vrchat': 15 of 15",
        "oculus15 channels",
    ]


def test_the_mapping_list_fills_on_selection_without_the_bridge(scene):
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.url = f"http://127.0.0.1:{free_port()}"  # down
    head = make_rig([f"vrc.v_{v}" for v in "sil pp ff th dd kk ch ss nn rr aa e ih oh ou".split()])
    assert len(head.lipsync.mapping) == 0
    bpy.context.view_layer.update()  # what a selection does: a depsgraph update
    assert {c.channel: c.shape_key for c in head.lipsync.mapping}["PP"] == "vrc.v_pp"
    assert head.lipsync.message == "rig preset 'vrchat': 15 of 15 oculus15 channels"
    head.lipsync.mapping.clear()
    assert bpy.ops.lipsync.detect_rig() == {"FINISHED"}  # the bridge is down: the presets
    assert len(head.lipsync.mapping) == 15
    face = make_rig(["blink_left", "brow_up"], name="Face")
    bpy.context.view_layer.update()
    assert len(face.lipsync.mapping) == 0  # no preset fits: Detect asks the bridge
    with pytest.raises(RuntimeError, match="does not answer"):
        bpy.ops.lipsync.detect_rig()


# --- dialogue you can see and fix ------------------------------------------------------------------


def test_transcribe_fills_the_script_and_the_action_keeps_what_was_said(
    head, scene, espeak, tmp_path
):
    from bridge_server.media.audio import wav_bytes

    speech = espeak.synthesize(LINE)
    wav = tmp_path / "take02.wav"
    wav.write_bytes(wav_bytes(speech.audio, speech.sample_rate))
    settings = scene.lipsync
    settings.source, settings.audio_path, settings.script = "AUDIO", str(wav), ""
    settings.lang = "en"
    assert bpy.ops.lipsync.transcribe() == {"FINISHED"}
    assert "box" in settings.script.lower()  # Whisper's words, to read and correct
    assert unchanged(scene) == (0, 0, scene.frame_end)  # nothing keyed
    settings.script = "Bob put the big blue map back in the box!"  # the user's correction
    assert bpy.ops.lipsync.bake() == {"FINISHED"}
    action = head.data.shape_keys.animation_data.action
    assert action["lipsync_transcript"] == "Bob put the big blue map back in the box!"
    assert [w.lower() for w in action["lipsync_words"]][-3:] == ["in", "the", "box"]
    settings.source = "TEXT"
    assert not bpy.ops.lipsync.transcribe.poll()  # a typed line has nothing to hear


# --- Install Bridge --------------------------------------------------------------------------------

UV = Path(sys.executable).with_name("uv")


@pytest.mark.skipif(not UV.exists(), reason="needs uv beside the test's Python (./setup.sh)")
def test_install_bridge_fills_the_start_command_and_the_first_bake_starts_it(
    head, scene, tmp_path, monkeypatch
):
    """Real installs, offline: uv from its cache (what ./setup.sh downloaded), the bridge from
    this repository with its HTTP extras and eSpeak's driver; a package uv never downloaded
    stands for a machine without network."""
    from blender_addon import operators
    from tests.conftest import ROOT

    monkeypatch.setenv("PATH", f"{UV.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("UV_OFFLINE", "1")
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.install_dir, prefs.python = str(tmp_path / "my bridge"), "/nowhere/python3"
    with pytest.raises(RuntimeError, match="no Python at '/nowhere/python3': install Python 3.10"):
        bpy.ops.lipsync.install_bridge()
    prefs.python, prefs.source = sys.executable, "lipsync-bridge-nowhere"
    with pytest.raises(RuntimeError, match="could not download lipsync-bridge-nowhere: no network"):
        bpy.ops.lipsync.install_bridge()
    assert operators.STATE["install"].startswith("could not download")  # shown in preferences
    prefs.source = f"{ROOT}[bridge] pyttsx3"
    assert bpy.ops.lipsync.install_bridge() == {"FINISHED"}
    lipsync = tmp_path / "my bridge" / "bin" / "lipsync"
    assert prefs.command == f"'{lipsync}' serve"
    prefs.url, prefs.autostart = f"http://127.0.0.1:{free_port()}", True
    scene.lipsync.source, scene.lipsync.text = "TEXT", "Hello."
    try:
        assert bpy.ops.lipsync.bake() == {"FINISHED"}  # the first bake started it
        assert operators.STATE["process"].args[0] == str(lipsync)
    finally:
        operators.stop_started_bridge()
