"""Small rigs that are not shape keys, built the way a user builds them (edit bones, poses keyed
in Pose Mode's way and kept as actions, Grease Pencil layers), and what they show per frame.
Imported by test_targets.py in the bpy module and by its script in Debian's Blender 3.4: only
bpy, no pytest."""

import bpy

# pose -> bone -> (transform, index, value); the poses of an Oculus-named armature mouth
POSES = {
    "mouth_PP": {"lip_upper": ("location", 2, -0.1), "lip_lower": ("location", 2, 0.1)},
    "mouth_AA": {"lip_upper": ("location", 2, 0.1), "lip_lower": ("scale", 0, 1.2)},
    "mouth_OU": {"lip_upper": ("scale", 0, 0.6), "lip_lower": ("scale", 0, 0.6)},
    "mouth_E": {"lip_upper": ("scale", 0, 1.3), "lip_lower": ("scale", 0, 1.3)},
    "mouth_FF": {"lip_lower": ("location", 2, 0.15)},
}
RHUBARB = "A B C D E F G H X".split()  # Rhubarb's mouth shapes; A is the closed mouth


def link_active(obj):
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return obj


def make_armature(name="Rig", poses=POSES, jaw="jaw"):
    """A jaw bone pointing forward (-Y) from its hinge, the lower lip on it, an upper lip, and
    one action per pose of `poses` (the first marked as a pose asset); none assigned."""
    obj = link_active(bpy.data.objects.new(name, bpy.data.armatures.new(name)))
    bpy.ops.object.mode_set(mode="EDIT")
    bones = obj.data.edit_bones
    for bone, head, tail in [(jaw, (0, 0, 0), (0, -1, 0)), ("lip_upper", (0, -1, 0.2), (0, -1.2, 0.2)),
                             ("lip_lower", (0, -1, 0), (0, -1.2, 0))]:  # fmt: skip
        edit = bones.new(bone)
        edit.head, edit.tail = head, tail
    bones["lip_lower"].parent = bones[jaw]
    bpy.ops.object.mode_set(mode="OBJECT")
    for i, (pose, channels) in enumerate(poses.items()):
        for bone, (prop, index, value) in channels.items():
            getattr(obj.pose.bones[bone], prop)[index] = value
            obj.pose.bones[bone].keyframe_insert(prop, index=index, frame=1, group=bone)
        action = obj.animation_data.action
        action.name = pose
        if i == 0:
            action.asset_mark()  # a pose asset of the file's Pose Library is an action too
        obj.animation_data.action = None
        reset(obj)
    return obj


def reset(obj) -> None:
    for bone in obj.pose.bones:
        bone.location, bone.scale = (0, 0, 0), (1, 1, 1)
        bone.rotation_quaternion, bone.rotation_euler = (1, 0, 0, 0), (0, 0, 0)


def jaw_drop(obj, frame: int, jaw="jaw") -> float:
    """How far the jaw's tip (the chin) is below its rest height at `frame`."""
    bpy.context.scene.frame_set(frame)
    return -obj.pose.bones[jaw].tail.z


def lip(obj, frame: int, bone: str, prop: str, index: int) -> float:
    bpy.context.scene.frame_set(frame)
    return getattr(obj.pose.bones[bone], prop)[index]


def make_gp_mouth(name="Mouth", shapes=RHUBARB, prefix="mouth_"):
    """A Grease Pencil object with a layer per mouth shape, each with a drawing at frame 1."""
    # Grease Pencil v3: bpy.data.grease_pencils_v3 in 4.3-4.5 (their grease_pencils is the legacy
    # kind no object takes), grease_pencils in 5.0; 3.4-4.2 have only the legacy kind
    data = getattr(bpy.data, "grease_pencils_v3", bpy.data.grease_pencils).new(name)
    obj = link_active(bpy.data.objects.new(name, data))
    for shape in shapes:
        data.layers.new(prefix + shape).frames.new(1)
    return obj


def layer_name(layer) -> str:
    return getattr(layer, "name", None) or layer.info


def shown(obj, frame: int) -> list[str]:
    """The layers visible at `frame`, as the scene evaluates them."""
    bpy.context.scene.frame_set(frame)
    data = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    return [layer_name(layer) for layer in data.layers if not layer.hide]
