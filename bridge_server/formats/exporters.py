"""Timeline -> the files animation tools read. Pure functions; each writer returns the content.

The Rhubarb layouts copy Rhubarb Lip Sync 1.13 (`rhubarb/src/exporters/*.cpp`) byte for byte,
so anything that reads Rhubarb's output reads ours. The Moho switch file and the Papagayo
project follow Papagayo (LostMoho/Papagayo `lipsyncdoc.cpp`, papagayo-ng `LipsyncDoc.py`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.animate import held_cues
from ..core.errors import InputError
from ..core.timeline import Timeline
from ..core.visemes import load_set

# The idle mouth of each set a format needs; gaps between cues are filled with it.
_REST = {"rhubarb": "X", "preston_blair": "rest"}


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    description: str
    viseme_set: str | None  # the viseme set the file's shape names come from
    writer: Callable[[Timeline, str], str]  # (timeline, sound_file) -> file content


def export(timeline: Timeline, fmt: str, *, sound_file: str = "") -> str:
    """The file content of `timeline` in format `fmt`; `sound_file` defaults to the source audio."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}.")
    return FORMATS[fmt].writer(timeline, sound_file or str(timeline.source.get("audio", "")))


def format_for_path(path: str | Path) -> str | None:
    """The format a file name asks for (by suffix), or None when the suffix is not ours."""
    name = Path(path).name.lower()
    if name.endswith(("-rhubarb.json", ".rhubarb.json")):
        return "rhubarb-json"
    return {f.suffix: f.name for f in FORMATS.values()}.get(Path(name).suffix)


# --- cues on a grid ----------------------------------------------------------------------


def _steps(timeline: Timeline, vset: str, rate: float) -> list[tuple[str, int, int]]:
    """Cues as (shape, start, end) in steps of 1/rate s: contiguous from 0 to the end, gaps
    filled with rest, repeats joined and empty steps dropped, as Rhubarb's own timeline is."""
    n, rest = round(timeline.duration * rate), _REST[vset]
    out: list[tuple[str, int, int]] = []

    def add(shape: str, s: int, e: int) -> None:
        if e <= s:
            return
        if out and out[-1][0] == shape:
            s = out.pop()[1]
        out.append((shape, s, e))

    pos = 0
    for cue in sorted(held_cues(timeline, load_set(vset)), key=lambda c: c.start):
        s = min(max(round(cue.start * rate), pos), n)
        e = min(round(cue.end * rate), n)
        add(rest, pos, s)
        add(cue.viseme, s, e)
        pos = max(pos, e)
    add(rest, pos, n)
    return out


# --- Rhubarb (times in centiseconds, printed with 2 decimals like formatDuration) --------


def _cs(steps: int) -> str:
    return f"{steps / 100:.2f}"


def _rhubarb_tsv(t: Timeline, sound_file: str) -> str:
    # Each shape with its start time, then the idle mouth at the end time (TsvExporter.cpp).
    steps = _steps(t, "rhubarb", 100)
    lines = [f"{_cs(s)}\t{shape}\n" for shape, s, _ in steps]
    return "".join(lines) + f"{_cs(round(t.duration * 100))}\tX\n"


def _rhubarb_cues(t: Timeline) -> list[tuple[str, int, int]]:
    # JSON and XML always hold one cue: a zero-length X when empty (dummyShapeIfEmpty).
    return _steps(t, "rhubarb", 100) or [("X", 0, 0)]


def _rhubarb_json(t: Timeline, sound_file: str) -> str:
    # JsonExporter.cpp writes this by hand; json.dumps escapes like its escapeJsonString
    # (\uXXXX per UTF-16 unit) except that it also escapes DEL.
    cues = ",\n".join(
        f'    {{ "start": {_cs(s)}, "end": {_cs(e)}, "value": "{shape}" }}'
        for shape, s, e in _rhubarb_cues(t)
    )
    return (
        "{\n"
        '  "metadata": {\n'
        f'    "soundFile": {json.dumps(sound_file)},\n'
        f'    "duration": {_cs(round(t.duration * 100))}\n'
        "  },\n"
        '  "mouthCues": [\n'
        f"{cues}\n"
        "  ]\n"
        "}\n"
    )


def _xml_text(s: str) -> str:
    # boost::property_tree encode_char_entities; an all-space text keeps its first space.
    if s and not s.strip(" "):
        return "&#32;" + s[1:]
    for ch, ent in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&apos;")):
        s = s.replace(ch, ent)
    return s


def _rhubarb_xml(t: Timeline, sound_file: str) -> str:
    # XmlExporter.cpp via boost write_xml with 2-space indent; an empty element is <x/>.
    sound = f"<soundFile>{_xml_text(sound_file)}</soundFile>" if sound_file else "<soundFile/>"
    cues = "".join(
        f'    <mouthCue start="{_cs(s)}" end="{_cs(e)}">{_xml_text(shape)}</mouthCue>\n'
        for shape, s, e in _rhubarb_cues(t)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        "<rhubarbResult>\n"
        "  <metadata>\n"
        f"    {sound}\n"
        f"    <duration>{_cs(round(t.duration * 100))}</duration>\n"
        "  </metadata>\n"
        "  <mouthCues>\n"
        f"{cues}"
        "  </mouthCues>\n"
        "</rhubarbResult>\n"
    )


# --- Moho switch data and Papagayo project (Preston Blair shapes, frame numbers) ----------


def _moho_dat(t: Timeline, sound_file: str) -> str:
    # Moho frame = frame index + 1 (Moho's frame 0 is the setup pose): every shape change,
    # then rest on the frame after the last one (Rhubarb DatExporter.cpp, papagayo-ng
    # LipsyncDoc.py export). Steps are whole frames, so no two keys share a frame.
    lines = [f"{s + 1} {shape}\n" for shape, s, _ in _steps(t, "preston_blair", t.fps)]
    return "MohoSwitch1\n" + "".join(lines) + f"{round(t.duration * t.fps) + 1} rest\n"


def _papagayo_pgo(t: Timeline, sound_file: str) -> str:
    # Papagayo reads fps and every frame with int(), so frames are counted at the whole fps
    # written in the file (29.97 -> 30): times stay right in seconds. Word lines are split on
    # spaces, so a word's spaces become "_". Frames are 0-based; a word's end frame is its
    # last frame; a phoneme is a frame where its shape starts, and phoneme frames rise
    # strictly inside their word (Papagayo's RepositionWord/RepositionPhoneme rules); each
    # phoneme is named by its own Preston Blair viseme, as Papagayo's breakdown names it.

    blair = load_set("preston_blair")
    fps = max(1, round(t.fps))
    lines: list[str] = []
    first_start = prev_end = -1
    for i, w in enumerate(t.words):
        start = max(round(w.start * fps), prev_end + 1)
        end = max(round(w.end * fps) - 1, start)
        phones = sorted((p for p in t.phonemes if p.word == i), key=lambda p: p.start)
        # The first phoneme (or "rest" for a word without any) holds from the word's start.
        keys = [(start, blair.viseme_for(phones[0].ipa) if phones else blair.rest)]
        for p in phones[1:]:
            f = max(round(p.start * fps), keys[-1][0] + 1)
            if f <= end:
                keys.append((f, blair.viseme_for(p.ipa)))
        lines.append(f"\t\t\t{_one_word(w.text)} {start} {end} {len(keys)}\n")
        lines += [f"\t\t\t\t{f} {shape}\n" for f, shape in keys]
        first_start = start if first_start < 0 else first_start
        prev_end = end

    text = " ".join(_one_word(w.text) for w in t.words)
    head = f"lipsync version 1\n{sound_file}\n{fps}\n{round(t.duration * fps)}\n1\n\tVoice 1\n"
    if not t.words:
        return head + "\t\n\t0\n"
    phrase = f"\t\t{text}\n\t\t{first_start}\n\t\t{prev_end}\n\t\t{len(t.words)}\n"
    return head + f"\t{text}\n\t1\n" + phrase + "".join(lines)


def _one_word(text: str) -> str:
    return "_".join(text.split()) or "_"


# --- sampled curves and the timeline itself -----------------------------------------------


def _csv(t: Timeline, sound_file: str) -> str:
    # One row per frame 0..N so a spreadsheet or game engine can read weights without
    # interpolating; "+ 0.0" turns -0.0 into 0.0 so no "-0.0000" appears.

    times = np.arange(round(t.duration * t.fps) + 1) / t.fps
    columns = [c.sample(times) for c in t.curves]
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["frame", "time", *(c.channel for c in t.curves)])
    for k, time in enumerate(times):
        out.writerow([k, f"{time:.4f}", *(f"{round(float(v[k]), 4) + 0.0:.4f}" for v in columns)])
    return buf.getvalue()


def _timeline_json(t: Timeline, sound_file: str) -> str:
    return t.to_json()


FORMATS: dict[str, Format] = {
    f.name: f
    for f in [
        Format("timeline-json", ".json", "the full timeline document", None, _timeline_json),
        Format("rhubarb-tsv", ".tsv", "Rhubarb Lip Sync TSV", "rhubarb", _rhubarb_tsv),
        Format("rhubarb-json", ".rhubarb.json", "Rhubarb Lip Sync JSON", "rhubarb", _rhubarb_json),
        Format("rhubarb-xml", ".xml", "Rhubarb Lip Sync XML", "rhubarb", _rhubarb_xml),
        Format("moho-dat", ".dat", "Moho switch layer data", "preston_blair", _moho_dat),
        Format("papagayo-pgo", ".pgo", "Papagayo project", "preston_blair", _papagayo_pgo),
        Format("csv", ".csv", "curve weights sampled at every frame", None, _csv),
    ]
}
