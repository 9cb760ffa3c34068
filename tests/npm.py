"""npm packages for tests (osc.js, playwright-core): installed once into a cache folder."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def npm_package(spec: str, tmp_path_factory, *flags: str) -> Path:
    """A folder whose node_modules holds `spec` (name@version); skips the test when npm cannot
    install it. Installed into a temporary folder, then renamed into place, so a run cut short
    never leaves half a package."""
    name = spec.rsplit("@", 1)[0]
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip(f"node and npm are needed for {name}; install Node.js")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lipsync-bridge"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        base = tmp_path_factory.mktemp("npm")
    target = base / spec.replace("@", "-")
    if (target / "node_modules" / name / "package.json").is_file():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
    cmd = [shutil.which("npm"), "install", "--prefix", str(staging), "--no-audit", "--no-fund"]
    cmd += ["--no-package-lock", "--no-save", *flags, spec]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        errors = [x for x in r.stderr.splitlines() if x.startswith("npm error")][:4]
        problem = "" if r.returncode == 0 else f"exit {r.returncode}: {'; '.join(errors)}"
    except (OSError, subprocess.TimeoutExpired) as e:
        problem = str(e)
    if problem or not (staging / "node_modules" / name / "package.json").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        pytest.skip(f"npm could not install {spec} ({problem})")
    try:
        staging.rename(target)
    except OSError:  # another run installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return target
