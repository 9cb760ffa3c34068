"""The HTTP bridge for real: uvicorn on a free loopback port, driven by an HTTP client."""

import json
import logging
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bridge_server.core.errors import InputError
from bridge_server.core.timeline import Timeline
from bridge_server.media.audio import wav_bytes
from bridge_server.serve.app import ServerSettings, check_bind, create_app, serve_in_thread
from bridge_server.serve.routes import info as info_routes
from bridge_server.serve.routes import lipsync as lipsync_routes
from tests.conftest import SHARED
from tests.npm import npm_package
from tests.test_review import CHROMIUM, PLAYWRIGHT

KITTENS = SHARED / "librivox_kittens"
LINE = "Bob put the big blue map back in the box."


@pytest.fixture(scope="module")
def bridge():
    url, stop = serve_in_thread(ServerSettings(max_upload_mb=20, max_queued=2))
    with httpx.Client(base_url=url, timeout=120) as client:
        yield client
    stop()


@pytest.fixture(scope="module")
def line_wav(espeak) -> bytes:
    speech = espeak.synthesize(LINE)
    return wav_bytes(speech.audio, speech.sample_rate)


def wait_done(client, job_id: str, timeout: float = 120) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = client.get(f"/jobs/{job_id}").json()
        if status["status"] not in ("queued", "running"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.mark.slow
def test_health_engines_and_the_openapi_page(bridge):
    assert bridge.get("/health").json()["status"] == "ok"
    rows = {r["name"]: r for r in bridge.get("/engines").json()}
    assert rows["espeak"]["available"] and rows["pocketsphinx"]["available"]
    assert "fix" in rows["allosaurus"]["detail"] or rows["allosaurus"]["available"]
    assert "rhubarb" in bridge.get("/viseme-sets").json()
    voices = {(v["engine"], v["voice"]): v for v in bridge.get("/voices").json()["voices"]}
    assert voices["espeak", "ja"]["scripts"] == ["Hiragana", "Katakana", "Latin"]
    assert voices["piper", "joe"]["language"] == "en-us"
    paths = bridge.get("/openapi.json").json()["paths"]
    assert {"/lipsync/text", "/lipsync/audio", "/transcribe", "/jobs/{job_id}"} <= set(paths)
    assert bridge.get("/docs").status_code == 200


@pytest.mark.slow
def test_text_to_timeline_waiting_and_as_a_job(bridge):
    done = bridge.post("/lipsync/text", json={"text": LINE, "wait": True, "visemes": "rhubarb"})
    assert done.status_code == 200
    timeline = Timeline.from_json(done.text)
    assert timeline.viseme_set == "rhubarb" and [w.text for w in timeline.words][0] == "Bob"

    started = bridge.post("/lipsync/text", json={"text": LINE, "fps": 30})
    assert started.status_code == 202
    job = started.json()["job"]
    assert wait_done(bridge, job["id"])["status"] == "done"
    result = bridge.get(f"/jobs/{job['id']}/result")
    assert Timeline.from_json(result.text).fps == 30
    audio = bridge.get(f"/jobs/{job['id']}/audio")
    assert audio.headers["content-type"] == "audio/wav" and audio.content[:4] == b"RIFF"
    cues = bridge.get(f"/jobs/{job['id']}/result", params={"format": "rhubarb-tsv"})
    assert cues.status_code == 200 and cues.text.splitlines()[0].split("\t")[1] in "ABCDEFGHX"


@pytest.mark.slow
def test_an_uploaded_recording_with_its_script(bridge, line_wav):
    r = bridge.post(
        "/lipsync/audio",
        files={"file": ("line.wav", line_wav, "audio/wav")},
        data={"text": LINE, "wait": "true", "visemes": "oculus15"},
    )
    assert r.status_code == 200, r.text
    timeline = Timeline.from_json(r.text)
    assert timeline.source["transcript"] == "script" and timeline.source["audio"] == "line.wav"
    assert timeline.source["text"] == LINE  # the script as given
    assert [w.text for w in timeline.words] == LINE.rstrip(".").split()
    assert sum(c.viseme == "PP" for c in timeline.visemes) >= 5  # b p b m b b: lips close


@pytest.mark.slow
def test_a_recording_is_transcribed_without_being_animated(bridge):
    clip = KITTENS / "en_male_electricity.ogg"  # "Electricity."
    upload = {"file": (clip.name, clip.read_bytes())}
    r = bridge.post("/transcribe", files=upload, data={"wait": "true"})  # the language detected
    assert r.status_code == 200, r.text
    heard = r.json()
    assert heard["text"].lower() == "electricity." and heard["language"] == "en"
    assert heard["warnings"] == [] and [w["text"] for w in heard["words"]] == [heard["text"]]
    assert 0 <= heard["words"][0]["start"] < heard["words"][0]["end"] <= 1.1
    started = bridge.post("/transcribe", files=upload, data={"lang": "en", "engine": "whisper"})
    assert started.status_code == 202
    job = started.json()["job"]
    assert job["kind"] == "transcript" and wait_done(bridge, job["id"])["status"] == "done"
    assert bridge.get(f"/jobs/{job['id']}/result").json() == heard
    played = bridge.post("/osc/play", json={"job_id": job["id"]})  # words only: nothing to play
    assert played.status_code == 400 and "made no timeline" in played.json()["error"]
    # a lip-sync job hears the same words, and its timeline's source says them
    synced = bridge.post("/lipsync/audio", files=upload,
                         data={"engine": "whisper", "lang": "en", "wait": "true"})  # fmt: skip
    source = Timeline.from_json(synced.text).source
    assert source["text"] == heard["text"] and source["transcript"] == "whisper"
    for data, content, status, words in [
        ({}, b"", 400, "clip.ogg is empty (0 bytes)"),
        ({"wait": "true"}, b"not sound", 400, "clip.ogg"),
        ({"engine": "espeak"}, b"not sound", 422, "engine"),
    ]:
        bad = bridge.post("/transcribe", files={"file": ("clip.ogg", content)}, data=data)
        assert bad.status_code == status and words in bad.json()["error"], bad.text


@pytest.mark.slow
def test_a_video_upload_is_timed_by_its_sound_and_shaped_by_its_face(bridge):
    video = next((SHARED / "grid" / "videos").glob("*lbax4n.mpg"))
    r = bridge.post(
        "/lipsync/video",
        files={"file": (video.name, video.read_bytes())},
        data={"text": "lay blue at x four now", "wait": "true", "video_weight": "0.8",
              "rig": "vrchat"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    timeline = Timeline.from_json(r.text)
    assert [w.text for w in timeline.words] == "lay blue at x four now".split()
    assert (
        timeline.source["video"]["face_found"] == 1.0 and timeline.source["video"]["weight"] == 0.8
    )
    assert len(timeline.landmarks.frames) == 75 and timeline.mouth_controls
    assert "vrc.v_aa" in [c.channel for c in timeline.curves]  # named after the rig
    bad = bridge.post("/lipsync/video", files={"file": ("x.mpg", video.read_bytes())},
                      data={"video_weight": "3"})  # fmt: skip
    assert bad.status_code == 422 and "video_weight" in bad.text


@pytest.mark.slow
def test_cancelling_a_long_job(bridge):
    data = (KITTENS / "threelittlekittens_01_rountreesmith.ogg").read_bytes()
    started = bridge.post("/lipsync/audio", files={"file": ("reading.ogg", data)})
    job_id = started.json()["job"]["id"]
    while bridge.get(f"/jobs/{job_id}").json()["status"] == "queued":
        time.sleep(0.05)
    cancelled = bridge.delete(f"/jobs/{job_id}")
    assert cancelled.status_code == 200
    status = wait_done(bridge, job_id, 60)
    assert status["status"] == "cancelled" and "cancelled" in status["error"]
    result = bridge.get(f"/jobs/{job_id}/result")
    assert result.status_code == 409 and result.json()["type"] == "Cancelled"


@pytest.mark.slow
@pytest.mark.parametrize(
    "request_args, status, words",
    [
        (dict(json={"text": ""}), 400, "text is empty"),
        (dict(json={"text": "hi", "visemes": "nope"}), 400, "viseme set"),
        (dict(json={"text": "hi", "fps": 0}), 422, "fps"),
        (dict(json={"txt": "hi"}), 422, "text"),
        (dict(content=b"{not json", headers={"content-type": "application/json"}), 422, "JSON"),
        (
            dict(json={"text": "Hola.", "lang": "es", "engine": "piper", "wait": True}),
            400,
            "voice for es (voice), or the espeak engine (engine).",  # fields, not CLI flags
        ),
    ],
    ids=["empty", "visemes", "fps", "field", "json", "piper-lang"],
)
def test_bad_text_requests_get_a_json_error_that_says_what_to_fix(
    bridge, request_args, status, words
):
    r = bridge.post("/lipsync/text", **request_args)
    assert r.status_code == status and words in r.json()["error"]


@pytest.mark.slow
def test_bad_uploads_are_refused_and_the_server_keeps_serving(bridge, line_wav):
    cases = [
        (b"", 400, "empty"),
        (b"this is not audio at all" * 50, 400, "not an audio"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(40), 400, "x.wav"),  # a broken header
    ]
    for content, status, words in cases:
        r = bridge.post("/lipsync/audio", files={"file": ("x.wav", content)}, data={"wait": "true"})
        assert r.status_code == status and words in r.json()["error"], r.text
    big = bridge.post("/lipsync/audio", files={"file": ("big.wav", b"\0" * (21 * 1024 * 1024))})
    assert big.status_code == 413 and "--max-upload-mb" in big.json()["error"]
    assert bridge.get("/jobs/no-such-job").status_code == 404
    assert bridge.get("/jobs/no-such-job/result").json()["type"] == "InputError"
    assert bridge.get("/health").status_code == 200


@pytest.mark.slow
def test_a_queue_that_is_full_says_retry(bridge):
    slow = (KITTENS / "threelittlekittens_01_rountreesmith.ogg").read_bytes()
    ids, refused = [], None
    for _ in range(5):
        r = bridge.post("/lipsync/audio", files={"file": ("reading.ogg", slow)})
        if r.status_code == 429:
            refused = r
            break
        ids.append(r.json()["job"]["id"])
    for job_id in ids:
        bridge.delete(f"/jobs/{job_id}")
    assert refused is not None and "retry" in refused.json()["error"]


@pytest.mark.slow
def test_a_token_guards_every_call_but_health():
    url, stop = serve_in_thread(ServerSettings(token="s3cret"))
    try:
        assert httpx.get(f"{url}/health").status_code == 200
        assert httpx.get(f"{url}/engines").status_code == 401
        ok = httpx.get(f"{url}/engines", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
    finally:
        stop()


def test_only_loopback_may_serve_without_a_token():
    check_bind("127.0.0.1", "")
    check_bind("::1", "")
    with pytest.raises(InputError, match="--token"):
        check_bind("0.0.0.0", "")
    check_bind("0.0.0.0", "s3cret")


@pytest.mark.slow
def test_curves_come_named_after_the_rig(bridge, line_wav):
    presets = {r["name"]: r for r in bridge.get("/rigs").json()}
    assert {"vrchat", "arkit", "vrm", "rhubarb", "demo_head"} <= set(presets)

    r = bridge.post("/lipsync/text", json={"text": LINE, "rig": "vrchat", "wait": True})
    timeline = Timeline.from_json(r.text)
    assert {c.channel for c in timeline.curves} == set(presets["vrchat"]["shape_keys"].values())
    assert max(k[1] for c in timeline.curves if c.channel == "vrc.v_pp" for k in c.keys) == 1.0

    keys = ["Basis", "Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O", "Blink_L"]
    matched = bridge.post("/rigs/match", json={"shape_keys": keys}).json()
    assert matched["viseme_set"] == "vrm5" and matched["unmatched_keys"] == ["Basis", "Blink_L"]
    started = bridge.post(
        "/lipsync/audio",
        files={"file": ("line.wav", line_wav)},
        data={"text": LINE, "shape_keys": ",".join(keys)},
    ).json()["job"]
    assert wait_done(bridge, started["id"])["status"] == "done"
    timeline = Timeline.from_json(bridge.get(f"/jobs/{started['id']}/result").text)
    assert {c.channel for c in timeline.curves} == set(keys[1:6])
    assert bridge.get(f"/jobs/{started['id']}/rig").json()["missing_channels"] == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "body, words",
    [
        ({"text": "hi", "rig": "no-such-rig"}, "no-such-rig"),
        ({"text": "hi", "rig": "vrchat", "shape_keys": ["jawOpen"]}, "not both"),
        ({"text": "hi", "shape_keys": ["Basis", "Blink_L"]}, "vrc.v_aa"),
    ],
    ids=["unknown", "both", "nothing-matches"],
)
def test_rig_mistakes_are_refused_at_once(bridge, body, words):
    r = bridge.post("/lipsync/text", json=body)
    assert r.status_code == 400 and words in r.json()["error"]


@pytest.mark.slow
def test_osc_playback_starts_and_stops_over_http(bridge):
    from tests.test_osc import PythonReceiver

    receiver = PythonReceiver()
    try:
        made = bridge.post("/lipsync/text", json={"text": LINE}).json()["job"]
        assert wait_done(bridge, made["id"])["status"] == "done"
        r = bridge.post(
            "/osc/play",
            json={"job_id": made["id"], "to": f"127.0.0.1:{receiver.port}", "loop": True},
        )
        assert r.status_code == 202, r.text
        play = r.json()
        bundles = receiver.received(30)
        assert len(bundles) >= 30 and abs(bundles[0].tag - play["start_at"]) < 1e-3
        assert {m[0] for m in bundles[0].messages} >= {"/lipsync/PP", "/lipsync/aa"}
        assert bridge.delete(f"/osc/play/{play['job']['id']}").status_code == 200
        status = wait_done_osc(bridge, play["job"]["id"])
        assert status["status"] == "cancelled"
        time.sleep(0.2)
        last = max(receiver.bundles, key=lambda b: b.recv)
        assert all(m[1] == 0.0 for m in last.messages)  # the mouth is left at rest
    finally:
        receiver.close()
    bad = bridge.post("/osc/play", json={"job_id": made["id"], "preset": "/etc/passwd"})
    assert bad.status_code == 400 and "unknown OSC preset" in bad.json()["error"]
    neither = bridge.post("/osc/play", json={"to": "127.0.0.1:9"})
    assert neither.status_code == 400 and "job_id" in neither.json()["error"]


def wait_done_osc(client, job_id: str) -> dict:
    for _ in range(200):
        status = client.get(f"/osc/play/{job_id}").json()
        if status["status"] not in ("queued", "running"):
            return status
        time.sleep(0.05)
    raise AssertionError("playback did not stop")


@pytest.mark.slow
def test_shutdown_cancels_running_jobs_and_returns_quickly():
    url, stop = serve_in_thread(ServerSettings())
    data = (KITTENS / "threelittlekittens_01_rountreesmith.ogg").read_bytes()
    job = httpx.post(f"{url}/lipsync/audio", files={"file": ("reading.ogg", data)}).json()["job"]
    while httpx.get(f"{url}/jobs/{job['id']}").json()["status"] == "queued":
        time.sleep(0.05)
    t = time.perf_counter()
    stop()
    assert time.perf_counter() - t < 10
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")


@pytest.mark.slow
def test_lip_reading_and_script_timing_over_http(bridge):
    video = next((SHARED / "grid" / "videos").glob("*pwij3p.mpg"))
    upload = {"file": (video.name, video.read_bytes())}
    lines = "place white in j three please\nbin blue at f two now\nlay green by q five soon"
    r = bridge.post("/lipread", files=upload, data={"choices": lines, "wait": "true"})
    assert r.status_code == 200, r.text
    ranked = r.json()["candidates"]
    assert len(ranked) == 3 and ranked[0]["words"]
    assert sum(c["confidence"] for c in ranked) == pytest.approx(1.0, abs=0.01)
    r = bridge.post("/lipread/script", files=upload,
                    data={"text": "place white in j three please", "rig": "vrchat", "wait": "true"})  # fmt: skip
    assert r.status_code == 200, r.text
    timeline = Timeline.from_json(r.text)
    assert [w.text for w in timeline.words] == "place white in j three please".split()
    assert timeline.source["kind"] == "video-lips" and "vrc.v_pp" in [
        c.channel for c in timeline.curves
    ]
    for data, problem in [({"grammar": "/etc/passwd"}, "unknown grammar"),
                          ({}, "give choices"), ({"choices": "\n"}, "holds no line")]:  # fmt: skip
        bad = bridge.post("/lipread", files=upload, data=data)
        assert bad.status_code == 400 and problem in bad.json()["error"]


def test_a_crashing_job_logs_its_traceback_and_answers_clean_json(monkeypatch, caplog):
    def crash(*args, **kwargs):
        raise RuntimeError("the engine fell over")

    monkeypatch.setattr(lipsync_routes, "say", crash)
    with caplog.at_level(logging.INFO, logger="bridge_server"), TestClient(create_app()) as client:
        r = client.post("/lipsync/text", json={"text": "hi", "wait": True})
    assert r.status_code == 500 and r.json()["type"] == "InternalError"
    assert "RuntimeError: the engine fell over" in r.json()["error"]
    assert "log has the traceback" in r.json()["error"]
    [record] = [x for x in caplog.records if x.name == "bridge_server.serve.jobs"]
    assert record.levelno == logging.ERROR and record.exc_info[0] is RuntimeError
    assert "Traceback" in caplog.text and "in crash" in caplog.text


def test_a_crashing_route_logs_its_traceback_and_answers_clean_json(monkeypatch, caplog):
    monkeypatch.setattr(info_routes, "available_sets", lambda: 1 / 0)
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        r = client.get("/viseme-sets")
    assert r.status_code == 500 and r.json()["type"] == "InternalError"
    assert "ZeroDivisionError" in r.json()["error"]
    assert any(x.exc_info and x.exc_info[0] is ZeroDivisionError for x in caplog.records)


def test_a_method_a_path_does_not_take_says_which_it_does():
    with TestClient(create_app()) as client:
        r = client.request("TRACE", "/jobs/1-00000")
        assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET"
        assert r.json()["type"] == "HTTPError"
        assert client.put("/lipsync/text").headers["allow"] == "POST"


@pytest.mark.slow
def test_the_docs_pages_and_their_assets_come_from_the_bridge(bridge):
    for page in ("/docs", "/redoc"):
        html = bridge.get(page).text
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html)
        assert urls and not [u for u in urls if re.match(r"(https?:)?//", u)], urls
        for url in urls:
            r = bridge.get(url)
            assert r.status_code == 200 and r.content, url
            if url.endswith((".js", ".css")):
                assert r.headers["content-type"].split(";")[0] in (
                    "text/javascript",
                    "application/javascript",
                    "text/css",
                )


@pytest.mark.slow
def test_the_docs_render_in_a_browser_with_no_other_host(bridge, tmp_path_factory):
    """Swagger UI lists the operations and ReDoc renders, every request to another host blocked."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no {CHROMIUM}: 'apt-get install chromium' (./setup.sh test does)")
    modules = npm_package(PLAYWRIGHT, tmp_path_factory)
    script = Path(__file__).with_name("docs_browser.js")
    run = subprocess.run(
        ["node", str(script), str(modules), str(bridge.base_url).rstrip("/"), CHROMIUM],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout)
    # ReDoc's footer tries Redocly's logo from its CDN and hides it when that fails: not needed
    assert set(seen["elsewhere"]) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
    assert seen["errors"] == []
    assert {"/lipsync/text", "/lipsync/audio", "/jobs/{job_id}"} <= set(seen["operations"])
    assert seen["redoc"] >= 20
