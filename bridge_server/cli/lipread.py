"""`lipsync lipread` and `dataset build`: reading lips, and making the data a lip reader learns from."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..core.errors import InputError
from ..dataset import build, summary
from ..lipread import reader
from ..lipread.model import LipReaderModel
from .files import emit
from .options import animation_options, command, settings
from .progress import ProgressBar

LIPREAD_EXAMPLES = """examples:
  lipsync lipread take.mp4 --choices lines.txt      # which line is said: ranked, with word times
  lipsync lipread take.mp4 --grammar grid           # the best sentences of a grammar (or a JSON file)
  lipsync lipread take.mp4 --script "the script" --timeline take.json   # time a script to the lips
  lipsync lipread take.mp4 --choices lines.txt --json"""

DATASET_EXAMPLES = """examples:
  lipsync dataset build videos/ --out ds/ --transcripts transcripts.tsv
  lipsync dataset build videos/ --out ds/ --crops --lang en   # Whisper for clips without a script
  lipsync dataset build videos/ --out ds/ --limit 10           # the first 10; run again to go on"""


def add_commands(sub) -> None:
    _add_lipread(sub)
    _add_dataset(sub)


# --- lipread -------------------------------------------------------------------------------


def _add_lipread(sub) -> None:
    p = command(
        sub,
        "lipread",
        "read a video's lips (its sound unused): which line, or when each word",
        "Read the speaker's lips in a video without its sound: rank candidate lines, decode a "
        "sentence grammar, or time a script to the lips (eSpeak's reading of each text, as "
        "mouth motion, matched to the tracked mouth by dynamic time warping).",
        LIPREAD_EXAMPLES,
    )
    p.add_argument("video", help="a video of the speaker's face (MP4, MOV, MKV, MPG, WEBM...)")
    g = p.add_argument_group("what to read (one)")
    g.add_argument("--choices", metavar="FILE", help="candidate lines, one per line")
    g.add_argument("--grammar", metavar="NAME|JSON", help="built-in grammar (grid) or JSON slots")
    g.add_argument("--script", metavar="TEXT", help="the words said: time them to the lips")
    p.add_argument(
        "--model",
        metavar="ONNX",
        help="with --choices: rank them with a trained lip reader (models/train_lipreader.py) "
        "instead of the untrained mouth-motion matching",
    )
    p.add_argument("--best", type=int, default=5, help="how many readings to print (5)")
    p.add_argument("--timeline", metavar="JSON", help="with --script: write the timeline")
    p.add_argument("--face-model", default="auto", choices=["auto", "landmarker", "facemesh"])
    p.add_argument("--json", action="store_true", help="print the readings as JSON")
    animation_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_lipread)


def cmd_lipread(a: argparse.Namespace) -> int:
    given = [x for x in (a.choices, a.grammar, a.script) if x is not None]
    if len(given) != 1:
        raise InputError("give one of --choices FILE, --grammar NAME or --script TEXT.")
    if a.model and a.choices is None:
        raise InputError(
            "--model ranks --choices; a grammar or a script uses the built-in matching."
        )
    progress = ProgressBar(not a.quiet and not a.json)
    found = _time_script(a, progress) if a.script is not None else _read(a, progress)
    if a.json:
        print(json.dumps([c.to_dict() for c in found], indent=1))
    elif a.timeline != "-":
        for k, c in enumerate(found, 1):
            times = ", ".join(f"{w.text} {w.start:.2f}-{w.end:.2f}" for w in c.words)
            sure = f"cost {c.cost:.3f}" if a.script is not None else f"{c.confidence:5.1%}"
            print(f"{k}. {sure}  {c.text}\n     {times}")
    return 0


def _time_script(a: argparse.Namespace, progress) -> list[reader.Candidate]:
    """--script: its words timed to the lips, the timeline written where asked."""
    timeline = reader.time_script_to_video(a.video, a.script, viseme_set=a.visemes, fps=a.fps,
                                           curve_settings=settings(a), face_model=a.face_model,
                                           progress=progress)  # fmt: skip
    if a.timeline:
        emit({a.timeline: timeline.to_json()})
    return [reader.Candidate(a.script, timeline.source["lipread_cost"], 1.0, timeline.words)]


def _read(a: argparse.Namespace, progress) -> list[reader.Candidate]:
    """--choices or --grammar: the best readings."""
    choices = _lines(a.choices) if a.choices is not None else None
    model = LipReaderModel.load(a.model) if a.model else None  # fails before tracking
    return reader.lipread(a.video, choices, a.grammar, best=a.best, model=model,
                          face_model=a.face_model, progress=progress)  # fmt: skip


def _lines(path: str) -> list[str]:
    """The non-blank lines of a UTF-8 file."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {path}: {e}; give a UTF-8 file.") from None
    lines = [x.strip() for x in lines if x.strip()]
    if not lines:
        raise InputError(f"{path} has no lines; give one candidate sentence per line.")
    return lines


# --- dataset build -------------------------------------------------------------------------


def _add_dataset(sub) -> None:
    group = sub.add_parser("dataset", help="make training data from a folder of videos")
    p = command(
        group.add_subparsers(dest="action", required=True, metavar="ACTION"),
        "build",
        "per clip: 16 kHz sound, timeline, lips, controls and visemes per frame",
        "Turn a folder of talking-face videos into a dataset: per clip audio.wav, timeline.json "
        "and frames.npz in OUT/clips/<id>/, one line per clip in OUT/manifest.jsonl, failures "
        "in OUT/failed.jsonl. Scripts: <video>.txt beside it, else --transcripts, else Whisper. "
        "Complete clips are skipped, so an interrupted build goes on where it stopped.",
        DATASET_EXAMPLES,
    )
    p.add_argument("videos", help="folder of videos (searched with its subfolders)")
    p.add_argument("--out", required=True, metavar="DIR", help="the dataset's folder")
    p.add_argument("--transcripts", metavar="TSV", help="columns file, transcript[, speaker]")
    p.add_argument("--crops", action="store_true", help="also 96x48 grey mouth crops per frame")
    p.add_argument("--lang", default="", help="language for Whisper, e.g. en (default: detected)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N videos (sorted)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_dataset_build)


def cmd_dataset_build(a: argparse.Namespace) -> int:
    started = time.monotonic()
    result = build(a.videos, a.out, transcripts=a.transcripts, crops=a.crops, lang=a.lang,
                   limit=a.limit, progress=ProgressBar(not a.quiet))  # fmt: skip
    print(summary(result, Path(a.out), time.monotonic() - started), file=sys.stderr)
    return 0 if result.built or result.kept else InputError.exit_code
