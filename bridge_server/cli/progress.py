"""The progress bar every command shows on stderr."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """A one-line bar on stderr for a terminal; a few plain lines otherwise (logs, CI)."""

    def __init__(self, enabled: bool):
        self.enabled, self.tty = enabled, sys.stderr.isatty()
        self.last, self.started = -1, time.monotonic()

    def __call__(self, done: float, stage: str) -> None:
        if not self.enabled:
            return
        pct = int(done * 100)
        if self.tty:
            bar = "#" * (pct // 4) + "." * (25 - pct // 4)
            sys.stderr.write(f"\r[{bar}] {pct:3d}% {stage:<12}")
            if done >= 1.0:
                sys.stderr.write(f" {time.monotonic() - self.started:.1f}s\n")
        elif pct // 10 > self.last // 10 or done >= 1.0:
            sys.stderr.write(f"{pct:3d}% {stage}\n")
            self.last = pct
        sys.stderr.flush()
