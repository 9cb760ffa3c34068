"""Install Bridge: a Python environment in a folder the user picks, with the bridge in it, so
the Start Command can run it. uv when it is on PATH, else Python's venv and pip. No bpy."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

DEFAULT_SOURCE = "lipsync-bridge[all]"
# what pip and uv say when they cannot reach the package index
OFFLINE = (
    "network connectivity is disabled", "failed to establish a new connection",
    "temporary failure in name resolution", "network is unreachable", "failed to fetch",
    "error sending request", "no matching distribution found", "could not find a version",
    "was not found in the package registry", "not found in the cache",
)  # fmt: skip


class InstallError(Exception):
    """The environment could not be made; the message says why and what to do."""


def scripts(folder) -> Path:
    """Where an environment keeps its programs."""
    return Path(folder) / ("Scripts" if os.name == "nt" else "bin")


def start_command(folder) -> str:
    """The Start Command for the bridge installed in `folder`."""
    return f"{shlex.quote(str(scripts(folder) / 'lipsync'))} serve"


def plan(folder, source: str, python: str = "", deps: bool = True) -> list[list[str]]:
    """The commands: make the environment, then install `source` (a PyPI name, a wheel or the
    lipsync-bridge folder, extras allowed) into it."""
    wanted = shlex.split(source)
    if not wanted:
        raise InstallError("nothing to install: set Install From (e.g. lipsync-bridge[all]).")
    folder, uv = str(folder), shutil.which("uv")
    env_python = str(scripts(folder) / "python")
    extra = [] if deps else ["--no-deps"]
    if uv:
        chosen = ["--python", _python(python)] if python else []
        make = [uv, "venv", "--quiet", *chosen, folder]
        steps = [make, [uv, "pip", "install", "--python", env_python, *extra, *wanted]]
    else:
        make = [_python(python or "python3"), "-m", "venv", folder]
        steps = [make, [env_python, "-m", "pip", "install", *extra, *wanted]]
    made = (Path(folder) / "pyvenv.cfg").exists()
    return steps[1:] if made else steps  # an environment already there: install into it


def _python(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise InstallError(
            f"no Python at {name!r}: install Python 3.10 or newer, or set Python in the add-on's "
            "preferences to the full path of one."
        )
    return found


def install(folder, source: str, python: str = "", deps: bool = True, on_step=None) -> str:
    """Make the environment and install the bridge; returns its Start Command."""
    steps = plan(folder, source, python, deps)
    for i, args in enumerate(steps):
        if on_step:
            on_step(i / len(steps), "Installing" if i else "Creating")
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            raise InstallError(reason(done.stdout + done.stderr, source))
    if not (scripts(folder) / "lipsync").exists():
        raise InstallError(f"{source} installed no 'lipsync' program; install lipsync-bridge.")
    return start_command(folder)


def reason(output: str, source: str) -> str:
    """pip's or uv's failure in a sentence that says what to do."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith(("error", "×"))]
    last = (errors or lines or ["no message"])[-1]
    if any(mark in output.lower() for mark in OFFLINE):
        return (
            f"could not download {source}: no network, or no such package ({last}); install "
            "from the lipsync-bridge folder or a wheel file instead."
        )
    return f"installing {source} failed: {last}"
