"""The add-on's bpy-free parts in plain Python (no Blender): time -> frame rounding, request
building, the HTTP client's messages, the timeline reader and the mapping data.

They are imported by path under a package that skips the add-on's __init__.py (which imports
bpy), as neither package name (blender_addon here, lipsync or bl_ext.*.lipsync when installed)
is needed for them."""

import copy
import http.server
import importlib
import json
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest

from tests.bridge import free_port
from tests.conftest import DATA, ROOT

ADDON = ROOT / "blender_addon"
PURE = ("client", "frames", "mapping", "options", "request", "timeline", "install", "dialogue")
PACKAGE = "lipsync_pure"
LOAD = f"""
import importlib, sys, types
package = types.ModuleType({PACKAGE!r})
package.__path__ = [{str(ADDON)!r}]
sys.modules[{PACKAGE!r}] = package
"""


def load(name: str):
    """The add-on's module `name`, imported without the add-on's __init__.py."""
    if PACKAGE not in sys.modules:
        exec(LOAD, {})
    return importlib.import_module(f"{PACKAGE}.{name}")


client, frames, mapping, options, request, timeline, install, dialogue = map(load, PURE)
GOLDEN = json.loads((DATA / "golden_timeline.json").read_text())
VRCHAT = [f"vrc.v_{v}" for v in "sil pp ff th dd kk ch ss nn rr aa e ih oh ou".split()]


@pytest.mark.slow
def test_the_pure_modules_import_where_bpy_cannot():
    block = "sys.modules['bpy'] = None\n"  # `import bpy` now raises ImportError
    imports = "".join(f"importlib.import_module('{PACKAGE}.{m}')\n" for m in PURE)
    run = subprocess.run([sys.executable, "-c", LOAD + block + imports + "print('ok')"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.stdout.strip() == "ok", run.stderr


# --- frames: the one place seconds become frames -------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "fps", "offset", "frame"),
    [
        (0.033333, 30, 0, 1.0),  # microsecond-rounded times snap to the whole frame
        (1.0, 24, 1, 25.0),
        (0.5, 30000 / 1001, 10, 10 + 0.5 * 30000 / 1001),  # 29.97: sub-frames kept
        (0.0334, 30, 0, 0.0334 * 30),  # 2 thousandths of a frame off: not snapped
        (2.0, 25, -5, 45.0),
    ],
    ids=["snap", "offset", "29.97", "no-snap", "negative-offset"],
)
def test_seconds_land_on_offset_plus_seconds_times_fps(seconds, fps, offset, frame):
    assert frames.to_frame(seconds, fps, offset) == pytest.approx(frame, abs=1e-9)
    assert frames.to_seconds(frames.to_frame(seconds, fps, offset), fps, offset) == pytest.approx(
        seconds, abs=1e-4
    )


def test_scene_fps_divides_by_fps_base():
    scene = SimpleNamespace(render=SimpleNamespace(fps=30, fps_base=1.001))
    assert frames.scene_fps(scene) == pytest.approx(29.97003, abs=1e-5)


# --- options.json: the bridge's choices, shipped with the add-on -------------------------------


def test_the_shipped_options_are_the_bridges_choices():
    from bridge_server.pipeline import choices

    shipped = (ADDON / "options.json").read_text(encoding="utf-8")
    assert shipped == json.dumps(choices(), indent=2) + "\n", (
        "blender_addon/options.json is out of date with bridge_server.pipeline.choices(); "
        "refresh it with: .venv/bin/python blender_addon/build.py --options"
    )


def test_the_animation_options_the_add_on_sends_are_the_bridges():
    from bridge_server.pipeline import choices

    names = [o["name"] for o in choices()["animation"]]
    assert set(options.ANIMATION) <= set(names)
    line = request.for_text(base(), settings(text="hello"))
    assert (
        set(options.ANIMATION) <= set(line.fields) and set(options.ANIMATION) <= request.LIPS_FIELDS
    )


def test_properties_and_enums_come_from_the_snapshot():
    snapshot = {
        "animation": [
            {"name": "intensity", "default": 1.0, "help": "how much", "min": 0.0, "max": 2.0},
            {"name": "lead", "default": 0.0, "help": "early", "min": None, "max": 0.5},
            {"name": "holds", "default": False, "help": "stepped", "min": None, "max": None},
        ],
        "engines": {"audio": ["auto", "newer"], "text": ["espeak"]},
        "viseme_sets": ["oculus15", "new_set"],
    }
    assert options.property_args("intensity", snapshot) == {
        "default": 1.0, "description": "how much", "min": 0.0, "max": 2.0
    }  # fmt: skip
    assert options.property_args("lead", snapshot) == {
        "default": 0.0,
        "description": "early",
        "max": 0.5,
    }
    assert options.property_args("holds", snapshot) == {"default": False, "description": "stepped"}
    with pytest.raises(KeyError, match="build.py --options"):
        options.option("smoothing", snapshot)
    labels = {"auto": ("Auto", "the best")}
    assert options.enum_items(options.engines("audio", snapshot), labels) == [
        ("auto", "Auto", "the best"), ("newer", "Newer", "")
    ]  # fmt: skip
    assert options.enum_items(options.viseme_sets(snapshot), {})[1] == ("new_set", "New Set", "")
    assert options.load() == options.SNAPSHOT and options.engines("text") == ["espeak", "piper"]


# --- request building -------------------------------------------------------------------------------


def settings(**changes) -> SimpleNamespace:
    """What the panel holds (batch.py builds the same namespace)."""
    values = dict(
        source="AUDIO", audio_path="", video_path="", text="", script="", lang="", strip="",
        engine="auto", voice_engine="espeak", voice="", viseme_set="AUTO", intensity=1.0,
        smoothing=0.5, holds=False, rhubarb_rules=False, lead=0.0, max_error=0.01, motion="rules", frame_offset=0,
        add_strip=True, video_weight=0.5, show_video=True,
    )  # fmt: skip
    return SimpleNamespace(**(values | changes))


def base(**changes):
    return request.base(settings(**changes), fps=30000 / 1001, frame_offset=11,
                        viseme_set="oculus15", mapping={"PP": "vrc.v_sil", "aa": "vrc.v_aa"},
                        shape_keys=VRCHAT)  # fmt: skip


def test_a_text_request_carries_the_rig_for_the_bridge_to_map():
    line = request.for_text(base(lead=0.08, motion="learned"),
                            settings(text="  Bob put the big blue map back. "))  # fmt: skip
    assert (line.kind, line.name, line.frame_offset) == ("text", "Bob put the big...", 11)
    assert line.fields == {
        "visemes": "oculus15", "fps": 29.97003, "intensity": 1.0, "smoothing": 0.5,
        "holds": False, "rhubarb_rules": False, "lead": 0.08, "max_error": 0.01, "motion": "learned", "shape_keys": VRCHAT, "mapping": {"PP": "vrc.v_sil", "aa": "vrc.v_aa"},
        "text": "Bob put the big blue map back.", "engine": "espeak", "voice": "", "lang": "",
    }  # fmt: skip
    assert line.mapping == {"PP": "vrc.v_sil", "aa": "vrc.v_aa"}


def test_a_recording_brings_its_sidecar_script_and_uploads_as_form_fields(tmp_path):
    wav = tmp_path / "take01.wav"
    wav.write_bytes(b"RIFF....WAVE")
    (tmp_path / "take01.txt").write_text("Maybe a bomb.\n")
    line = request.for_file(base(), str(wav), settings(), video=False)
    assert (line.kind, line.name, line.filename, line.data) == (
        "audio", "take01", "take01.wav", b"RIFF....WAVE"
    )  # fmt: skip
    assert line.sound_path == str(wav) and line.fields["text"] == "Maybe a bomb."
    line.fields["shape_keys"] = ["jaw, open", *VRCHAT[:2]]  # a comma cannot go in the form
    form = request.form(line.fields)
    assert form["shape_keys"] == "vrc.v_sil,vrc.v_pp"
    assert json.loads(form["mapping"]) == {"PP": "vrc.v_sil", "aa": "vrc.v_aa"}


def test_a_script_timed_to_the_lips_sends_only_what_that_endpoint_takes(tmp_path):
    video = tmp_path / "clip.mpg"
    video.write_bytes(b"\x00\x00\x01\xba")
    with pytest.raises(request.BakeError, match="type the script the speaker says"):
        request.for_lips(base(), str(video), settings())
    line = request.for_lips(base(), str(video), settings(script="place white"))
    assert (line.kind, line.sound_path, line.movie_path) == ("lips", "", str(video))
    assert set(line.fields) == request.LIPS_FIELDS | {"text"}


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("", None, "choose the audio file"),
        ("missing.wav", None, "cannot read .*missing.wav: No such file"),
        ("empty.wav", b"", "empty.wav is empty \\(0 bytes\\)"),
    ],
    ids=["none", "missing", "empty"],
)
def test_an_unusable_file_is_named(tmp_path, path, content, message):
    if content is not None:
        (tmp_path / path).write_bytes(content)
    with pytest.raises(request.BakeError, match=message):
        request.for_file(base(), str(tmp_path / path) if path else "", settings(), video=False)


def test_an_empty_text_is_refused():
    with pytest.raises(request.BakeError, match="the text is empty"):
        request.for_text(base(), settings(text="   "))


def test_curves_not_named_after_the_mapping_are_refused():
    document = {"curves": [{"channel": "vrc.v_sil", "keys": []}, {"channel": "PP", "keys": []}]}
    with pytest.raises(client.BridgeError, match="curves for PP, not the shape keys.*update"):
        request.check_named(document, {"PP": "vrc.v_sil"}, "http://127.0.0.1:1")
    request.check_named(document, {"PP": "vrc.v_sil", "aa": "PP"}, "http://127.0.0.1:1")


# --- the panel's words -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bridge_says", "panel_says"),
    [
        (
            "language detected as 'pl' with 51% confidence; if that is wrong, set the language "
            "(lang)",
            "language detected as 'pl' with 51% confidence; if that is wrong, set the language "
            "(the Language field)",
        ),
        (
            "the Piper voice en_US speaks en, not de; choose a Piper .onnx voice for de (voice), "
            "or the espeak engine (engine).",
            "the Piper voice en_US speaks en, not de; choose a Piper .onnx voice for de (the "
            "voice's Name field), or the espeak engine (the Voice field).",
        ),
        ("the text is 900 characters, over the limit of 800; split it into several lines, or "
         "raise the limit (max_chars).",
         "the text is 900 characters, over the limit of 800; split it into several lines."),
        ("the text has characters no voice can pronounce: U+1F600 at 7; remove them, or drop "
         "them (skip_unknown).",
         "the text has characters no voice can pronounce: U+1F600 at 7; remove them."),
        ("Voices that read it: ru; choose one (voice), e.g. ru with the espeak engine (engine), "
         "or auto to pick one from the text.",
         "Voices that read it: ru; choose one (the voice's Name field), e.g. ru with the espeak "
         "engine (the Voice field), or auto to pick one from the text."),
    ],
    ids=["lang", "voice", "max-chars", "skip-unknown", "voice-check"],
)  # fmt: skip
def test_the_bridges_advice_reaches_the_panel_in_its_words(bridge_says, panel_says):
    from bridge_server.core.errors import SETTINGS

    assert request.panel_words(bridge_says) == panel_says
    assert "--" not in panel_says and not any(f"({s})" in panel_says for s in SETTINGS)


def test_the_settings_the_bridge_names_are_those_the_panel_words():
    """Every setting a bridge message may name is put in the panel's words or dropped."""
    from bridge_server.core.errors import SETTINGS

    unworded = [s for s in SETTINGS if not any(f"({s})" in said for said, _ in request.PANEL_WORDS)]
    # model: the bridge's own choice (lipsync serve), fix_sync: never sent by the add-on (it
    # has Check Sync and Shift Sound instead)
    assert unworded == ["model", "fix_sync"]


def test_the_progress_bar_gets_one_word_per_stage():
    assert request.stage_word("detecting the language") == "Language"
    assert request.stage_word("transcribing") == "Listening"
    assert request.stage_word("measuring the moon") == "Measuring"  # a new stage: its first word
    assert request.stage_word("") == ""


def test_what_a_line_says_is_its_typed_text_or_its_timed_words():
    assert request.said(GOLDEN) == ("Bob may pay.", ["Bob", "may", "pay"])
    heard = {"source": {"kind": "audio", "transcript": "whisper"},
             "words": [{"text": "Electricity.", "start": 0.0, "end": 0.6}]}  # fmt: skip
    assert request.said(heard) == ("Electricity.", ["Electricity."])  # a bridge without text
    given = {"source": {"kind": "audio", "transcript": "script", "text": "Mr. Smith paid $42."},
             "words": [{"text": w, "start": 0.0, "end": 0.1} for w in ["mister", "smith"]]}  # fmt: skip
    assert request.said(given) == ("Mr. Smith paid $42.", ["mister", "smith"])
    action = {}  # any mapping stands in for an ID block's custom properties
    assert dialogue.keep(action, heard) == "Electricity."
    assert dialogue.of(action) == ("Electricity.", ["Electricity."])


@pytest.mark.parametrize(
    ("offset_ms", "fps", "reason", "moved", "words", "frames"),
    [
        (120, 25, "", 0, "Sound 120 ms late (3 frames)", 3),
        (120, 30000 / 1001, "", 0, "Sound 120 ms late (4 frames)", 4),  # 3.6 at 29.97
        (-41.2, 24, "", 0, "Sound 41 ms early (1 frame)", -1),
        (60, 25, "", 0, "Sound 60 ms late (2 frames)", 2),  # 1.5: halves away from zero...
        (-60, 25, "", 0, "Sound 60 ms early (2 frames)", -2),  # ...both ways
        (19.9, 25, "", 0, "In sync", 0),  # under half a frame
        (7, 25, "", 5, "In sync (moved 5 frames)", 0),  # what is left after Shift Sound
        (350, 25, "the sound is silent", 0, "Unsure: the sound is silent", 9),
    ],
)  # fmt: skip
def test_check_sync_says_how_late_the_sound_is_in_whole_frames(
    offset_ms, fps, reason, moved, words, frames
):
    assert request.sync_words(offset_ms, fps, reason, moved) == words
    assert request.sync_frames(offset_ms, fps) == frames


@pytest.mark.slow
def test_check_sync_sends_the_video_alone_and_names_an_older_bridge():
    line = request.for_sync("take.mp4", b"....ftypmp42")
    assert line.fields == {} and request.UPLOADS[line.kind] == "/sync"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Older)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(client.BridgeError, match=f"the bridge at {url} cannot check sync"):
            request.check_sync(client.Bridge(url), line)
    finally:
        server.shutdown()


# --- Install Bridge -------------------------------------------------------------------------------


def test_the_install_plan_makes_an_environment_then_installs_into_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # no uv: Python's venv and pip
    python = sys.executable
    steps = install.plan(tmp_path / "env", f"{ROOT}[bridge]", python, deps=False)
    env_python = str(tmp_path / "env" / "bin" / "python")
    assert steps == [
        [python, "-m", "venv", str(tmp_path / "env")],
        [env_python, "-m", "pip", "install", "--no-deps", f"{ROOT}[bridge]"],
    ]
    assert install.start_command(tmp_path / "my env") == f"'{tmp_path}/my env/bin/lipsync' serve"


@pytest.mark.parametrize(
    ("python", "source", "message"),
    [
        ("/nowhere/python3", "lipsync-bridge", "no Python at '/nowhere/python3': install Python"),
        ("", "  ", "nothing to install: set Install From"),
    ],
    ids=["no-python", "nothing"],
)
def test_an_install_that_cannot_start_says_why(tmp_path, python, source, message):
    with pytest.raises(install.InstallError, match=message):
        install.install(tmp_path / "env", source, python)
    assert not (tmp_path / "env").exists()


def test_an_offline_failure_says_to_install_from_the_folder():
    said = "ERROR: Could not find a version that satisfies the requirement lipsync-bridge\n"
    assert install.reason(said, "lipsync-bridge").startswith(
        "could not download lipsync-bridge: no network, or no such package (ERROR: Could not"
    )
    assert install.reason("boom\nsetup.py failed\n", "x") == "installing x failed: setup.py failed"


# --- the client's messages ----------------------------------------------------------------------------


def test_a_closed_port_says_how_to_start_the_bridge():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(client.BridgeError) as e:
        client.Bridge(url).health()
    assert str(e.value).startswith(f"the lip-sync bridge at {url} does not answer (")
    assert "press Start in the Lip Sync panel, or run 'lipsync serve'" in str(e.value)
    batch = client.Bridge(url)
    batch.start_hint = "give --start COMMAND"  # headless: batch.py's words
    with pytest.raises(client.BridgeError, match="; give --start COMMAND, or run 'lipsync serve'"):
        batch.health()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("", "no command to start the bridge: set one in the add-on's preferences"),
        ("/nowhere/lipsync serve", "cannot start .*No such file.*set the full path"),
        (
            f"{sys.executable} -c 'raise SystemExit(\"port in use\")'",
            "stopped at once: port in use",
        ),
    ],
    ids=["empty", "missing", "exits"],
)
def test_a_bridge_that_cannot_start_says_why(command, message):
    with pytest.raises(client.BridgeError, match=message):
        client.start_bridge(command, f"http://127.0.0.1:{free_port()}", wait_s=20)


def answer(handler, status: int, error: str, kind: str) -> None:
    """A JSON error body like the bridge's."""
    body = json.dumps({"error": error, "type": kind}).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Refuses(http.server.BaseHTTPRequestHandler):
    """Answers like the bridge with a token when the request has none."""

    def do_GET(self):
        answer(self, 401, "this bridge needs a token", "Unauthorized")

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_an_http_error_passes_on_the_bridges_message_and_the_fix():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(client.BridgeError) as e:
            client.Bridge(f"http://127.0.0.1:{server.server_port}").job("x")
    finally:
        server.shutdown()
    assert str(e.value) == (
        "this bridge needs a token (set the bridge token in the add-on's preferences)"
    )


class Older(http.server.BaseHTTPRequestHandler):
    """Answers like a bridge from before /transcribe: no such path."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        answer(self, 404, "Not Found", "HTTPError")

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_transcribe_asks_for_the_words_only_and_names_an_older_bridge():
    line = request.for_transcript("take.wav", b"RIFF....WAVE", settings(lang="en"))
    assert line.fields == {"lang": "en"} and request.UPLOADS[line.kind] == "/transcribe"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Older)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(client.BridgeError) as e:
            request.transcribe(client.Bridge(url), line)
    finally:
        server.shutdown()
    assert str(e.value) == (
        f"the bridge at {url} cannot transcribe (no /transcribe): it is older than this add-on; "
        "update lipsync-bridge."
    )


# --- the timeline reader --------------------------------------------------------------------------------


def test_the_golden_timeline_is_read_and_unknown_fields_are_ignored():
    document = copy.deepcopy(GOLDEN) | {"schema_version": "1.4", "future_field": {"x": 1}}
    assert timeline.read(document) is document
    assert timeline.warnings({"warnings": [{"kind": "rig", "message": "no PP"}]}) == ["no PP"]


def test_a_newer_major_version_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "line.json"
    path.write_text(json.dumps(GOLDEN | {"schema_version": "2.0"}))
    with pytest.raises(timeline.TimelineError) as e:
        timeline.load(path)
    assert str(e.value) == (
        f"{path} uses timeline schema 2.0, newer than this add-on reads (1.0); update the "
        "Lip Sync add-on to the bridge's version."
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": None}, "schema_version is missing or not like '1.0' \\(None\\)"),
        ({"schema_version": "v2"}, "not like '1.0' \\('v2'\\)"),
        ({"fps": 0}, "fps must be a positive number"),
        ({"duration": "long"}, "duration must be a number of seconds"),
        ({"curves": {"aa": []}}, "curves must be a list"),
        ({"curves": [{"keys": []}]}, "curves\\[0\\] needs a channel name"),
        ({"curves": [{"channel": "aa", "keys": [[0.0]]}]}, "\\(aa\\): keys must be \\[time, weight\\]"),
        ({"curves": [{"channel": "aa", "keys": [], "interpolation": "bezier"}]}, "linear or constant"),
    ],
    ids=["no-version", "bad-version", "fps", "duration", "curves", "channel", "keys", "interpolation"],
)  # fmt: skip
def test_a_malformed_timeline_is_named(change, message):
    with pytest.raises(timeline.TimelineError, match=f"^the bridge's timeline.*{message}"):
        timeline.read(GOLDEN | change, "the bridge's timeline")


def test_a_file_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "line.json"
    path.write_text("Bob put the map back")
    with pytest.raises(timeline.TimelineError, match="line.json is not JSON .*give a timeline"):
        timeline.load(path)
    with pytest.raises(timeline.TimelineError, match="cannot read .*nowhere.json"):
        timeline.load(tmp_path / "nowhere.json")


# --- the mapping data -----------------------------------------------------------------------------------


def test_a_preset_round_trips_and_a_bad_one_is_named(tmp_path):
    rows = [("PP", "vrc.v_sil"), ("sil", ""), ("aa", "vrc.v_aa")]
    choice = mapping.chosen(rows)
    assert choice == {"PP": "vrc.v_sil", "aa": "vrc.v_aa"}
    path = tmp_path / "my_rig.json"
    path.write_text(mapping.to_preset("my_rig", "Head's mouth", "test", "oculus15", choice))
    assert mapping.load_preset(path) == ("oculus15", choice)
    path.write_text('{"viseme_set": "oculus15"}')
    with pytest.raises(ValueError, match="my_rig.json is not a rig preset .*save one first"):
        mapping.load_preset(path)


def test_a_rig_named_like_a_shipped_preset_is_matched_without_the_bridge():
    presets = mapping.shipped_presets()
    assert {"vrchat", "readyplayerme", "arkit"} <= {p["name"] for p in presets}
    found = mapping.local_match(["Basis2", *VRCHAT[1:]], presets)  # vrc.v_sil missing
    assert found["viseme_set"] == "oculus15" and found["shape_keys"]["PP"] == "vrc.v_pp"
    assert found["missing_channels"] == ["sil"]
    assert found["message"] == "rig preset 'vrchat': 14 of 15 oculus15 channels"
    assert mapping.rows(found)[0] == ("PP", "vrc.v_pp")
    assert mapping.local_match(["blink_left", "brow_up"], presets) is None  # the bridge matches
    assert mapping.local_match(VRCHAT, presets, visemes="arkit") is None


@pytest.fixture(scope="module")
def bridge(bridge_url):
    return client.Bridge(bridge_url, timeout=120)


@pytest.mark.slow
def test_the_bridge_matches_names_and_leaves_unknown_ones_to_fill(bridge):
    found = mapping.match(bridge, ["Basis2", *VRCHAT])
    assert found["viseme_set"] == "oculus15" and found["shape_keys"]["PP"] == "vrc.v_pp"
    rows = mapping.rows(mapping.match(bridge, ["blink_left", "brow_up"]))
    assert [c for c, _ in rows][:3] == ["sil", "PP", "FF"] and not any(k for _, k in rows)


@pytest.mark.slow
def test_the_bridge_names_the_curves_after_the_users_mapping(bridge):
    chosen = mapping.chosen(mapping.rows(mapping.match(bridge, VRCHAT)))
    chosen["PP"] = "vrc.v_sil"  # the user's correction: PP drives another key
    del chosen["sil"]
    line = base()
    line.fields["mapping"], line.mapping = chosen, chosen
    fetched = request.fetch(bridge, request.for_text(line, settings(text="Bob put the map back.")))
    curves = {c["channel"]: c["keys"] for c in fetched.timeline["curves"]}
    assert set(curves) <= set(VRCHAT) and "vrc.v_pp" not in curves
    assert max(w for _, w in curves["vrc.v_sil"]) > 0.9  # the closures of Bob, put, map
    assert fetched.speech[:4] == b"RIFF"
