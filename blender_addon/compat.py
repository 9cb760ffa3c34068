"""The differences between Blender 3.4 ... 5.0 that the add-on meets, hidden behind a few functions.

Actions: 3.4-4.3 keep F-Curves on the Action (`action.fcurves`, `action.id_root`). 4.4 added
slotted actions (slots, layers, keyframe strips, one channelbag per slot) and kept `action.fcurves`
as a proxy for the first slot only; 5.0 removed that proxy. Where slots exist the slotted API is
used, so an action shared with other data-blocks is never written through the wrong slot.

F-Curve groups: Action.fcurves.new() takes `action_group` (3.4-4.3); a channelbag's takes
`group_name` from 5.0 only, so in 4.4/4.5 the F-Curve joins the channelbag's group afterwards.

Grease Pencil: 4.3-4.5 keep Grease Pencil v3 data in `bpy.data.grease_pencils_v3` (their
`grease_pencils` is the legacy kind, which no object takes any more); 5.0 moved it to
`grease_pencils`, and 3.4-4.2 have only the legacy kind there.

Sequencer: 5.0 renamed `SequenceEditor.sequences` / `sequences_all` to `strips` / `strips_all`.
A Blender built without Audaspace (the bpy 4.2 module on PyPI) cannot make sound strips.
"""

import bpy

MAX_CHANNEL = 128  # the sequencer's channel count in every supported version
# SequenceEditor's top-level strip collection, by name (for UILayout.prop_search)
STRIPS_ATTR = "strips" if "strips" in bpy.types.SequenceEditor.bl_rna.properties else "sequences"
NLA_TRACK = "Lip Sync"


def has_slots(action) -> bool:
    """Whether this Blender has slotted actions (4.4+)."""
    return hasattr(action, "slots")


def fcurves(action, id_block):
    """The F-Curve collection of `action` that animates `id_block`, created where needed."""
    if not has_slots(action):
        return action.fcurves
    return _channelbag(action, _slot(action, id_block)).fcurves


def assign_action(id_block, action) -> None:
    """Make `action` animate `id_block`, through its slot for that data-block where slots exist."""
    anim = id_block.animation_data or id_block.animation_data_create()
    slot = _slot(action, id_block) if has_slots(action) else None
    anim.action = action
    if slot is not None:
        anim.action_slot = slot


def assigned_action(id_block):
    """The action animating `id_block`, or None."""
    anim = id_block.animation_data
    return anim.action if anim else None


def push_to_nla(id_block, action, frame_start: float):
    """Put `action` on an NLA track of `id_block` with its first key at `frame_start`, and
    unassign it (like Push Down), so the next line's action does not hide it.

    Lines go on one base track, whose strips hold their ends (Blender's default), so every
    channel stays animated between lines: the NLA sets channels no strip animates to their
    default, which for ShapeKey.value is 1.0 in 5.0. A line overlapping the others goes on a
    track above that plays only over its own frames.
    """
    anim = id_block.animation_data or id_block.animation_data_create()
    if anim.action == action:
        anim.action = None
    first, last = action.frame_range
    end = frame_start + last - first
    ours = [t for t in anim.nla_tracks if t.name.startswith(NLA_TRACK)]
    track = ours[-1] if ours else None
    if track is None or any(
        s.frame_start < end and frame_start < s.frame_end for s in track.strips
    ):
        track = anim.nla_tracks.new()
        track.name = NLA_TRACK
    strip = track.strips.new(action.name, int(frame_start), action)
    strip.frame_start_ui = frame_start  # moves the whole strip to the sub-frame start
    if ours and track != ours[0]:
        strip.extrapolation = "NOTHING"
    if has_slots(action):
        strip.action_slot = _slot(action, id_block)
    return strip


def new_fcurve(collection, data_path: str, index: int = 0, group: str = ""):
    """A new F-Curve in `group` (a bone's channels are grouped under its name in the editors);
    the Action's F-Curves name the group action_group, a 5.0 channelbag's group_name, and a 4.4/4.5
    channelbag's F-Curve is put in its group once made."""
    if not group:
        return collection.new(data_path, index=index)
    params = collection.bl_rna.functions["new"].parameters
    if "group_name" in params:  # 5.0+ channelbag
        return collection.new(data_path, index=index, group_name=group)
    if "action_group" in params:  # the Action's own F-Curves (3.4-4.3, 4.4/4.5's proxy)
        return collection.new(data_path, index=index, action_group=group)
    fcurve = collection.new(data_path, index=index)  # 4.4/4.5 channelbag: group it afterwards
    groups = collection.data.groups
    fcurve.group = groups.get(group) or groups.new(group)
    return fcurve


def read_fcurves(action, id_type: str = "OBJECT") -> list:
    """The F-Curves `action` holds for data-blocks of `id_type` (all of them before 4.4), read
    only: no slot or channelbag is made for it, unlike fcurves()."""
    if not has_slots(action):
        return list(action.fcurves)
    slots = [s for s in action.slots if s.target_id_type in (id_type, "UNSPECIFIED")]
    strips = [strip for layer in action.layers for strip in layer.strips]
    bags = [strip.channelbag(slot) for strip in strips for slot in slots[:1]]
    return [fc for bag in bags if bag is not None for fc in bag.fcurves]


def _slot(action, id_block):
    """The slot of `action` for `id_block`: the assigned one, else one named after it, else new."""
    anim = id_block.animation_data
    if anim and anim.action == action and anim.action_slot:
        return anim.action_slot
    for slot in action.slots:
        if slot.target_id_type == id_block.id_type and slot.name_display == id_block.name:
            return slot
    return action.slots.new(id_type=id_block.id_type, name=id_block.name)


def _channelbag(action, slot):
    """The slot's channelbag on the first keyframe strip (the only one 4.4/5.0 create)."""
    layer = action.layers[0] if action.layers else action.layers.new("Layer")
    strip = layer.strips[0] if layer.strips else layer.strips.new(type="KEYFRAME")
    return strip.channelbag(slot, ensure=True)


def new_grease_pencil(name: str):
    """New Grease Pencil data that an object takes: v3 from 4.3 on, the legacy kind before."""
    return getattr(bpy.data, "grease_pencils_v3", bpy.data.grease_pencils).new(name)


def strips(scene):
    """The scene's top-level sequencer strips, creating the sequence editor if needed."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    return getattr(editor, STRIPS_ATTR)


def add_sound_strip(scene, name: str, filepath: str, frame_start: int, channel: int | None = None):
    """A sound strip `name` at `frame_start`, replacing a strip of that name; a free channel by
    default (the lowest one with no strip overlapping the sound). None, and nothing added, in a
    Blender built without audio (Audaspace), which cannot load or play a sound."""
    if not has_audio():
        return None
    return _add_strip(scene, "new_sound", name, filepath, frame_start, channel)


def has_audio() -> bool:
    """Whether this Blender can make sound strips (the bpy 4.2 module on PyPI is built without)."""
    return getattr(bpy.app.build_options, "audaspace", True)


def add_movie_strip(scene, name: str, filepath: str, frame_start: int, channel: int | None = None):
    """The same for a reference video's picture (its sound goes in a sound strip)."""
    return _add_strip(scene, "new_movie", name, filepath, frame_start, channel)


def _add_strip(scene, kind: str, name: str, filepath: str, frame_start: int, channel):
    collection = strips(scene)
    old = collection.get(name)
    if old is not None:
        collection.remove(old)
    strip = getattr(collection, kind)(name, filepath, channel or MAX_CHANNEL, int(frame_start))
    if channel is None:
        strip.channel = _free_channel(collection, strip)
    return strip


def _free_channel(collection, strip) -> int:
    """The lowest channel where no other strip overlaps `strip`'s frames."""
    start, end = strip.frame_final_start, strip.frame_final_end
    busy = {
        other.channel
        for other in collection
        if other != strip and other.frame_final_start < end and start < other.frame_final_end
    }
    return next(c for c in range(1, MAX_CHANNEL + 1) if c not in busy)
