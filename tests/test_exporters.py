"""Exporters: exact file contents for small hand-made timelines, and real Rhubarb cues."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bridge_server.core.errors import InputError
from bridge_server.core.timeline import Curve, Phoneme, Timeline, VisemeCue, Word
from bridge_server.formats.exporters import FORMATS, export, format_for_path

KITTENS = Path(__file__).resolve().parents[2] / "shared/data/librivox_kittens"

# "hi you" at 24 fps: two words, four phones, cues on frame boundaries as the hold stage
# makes them (frames 3, 5, 12, 14, 18 of 24).
WORDS = [Word("hi", 0.125, 0.5), Word("you", 0.5, 0.75)]
PHONEMES = [
    Phoneme("h", 0.125, 0.2083, 0),
    Phoneme("aɪ", 0.2083, 0.5, 0),
    Phoneme("j", 0.5, 0.5833, 1),
    Phoneme("u", 0.5833, 0.75, 1),
]


def rhubarb_hi() -> Timeline:
    cues = [("X", 0.0, 0.125), ("B", 0.125, 0.2083), ("D", 0.2083, 0.5), ("B", 0.5, 0.5833),
            ("F", 0.5833, 0.75), ("X", 0.75, 1.0)]  # fmt: skip
    return Timeline(
        duration=1.0,
        fps=24.0,
        viseme_set="rhubarb",
        source={"audio": "hi.wav"},
        words=WORDS,
        phonemes=PHONEMES,
        visemes=[VisemeCue(*c) for c in cues],
        curves=[Curve("jaw", [(0.0, 0.0), (0.25, 1.0), (0.5, 0.0)]), Curve("lips", [(0.0, 0.5)])],
    )


def preston_hi(fps: float = 24.0) -> Timeline:
    cues = [("rest", 0.0, 0.125), ("etc", 0.125, 0.2083), ("AI", 0.2083, 0.5),
            ("etc", 0.5, 0.5833), ("U", 0.5833, 0.75), ("rest", 0.75, 1.0)]  # fmt: skip
    return Timeline(
        duration=1.0,
        fps=fps,
        viseme_set="preston_blair",
        words=WORDS,
        phonemes=PHONEMES,
        visemes=[VisemeCue(*c) for c in cues],
    )


def silent() -> Timeline:
    return Timeline(duration=0.5, fps=24.0, viseme_set="oculus")


# --- Rhubarb -----------------------------------------------------------------------------


def test_rhubarb_tsv_lists_starts_then_idle_mouth_at_end() -> None:
    assert export(rhubarb_hi(), "rhubarb-tsv") == (
        "0.00\tX\n0.12\tB\n0.21\tD\n0.50\tB\n0.58\tF\n0.75\tX\n1.00\tX\n"
    )


def test_rhubarb_json_layout() -> None:
    assert export(rhubarb_hi(), "rhubarb-json") == (
        "{\n"
        '  "metadata": {\n'
        '    "soundFile": "hi.wav",\n'
        '    "duration": 1.00\n'
        "  },\n"
        '  "mouthCues": [\n'
        '    { "start": 0.00, "end": 0.12, "value": "X" },\n'
        '    { "start": 0.12, "end": 0.21, "value": "B" },\n'
        '    { "start": 0.21, "end": 0.50, "value": "D" },\n'
        '    { "start": 0.50, "end": 0.58, "value": "B" },\n'
        '    { "start": 0.58, "end": 0.75, "value": "F" },\n'
        '    { "start": 0.75, "end": 1.00, "value": "X" }\n'
        "  ]\n"
        "}\n"
    )


def test_rhubarb_xml_layout() -> None:
    assert export(rhubarb_hi(), "rhubarb-xml", sound_file="a&b.wav") == (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        "<rhubarbResult>\n"
        "  <metadata>\n"
        "    <soundFile>a&amp;b.wav</soundFile>\n"
        "    <duration>1.00</duration>\n"
        "  </metadata>\n"
        "  <mouthCues>\n"
        '    <mouthCue start="0.00" end="0.12">X</mouthCue>\n'
        '    <mouthCue start="0.12" end="0.21">B</mouthCue>\n'
        '    <mouthCue start="0.21" end="0.50">D</mouthCue>\n'
        '    <mouthCue start="0.50" end="0.58">B</mouthCue>\n'
        '    <mouthCue start="0.58" end="0.75">F</mouthCue>\n'
        '    <mouthCue start="0.75" end="1.00">X</mouthCue>\n'
        "  </mouthCues>\n"
        "</rhubarbResult>\n"
    )


def test_rhubarb_json_escapes_sound_file_like_rhubarb() -> None:
    text = export(rhubarb_hi(), "rhubarb-json", sound_file='C:\\av\\"hé".wav')
    assert '"soundFile": "C:\\\\av\\\\\\"h\\u00e9\\".wav",' in text
    assert json.loads(text)["metadata"]["soundFile"] == 'C:\\av\\"hé".wav'


def test_rhubarb_fills_gaps_with_x_and_joins_repeats() -> None:
    t = Timeline(1.0, 24.0, "rhubarb", visemes=[VisemeCue("B", 0.2, 0.3), VisemeCue("B", 0.3, 0.4),
                                                VisemeCue("C", 0.5, 0.6)])  # fmt: skip
    assert export(t, "rhubarb-tsv") == "0.00\tX\n0.20\tB\n0.40\tX\n0.50\tC\n0.60\tX\n1.00\tX\n"


@pytest.mark.parametrize("name", ["en_male_electricity", "threelittlekittens_01_rountreesmith"])
def test_rhubarb_json_and_tsv_reproduce_real_rhubarb_cues(name: str) -> None:
    expected = json.loads((KITTENS / f"{name}-expected.json").read_text())
    cues = [(c["value"], float(c["start"]), float(c["end"])) for c in expected["mouthCues"]]
    duration = float(expected["metadata"]["duration"])
    t = Timeline(duration, 24.0, "rhubarb", visemes=[VisemeCue(*c) for c in cues])

    ours = json.loads(export(t, "rhubarb-json", sound_file=expected["metadata"]["soundFile"]))
    assert ours.keys() == expected.keys()
    assert ours["metadata"] == {"soundFile": f"{name}.ogg", "duration": duration}
    assert [(c["value"], c["start"], c["end"]) for c in ours["mouthCues"]] == cues
    assert all(c.keys() == {"start", "end", "value"} for c in ours["mouthCues"])

    tsv = [line.split("\t") for line in export(t, "rhubarb-tsv").splitlines()]
    assert [(v, float(s)) for s, v in tsv[:-1]] == [(v, s) for v, s, _ in cues]
    assert tsv[-1] == [f"{duration:.2f}", "X"]


def test_rhubarb_xml_parses_with_the_same_cues() -> None:
    root = ET.fromstring(export(rhubarb_hi(), "rhubarb-xml"))
    assert root.findtext("metadata/soundFile") == "hi.wav"
    cues = [(c.text, c.get("start"), c.get("end")) for c in root.iter("mouthCue")]
    assert cues[0] == ("X", "0.00", "0.12") and cues[-1] == ("X", "0.75", "1.00")


# --- Moho and Papagayo ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fps, expected",
    [
        (24.0, "MohoSwitch1\n1 rest\n4 etc\n6 AI\n13 etc\n15 U\n19 rest\n25 rest\n"),
        # 29.97: the same times land on frames round(t * 29.97) + 1.
        (29.97, "MohoSwitch1\n1 rest\n5 etc\n7 AI\n16 etc\n18 U\n23 rest\n31 rest\n"),
    ],
    ids=["24fps", "29.97fps"],
)
def test_moho_dat_frames_are_one_based(fps: float, expected: str) -> None:
    assert export(preston_hi(fps), "moho-dat") == expected


def test_papagayo_pgo_layout() -> None:
    assert export(preston_hi(), "papagayo-pgo", sound_file="hi.wav") == (
        "lipsync version 1\nhi.wav\n24\n24\n1\n"
        "\tVoice 1\n\thi you\n\t1\n"
        "\t\thi you\n\t\t3\n\t\t17\n\t\t2\n"
        "\t\t\thi 3 11 2\n\t\t\t\t3 etc\n\t\t\t\t5 AI\n"
        "\t\t\tyou 12 17 2\n\t\t\t\t12 etc\n\t\t\t\t14 U\n"
    )


def read_pgo(text: str) -> dict:
    """The reading steps of papagayo-ng's LipsyncDoc.open / LipSyncObject.open, in short."""
    lines = iter(text.splitlines())
    next(lines)
    doc = {"sound": next(lines).strip(), "fps": int(next(lines)), "frames": int(next(lines))}
    doc["voices"] = []
    for _ in range(int(next(lines))):
        voice = {"name": next(lines).strip(), "text": next(lines).strip(), "phrases": []}
        for _ in range(int(next(lines))):
            phrase = {"text": next(lines).strip(), "start": int(next(lines)),
                      "end": int(next(lines)), "words": []}  # fmt: skip
            for _ in range(int(next(lines))):
                text_, start, end, count = next(lines).split()
                phones = [next(lines).split() for _ in range(int(count))]
                phrase["words"].append(
                    (text_, int(start), int(end), [(int(f), p) for f, p in phones])
                )
            voice["phrases"].append(phrase)
        doc["voices"].append(voice)
    assert next(lines, None) is None
    return doc


def test_papagayo_pgo_reads_back_at_whole_fps() -> None:
    t = preston_hi(29.97)
    t.words = [Word("hi there", 0.125, 0.5), Word("", 0.5, 0.75)]
    doc = read_pgo(export(t, "papagayo-pgo"))
    assert (doc["fps"], doc["frames"]) == (30, 30)
    words = doc["voices"][0]["phrases"][0]["words"]
    assert words == [
        ("hi_there", 4, 14, [(4, "etc"), (6, "AI")]),
        ("_", 15, 21, [(15, "etc"), (17, "U")]),
    ]


def test_papagayo_phoneme_frames_rise_inside_their_word() -> None:
    t = preston_hi()
    # three phones squeezed into one frame: only one fits, later ones move to later frames
    t.phonemes = [Phoneme("s", 0.125, 0.13, 0), Phoneme("t", 0.13, 0.135, 0),
                  Phoneme("aɪ", 0.135, 0.5, 0), Phoneme("u", 0.5, 0.75, 1)]  # fmt: skip
    words = read_pgo(export(t, "papagayo-pgo"))["voices"][0]["phrases"][0]["words"]
    assert words[0][3] == [(3, "etc"), (4, "etc"), (5, "AI")]
    assert words[1][3] == [(12, "U")]  # each phoneme named by its own viseme: u is U


# --- csv, timeline json, the table -------------------------------------------------------


def test_csv_samples_every_frame() -> None:
    rows = list(csv.reader(io.StringIO(export(rhubarb_hi(), "csv"))))
    assert rows[0] == ["frame", "time", "jaw", "lips"]
    assert len(rows) == 1 + 25  # frames 0..24 of a 1 s timeline at 24 fps
    assert rows[1:4] == [["0", "0.0000", "0.0000", "0.5000"], ["1", "0.0417", "0.1667", "0.5000"],
                         ["2", "0.0833", "0.3333", "0.5000"]]  # fmt: skip
    assert rows[-1] == ["24", "1.0000", "0.0000", "0.5000"]


def test_csv_row_count_at_fractional_fps() -> None:
    t = rhubarb_hi()
    t.fps, t.duration = 29.97, 2.0
    rows = export(t, "csv").splitlines()
    assert len(rows) == 1 + 61 and rows[-1].startswith("60,2.0020,")


def test_timeline_json_round_trips() -> None:
    t = rhubarb_hi()
    assert Timeline.from_json(export(t, "timeline-json")) == t


# the files a timeline with nothing said must still give: all rest, valid for their readers
SILENT = {
    "rhubarb-tsv": "0.00\tX\n0.50\tX\n",
    "rhubarb-json": '{\n  "metadata": {\n    "soundFile": "",\n    "duration": 0.50\n  },\n'
    '  "mouthCues": [\n    { "start": 0.00, "end": 0.50, "value": "X" }\n  ]\n}\n',
    "rhubarb-xml": '<?xml version="1.0" encoding="utf-8"?>\n<rhubarbResult>\n  <metadata>\n'
    "    <soundFile/>\n    <duration>0.50</duration>\n  </metadata>\n  <mouthCues>\n"
    '    <mouthCue start="0.00" end="0.50">X</mouthCue>\n  </mouthCues>\n</rhubarbResult>\n',
    "moho-dat": "MohoSwitch1\n1 rest\n13 rest\n",
    "papagayo-pgo": "lipsync version 1\n\n24\n12\n1\n\tVoice 1\n\t\n\t0\n",
    "csv": "frame,time\n" + "".join(f"{k},{k / 24:.4f}\n" for k in range(13)),
}


@pytest.mark.parametrize("fmt", SILENT)
def test_silent_timeline_gives_valid_rest_files(fmt: str) -> None:
    assert export(silent(), fmt) == SILENT[fmt]


def test_zero_length_timeline_gets_rhubarbs_dummy_cue() -> None:
    t = Timeline(0.0, 24.0, "rhubarb")
    assert json.loads(export(t, "rhubarb-json"))["mouthCues"] == [
        {"start": 0.0, "end": 0.0, "value": "X"}
    ]
    assert export(t, "rhubarb-tsv") == "0.00\tX\n"
    assert read_pgo(export(t, "papagayo-pgo"))["voices"][0]["phrases"] == []


def test_unknown_format_names_the_choices() -> None:
    with pytest.raises(
        InputError, match="unknown format 'x'; choose one of: timeline-json, rhubarb-tsv"
    ):
        export(rhubarb_hi(), "x")


@pytest.mark.parametrize(
    "path, fmt",
    [("out.tsv", "rhubarb-tsv"), ("out.json", "timeline-json"), ("a/out-rhubarb.json", "rhubarb-json"),
     ("OUT.Rhubarb.JSON", "rhubarb-json"), ("out.xml", "rhubarb-xml"), ("out.dat", "moho-dat"),
     ("out.pgo", "papagayo-pgo"), ("out.csv", "csv"), ("out.wav", None), ("out", None)],
)  # fmt: skip
def test_format_for_path(path: str, fmt: str | None) -> None:
    assert format_for_path(path) == fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_suffix_leads_back_to_its_format(fmt: str) -> None:
    assert format_for_path("out" + FORMATS[fmt].suffix) == fmt


# --- cues recomputed from phonemes when the timeline holds another viseme set -------------


@pytest.mark.skipif(
    importlib.util.find_spec("bridge_server.core.curves") is None
    or importlib.util.find_spec("bridge_server.core.visemes") is None,
    reason="bridge_server.core.curves / bridge_server.core.visemes (the hold stage) are not written yet",
)
@pytest.mark.parametrize("fmt, rest", [("rhubarb-tsv", "X"), ("moho-dat", "rest")])
def test_other_viseme_set_is_recomputed_from_phonemes(fmt: str, rest: str) -> None:
    t = rhubarb_hi()
    t.viseme_set, t.visemes = "oculus", [VisemeCue("aa", 0.0, 1.0)]
    lines = export(t, fmt).splitlines()
    shapes = [line.split()[-1] for line in lines if line != "MohoSwitch1"]
    assert shapes[0] == rest and shapes[-1] == rest  # silence before and after "hi you"
    assert "aa" not in shapes and len(set(shapes)) >= 3
