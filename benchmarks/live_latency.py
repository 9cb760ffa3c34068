"""Live mode: how long after a sound its mouth shape reaches an OSC receiver.

    .venv/bin/python benchmarks/live_latency.py [AUDIO ...]

Plays each recording as a live stream (20 ms chunks at the pace of playback, as a microphone
delivers them) through bridge_server.osc.live.stream to a python-osc receiver on loopback, once
per motion (learned: the live motion model on the sound; rules: the phone loop), and prints
one row per recording and motion:

- closures: reference p/b/m (from the offline pipeline on the same file, Whisper + forced
  alignment) whose lips the receiver saw close (PP weight > 0.4) within 0.5 s of the sound;
- closure latency: receive time of that first closed frame - the time the p/b/m was heard,
  p50 and p95, in ms. This is sound to packet, measured at the receiver;
- shape latency: the same for every change of shape (a new phone, or a new leading viseme of
  the model's mouth), as the sender measures it (sound heard -> packet sent), p50 / p95 / max;
- CPU: the process's CPU time while streaming, as a share of one core;
- speed: the same hearing over the same file as fast as it goes, in x realtime (how much of
  each 20 ms chunk's time it uses).
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

from bridge_server.core.visemes import load_set  # noqa: E402
from bridge_server.media.audio import iter_audio  # noqa: E402
from bridge_server.osc import live  # noqa: E402
from bridge_server.pipeline import bake  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "librivox_kittens"
DEFAULT = [
    DATA / "shorted-threelittlekittens_01_rountreesmith.ogg",
    DATA.parents[0] / "grid" / "videos" / "pwij3p.mpg",
]  # an unseen GRID speaker


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


def measure(path: Path, motion: str, closures: list[float]) -> dict:
    server = BlockingOSCUDPServer(("127.0.0.1", 0), recorder := Recorder())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    begin = {}

    def heard():  # the stream's clock starts with its first chunk
        for chunk in live.played(path):
            begin.setdefault("t", time.monotonic())
            yield chunk

    cpu = time.process_time()
    try:
        stats = live.stream(heard(), *server.server_address, motion=motion)
        cpu = (time.process_time() - cpu) / (time.monotonic() - begin["t"])
        time.sleep(0.2)
    finally:
        server.shutdown()
        server.server_close()
    closed = [t - begin["t"] for t, pp in recorder.frames if pp > 0.4]
    delays = [next((t - c for t in closed if 0 <= t - c <= 0.5), None) for c in closures]
    hits = [d * 1000 for d in delays if d is not None]
    return {
        "file": path.name,
        "motion": motion,
        "seconds": stats.seconds,
        "closures": f"{len(hits)}/{len(closures)}",
        "closure p50": np.percentile(hits, 50) if hits else float("nan"),
        "closure p95": np.percentile(hits, 95) if hits else float("nan"),
        "shape p50": stats.latency(50),
        "shape p95": stats.latency(95),
        "shape max": max(stats.latencies_ms, default=0.0),
        "CPU %": 100 * cpu,
        "x realtime": stats.seconds / _loop_time(path, motion),
    }


def _loop_time(path: Path, motion: str) -> float:
    chunks = list(iter_audio(path, chunk_seconds=live.CHUNK_S))
    vset = load_set("oculus15")
    hearing = live._hearing(motion, vset, list(vset.channels))
    start = time.perf_counter()
    for chunk in chunks:
        hearing.feed(chunk)
    hearing.close()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("audio", nargs="*", type=Path, default=DEFAULT)
    rows = []
    for path in p.parse_args().audio:
        closures = [q.start for q in bake(path).phonemes if q.ipa in ("p", "b", "m")]
        rows += [measure(path, motion, closures) for motion in ("learned", "rules")]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        cells = [f"{v:.1f}" if isinstance(v, float) else str(v) for v in r.values()]
        print("| " + " | ".join(cells) + " |")
    print("\nlatencies in ms; closure latency is measured at the receiver")


if __name__ == "__main__":
    main()
