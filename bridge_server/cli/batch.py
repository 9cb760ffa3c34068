"""`lipsync batch`: every line of a dialogue on Dask, resumable (bridge_server.batch)."""

from __future__ import annotations

import argparse
import sys

from ..batch import MANIFEST, OPTION_NAMES, find_lines, run
from ..core.errors import Cancelled
from ..core.rigs import presets
from ..formats.exporters import FORMATS
from .options import animation_options, command
from .progress import ProgressBar

EXAMPLES = """examples:
  lipsync batch dialogue/ --out baked/ --format rhubarb-tsv          # every recording, sidecar .txt scripts
  lipsync batch lines.csv --out baked/ --visemes arkit --fps 30      # audio/video/text,script,voice,id,... columns
  lipsync batch takes/ --out baked/ --scheduler tcp://10.0.0.5:8786  # on a running Dask cluster
  lipsync batch dialogue/ --out baked/                               # again: only what changed or failed is redone"""


def add_commands(sub) -> None:
    p = command(
        sub,
        "batch",
        "animate many lines on Dask (a laptop or a cluster), resumable",
        "Animate every recording, video or text line in the inputs, each as one task on Dask "
        "distributed: an embedded cluster with one worker process per core, or an existing "
        f"scheduler. Each line's timeline (and --format files) lands complete in --out; "
        f"--out/{MANIFEST} records every line (status, outputs, seconds, worker, error and its "
        "fix). Run it again to redo only what failed or changed; a worker lost mid-line has "
        "its line redone on another.",
        EXAMPLES,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="recordings, videos, folders of them (scripts in .txt beside them), or "
                   "a .csv/.jsonl list with columns audio|video|text, script, voice, id and any "
                   "animation option")  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR", help="folder for every line's outputs")
    p.add_argument("--format", action="append", default=[], choices=sorted(FORMATS),
                   help="also write this export for each line (repeat for several)")  # fmt: skip
    p.add_argument("--scheduler", default="", metavar="ADDRESS",
                   help="a Dask scheduler, e.g. tcp://HOST:8786 (its workers need this project "
                   "installed); default: a local cluster")  # fmt: skip
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="local worker processes (default: one per core)")  # fmt: skip
    p.add_argument("--engine", default="auto", help="recordings: auto, whisper, pocketsphinx, "
                   "phoneloop, allosaurus (as `bake`)")  # fmt: skip
    p.add_argument("--tts", default="espeak", choices=["espeak", "piper"],
                   help="text lines: the voice engine")  # fmt: skip
    p.add_argument("--voice", default="", help="text lines without their own voice: this one")
    g = p.add_argument_group(
        "rig (for `blender_addon/batch.py --timelines`: curves named after the rig)"
    )
    g.add_argument("--rig", default="", help="a rig preset: " + ", ".join(presets()))
    g.add_argument("--shape-keys", default="", metavar="NAMES",
                   help="the rig's shape-key names, comma-separated, to match to the channels")  # fmt: skip
    animation_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")
    p.set_defaults(func=cmd_batch)


def cmd_batch(a: argparse.Namespace) -> int:
    lines = find_lines(a.inputs, a.out)
    options = {k: v for k, v in vars(a).items() if k in OPTION_NAMES and v is not None}
    options |= {
        "engine": a.engine,
        "voice_engine": a.tts,
        "voice": a.voice,
        "rig": a.rig,
        "shape_keys": a.shape_keys,
    }
    bar = _Bar(enabled=not a.quiet)
    try:
        summary = run(lines, a.out, formats=tuple(dict.fromkeys(a.format)), options=options,
                      scheduler=a.scheduler, workers=a.workers, progress=bar)  # fmt: skip
    except KeyboardInterrupt:
        bar.finish()
        print(f"lipsync: cancelled; every line finished so far is kept in {a.out} (see "
              f"{MANIFEST}); run the same command again to go on.", file=sys.stderr)  # fmt: skip
        return Cancelled.exit_code
    if not a.quiet:
        bar.finish()
        where = f" (dashboard {summary.dashboard})" if summary.dashboard else ""
        print(f"{len(lines)} lines{where}: {summary.done} done, {summary.skipped} already done, "
              f"{len(summary.failed)} failed; {summary.audio_s:.1f} s of speech in "
              f"{summary.seconds:.1f} s -> {a.out}", file=sys.stderr)  # fmt: skip
        for r in summary.failed:
            fix = f" (fix: {r['fix']})" if r.get("fix") else ""
            print(f"  failed: {r['id']}: {r['error']}{fix}", file=sys.stderr)
    return 1 if summary.failed else 0


class _Bar:
    """Lines done of the lines to do and the time left, on the commands' progress bar."""

    def __init__(self, enabled: bool):
        self.bar, self.complete = ProgressBar(enabled), False

    def __call__(self, done: int, failed: int, total: int, seconds: float) -> None:
        finished = done + failed
        left = seconds / finished * (total - finished) if finished else 0.0
        self.complete = finished >= total
        self.bar(finished / max(total, 1), f"{finished}/{total} lines ({failed} failed), "
                 f"about {left:.0f} s left")  # fmt: skip

    def finish(self) -> None:
        """End a bar cut short (Ctrl-C) on its own line; a complete one ended itself."""
        if self.bar.enabled and self.bar.tty and not self.complete:
            sys.stderr.write("\n")
