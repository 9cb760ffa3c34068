"""Reference timings from other tools and corpora, read into one neutral record.

Praat TextGrid, TIMIT .phn/.wrd, GRID .align, Rhubarb TSV/JSON/XML, Moho .dat, Papagayo .pgo
and our own timeline JSON. Times become seconds; labels stay as the file spells them, with the
alphabet (phones) or viseme set (cues) they belong to.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..core.errors import InputError, TimelineFormatError
from ..core.phonemes import normalize, read_tsv
from ..core.timeline import Timeline
from ..core.visemes import load_set

FORMATS = (
    "Praat TextGrid (.TextGrid), TIMIT .phn/.wrd, GRID .align, Rhubarb TSV/JSON/XML, "
    "Moho .dat, Papagayo .pgo, lipsync timeline JSON"
)
TIMIT_RATE_HZ = 16000
GRID_RATE_HZ = 25000
SILENCE_WORDS = frozenset({"", "sil", "sp", "spn", "<sil>", "h#", "pau", "<s>", "</s>"})
_PHONE_TIERS = ("phone", "segment", "phn")
_WORD_TIERS = ("word", "wrd", "ortho")


class Span(NamedTuple):
    label: str
    start: float
    end: float


@dataclass
class Reference:
    """What a reference file says was spoken, and when (seconds)."""

    path: str
    format: str
    phones: list[Span] = field(default_factory=list)
    words: list[Span] = field(default_factory=list)
    cues: list[Span] = field(default_factory=list)
    alphabet: str = ""  # of the phones: timit, arpabet or ipa
    viseme_set: str = ""  # of the cues: rhubarb, preston_blair, or a timeline's set
    duration: float = 0.0

    def end(self) -> float:
        spans = self.phones + self.words + self.cues
        return max([self.duration] + [s.end for s in spans])


def read_reference(path: str | Path, *, fps: float = 24.0) -> Reference:
    """Read any supported reference file (by suffix, JSON by content); `fps` is for Moho .dat."""
    p = Path(path)
    text = _text(p)
    suffix = p.suffix.lower()
    if suffix in _READERS:
        ref = _READERS[suffix](p, text)
    elif suffix == ".dat":
        ref = _moho(p, text, fps)
    elif suffix in (".json", ".tsv", ".txt"):
        ref = _sniff(p, text)
    else:
        raise InputError(
            f"{p}: unknown reference format {suffix or '(no suffix)'!r}; give {FORMATS}."
        )
    if not (ref.phones or ref.words or ref.cues):
        raise InputError(f"{p} holds no phones, words or mouth cues; give a non-empty reference.")
    return ref


def labelled_utterances(folder: str | Path) -> Iterator[tuple[Path, Reference]]:
    """(sound, reference) of each utterance in `folder` (and below) labelled by people: a .wav
    (or TIMIT's own SPHERE .WAV) beside its TIMIT .phn (with its .wrd) or its TextGrid with phone
    and word tiers. Labels without a sound or without words are skipped."""
    found = (q for q in Path(folder).rglob("*") if q.suffix.lower() in (".phn", ".textgrid"))
    for labels in sorted(found):
        sound = next((w for w in (labels.with_suffix(".wav"), labels.with_suffix(".WAV"))
                      if w.is_file()), None)  # fmt: skip
        ref = read_reference(labels) if sound else None
        if ref and ref.phones and ref.words:
            yield sound, ref


def _text(p: Path) -> str:
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read reference {p}: {e.strerror or e}; check the path.") from None
    for bom, codec in (
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
        (b"\xef\xbb\xbf", "utf-8-sig"),
    ):
        if raw.startswith(bom):
            return raw.decode(codec)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{p} is not a text file; give one of: {FORMATS}.") from None


def _bad(p: Path, what: str, problem: str, fix: str) -> InputError:
    return InputError(f"{p}: {what}: {problem}; {fix}.")


# --- TIMIT and GRID: "start end label" lines in samples -----------------------------------


def _columns(p: Path, text: str, rate: float, fix: str) -> list[Span]:
    spans = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cells = line.split(maxsplit=2)
        try:
            start, end = int(cells[0]) / rate, int(cells[1]) / rate
            label = cells[2].strip()
        except (ValueError, IndexError):
            raise _bad(p, f"line {n}", f"{line.strip()!r} is not 'start end label'", fix) from None
        if end < start:
            raise _bad(p, f"line {n}", "ends before it starts", fix)
        spans.append(Span(label, start, end))
    return spans


def _timit(p: Path, text: str) -> Reference:
    """A .phn or .wrd file, with its sibling (same name, other suffix) when present."""
    ref = Reference(str(p), "timit", alphabet="timit")
    for suffix in (".phn", ".wrd"):
        q = p if p.suffix.lower() == suffix else _sibling(p, suffix)
        if q is None:
            continue
        spans = _columns(q, text if q == p else _text(q), TIMIT_RATE_HZ, "TIMIT lines are "
                         "'start_sample end_sample label' at 16 kHz")  # fmt: skip
        if suffix == ".phn":
            ref.phones = spans
        else:
            ref.words = [s for s in spans if s.label.lower() not in SILENCE_WORDS]
    return ref


def _sibling(p: Path, suffix: str) -> Path | None:
    for s in (suffix, suffix.upper()):
        if p.with_suffix(s).is_file():
            return p.with_suffix(s)
    return None


def _grid(p: Path, text: str) -> Reference:
    spans = _columns(p, text, GRID_RATE_HZ, "GRID lines are 'start end word' in 1/25000 s")
    words = [s for s in spans if s.label.lower() not in SILENCE_WORDS]
    return Reference(str(p), "grid", words=words, duration=max((s.end for s in spans), default=0))


# --- Rhubarb, Moho, Papagayo: mouth cues ---------------------------------------------------

_RHUBARB_FIX = "give a file written by Rhubarb Lip Sync or 'lipsync export'"


def _rhubarb_tsv(p: Path, text: str) -> Reference:
    """Each line a shape and the time it starts; the last line's time ends the cues."""
    keys = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cells = line.split()
        try:
            keys.append((float(cells[0]), cells[1]))
        except (ValueError, IndexError):
            raise _bad(
                p, f"line {n}", f"{line.strip()!r} is not 'time<TAB>shape'", _RHUBARB_FIX
            ) from None
    cues = [Span(s, t, t2) for (t, s), (t2, _) in zip(keys, keys[1:]) if t2 > t]
    return _cue_ref(p, "rhubarb-tsv", cues, "rhubarb", keys[-1][0] if keys else 0.0, keys)


def _rhubarb_json(p: Path, data: dict) -> Reference:
    cues = []
    for i, c in enumerate(data["mouthCues"]):
        try:
            cues.append(Span(str(c["value"]), float(c["start"]), float(c["end"])))
        except (KeyError, TypeError, ValueError):
            raise _bad(p, f"mouthCues[{i}]", "needs start, end and value", _RHUBARB_FIX) from None
    duration = _float(data.get("metadata", {}).get("duration"))
    return _cue_ref(p, "rhubarb-json", cues, "rhubarb", duration)


def _rhubarb_xml(p: Path, text: str) -> Reference:
    try:
        root = ET.fromstring(text)
        cues = [
            Span((c.text or "").strip(), float(c.get("start", "")), float(c.get("end", "")))
            for c in root.iter("mouthCue")
        ]
    except (ET.ParseError, ValueError) as e:
        raise _bad(p, "mouthCue", f"cannot be read ({e})", _RHUBARB_FIX) from None
    if root.tag != "rhubarbResult":
        raise _bad(p, "root", f"is <{root.tag}>, not <rhubarbResult>", _RHUBARB_FIX)
    return _cue_ref(p, "rhubarb-xml", cues, "rhubarb", _float(root.findtext("metadata/duration")))


def _moho(p: Path, text: str, fps: float) -> Reference:
    """MohoSwitch1, then 'frame shape' per change; frame 1 is time 0; the last key ends."""
    lines = [x for x in text.splitlines() if x.strip()]
    fix = "give a Moho switch file (MohoSwitch1, then 'frame shape' lines)"
    if not lines or lines[0].strip() != "MohoSwitch1":
        raise _bad(p, "line 1", "is not 'MohoSwitch1'", fix)
    keys = []
    for n, line in enumerate(lines[1:], 2):
        cells = line.split()
        try:
            keys.append(((int(cells[0]) - 1) / fps, cells[1]))
        except (ValueError, IndexError):
            raise _bad(p, f"line {n}", f"{line.strip()!r} is not 'frame shape'", fix) from None
    cues = [Span(s, t, t2) for (t, s), (t2, _) in zip(keys, keys[1:]) if t2 > t]
    return _cue_ref(p, "moho-dat", cues, "preston_blair", keys[-1][0] if keys else 0.0, keys)


def _papagayo(p: Path, text: str) -> Reference:
    """Words with their frames, and per word the frames where each phoneme starts."""
    fix = "give a project saved by Papagayo or 'lipsync export --format papagayo-pgo'"
    lines = text.splitlines()
    if not lines or not lines[0].startswith("lipsync version"):
        raise _bad(p, "line 1", "is not 'lipsync version 1'", fix)
    try:
        fps = float(lines[2])
        words, keys = _pgo_words(lines, fps)
    except (ValueError, IndexError):
        raise _bad(p, "header", "fps or a word line cannot be read", fix) from None
    ref = Reference(
        str(p), "papagayo-pgo", words=[w for w, _ in words], duration=int(lines[3]) / fps
    )
    return _pgo_labels(ref, words, keys)


def _pgo_words(
    lines: list[str], fps: float
) -> tuple[list[tuple[Span, int]], list[tuple[str, float, int]]]:
    """(word, index) and (phoneme, start time, word index) from the tab-indented body."""
    words: list[tuple[Span, int]] = []
    keys: list[tuple[str, float, int]] = []
    for line in lines[5:]:
        depth, cells = len(line) - len(line.lstrip("\t")), line.split()
        if depth == 3 and len(cells) == 4:
            start, end = int(cells[1]) / fps, (int(cells[2]) + 1) / fps
            words.append((Span(cells[0].replace("_", " "), start, end), len(words)))
        elif depth == 4 and len(cells) == 2:
            keys.append((cells[1], int(cells[0]) / fps, len(words) - 1))
    return words, keys


def _pgo_labels(ref: Reference, words: list, keys: list) -> Reference:
    """Each phoneme holds to the next one in its word, or to the word's end."""
    spans = []
    for k, (label, start, w) in enumerate(keys):
        nxt = keys[k + 1] if k + 1 < len(keys) else None
        end = nxt[1] if nxt and nxt[2] == w else words[w][0].end
        spans.append(Span(label, start, max(start, end)))
    shapes = _viseme_names("preston_blair")
    if all(s.label in shapes for s in spans):
        ref.cues, ref.viseme_set = _fill(spans, "rest", ref.duration), "preston_blair"
    else:  # papagayo-ng's CMU phoneme set: the labels are ARPAbet phones
        ref.phones, ref.alphabet = spans, "arpabet"
    return ref


def _cue_ref(
    p: Path, fmt: str, cues: list[Span], vset: str, duration: float, keys: list | None = None
) -> Reference:
    """Cues of `vset`; every shape named (in `keys` too, for files of keys) must be of it."""
    shapes = _viseme_names(vset)
    unknown = sorted(({c.label for c in cues} | {k[1] for k in keys or []}) - shapes)
    if unknown:
        raise _bad(p, "shapes", f"{', '.join(unknown)} not of the {vset} set ({', '.join(sorted(shapes))})",
                   "give the tool's own shape names")  # fmt: skip
    return Reference(str(p), fmt, cues=cues, viseme_set=vset, duration=duration)


def _fill(cues: list[Span], rest: str, duration: float) -> list[Span]:
    """Cues contiguous from 0 to the end, gaps held by the rest shape."""
    out, pos = [], 0.0
    for c in sorted(cues, key=lambda c: c.start):
        if c.start > pos:
            out.append(Span(rest, pos, c.start))
        out.append(c)
        pos = max(pos, c.end)
    if duration > pos:
        out.append(Span(rest, pos, duration))
    return out


def _viseme_names(vset: str) -> set[str]:
    return set(load_set(vset).visemes)


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


# --- JSON and TSV by content ------------------------------------------------------------------


def _sniff(p: Path, text: str) -> Reference:
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        if p.suffix.lower() == ".json":
            raise _bad(p, "content", "is not a JSON object", f"give one of: {FORMATS}")
        return _rhubarb_tsv(p, text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _bad(
            p, f"line {e.lineno}", f"is not valid JSON ({e.msg})", f"give one of: {FORMATS}"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("mouthCues"), list):
        return _rhubarb_json(p, data)
    if isinstance(data, dict) and "schema_version" in data:
        return _timeline(p, text)
    raise _bad(p, "content", "is neither Rhubarb JSON (mouthCues) nor a lipsync timeline",
               f"give one of: {FORMATS}")  # fmt: skip


def _timeline(p: Path, text: str) -> Reference:
    try:
        t = Timeline.from_json(text, str(p))
    except TimelineFormatError as e:
        raise InputError(str(e)) from None
    return Reference(
        str(p),
        "timeline-json",
        phones=[Span(x.ipa, x.start, x.end) for x in t.phonemes],
        words=[Span(w.text, w.start, w.end) for w in t.words],
        cues=[Span(c.viseme, c.start, c.end) for c in t.visemes],
        alphabet="ipa",
        viseme_set=t.viseme_set,
        duration=t.duration,
    )


# --- Praat TextGrid (long and short text formats) ------------------------------------------

_TOKEN = re.compile(
    r'"((?:[^"]|"")*)"|(<exists>|<absent>)|\[\s*\d+\s*\]|(?<![\w.])([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(?![\w.])'
)
_GRID_FIX = "save it from Praat as a text file (long or short format)"


def _textgrid(p: Path, text: str) -> Reference:
    tokens = _grid_tokens(text)
    if tokens[:2] != ["ooTextFile", "TextGrid"]:
        raise _bad(p, "header", "is not a Praat TextGrid text file", _GRID_FIX)
    try:
        tiers, duration = _tiers(tokens)
    except (IndexError, ValueError, TypeError):
        raise _bad(p, "tiers", "end early or hold a value of the wrong kind", _GRID_FIX) from None
    phones, words = _pick_tiers(tiers)
    ref = Reference(str(p), "textgrid", duration=duration)
    if phones is not None:
        ref.phones = [s for s in phones if s.label.strip()]
        ref.alphabet = _alphabet([s.label for s in ref.phones])
    if words is not None:
        ref.words = [s for s in words if s.label.strip().lower() not in SILENCE_WORDS]
    return ref


def _grid_tokens(text: str) -> list:
    """Strings, flags and numbers in order; keys (xmin =, item [1]:) and comments dropped."""
    out: list = []
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            out.append(m.group(1).replace('""', '"'))
        elif m.group(2):
            out.append(m.group(2))
        elif m.group(3):
            out.append(float(m.group(3)))
    return out


def _tiers(tokens: list) -> tuple[list[tuple[str, list[Span]]], float]:
    """[(name, spans)] of the interval tiers (point tiers are skipped), and xmax."""
    duration, i = float(tokens[3]), 4
    if tokens[i] == "<absent>":
        return [], duration
    count, i = int(tokens[i + 1]), i + 2
    tiers = []
    for _ in range(count):
        kind, name, n = tokens[i], tokens[i + 1], int(tokens[i + 4])
        i += 5
        width = 3 if kind == "IntervalTier" else 2
        items = [tokens[i + k * width : i + (k + 1) * width] for k in range(n)]
        i += n * width
        if kind == "IntervalTier":
            tiers.append((name, [Span(str(t).strip(), float(a), float(b)) for a, b, t in items]))
    return tiers, duration


def _pick_tiers(tiers: list) -> tuple[list[Span] | None, list[Span] | None]:
    """Phone and word tiers by name, else by content (phone symbols or not)."""

    def named(keys: tuple[str, ...]) -> list[Span] | None:
        return next((s for name, s in tiers if any(k in name.lower() for k in keys)), None)

    phones, words = named(_PHONE_TIERS), named(_WORD_TIERS)
    rest = [s for _, s in tiers if s is not phones and s is not words]
    for spans in rest:
        if phones is None and _phone_like(spans):
            phones = spans
        elif words is None and not _phone_like(spans):
            words = spans
    return phones, words


def _phone_like(spans: list[Span]) -> bool:
    labels = [s.label for s in spans if s.label.strip()]
    return (
        bool(labels)
        and _alphabet(labels) != ""
        and sum(len(x) <= 4 for x in labels) > 0.9 * len(labels)
    )


def _alphabet(labels: list[str]) -> str:
    """timit or arpabet when every label is one (stress digits aside), else ipa when the
    labels are IPA phonemes, else ''."""
    _, rows = read_tsv("timit39.tsv")
    timit = {r[0] for r in rows}
    bare = [x.strip().lower().rstrip("012") for x in labels if x.strip()]
    if all(x in timit for x in bare):
        upper = any(x.strip().isupper() or x.strip()[-1:].isdigit() for x in labels if x.strip())
        return "arpabet" if upper else "timit"

    known = sum(normalize(x)[1] is None for x in labels if x.strip())
    return "ipa" if known >= 0.9 * len(bare) else ""


_READERS = {
    ".textgrid": _textgrid,
    ".phn": _timit,
    ".wrd": _timit,
    ".align": _grid,
    ".pgo": _papagayo,
    ".xml": _rhubarb_xml,
}


def word_key(text: str) -> str:
    """A word as compared: lower case, letters and apostrophes only."""
    return re.sub(r"[^\w']+", "", text.lower())


def label_ipa(label: str, alphabet: str) -> str:
    """A reference phone label in IPA; silence labels are "_"."""
    if label.strip().lower() in SILENCE_WORDS:
        return "_"
    return normalize(label, alphabet if alphabet in ("timit", "arpabet") else "ipa")[0]
