"""The HTTP bridge's cost over calling the core in-process, and its throughput.

    .venv/bin/python benchmarks/bridge.py [--requests 30]

A 3 s line (eSpeak, with its script) is baked in-process and through a real server on
loopback (upload, job, wait for the result): round-trip p50 and p99 against the in-process
time, then 4 clients at once against one at a time. The server runs two jobs at once
(--workers 2), as a render farm node would.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge_server import engines  # noqa: E402
from bridge_server.media.audio import wav_bytes  # noqa: E402
from bridge_server.pipeline import bake  # noqa: E402
from bridge_server.serve.app import ServerSettings, serve_in_thread  # noqa: E402

LINE = "Bob put the big blue map back in the box, then he made a cup of tea."


def timed(work, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        work()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=30)
    n = ap.parse_args().requests
    speech = engines.create("espeak").synthesize(LINE)
    wav = wav_bytes(speech.audio, speech.sample_rate)
    print(f"clip: {speech.duration:.1f} s of speech, {len(wav) / 1024:.0f} kB WAV, with its script")

    def in_process():
        from bridge_server.media.audio import load_audio

        bake(load_audio(wav, name="line.wav"), text=LINE)

    url, stop = serve_in_thread(ServerSettings(workers=2, max_queued=16))
    try:
        with httpx.Client(base_url=url, timeout=120) as client:

            def over_http():
                r = client.post(
                    "/lipsync/audio",
                    files={"file": ("line.wav", wav)},
                    data={"text": LINE, "wait": "true"},
                )
                r.raise_for_status()

            in_process(), over_http()  # warm both: models load once
            local, remote = timed(in_process, n), timed(over_http, n)
            t = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda _: over_http(), range(n)))
            parallel = time.perf_counter() - t
    finally:
        stop()

    def p(xs, q):
        return float(np.percentile(xs, q)) * 1000

    print(f"\n{'':<22}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'in-process bake':<22}{p(local, 50):>9.0f}{p(local, 99):>9.0f}")
    print(f"{'HTTP round trip':<22}{p(remote, 50):>9.0f}{p(remote, 99):>9.0f}")
    overhead = statistics.median(remote) - statistics.median(local)
    print(
        f"HTTP costs {overhead * 1000:.0f} ms a request ({statistics.median(remote) / statistics.median(local):.2f}x the in-process time)"
    )
    one_at_a_time = n / sum(remote)
    print(
        f"throughput: 1 client {one_at_a_time:.1f} req/s, 4 clients {n / parallel:.1f} req/s "
        f"({n / parallel / one_at_a_time:.2f}x)"
    )


if __name__ == "__main__":
    main()
