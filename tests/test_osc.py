"""OSC streaming over real UDP on loopback, checked by two receivers: python-osc's server and
osc.js (the npm "osc" package, run by node), an implementation written by other people.

Most runs use a virtual clock (time moves only when the player sleeps), so whole timelines
stream in milliseconds and every frame is exactly on time; the real-time tests use the real
clock for a second or so.
"""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_server import ThreadingOSCUDPServer

from bridge_server.cli import osc as osc_command
from bridge_server.core.animate import retarget
from bridge_server.core.curves import frame_times
from bridge_server.core.errors import Cancelled, InputError
from bridge_server.core.timeline import Curve, Timeline
from bridge_server.core.visemes import load_set
from bridge_server.osc import stream as osc
from bridge_server.pipeline import say
from tests.npm import npm_package

OSC_JS = "osc@2.4.5"
NODE_SCRIPT = Path(__file__).with_name("osc_receive.js")
NTP_DELTA = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)
TIMETAG_TOL = 2e-6  # a timetag float through NTP's 32.32 fixed point and back


@pytest.fixture(scope="module")
def line() -> Timeline:
    return say("Pack my box.")[1]


# --- receivers -----------------------------------------------------------------------------


@dataclass
class Bundle:
    recv: float  # wall-clock seconds when the receiver got it
    tag: float  # the bundle's timetag, wall-clock seconds
    messages: list[tuple]  # (address, *args)
    types: list[str] | None = None  # OSC type tags per message, where the receiver shows them


class PythonReceiver:
    """python-osc's ThreadingOSCUDPServer; its Dispatcher records each bundle with its timetag
    (handlers only see messages) and dispatches the messages as usual."""

    name = "python-osc"

    def __init__(self):
        self.bundles: list[Bundle] = []
        self.dispatched = 0
        self.lock = threading.Lock()
        recorder = self

        class Recorder(Dispatcher):
            def call_handlers_for_packet(self, data, client_address):
                now = time.time()
                b = OscBundle(data)
                with recorder.lock:
                    recorder.bundles.append(
                        Bundle(now, b.timestamp, [(m.address, *m.params) for m in b])
                    )
                return super().call_handlers_for_packet(data, client_address)

        dispatcher = Recorder(strict_timing=False)  # record arrival, not the timetag's time
        dispatcher.set_default_handler(self._count)
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        # Room for seconds of 60 fps bundles: the default buffer (~200 KB, a few hundred small
        # datagrams) overflows while a loaded test machine keeps this process waiting.
        self.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def _count(self, address, *args):
        with self.lock:
            self.dispatched += 1

    def received(self, count: int, timeout: float = 5.0) -> list[Bundle]:
        """The bundles in timetag order, once `count` have come (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while len(self.bundles) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # handler threads still dispatching
        with self.lock:
            return sorted(self.bundles, key=lambda b: b.tag)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class NodeReceiver:
    """tests/osc_receive.js: osc.js in node, printing each packet as a JSON line."""

    name = "osc.js"

    def __init__(self, module_dir: Path):
        self.proc = subprocess.Popen(
            [shutil.which("node"), str(NODE_SCRIPT), str(module_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            first = self.lines.get(timeout=20)
        except queue.Empty:
            self.close()
            pytest.fail(f"osc.js receiver did not start: {self.proc.stderr.read()[-2000:]}")
        self.port = first["ready"]
        self.bundles: list[Bundle] = []

    def _read(self):
        for text in self.proc.stdout:
            self.lines.put(json.loads(text))

    def received(self, count: int, timeout: float = 5.0) -> list[Bundle]:
        deadline = time.monotonic() + timeout
        while len(self.bundles) < count:
            try:
                item = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.bundles.append(self._bundle(item))
        return sorted(self.bundles, key=lambda b: b.tag)

    @staticmethod
    def _bundle(item: dict) -> Bundle:
        packet = item["packet"]
        assert "timeTag" in packet, f"expected a bundle, got a bare message: {packet}"
        secs, frac = packet["timeTag"]
        messages = [(m["address"], *(a["value"] for a in m["args"])) for m in packet["packets"]]
        types = ["".join(a["type"] for a in m["args"]) for m in packet["packets"]]
        return Bundle(item["recv_ms"] / 1000, secs + frac / 2**32 - NTP_DELTA, messages, types)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture(scope="session")
def osc_js(tmp_path_factory) -> Path:
    """A folder with node_modules/osc (no serialport build: optional packages left out)."""
    return npm_package(OSC_JS, tmp_path_factory, "--omit=optional")


@pytest.fixture(params=["python-osc", "osc.js"])
def receiver(request):
    r = (
        PythonReceiver()
        if request.param == "python-osc"
        else NodeReceiver(request.getfixturevalue("osc_js"))
    )
    yield r
    r.close()


@pytest.fixture
def py_receiver():
    r = PythonReceiver()
    yield r
    r.close()


class VirtualClock:
    """time(), monotonic() and sleep() where time moves only by sleeping: every frame is sent
    exactly SEND_AHEAD before its timetag, and a timeline streams in milliseconds."""

    def __init__(self, start: float | None = None):
        self.now = time.time() if start is None else start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        time.sleep(0.0002)  # pace the datagrams a little, as real playback would


# --- what a receiver must see --------------------------------------------------------------


def expected_messages(preset: str, tl: Timeline) -> tuple[list[str], list[str]]:
    """(addresses, channels) one frame must carry, written out here rather than taken from
    the preset file, so a wrong preset fails."""
    vset = load_set(
        {"generic": tl.viseme_set, "vrchat": "oculus15", "vmc": "vrm5"}.get(preset, preset)
    )
    chans = vset.channels
    if preset == "generic":
        return [f"/lipsync/{c}" for c in chans], chans
    if preset == "vrchat":
        return [f"/avatar/parameters/LipSync_{c}" for c in chans], chans
    if preset == "arkit":
        return [f"/lipsync/arkit/{c}" for c in chans], chans
    assert preset == "vmc"
    return ["/VMC/Ext/Blend/Val"] * len(chans) + ["/VMC/Ext/Blend/Apply"], chans


def check_stream(bundles, stats, tl: Timeline, preset: str, fps: float, exact_times: bool):
    """Addresses, values against the curves at each frame's time, timetags on the 1/fps grid
    from start_at, and a final frame with every channel at 0."""
    want_set = osc.load_preset(preset).viseme_set
    target = tl if want_set in (None, tl.viseme_set) else retarget(tl, want_set)
    addresses, channels = expected_messages(preset, tl)
    n = len(frame_times(fps, target.duration))
    assert len(bundles) == stats.frames_sent
    assert stats.skipped_frames == 0 or not exact_times
    *timeline_frames, rest = bundles

    slots = [(b.tag - stats.start_at) * fps for b in bundles]
    assert all(abs(s - round(s)) < TIMETAG_TOL * fps for s in slots), "timetags off the grid"
    if exact_times:
        assert [round(s) for s in slots] == list(range(n + 1))
        assert bundles[0].tag == pytest.approx(stats.start_at, abs=TIMETAG_TOL)
        assert np.diff([b.tag for b in bundles]) == pytest.approx(1 / fps, abs=TIMETAG_TOL)
    assert rest.tag == pytest.approx(stats.rest_at, abs=TIMETAG_TOL)

    curves = {c.channel: c for c in target.curves}
    for b, slot in zip(timeline_frames, slots):
        assert [m[0] for m in b.messages] == addresses
        t = round(slot) / fps
        for m, ch in zip(b.messages, channels):
            value = m[-1]
            assert 0.0 <= value <= 1.0
            want = float(np.clip(curves[ch].sample([t])[0], 0, 1))
            assert value == pytest.approx(want, abs=1e-6), (ch, t)
        if preset == "vmc":
            assert [m[1] for m in b.messages[:-1]] == [
                {"aa": "A", "ih": "I", "ou": "U", "ee": "E", "oh": "O"}[c] for c in channels
            ]
            assert b.messages[-1] == ("/VMC/Ext/Blend/Apply",)
        if b.types is not None:  # floats go as float32 "f", VMC names as strings "s"
            want_types = ["sf" if preset == "vmc" else "f"] * len(channels)
            assert b.types == want_types + ([""] if preset == "vmc" else [])
    assert [m[0] for m in rest.messages] == addresses
    assert all(m[-1] == 0.0 for m in rest.messages if len(m) > 1)
    # the stream moves: some channel reaches a real weight (the lips close for p, b, m)
    assert max(m[-1] for b in timeline_frames for m in b.messages if len(m) > 1) > 0.5


# --- streaming -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["generic", "vrchat", "vmc", "arkit"])
def test_every_preset_streams_the_curves(line, receiver, preset):
    clock = VirtualClock()
    start = clock.now + 0.25
    stats = osc.play(
        line, "127.0.0.1", receiver.port, preset=preset, fps=60, start_at=start, clock=clock
    )
    assert stats.start_at == start and stats.late_frames == 0 and stats.skipped_frames == 0
    bundles = receiver.received(stats.frames_sent)
    check_stream(bundles, stats, line, preset, 60, exact_times=True)
    if isinstance(receiver, PythonReceiver):  # the Dispatcher handed every message on
        assert receiver.dispatched == sum(len(b.messages) for b in bundles)


@pytest.mark.slow
def test_real_time_playback_keeps_to_the_timetags(line, receiver):
    start = time.time() + 0.3
    stats = osc.play(line, "127.0.0.1", receiver.port, preset="generic", fps=30, start_at=start)
    bundles = receiver.received(stats.frames_sent)
    check_stream(bundles, stats, line, "generic", 30, exact_times=False)
    assert bundles[0].recv > start - 0.02, "the first frame went out before its start time"
    # paced in real time, not sent in a burst: arrivals span what the timetags span
    arrivals = bundles[-1].recv - bundles[0].recv
    assert arrivals == pytest.approx(bundles[-1].tag - bundles[0].tag, abs=0.1)
    # each is sent 2 ms early; a busy machine can stall now and then, hence the median
    offsets = np.array([b.recv - b.tag for b in bundles]) * 1000
    assert np.median(np.abs(offsets)) < 5, offsets


@pytest.mark.slow
def test_cancel_stops_and_closes_the_mouth(line, receiver):
    started = time.monotonic()

    def progress(done, stage):
        if time.monotonic() - started > 0.4:
            raise Cancelled("stopped by the test")

    with pytest.raises(Cancelled, match="stopped by the test"):
        osc.play(
            line, "127.0.0.1", receiver.port, fps=60, start_at=time.time() + 0.05, progress=progress
        )
    full = len(frame_times(60, line.duration)) + 1
    time.sleep(0.2)  # nothing more may come after the rest frame
    bundles = receiver.received(full, timeout=0.3)
    assert 5 < len(bundles) < full
    *played, rest = bundles
    assert all(m[-1] == 0.0 for m in rest.messages)
    assert len(rest.messages) == len(line.curves)
    assert rest.tag >= played[-1].tag + 1 / 60 - TIMETAG_TOL  # applied after the last frame
    assert max(b.recv for b in bundles) == pytest.approx(rest.recv, abs=0.05)


@pytest.mark.slow
def test_ctrl_c_becomes_cancelled_after_the_rest_frame(line, py_receiver):
    clock = VirtualClock()
    calls = 0

    def sleep(seconds):
        nonlocal calls
        calls += 1
        if calls == 20:
            raise KeyboardInterrupt
        clock.now += seconds

    clock.sleep = sleep
    with pytest.raises(Cancelled, match="mouth was set to rest"):
        osc.play(line, "127.0.0.1", py_receiver.port, clock=clock)
    bundles = py_receiver.received(10)
    assert bundles and all(m[-1] == 0.0 for m in bundles[-1].messages)


@pytest.mark.slow
def test_loop_repeats_on_the_frame_grid(line, py_receiver):
    clock = VirtualClock()
    n = len(frame_times(30, line.duration))

    def progress(done, stage):
        if stage == "loop 3" and done >= 0.5:
            raise Cancelled("enough")

    with pytest.raises(Cancelled):
        osc.play(
            line,
            "127.0.0.1",
            py_receiver.port,
            fps=30,
            loop=True,
            start_at=clock.now,
            progress=progress,
            clock=clock,
        )
    bundles = py_receiver.received(2 * n + n // 2 + 1)
    tags = [b.tag for b in bundles]
    assert np.diff(tags) == pytest.approx(1 / 30, abs=TIMETAG_TOL)  # no gap between passes
    assert len(bundles) > 2 * n
    assert bundles[n].messages == bundles[0].messages  # the second pass starts over
    assert all(m[-1] == 0.0 for m in bundles[-1].messages)


def test_frames_sample_the_curves_clamped():
    tl = Timeline(duration=1.0, fps=24, viseme_set="vrm5")
    tl.curves = [Curve("aa", [(0.0, -0.5), (1.0, 1.5)]), Curve("ih", [(0.0, 0.25)])]
    out = list(osc.frames(tl, 4, "generic"))
    assert [t for t, _ in out] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert out[2][1] == [("/lipsync/aa", 0.5), ("/lipsync/ih", 0.25)]
    assert out[0][1][0] == ("/lipsync/aa", 0.0) and out[-1][1][0] == ("/lipsync/aa", 1.0)
    assert osc.rest_messages(tl, "vmc") == [
        ("/VMC/Ext/Blend/Val", "A", 0.0),
        ("/VMC/Ext/Blend/Val", "I", 0.0),
        ("/VMC/Ext/Blend/Apply",),
    ]


def test_names_can_be_overridden_and_presets_read_from_a_file(tmp_path):
    tl = Timeline(duration=0.1, fps=24, viseme_set="oculus15", curves=[Curve("PP", [(0, 1)])])
    (_, first), *_ = osc.frames(tl, 10, "vrchat", names={"PP": "MouthClosed"})
    assert first == [("/avatar/parameters/MouthClosed", 1.0)]
    spec = {
        "port": 7000,
        "name": "v_{channel}",
        "per_channel": {"address": "/face/{name}", "args": ["{value}"]},
    }
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(spec))
    mine = osc.load_preset(str(path))
    assert (mine.name, mine.port, mine.viseme_set) == ("mine", 7000, None)
    assert next(osc.frames(tl, 10, mine))[1] == [("/face/v_PP", 1.0)]


# --- the command ---------------------------------------------------------------------------


def osc_parser() -> argparse.ArgumentParser:
    sub = argparse.ArgumentParser(prog="lipsync").add_subparsers()
    osc_command.add_commands(sub)
    return sub.choices["osc"]


def parse(*argv: str) -> argparse.Namespace:
    return osc_parser().parse_args(list(argv))


@pytest.mark.slow
def test_command_streams_a_timeline_file(line, py_receiver, tmp_path, capsys):
    path = tmp_path / "line.json"
    path.write_text(line.to_json())
    a = parse(
        str(path),
        "--to",
        f"127.0.0.1:{py_receiver.port}",
        "--preset",
        "vrchat",
        "--fps",
        "30",
        "--name",
        "PP=MouthClosed",
    )
    assert a.func is osc_command.cmd_osc
    assert osc_command.cmd_osc(a) == 0
    err = capsys.readouterr().err
    assert f"to 127.0.0.1:{py_receiver.port} as vrchat at 30 fps" in err and "sent " in err
    frames = len(frame_times(30, line.duration)) + 1
    bundles = py_receiver.received(frames)
    assert len(bundles) == frames
    addresses = {m[0] for m in bundles[0].messages}
    assert "/avatar/parameters/MouthClosed" in addresses
    assert (
        "/avatar/parameters/LipSync_aa" in addresses
        and "/avatar/parameters/LipSync_PP" not in addresses
    )


def test_command_help_lists_the_presets():
    text = osc_parser().format_help()
    for name in ("generic", "vrchat", "vmc", "arkit", "--to HOST:PORT", "--start-in"):
        assert name in text


# --- bad input -----------------------------------------------------------------------------


def test_targets_parse_or_say_how_to_write_them():
    assert osc.parse_target("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert osc.parse_target(" localhost:39539 ") == ("localhost", 39539)
    assert osc.parse_target(":9001") == ("127.0.0.1", 9001)
    assert osc.parse_target("[::1]:9000") == ("::1", 9000)
    assert osc.parse_target("10.0.0.2", default_port=39539) == ("10.0.0.2", 39539)
    for bad, hint in [
        ("127.0.0.1", "no port"),
        ("127.0.0.1:", "1..65535"),
        ("host:abc", "1..65535"),
        ("host:0", "1..65535"),
        ("host:70000", "1..65535"),
        ("::1:9000", "brackets"),
        ("[::1", "HOST:PORT"),
        ("my host:9000", "space"),
    ]:
        with pytest.raises(InputError, match=hint):
            osc.parse_target(bad)


def test_bad_input_is_refused_with_the_fix(line, tmp_path):
    with pytest.raises(InputError, match="unknown OSC preset 'vrc'.*generic, vrchat, vmc, arkit"):
        osc.play(line, "127.0.0.1", 9000, preset="vrc")
    for fps in (0, 241, float("nan")):
        with pytest.raises(InputError, match="outside 1..240"):
            osc.play(line, "127.0.0.1", 9000, fps=fps)
    with pytest.raises(InputError, match="no curves.*lipsync say --timeline"):
        osc.play(Timeline(duration=1.0, fps=24, viseme_set="oculus15"), "127.0.0.1", 9000)
    with pytest.raises(InputError, match="1..65535"):
        osc.play(line, "127.0.0.1", 0)
    with pytest.raises(InputError, match="not valid in an OSC address.*--name"):
        osc.play(line, "127.0.0.1", 9000, names={"PP": "Mouth Closed"})
    bare = Timeline(duration=1.0, fps=24, viseme_set="oculus15", curves=[Curve("PP", [(0, 1)])])
    with pytest.raises(InputError, match="no phonemes.*--visemes vrm5"):
        osc.play(bare, "127.0.0.1", 9000, preset="vmc")
    with pytest.raises(InputError, match="expects viseme set 'arkit'.*retarget"):
        next(osc.frames(line, 60, "arkit"))
    with pytest.raises(InputError, match="CHANNEL=NAME"):
        osc_command.cmd_osc(parse("x.json", "--name", "PP"))
    with pytest.raises(InputError, match="'nine' in '127.0.0.1:nine' is not a number in 1..65535"):
        osc_command.cmd_osc(parse("x.json", "--to", "127.0.0.1:nine"))
    with pytest.raises(InputError, match="does not exist"):
        osc_command.cmd_osc(parse(str(tmp_path / "missing.json"), "-q"))
    with pytest.raises(InputError, match="pp is not a channel.*case-sensitive"):
        osc.play(line, "127.0.0.1", 9000, names={"pp": "MouthClosed"})
    with pytest.raises(InputError, match="unknown OSC preset"):
        osc_command.cmd_osc(parse("x.json", "--preset", "nope"))
    with pytest.raises(InputError, match="cannot read OSC preset file"):
        osc.load_preset(str(tmp_path / "absent.json"))
    per_channel = {"address": "/a/{name}", "args": ["{value}"]}
    for spec, problem in [
        ({}, "lacks 'per_channel'"),
        ({"per_channel": {"address": "/a/{nam}"}}, "may only use {name}"),
        ({"per_channel": per_channel, "name": "x_{chan}"}, "may only use {channel}"),
        ({"per_channel": per_channel, "viseme_set": "ocu"}, "not one of"),
        ({"per_channel": per_channel, "after": [{"address": "/go", "args": ["1"]}]}, "no args"),
        ({"per_channel": per_channel, "port": 70000}, "outside 1..65535"),
    ]:
        path = tmp_path / "preset.json"
        path.write_text(json.dumps(spec))
        with pytest.raises(InputError, match=problem):
            osc.load_preset(str(path))
