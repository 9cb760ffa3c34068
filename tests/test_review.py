"""The review page (`lipsync review`): the folder scan, the ratings store and the /review routes
against a real server, then the page itself in a real headless Chromium driven by Playwright
(npm playwright-core, run by node): play with a moving mouth, rate, compare A/B, export CSV.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
import pytest

from bridge_server.cli import main
from bridge_server.core.curves import CurveSettings
from bridge_server.core.errors import InputError
from bridge_server.core.timeline import Timeline
from bridge_server.media.audio import wav_bytes
from bridge_server.pipeline import say
from bridge_server.serve.app import ServerSettings, serve_in_thread
from bridge_server.serve.review import Review, Store, _variant, mouth_shapes, scan
from tests.bridge import running
from tests.npm import npm_package

PLAYWRIGHT = "playwright-core@1.65.1"
CHROMIUM = "/usr/bin/chromium"
NODE_SCRIPT = Path(__file__).with_name("review_browser.js")
PACK = "Pack my box with five dozen liquor jugs."
BOB = "Bob put the big blue map back in the box."


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> Path:
    """pack.wav with two timelines (eSpeak's, and Rhubarb shapes led by 0.1 s), bob.wav with
    ARKit's (its curves are blendshapes: the page reads its viseme cues), and a stray sound."""
    folder = tmp_path_factory.mktemp("lines")
    speech, timeline = say(PACK)
    (folder / "pack.wav").write_bytes(wav_bytes(speech.audio, speech.sample_rate))
    (folder / "pack.json").write_text(timeline.to_json())
    _, led = say(PACK, viseme_set="rhubarb", settings=CurveSettings(lead=0.1))
    (folder / "pack.lead.json").write_text(led.to_json())
    speech, timeline = say(BOB, viseme_set="arkit")
    (folder / "bob.wav").write_bytes(wav_bytes(speech.audio, speech.sample_rate))
    (folder / "bob.json").write_text(timeline.to_json())
    (folder / "stray.wav").write_bytes((folder / "bob.wav").read_bytes())
    return folder


# --- the core: scan, shapes, store ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("take.json", "default"),
        ("take.espeak.json", "espeak"),
        ("take2.json", None),
        ("take.a.b.json", None),
        ("take..json", None),
    ],  # fmt: skip
    ids=["plain", "variant", "another-line", "dotted", "empty"],
)
def test_variants_are_named_by_the_file(name, variant):
    assert _variant("take", name) == variant


def test_the_scan_finds_lines_and_says_what_it_left_out(lines):
    found = scan(lines)
    assert list(found.by_id) == ["bob", "pack"]
    assert list(found.by_id["pack"].timelines) == ["default", "lead"]
    assert found.by_id["pack"].text == PACK.rstrip(".")
    assert found.skipped == ["stray.wav: no timeline beside it"]


def test_a_broken_timeline_is_left_out_with_its_reason(lines, tmp_path):
    shutil.copy(lines / "bob.wav", tmp_path / "take.wav")
    shutil.copy(lines / "bob.json", tmp_path / "take.json")
    (tmp_path / "take.bad.json").write_text("{")
    found = scan(tmp_path)
    assert list(found.by_id["take"].timelines) == ["default"]
    assert len(found.skipped) == 1 and found.skipped[0].startswith("take.bad.json: ")


def test_a_folder_without_lines_is_refused(tmp_path):
    with pytest.raises(InputError, match="holds no line"):
        scan(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        scan(tmp_path / "missing")


@pytest.mark.parametrize(
    ("viseme_set", "source"),
    [("oculus15", "curves"), ("rhubarb", "curves"), ("arkit", "visemes")],
)
def test_the_mouth_reads_curves_where_they_are_visemes(viseme_set, source):
    _, timeline = say("Bob", viseme_set=viseme_set)
    mouth = mouth_shapes(viseme_set, [c.channel for c in timeline.curves])
    assert mouth["source"] == source
    closed = {"oculus15": "PP", "rhubarb": "A", "arkit": "PP"}[viseme_set]
    assert mouth["shapes"][closed]["closed"] > 0.5 and mouth["shapes"][closed]["open"] == 0


def test_the_store_keeps_rows_and_exports_csv(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    row = {"rater": "r", "session": "s", "line": "pack", "mode": "single", "variant": "default",
           "sync": 3, "naturalness": 2, "comment": 'says "hi", twice'}  # fmt: skip
    assert store.add(row) == 1
    again = Store(tmp_path / "r.sqlite")  # opening again keeps what is there
    records = list(csv.DictReader(io.StringIO(again.csv())))
    assert len(records) == 1 and records[0]["comment"] == 'says "hi", twice'
    assert records[0]["sync"] == "3" and records[0]["left_variant"] == ""


# --- the routes, without a browser ------------------------------------------------------------


@pytest.fixture(scope="module")
def server(lines, tmp_path_factory):
    db = tmp_path_factory.mktemp("db") / "ratings.sqlite"
    url, stop = serve_in_thread(ServerSettings(review=Review.open(lines, db)))
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client
    stop()


@pytest.mark.slow
def test_lines_audio_and_timelines_by_id(server, lines):
    listed = server.get("/review/lines").json()
    assert [x["id"] for x in listed["lines"]] == ["bob", "pack"]
    assert listed["lines"][1]["variants"] == ["default", "lead"] and listed["skipped"]
    audio = server.get("/review/lines/pack/audio")
    assert audio.headers["content-type"] == "audio/wav"
    assert audio.content == (lines / "pack.wav").read_bytes()
    part = server.get("/review/lines/pack/audio", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100  # the page can seek
    answer = server.get("/review/lines/pack/timelines/lead").json()
    assert answer["timeline"]["viseme_set"] == "rhubarb" and answer["mouth"]["source"] == "curves"
    assert server.get("/review/").headers["content-type"].startswith("text/html")
    assert server.get("/review/static/mouth.js").status_code == 200


@pytest.mark.slow
def test_the_root_leads_to_the_page(server):
    """`lipsync review` prints /review/, but a browser opened at the bare address finds it too."""
    r = server.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/review/"
    page = server.get("/", follow_redirects=True)
    assert page.url.path == "/review/" and page.headers["content-type"].startswith("text/html")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/review/lines/nope/audio", 404, "no line 'nope'"),
        ("/review/lines/pack/timelines/piper", 404, "has no variant 'piper'"),
        ("/review/lines/%2E%2E/audio", 400, "not a line id"),
        ("/review/lines/.hidden/audio", 400, "never paths"),
        ("/review/lines/..%2F..%2Fetc%2Fpasswd/audio", 404, "Not Found"),
        ("/review/lines/pack/timelines/..%2Fbob", 404, "Not Found"),
        ("/review/static/..%2Freview.py", 404, "Not Found"),
        ("/review/static/ratings.sqlite", 404, "no page file"),
    ],
    ids=[
        "unknown-line",
        "unknown-variant",
        "dot-dot",
        "hidden",
        "slashes",
        "variant-path",
        "static-path",
        "static-other",
    ],  # fmt: skip
)
def test_only_ids_name_files(server, path, status, words):
    r = server.get(path)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    assert words in r.json()["error"]


RATING = {"line": "pack", "variant": "default", "sync": 4, "naturalness": 5, "rater": "r1"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "change", "status", "words"),
    [
        ("/review/ratings", {"sync": 7}, 422, "sync: Input should be less than or equal to 5"),
        ("/review/ratings", {"naturalness": 0}, 422, "naturalness"),
        ("/review/ratings", {"rater": ""}, 422, "rater"),
        ("/review/ratings", {"variant": "piper"}, 404, "no variant 'piper'"),
        ("/review/ratings", {"line": "../pack"}, 400, "not a line id"),
        ("/review/comparisons", {"left": "lead", "right": "lead"}, 400, "the same variant"),
        ("/review/comparisons", {"preferred": "A"}, 422, "preferred"),
    ],
    ids=[
        "sync-7",
        "naturalness-0",
        "no-rater",
        "unknown-variant",
        "path-line",
        "same-pair",
        "bad-choice",
    ],  # fmt: skip
)
def test_bad_ratings_are_refused_with_json(server, path, change, status, words):
    body = RATING | {"left": "default", "right": "lead", "preferred": "left"} | change
    r = server.post(path, json=body)
    assert r.status_code == status and words in r.json()["error"], r.text
    assert r.json()["type"] in ("InputError",)


@pytest.mark.slow
def test_the_command_refuses_a_folder_without_lines(tmp_path, capsys):
    assert main(["review", str(tmp_path), "--port", "8770"]) == 3
    assert "holds no line" in capsys.readouterr().err


# --- the page, in a real browser --------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright_core(tmp_path_factory) -> Path:
    """A folder with node_modules/playwright-core (the browser is Debian's chromium; Playwright
    downloads none)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no {CHROMIUM}: 'apt-get install chromium' (./setup.sh test does)")
    return npm_package(PLAYWRIGHT, tmp_path_factory)


@contextmanager
def reviewing(lines: Path, db: Path, log: Path):
    """`lipsync review LINES --db DB` on a free port, as a user runs it: yields its URL."""
    with running(["review", str(lines), "--db", str(db)], "/review/lines", log=log) as url:
        yield url


def expected(answer: dict, t: float) -> tuple[float, str]:
    """The mouth's opening and viseme at t as the page should draw them (read independently
    of mouth.js: the curves sampled with numpy, the cue found by its times)."""
    timeline, mouth = Timeline.from_dict(answer["timeline"]), answer["mouth"]
    shapes = mouth["shapes"]
    if mouth["source"] == "curves":
        weights = {c.channel: float(c.sample([t])[0]) for c in timeline.curves}
        opening = sum(w * shapes[ch]["open"] for ch, w in weights.items())
        return min(1.0, opening), max(weights, key=weights.get)
    cues = [v for v in timeline.visemes if v.start <= t]
    into = min(1.0, (t - cues[-1].start) / 0.05)  # mouth.js cross-fades cues over 50 ms
    before = shapes[cues[-2].viseme]["open"] if len(cues) > 1 else 0.0
    return into * shapes[cues[-1].viseme]["open"] + (1 - into) * before, cues[-1].viseme


@pytest.mark.slow
def test_the_page_plays_rates_and_compares(lines, playwright_core, tmp_path):
    db = tmp_path / "ratings.sqlite"
    with reviewing(lines, db, tmp_path / "review.log") as url:
        began = time.monotonic()
        run = subprocess.run(
            ["node", str(NODE_SCRIPT), str(playwright_core), url, "pack", "pack", "bob", CHROMIUM],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        browser_s = time.monotonic() - began
        assert run.returncode == 0, run.stderr[-2000:]
        seen = json.loads(run.stdout)
        exported = urllib.request.urlopen(url + "/review/ratings.csv").read().decode()
        pack = json.load(urllib.request.urlopen(url + "/review/lines/pack/timelines/default"))
        bob = json.load(urllib.request.urlopen(url + "/review/lines/bob/timelines/default"))
    print(f"browser run {browser_s:.1f} s; steps at {seen['timings']}")
    assert seen["errors"] == [] and seen["lines"] == ["bob", "pack"]
    check_playback(seen, pack)
    check_rating(seen, db)
    check_comparison(seen, db)
    check_seeks(seen, bob)
    check_csv(exported, db)


def check_playback(seen: dict, answer: dict) -> None:
    """The audio clock runs, the mouth changes shape as it does, in step with the timeline."""
    assert seen["before"][0]["t"] == 0
    samples = seen["samples"]
    times = [s["t"] for s in samples]
    assert not any(s["paused"] for s in samples[1:]) and times == sorted(times)
    assert times[-1] - times[0] > 1.0  # 1.5 s of sampling, minus start-up
    assert len({s["inside"] for s in samples}) >= 8  # the SVG path's attribute moves
    assert len({s["playhead"] for s in samples}) >= 8
    opening = [float(s["open"]) for s in samples]
    # "Pack my box": open, closed, open. Samples come every 50 ms or later under load, so
    # one may land on the edge of a closure rather than its floor.
    assert max(opening) > 0.6 and min(opening[3:]) < 0.25
    assert {"PP", "aa"} <= {s["viseme"] for s in samples}
    lags = [s["t"] - s["drawn"] for s in samples]
    print(
        f"{len(samples)} samples over {times[-1] - times[0]:.2f} s of audio; the mouth drawn "
        f"{1000 * np.median(lags):.0f} ms (median), {1000 * max(lags):.0f} ms (max) behind"
    )
    assert -1e-4 <= min(lags) and np.median(lags) < 0.05 and max(lags) < 0.3  # frames keep up
    for s in samples:  # the shape drawn is the timeline's at the time it was drawn for
        window = [expected(answer, t)[0] for t in (s["drawn"] - 5e-5, s["drawn"] + 5e-5)]
        assert min(window) - 1e-3 <= float(s["open"]) <= max(window) + 1e-3, s


def rows(db: Path, mode: str) -> list[dict]:
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        found = connection.execute("SELECT * FROM ratings WHERE mode = ?", (mode,)).fetchall()
    return [dict(r) for r in found]


def check_rating(seen: dict, db: Path) -> None:
    assert "Pick a score" in seen["refusedWithoutScores"]
    assert seen["rated"].startswith("Saved rating #")
    [row] = rows(db, "single")
    assert row["line"] == "pack" and row["variant"] == seen["ratedVariant"] == "default"
    assert (row["sync"], row["naturalness"]) == (4, 5)
    assert row["comment"] == "lips close late on 'box'" and row["rater"] == "tester-1"
    assert row["session"] == seen["session"] and row["left_variant"] is None
    made = datetime.fromisoformat(row["created_at"])
    assert abs((datetime.now(timezone.utc) - made).total_seconds()) < 300


def check_comparison(seen: dict, db: Path) -> None:
    """Two mouths captioned A and B only; the row says which variant was where."""
    assert seen["abCaptions"] == ["A", "B"] and seen["abMouths"] == 2
    assert {seen["ab"]["left"], seen["ab"]["right"]} == {"default", "lead"}
    assert seen["compared"].startswith("Saved choice #")
    [row] = rows(db, "ab")
    assert (row["left_variant"], row["right_variant"]) == (seen["ab"]["left"], seen["ab"]["right"])
    assert row["preferred"] == "left" and row["variant"] == seen["ab"]["left"]
    assert row["sync"] is None and row["comment"] == "A is crisper"
    assert set(seen["orders"]) == {"default|lead", "lead|default"}  # the order is random


def check_seeks(seen: dict, answer: dict) -> None:
    """Paused and sought: ARKit's curves are blendshapes, so the mouth follows the cues."""
    assert [s["t"] for s in seen["seeks"]] == [0.3, 0.6, 0.9, 1.2, 1.5]
    for s in seen["seeks"]:
        opening, viseme = expected(answer, s["t"])
        assert s["viseme"] == viseme and s["open"] == pytest.approx(opening, abs=1e-3), s


def check_csv(exported: str, db: Path) -> None:
    records = list(csv.DictReader(io.StringIO(exported)))
    assert [r["mode"] for r in records] == ["single", "ab"]
    assert records[0]["sync"] == "4" and records[0]["naturalness"] == "5"
    assert records[1]["left_variant"] == rows(db, "ab")[0]["left_variant"]
    assert records[1]["preferred"] == "left"
