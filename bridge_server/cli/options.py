"""Option groups several commands share, and the sub-command factory that gives every --help
its examples and the exit codes."""

from __future__ import annotations

import argparse
import re

from .. import engines
from ..core.curves import Animation, CurveSettings, option_fields
from ..core.errors import SETTINGS
from ..core.visemes import load_set
from ..formats.exporters import FORMATS
from ..speech.recognize import AUDIO_ENGINES
from .progress import ProgressBar

EXIT_CODES = """exit codes:
  0  success                       3  bad input (text, file, option value)
  1  unexpected internal error     4  an engine is not installed (the message says how)
  2  wrong command-line usage      5  an output cannot be written (nothing was written)
  130 cancelled (Ctrl-C); nothing was written"""


NAMED = re.compile(r"\((" + "|".join(SETTINGS) + r")\)")


def flags(message: str) -> str:
    """A message's settings as this command line's flags: "(max_chars)" -> "(--max-chars)"."""
    return NAMED.sub(lambda m: f"(--{m[1].replace('_', '-')})", message)


def command(sub, name: str, short: str, description: str, examples: str):
    """A sub-command whose --help ends with its examples and the exit codes."""
    return sub.add_parser(
        name,
        help=short,
        description=description,
        epilog=examples + "\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def animation_options(p: argparse.ArgumentParser) -> None:
    """The animation options, as their one definition (core.curves) has them."""
    g = p.add_argument_group("animation")
    for f in option_fields():
        flag, meta, default = "--" + f.name.replace("_", "-"), f.metadata, f.default
        if isinstance(default, bool):
            g.add_argument(flag, action="store_true", help=meta["help"])
            continue
        if meta.get("choices"):
            g.add_argument(flag, choices=meta["choices"], default=default,
                           help=f"{meta['help']} (default {default})")  # fmt: skip
            continue
        metavar = "SET" if f.name == "visemes" else f"{meta['min']:g}..{meta['max']:g}"
        g.add_argument(flag, type=type(default), default=default, metavar=metavar,
                       help=f"{meta['help']} (default {default})")  # fmt: skip


def check_animation(a: argparse.Namespace) -> None:
    """Refuse bad animation options (--fps 0, an unknown --visemes) before any work: found
    after a long transcription and alignment, they would waste it."""
    if all(hasattr(a, f.name) for f in option_fields()):
        load_set(Animation.from_flat(**vars(a)).visemes)


def settings(a: argparse.Namespace) -> CurveSettings:
    """The curve settings the animation options asked for."""
    return Animation.from_flat(**vars(a)).curves


def recording_options(p: argparse.ArgumentParser) -> None:
    """What `bake` and `track` share: the script, recognition, outputs and animation."""
    g = p.add_argument_group("script (default: a .txt beside the audio, else Whisper transcribes)")
    g.add_argument("--text", help="the words spoken in the audio")
    g.add_argument("--text-file", metavar="FILE", help="read the script from a UTF-8 text file")
    g.add_argument("--no-sidecar", action="store_true", help="ignore a .txt beside the audio")
    _recognition_options(p)
    g = p.add_argument_group("outputs (without any, the timeline JSON goes to standard output)")
    g.add_argument(
        "--timeline", metavar="JSON", help="write the timeline document ('-' for stdout)"
    )
    g.add_argument(
        "-o", "--output", metavar="FILE", help="write an export; format from the suffix or --format"
    )
    g.add_argument("--format", choices=sorted(FORMATS), help="format of -o")
    g.add_argument("--plot", metavar="PNG", help="write a picture of the curves over the waveform")
    p.add_argument("--fix-sync", action="store_true", help="a video: move a sound that is early "
                   "or late against the speaker's lips into place first (the sync model)")  # fmt: skip
    animation_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or summary on stderr")


def _recognition_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("recognition")
    g.add_argument(
        "--engine",
        default="auto",
        choices=AUDIO_ENGINES,
        help="auto: the script or Whisper's words, then forced alignment (default); whisper: "
        f"Whisper's word times only; {' / '.join(engines.names(engines.PHONES))}: phones "
        "without a transcript",
    )
    g.add_argument("--no-refine", dest="refine", action="store_false",
                   help="keep the aligner's phone boundaries (default: each moves to where the "
                   "boundary model hears it, within 50 ms, and phones next to a pause start and "
                   "end where their sound does)")  # fmt: skip
    whisper_options(g)


def whisper_options(g) -> None:
    """Which Whisper model hears the speech, and in which language: `bake`, `track`, `transcribe`."""
    g.add_argument(
        "--model",
        default="auto",
        help="Whisper model: auto (default: the packaged multilingual base detects the language, "
        "English is transcribed by the packaged tiny.en, others by base; all offline), a name "
        "(tiny.en, base, small, ...; others are downloaded by faster-whisper) or a local folder",
    )
    g.add_argument(
        "--lang",
        default="",
        help="language of the speech, e.g. en, cs (default: detected by Whisper)",
    )


def recording(a: argparse.Namespace, text: str | None) -> dict:
    """The keyword arguments `bake` and `track` take from the command line alike."""
    return dict(
        text=text,
        engine=a.engine,
        model=a.model,
        lang=a.lang,
        refine=a.refine,
        viseme_set=a.visemes,
        fps=a.fps,
        settings=settings(a),
        progress=ProgressBar(not a.quiet),
    )
