"""Live mode from a microphone, through PortAudio, from the command line and over HTTP.

No microphone exists here, so ALSA's `file` plugin plays one: a capture device whose sound
comes from a raw file (alsa-lib reads ALSA_CONFIG_PATH, set for the child processes only).
Everything from PortAudio up is the real path. The device is not clocked, so the sound comes
faster than real time: frame k of the stream carries the sound at k/60 s.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from bridge_server.media.audio import load_audio, wav_bytes
from tests.bridge import LIPSYNC, running_bridge
from tests.test_osc import PythonReceiver

LINE = "Bob put the big blue map back in the box."
DEVICE = "lipsync_test_mic"


def _portaudio() -> bool:
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _portaudio(), reason="needs PortAudio (apt-get install libportaudio2; setup.sh does)"
)


@pytest.fixture(scope="module")
def microphone(espeak, tmp_path_factory):
    """(environment with the file microphone, the speech it plays)."""
    folder = tmp_path_factory.mktemp("alsa")
    speech = espeak.synthesize(LINE)
    samples = load_audio(wav_bytes(speech.audio, speech.sample_rate)).samples
    samples = np.concatenate([samples, np.zeros(16000, np.float32)])  # then a second of quiet
    (np.clip(samples, -1, 1) * 32767).astype("<i2").tofile(folder / "mic.raw")
    (folder / "asoundrc").write_text(
        f'pcm.{DEVICE} {{ type file slave.pcm "null" file "/dev/null" '
        f'infile "{folder / "mic.raw"}" format "raw" hint {{ show on description "test" }} }}\n'
    )
    env = os.environ | {"ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{folder / 'asoundrc'}"}
    return env, speech


@pytest.fixture
def receiver():
    r = PythonReceiver()
    yield r
    r.close()


def lipsync(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([LIPSYNC, *args], env=env, capture_output=True, text=True, timeout=120)


def weights(bundle) -> dict[str, float]:
    return {address.rsplit("/", 1)[1]: value for address, value in bundle.messages}


@pytest.mark.slow
def test_the_microphone_drives_the_mouth(microphone, receiver):
    env, speech = microphone
    listed = lipsync(env, "osc", "--list-devices")
    assert DEVICE in listed.stdout
    seconds = speech.duration + 0.5
    run = lipsync(env, "osc", "--live", "--device", DEVICE, "--seconds", f"{seconds}",
                  "--to", f"127.0.0.1:{receiver.port}")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"listening to {DEVICE}" in run.stderr and "latency p50" in run.stderr
    frames = round(seconds * 60)
    bundles = receiver.received(frames + 1)
    assert abs(len(bundles) - (frames + 1)) <= 2  # every frame, then the rest frame
    closed = [k / 60 for k, b in enumerate(bundles[:-1]) if weights(b)["PP"] > 0.4]
    closures = [p.start for p in speech.phonemes if p.ipa in ("p", "b", "m")]
    near = [any(0 <= t - c <= 0.35 for t in closed) for c in closures]
    assert np.mean(near) >= 0.7  # the lips close on most p/b/m
    assert not any(0.5 < t < closures[0] - 0.2 for t in closed)  # not in the quiet before
    assert all(v == 0.0 for v in weights(bundles[-1]).values())  # and rest at the end


@pytest.mark.slow
def test_an_unknown_device_is_named_with_the_ones_there_are(microphone):
    env, _ = microphone
    run = lipsync(env, "osc", "--live", "--device", "Blue Yeti")
    assert run.returncode == 3
    assert "no input device matches 'Blue Yeti'" in run.stderr and DEVICE in run.stderr


def test_without_sounddevice_the_error_says_what_to_install(monkeypatch):
    from bridge_server.core.errors import EngineUnavailable
    from bridge_server.osc.live import Microphone

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as if not installed
    with pytest.raises(EngineUnavailable, match=r"pip install 'lipsync-bridge\[live\]'"):
        Microphone()


@pytest.fixture
def server(microphone):
    with running_bridge(microphone[0]) as url:
        yield url


def call(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict | list]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.slow
def test_live_mode_starts_and_stops_over_http(server, receiver):
    status, devices = call(server + "/osc/devices")
    assert status == 200 and DEVICE in [d["name"] for d in devices]
    to = f"127.0.0.1:{receiver.port}"
    status, body = call(server + "/osc/live", "POST", {"to": to, "device": "Blue Yeti"})
    assert status == 400 and DEVICE in body["error"]

    # No time limit: it streams until stopped (the file device then gives silence).
    status, body = call(server + "/osc/live", "POST", {"to": to, "device": DEVICE})
    assert status == 202 and body["device"] == DEVICE
    live = server + body["links"]["status"]
    deadline = time.monotonic() + 30
    while len(receiver.bundles) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    status, running = call(live)
    assert running["status"] == "running" and running["stats"]["frames_sent"] >= 300
    status, stopped = call(server + body["links"]["stop"], "DELETE")
    assert status == 200
    for _ in range(100):
        status, final = call(live)
        if final["status"] != "running":
            break
        time.sleep(0.05)
    assert final["status"] == "cancelled"
    sent = final["stats"]["frames_sent"]
    bundles = receiver.received(sent + 1)
    # the mouth left at rest: the last bundle sent (the receiver handles each packet in a thread
    # of its own, so under load the last few may be recorded out of order)
    last = [weights(b) for b in bundles[-3:]]
    assert any(all(v == 0.0 for v in w.values()) for w in last), (sent, len(bundles), last)
    assert final["stats"]["phones"] > 5
    status, health = call(server + "/health")
    assert status == 200  # and the server goes on serving
