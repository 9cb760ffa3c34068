"""Opening a sound or video file: every way it can fail is one InputError naming the file and the fix."""

from __future__ import annotations

import io
from pathlib import Path

from ..core.errors import InputError


def open_media(av, source: str | Path | bytes, label: str, kind: str, fix: str):
    """An open PyAV container of `source` (a path or the file's bytes). `kind` is what the
    user was asked for ("audio", "video"); `fix` says what to give instead."""
    if isinstance(source, bytes):
        size = len(source)
    else:
        path = Path(source)
        if not path.exists():
            raise InputError(f"{kind} file not found: {path}; fix: check the path")
        if path.is_dir():
            raise InputError(f"{path} is a folder, not {_a(kind)} file; {fix}")
        size = path.stat().st_size
    if size == 0:
        raise InputError(f"{label} is empty (0 bytes); {fix}")
    try:
        return av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    except av.FFmpegError as e:
        readable = "an audio or video" if kind == "audio" else _a(kind)
        raise InputError(
            f"{label} is not {readable} file FFmpeg can read, or it is damaged ({e.strerror}); {fix}"
        ) from None


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun
