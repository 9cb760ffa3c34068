"""Armature target: the jaw bone turns with the jaw's opening, and the other bones blend the
viseme poses, weighted per frame by the line's curves; keys go on the pose bones' transforms.

A viseme pose is an action named after its mouth shape ("AA", "mouth_AA", "MBP"...) holding
the pose at its first frame, such as a pose asset of the file's Pose Library (an action marked
as an asset, in 3.x and 5.0 alike). The bridge matches the action names to mouth shapes, as it
does shape keys; the Mapping list shows and corrects the choice.
"""

from __future__ import annotations

import math

import bpy

from . import compat, keyframes, mix
from .request import BakeError

AXES = "XYZ"


def check(obj) -> None:
    """The armature needs a jaw bone or a viseme pose to move (a picked jaw bone must exist)."""
    if not jaw_bone(obj) and not pose_names(obj):
        raise BakeError(
            f"{obj.name!r} has no jaw bone and no viseme poses: name the jaw bone jaw (or pick "
            "it as Jaw Bone in the Lip Sync panel), or keep a pose per mouth shape as an action "
            "named after it (mouth_AA, MBP...)."
        )


def pose_names(obj) -> list[str]:
    """Actions that hold a pose of this armature's bones (the bakes' own actions excepted)."""
    bones = obj.pose.bones
    return [
        a.name
        for a in bpy.data.actions
        if not a.get(keyframes.LINE) and any(_bone(fc, bones) for fc in compat.read_fcurves(a))
    ]


def jaw_bone(obj) -> str:
    """The bone picked as Jaw Bone, else one named like a jaw, else ""."""
    picked = obj.lipsync.jaw_bone
    if picked and picked not in obj.pose.bones:
        raise BakeError(
            f"{obj.name!r} has no bone named {picked!r}: pick the jaw bone as Jaw Bone in the "
            "Lip Sync panel (or clear it to find one named like jaw)."
        )
    return picked or mix.jaw_bone([b.name for b in obj.pose.bones])


def write(obj, timeline: dict, chosen: dict[str, str], *, fps, frame_offset, action_name):
    """Key the line onto the bones in action `action_name` (keyframes.write's rules)."""
    line = mix.sample(timeline["curves"], fps, frame_offset)
    if not line.frames:
        raise ValueError("the line has no keys: bake a line with speech in it.")
    poses = {name: _pose(obj, name) for name in set(chosen.values()) if name in bpy.data.actions}
    values = mix.blend(line, poses, chosen)
    jaw = jaw_bone(obj)
    if jaw and obj.lipsync.jaw_angle and not _poses_turn(values, obj.pose.bones[jaw]):
        values.update(_jaw(obj, obj.pose.bones[jaw], mix.jaw_opening(line, timeline["viseme_set"])))
    if not values:
        raise ValueError(
            f"nothing to key on {obj.name!r}: pick a pose for the mouth shapes in the Mapping list, "
            "or a Jaw Bone and a Jaw Angle."
        )
    channels = _channels(obj, line, values)
    action, previous, start, end = keyframes.write(obj, channels, action_name=action_name)
    return keyframes.Written(
        action=action,
        channels=sorted({c.group for c in channels}),
        missing=_unposed(line, poses, chosen),
        keys=sum(len(c.co) // 2 for c in channels),
        frame_start=start,
        frame_end=end,
        previous=previous,
        noun="bones",
    )


def _bone(fcurve, bones):
    """The pose bone a transform F-Curve moves, if it is one of `bones`."""
    found = mix.bone_channel(fcurve.data_path)
    return bones.get(found[0]) if found else None


def _pose(obj, name: str) -> dict[tuple[str, int], float]:
    """(data path, index) -> value of the pose an action holds at its first frame."""
    action = bpy.data.actions[name]
    frame = action.frame_range[0]
    return {
        (fc.data_path, fc.array_index): fc.evaluate(frame)
        for fc in compat.read_fcurves(action)
        if _bone(fc, obj.pose.bones) is not None
    }


def _poses_turn(values: dict, bone) -> bool:
    """Whether the poses already turn the jaw bone: then they, not the Jaw Angle, move it."""
    prefix = bone.path_from_id() + ".rotation"  # pose.bones["jaw"].rotation_*
    return any(path.startswith(prefix) for path, _ in values)


def _jaw(obj, bone, opening: list[float]) -> dict[tuple[str, int], list[float]]:
    """The jaw bone's rotation channels, turned Jaw Angle x opening about Jaw Axis the way
    that lowers its tail (the chin), in the bone's own rotation mode."""
    settings = obj.lipsync
    axis = AXES.index(settings.jaw_axis)
    angles = [settings.jaw_angle * _opening_sign(obj, bone.name, axis) * o for o in opening]
    unit = [1.0 if i == axis else 0.0 for i in range(3)]
    mode = bone.rotation_mode
    if mode == "QUATERNION":
        rows = [[math.cos(a / 2), *(u * math.sin(a / 2) for u in unit)] for a in angles]
        return _columns(bone.path_from_id("rotation_quaternion"), rows)
    if mode == "AXIS_ANGLE":
        return _columns(bone.path_from_id("rotation_axis_angle"), [[a, *unit] for a in angles])
    return {(bone.path_from_id("rotation_euler"), axis): angles}


def _columns(path: str, rows: list[list[float]]) -> dict[tuple[str, int], list[float]]:
    return {(path, i): [row[i] for row in rows] for i in range(len(rows[0]))} if rows else {}


def _opening_sign(obj, bone: str, axis: int) -> float:
    """+1 or -1: the turn about the bone's `axis` that moves its tail down (else forward, -Y)."""
    matrix = obj.matrix_world.to_3x3() @ obj.data.bones[bone].matrix_local.to_3x3()
    along, about = matrix.col[1], matrix.col[axis]
    moves = about.cross(along)  # where the tail goes on a small positive turn
    if abs(moves.z) > 0.1 * moves.length:
        return -1.0 if moves.z > 0 else 1.0
    return -1.0 if moves.y > 0 else 1.0


def _channels(obj, line, values: dict) -> list[keyframes.Channel]:
    interpolation = "constant" if line.constant else "linear"
    out = []
    for (path, index), column in sorted(values.items()):
        bone, _ = mix.bone_channel(path)
        co = keyframes.flat(zip(line.frames, column))
        out.append(keyframes.Channel(path, co, interpolation, index, group=bone))
    return out


def _unposed(line, poses: dict, chosen: dict[str, str]) -> list[str]:
    """The line's moving channels with no pose (the jaw may still move for them); none for a
    rig that has no poses at all (the jaw alone moves)."""
    if not poses:
        return []
    return [
        c for c, w in line.weights.items() if chosen.get(c) not in poses and any(v > 0 for v in w)
    ]
