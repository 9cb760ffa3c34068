"""Rig mapping: presets load and cover their sets, real rigs' names match, curves get renamed."""

import json

import pytest

from bridge_server.core import rigs
from bridge_server.core.animate import retarget
from bridge_server.core.errors import InputError
from bridge_server.core.timeline import Timeline
from bridge_server.core.visemes import available_sets, load_set
from bridge_server.pipeline import say

LINE = "Pack my box with five dozen liquor jugs."
PRESETS = ["arkit", "demo_head", "preston_blair", "readyplayerme", "rhubarb", "vrchat"]
PRESETS += ["vrm", "vrm0", "vroid"]
OCULUS = "sil PP FF TH DD kk CH SS nn RR aa E ih oh ou".split()
VRCHAT = [f"vrc.v_{v.lower()}" for v in OCULUS]
# An avatar as VRChat's SDK lists it: the visemes among blinks, expressions and the basis.
AVATAR_JUNK = ["Basis", "vrc.blink_left", "vrc.blink_right", "vrc.lowerlid_left", "Blink"]
AVATAR_JUNK += ["Smile", "Angry", "Blink_L", "Blink_R", "Cheek_Puff", "Tongue_Out_Wide"]
VROID_JUNK = ["Fcl_ALL_Neutral", "Fcl_ALL_Angry", "Fcl_ALL_Joy", "Fcl_BRW_Angry", "Fcl_BRW_Fun"]
VROID_JUNK += ["Fcl_EYE_Close", "Fcl_EYE_Close_R", "Fcl_EYE_Close_L", "Fcl_EYE_Joy"]
VROID_JUNK += ["Fcl_MTH_Close", "Fcl_MTH_Up", "Fcl_MTH_Down", "Fcl_MTH_Angry", "Fcl_MTH_Small"]
VROID_JUNK += ["Fcl_MTH_Large", "Fcl_MTH_Neutral", "Fcl_MTH_Fun", "Fcl_MTH_Joy", "Fcl_MTH_Sorrow"]
VROID_JUNK += ["Fcl_MTH_Surprised", "Fcl_MTH_SkinFung", "Fcl_MTH_SkinFung_L", "Fcl_HA_Fung1"]
VROID_VOWELS = ["Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O"]
ARKIT_52 = """eyeBlinkLeft eyeLookDownLeft eyeLookInLeft eyeLookOutLeft eyeLookUpLeft eyeSquintLeft
eyeWideLeft eyeBlinkRight eyeLookDownRight eyeLookInRight eyeLookOutRight eyeLookUpRight
eyeSquintRight eyeWideRight jawForward jawLeft jawRight jawOpen mouthClose mouthFunnel mouthPucker
mouthLeft mouthRight mouthSmileLeft mouthSmileRight mouthFrownLeft mouthFrownRight mouthDimpleLeft
mouthDimpleRight mouthStretchLeft mouthStretchRight mouthRollLower mouthRollUpper mouthShrugLower
mouthShrugUpper mouthPressLeft mouthPressRight mouthLowerDownLeft mouthLowerDownRight
mouthUpperUpLeft mouthUpperUpRight browDownLeft browDownRight browInnerUp browOuterUpLeft
browOuterUpRight cheekPuff cheekSquintLeft cheekSquintRight noseSneerLeft noseSneerRight
tongueOut""".split()


@pytest.fixture(scope="module")
def line() -> Timeline:
    return say(LINE)[1]


# --- presets --------------------------------------------------------------------------------


def test_presets_are_listed():
    assert rigs.presets() == sorted(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_and_covers_its_set(name):
    rig = rigs.load_preset(name)
    assert rig.name == name and rig.title and rig.about
    channels = load_set(rig.viseme_set).channels
    assert list(rig.shape_keys) == channels
    assert len(set(rig.shape_keys.values())) == len(channels)
    mapping = rig.mapping()
    assert mapping.rig == name and mapping.missing_channels == [] and mapping.unmatched_keys == []
    assert json.loads(json.dumps(rig.to_dict())) == rig.to_dict()


@pytest.mark.parametrize("name", PRESETS)
def test_a_presets_own_names_match_back_to_it(name):
    rig = rigs.load_preset(name)
    mapping = rigs.match(list(rig.shape_keys.values()))
    assert (mapping.viseme_set, mapping.shape_keys) == (rig.viseme_set, rig.shape_keys)


@pytest.mark.parametrize(
    ("name", "viseme_set", "channel", "key"),
    [
        ("vrchat", "oculus15", "aa", "vrc.v_aa"),
        ("vrchat", "oculus15", "E", "vrc.v_e"),
        ("readyplayerme", "oculus15", "ou", "viseme_U"),
        ("arkit", "arkit", "jawOpen", "jawOpen"),
        ("vrm", "vrm5", "ee", "ee"),
        ("vrm0", "vrm5", "ee", "E"),
        ("vroid", "vrm5", "oh", "Fcl_MTH_O"),
        ("rhubarb", "rhubarb", "X", "mouth_X"),
        ("preston_blair", "preston_blair", "MBP", "MBP"),
        ("demo_head", "preston_blair", "etc", "etc"),
    ],
)
def test_preset_contents(name, viseme_set, channel, key):
    rig = rigs.load_preset(name)
    assert (rig.viseme_set, rig.shape_keys[channel]) == (viseme_set, key)


def test_preset_names_are_forgiving_and_unknown_ones_list_the_choices():
    assert rigs.load_preset(" VRChat ").name == "vrchat"
    assert rigs.load_preset("demo-head").name == "demo_head"
    with pytest.raises(InputError, match=r"unknown rig preset 'unreal'.*arkit, demo_head"):
        rigs.load_preset("unreal")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"name": "bad", ', r"bad\.json: line 1, column \d+: is not valid JSON"),
        ("[1, 2]", r"bad\.json: the document must be a JSON object"),
        ('{"name": "other"}', r"bad\.json: name must be 'bad'"),
        ('{"name": "bad", "viseme_set": "oculus15"}', r"bad\.json: title must be a non-empty"),
        ('{"name": "bad", "title": "t", "viseme_set": "x"}', r"viseme_set names no viseme set"),
        ('{"name": "bad", "title": "t", "viseme_set": "vrm5"}', r"shape_keys must be an object"),
        (
            '{"name": "bad", "title": "t", "viseme_set": "vrm5", "shape_keys": {"AA": "A"}}',
            r"shape_keys\.AA is not a channel of the set: aa, ih, ou, ee, oh",
        ),
        (
            '{"name": "bad", "title": "t", "viseme_set": "vrm5", "shape_keys": {"aa": 1}}',
            r"shape_keys\.aa must be a shape-key name",
        ),
        (
            '{"name": "bad", "title": "t", "viseme_set": "vrm5", '
            '"shape_keys": {"aa": "A", "oh": "A"}}',
            r"gives one shape key to several channels: A",
        ),
    ],
)
def test_a_malformed_preset_is_refused_with_where_and_why(tmp_path, monkeypatch, text, message):
    monkeypatch.setattr(rigs, "RIG_DIR", tmp_path)
    (tmp_path / "bad.json").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        rigs.load_preset("bad")


def test_a_preset_may_leave_channels_out_and_says_which(tmp_path, monkeypatch):
    monkeypatch.setattr(rigs, "RIG_DIR", tmp_path)
    doc = {"name": "jaw", "title": "t", "viseme_set": "vrm", "shape_keys": {"oh": "O", "aa": "A"}}
    (tmp_path / "jaw.json").write_text(json.dumps(doc), encoding="utf-8")
    mapping = rigs.load_preset("jaw").mapping()
    assert mapping.viseme_set == "vrm5"
    assert mapping.shape_keys == {"aa": "A", "oh": "O"}  # the set's channel order
    assert mapping.missing_channels == ["ih", "ou", "ee"]


# --- matching a rig's own names -------------------------------------------------------------


def test_a_vrchat_avatar_matches_the_oculus_set_and_reports_the_rest():
    mapping = rigs.match(AVATAR_JUNK[:3] + VRCHAT[::-1] + AVATAR_JUNK[3:])
    assert mapping.viseme_set == "oculus15"
    assert mapping.shape_keys == rigs.load_preset("vrchat").shape_keys
    assert mapping.unmatched_keys == AVATAR_JUNK
    assert mapping.missing_channels == []
    assert mapping.rig == ""
    assert mapping.candidates["oculus15"] == 15 and list(mapping.candidates)[0] == "oculus15"


@pytest.mark.parametrize("prefix", ["", "Face.M_F00_000_00_"])
def test_a_vroid_model_matches_the_vrm_vowels(prefix):
    names = [prefix + n for n in VROID_JUNK[:12] + VROID_VOWELS + VROID_JUNK[12:]]
    mapping = rigs.match(names)
    assert mapping.viseme_set == "vrm5"
    expected = rigs.load_preset("vroid").shape_keys
    assert mapping.shape_keys == {ch: prefix + key for ch, key in expected.items()}
    assert mapping.unmatched_keys == [prefix + n for n in VROID_JUNK]


@pytest.mark.parametrize("prefix", ["", "blendShape1.", "head:", "ARKit_"])
def test_arkits_52_names_match_the_arkit_set(prefix):
    mapping = rigs.match([prefix + n for n in ARKIT_52])
    assert mapping.viseme_set == "arkit"
    channels = load_set("arkit").channels
    assert mapping.shape_keys == {ch: prefix + ch for ch in channels}
    assert mapping.unmatched_keys == [prefix + n for n in ARKIT_52 if n not in channels]
    assert len(mapping.unmatched_keys) == 52 - 19  # the set drives 19 (mouthClose: learned motion)
    assert mapping.missing_channels == []


def test_arkit_shapes_in_other_spellings():
    names = ["JawOpen", "Mouth_Funnel", "mouthPucker", "MouthPress_L", "mouth_press_r", "TongueOut"]
    mapping = rigs.match(names + ["EyeBlink_L"])
    assert mapping.viseme_set == "arkit"
    assert mapping.shape_keys["mouthPressLeft"] == "MouthPress_L"
    assert mapping.shape_keys["mouthPressRight"] == "mouth_press_r"
    assert mapping.shape_keys["tongueOut"] == "TongueOut"
    assert mapping.unmatched_keys == ["EyeBlink_L"]
    assert len(mapping.missing_channels) == 19 - 6


@pytest.mark.parametrize("style", ["mouth_{}", "Mouth{}", "MOUTH-{}", "{}"])
def test_rhubarb_mouths_match_the_rhubarb_set(style):
    mapping = rigs.match(["Basis"] + [style.format(s) for s in "ABCDEFGHX"])
    assert mapping.viseme_set == "rhubarb"
    assert mapping.shape_keys == {s: style.format(s) for s in load_set("rhubarb").channels}
    assert mapping.unmatched_keys == ["Basis"]


@pytest.mark.parametrize(
    ("viseme_set", "channel", "name"),
    [
        *[
            ("oculus15", "aa", n)
            for n in ["vrc.v_aa", "v_aa", "Viseme_AA", "viseme-aa", "VisemeAA"]
        ],
        *[("oculus15", "aa", n) for n in ["AA", "aa.001", "Body|vrc.v_aa", "viseme_A"]],
        ("oculus15", "ih", "viseme_I"),
        ("oculus15", "sil", "Viseme_Neutral"),
        ("oculus15", "PP", "visemePP"),
        *[("vrm5", "aa", n) for n in ["A", "aa", "Fcl_MTH_A", "vrm_aa", "あ"]],
        ("vrm5", "ee", "E"),
        ("vrm5", "oh", "お"),
        *[("rhubarb", "A", n) for n in ["mouth_A", "MouthA", "Mouth A", "A"]],
        ("rhubarb", "X", "mouth_rest"),
        *[("preston_blair", "MBP", n) for n in ["MBP", "mouth_MBP", "BMP", "M"]],
        ("preston_blair", "L", "L"),
        ("preston_blair", "L", "Mouth_L"),
        ("preston_blair", "etc", "ETC"),
        *[("arkit", "jawOpen", n) for n in ["jawOpen", "blendShape1.jawOpen", "Jaw_Open"]],
        ("arkit", "mouthSmileLeft", "mouthSmile_L"),
    ],
)
def test_naming_variants(viseme_set, channel, name):
    mapping = rigs.match(["Blink_L", name, "Basis"], viseme_set)
    assert mapping.shape_keys == {channel: name}
    assert mapping.unmatched_keys == ["Blink_L", "Basis"]


def test_mixed_case_and_junk_with_a_named_set_reports_the_gaps():
    names = ["Basis", "VISEME_SIL", "viseme-PP", "Viseme_aa", "vrc.V_OU", "Blink_L", "smile"]
    mapping = rigs.match(names, viseme_set="oculus")
    assert mapping.viseme_set == "oculus15"
    assert mapping.shape_keys == {
        "sil": "VISEME_SIL",
        "PP": "viseme-PP",
        "aa": "Viseme_aa",
        "ou": "vrc.V_OU",
    }
    assert mapping.unmatched_keys == ["Basis", "Blink_L", "smile"]
    assert mapping.missing_channels == [c for c in OCULUS if c not in ("sil", "PP", "aa", "ou")]
    assert mapping.candidates == {"oculus15": 4}
    assert "4 of 15 oculus15 channels" in mapping.message
    assert "no shape key for FF, TH, DD" in mapping.message
    assert "3 unused: Basis, Blink_L, smile" in mapping.message


@pytest.mark.parametrize(
    ("names", "viseme_set"),
    [
        (["A", "I", "U", "E", "O"], "vrm5"),  # VRM 0.x
        (["aa", "ih", "ou", "ee", "oh"], "vrm5"),  # VRM 1.0
        (["vrc.v_aa", "vrc.v_ih", "vrc.v_ou", "vrc.v_e", "vrc.v_oh"], "vrm5"),  # vowels only
        (VRCHAT, "oculus15"),  # the same vowels plus the consonants: the richer set
        (VRCHAT[1:], "oculus15"),  # no vrc.v_sil: the basis is the rest shape
        ([k for k in VRCHAT if k not in ("vrc.v_sil", "vrc.v_th")], "oculus15"),
        (["vrc.v_aa", "vrc.v_pp"], "oculus15"),  # a closed-lips shape is worth driving
        (VROID_JUNK + VROID_VOWELS, "vrm5"),  # Fcl_MTH_Neutral reads as a rest shape
        (VROID_VOWELS + VRCHAT, "oculus15"),  # a VRoid model made into a VRChat avatar
        (["AI", "E", "O", "U", "MBP", "FV", "L", "WQ", "etc", "rest"], "preston_blair"),
        (["mouth_A", "mouth_B", "mouth_C", "mouth_X"], "rhubarb"),
        (["jawOpen", "mouthFunnel"], "arkit"),
    ],
)
def test_the_set_is_chosen_by_how_well_the_names_cover_it(names, viseme_set):
    assert rigs.match(names).viseme_set == viseme_set


def test_a_clear_name_wins_over_an_alias_or_a_repeat():
    names = ["Fcl_MTH_A", "vrc.v_aa", "vrc.v_aa", "AA", "aa"]
    mapping = rigs.match(names, "oculus15")
    assert mapping.shape_keys == {"aa": "aa"}  # the channel's own name, then its core, then alias
    assert mapping.unmatched_keys == ["Fcl_MTH_A", "vrc.v_aa", "AA"]  # repeats listed once
    mapping = rigs.match(VROID_VOWELS + VRCHAT)
    assert mapping.shape_keys == rigs.load_preset("vrchat").shape_keys
    assert mapping.unmatched_keys == VROID_VOWELS


@pytest.mark.parametrize(
    ("names", "viseme_set", "message"),
    [
        ([], None, r"no shape keys given; .*name a rig preset: arkit"),
        ("vrc.v_aa", None, r"shape keys must be a list of names"),
        (["vrc.v_aa", 3], None, r"shape-key names must be strings \(got 3\)"),
        (
            ["Basis", "Blink_L", "Smile"],
            None,
            r"none of the 3 shape keys \(Basis, Blink_L, Smile\) is a viseme channel of any set "
            r"\(oculus15, .*\); name them like vrc\.v_aa.*or name a rig preset: arkit",
        ),
        (
            ["jawOpen", "Basis"],
            "vrm5",
            r"none of the 2 shape keys \(jawOpen, Basis\) is a channel of the vrm5 set "
            r"\(aa, ih, ou, ee, oh\)",
        ),
        (["vrc.v_aa"], "klingon", r"unknown viseme set 'klingon'"),
    ],
)
def test_names_that_drive_nothing_are_an_error(names, viseme_set, message):
    # An animation that drives no shape key is never what a caller wants: refuse, and say how.
    with pytest.raises(InputError, match=message):
        rigs.match(names, viseme_set)


def test_long_lists_are_shortened_in_messages():
    names = [f"Junk{i}" for i in range(20)]
    with pytest.raises(InputError, match=r"Junk7 and 12 more\)"):
        rigs.match(names)


def test_resolve_takes_a_preset_or_names():
    assert rigs.resolve(rig="vrchat") == rigs.load_preset("vrchat").mapping()
    assert rigs.resolve(rig="vrm", viseme_set="vrm") == rigs.load_preset("vrm").mapping()
    assert rigs.resolve(shape_keys=VRCHAT).shape_keys == rigs.load_preset("vrchat").shape_keys
    assert rigs.resolve(shape_keys=VRCHAT, viseme_set="vrm5").viseme_set == "vrm5"
    with pytest.raises(InputError, match="not both"):
        rigs.resolve(rig="vrchat", shape_keys=VRCHAT)
    with pytest.raises(InputError, match="name a rig preset .* or send the rig's shape-key names"):
        rigs.resolve()
    with pytest.raises(InputError, match="uses the oculus15 viseme set, not arkit"):
        rigs.resolve(rig="vrchat", viseme_set="arkit")


def test_mappings_are_json():
    mapping = rigs.match(["Basis"] + VRCHAT[:5])
    data = json.loads(mapping.to_json())
    assert data == mapping.to_dict()
    assert data["shape_keys"] == {"sil": "vrc.v_sil", "PP": "vrc.v_pp", "FF": "vrc.v_ff"} | {
        "TH": "vrc.v_th",
        "DD": "vrc.v_dd",
    }
    assert data["unmatched_keys"] == ["Basis"]
    assert data["missing_channels"] == OCULUS[5:]
    assert data["message"] == mapping.message


def test_naming_data_is_consistent():
    for name in available_sets():
        assert len(rigs._channel_cores(name)) == len(load_set(name).channels)
    assert set(rigs._naming().aliases) <= set(available_sets())


# --- applying a mapping ---------------------------------------------------------------------


def _keys(timeline: Timeline) -> dict[str, list]:
    return {c.channel: c.keys for c in timeline.curves}


def test_applied_curves_carry_the_rigs_names_and_the_same_values(line):
    before = _keys(line)
    mapping = rigs.load_preset("vrchat").mapping()
    rigged = rigs.apply(line, mapping)
    assert [c.channel for c in rigged.curves] == VRCHAT
    for channel, key in mapping.shape_keys.items():
        assert rigged.curve(key).keys == line.curve(channel).keys
        assert rigged.curve(key).interpolation == line.curve(channel).interpolation
    assert _keys(line) == before  # the input is left as it was
    assert rigged.viseme_set == "oculus15" and rigged.phonemes == line.phonemes
    assert not [w for w in rigged.warnings if w.code == "rig"]
    again = Timeline.from_json(rigged.to_json())
    assert _keys(again) == _keys(rigged)


def test_a_timeline_of_another_set_is_retargeted_first(line):
    mapping = rigs.match(["Basis"] + VROID_VOWELS)
    rigged = rigs.apply(line, mapping)
    vrm = retarget(line, "vrm5")
    assert rigged.viseme_set == "vrm5"
    assert _keys(rigged) == {mapping.shape_keys[ch]: keys for ch, keys in _keys(vrm).items()}
    assert line.viseme_set == "oculus15"


def test_the_demo_head_plays_a_preston_blair_line():
    timeline = say(LINE, viseme_set="preston_blair")[1]
    rigged = rigs.apply(timeline, rigs.load_preset("demo_head").mapping())
    assert _keys(rigged) == _keys(timeline)  # the demo head's names are the shapes' names
    assert rigged.curve("MBP").keys and max(v for _, v in rigged.curve("MBP").keys) == 1.0


def test_channels_without_a_shape_key_are_left_out_with_a_warning(line):
    mapping = rigs.match(["vrc.v_aa", "vrc.v_pp", "Blink_L"])
    assert mapping.viseme_set == "oculus15"
    rigged = rigs.apply(line, mapping)
    assert [c.channel for c in rigged.curves] == ["vrc.v_pp", "vrc.v_aa"]
    assert rigged.curve("vrc.v_aa").keys == line.curve("aa").keys
    (warning,) = [w for w in rigged.warnings if w.code == "rig"]
    assert warning.message.startswith("the rig has no shape key for the oculus15 channels ")
    assert "FF" in warning.message and "their motion is left out" in warning.message
    assert not [w for w in line.warnings if w.code == "rig"]
