"""The bridge's choices as the add-on ships them: options.json, a snapshot of
bridge_server.pipeline.choices() (refresh it with `python blender_addon/build.py --options`).
No bpy: properties.py builds its animation properties and enums from it, request.py sends the
animation options under the same names, and plain Python tests read it."""

from __future__ import annotations

import json
from pathlib import Path

PATH = Path(__file__).resolve().with_name("options.json")
# the bridge's animation options the add-on offers, under the bridge's names (properties.py
# makes one property each; request.py sends each as the field of that name)
ANIMATION = ("intensity", "smoothing", "holds", "lead", "max_error", "motion", "rhubarb_rules")


def load(path: Path = PATH) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


SNAPSHOT = load()


def option(name: str, snapshot: dict = SNAPSHOT) -> dict:
    """One animation option: name, default, min, max (None when unbounded) and help."""
    for o in snapshot["animation"]:
        if o["name"] == name:
            return o
    raise KeyError(f"the bridge has no animation option {name!r}: refresh options.json "
                   "(python blender_addon/build.py --options) and rename it in the add-on")  # fmt: skip


def property_args(name: str, snapshot: dict = SNAPSHOT) -> dict:
    """Keyword arguments for the Blender property of the option: default, min, max and
    description (no min/max for a flag or an unbounded value; items for a choice)."""
    o = option(name, snapshot)
    args = {"default": o["default"], "description": o.get("help", "")}
    if o.get("choices"):  # an enum: its items, each labelled as the word itself
        return args | {"items": enum_items(o["choices"], {})}
    if not isinstance(o["default"], bool):
        args |= {k: o[k] for k in ("min", "max") if o.get(k) is not None}
    return args


def enum_items(names: list[str], labels: dict[str, tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(identifier, label, description) per name; a name without a label (new in the bridge)
    shows as itself."""
    return [(n, *labels.get(n, (n.replace("_", " ").title(), ""))) for n in names]


def engines(kind: str, snapshot: dict = SNAPSHOT) -> list[str]:
    """The bridge's engines for an input: "audio" (recognition) or "text" (speech)."""
    return list(snapshot["engines"][kind])


def viseme_sets(snapshot: dict = SNAPSHOT) -> list[str]:
    return list(snapshot["viseme_sets"])
