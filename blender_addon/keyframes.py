"""Writes one line's curves as shape-key keyframes, in bulk (keyframe_points.add + foreach_set).

Blender 3.4 has no numpy, so arrays come from the standard library's `array`.
"""

from array import array
from dataclasses import dataclass

import bpy

from . import compat, frames

INTERPOLATION = {"constant": 0, "linear": 1}  # Keyframe.interpolation enum values (3.4 ... 5.0)
PREVIOUS = "lipsync_previous"  # custom property: the action the shape keys had before
EPSILON_FRAMES = 1e-3  # keys are stored as float32; a key this close to the range is in it


@dataclass
class Written:
    action: "bpy.types.Action"
    channels: list[str]  # shape keys written
    missing: list[str]  # curve channels the mesh has no shape key for (skipped)
    keys: int  # keyframes written
    frame_start: float
    frame_end: float
    previous: str  # name of the action the shape keys had before ("" if none)


def write_line(obj, curves, *, fps, frame_offset=0.0, action_name) -> Written:
    """Key `curves` onto obj's shape keys in action `action_name`, replacing only this line's
    frame range there; the shape keys' previous action is kept (fake user) and named."""
    shape_keys = _shape_keys(obj)
    _refuse_duplicates(curves)
    present = [c for c in curves if c["channel"] in shape_keys.key_blocks and c["keys"]]
    missing = [c["channel"] for c in curves if c["channel"] not in shape_keys.key_blocks]
    if not present:
        raise ValueError(
            f"None of the line's channels ({', '.join(missing)}) is a shape key of "
            f"'{obj.name}': pick a rig preset that matches its shape keys"
        )
    keyed = [(c, _frames(c["keys"], fps, frame_offset)) for c in present]
    start = min(min(f[0::2]) for _, f in keyed)
    end = max(max(f[0::2]) for _, f in keyed)
    action, previous = _target_action(shape_keys, action_name)
    collection = compat.fcurves(action, shape_keys)
    for curve, co in keyed:
        fcurve = _fcurve(collection, f'key_blocks["{curve["channel"]}"].value')
        _remove_range(fcurve, start, end)
        _add_keys(fcurve, co, INTERPOLATION[curve.get("interpolation", "linear")])
    return Written(
        action=action,
        channels=[c["channel"] for c in present],
        missing=missing,
        keys=sum(len(co) // 2 for _, co in keyed),
        frame_start=start,
        frame_end=end,
        previous=previous,
    )


def _shape_keys(obj):
    """obj's Key data-block; a ValueError the operator can report when it has none."""
    shape_keys = getattr(obj.data, "shape_keys", None)
    if shape_keys is None:
        raise ValueError(
            f"'{obj.name}' has no shape keys: add shape keys for the mouth shapes "
            "or pick another object"
        )
    return shape_keys


def _refuse_duplicates(curves) -> None:
    """Two curves for one shape key would overwrite each other's keys: refuse them."""
    seen = set()
    for channel in (c["channel"] for c in curves):
        if channel in seen:
            raise ValueError(f"two curves for shape key '{channel}': map each to its own key")
        seen.add(channel)


def _frames(keys, fps, frame_offset) -> array:
    """Flat [frame, value, frame, value, ...] as float32, the layout of Keyframe.co."""
    return array("f", [v for t, w in keys for v in (frames.to_frame(t, fps, frame_offset), w)])


def _target_action(shape_keys, action_name):
    """The action to write into, assigned to the shape keys, and the name of the one before it."""
    action = bpy.data.actions.get(action_name) or bpy.data.actions.new(action_name)
    current = compat.assigned_action(shape_keys)
    if current is not None and current != action:
        current.use_fake_user = True  # unassigned, it would be lost on save
        action[PREVIOUS] = current.name
    compat.assign_action(shape_keys, action)
    return action, action.get(PREVIOUS, "")


def _fcurve(collection, data_path):
    return collection.find(data_path) or collection.new(data_path)


def _remove_range(fcurve, start, end) -> None:
    """Remove the keys in [start, end] (frames), leaving every other key as it was.

    Keys are found in bulk; each found key is removed on its own because a bulk clear and
    re-add cannot keep the others' handle types in 3.4 (foreach_get reads them as 0 there).
    """
    points = fcurve.keyframe_points
    co = array("f", bytes(8 * len(points)))
    points.foreach_get("co", co)
    doomed = [
        i for i, f in enumerate(co[0::2]) if start - EPSILON_FRAMES <= f <= end + EPSILON_FRAMES
    ]
    for i in reversed(doomed):  # from the end, so each removal moves the fewest keys
        points.remove(points[i], fast=True)


def _add_keys(fcurve, co: array, interpolation: int) -> None:
    """Append keys (flat frame/value pairs) with one interpolation; existing keys keep theirs."""
    points = fcurve.keyframe_points
    old = len(points)
    all_co = array("f", bytes(8 * old))
    points.foreach_get("co", all_co)
    all_ipo = array("i", bytes(4 * old))
    points.foreach_get("interpolation", all_ipo)
    points.add(len(co) // 2)
    all_co.extend(co)
    all_ipo.extend([interpolation] * (len(co) // 2))
    points.foreach_set("co", all_co)
    points.foreach_set("interpolation", all_ipo)
    fcurve.update()  # sorts the keys by frame and recalculates handles
