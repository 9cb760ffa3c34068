"""2D target: a Grease Pencil object with one layer per mouth shape, each named after its shape
(mouth_A, MBP, ...) like the layers of a Moho switch layer. One layer shows at a time: stepped
keys on the layers' Hide, following the line's held mouth shapes (the timeline's cues).

The keys go on the Grease Pencil data (its layers), so the object's own animation stays. The
same code keys Blender 3.4's Grease Pencil (GPencil layers, named by `info`) and 5.0's Grease
Pencil v3 (layers named by `name`); both animate `layers["..."].hide`.
"""

from __future__ import annotations

from . import keyframes, mix
from .request import BakeError

TYPES = ("GPENCIL", "GREASEPENCIL")  # Object.type before 4.3, and of Grease Pencil v3
ONE_PER_SHAPE = "Rhubarb, Preston Blair or Oculus 15"  # sets whose channels are their cues


def check(obj) -> None:
    if not layer_names(obj):
        raise BakeError(
            f"{obj.name!r} has no layers: draw each mouth shape on a layer of its own named "
            "after it (mouth_A, mouth_B... or MBP, AI...)."
        )


def layer_names(obj) -> list[str]:
    return [_name(layer) for layer in obj.data.layers]


def write(obj, timeline: dict, chosen: dict[str, str], *, fps, frame_offset, action_name):
    """Key which layer shows, cue by cue, in action `action_name` (keyframes.write's rules)."""
    layers = {_name(layer): layer for layer in obj.data.layers}
    drawn = {c: name for c, name in chosen.items() if name in layers}
    cues = timeline.get("visemes") or []
    changes = mix.held(cues, drawn, fps, frame_offset)
    if not changes:
        shapes = ", ".join(mix.undrawn(cues, drawn)) or "none"
        raise ValueError(
            f"none of the line's mouth shapes ({shapes}) has a layer of {obj.name!r}: name a "
            "layer after each mouth shape or pick one per row of the Mapping list (2D mouths "
            f"need a viseme set with one drawing per shape: {ONE_PER_SHAPE})."
        )
    shown = sorted({name for _, name in changes})
    channels = [_hide(layers[name], name, changes) for name in sorted(set(drawn.values()))]
    action, previous, start, end = keyframes.write(obj.data, channels, action_name=action_name)
    return keyframes.Written(
        action=action,
        channels=shown,
        missing=mix.undrawn(cues, drawn),
        keys=sum(len(c.co) // 2 for c in channels),
        frame_start=start,
        frame_end=end,
        previous=previous,
        noun="drawings",
    )


def _name(layer) -> str:
    return getattr(layer, "name", None) or layer.info  # 3.4's GPencilLayer is named by info


def _hide(layer, name: str, changes: list[tuple]) -> keyframes.Channel:
    """Stepped keys on the layer's Hide: shown (0) while its drawing is the one shown."""
    keys = [(frame, 0.0 if shown == name else 1.0) for frame, shown in changes]
    kept = [k for i, k in enumerate(keys) if i in (0, len(keys) - 1) or k[1] != keys[i - 1][1]]
    return keyframes.Channel(layer.path_from_id("hide"), keyframes.flat(kept), "constant")
