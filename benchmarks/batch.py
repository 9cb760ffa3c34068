"""`lipsync batch` on Dask: throughput against the one-process loop, overhead, memory, and a
paper estimate for a game's dialogue.

    .venv/bin/python benchmarks/batch.py [--lines 23]

The lines: the 23 test sentences spoken by eSpeak, each a recording with its script beside it
(as a game's dialogue arrives). Each way of running them starts from nothing (models load in
each process, as on a fresh cluster) and writes every line's timeline:
- one process, in order (run_line in a loop: the same work, no Dask);
- Dask with 1 and 2 local worker processes (cluster start included).
Throughput is seconds of speech animated per second of wall time. Overhead per task: Dask's
round trip for a task that does nothing. Memory: each worker's resident set after the run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge_server.batch import cluster, find_lines, run_line  # noqa: E402

SENTENCES = (ROOT / "tests" / "data" / "harvard.txt").read_text().splitlines()
LOOP = """
import json, sys, time
t = time.perf_counter()
from bridge_server.batch import find_lines, run_line
out = [run_line(line, sys.argv[2], (), {}) for line in find_lines([sys.argv[1]])]
print(json.dumps({"wall": time.perf_counter() - t, "audio": sum(r.get("audio_s", 0) for r in out)}))
"""


def make_lines(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i, text in enumerate((SENTENCES * 4)[:n]):
        wav = folder / f"line{i:03d}.wav"
        subprocess.run([Path(sys.executable).with_name("lipsync"), "say", text, "-o", str(wav),
                        "-q", "--timeline", "/dev/null"], check=True)  # fmt: skip
        wav.with_suffix(".txt").write_text(text)


def one_process(lines: Path, out: Path) -> tuple[float, float]:
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", LOOP, str(lines), str(out)], cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    r = json.loads(done.stdout.splitlines()[-1])
    return r["wall"], r["audio"]


def on_dask(lines: Path, out: Path, workers: int) -> dict:
    import psutil

    out.mkdir()
    todo = find_lines([lines])
    t = time.perf_counter()
    with cluster("", workers) as client:
        started = time.perf_counter() - t
        n = len(todo)
        records = client.gather(client.map(run_line, todo, [str(out)] * n, [()] * n, [{}] * n,
                                           pure=False))  # fmt: skip
        wall = time.perf_counter() - t
        rss = client.run(lambda: psutil.Process().memory_info().rss / 2**20)
        t = time.perf_counter()
        client.gather(client.map(_nothing, range(200), pure=False))
        overhead = (time.perf_counter() - t) / 200 * workers
    task_s = sorted(r["seconds"] / r["audio_s"] for r in records if r.get("audio_s"))
    return {"wall": wall, "start": started, "audio": sum(r.get("audio_s", 0) for r in records),
            "rss": sorted(rss.values()), "overhead": overhead, "per_audio_s": task_s[len(task_s) // 2],
            "ok": sum(r["status"] == "ok" for r in records)}  # fmt: skip


def _nothing(x):
    return x


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=23)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_lines(tmp / "lines", args.lines)
        wall, audio = one_process(tmp / "lines", tmp / "loop")
        rows = [("one process, in order", wall, audio, None)]
        results = {}
        for workers in (1, 2):
            r = results[workers] = on_dask(tmp / "lines", tmp / f"dask{workers}", workers)
            rows.append((f"Dask, {workers} worker{'s' * (workers > 1)}", r["wall"], r["audio"], r))
    print(f"\n{args.lines} lines, {audio:.1f} s of speech, each run from a cold start")
    print(
        f"{'run':<24}{'wall s':>8}{'speech s/s':>12}{'x the loop':>12}{'cluster start s':>17}{'MB per worker':>15}"
    )
    for name, w, a, r in rows:
        extra = f"{r['start']:>17.1f}{' / '.join(f'{m:.0f}' for m in r['rss']):>15}" if r else ""
        print(f"{name:<24}{w:>8.1f}{a / w:>12.2f}{wall / w:>12.2f}{extra}")
    r2 = results[2]
    print(
        f"\nDask's overhead per task (a task that does nothing, 200 of them): {r2['overhead'] * 1000:.1f} ms"
    )
    cost = r2["per_audio_s"]  # worker seconds per second of speech, warm (median line)
    print(
        f"a warm worker spends {cost:.3f} s per second of speech (median line: "
        f"{1 / cost:.0f}x realtime per worker)"
    )
    hours = 100
    lines = hours * 3600 / (audio / args.lines)
    print(f"\npaper estimate, {hours} h of dialogue ({lines:,.0f} lines like these), warm workers:")
    for workers in (1, 10, 100):
        seconds = (hours * 3600 * cost + lines * r2["overhead"]) / workers
        print(f"  {workers:>3} workers: {seconds / 3600:6.2f} h")


if __name__ == "__main__":
    main()
