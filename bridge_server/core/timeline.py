"""The timeline document: the records every stage passes on, and their versioned JSON form.

Times are seconds (floats). Readers ignore unknown fields and refuse a newer major version.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TimelineFormatError

SCHEMA_VERSION = "1.0"


@dataclass
class Word:
    text: str
    start: float
    end: float


@dataclass
class Phoneme:
    """One phone in IPA; `word` indexes `Timeline.words` (-1 for none, e.g. a pause)."""

    ipa: str
    start: float
    end: float
    word: int = -1
    confidence: float | None = None


@dataclass
class VisemeCue:
    """One held mouth shape of the timeline's viseme set."""

    viseme: str
    start: float
    end: float


@dataclass
class Curve:
    """Weights 0..1 of one channel as keys [(time, value)], interpolated linearly or held."""

    channel: str
    keys: list[tuple[float, float]]
    interpolation: str = "linear"  # or "constant" (holds mode)

    def sample(self, times: Any) -> Any:
        """Values at `times` (seconds, array-like), as a numpy array."""
        t = np.asarray(times, dtype=float)
        kt = np.array([k[0] for k in self.keys], dtype=float)
        kv = np.array([k[1] for k in self.keys], dtype=float)
        if self.interpolation == "constant":
            idx = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, len(kt) - 1)
            return kv[idx]
        return np.interp(t, kt, kv)


@dataclass
class Landmarks:
    """Tracked lip points per video frame (filled by the video stage)."""

    fps: float
    names: list[str]
    frames: list[list[list[float]]]  # frame -> point -> [x, y(, z)]


@dataclass
class Warning:
    """Something the user should know about the result; `count` folds repeats."""

    code: str
    message: str
    count: int = 1


@dataclass
class Timeline:
    duration: float
    fps: float
    viseme_set: str
    source: dict[str, Any] = field(default_factory=dict)
    words: list[Word] = field(default_factory=list)
    phonemes: list[Phoneme] = field(default_factory=list)
    visemes: list[VisemeCue] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    curve_settings: dict[str, Any] = field(default_factory=dict)
    landmarks: Landmarks | None = None
    mouth_controls: list[Curve] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION

    def warn(self, code: str, message: str) -> None:
        """Add a warning, folding repeats of the same code and message into a count."""
        for w in self.warnings:
            if w.code == code and w.message == message:
                w.count += 1
                return
        self.warnings.append(Warning(code, message))

    def curve(self, channel: str) -> Curve:
        return next(c for c in self.curves if c.channel == channel)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        order = ["schema_version", "source", "duration", "fps", "viseme_set"]
        return {k: d[k] for k in order} | {k: v for k, v in d.items() if k not in order}

    def to_json(self) -> str:
        """JSON with one record per line: readable, diff-friendly and still compact."""
        lines = []
        for key, value in self.to_dict().items():
            if isinstance(value, list) and value:
                items = ",\n  ".join(_compact(v) for v in value)
                lines.append(f'"{key}": [\n  {items}\n ]')
            else:
                lines.append(f'"{key}": {_compact(value)}')
        return "{\n " + ",\n ".join(lines) + "\n}\n"

    @classmethod
    def from_dict(cls, d: Any) -> Timeline:
        return _read_timeline(d)

    @classmethod
    def from_json(cls, text: str, where: str = "timeline") -> Timeline:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise TimelineFormatError(
                f"{where} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                "give a file written by 'lipsync say --timeline' or 'lipsync bake --timeline'."
            ) from None
        return _read_timeline(d, where)

    @classmethod
    def load(cls, path: str | Path) -> Timeline:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TimelineFormatError(
                f"timeline file {p} does not exist; check the path."
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise TimelineFormatError(f"cannot read timeline file {p}: {e}") from None
        return cls.from_json(text, str(p))


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


# --- reading, with messages that say what is wrong and where ---------------------------


def _read_timeline(d: Any, where: str = "timeline") -> Timeline:
    if not isinstance(d, dict):
        raise _bad(where, "the document", "must be a JSON object")
    version = d.get("schema_version")
    if not isinstance(version, str) or not version.split(".")[0].isdigit():
        raise _bad(where, "schema_version", f"is missing or not like '1.0' (got {version!r})")
    major = int(version.split(".")[0])
    if major > int(SCHEMA_VERSION.split(".")[0]):
        raise TimelineFormatError(
            f"{where} uses timeline schema {version}, newer than this version understands "
            f"({SCHEMA_VERSION}); update lipsync-bridge (and the Blender add-on) to read it."
        )
    lists = {
        "words": Word,
        "phonemes": Phoneme,
        "visemes": VisemeCue,
        "warnings": Warning,
    }
    kw: dict[str, Any] = {
        "duration": _number(d, "duration", where),
        "fps": _number(d, "fps", where),
        "viseme_set": _string(d, "viseme_set", where),
        "source": d.get("source") or {},
        "schema_version": version,
        "curve_settings": d.get("curve_settings") or {},
    }
    for name, cls in lists.items():
        kw[name] = [
            _record(cls, item, f"{name}[{i}]", where)
            for i, item in enumerate(_list(d, name, where))
        ]
    kw["curves"] = [
        _curve(c, f"curves[{i}]", where) for i, c in enumerate(_list(d, "curves", where))
    ]
    kw["mouth_controls"] = [
        _curve(c, f"mouth_controls[{i}]", where)
        for i, c in enumerate(_list(d, "mouth_controls", where))
    ]
    if d.get("landmarks") is not None:
        kw["landmarks"] = _record(Landmarks, d["landmarks"], "landmarks", where)
    return Timeline(**kw)


def _bad(where: str, path: str, problem: str) -> TimelineFormatError:
    return TimelineFormatError(
        f"{where}: {path} {problem}; regenerate the file with lipsync or fix that field."
    )


def _number(d: dict, key: str, where: str, path: str = "") -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _bad(where, path + key, f"must be a number (got {v!r})")
    return float(v)


def _string(d: dict, key: str, where: str) -> str:
    v = d.get(key)
    if not isinstance(v, str):
        raise _bad(where, key, f"must be a string (got {v!r})")
    return v


def _list(d: dict, key: str, where: str) -> list:
    v = d.get(key, [])
    if not isinstance(v, list):
        raise _bad(where, key, "must be a list")
    return v


def _record(cls: type, item: Any, path: str, where: str) -> Any:
    if not isinstance(item, dict):
        raise _bad(where, path, "must be an object")
    known = {f.name for f in fields(cls)}
    try:
        rec = cls(**{k: v for k, v in item.items() if k in known})
    except TypeError as e:
        missing = str(e).split("argument")[-1].strip(": ")
        raise _bad(where, path, f"lacks a field: {missing}") from None
    for f in fields(cls):
        v = getattr(rec, f.name)
        if f.type in ("float", "float | None") and v is not None:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _bad(where, f"{path}.{f.name}", f"must be a number (got {v!r})")
            setattr(rec, f.name, float(v))
    if hasattr(rec, "start") and rec.end < rec.start:
        raise _bad(where, path, f"ends ({rec.end}) before it starts ({rec.start})")
    return rec


def _curve(item: Any, path: str, where: str) -> Curve:
    if not isinstance(item, dict):
        raise _bad(where, path, "must be an object")
    channel = item.get("channel")
    keys = item.get("keys")
    if not isinstance(channel, str):
        raise _bad(where, f"{path}.channel", "must be a string")
    if not isinstance(keys, list) or not keys:
        raise _bad(where, f"{path}.keys", "must be a non-empty list of [time, value] pairs")
    out = []
    for j, k in enumerate(keys):
        if (
            not isinstance(k, (list, tuple))
            or len(k) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in k)
        ):
            raise _bad(
                where, f"{path}.keys[{j}]", f"must be a [time, value] pair of numbers (got {k!r})"
            )
        out.append((float(k[0]), float(k[1])))
    interp = item.get("interpolation", "linear")
    if interp not in ("linear", "constant"):
        raise _bad(
            where, f"{path}.interpolation", f"must be 'linear' or 'constant' (got {interp!r})"
        )
    return Curve(channel, out, interp)


def viseme_at(cues, names: list[str], times: np.ndarray) -> np.ndarray:
    """The index (in `names`) of the cue that holds at each time; rest where none does."""
    if not cues:
        return np.zeros(len(times), np.int16)  # names[0] is the set's rest shape (sil)
    index = np.array([names.index(c.viseme) for c in cues], np.int16)
    ends = np.array([c.end for c in cues])
    held = np.searchsorted([c.start for c in cues], times, side="right") - 1
    inside = (held >= 0) & (times < ends[np.maximum(held, 0)])
    return np.where(inside, index[np.maximum(held, 0)], 0).astype(np.int16)
