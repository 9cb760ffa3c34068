"""What a rig without mouth shape keys shows over a line, from the timeline: the channels'
weights where they have keys, the jaw's opening, a blend of viseme poses (armatures), and the
held drawing of a 2D mouth. No bpy: armature.py and drawings.py key what this computes.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from . import frames

JAW_OPEN = json.loads(Path(__file__).with_name("jaw_open.json").read_text(encoding="utf-8"))
MECHANISM = ("DEF-", "ORG-", "MCH-")  # Rigify: bones that follow a control; keys there do nothing
TRANSFORMS = ("location", "rotation_quaternion", "rotation_euler", "rotation_axis_angle", "scale")


@dataclass
class Line:
    frames: list[float]  # every frame where some curve has a key, in order
    weights: dict[str, list[float]]  # channel -> its weight at each of those frames
    constant: bool  # stepped (holds mode): hold each value until the next key


def sample(curves: list[dict], fps: float, offset: float) -> Line:
    """The curves' weights at every frame where any of them has a key. Between those frames
    every weight moves linearly (or holds), so a weighted sum of poses keyed there is exact."""
    at = sorted({frames.to_frame(t, fps, offset) for c in curves for t, _ in c["keys"]})
    weights = {c["channel"]: _values(c, at, fps, offset) for c in curves if c["keys"]}
    constant = bool(curves) and all(c.get("interpolation") == "constant" for c in curves)
    return Line(at, weights, constant)


def _values(curve: dict, at: list[float], fps: float, offset: float) -> list[float]:
    """The curve at each frame of `at`, as Blender plays it (held before the first key and
    after the last)."""
    keys = [(frames.to_frame(t, fps, offset), w) for t, w in curve["keys"]]
    times = [f for f, _ in keys]
    held = curve.get("interpolation") == "constant"
    out = []
    for f in at:
        i = bisect_right(times, f)
        if i == 0 or i == len(keys) or held:
            out.append(keys[max(i - 1, 0)][1])
            continue
        (f0, v0), (f1, v1) = keys[i - 1], keys[i]
        out.append(v0 + (v1 - v0) * (f - f0) / (f1 - f0))
    return out


# --- armatures ---------------------------------------------------------------------------------


def jaw_opening(line: Line, viseme_set: str) -> list[float]:
    """0 (closed) .. 1 (wide) at each frame: the channels' weights times how far each opens
    the jaw (jaw_open.json)."""
    table = JAW_OPEN.get(viseme_set, {})
    opens = [(table[c], w) for c, w in line.weights.items() if table.get(c)]
    return [min(1.0, sum(o * w[i] for o, w in opens)) for i in range(len(line.frames))]


def rest_value(data_path: str, index: int) -> float:
    """A pose bone channel's value in the rest pose."""
    prop = data_path.rsplit(".", 1)[-1]
    if prop == "scale":
        return 1.0
    if prop == "rotation_quaternion":
        return 1.0 if index == 0 else 0.0
    if prop == "rotation_axis_angle":
        return 1.0 if index == 2 else 0.0  # no turn about +Y
    return 0.0


def blend(line: Line, poses: dict[str, dict], chosen: dict[str, str]) -> dict[tuple, list[float]]:
    """(data path, index) -> value at each frame: the rest pose plus each channel's pose
    offset times its weight. `poses` is pose name -> {(data path, index): value}, `chosen`
    channel -> pose name. Weights summing over 1 are scaled down, so overlapping poses never
    push a bone past the poses themselves."""
    used = {c: poses[p] for c, p in chosen.items() if p in poses and c in line.weights}
    keys = sorted({k for pose in used.values() for k in pose})
    total = [max(1.0, sum(line.weights[c][i] for c in used)) for i in range(len(line.frames))]
    out = {}
    for key in keys:
        rest = rest_value(*key)
        offsets = [(line.weights[c], pose[key] - rest) for c, pose in used.items() if key in pose]
        out[key] = [
            rest + sum(w[i] * d for w, d in offsets) / total[i] for i in range(len(line.frames))
        ]
    return out


def jaw_bone(names: list[str]) -> str:
    """The bone most likely to be the jaw's control ("" if none is named like a jaw): a bone
    Rigify drives (DEF-, ORG-, MCH-) last, then one whose name has the word jaw, shortest first."""
    found = [n for n in names if "jaw" in n.lower()]
    if not found:
        return ""
    words = lambda n: re.split(r"[^a-z0-9]+", n.lower())  # noqa: E731
    return min(
        found, key=lambda n: (n.upper().startswith(MECHANISM), "jaw" not in words(n), len(n))
    )


def bone_channel(data_path: str) -> tuple[str, str] | None:
    """(bone, transform) for a pose bone transform's data path, else None."""
    found = re.fullmatch(r'pose\.bones\["((?:[^"\\]|\\.)*)"\]\.(\w+)', data_path)
    if found is None or found.group(2) not in TRANSFORMS:
        return None
    return found.group(1).replace('\\"', '"').replace("\\\\", "\\"), found.group(2)


# --- 2D mouths ----------------------------------------------------------------------------------


def held(cues: list[dict], chosen: dict[str, str], fps: float, offset: float) -> list[tuple]:
    """(frame, drawing) where the shown drawing changes, from the timeline's held mouth cues,
    and (end of the last cue, its drawing). A cue whose mouth shape has no drawing keeps the
    drawing before it (at the start: the first one after)."""
    drawn = [(frames.to_frame(c["start"], fps, offset), chosen.get(c["viseme"], "")) for c in cues]
    first = next((d for _, d in drawn if d), "")
    if not first:
        return []
    out, shown = [], first
    for frame, drawing in drawn:
        shown = drawing or shown
        if not out or out[-1][1] != shown:
            out.append((frame, shown))
    out.append((frames.to_frame(cues[-1]["end"], fps, offset), shown))
    return out


def undrawn(cues: list[dict], chosen: dict[str, str]) -> list[str]:
    """The mouth shapes of the line that have no drawing, in order of appearance."""
    return list(dict.fromkeys(c["viseme"] for c in cues if not chosen.get(c["viseme"])))
