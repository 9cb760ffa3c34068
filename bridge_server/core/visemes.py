"""Viseme sets: named mouth shapes, the output channels each one drives, and IPA -> viseme tables.

A set is one JSON file in data/visemes/ plus its column in data/phonemes.tsv, so adding a set
touches no code.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .phonemes import DATA, phoneme_table, read_tsv

SET_DIR = DATA / "visemes"
ROLES = ("rest", "closed", "teeth")
_ALIASES = {
    "oculus": "oculus15",
    "openxr": "oculus15",
    "ovr": "oculus15",
    "meta": "oculus15",
    "papagayo": "preston_blair",
    "preston": "preston_blair",
    "prestonblair": "preston_blair",
    "vrm": "vrm5",
}


@dataclass(frozen=True)
class Viseme:
    name: str
    sounds: str  # example sounds, for people choosing and checking shapes
    channels: dict[str, float]  # output channel -> weight 0..1; {} drives nothing


@dataclass(frozen=True)
class VisemeSet:
    name: str
    title: str
    visemes: dict[str, Viseme]
    roles: dict[str, str]  # rest / closed (p b m) / teeth (f v) -> viseme name
    table: dict[str, str]  # normalised IPA -> viseme name
    cue_rules: str = ""  # whose rules make its held cues: "" ours, "rhubarb" Rhubarb's

    @property
    def channels(self) -> list[str]:
        """Output channel names, in order of first appearance over the visemes."""
        return list(dict.fromkeys(ch for v in self.visemes.values() for ch in v.channels))

    def viseme_for(self, ipa: str) -> str:
        """The viseme of a normalised phoneme; silence and unknown phonemes rest."""
        return self.table.get(ipa, self.rest)

    @property
    def rest(self) -> str:
        return self.roles["rest"]

    @property
    def closed(self) -> str:
        return self.roles["closed"]

    @property
    def teeth(self) -> str:
        return self.roles["teeth"]


def available_sets() -> list[str]:
    """Sets with both a JSON file and a phonemes.tsv column, in the table's column order."""
    header, _ = read_tsv("phonemes.tsv")
    return [name for name in header[2:] if (SET_DIR / f"{name}.json").is_file()]


def load_set(name: str) -> VisemeSet:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in available_sets():
        choices = ", ".join(available_sets())
        raise InputError(f"unknown viseme set {name!r}; choose one of: {choices}")
    return _load(key)


@functools.cache
def _load(name: str) -> VisemeSet:
    column = {ipa: row[name] for ipa, row in phoneme_table().items()}
    return parse_set(SET_DIR / f"{name}.json", column)


def parse_set(path: Path, column: dict[str, str]) -> VisemeSet:
    """Build and check a set from its JSON file and its phonemes.tsv column (IPA -> viseme)."""

    def bad(entry: str, problem: str) -> ValueError:
        return ValueError(f"{path}: {entry}: {problem}")

    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("name") != path.stem:
        raise bad("name", f"must be {path.stem!r}, the file's name")
    visemes = {}
    for vname, spec in data["visemes"].items():
        channels = {str(k): float(w) for k, w in spec.get("channels", {vname: 1.0}).items()}
        if not all(0.0 <= w <= 1.0 for w in channels.values()):
            raise bad(f"viseme {vname!r}", f"channel weights must be within 0..1: {channels}")
        if not spec.get("sounds"):
            raise bad(f"viseme {vname!r}", "needs 'sounds' (example sounds)")
        visemes[vname] = Viseme(vname, spec["sounds"], channels)
    roles = dict(data["roles"])
    for role in ROLES:
        if roles.get(role) not in visemes:
            raise bad(f"roles.{role}", f"{roles.get(role)!r} is not a viseme of this set")
    for ipa, vname in column.items():
        if vname not in visemes:
            raise bad(f"phoneme {ipa!r}", f"phonemes.tsv maps it to unknown viseme {vname!r}")
    rules = data.get("cue_rules", "")
    if rules not in ("", "rhubarb"):
        raise bad("cue_rules", f"{rules!r} is not '' or 'rhubarb'")
    return VisemeSet(data["name"], data["title"], visemes, roles, dict(column), rules)
