"""`lipsync lipread` and `dataset build`: reading lips, and making the data a lip reader learns from."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..core.errors import InputError
from ..dataset import build, summary
from ..formats.plot import activity_png
from ..lipread import reader
from ..lipread.model import METHODS, LipReaderModel
from .files import emit
from .options import animation_options, command, settings
from .progress import ProgressBar

LIPREAD_EXAMPLES = """examples:
  lipsync lipread take.mp4 --choices lines.txt      # which line is said: ranked, with word times
  lipsync lipread take.mp4 --grammar grid           # the best sentences of a grammar (or a JSON file)
  lipsync lipread take.mp4 --script "the script" --timeline take.json   # time a script to the lips
  lipsync lipread take.mp4 --choices lines.txt --json
  lipsync lipread take.mp4 --activity --plot speaking.png   # when the lips speak
  lipsync lipread take.mp4 --grammar grid --method template # the untrained template matcher"""

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
        "Read the speaker's lips in a video without its sound: decode a sentence grammar or "
        "rank candidate lines with the trained lip reader (or, with --method template, by "
        "matching eSpeak's reading of each line, as mouth motion, to the tracked mouth), or "
        "time a script to the lips.",
        LIPREAD_EXAMPLES,
    )
    p.add_argument("video", help="a video of the speaker's face (MP4, MOV, MKV, MPG, WEBM...)")
    g = p.add_argument_group("what to read (one)")
    g.add_argument("--choices", metavar="FILE", help="candidate lines, one per line")
    g.add_argument("--grammar", metavar="NAME|JSON", help="built-in grammar (grid) or JSON slots")
    g.add_argument("--script", metavar="TEXT", help="the words said: time them to the lips")
    g.add_argument("--activity", action="store_true",
                   help="when the lips speak (the trained model, per frame; --plot draws it)")  # fmt: skip
    p.add_argument("--threshold", type=float, default=0.5, help="with --activity: speaking above")
    p.add_argument("--plot", metavar="PNG", help="with --activity: draw it")
    p.add_argument(
        "--method",
        choices=METHODS,
        default="model",
        help="model: the trained lip reader (models/lipreader.onnx, the default); template: "
        "eSpeak's reading of each line matched to the mouth's motion, untrained",
    )
    p.add_argument("--model", metavar="ONNX", help="another trained lip reader to read with")
    p.add_argument("--best", type=int, default=5, help="how many readings to print (5)")
    p.add_argument("--timeline", metavar="JSON", help="with --script: write the timeline")
    p.add_argument("--face-model", default="auto", choices=["auto", "landmarker", "facemesh"])
    p.add_argument("--json", action="store_true", help="print the readings as JSON")
    animation_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_lipread)


def cmd_lipread(a: argparse.Namespace) -> int:
    given = [x for x in (a.choices, a.grammar, a.script, a.activity or None) if x is not None]
    if len(given) != 1:
        raise InputError("give one of --choices FILE, --grammar NAME, --script TEXT or --activity.")
    if a.activity:
        return _activity(a, ProgressBar(not a.quiet and not a.json))
    if a.model and a.method == "template":
        raise InputError("--model reads with a trained lip reader; leave out --method template.")
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


def _activity(a: argparse.Namespace, progress) -> int:
    """--activity: the spans where the lips speak, per frame values with --json."""
    if not 0.0 < a.threshold < 1.0:
        raise InputError(f"--threshold {a.threshold}: give a number between 0 and 1, e.g. 0.5")
    model = LipReaderModel.load(a.model) if a.model else LipReaderModel.shipped()
    mouth = reader.read_mouth(a.video, face_model=a.face_model, progress=progress)
    found = reader.lip_activity(mouth, model, a.threshold)
    if a.plot:
        emit({a.plot: activity_png(found.times, found.values, a.threshold, found.spans,
                                   Path(a.video).name)})  # fmt: skip
    if a.json:
        print(json.dumps(found.to_dict()))
    else:
        for start, end in found.spans:
            print(f"speaking {start:.2f}-{end:.2f} s")
        if not found.spans:
            print("the lips do not speak in this video (no frame over the threshold)")
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
    slots = reader.load_grammar(a.grammar) if a.grammar is not None else None
    model = None  # template matching
    if a.method == "model":  # loaded before tracking, so a missing model fails at once
        model = LipReaderModel.load(a.model) if a.model else LipReaderModel.shipped()
    return reader.lipread(a.video, choices, slots, best=a.best, model=model,
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
    p.add_argument("--scheduler", default="", metavar="ADDRESS",
                   help="build on a Dask cluster, e.g. tcp://HOST:8786 (as `lipsync batch`)")  # fmt: skip
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="build on N local Dask worker processes (default: one process, in order)")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_dataset_build)


def cmd_dataset_build(a: argparse.Namespace) -> int:
    started = time.monotonic()
    result = build(a.videos, a.out, transcripts=a.transcripts, crops=a.crops, lang=a.lang,
                   limit=a.limit, scheduler=a.scheduler, workers=a.workers,
                   progress=ProgressBar(not a.quiet))  # fmt: skip
    print(summary(result, Path(a.out), time.monotonic() - started), file=sys.stderr)
    return 0 if result.built or result.kept else InputError.exit_code
