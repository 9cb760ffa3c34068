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
    port = free_port()
    process = subprocess.Popen(
        [LIPSYNC, "serve", "--port", str(port), *args], env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the bridge did not start on port {port}") from None
            time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
