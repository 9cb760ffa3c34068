"""`lipsync evaluate` and `evaluate-tts`: how good the timing is, and how good the voices are."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.timeline import Timeline
from ..evaluate.plot import plot_comparison
from ..evaluate.references import FORMATS, read_reference
from ..evaluate.scores import evaluate
from ..evaluate.speech import evaluate_tts
from ..formats.outputs import check_writable, write_all
from .files import read_text
from .options import EXIT_CODES, command
from .progress import ProgressBar

EVALUATE_EXAMPLES = """examples:
  lipsync evaluate line.json --reference line.TextGrid          # phones and words (Praat, MFA)
  lipsync evaluate si1027.json --reference si1027.phn            # TIMIT (.wrd beside it is read too)
  lipsync evaluate bbaf2n.json --reference s1_bbaf2n.align       # GRID word alignment
  lipsync evaluate take.json --reference take-rhubarb.json --plot cmp.png --json"""


def add_commands(sub) -> None:
    _add_evaluate(sub)
    _add_evaluate_tts(sub)


# --- evaluate ------------------------------------------------------------------------------


def _add_evaluate(sub) -> None:
    p = command(
        sub,
        "evaluate",
        "score a timeline against a reference: phone/word boundaries, visemes, closures",
        "Compare a timeline with a reference alignment or another tool's mouth cues: phone\n"
        "boundaries (39-phone folding, within 10/20/25 ms), word boundaries, viseme agreement\n"
        "frame by frame (100/s) with Cohen's kappa, and lips closed on p b m.\n"
        "References: " + FORMATS.replace(", GRID", ",\nGRID") + ".",
        EVALUATE_EXAMPLES,
    )
    p.add_argument("timeline", help="our timeline JSON ('lipsync say/bake --timeline')")
    p.add_argument("--reference", required=True, metavar="FILE", help="the reference file")
    p.add_argument("--visemes", metavar="SET", help="viseme set for phone references")
    p.add_argument("--fps", type=float, default=24.0, help="frame rate of a Moho .dat (24)")
    p.add_argument("--plot", metavar="PNG", help="draw ours above the reference")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(a: argparse.Namespace) -> int:
    if a.plot:
        check_writable([Path(a.plot)])
    timeline = Timeline.load(a.timeline)
    ref = read_reference(a.reference, fps=a.fps)
    report = evaluate(timeline, ref, a.visemes)
    if a.plot:
        write_all({Path(a.plot): plot_comparison(timeline, ref, a.visemes)})
    print(report.to_json() if a.json else report.table())
    return 0


# --- evaluate-tts --------------------------------------------------------------------------


def _add_evaluate_tts(sub) -> None:
    p = sub.add_parser(
        "evaluate-tts",
        help="how intelligible and how natural the built-in voices are",
        description="Speak each sentence with each voice; Whisper transcribes it (word error "
        "rate: intelligibility); pitch movement and Whisper's log-probability are naturalness "
        "proxies (see bridge_server/evaluate/speech.py for what they measure and their limits).",
        epilog="examples:\n  lipsync evaluate-tts tests/data/harvard.txt --voice espeak "
        "--voice piper\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sentences", help="a UTF-8 text file, one sentence per line")
    p.add_argument(
        "--voice",
        action="append",
        metavar="ENGINE[:VOICE]",
        help="espeak, piper, or e.g. espeak:en-gb (repeatable; default espeak and piper)",
    )
    p.add_argument("--limit", type=int, help="only the first N sentences")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_evaluate_tts)


def cmd_evaluate_tts(a: argparse.Namespace) -> int:
    a.text, a.text_file = None, a.sentences
    sentences = read_text(a).splitlines()[: a.limit]
    reports = [
        evaluate_tts(sentences, voice, progress=ProgressBar(not a.quiet and not a.json))
        for voice in a.voice or ["espeak", "piper"]
    ]
    if a.json:
        print(json.dumps([r.to_dict() for r in reports], indent=1))
        return 0
    print("| voice | sentences | word error rate | pitch movement (semitones) | Whisper log-prob |")
    print("|---|---|---|---|---|")
    for r in reports:
        print(f"| {r.voice} | {len(r.sentences)} | {r.wer:.1%} | {r.f0_spread_st:.2f} "
              f"| {r.logprob:.3f} |")  # fmt: skip
    return 0
