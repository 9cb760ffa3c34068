"""Every benchmark in one command: their tables in one Markdown report, with a summary plot.

    .venv/bin/python benchmarks/run.py [--quick] [--only NAME ...] [--out benchmarks/results]

Runs each benchmark script in its own process (one at a time: they time themselves, and this
machine has two cores), collects what each prints, and writes `<out>/latest.md`: one section
per benchmark with its tables as printed, preceded by a summary table of every ratio the
benchmarks print (x realtime, x faster), and `<out>/speed.png`, a bar chart of those. Where
Rhubarb Lip Sync has been built (benchmarks/build_rhubarb.sh), the audio benchmark times it on
the same files in the same run. --quick shortens the long ones (a 20 s OSC stream, fewer
requests and sentences, no Whisper-free hour) for a run of about ten minutes.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
RHUBARB = Path.home() / ".cache/lipsync/rhubarb/build/rhubarb/rhubarb"


@dataclass
class Bench:
    name: str
    what: str  # the figure it reports
    args: list[str]
    quick: list[str]


BENCHES = [
    Bench("text_to_timeline", "text -> timeline speed and accuracy", [], ["--sentences", "8"]),
    Bench("audio_to_timeline", "audio -> timeline: accuracy, speed, memory, vs Rhubarb", [], []),
    Bench("bridge", "HTTP round trip and 4 clients", [], ["--requests", "10"]),
    Bench("osc_jitter", "OSC frame timing at 60 fps", [], ["--seconds", "20"]),
    Bench("live_latency", "live mode: sound to OSC packet", [], []),
    Bench("blender_keys", "writing keys in Blender", [], []),
    Bench("blender_bake", "press Bake to keys, 10 s line", [], ["--repeat", "1"]),
    Bench("face_tracking", "face tracking speed", [], ["--repeat", "1"]),
    Bench("video_sync", "GRID: face, mouth/speech, A/V offset", [], []),
    Bench("lipread_grid", "lip reading vs audio on GRID", [], []),
    Bench("dataset_build", "dataset builder throughput and size", [], []),
]


def run(bench: Bench, quick: bool) -> tuple[str, float, int]:
    args = [PY, str(ROOT / "benchmarks" / f"{bench.name}.py"), *bench.args]
    if quick:
        args += bench.quick
    if bench.name == "audio_to_timeline" and RHUBARB.exists():
        args.append("--rhubarb")
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    tables = "\n".join(line for line in done.stdout.splitlines() if not _noise(line))
    if done.returncode:
        tables += f"\n\n**failed** (exit {done.returncode}): {done.stderr.strip()[-800:]}"
    return tables.strip(), time.perf_counter() - start, done.returncode


def _noise(line: str) -> bool:
    return line.startswith(("W0000", "I0000", "INFO:", "WARNING: All log"))


def ratios(name: str, text: str) -> list[tuple[str, float]]:
    """(label, value) for each "x realtime" / "x faster" column the tables print (Markdown or
    aligned plain text): ratios where higher is better, against a baseline in the same run."""
    found, header = [], []
    for line in text.splitlines():
        markdown = line.startswith("|")
        cells = _cells(line, markdown)
        if not cells:
            header = []
        elif not header:
            header = cells if re.search(RATIO, line, re.I) else []
        elif not (markdown and set("".join(cells)) <= set("-: ")):
            found += _row_ratios(name, header, cells)
    return found


RATIO = r"x realtime|x faster"


def _cells(line: str, markdown: bool) -> list[str]:
    if markdown:
        return [c.strip() for c in line.strip().strip("|").split("|")]
    return re.split(r"\s{2,}", line.strip()) if re.search(r"\S\s{2,}\S", line) else []


def _row_ratios(name: str, header: list[str], cells: list[str]) -> list[tuple[str, float]]:
    found = []
    for title, cell in zip(header, cells):
        number = re.fullmatch(r"([-+]?\d+(?:\.\d+)?)x?", cell)  # "26.0" or "73x"
        if re.search(RATIO, title, re.I) and number:
            row = " ".join(c for c in cells[:2] if not re.match(r"[-+]?\d", c))
            found.append((f"{name}: {row} ({title})", float(number.group(1))))
    return found


def summary_plot(found: list[tuple[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, values = zip(*found) if found else ((), ())
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(labels) + 1.5))
    ax.barh(range(len(values)), values, color="tab:blue")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="0.3", linewidth=0.8)
    ax.set_xlabel("ratio (log scale; 1 = real time or the baseline)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", nargs="*", help="benchmark names")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    a = p.parse_args()
    chosen = [b for b in BENCHES if not a.only or b.name in a.only]
    sections, found, failed = [], [], 0
    for k, bench in enumerate(chosen, 1):
        print(f"[{k}/{len(chosen)}] {bench.name}: {bench.what}", file=sys.stderr, flush=True)
        text, seconds, code = run(bench, a.quick)
        failed += code != 0
        found += ratios(bench.name, text)
        sections.append(f"## {bench.name}: {bench.what}\n\n_{seconds:.0f} s_\n\n{text}\n")
    a.out.mkdir(parents=True, exist_ok=True)
    table = ["| figure | ratio |", "|---|---|"] + [f"| {k} | {v:g} |" for k, v in found]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report = f"# Benchmarks, {when}{' (quick)' if a.quick else ''}\n\n" + "\n".join(table)
    report += "\n\n![ratios](speed.png)\n\n" + "\n".join(sections)
    (a.out / "latest.md").write_text(report)
    summary_plot(found, a.out / "speed.png")
    print(report)
    print(f"\nwritten: {a.out / 'latest.md'}, {a.out / 'speed.png'}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
