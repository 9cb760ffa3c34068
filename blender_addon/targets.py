"""What a bake keys, chosen from the selected object: a mesh's shape keys, an armature's bones
(a jaw bone and viseme poses: armature.py) or a 2D mouth (a Grease Pencil object with a layer
per mouth shape: drawings.py).

Shape keys get curves the bridge named after them. The other targets get the viseme set's own
channels (the request maps each channel to itself) and apply the Mapping list here, so several
mouth shapes may share a pose or a drawing.
"""

from __future__ import annotations

import bpy

from . import armature, drawings, keyframes
from .request import BakeError

CHOOSE = (
    "select the character's face mesh (with mouth shape keys), its armature (a jaw bone or "
    "viseme poses) or a Grease Pencil mouth (a layer per mouth shape)"
)
NOUNS = {"SHAPE_KEYS": "shape key", "ARMATURE": "pose", "DRAWINGS": "layer"}  # a Mapping row's
DATA = {"SHAPE_KEYS": "mesh", "ARMATURE": "armature", "DRAWINGS": "Grease Pencil data"}


def kind(obj) -> str:
    """SHAPE_KEYS, ARMATURE or DRAWINGS; a BakeError that says what to select otherwise."""
    if obj is None:
        raise BakeError(CHOOSE + ".")
    if obj.type == "MESH" and obj.data.shape_keys is not None:
        return "SHAPE_KEYS"
    if obj.type == "ARMATURE":
        return "ARMATURE"
    if obj.type in drawings.TYPES:
        return "DRAWINGS"
    if obj.type == "MESH":
        raise BakeError(f"{obj.name!r} has no mouth shape keys; add them, or {CHOOSE}.")
    raise BakeError(f"{obj.name!r} is not a mouth Lip Sync can key ({obj.type.lower()}): {CHOOSE}.")


def problem(obj) -> str:
    """Why `obj` cannot be baked onto ("" when it may be), for poll messages: its kind only,
    as polls run on every redraw; the bake checks the rest."""
    try:
        kind(obj)
    except BakeError as e:
        return str(e)
    return ""


def check(obj) -> str:
    """The object's kind, once it is local and has something to key."""
    found = kind(obj)
    for what, block in _blocks(obj, found):
        if block is not None and block.library is not None:
            raise BakeError(
                f"the {what} of {obj.name!r} is linked from {block.library.filepath}; make it "
                "local or add a library override (Object > Library Override), then bake."
            )
    if found == "SHAPE_KEYS" and len(obj.data.shape_keys.key_blocks) < 2:
        raise BakeError(
            f"{obj.name!r} has no mouth shape keys; add them, or select the character's face mesh."
        )
    if found == "ARMATURE":
        armature.check(obj)
    if found == "DRAWINGS":
        drawings.check(obj)
    return found


def _blocks(obj, found: str) -> list[tuple]:
    blocks = [("object", obj), (DATA[found], obj.data)]
    if found == "SHAPE_KEYS":
        blocks.append(("shape keys", obj.data.shape_keys))
    return blocks


def names(obj) -> list[str]:
    """The names the bridge matches to mouth shapes: shape keys, pose actions or layers."""
    found = kind(obj)
    if found == "SHAPE_KEYS":
        return [k.name for k in obj.data.shape_keys.key_blocks[1:]]  # the first is the basis
    return armature.pose_names(obj) if found == "ARMATURE" else drawings.layer_names(obj)


def noun(obj) -> str:
    """What a row of the Mapping list names: a shape key, a pose or a layer."""
    return NOUNS[kind(obj)]


def needs_mapping(obj) -> bool:
    """Whether a bake needs a row of the Mapping list filled (an armature's jaw alone will do)."""
    return kind(obj) != "ARMATURE" or not armature.jaw_bone(obj)


def sent(obj, chosen: dict[str, str], channels: list[str]) -> tuple[dict, list[str]]:
    """(mapping, names) for the bridge: shape keys by name; otherwise each channel as itself."""
    if kind(obj) == "SHAPE_KEYS":
        return chosen, names(obj)
    return {c: c for c in channels}, list(channels)


def animated(obj):
    """The data-block whose action holds the keys: the shape keys, the armature object, the
    Grease Pencil data."""
    found = kind(obj)
    if found == "SHAPE_KEYS":
        return obj.data.shape_keys
    return obj if found == "ARMATURE" else obj.data


def search(obj) -> tuple:
    """(data, collection name) that the Mapping list picks names from, or (None, "")."""
    try:
        found = kind(obj)
    except BakeError:
        return None, ""
    if found == "SHAPE_KEYS":
        return obj.data.shape_keys, "key_blocks"
    if found == "ARMATURE":
        return bpy.data, "actions"
    return obj.data, "layers"


def write(obj, timeline: dict, chosen: dict[str, str], *, fps, frame_offset, action_name):
    """Key the line onto the object's target; a keyframes.Written."""
    found = kind(obj)
    if found == "SHAPE_KEYS":
        return keyframes.write_line(
            obj, timeline["curves"], fps=fps, frame_offset=frame_offset, action_name=action_name
        )
    writer = armature.write if found == "ARMATURE" else drawings.write
    return writer(
        obj, timeline, chosen, fps=fps, frame_offset=frame_offset, action_name=action_name
    )
