"""Learned mouth motion (--motion learned): the features, the shipped model and its failures,
every front end's option, and curves that follow a real face better than the rules' on
speakers the model never saw. (Closures and contacts under both motions: test_curves.py.)"""

import json

import numpy as np
import pytest

from bridge_server.cli import main
from bridge_server.core.curves import CurveSettings, channel_weights
from bridge_server.core.errors import EngineUnavailable, InputError
from bridge_server.core.timeline import Phoneme
from bridge_server.core.visemes import load_set
from bridge_server.mouth import motion
from bridge_server.mouth.controls import CONTROLS
from tests.conftest import ROOT, SHARED

GRID = SHARED / "grid" / "videos"
UNSEEN = {  # speakers the shipped model never saw (it trained on s1 alone)
    "id2_vcd_swwp2s.mpg": "set white with p two soon",
    "lbax4n.mpg": "lay blue at x four now",
    "pwij3p.mpg": "place white in j three please",
}


def _trainer(name: str = "train_motion"):
    """models/NAME.py as a module (models/ is not a package)."""
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "models"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "models"))


def line(ipas: str, step: float = 0.1, start: float = 0.3) -> list[Phoneme]:
    return [
        Phoneme(p, start + i * step, start + (i + 1) * step) for i, p in enumerate(ipas.split())
    ]


def test_features_say_which_class_each_moment_is_and_how_far_through():
    x = motion.features(line("b ɑ"), 0.6)
    assert x.shape == (61, motion.n_features())
    names = motion.classes()
    per_set = [[i for i, (s, _) in enumerate(names) if s == name] for name in motion.SETS]
    assert all((x[:, cols].sum(axis=1) == 1).all() for cols in per_set)  # one class per set
    pp, aa = names.index(("oculus15", "PP")), names.index(("oculus15", "aa"))
    assert x[35, pp] == 1 and x[45, aa] == 1 and x[10, names.index(("oculus15", "sil"))] == 1
    at, inside = len(names), len(names) + 2  # how far through the phoneme; inside one
    assert x[30, at] < x[35, at] < x[39, at] and x[10, inside] == 0 and x[35, inside] == 1
    with pytest.raises(InputError, match="not in phonemes.tsv"):
        motion.features([Phoneme("🙂", 0.0, 0.1)], 0.2)


def test_features_hear_how_loud_each_moment_is_against_the_line():
    phonemes = line("b ɑ m i")
    bands = np.zeros((80, len(motion.BANDS)))
    bands[40:50] = 3.0  # "ɑ" (0.4-0.5 s) louder than the rest of the line
    x = motion.features(phonemes, 0.8, bands)
    loud = x[:, -len(motion.BANDS) :]
    assert loud[45].min() > 0 > max(loud[35].max(), loud[65].max(), loud[10].max())
    assert np.allclose(loud.mean(axis=0), 0, atol=1e-5)  # on the line's own scale
    assert len(motion.features(phonemes, 0.85, bands)) == 86  # a sound a hop short still fits
    plain = motion.features(phonemes, 0.8)
    assert not plain[:, -len(motion.BANDS) :].any()  # without the sound: 0
    assert np.array_equal(plain[:, : -len(motion.BANDS)], x[:, : -len(motion.BANDS)])


def test_the_shipped_model_gives_every_control_in_range():
    x = motion.features(line("b ɑ m i f u"), 1.0)
    model = motion.MotionModel.shipped()
    c = model.run(x)
    assert model.names == CONTROLS + model.arkit
    assert set(model.arkit) < set(load_set("arkit").channels)
    assert c.shape == (len(x), len(model.names)) and 0 <= c.min() and c.max() <= 1
    jaw = c[:, CONTROLS.index("jaw_open")]
    assert jaw[45] > jaw[5] + 0.1  # the jaw drops on "ɑ", not in the silence before


@pytest.mark.slow
def test_learned_arkit_moves_what_the_face_tracker_sees_and_the_table_cannot():
    """The model learned ARKit channels from the face landmarker's scores: the upper lip rolls
    in through "one two three", which the controls' table (data/viseme_controls.json, what a
    model without them has) never moves, and the rounding follows the learned pucker."""
    vset, times = load_set("arkit"), np.arange(0, 1.2, 1 / 60)
    phonemes = line("w ʌ n t u θ r i")  # no contact: nothing of the rules on top
    model = motion.MotionModel.shipped()
    settings = CurveSettings(motion="learned")
    learned = motion.learned_channels(phonemes, vset, times, settings, None, model)
    table = motion.learned_channels(phonemes, vset, times, settings, None,
                                    _trainer().ControlsOnly(model))  # fmt: skip
    assert {"mouthRollUpper", "mouthPucker"} <= set(model.arkit)
    assert learned["mouthRollUpper"].max() > 0.2 and not table["mouthRollUpper"].any()
    assert np.abs(learned["mouthPucker"] - table["mouthPucker"]).max() > 0.05
    assert np.array_equal(learned["jawOpen"], table["jawOpen"])  # the jaw stays the controls'


def test_a_missing_or_foreign_model_says_what_to_do(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    with pytest.raises(EngineUnavailable, match="train_motion.py.*--motion rules"):
        motion.MotionModel.load(tmp_path / "gone.onnx")
    (tmp_path / "cut.onnx").write_bytes(motion.SHIPPED.read_bytes()[:200])
    with pytest.raises(InputError, match="cut.onnx is not a readable ONNX model"):
        motion.MotionModel.load(tmp_path / "cut.onnx")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "other.onnx")  # fmt: skip
    with pytest.raises(InputError, match="not a motion model"):
        motion.MotionModel.load(tmp_path / "other.onnx")


def test_learned_motion_moves_unlike_the_rules_and_the_lead_moves_it_earlier():
    vset, times = load_set("arkit"), np.arange(0, 1.2, 1 / 60)
    phonemes = line("h ɛ l oʊ w ɜ l d")
    rules = channel_weights(phonemes, vset, times, CurveSettings())
    learned = channel_weights(phonemes, vset, times, CurveSettings(motion="learned"))
    assert np.abs(rules["jawOpen"] - learned["jawOpen"]).max() > 0.1
    early = channel_weights(phonemes, vset, times, CurveSettings(motion="learned", lead=0.1))
    shift = [np.abs(early["jawOpen"][: -k or None] - learned["jawOpen"][k:]).mean() for k in (0, 6)]
    assert shift[1] < shift[0] / 2  # 0.1 s is 6 frames at 60 fps
    held = channel_weights(phonemes, vset, times, CurveSettings(motion="learned", holds=True))
    assert set(np.unique(np.round(held["jawOpen"], 6))) <= {
        round(v.channels.get("jawOpen", 0.0), 6) for v in vset.visemes.values()
    }  # holds: one shape at a time, as the rules make them


def test_every_front_end_offers_the_motion(tmp_path, capsys):
    out = tmp_path / "line.json"
    code = main(["say", "Bob put the big blue map back.", "--motion", "learned", "-o",
                 str(tmp_path / "line.wav"), "--timeline", str(out), "-q"])  # fmt: skip
    assert code == 0
    timeline = json.loads(out.read_text())
    assert timeline["curve_settings"]["motion"] == "learned"
    with pytest.raises(SystemExit):
        main(["say", "Bob", "--motion", "dance", "--timeline", str(tmp_path / "x.json")])
    assert "invalid choice: 'dance'" in capsys.readouterr().err
    from fastapi.testclient import TestClient

    from bridge_server.serve.app import create_app

    with TestClient(create_app()) as client:
        ok = client.post("/lipsync/text", json={"text": "Bob", "motion": "learned", "wait": True})
        bad = client.post("/lipsync/text", json={"text": "Bob", "motion": "dance", "wait": True})
    assert ok.status_code == 200 and ok.json()["curve_settings"]["motion"] == "learned"
    assert bad.status_code in (400, 422) and "motion" in bad.text


@pytest.mark.slow
def test_the_training_script_makes_a_model_the_run_time_loads(grid_dataset, tmp_path):
    """models/train_motion.py end to end on the four GRID clips (one epoch: it checks the
    script, the export and the card, not the motion; the card holds the real numbers)."""
    train_motion = _trainer()
    out = tmp_path / "motion.onnx"
    ds = str(grid_dataset)
    assert train_motion.main([ds, "--out", str(out), "--epochs", "1", "--seeds", "2",
                              "--test", f"again={ds}"]) == 0  # fmt: skip
    model = motion.MotionModel.load(out)
    assert model.metadata["seeds"] == "2"
    learned = json.loads(model.metadata["arkit_range"])  # the tracker's scores it learned
    assert len(learned) == len(model.arkit) and model.arkit
    assert model.run(motion.features(line("b ɑ"), 0.5)).shape[1] == 10 + len(model.arkit)
    card = out.with_suffix(".md").read_text()
    assert "| again | learned | 4 |" in card and "| again | rules | 4 |" in card
    assert f"the {len(model.arkit)} ARKit channels the product takes from the model (" in card


@pytest.mark.slow
def test_the_live_training_script_makes_a_model_the_stream_loads(grid_dataset, tmp_path):
    """models/train_live_motion.py end to end on the four GRID clips (one epoch): the model
    gives the ARKit channels it learned from the landmarker's scores beside the controls and
    contacts, never mouthClose (the contacts' closed shape makes it), and the stream reads it."""
    from bridge_server.mouth import listen

    out = tmp_path / "live.onnx"
    ds = str(grid_dataset)
    assert (
        _trainer("train_live_motion").main(
            [ds, "--out", str(out), "--epochs", "1", "--test", f"again={ds}"]
        )
        == 0
    )
    model = listen.LiveMotionModel.load(out)
    assert model.arkit and motion.SEAL not in model.arkit
    assert len(json.loads(model.session.get_modelmeta().custom_metadata_map["arkit_range"])) == len(
        model.arkit
    )
    heard = listen.Listener(model).feed(np.zeros(16000, np.float32))  # a second of silence
    assert heard.controls.shape[1] == 10 and heard.arkit.shape == (
        len(heard.times),
        len(model.arkit),
    )
    assert "| again | 4 |" in out.with_suffix(".md").read_text()


@pytest.mark.slow
def test_the_mapping_fit_writes_a_mapping_the_run_time_reads(grid_dataset, tmp_path):
    """models/fit_viseme_mapping.py end to end on the four GRID clips: every set gets a
    metric over the ten controls, a ridge and a sparsity, the run time mixes with them, each
    shape is still read as itself, and the card compares it with the unfitted mix."""
    from bridge_server.mouth.controls import viseme_weights_from_controls

    fit = _trainer("fit_viseme_mapping")
    out, card = tmp_path / "mapping.json", tmp_path / "card.md"
    ds = str(grid_dataset)
    assert fit.main([ds, "--out", str(out), "--card", str(card), "--test", f"again={ds}"]) == 0
    fitted = json.loads(out.read_text())["sets"]
    assert set(fitted) == set(fit.SETS)
    for name, mapping in fitted.items():
        assert set(mapping["metric"]) == set(CONTROLS) and mapping["ridge"] > 0
        assert fit.reads_back(load_set(name), mapping), name
        opening = dict.fromkeys(CONTROLS, np.zeros(3)) | {"jaw_open": np.array([0, 0.5, 1.0])}
        w = viseme_weights_from_controls(opening, load_set(name), mapping)
        assert sum(w.values()) == pytest.approx(np.ones(3))
    assert "| oculus15 | again | fitted | 4 |" in card.read_text()


@pytest.mark.slow
def test_hearing_the_sound_follows_unseen_speakers_jaws_closer(grid_dataset):
    """On the GRID clips of speakers the model never saw, the learned jawOpen follows the
    tracked jaw more closely than the rules', and more closely with the line's sound (as bake,
    say and track give it) than from its phonemes alone (a timeline re-animated from a file)."""
    train_motion = _trainer()
    lines = [x for x in train_motion.load(grid_dataset) if f"{x.id}.mpg" in UNSEEN]
    assert len(lines) == len(UNSEEN)
    found = train_motion.evaluate(motion.MotionModel.shipped(), lines)
    jaw = {how: found[how]["jaw"] for how in found}
    assert jaw["learned"] > jaw[train_motion.PHONEMES_ONLY] > jaw["rules"], jaw
    assert all(found[how]["closures"][0] == found[how]["closures"][1] for how in found)
