"""Rhubarb's set: each phone's shape on its time, or Rhubarb Lip Sync's own rules, exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bridge_server.core.animate import animate
from bridge_server.core.curves import CurveSettings, hold_cues
from bridge_server.core.phonemes import ipa_arpabet
from bridge_server.core.rhubarb import ALL_RULES, avoid_static, shape_rules
from bridge_server.core.timeline import Phoneme
from bridge_server.core.visemes import load_set
from bridge_server.formats.exporters import export
from tests.conftest import DATA

RHUBARB = load_set("rhubarb")


def timed(spec: str) -> list[Phoneme]:
    """'p 0.23 0.31 æ 0.31 0.47' -> phonemes."""
    parts = spec.split()
    return [Phoneme(parts[i], float(parts[i + 1]), float(parts[i + 2]), 0)
            for i in range(0, len(parts), 3)]  # fmt: skip


def shapes_at(cues, times) -> str:
    return "".join(next(c.viseme for c in cues if c.start <= t < c.end) for t in times)


def test_the_port_draws_what_rhubarb_draws_from_the_same_phones():
    # 82.7 s of a real reading: Rhubarb 1.14's own phones in, its own shapes out
    lines = (DATA / "rhubarb_kittens_phones_shapes.tsv").read_text().splitlines()
    events = [line.split("\t") for line in lines if not line.startswith(("#", "event"))]
    cs = [(kind, round(float(s) * 100), round(float(e) * 100), v) for kind, s, e, v in events]
    phones = sorted(((v, s, e) for kind, s, e, v in cs if kind == "phone"), key=lambda p: p[1])
    shapes = [(v, s, e) for kind, s, e, v in cs if kind == "shape"]
    n = shapes[-1][2]
    track, rules = shape_rules(phones, ["X"] * len(phones), n, ALL_RULES)
    ours = avoid_static(track, rules, ALL_RULES).v
    theirs = np.full(n, "X", dtype="<U1")
    for v, s, e in shapes:
        theirs[s:e] = v
    assert len(phones) > 600 and len(set(theirs)) == 9  # every shape, A-H and X, is drawn
    assert "".join(ours) == "".join(theirs)


def test_by_default_each_phone_shows_its_own_shape_exactly_on_its_time():
    phonemes = timed("p 0.23 0.31 æ 0.31 0.47 k 0.47 0.52 m 0.61 0.70")
    cues = hold_cues(phonemes, RHUBARB, 24, 1.0)
    assert [(c.viseme, round(c.start, 2), round(c.end, 2)) for c in cues] == [
        ("X", 0.0, 0.23), ("A", 0.23, 0.31), ("C", 0.31, 0.47), ("B", 0.47, 0.52),
        ("X", 0.52, 0.61), ("A", 0.61, 0.7), ("X", 0.7, 1.0),
    ]  # fmt: skip


def test_a_closure_shorter_than_a_frame_still_shows_on_the_frame_nearest_it():
    phonemes = timed("ɑ 0.00 0.05 b 0.05 0.075 ɑ 0.075 0.30")  # b between frames 1 and 2 at 24 fps
    cues = hold_cues(phonemes, RHUBARB, 24, 0.5)
    assert shapes_at(cues, [2 / 24]) == "A"
    assert shapes_at(cues, [0.06]) == "A" and shapes_at(cues, [0.2]) == "D"  # the rest as timed


def test_rhubarb_rules_close_p_before_its_release_and_anticipate_the_vowel():
    phonemes = timed("ɑ 0.20 0.40 p 0.40 0.48 ɑ 0.48 0.70")
    cues = hold_cues(phonemes, RHUBARB, 24, 1.0, rhubarb_rules=True)
    closed = [c for c in cues if c.viseme == "A"]
    # the lips close for half the vowel before (at most 0.12 s) and open as p is released
    assert [(round(c.start, 2), round(c.end, 2)) for c in closed] == [(0.30, 0.40)]
    assert shapes_at(cues, [0.25, 0.44, 0.6]) == "DDD"  # p's own time already shows the vowel


def test_a_phone_rhubarb_does_not_know_keeps_its_own_shape_under_the_rules():
    assert "ø" in RHUBARB.table and "ø" not in ipa_arpabet()
    cues = hold_cues(timed("ø 0.2 0.5"), RHUBARB, 24, 0.8, rhubarb_rules=True)
    assert shapes_at(cues, [0.35]) == RHUBARB.viseme_for("ø") != "X"


def test_keys_and_files_hold_the_same_rhubarb_shapes():
    phonemes = timed("b 0.20 0.26 ɑ 0.26 0.50 b 0.50 0.58 i 0.58 0.80")
    for rules in (False, True):
        settings = CurveSettings(holds=True, rhubarb_rules=rules)
        t = animate([], phonemes, 1.0, "rhubarb", 100, settings, {})
        cues = json.loads(export(t, "rhubarb-json"))["mouthCues"]
        times = np.arange(100) / 100 + 0.005
        keyed = "".join(
            max(t.curves, key=lambda c: c.sample(np.array([x]))[0]).channel for x in times
        )
        filed = "".join(next(c["value"] for c in cues if c["start"] <= x < c["end"]) for x in times)
        assert keyed == filed


@pytest.mark.slow
def test_the_cli_flag_switches_a_spoken_lines_rhubarb_file_to_rhubarbs_rules(tmp_path: Path):
    exe = Path(sys.executable).with_name("lipsync")
    text = "Bob put the map back."
    runs = {}
    for flag in ([], ["--rhubarb-rules"]):
        out = tmp_path / f"cues{len(flag)}.tsv"
        done = subprocess.run([exe, "say", text, "--visemes", "rhubarb", *flag, "--export", str(out),
                               "--timeline", str(tmp_path / "t.json")],
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr
        runs[bool(flag)] = [line.split("\t") for line in out.read_text().splitlines()]
    timeline = json.loads((tmp_path / "t.json").read_text())
    assert timeline["curve_settings"]["rhubarb_rules"] is True
    plain, rules = runs[False], runs[True]
    assert plain != rules
    # by default the lips are closed (A) from the first centisecond of every p, b and m
    starts = [p["start"] + 0.005 for p in timeline["phonemes"] if p["ipa"] in ("p", "b", "m")]
    shown = [next(shape for t, shape in reversed(plain) if float(t) <= x) for x in starts]
    assert len(starts) == 6 and set(shown) == {"A"}
