"""The real bridge in its own process (`lipsync serve` on a free loopback port), for tests
that need it as a separate program: the add-on's, and those that set its environment."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

LIPSYNC = str(Path(sys.executable).with_name("lipsync"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_bridge(env: dict | None = None, *args: str):
    """Yields the bridge's URL once /health answers; stops it afterwards."""
    with running(["serve", *args], "/health", env=env) as url:
        yield url


@contextmanager
def running(args: list[str], ready: str, *, env: dict | None = None, log: Path | None = None):
    """`lipsync ARGS --port P` as a user runs it: yields its URL once `ready` answers."""
    port = free_port()
    err = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen([LIPSYNC, *args, "--port", str(port)], env=env, stderr=err)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(url + ready, timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    said = log.read_text() if log else ""
                    raise RuntimeError(f"lipsync {args[0]} did not start: {said}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        if log:
            err.close()
