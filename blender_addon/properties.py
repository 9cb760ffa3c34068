"""What the user sets: the line to bake (per scene) and the rig mapping (per object, saved in
the .blend so a corrected mapping is kept)."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from . import options

SOURCES = [
    ("AUDIO", "Audio File", "a recording on disk", "FILE_SOUND", 0),
    ("STRIP", "Sound Strip", "a sound strip in the sequencer; keys line up with it", "SEQUENCE", 1),
    ("TEXT", "Text", "type a line: a built-in voice speaks it", "FONT_DATA", 2),
    (
        "VIDEO",
        "Reference Video",
        "a video of someone saying the line (its sound is used)",
        "FILE_MOVIE",
        3,
    ),
    (
        "LIPS",
        "Script to Video",
        "time the script to the lips in a video whose sound is missing, noisy or in another "
        "language (the sound is not used)",
        "VIEWZOOM",
        4,
    ),
]
# labels for the bridge's names (options.json); a name not here (new in the bridge) shows as is
ENGINE_LABELS = {
    "auto": ("Auto", "the script if given, otherwise Whisper; the best available"),
    "whisper": ("Whisper", "speech recognition, then alignment"),
    "phoneloop": ("Phone Loop", "pocketsphinx phones without words (fast, English)"),
    "allosaurus": ("Allosaurus", "phones in any language"),
}
VOICE_LABELS = {
    "espeak": ("eSpeak NG", "fast, many languages"),
    "piper": ("Piper", "natural voice"),
}
VISEME_LABELS = {
    "oculus15": ("Oculus 15", ""),
    "rhubarb": ("Rhubarb A-H, X", ""),
    "preston_blair": ("Preston Blair", ""),
    "vrm5": ("VRM A I U E O", ""),
    "arkit": ("ARKit", ""),
}
ENGINES = options.enum_items(options.engines("audio"), ENGINE_LABELS)
VOICES = options.enum_items(options.engines("text"), VOICE_LABELS)
VISEME_SETS = [("AUTO", "From Rig", "the set that matches the shape keys")] + options.enum_items(
    options.viseme_sets(), VISEME_LABELS
)
LABELS = {"intensity": "Intensity", "smoothing": "Smoothing", "holds": "Holds", "lead": "Lead",
          "max_error": "Max Error", "motion": "Motion", "rhubarb_rules": "Rhubarb Rules"}  # fmt: skip
# finer steps (hundredths) and three decimals where the range is small: seconds, weights
SHOWN = {"lead": {"step": 1, "precision": 3}, "max_error": {"step": 1, "precision": 3}}


def animation(name: str):
    """The property for the bridge's animation option `name`: default, range and description
    from options.json, the label from LABELS."""
    args = options.property_args(name) | SHOWN.get(name, {})
    if "items" in args:
        return EnumProperty(name=LABELS.get(name, name.title()), **args)
    kind = BoolProperty if isinstance(args["default"], bool) else FloatProperty
    return kind(name=LABELS.get(name, name.replace("_", " ").title()), **args)


class LipsyncChannel(bpy.types.PropertyGroup):
    channel: StringProperty(name="Channel", description="a mouth shape of the viseme set")
    shape_key: StringProperty(name="Shape Key", description="the shape key it drives; empty: none")


class LipsyncRig(bpy.types.PropertyGroup):
    viseme_set: StringProperty(name="Viseme Set", description="the set the channels belong to")
    mapping: CollectionProperty(type=LipsyncChannel)
    active: IntProperty()
    message: StringProperty(description="what the last detection found")
    # armatures: the jaw bone turns with the jaw's opening (armature.py)
    jaw_bone: StringProperty(
        name="Jaw Bone", description="the bone that opens the jaw; empty: one named like jaw"
    )
    jaw_axis: EnumProperty(
        name="Jaw Axis",
        items=[(a, a, f"the jaw bone turns about its own {a} axis") for a in "XYZ"],
        default="X",
    )
    jaw_angle: FloatProperty(
        name="Jaw Angle",
        description="how far the jaw turns on the widest vowel, the way that lowers the chin "
        "(negative: the other way; 0: only the poses move the jaw)",
        default=0.3490658503988659,  # 20 degrees
        subtype="ANGLE",
    )


class LipsyncSettings(bpy.types.PropertyGroup):
    source: EnumProperty(name="Source", items=SOURCES, default="AUDIO")
    audio_path: StringProperty(name="Audio", subtype="FILE_PATH")
    strip: StringProperty(name="Strip", description="name of the sound strip")
    text: StringProperty(name="Text", description="the line to speak")
    voice_engine: EnumProperty(name="Voice", items=VOICES, default=VOICES[0][0])
    voice: StringProperty(name="Voice Name", description="e.g. en-us, en-gb, de; empty: default")
    video_path: StringProperty(name="Video", subtype="FILE_PATH")
    video_weight: FloatProperty(
        name="Follow Video",
        default=0.5,
        min=0.0,
        max=1.0,
        description="how much the mouth's size and shape follow the face in the video (0: the "
        "sound alone; the timing and the closures always come from the sound)",
    )
    show_video: BoolProperty(
        name="Add Movie Strip", default=True, description="put the video in the sequencer"
    )
    script: StringProperty(
        name="Script",
        description="what is said, for exact timing (empty: a sidecar .txt beside the audio, "
        "or recognised)",
    )
    lang: StringProperty(name="Language", description="e.g. en, de, cs; empty: detected")
    engine: EnumProperty(name="Engine", items=ENGINES, default=ENGINES[0][0])
    viseme_set: EnumProperty(name="Visemes", items=VISEME_SETS, default="AUTO")
    # the bridge's animation options (options.ANIMATION), sent under these names
    intensity: animation("intensity")
    smoothing: animation("smoothing")
    holds: animation("holds")
    lead: animation("lead")
    max_error: animation("max_error")
    motion: animation("motion")
    rhubarb_rules: animation("rhubarb_rules")
    show_advanced: BoolProperty(
        name="Advanced",
        description="show the lead, the keyframe reduction (Max Error) and Rhubarb Rules",
    )
    frame_offset: IntProperty(
        name="Offset", description="frames from the scene start (or the strip)"
    )
    add_strip: BoolProperty(
        name="Add Sound Strip", default=True, description="put the sound in the sequencer"
    )
    # Check Sync's last result: the video it measured, how late its sound is, why unsure
    sync_video: StringProperty(subtype="FILE_PATH")
    sync_ms: FloatProperty(name="Sound Offset", description="+: the sound is late (ms)")
    sync_reason: StringProperty(description="why the check is unsure; empty: it is not")
    # set while baking
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    percent: IntProperty(  # the progress bar in 3.x, which has no UILayout.progress
        name="Progress", subtype="PERCENTAGE", min=0, max=100,
        get=lambda self: round(self.progress * 100), set=lambda self, value: None,
    )  # fmt: skip
    stage: StringProperty()
    running: BoolProperty()
    cancel: BoolProperty()


classes = (LipsyncChannel, LipsyncRig, LipsyncSettings)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.lipsync = PointerProperty(type=LipsyncSettings)
    bpy.types.Object.lipsync = PointerProperty(type=LipsyncRig)


def unregister() -> None:
    del bpy.types.Scene.lipsync
    del bpy.types.Object.lipsync
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
