"""Every command line: `lipsync COMMAND ...`; errors become exit codes at this one boundary."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from .. import __version__
from ..core.errors import Cancelled, LipsyncError
from . import animate, batch, demo, engines, evaluate, lipread, osc, serve, track, transcribe
from .options import EXIT_CODES, check_animation, flags

__all__ = ["main"]

COMMAND_GROUPS = (animate, transcribe, track, batch, demo, engines, serve, osc, evaluate, lipread)
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
              "error": logging.ERROR}  # fmt: skip
LOGGING = (
    "logging (stderr): -v/--verbose, or LIPSYNC_LOG=debug|info|warning|error (default warning)"
)

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code (see EXIT_CODES)."""
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    log.debug("lipsync %s %s", args.command, {k: v for k, v in vars(args).items() if k != "func"})
    started = time.monotonic()
    code = _run(args)
    log.debug("lipsync %s: exit code %d after %.2f s", args.command, code,
              time.monotonic() - started)  # fmt: skip
    return code


def _run(args: argparse.Namespace) -> int:
    """The command's exit code; every exception it raises becomes one too."""
    try:
        check_animation(args)
        return args.func(args)
    except BrokenPipeError:  # `lipsync ... | head`: the reader left, which is not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit flush quiet
        return 0
    except KeyboardInterrupt:
        print("lipsync: cancelled; nothing was written.", file=sys.stderr)
        return Cancelled.exit_code
    except LipsyncError as e:
        log.debug("lipsync %s: %s", args.command, type(e).__name__, exc_info=True)
        print(f"lipsync: error: {flags(str(e))}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # a bug: the whole traceback goes to the log, then one line
        log.exception("lipsync %s failed unexpectedly", args.command)
        print(f"lipsync: internal error ({type(e).__name__}: {e}); the traceback is above; "
              "rerun with --verbose for the steps before it", file=sys.stderr)  # fmt: skip
        return 1


def _configure_logging(verbose: bool) -> None:
    """Log to stderr; the package's level from --verbose or LIPSYNC_LOG (else left as it is)."""
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    wanted = os.environ.get("LIPSYNC_LOG", "").strip().lower()
    if verbose or wanted in LOG_LEVELS:
        logging.getLogger("bridge_server").setLevel(
            logging.DEBUG if verbose else LOG_LEVELS[wanted]
        )
    elif wanted:
        log.warning("LIPSYNC_LOG=%s is not one of %s; ignored", wanted, "|".join(LOG_LEVELS))


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="lipsync",
        description="Lip sync from a line of text or a recording: phoneme timings, viseme "
        "curves and files for Blender, game engines and 2D tools.",
        epilog=f"{EXIT_CODES}\n\n{LOGGING}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"lipsync {__version__}")
    top.add_argument("-v", "--verbose", action="store_true", help="log debug lines on stderr")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    for p in sub.choices.values():
        _verbose_option(p)
    return top


def _verbose_option(p: argparse.ArgumentParser) -> None:
    """-v/--verbose after the command too (`lipsync say ... -v`), and after its sub-commands."""
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="log debug lines on stderr")  # fmt: skip
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _verbose_option(child)
