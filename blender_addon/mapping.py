"""The Mapping list's data: which shape key each channel of a viseme set drives. No bpy.

The bridge matches the names (/rigs/match); the user corrects rows; the bridge then names the
curves after the rows (the add-on never renames curves itself). Saved as a rig preset JSON.
Without the bridge, `local_match` finds a shipped rig preset whose names the rig has.
"""

from __future__ import annotations

import json
from pathlib import Path

from .client import Bridge, BridgeError

FALLBACK_SET = "oculus15"
HERE = Path(__file__).resolve().parent
# the presets the zips carry (rigs/ inside the add-on), or the repository's rigs/
RIG_DIRS = (HERE / "rigs", HERE.parent / "rigs")


def match(bridge: Bridge, shape_keys: list[str], visemes: str | None = None) -> dict:
    """The bridge's match of the names; when none match, every channel of the set unfilled
    (its channels from a preset), with the bridge's message saying how to name the keys."""
    try:
        return bridge.match_rig(shape_keys, visemes)
    except BridgeError as e:
        return unmatched(bridge, visemes or FALLBACK_SET, str(e))


def unmatched(bridge: Bridge, viseme_set: str, message: str) -> dict:
    preset = next((r for r in bridge.rigs() if r["viseme_set"] == viseme_set), None)
    if preset is None:
        raise BridgeError(message) from None
    channels = list(preset["shape_keys"])
    return {"viseme_set": viseme_set, "shape_keys": {}, "missing_channels": channels,
            "message": message}  # fmt: skip


def rows(found: dict) -> list[tuple[str, str]]:
    """(channel, shape key or "") for the list: matched channels first, then the missing."""
    keys = found["shape_keys"]
    return [(c, keys.get(c, "")) for c in [*keys, *found["missing_channels"]]]


def chosen(rows: list[tuple[str, str]]) -> dict[str, str]:
    """channel -> shape key, the rows that have a shape key."""
    return {channel: key for channel, key in rows if key}


def to_preset(name: str, title: str, about: str, viseme_set: str, choice: dict) -> str:
    """A rig preset JSON (the format of the bridge's rigs/)."""
    preset = {"name": name, "title": title, "about": about, "viseme_set": viseme_set,
              "shape_keys": choice}  # fmt: skip
    return json.dumps(preset, indent=2) + "\n"


def load_preset(path) -> tuple[str, dict[str, str]]:
    """(viseme set, channel -> shape key) from a rig preset file; ValueError says what is wrong."""
    try:
        preset = json.loads(Path(path).read_text(encoding="utf-8"))
        viseme_set, keys = preset["viseme_set"], dict(preset["shape_keys"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a rig preset ({e}); save one first.") from None
    if not isinstance(viseme_set, str) or not all(isinstance(v, str) for v in keys.values()):
        raise ValueError(f"{path} is not a rig preset (names must be text); save one first.")
    return viseme_set, keys


def shipped_presets() -> list[dict]:
    """The rig presets beside the add-on (the zip's rigs/, or the repository's), by name."""
    folder = next((d for d in RIG_DIRS if d.is_dir()), None)
    found = []
    for path in sorted(folder.glob("*.json")) if folder else []:
        try:
            viseme_set, keys = load_preset(path)
        except ValueError:
            continue  # not a preset (rigs/ may hold other JSON)
        found.append({"name": path.stem, "viseme_set": viseme_set, "shape_keys": keys})
    return found


def local_match(shape_keys: list[str], presets: list[dict], visemes: str | None = None):
    """The bridge's answer shape for the preset whose shape-key names the rig has most of (at
    least half of them, exact names); None when none fits, so the bridge must match."""
    have, best = set(shape_keys), None
    for preset in presets:
        if visemes and preset["viseme_set"] != visemes:
            continue
        keys = preset["shape_keys"]
        found = {c: k for c, k in keys.items() if k in have}
        if 2 * len(found) >= len(keys) and (best is None or len(found) > len(best[1])):
            best = preset, found
    if best is None:
        return None
    preset, found = best
    missing = [c for c in preset["shape_keys"] if c not in found]
    message = f"rig preset {preset['name']!r}: {len(found)} of {len(preset['shape_keys'])} "
    message += f"{preset['viseme_set']} channels"
    return {"viseme_set": preset["viseme_set"], "shape_keys": found,
            "missing_channels": missing, "message": message}  # fmt: skip
