"""Viseme sets: data files are complete and consistent, and the tables map as documented."""

import json

import pytest

from bridge_server.core.errors import InputError
from bridge_server.core.phonemes import known_phonemes
from bridge_server.core.visemes import SET_DIR, VisemeSet, available_sets, load_set, parse_set

SETS = ["oculus15", "rhubarb", "preston_blair", "vrm5", "arkit"]
VRM5_VISEMES = ["aa", "ih", "ou", "ee", "oh", "rest", "closed", "teeth", "dental", "alveolar"]
VRM5_VISEMES += ["lateral", "sibilant", "postalveolar", "velar", "rhotic", "schwa"]


def test_available_sets():
    assert available_sets() == SETS
    assert sorted(p.stem for p in SET_DIR.glob("*.json")) == sorted(SETS)


@pytest.mark.parametrize("name", SETS)
def test_set_is_consistent(name):
    visemes = load_set(name)
    assert isinstance(visemes, VisemeSet)
    assert visemes.name == name
    assert set(visemes.roles) == {"rest", "closed", "teeth"}
    assert {visemes.rest, visemes.closed, visemes.teeth} <= set(visemes.visemes)
    for viseme in visemes.visemes.values():
        assert viseme.sounds
        assert all(0.0 <= w <= 1.0 for w in viseme.channels.values()), viseme
    assert set(visemes.table) == known_phonemes()
    assert set(visemes.table.values()) <= set(visemes.visemes)


@pytest.mark.parametrize("name", SETS)
def test_lip_contacts_map_to_their_roles(name):
    visemes = load_set(name)
    assert [visemes.viseme_for(p) for p in ("p", "b", "m")] == [visemes.closed] * 3
    assert [visemes.viseme_for(p) for p in ("f", "v")] == [visemes.teeth] * 2
    assert visemes.viseme_for("_") == visemes.rest
    assert visemes.viseme_for("not-a-phoneme") == visemes.rest


@pytest.mark.parametrize(
    ("name", "visemes", "roles"),
    [
        ("oculus15", "sil PP FF TH DD kk CH SS nn RR aa E ih oh ou", "sil PP FF"),
        ("rhubarb", "X A B C D E F G H", "X A G"),
        ("preston_blair", "rest MBP FV AI E O U WQ L etc", "rest MBP FV"),
        ("vrm5", " ".join(VRM5_VISEMES), "rest closed teeth"),
        ("arkit", "sil PP FF TH DD kk CH SS nn RR aa E ih oh ou", "sil PP FF"),
    ],
)
def test_set_contents(name, visemes, roles):
    loaded = load_set(name)
    assert list(loaded.visemes) == visemes.split()
    assert [loaded.rest, loaded.closed, loaded.teeth] == roles.split()


@pytest.mark.parametrize(
    ("name", "ipa", "viseme"),
    [
        *[
            ("oculus15", ipa, v)
            for ipa, v in [
                ("p", "PP"),
                ("f", "FF"),
                ("θ", "TH"),
                ("t", "DD"),
                ("k", "kk"),
                ("tʃ", "CH"),
                ("ʒ", "CH"),
                ("s", "SS"),
                ("n", "nn"),
                ("l", "nn"),
                ("ɹ", "RR"),
                ("ɑ", "aa"),
                ("ɛ", "E"),
                ("ɪ", "ih"),
                ("oʊ", "oh"),
                ("ʊ", "ou"),
                ("w", "ou"),
                ("_", "sil"),
                ("β", "PP"),
                ("ʋ", "FF"),
                ("y", "ou"),
                ("ø", "oh"),
                ("x", "kk"),
                ("ɕ", "CH"),
            ]
        ],
        # Rhubarb's animationRules.cpp: the first shape of each phone's rule
        *[
            ("rhubarb", ipa, v)
            for ipa, v in [
                ("ɔ", "E"),
                ("ɑ", "D"),
                ("i", "B"),
                ("u", "F"),
                ("ɛ", "C"),
                ("ɪ", "B"),
                ("ʊ", "F"),
                ("æ", "C"),
                ("ʌ", "C"),
                ("eɪ", "C"),
                ("aɪ", "D"),
                ("oʊ", "E"),
                ("aʊ", "D"),
                ("ɔɪ", "E"),
                ("ɝ", "E"),
                ("p", "A"),
                ("m", "A"),
                ("f", "G"),
                ("t", "B"),
                ("s", "B"),
                ("l", "H"),
                ("w", "F"),
                ("h", "C"),
                ("_", "X"),
            ]
        ],
        # Papagayo's CMU -> Preston Blair mapping
        *[
            ("preston_blair", ipa, v)
            for ipa, v in [
                ("ɑ", "AI"),
                ("æ", "AI"),
                ("ʌ", "AI"),
                ("ɪ", "AI"),
                ("aɪ", "AI"),
                ("ɔ", "O"),
                ("aʊ", "O"),
                ("oʊ", "O"),
                ("ɛ", "E"),
                ("ɝ", "E"),
                ("eɪ", "E"),
                ("i", "E"),
                ("u", "U"),
                ("ʊ", "U"),
                ("ɔɪ", "WQ"),
                ("w", "WQ"),
                ("l", "L"),
                ("b", "MBP"),
                ("v", "FV"),
                ("s", "etc"),
                ("ɹ", "etc"),
                ("_", "rest"),
            ]
        ],
        *[
            ("vrm5", ipa, v)
            for ipa, v in [
                ("ɑ", "aa"),
                ("i", "ih"),
                ("u", "ou"),
                ("ɛ", "ee"),
                ("o", "oh"),
                ("p", "closed"),
                ("f", "teeth"),
                ("s", "sibilant"),
                ("ə", "schwa"),
                ("_", "rest"),
            ]
        ],
    ],
    ids=lambda v: v,
)
def test_phoneme_to_viseme(name, ipa, viseme):
    assert load_set(name).viseme_for(ipa) == viseme


def test_channels_in_stable_order():
    assert load_set("oculus15").channels == list(load_set("oculus15").visemes)
    assert load_set("vrm5").channels == ["aa", "ih", "ou", "ee", "oh"]
    arkit = load_set("arkit").channels
    assert arkit[:2] == ["mouthPressLeft", "mouthPressRight"]
    assert len(arkit) == len(set(arkit))


def test_vrm5_closed_and_rest_drive_nothing():
    vrm = load_set("vrm5")
    assert vrm.visemes["closed"].channels == {}
    assert vrm.visemes["rest"].channels == {}
    assert vrm.visemes["teeth"].channels == {"ih": 0.2}


def test_arkit_closed_lips_are_mouth_press():
    arkit = load_set("arkit")
    closed = arkit.visemes[arkit.closed].channels
    assert closed["mouthPressLeft"] == closed["mouthPressRight"] == 1.0
    assert closed.get("jawOpen", 0.0) == 0.0
    assert arkit.visemes["FF"].channels["mouthRollLower"] >= 0.5
    assert arkit.visemes[arkit.rest].channels == {}
    assert arkit.table == load_set("oculus15").table
    assert all(ch[0].islower() and " " not in ch for ch in arkit.channels)


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("oculus", "oculus15"),
        ("OpenXR", "oculus15"),
        ("Oculus15", "oculus15"),
        ("papagayo", "preston_blair"),
        ("preston", "preston_blair"),
        ("Preston-Blair", "preston_blair"),
        ("vrm", "vrm5"),
        ("VRM5", "vrm5"),
        ("ARKit", "arkit"),
        ("rhubarb", "rhubarb"),
    ],
)
def test_load_set_aliases(alias, name):
    assert load_set(alias) is load_set(name)


def test_unknown_set_is_an_input_error():
    with pytest.raises(InputError) as error:
        load_set("xyz")
    assert str(error.value) == (
        "unknown viseme set 'xyz'; choose one of: oculus15, rhubarb, preston_blair, vrm5, arkit"
    )


def write_set(tmp_path, **changes):
    data = {
        "name": "tiny",
        "title": "Tiny",
        "roles": {"rest": "X", "closed": "A", "teeth": "A"},
        "visemes": {"X": {"sounds": "silence"}, "A": {"sounds": "p b m f v"}},
    }
    data.update(changes)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_parse_set_defaults_channels_to_itself(tmp_path):
    tiny = parse_set(write_set(tmp_path), {"p": "A", "_": "X"})
    assert tiny.visemes["A"].channels == {"A": 1.0}
    assert tiny.channels == ["X", "A"]


@pytest.mark.parametrize(
    ("changes", "column", "message"),
    [
        ({"roles": {"rest": "X", "closed": "B", "teeth": "A"}}, {}, "roles.closed: 'B' is not"),
        (
            {"visemes": {"X": {"sounds": "s", "channels": {"X": 1.5}}, "A": {"sounds": "p"}}},
            {},
            "viseme 'X': channel weights must be within 0..1",
        ),
        ({"visemes": {"X": {"sounds": ""}, "A": {"sounds": "p"}}}, {}, "viseme 'X': needs"),
        ({}, {"p": "Q"}, "phoneme 'p': phonemes.tsv maps it to unknown viseme 'Q'"),
        ({"name": "other"}, {}, "name: must be 'tiny'"),
    ],
    ids=["role", "weight", "sounds", "table", "name"],
)
def test_malformed_set_names_file_and_entry(tmp_path, changes, column, message):
    path = write_set(tmp_path, **changes)
    with pytest.raises(ValueError, match="tiny.json: " + message.replace("(", r"\(")):
        parse_set(path, column)
