"""Live mode: how long after a sound its mouth shape reaches an OSC receiver.

    .venv/bin/python benchmarks/live_latency.py [AUDIO ...]

Plays each recording as a live stream (20 ms chunks at the pace of playback, as a microphone
delivers them) through bridge_server.osc.live.stream to a python-osc receiver on loopback, and
prints one row per recording:

- closures: reference p/b/m (from the offline pipeline on the same file, Whisper + forced
  alignment) whose lips the receiver saw close (PP weight > 0.4) within 0.5 s of the sound;
- closure latency: receive time of that first closed frame - the time the p/b/m was heard,
  p50 and p95, in ms. This is sound to packet, measured at the receiver;
- phone latency: the same for every phone change, as the sender measures it (sound heard ->
  packet sent), p50 / p95 / max;
- speed: the phone loop over the same file as fast as it goes, in x realtime (the baseline:
  how much of each 20 ms chunk's time the recogniser uses).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pythonosc.dispatcher import Dispatcher  # noqa: E402
from pythonosc.osc_bundle import OscBundle  # noqa: E402
from pythonosc.osc_server import BlockingOSCUDPServer  # noqa: E402

from bridge_server.media.audio import iter_audio  # noqa: E402
from bridge_server.osc import live  # noqa: E402
from bridge_server.pipeline import bake  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "librivox_kittens"
DEFAULT = [DATA / "shorted-threelittlekittens_01_rountreesmith.ogg"]


class Recorder(Dispatcher):
    """(receive time, PP weight) for every bundle."""

    def __init__(self):
        super().__init__(strict_timing=False)
        self.frames: list[tuple[float, float]] = []

    def call_handlers_for_packet(self, data, client_address):
        now = time.monotonic()
        weights = {m.address: m.params[0] for m in OscBundle(data)}
        self.frames.append((now, weights.get("/lipsync/PP", 0.0)))
        return []


def measure(path: Path) -> dict:
    closures = [p.start for p in bake(path).phonemes if p.ipa in ("p", "b", "m")]
    server = BlockingOSCUDPServer(("127.0.0.1", 0), recorder := Recorder())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    begin = {}

    def heard():  # the stream's clock starts with its first chunk
        for chunk in live.played(path):
            begin.setdefault("t", time.monotonic())
            yield chunk

    try:
        stats = live.stream(heard(), *server.server_address)
        time.sleep(0.2)
    finally:
        server.shutdown()
        server.server_close()
    closed = [t - begin["t"] for t, pp in recorder.frames if pp > 0.4]
    delays = [next((t - c for t in closed if 0 <= t - c <= 0.5), None) for c in closures]
    hits = [d * 1000 for d in delays if d is not None]
    return {
        "file": path.name,
        "seconds": stats.seconds,
        "closures": f"{len(hits)}/{len(closures)}",
        "closure p50": np.percentile(hits, 50) if hits else float("nan"),
        "closure p95": np.percentile(hits, 95) if hits else float("nan"),
        "phone p50": stats.latency(50),
        "phone p95": stats.latency(95),
        "phone max": max(stats.latencies_ms, default=0.0),
        "x realtime": stats.seconds / _loop_time(path),
    }


def _loop_time(path: Path) -> float:
    chunks = list(iter_audio(path, chunk_seconds=live.CHUNK_S))
    phones = live.LivePhones()
    start = time.perf_counter()
    for chunk in chunks:
        phones.feed(chunk)
    phones.close()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("audio", nargs="*", type=Path, default=DEFAULT)
    rows = [measure(path) for path in p.parse_args().audio]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        cells = [f"{v:.1f}" if isinstance(v, float) else str(v) for v in r.values()]
        print("| " + " | ".join(cells) + " |")
    print("\nlatencies in ms; closure latency is measured at the receiver")


if __name__ == "__main__":
    main()
