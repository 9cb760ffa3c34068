"""Rig mapping: which of a rig's shape keys each viseme channel drives.

A request names a preset (one JSON file in the top-level rigs/ folder) or sends the rig's own
shape-key names. `match` reads those names, picks the viseme set they stand for and pairs them
with its channels; `apply` hands back a timeline whose curves carry the rig's names, so a client
keys its shape keys without knowing any viseme set. Naming schemes and aliases are data
(data/rig_names.json): a new convention touches no code.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .animate import retarget
from .errors import InputError
from .phonemes import DATA
from .timeline import Curve, Timeline
from .visemes import available_sets, load_set


def _rig_dir() -> Path:
    """The project's top-level rigs/ in a checkout; an installed wheel carries them under
    <prefix>/share/lipsync/rigs (pyproject's data-files)."""
    source = Path(__file__).resolve().parents[2] / "rigs"
    return source if source.is_dir() else Path(sys.prefix) / "share" / "lipsync" / "rigs"


RIG_DIR = _rig_dir()
NAMES_FILE = DATA / "rig_names.json"
_COPY = re.compile(r"\.\d+$")  # Blender's duplicate suffix: AI.001
_NAMESPACE = re.compile(r"[.:|/]")  # vrc.v_aa, blendShape1.jawOpen, head:jawOpen, Body|jawOpen
# The words of a name: an acronym before a capitalised word (MTHOpen), a word (jaw, Open),
# an acronym (MTH), a number, or a run of another script's letters (あ).
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+|[^\W\d_]+")
DEFAULT_SET = "oculus15"  # as the pipeline's default
_LISTED = 8  # names shown in a message before "and N more"
_Found = dict[str, tuple[int, int]]  # channel -> (rank, index of the shape key that drives it)


@dataclass(frozen=True)
class Rig:
    """A preset: the shape key a known kind of rig has for each channel of one viseme set."""

    name: str
    title: str
    viseme_set: str
    shape_keys: dict[str, str]  # channel -> the rig's shape-key name
    about: str = ""

    def mapping(self) -> RigMapping:
        """The preset as a mapping; a preset may leave channels out, and then says which."""
        channels = load_set(self.viseme_set).channels
        return RigMapping(
            viseme_set=self.viseme_set,
            shape_keys=dict(self.shape_keys),
            unmatched_keys=[],
            missing_channels=[c for c in channels if c not in self.shape_keys],
            rig=self.name,
            candidates={self.viseme_set: len(self.shape_keys)},
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RigMapping:
    """Channels of one viseme set paired with a rig's shape keys, and what was left over."""

    viseme_set: str
    shape_keys: dict[str, str]  # channel -> shape key, in the set's channel order
    unmatched_keys: list[str]  # the rig's names that drive nothing (blinks, smiles, Basis ...)
    missing_channels: list[str]  # channels with no shape key: their motion is left out
    rig: str = ""  # the preset's name; "" when matched from a list of names
    candidates: dict[str, int] = field(default_factory=dict)  # set -> channels matched, best first

    @property
    def message(self) -> str:
        """One line for the user: what drives what, and what the caller may want to warn about."""
        total = len(self.shape_keys) + len(self.missing_channels)
        what = f"rig preset {self.rig!r}" if self.rig else "the rig's shape keys"
        parts = [f"{what}: {len(self.shape_keys)} of {total} {self.viseme_set} channels"]
        others = [f"{s} {n}" for s, n in self.candidates.items() if n and s != self.viseme_set]
        if others and not self.rig:
            parts[0] += f" (other sets matched: {', '.join(others)})"
        if self.missing_channels:
            parts.append(f"no shape key for {_listing(self.missing_channels)}")
        if self.unmatched_keys:
            parts.append(f"{len(self.unmatched_keys)} unused: {_listing(self.unmatched_keys)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"message": self.message}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


@dataclass(frozen=True)
class _Naming:
    """data/rig_names.json: how names are reduced to their core, and each set's aliases."""

    markers: frozenset[str]  # words after which the shape's own name follows, wherever they stand
    prefixes: frozenset[str]  # leading words that say nothing about the shape
    sides: dict[str, str]  # last-word abbreviations: l -> left
    aliases: dict[str, dict[str, str]]  # set -> core -> channel


# --- presets --------------------------------------------------------------------------------


def presets() -> list[str]:
    """Names of the rig presets: the JSON files in rigs/."""
    return sorted(p.stem for p in RIG_DIR.glob("*.json"))


def load_preset(name: str) -> Rig:
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in presets():
        raise InputError(
            f"unknown rig preset {name!r}; choose one of: {', '.join(presets())}, "
            "or send the rig's shape-key names instead."
        )
    return parse_rig(RIG_DIR / f"{key}.json")


def parse_rig(path: Path) -> Rig:
    """Read and check one preset file; every problem names the file and the entry."""

    def bad(entry: str, problem: str) -> InputError:
        return InputError(f"{path}: {entry} {problem}; fix the rig preset file.")

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise bad(f"line {e.lineno}, column {e.colno}:", f"is not valid JSON ({e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read rig preset {path}: {e}") from None
    if not isinstance(data, dict):
        raise bad("the document", "must be a JSON object")
    if data.get("name") != path.stem:
        raise bad("name", f"must be {path.stem!r}, the file's name (got {data.get('name')!r})")
    for entry in ("title", "viseme_set"):
        if not isinstance(data.get(entry), str) or not data[entry].strip():
            raise bad(entry, "must be a non-empty string")
    try:
        vset = load_set(data["viseme_set"])
    except InputError as e:
        raise bad("viseme_set", f"names no viseme set ({e})") from None
    return Rig(
        name=data["name"],
        title=data["title"],
        viseme_set=vset.name,
        shape_keys=_preset_keys(data.get("shape_keys"), vset.channels, bad),
        about=str(data.get("about", "")),
    )


def _preset_keys(keys: Any, channels: list[str], bad: Any) -> dict[str, str]:
    """A preset's channel -> shape key table, checked, in the set's channel order."""
    if not isinstance(keys, dict) or not keys:
        raise bad("shape_keys", "must be an object of channel -> shape-key name")
    for channel, key in keys.items():
        if channel not in channels:
            known = ", ".join(channels)
            raise bad(f"shape_keys.{channel}", f"is not a channel of the set: {known}")
        if not isinstance(key, str) or not key:
            raise bad(f"shape_keys.{channel}", f"must be a shape-key name (got {key!r})")
    # One shape key driven by two channels would have its keyframes overwritten.
    repeated = sorted({k for k in keys.values() if list(keys.values()).count(k) > 1})
    if repeated:
        raise bad("shape_keys", f"gives one shape key to several channels: {', '.join(repeated)}")
    return {c: keys[c] for c in channels if c in keys}


# --- matching a rig's own names -------------------------------------------------------------


def match(shape_keys: list[str], viseme_set: str | None = None) -> RigMapping:
    """Pair a rig's shape-key names with the channels of `viseme_set`, or of the set they fit best.

    The best set is the one that drives the most of the rig's shape keys, so a rig's consonant
    shapes are not left idle; its rest shape does not count, because many rigs leave it to the
    basis. Among equals, the set the names cover most completely wins (A I U E O is VRM's five,
    not five of Oculus' fifteen), then the one matched more directly (not by alias), then the
    first in the viseme-set order. Raises InputError for no names, or when no name matches:
    an animation that drives nothing is never what the caller wants, and the message says how
    to name the keys.
    """
    keys = _check_keys(shape_keys)
    sets = [load_set(viseme_set).name] if viseme_set else available_sets()
    naming = _naming()
    parsed = [_parse(k, naming) for k in keys]
    found = {name: _match_set(keys, parsed, name) for name in sets}
    ranked = sorted(sets, key=lambda name: _score(found[name], name), reverse=True)  # stable
    best = ranked[0]
    if not found[best]:
        raise InputError(_nothing_matched(keys, sets))
    channels = load_set(best).channels
    chosen = {ch: keys[found[best][ch][1]] for ch in channels if ch in found[best]}
    used = set(chosen.values())
    return RigMapping(
        viseme_set=best,
        shape_keys=chosen,
        unmatched_keys=[k for k in keys if k not in used],
        missing_channels=[ch for ch in channels if ch not in chosen],
        candidates={name: len(found[name]) for name in ranked},
    )


def resolve(
    rig: str | None = None,
    shape_keys: list[str] | None = None,
    viseme_set: str | None = None,
    chosen: dict[str, str] | None = None,
) -> RigMapping:
    """The mapping a request asks for: a preset by name, the caller's own choice of shape key
    per channel, or the rig's own shape-key names (matched).

    `viseme_set` only steers matching names; a preset brings its own set.
    """
    if rig and (shape_keys is not None or chosen is not None):
        raise InputError("give either a rig preset or the rig's shape-key names, not both.")
    if chosen is not None:
        return explicit(chosen, viseme_set, shape_keys)
    if rig:
        preset = load_preset(rig)
        if viseme_set and load_set(viseme_set).name != preset.viseme_set:
            raise InputError(
                f"rig preset {preset.name!r} uses the {preset.viseme_set} viseme set, "
                f"not {viseme_set}; leave the viseme set out or choose another preset."
            )
        return preset.mapping()
    if shape_keys is None:
        raise InputError(
            f"name a rig preset ({', '.join(presets())}) or send the rig's shape-key names."
        )
    return match(shape_keys, viseme_set)


def explicit(
    chosen: dict[str, str], viseme_set: str | None = None, shape_keys: list[str] | None = None
) -> RigMapping:
    """The caller's channel -> shape key pairs (a user's corrected mapping), as they are:
    every channel must be one of the set's; channels paired with "" drive nothing."""
    vset = load_set(viseme_set or DEFAULT_SET)
    channels = vset.channels
    unknown = [c for c in chosen if c not in channels]
    if unknown:
        raise InputError(
            f"mapping: {_listing(unknown)} not in viseme set {vset.name!r}; "
            f"its channels are {', '.join(channels)} (send visemes with the mapping)."
        )
    keys = {c: chosen[c] for c in channels if chosen.get(c)}
    if not keys:
        raise InputError("mapping: no channel has a shape key; pair at least one.")
    used = set(keys.values())
    return RigMapping(
        viseme_set=vset.name,
        shape_keys=keys,
        unmatched_keys=[k for k in shape_keys or [] if k not in used],
        missing_channels=[c for c in channels if c not in keys],
    )


def normalize(name: str) -> str:
    """The core of a shape-key name, the part that says which shape it is.

    'vrc.v_AA' -> 'aa', 'Viseme-aa' -> 'aa', 'Fcl_MTH_A' -> 'a', 'MouthA' -> 'a',
    'blendShape1.jawOpen' -> 'jawopen', 'MouthPress_L' -> 'pressleft' (see data/rig_names.json).
    """
    return _parse(name, _naming())[1]


def _parse(name: str, naming: _Naming) -> tuple[str, str]:
    """(family, core): the family is what was cut off ('vrc v', 'fcl mth'), the naming scheme."""
    *spaces, name = _NAMESPACE.split(_COPY.sub("", name.strip()))
    words = [w.lower() for w in _WORD.findall(name)]
    cut = max((i for i, w in enumerate(words[:-1]) if w in naming.markers), default=-1)
    dropped, words = words[: cut + 1], words[cut + 1 :]
    while (n := _prefix_length(words, naming.prefixes)) > 0:
        dropped, words = dropped + words[:n], words[n:]
    if len(words) > 1 and words[-1] in naming.sides:
        words[-1] = naming.sides[words[-1]]  # alone, 'L' is a shape (Preston Blair), not a side
    family = " ".join([s.lower() for s in spaces] + dropped)
    return family, "".join(words)


def _prefix_length(words: list[str], prefixes: frozenset[str]) -> int:
    """How many leading words spell a prefix ('ar' 'kit' is arkit), always leaving one word."""
    return next((n for n in range(len(words) - 1, 0, -1) if "".join(words[:n]) in prefixes), 0)


def _check_keys(shape_keys: Any) -> list[str]:
    """The names as a list without repeats; a request's JSON may hold anything."""
    if not isinstance(shape_keys, (list, tuple)):
        raise InputError("shape keys must be a list of names.")
    if not shape_keys:
        raise InputError(
            "no shape keys given; send the rig's shape-key names, or name a rig preset: "
            f"{', '.join(presets())}."
        )
    wrong = [k for k in shape_keys if not isinstance(k, str)]
    if wrong:
        raise InputError(f"shape-key names must be strings (got {wrong[0]!r}).")
    return list(dict.fromkeys(shape_keys))


def _match_set(keys: list[str], parsed: list[tuple[str, str]], set_name: str) -> _Found:
    """channel -> (rank, index of its key); rank 0 same name, 1 same core, 2 alias.

    Where several keys fit a channel, a direct match beats an alias; then the key whose naming
    scheme fits the most channels, so a VRoid model made into a VRChat avatar is driven through
    vrc.v_* alone rather than a mix; then the channel's own name, then the earlier key.
    """
    by_core = _channel_cores(set_name)
    aliases = _naming().aliases.get(set_name, {})
    fits: dict[str, list[tuple[int, int]]] = {}
    for i, (key, (_, core)) in enumerate(zip(keys, parsed)):
        if core in by_core:
            channel = by_core[core]
            rank = 0 if key == channel else 1
        elif core in aliases:
            channel, rank = aliases[core], 2
        else:
            continue
        fits.setdefault(channel, []).append((rank, i))
    family = Counter(parsed[i][0] for found in fits.values() for _, i in found)

    def preference(fit: tuple[int, int]) -> tuple[bool, int, int, int]:
        rank, i = fit
        return rank == 2, -family[parsed[i][0]], rank, i

    return {channel: min(found, key=preference) for channel, found in fits.items()}


def _score(found: _Found, set_name: str) -> tuple[int, float, int, int]:
    """Shapes driven besides rest, their share of the set's, all channels matched, direct ones."""
    vset = load_set(set_name)
    rest = vset.visemes[vset.rest].channels
    moving = [ch for ch in vset.channels if ch not in rest]
    driven = sum(ch in found for ch in moving)
    direct = sum(rank < 2 for rank, _ in found.values())
    return driven, driven / len(moving), len(found), direct


def _nothing_matched(keys: list[str], sets: list[str]) -> str:
    if len(sets) == 1:
        where = f"a channel of the {sets[0]} set ({', '.join(load_set(sets[0]).channels)})"
    else:
        where = f"a viseme channel of any set ({', '.join(sets)})"
    return (
        f"none of the {len(keys)} shape keys ({_listing(keys)}) is {where}; name them like "
        "vrc.v_aa, viseme_aa, Fcl_MTH_A, jawOpen, mouth_A or MBP, "
        f"or name a rig preset: {', '.join(presets())}."
    )


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


@functools.cache
def _channel_cores(set_name: str) -> dict[str, str]:
    channels = load_set(set_name).channels
    cores = {normalize(ch): ch for ch in channels}
    if len(cores) != len(channels):
        raise ValueError(f"{NAMES_FILE}: channels of {set_name} share a core: {channels}")
    return cores


@functools.cache
def _naming() -> _Naming:
    """Load and check data/rig_names.json; its mistakes are the project's, so ValueError."""
    data = json.loads(NAMES_FILE.read_text(encoding="utf-8"))
    naming = _Naming(
        markers=frozenset(data["markers"]),
        prefixes=frozenset(data["prefixes"]),
        sides=dict(data["sides"]),
        aliases={s: dict(a) for s, a in data["aliases"].items()},
    )
    for set_name, aliases in naming.aliases.items():
        channels = load_set(set_name).channels
        for alias, channel in aliases.items():
            where = f"{NAMES_FILE}: aliases.{set_name}.{alias}"
            if channel not in channels:
                raise ValueError(f"{where}: {channel!r} is not a channel of {set_name}")
            core = _parse(alias, naming)[1]
            if not alias or core != alias:
                raise ValueError(f"{where}: write the alias as its core, {core!r}")
    return naming


# --- applying a mapping ---------------------------------------------------------------------


def apply(timeline: Timeline, mapping: RigMapping) -> Timeline:
    """A copy of `timeline` whose curves are named after the rig's shape keys.

    A timeline made for another viseme set is first re-animated for the mapping's set (from its
    phonemes, with its curve settings). Curves of channels without a shape key are left out and,
    where they move, a 'rig' warning says so. Words, phonemes and cues are shared, not copied.
    """
    if timeline.viseme_set != mapping.viseme_set:
        timeline = retarget(timeline, mapping.viseme_set)
    names = mapping.shape_keys
    curves = [
        Curve(names[c.channel], list(c.keys), c.interpolation)
        for c in timeline.curves
        if c.channel in names
    ]
    lost = [c.channel for c in timeline.curves if c.channel not in names and _moves(c)]
    out = replace(timeline, curves=curves, warnings=[replace(w) for w in timeline.warnings])
    if lost:
        out.warn(
            "rig",
            f"the rig has no shape key for the {mapping.viseme_set} channels "
            f"{', '.join(lost)}; their motion is left out.",
        )
    return out


def _moves(curve: Curve) -> bool:
    return any(value != 0.0 for _, value in curve.keys)
