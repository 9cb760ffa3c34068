"""Writes one line's keys into an action, in bulk (keyframe_points.add + foreach_set): shape
keys here (write_line), bones and 2D drawings through write() (armature.py, drawings.py).

Every target follows the same rules: the keys go into a new action named after the line, the
data-block's previous action is kept (fake user) and named in the new one, and baking the line
again replaces only the keys in its frame range. Blender 3.4 has no numpy, so arrays come from
the standard library's `array`.
"""

from array import array
from dataclasses import dataclass

import bpy

from . import compat, frames

INTERPOLATION = {"constant": 0, "linear": 1}  # Keyframe.interpolation enum values (3.4 ... 5.0)
PREVIOUS = "lipsync_previous"  # custom property: the action the data-block had before
LINE = "lipsync_line"  # custom property: marks the actions bakes make (never a viseme pose)
LACKING = {"shape keys": "shape key", "bones": "pose", "drawings": "drawing"}  # for reports
EPSILON_FRAMES = 1e-3  # keys are stored as float32; a key this close to the range is in it


@dataclass
class Written:
    action: "bpy.types.Action"
    channels: list[str]  # what was keyed: shape keys, bones or drawings
    missing: list[str]  # the line's channels (mouth shapes) with nothing to key (skipped)
    keys: int  # keyframes written
    frame_start: float
    frame_end: float
    previous: str  # name of the action the data-block had before ("" if none)
    noun: str = "shape keys"  # what `channels` are, for reports

    def summary(self) -> str:
        """The bake's report: what was keyed where, and what the rig had nothing for."""
        message = (
            f"{self.keys} keys on {len(self.channels)} {self.noun} in action "
            f"{self.action.name!r}, frames {self.frame_start:.0f}-{self.frame_end:.0f}"
        )
        if self.previous:
            message += f" (the previous action {self.previous!r} is kept)"
        if self.missing:
            message += f"; no {LACKING[self.noun]} for {', '.join(self.missing)}"
        return message


@dataclass
class Channel:
    """New keys for one F-Curve."""

    data_path: str
    co: array  # flat [frame, value, frame, value, ...] float32, the layout of Keyframe.co
    interpolation: str = "linear"
    index: int = 0
    group: str = ""  # the bone's name, for bone channels


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
    channels = [
        Channel(
            f'key_blocks["{c["channel"]}"].value',
            _frames(c["keys"], fps, frame_offset),
            c.get("interpolation", "linear"),
        )
        for c in present
    ]
    action, previous, start, end = write(shape_keys, channels, action_name=action_name)
    return Written(
        action=action,
        channels=[c["channel"] for c in present],
        missing=missing,
        keys=sum(len(c.co) // 2 for c in channels),
        frame_start=start,
        frame_end=end,
        previous=previous,
    )


def write(id_block, channels: list[Channel], *, action_name: str) -> tuple:
    """Key `channels` onto `id_block` in action `action_name`, first removing that action's
    keys in the channels' frame range (a rerun of the line); the data-block's previous action
    is kept. Returns (action, previous action's name, first frame, last frame)."""
    start = min(min(c.co[0::2]) for c in channels)
    end = max(max(c.co[0::2]) for c in channels)
    action, previous = _target_action(id_block, action_name)
    collection = compat.fcurves(action, id_block)
    for channel in channels:
        fcurve = _fcurve(collection, channel)
        _remove_range(fcurve, start, end)
        _add_keys(fcurve, channel.co, INTERPOLATION[channel.interpolation])
    return action, previous, start, end


def flat(pairs) -> array:
    """[(frame, value), ...] as a flat float32 array."""
    return array("f", [v for pair in pairs for v in pair])


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


def _target_action(id_block, action_name):
    """The action to write into, assigned to the data-block, and the name of the one before it."""
    action = bpy.data.actions.get(action_name) or bpy.data.actions.new(action_name)
    action[LINE] = True
    current = compat.assigned_action(id_block)
    if current is not None and current != action:
        current.use_fake_user = True  # unassigned, it would be lost on save
        action[PREVIOUS] = current.name
    compat.assign_action(id_block, action)
    return action, action.get(PREVIOUS, "")


def _fcurve(collection, channel: Channel):
    found = collection.find(channel.data_path, index=channel.index)
    return found or compat.new_fcurve(collection, channel.data_path, channel.index, channel.group)


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
