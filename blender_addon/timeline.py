"""Reads the timeline document (from the bridge or a file) and checks the parts the add-on uses.

No bpy. Same rules as the bridge's reader: unknown fields are ignored, a newer major
`schema_version` is refused with a message that says to update the add-on.
"""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA_VERSION = "1.0"  # the newest schema this add-on reads; same major: readable
INTERPOLATIONS = ("linear", "constant")


class TimelineError(ValueError):
    """A timeline the add-on cannot use; the message names the problem and the fix."""


def load(path) -> dict:
    """Read and check a timeline file."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise TimelineError(f"cannot read {path}: {e.strerror}; check the path.") from None
    except ValueError as e:
        raise TimelineError(f"{path} is not JSON ({e}); give a timeline file.") from None
    return read(document, str(path))


def read(document, where: str = "the timeline") -> dict:
    """`document` itself, once its version, fps, duration and curves are usable."""
    if not isinstance(document, dict):
        raise TimelineError(f"{where} is not a timeline: it must be a JSON object.")
    _check_version(document.get("schema_version"), where)
    if not _number(document.get("fps")) or document["fps"] <= 0:
        raise TimelineError(f"{where}: fps must be a positive number.")
    if not _number(document.get("duration")) or document["duration"] < 0:
        raise TimelineError(f"{where}: duration must be a number of seconds (0 or more).")
    curves = document.get("curves")
    if not isinstance(curves, list):
        raise TimelineError(f"{where}: curves must be a list.")
    for i, curve in enumerate(curves):
        _check_curve(curve, f"{where}: curves[{i}]")
    return document


def warnings(document: dict) -> list[str]:
    """The messages of the timeline's warnings, for reports."""
    return [w.get("message", str(w)) for w in document.get("warnings", []) if isinstance(w, dict)]


def _check_version(version, where: str) -> None:
    major = version.split(".")[0] if isinstance(version, str) else ""
    if not major.isdigit():
        raise TimelineError(f"{where}: schema_version is missing or not like '1.0' ({version!r}).")
    if int(major) > int(SCHEMA_VERSION.split(".")[0]):
        raise TimelineError(
            f"{where} uses timeline schema {version}, newer than this add-on reads "
            f"({SCHEMA_VERSION}); update the Lip Sync add-on to the bridge's version."
        )


def _check_curve(curve, where: str) -> None:
    if not isinstance(curve, dict) or not isinstance(curve.get("channel"), str):
        raise TimelineError(f"{where} needs a channel name.")
    keys = curve.get("keys")
    pairs = isinstance(keys, list) and all(
        isinstance(k, list) and len(k) == 2 and all(map(_number, k)) for k in keys
    )
    if not pairs:
        raise TimelineError(f"{where} ({curve['channel']}): keys must be [time, weight] pairs.")
    if curve.get("interpolation", "linear") not in INTERPOLATIONS:
        raise TimelineError(
            f"{where} ({curve['channel']}): interpolation must be linear or constant."
        )


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
