"""The `lipsync` command as a user meets it: outputs, help, and one clear error per bad input."""

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bridge_server.cli import main
from bridge_server.core.timeline import Timeline

LINE = "Pack my box with five dozen liquor jugs."


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_say_writes_every_output_and_they_agree(tmp_path, capsys):
    files = {k: tmp_path / f"line.{k}" for k in ("wav", "json", "png", "tsv")}
    code, _, err = run(
        capsys,
        "say",
        LINE,
        "-o",
        files["wav"],
        "--timeline",
        files["json"],
        "--visemes",
        "oculus15",
        "--fps",
        24,
        "--plot",
        files["png"],
        "--export",
        files["tsv"],
    )
    assert code == 0, err
    assert files["wav"].read_bytes()[:4] == b"RIFF"
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tl = Timeline.load(files["json"])
    assert tl.fps == 24 and tl.viseme_set == "oculus15"
    assert [w.text for w in tl.words] == LINE.rstrip(".").split()
    assert {c.channel for c in tl.curves} >= {"PP", "FF", "aa", "sil"}
    tsv = files["tsv"].read_text().splitlines()
    assert tsv[0].split("\t") == ["0.00", "X"] and tsv[-1].endswith("\tX")
    assert "A" in {line.split("\t")[1] for line in tsv}  # the mouth closes for p, b, m


@pytest.mark.slow
def test_export_converts_a_timeline_to_every_format(tmp_path, capsys):
    tl = tmp_path / "line.json"
    assert run(capsys, "say", LINE, "--timeline", tl)[0] == 0
    from bridge_server.formats.exporters import FORMATS

    for name, f in FORMATS.items():
        out = tmp_path / f"out{f.suffix}"
        code, _, err = run(capsys, "export", tl, "--format", name, "-o", out)
        assert code == 0, (name, err)
        assert out.stat().st_size > 0
    code, out, _ = run(capsys, "export", tl, "--format", "rhubarb-json", "-o", "-")
    assert json.loads(out)["mouthCues"][0]["value"] == "X"


def test_timeline_goes_to_stdout_when_no_output_is_named(capsys):
    code, out, _ = run(capsys, "say", "Hello there.", "--visemes", "vrm5", "--fps", 29.97)
    assert code == 0
    tl = Timeline.from_json(out)
    assert tl.viseme_set == "vrm5" and tl.fps == pytest.approx(30000 / 1001)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args,code,message",
    [
        (["say", ""], 3, "the text is empty"),
        (["say", "   \n "], 3, "the text is empty"),
        (["say", "!!! ... ???"], 3, "no pronounceable characters"),
        (["say", "x" * 50_000], 3, "50,000 characters, over the limit of 20,000"),
        (
            ["say", "Hello \U0001f600 world"],
            3,
            "U+1F600 GRINNING FACE at 7; remove them, or drop them (--skip-unknown)",
        ),
        (
            ["say", "Hello", "--visemes", "klingon"],
            3,
            "unknown viseme set 'klingon'; choose one of",
        ),
        (["say", "Hello", "--fps", "0"], 3, "fps 0.0 is outside 1..1000"),
        (["say", "Hello", "--intensity", "5"], 3, "intensity must be within 0..2"),
        (
            ["say", "Hello", "-o", "/nonexistent-dir/x.wav"],
            5,
            "folder /nonexistent-dir does not exist",
        ),
        (["say", "Hello", "--export", "out.unknown"], 3, "cannot tell the format of out.unknown"),
        (["export", "/nonexistent.json", "-o", "x.tsv"], 3, "does not exist; check the path"),
    ],
    ids=[
        "empty",
        "blank",
        "punctuation-only",
        "50k-chars",
        "emoji",
        "unknown-set",
        "fps-0",
        "intensity",
        "unwritable",
        "unknown-suffix",
        "missing-timeline",
    ],
)
def test_bad_input_is_one_clear_error_and_no_files(
    tmp_path, monkeypatch, capsys, args, code, message
):
    monkeypatch.chdir(tmp_path)
    got, out, err = run(
        capsys, *args, *(["--timeline", "t.json", "--plot", "p.png"] if args[0] == "say" else [])
    )
    assert got == code
    assert message in err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "content,message",
    [
        ("{not json", "is not valid JSON (line 1, column 2"),
        (
            '{"schema_version": "7.0"}',
            "uses timeline schema 7.0, newer than this version understands",
        ),
        (
            '{"schema_version": "1.0", "duration": 1, "fps": 24, "viseme_set": "oculus15", '
            '"phonemes": [{"ipa": "p", "start": 0.1}]}',
            "phonemes[0] lacks a field",
        ),
    ],
    ids=["malformed", "future-version", "missing-field"],
)
def test_bad_timelines_name_the_problem(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, _, err = run(capsys, "export", bad, "--format", "rhubarb-tsv", "-o", tmp_path / "out.tsv")
    assert code == 3 and message in err
    assert not (tmp_path / "out.tsv").exists()


def test_skip_unknown_drops_emoji_and_warns_nothing_else(capsys):
    code, out, _ = run(capsys, "say", "Hello \U0001f600 world", "--skip-unknown")
    assert code == 0
    assert [w.text for w in Timeline.from_json(out).words] == ["Hello", "world"]


@pytest.mark.slow
def test_long_text_shows_progress(capsys, sentences):
    code, _, err = run(capsys, "say", " ".join(sentences * 2), "--timeline", "-")
    assert code == 0
    assert "100% done" in err and "speaking" in err


@pytest.mark.slow
def test_help_teaches_and_the_console_script_runs():
    exe = Path(sys.executable).with_name("lipsync")
    with ThreadPoolExecutor(2) as pool:  # both at once: each is mostly its start-up
        started = [
            pool.submit(subprocess.run, [exe, *args], capture_output=True, text=True)
            for args in (["say", "--help"], ["engines"])
        ]
        helped, engines = (f.result() for f in started)
    helped.check_returncode()
    out = helped.stdout
    for needle in ["--visemes", "--holds", "examples:", "exit codes:", "rhubarb"]:
        assert needle in out
    assert engines.returncode == 0, engines.stdout
    assert "espeak       yes" in engines.stdout and "piper        yes" in engines.stdout


@pytest.mark.slow
def test_phonemize_uses_the_dictionary_and_gruut_for_the_rest(capsys):
    code, out, _ = run(capsys, "phonemize", "Bob paid $42 to Zorblax.")
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == ["Bob", "b ɑ b", "cmudict"]
    assert ["forty", "two"] == [r[0] for r in rows[2:4]]
    assert rows[-1][0] == "Zorblax" and rows[-1][2] == "gruut"


def test_other_languages_fall_back_to_espeak_pronunciations(capsys):
    code, out, _ = run(capsys, "phonemize", "Guten Morgen", "--lang", "de")
    assert code == 0
    assert [r.split("\t") for r in out.splitlines()][1] == ["Morgen", "m ɔ ɾ ɡ ə n", "espeak"]


def test_language_choice(tmp_path, capsys):
    code, out, _ = run(capsys, "say", "Bonjour tout le monde.", "--lang", "fr")
    assert code == 0 and Timeline.from_json(out).source["voice"] == "fr"
    code, _, err = run(capsys, "say", "Hola.", "--lang", "es", "--engine", "piper")
    assert code == 3 and "speaks en-us, not es" in err
    assert "voice for es (--voice), or the espeak engine (--engine)." in err  # the bridge's
    # settings, as this command line's flags


@pytest.mark.slow
def test_the_demo_writes_every_output_and_the_contact_sheet(tmp_path, capsys):
    import struct

    assert main(["demo", "-o", str(tmp_path)]) == 0
    for name in ("line.wav", "line.json", "line.png", "line.tsv"):
        assert (tmp_path / name).stat().st_size > 100
    err = capsys.readouterr().err
    if "no contact sheet" in err:  # neither the bpy module nor Blender here: said so
        assert "pip install bpy" in err
        return
    header = (tmp_path / "sheet.png").read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert width == 6 * 192 and height % 192 == 0 and height >= 2 * 192  # a grid of cells


# --- logging -------------------------------------------------------------------------------


def lipsync(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lipsync")
    env = {k: v for k, v in os.environ.items() if k != "LIPSYNC_LOG"} | (env or {})
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args,env",
    [(["-v", "voices"], {}), (["voices", "--verbose"], {}), (["voices"], {"LIPSYNC_LOG": "debug"})],
    ids=["-v", "--verbose-after-the-command", "LIPSYNC_LOG=debug"],
)
def test_verbose_and_lipsync_log_show_debug_lines(args, env):
    done = lipsync(*args, "--engine", "piper", env=env)
    assert done.returncode == 0, done.stderr
    assert "DEBUG bridge_server.cli: lipsync voices" in done.stderr
    assert "exit code 0 after" in done.stderr
    assert "joe" in done.stdout  # the log never mixes into standard output


@pytest.mark.slow
def test_by_default_the_log_is_quiet_and_a_bad_level_is_named():
    assert lipsync("voices", "--engine", "piper").stderr == ""
    done = lipsync("voices", "--engine", "piper", env={"LIPSYNC_LOG": "loud"})
    assert done.returncode == 0 and "LIPSYNC_LOG=loud is not one of debug|info" in done.stderr


@pytest.mark.slow
def test_an_internal_error_logs_its_traceback_and_exits_1(tmp_path):
    bug = (
        "import bridge_server.cli.engines as e\n"
        "def pronounce(text, lang): raise ZeroDivisionError('a bug')\n"
        "e.pronounce = pronounce\n"
        "from bridge_server.cli import main\n"
        "raise SystemExit(main(['phonemize', 'hello']))\n"
    )
    done = subprocess.run([sys.executable, "-c", bug], capture_output=True, text=True)
    assert done.returncode == 1
    log, last = done.stderr.rsplit("\n", 2)[0], done.stderr.splitlines()[-1]
    assert "ERROR bridge_server.cli: lipsync phonemize failed unexpectedly" in log
    assert "Traceback (most recent call last)" in log and "in pronounce" in log
    assert last.startswith("lipsync: internal error (ZeroDivisionError: a bug)")
    assert "traceback is above" in last and "--verbose" in last


def test_an_internal_error_in_process_goes_to_the_log(monkeypatch, caplog, capsys):
    import bridge_server.cli.engines as engines_command

    monkeypatch.setattr(engines_command, "pronounce", lambda text, lang: 1 / 0)
    assert main(["phonemize", "hello"]) == 1
    assert "ZeroDivisionError" in caplog.text and caplog.records[-1].exc_info
    assert capsys.readouterr().err.count("\n") == 1  # one line; the traceback is in the log


# --- voices, and text a voice cannot read ----------------------------------------------------


def test_voices_lists_every_engines_voices_with_language_and_scripts():
    done = lipsync("voices")
    assert done.returncode == 0, done.stderr
    rows = [re.split(r"\s{2,}", line) for line in done.stdout.splitlines()]
    assert rows[0] == ["ENGINE", "VOICE", "LANGUAGE", "READS", "DESCRIPTION"]
    by_voice = {(r[0], r[1]): r[2:] for r in rows[1:]}
    assert len([r for r in rows if r[0] == "espeak"]) > 50
    assert by_voice["espeak", "en-us"] == ["en-us", "Latin", "English (America)"]
    assert by_voice["espeak", "ja"] == ["ja", "Hiragana, Katakana, Latin", "Japanese"]
    assert by_voice["espeak", "fr"][0] == "fr-fr"  # the name --voice takes, and its language
    assert (
        by_voice["piper", "joe"][:2] == ["en-us", "Latin"]
        and ".onnx" in by_voice["piper", "joe"][2]
    )


def test_say_refuses_text_its_voice_cannot_read_and_auto_picks_one(tmp_path):
    wav = tmp_path / "x.wav"
    done = lipsync("say", "こんにちは、元気ですか。", "-o", str(wav))
    assert done.returncode == 3 and not wav.exists()
    assert "cannot read the text's Hiragana (こ at character 1) and Han" in done.stderr
    assert "(Hiragana: ja; Han: cmn-latn-pinyin" in done.stderr
    done = lipsync("say", "こんにちは", "-o", str(wav))
    assert done.returncode == 3 and "choose one (--voice), e.g. ja, or auto" in done.stderr
    done = lipsync("say", "こんにちは", "--voice", "auto", "-o", str(wav), "-q")
    assert done.returncode == 0 and wav.stat().st_size > 20_000, done.stderr
    done = lipsync("say", "Hello.", "--voice", "klingonx", "-o", str(tmp_path / "k.wav"))
    assert done.returncode == 3 and "no voice 'klingonx'; run 'lipsync voices'" in done.stderr


def test_bad_animation_options_fail_before_any_work(tmp_path, capsys):
    # the recording does not even exist: the options are refused before it is read
    code, _, err = run(capsys, "bake", tmp_path / "missing.wav", "--fps", "0")
    assert code == 3 and "fps 0.0 is outside 1..1000" in err
    code, _, err = run(capsys, "bake", tmp_path / "missing.wav", "--visemes", "nope")
    assert code == 3 and "unknown viseme set 'nope'" in err
    # a real recording: nothing is decoded, transcribed or written
    code, _, _ = run(capsys, "say", "Hello there.", "-o", tmp_path / "line.wav")
    done = lipsync("bake", str(tmp_path / "line.wav"), "--fps", "0", "--timeline",
                   str(tmp_path / "line.json"), "-v")  # fmt: skip
    assert done.returncode == 3 and "fps 0.0 is outside" in done.stderr
    assert "bridge_server.pipeline" not in done.stderr and not (tmp_path / "line.json").exists()


# --- transcribe: only the words ------------------------------------------------------------------


@pytest.mark.slow
def test_transcribe_prints_what_a_recording_says(capsys):
    from tests.conftest import SHARED

    clip = SHARED / "librivox_kittens" / "en_male_electricity.ogg"  # "Electricity."
    code, out, err = run(capsys, "transcribe", clip, "-q")
    assert code == 0 and out.strip().lower() == "electricity.", err
    assert err == ""  # quiet: no progress, no warnings; stdout is only the text
    code, out, _ = run(capsys, "transcribe", clip, "--lang", "en", "--json", "-q")
    heard = json.loads(out)
    assert heard["text"] == out_text(heard) and heard["language"] == "en"
    assert 0 <= heard["words"][0]["start"] < heard["words"][0]["end"] <= 1.1
    assert heard["warnings"] == []
    code, _, err = run(capsys, "transcribe", "/nonexistent.wav", "-q")
    assert code == 3 and "audio file not found: /nonexistent.wav" in err


def out_text(heard: dict) -> str:
    return " ".join(w["text"] for w in heard["words"])


def test_the_bridges_settings_are_shown_as_flags():
    from bridge_server.cli.options import flags

    said = "set the language (lang), or raise the limit (max_chars); the file (0 bytes)"
    assert flags(said) == (
        "set the language (--lang), or raise the limit (--max-chars); the file (0 bytes)"
    )
