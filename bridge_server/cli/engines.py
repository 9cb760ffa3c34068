"""`lipsync engines`, `voices` and `phonemize`: what can run here and what it says."""

from __future__ import annotations

import argparse
import sys

from .. import engines
from ..core.errors import InputError
from ..engines.g2p import pronounce
from ..speech.voices import LISTS, installed_voices
from .files import read_text

PIPER_PATHS = "; or the path of any Piper .onnx voice"


def add_commands(sub) -> None:
    p = sub.add_parser(
        "engines", help="which engines can run here, and how to fix those that cannot"
    )
    p.set_defaults(func=cmd_engines)
    p = sub.add_parser(
        "voices",
        help="list the voices, the language and scripts each reads, and its engine",
        description="Every voice of the speech engines installed here: the name --voice takes, "
        "its language, the writing systems it reads and its engine. --voice auto picks one "
        "from the text's writing system.",
    )
    p.add_argument("--engine", choices=list(LISTS), help="only this engine's voices")
    p.set_defaults(func=cmd_voices)
    p = sub.add_parser("phonemize", help="print the phonemes (IPA) of a text, word by word")
    p.add_argument("text", nargs="?")
    p.add_argument("--text-file", metavar="FILE")
    p.add_argument("--lang", default="en-us", help="language code (default en-us)")
    p.set_defaults(func=cmd_phonemize)


def cmd_engines(a: argparse.Namespace) -> int:
    """Exit 4 when an engine the defaults use cannot run."""
    ok = True
    for info in engines.ENGINES:
        s = engines.status(info)
        ok &= s.available or not info.default
        mark = "yes" if s.available else "NO "
        print(f"{info.name:<13}{mark}  {info.job}\n{'':18}{s.detail}")
    return 0 if ok else 4


def cmd_voices(a: argparse.Namespace) -> int:
    """One row per voice; an engine that is not installed is named on stderr (or, asked for
    alone, fails with exit 4 and its fix)."""
    rows, missing = installed_voices(a.engine)
    for engine, why in missing.items():
        print(f"lipsync: {engine} is not installed here: {why}", file=sys.stderr)
    table = [("ENGINE", "VOICE", "LANGUAGE", "READS", "DESCRIPTION")] + [
        (v["engine"], v["voice"], v["language"], ", ".join(v["scripts"]),
         v["title"] + (PIPER_PATHS if v["engine"] == "piper" else ""))
        for v in rows
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[4]]))
    return 0


def cmd_phonemize(a: argparse.Namespace) -> int:
    words = pronounce(read_text(a), a.lang)
    if not words:
        raise InputError("the text has no words to pronounce; give words.")
    for w in words:
        print(f"{w.word}\t{' '.join(w.phonemes)}\t{w.source}")
    return 0
