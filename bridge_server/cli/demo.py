"""`lipsync demo`: a line spoken, animated and written in every form, and the demo head saying it."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

from .animate import add_say

LINE = "Pack my box with five dozen liquor jugs."
PLAYER = Path(__file__).resolve().parents[2] / "blender_addon" / "demo" / "play.py"


def add_commands(sub) -> None:
    p = sub.add_parser(
        "demo", help="speak a demo line and write WAV, timeline, plot and Rhubarb cues"
    )
    p.add_argument("-o", "--out", default="demo", help="folder for the demo files (default ./demo)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(a: argparse.Namespace) -> int:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    args = ["say", LINE, "-o", str(out / "line.wav"), "--timeline", str(out / "line.json"),
            "--visemes", "oculus15", "--fps", "24", "--plot", str(out / "line.png"),
            "--export", str(out / "line.tsv")]  # fmt: skip
    print(f"lipsync {' '.join(repr(x) if ' ' in x else x for x in args)}", file=sys.stderr)
    say = argparse.ArgumentParser(prog="lipsync")
    add_say(say.add_subparsers())
    said = say.parse_args(args)
    code = said.func(said)
    if code == 0:
        _contact_sheet(out / "line.json", out / "sheet.png")
    return code


def _contact_sheet(timeline: Path, sheet: Path) -> None:
    """The demo head saying the line, as a picture: Blender as a module (bpy) or program."""
    args = ["--", "--timeline", str(timeline), "--out", str(sheet)]
    if not PLAYER.exists():
        why = "the add-on's folder is not beside the package (a git checkout has it)"
    elif importlib.util.find_spec("bpy"):
        why, command = "", [sys.executable, str(PLAYER), *args]
    elif shutil.which("blender"):
        why, command = "", ["blender", "-b", "--factory-startup", "-P", str(PLAYER), *args]
    else:
        why = "needs the bpy module (pip install bpy==5.0.1) or Blender (apt-get install blender)"
    if why:
        print(f"no contact sheet: {why}", file=sys.stderr)
        return
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not sheet.exists():
        print(f"no contact sheet: Blender failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
    else:
        print(f"rendered the demo head saying the line: {sheet}", file=sys.stderr)
