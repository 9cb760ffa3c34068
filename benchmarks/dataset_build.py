"""Dataset builder throughput and size on the GRID clips.

    .venv/bin/python benchmarks/dataset_build.py

Builds the four GRID clips three ways into temporary folders and prints, per variant: seconds
of video built per second of wall time (x realtime) and the size on disk per minute of video.
The variants: transcripts from the TSV; the same with mouth crops; no transcripts (Whisper
transcribes each clip). A second run over a finished dataset is timed too (resuming). A first
build of one clip loads the models, so the variants compare the work itself.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge_server import dataset  # noqa: E402

GRID = Path(__file__).resolve().parents[2] / "shared" / "data" / "grid"


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run(name: str, **options) -> tuple[str, float, float, float]:
    out = Path(tempfile.mkdtemp()) / "ds"
    start = time.perf_counter()
    result = dataset.build(GRID / "videos", out, **options)
    wall = time.perf_counter() - start
    assert not result.failed, result.failed
    start = time.perf_counter()
    dataset.build(GRID / "videos", out, **options)  # everything there: resumes at once
    return (
        name,
        result.seconds / wall,
        size_mb(out) / (result.seconds / 60),
        time.perf_counter() - start,
    )


def main() -> None:
    tsv = GRID / "transcripts.tsv"
    run("warm-up", transcripts=tsv, limit=1)  # models load once per process
    rows = [
        run("transcripts (TSV)", transcripts=tsv),
        run("transcripts + mouth crops", transcripts=tsv, crops=True),
        run("Whisper transcribes", lang="en"),
    ]
    print("4 GRID clips, 11.9 s of 360x288 video\n")
    print("| variant | x realtime | MB per minute of video | second run (resume) s |")
    print("|---|---|---|---|")
    for name, speed, mb, again in rows:
        print(f"| {name} | {speed:.2f} | {mb:.1f} | {again:.2f} |")


if __name__ == "__main__":
    main()
