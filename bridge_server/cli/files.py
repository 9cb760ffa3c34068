"""What commands read and write: the text, the script, and every output written at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import InputError
from ..formats.exporters import export, format_for_path
from ..formats.outputs import check_writable, write_all
from ..formats.plot import plot_png
from .options import flags


def read_text(a: argparse.Namespace) -> str:
    """The text: --text-file, '-' for standard input, or the argument itself."""
    if getattr(a, "text_file", None):
        try:
            return Path(a.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(
                f"cannot read text file {a.text_file}: {e}; give a UTF-8 text file."
            ) from None
    if a.text == "-":
        return sys.stdin.read()
    if a.text is None:
        raise InputError(
            "no text given; pass the line in quotes, '-' for standard input, or --text-file."
        )
    return a.text


def script(a: argparse.Namespace, audio: Path) -> str | None:
    """The script: --text, --text-file, or a sidecar .txt beside the audio (as Rhubarb's add-ons do)."""
    if a.text is not None:
        return a.text
    if a.text_file:
        return read_text(a)
    sidecar = audio.with_suffix(".txt")
    if not a.no_sidecar and sidecar.is_file():
        if not a.quiet:
            print(
                f"using the script in {sidecar} (--no-sidecar to transcribe instead)",
                file=sys.stderr,
            )
        return sidecar.read_text(encoding="utf-8", errors="replace")
    return None


def export_format(path: str | None, fmt: str | None) -> str | None:
    """The export format asked for, else the one the file name says; None when no export."""
    if not path or fmt:
        return fmt
    found = format_for_path(path)
    if not found:
        raise InputError(f"cannot tell the format of {path} from its name; add --format.")
    return found


def outputs_checked(a: argparse.Namespace) -> str | None:
    """The export format; every output checked writable before any work (stdout by default)."""
    if not (a.timeline or a.output or a.plot):
        a.timeline = "-"
    fmt = export_format(a.output, a.format)
    check_writable([Path(p) for p in (a.timeline, a.output, a.plot) if p and p != "-"])
    return fmt


def write_outputs(a: argparse.Namespace, timeline, fmt, source: Path, sound) -> None:
    """The timeline, the export and the plot (over `sound`, when there is one)."""
    files: dict[str, bytes | str] = {}
    if a.timeline:
        files[a.timeline] = timeline.to_json()
    if a.output:
        files[a.output] = export(timeline, fmt, sound_file=source.name)
    if a.plot:
        files[a.plot] = plot_png(timeline, *((sound.samples, sound.sample_rate) if sound else ()))
    emit(files)
    report(timeline, files, a.quiet)


def emit(files: dict) -> None:
    """Write files atomically; '-' goes to standard output."""
    write_all({Path(p): c for p, c in files.items() if p != "-"})
    if "-" in files:
        c = files["-"]
        sys.stdout.write(c if isinstance(c, str) else c.decode())


def report(timeline, files: dict, quiet: bool) -> None:
    """The timeline's warnings, then (unless quiet) a one-line summary, on stderr."""
    for w in timeline.warnings:
        count = f" (x{w.count})" if w.count > 1 else ""
        print(f"warning: {flags(w.message)}{count}", file=sys.stderr)
    if not quiet:
        written = ", ".join(p for p in files if p != "-")
        print(
            f"{timeline.duration:.2f} s, {len(timeline.words)} words, {len(timeline.phonemes)} phonemes"
            + (f" -> {written}" if written else ""),
            file=sys.stderr,
        )
