"""`lipsync transcribe`: what a recording says, to read or correct before a bake."""

from __future__ import annotations

import argparse
import json
import sys

from ..pipeline import transcribe
from ..speech.recognize import TRANSCRIBE_ENGINES
from .options import command, flags, whisper_options
from .progress import ProgressBar

EXAMPLES = """examples:
  lipsync transcribe take.wav                       # the words, on standard output
  lipsync transcribe take.wav > take.txt            # a script to correct, then: lipsync bake take.wav
  lipsync transcribe interview.mp4 --lang cs --json # words with times, language, warnings"""


def add_commands(sub) -> None:
    p = command(
        sub,
        "transcribe",
        "print what a recording says (Whisper), nothing animated",
        "Transcribe a recording (or a video's sound) with Whisper: the words on standard output, "
        "or with --json the words with their times, the language and any warnings. Nothing is "
        "aligned or animated, so it is quicker than bake.",
        EXAMPLES,
    )
    p.add_argument("audio", help="WAV, FLAC, OGG, MP3, M4A, or a video (MP4, MOV, MKV, MPG)")
    g = p.add_argument_group("recognition")
    g.add_argument("--engine", default="whisper", choices=TRANSCRIBE_ENGINES,
                   help="the engine that hears the words (default whisper)")  # fmt: skip
    whisper_options(g)
    p.add_argument("--json", action="store_true",
                   help="print {text, words: [{text, start, end}], language, warnings}")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or warnings on stderr")
    p.set_defaults(func=cmd_transcribe)


def cmd_transcribe(a: argparse.Namespace) -> int:
    heard = transcribe(a.audio, engine=a.engine, model=a.model, lang=a.lang,
                       progress=ProgressBar(not a.quiet))  # fmt: skip
    if a.json:
        print(json.dumps(heard.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(heard.text)
    if not a.quiet:  # in the JSON they are a field; here stdout stays the bare text
        for warning in heard.warnings:
            print(f"warning: {flags(warning)}", file=sys.stderr)
    return 0
