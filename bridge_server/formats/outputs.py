"""Writing results all-or-nothing: every file lands complete, or none is touched."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..core.errors import OutputError


def check_writable(paths: list[Path]) -> None:
    """Fail before any work if an output cannot be written (so no time is wasted)."""
    for p in paths:
        folder = p.parent if str(p.parent) else Path(".")
        if p.is_dir():
            raise OutputError(f"output {p} is a folder; give a file name, e.g. {p / 'line.json'}.")
        if not folder.is_dir():
            raise OutputError(f"cannot write {p}: folder {folder} does not exist; create it first.")
        if not os.access(folder, os.W_OK):
            raise OutputError(
                f"cannot write {p}: folder {folder} is not writable; choose another path."
            )


def write_all(files: dict[Path, bytes | str]) -> None:
    """Write every file to a temporary name first, then move them all into place."""
    check_writable(list(files))
    temps: list[tuple[str, Path]] = []
    try:
        for path, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
    except OSError as e:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise OutputError(
            f"could not write {e.filename or 'output'}: {e.strerror}; nothing was written."
        ) from None
    for tmp, path in temps:
        os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
