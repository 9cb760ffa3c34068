"""OSC playback timing: how close to each bundle's timetag a receiver on loopback gets it.

    .venv/bin/python benchmarks/osc_jitter.py [--seconds 60] [--fps 60] [--preset generic]

Speaks the Harvard sentences with eSpeak until the timeline is long enough, streams it in
real time with bridge_server.osc.stream.play to a python-osc BlockingOSCUDPServer on 127.0.0.1 (one
thread, no thread per packet, so the receive time is not delayed by thread start-up), and
prints one row:

- frames sent / received / lost (UDP on loopback should lose none);
- offset = receive time - the bundle's timetag, in ms: p50, p99, max (and min). Bundles are
  sent SEND_AHEAD (2 ms) early on purpose, so about -2 ms is on time; a positive offset means
  the frame arrived after it should have shown (a receiver honouring timetags applies it late);
- jitter = p99 - p50 of the offset: how much the arrival varies from frame to frame;
- late / skipped frames and the worst lateness as the sender measured it.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pythonosc.dispatcher import Dispatcher  # noqa: E402
from pythonosc.osc_bundle import OscBundle  # noqa: E402
from pythonosc.osc_server import BlockingOSCUDPServer  # noqa: E402

from bridge_server.osc import stream as osc  # noqa: E402
from bridge_server.pipeline import say  # noqa: E402

SENTENCES = Path(__file__).resolve().parents[1] / "tests" / "data" / "harvard.txt"


class Recorder(Dispatcher):
    """Records (receive time, timetag) for every bundle; does not wait for the timetags."""

    def __init__(self):
        super().__init__(strict_timing=False)
        self.arrivals: list[tuple[float, float]] = []

    def call_handlers_for_packet(self, data, client_address):
        now = time.time()
        self.arrivals.append((now, OscBundle(data).timestamp))
        return []


def long_timeline(seconds: float):
    """eSpeak reading the Harvard sentences (repeated as needed), cut to `seconds`."""
    lines = SENTENCES.read_text().splitlines()
    text, tl = "", None
    while tl is None or tl.duration < seconds:
        text += " ".join(lines) + " "
        _, tl = say(text, fps=60)
    tl.duration = seconds  # frames stop here; the curves simply go on beyond
    return tl


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=60.0, help="length to stream (default 60)")
    ap.add_argument("--fps", type=float, default=60.0)
    ap.add_argument("--preset", default="generic")
    args = ap.parse_args()

    tl = long_timeline(args.seconds)
    recorder = Recorder()
    server = BlockingOSCUDPServer(("127.0.0.1", 0), recorder)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    port = server.server_address[1]

    print(
        f"streaming {args.seconds:g} s at {args.fps:g} fps, preset {args.preset}, to "
        f"127.0.0.1:{port} ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    stats = osc.play(tl, "127.0.0.1", port, preset=args.preset, fps=args.fps)
    deadline = time.monotonic() + 2.0
    while len(recorder.arrivals) < stats.frames_sent and time.monotonic() < deadline:
        time.sleep(0.01)
    server.shutdown()
    server.server_close()

    recv, tags = np.array(recorder.arrivals).T
    offset = (recv - tags) * 1000
    p50, p99 = np.percentile(offset, [50, 99])
    rows = [
        ("preset", args.preset),
        ("fps", f"{args.fps:g}"),
        ("seconds", f"{args.seconds:g}"),
        ("frames sent", stats.frames_sent),
        ("frames received", len(offset)),
        ("frames lost", stats.frames_sent - len(offset)),
        ("offset p50 ms", f"{p50:+.2f}"),
        ("offset p99 ms", f"{p99:+.2f}"),
        ("offset max ms", f"{offset.max():+.2f}"),
        ("offset min ms", f"{offset.min():+.2f}"),
        ("jitter p99-p50 ms", f"{p99 - p50:.2f}"),
        ("received after timetag", int((offset > 0).sum())),
        ("late frames (sender)", stats.late_frames),
        ("max lateness ms (sender)", f"{stats.max_late_ms:.2f}"),
        ("skipped frames", stats.skipped_frames),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'measure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for k, v in rows:
        print(f"| {k:<{width}} | {v} |")


if __name__ == "__main__":
    main()
