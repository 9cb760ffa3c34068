"""Progress callbacks: how long work reports how far it is, and how it is cancelled."""

from __future__ import annotations

from collections.abc import Callable

from .errors import Cancelled

# progress(fraction_done, stage); it may raise Cancelled to stop the work.
Progress = Callable[[float, str], None]


def no_progress(done: float, stage: str) -> None:
    """The default progress callback: report nothing, never cancel."""


def check_cancel(progress: Progress, done: float, stage: str) -> None:
    """Report progress; re-raise a cancellation with a uniform message."""
    try:
        progress(done, stage)
    except Cancelled:
        raise
    except KeyboardInterrupt:
        raise Cancelled("cancelled by the user; nothing was written.") from None


def part(progress: Progress, lo: float, hi: float) -> Progress:
    """A progress callback for one share (lo..hi) of the whole job."""
    return lambda done, stage: progress(lo + (hi - lo) * done, stage)
