"""The trained lip reader: the shared features, the grammar decoder, training, ONNX export and
the onnxruntime run time, and the shipped model reading speakers it never saw. Training here
runs a few epochs on four GRID clips: it checks that the script runs and agrees with the run
time, not that it reads lips (the model card holds the held-out accuracy)."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from bridge_server.core.errors import EngineUnavailable, InputError
from bridge_server.lipread import decode
from bridge_server.lipread import model as lm
from bridge_server.mouth.controls import CONTROLS

from .conftest import ROOT, SHARED

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("mediapipe")

GRID = SHARED / "grid"
SCRIPT = ROOT / "models" / "train_lipreader.py"
UNSEEN = {  # GRID speakers the shipped model never saw (it trained on s1 alone)
    "id2_vcd_swwp2s.mpg": "set white with p two soon",
    "lbax4n.mpg": "lay blue at x four now",
    "pwij3p.mpg": "place white in j three please",
}


@pytest.fixture(scope="module")
def trainer():
    """models/train_lipreader.py imported as a module."""
    spec = importlib.util.spec_from_file_location("train_lipreader", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_lipreader"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("train_lipreader", None)


@pytest.fixture(scope="module")
def ds(grid_dataset):
    """A dataset of the four GRID clips (the dataset builder's, once per run)."""
    return grid_dataset


@pytest.fixture(scope="module")
def clips(trainer, ds):
    return trainer.load_dataset(ds)


@pytest.fixture(scope="module")
def vocab():
    from bridge_server.lipread.reader import load_grammar

    return [decode.SILENCE] + sorted({w for slot in load_grammar("grid") for w in slot})


@pytest.fixture(scope="module")
def exported(trainer, clips, vocab, tmp_path_factory):
    """A model trained for two epochs, and its ONNX export."""
    net = trainer.train(clips, vocab, epochs=2, seed=0, log=lambda _: None)
    path = tmp_path_factory.mktemp("model") / "lr.onnx"
    return net, trainer.export_onnx(net, path, vocab, {"fps": "25"})


# --- features -----------------------------------------------------------------------------


def test_dataset_folder_loads_geometry_and_the_sounds_words(clips, vocab):
    assert [c.id for c in clips] == ["bbaf2n", "id2_vcd_swwp2s", "lbax4n", "pwij3p"]
    c = clips[0]
    assert c.controls.shape == (75, len(CONTROLS)) and c.lips.shape == (75, 40, 3)
    targets = [vocab[i] for i in c.word_targets(vocab)]
    assert targets[0] == targets[-1] == "sil"
    said = [w for i, w in enumerate(targets) if w != "sil" and (i == 0 or targets[i - 1] != w)]
    assert said == "bin blue at f two now".split()


def test_features_do_not_depend_on_the_speakers_size_place_or_resting_shape(clips):
    """Speaker normalisation: a bigger mouth, further left, resting more open, reads alike."""
    c = clips[1]
    other = c.lips * 1.7 + np.array([0.3, -0.2, 0.05])
    wider = c.controls * 0.8 + 0.1
    a, b = lm.features(c.controls, c.valid, c.lips), lm.features(wider, c.valid, other)
    assert a.shape == (75, lm.N_FEATURES) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-4)
    moved = c.lips.copy()
    moved[30:40, :20, 1] += 0.05  # the upper lip really moves: the features see it
    assert np.abs(lm.features(c.controls, c.valid, moved) - a).max() > 0.5


def test_frames_without_a_face_read_as_rest_and_the_shapes_are_checked(clips):
    c = clips[0]
    valid = c.valid.copy()
    valid[10:20] = False
    lips = c.lips.copy()
    lips[15] = np.nan
    f = lm.features(c.controls, valid, lips)
    assert np.isfinite(f).all() and np.all(f[10:20, : lm.N_FEATURES // 2] == 0)
    with pytest.raises(InputError, match="lip points"):
        lm.features(c.controls, c.valid, c.lips[:10])


def test_training_uses_the_runtime_feature_function(trainer):
    assert trainer.features is lm.features


# --- decoding -----------------------------------------------------------------------------

SLOTS = [["bin", "lay"], ["blue", "red"], ["at", "by"]]
WORDS = ["sil", "bin", "lay", "blue", "red", "at", "by"]


def posteriors(spans: list[tuple[int, int, str]], frames: int = 40, p: float = 0.8):
    lp = np.full((frames, len(WORDS)), np.log((1 - p) / (len(WORDS) - 1)))
    lp[:, 0] = np.log(p)  # silence unless a word is said
    for a, b, w in spans:
        lp[a:b] = np.log((1 - p) / (len(WORDS) - 1))
        lp[a:b, WORDS.index(w)] = np.log(p)
    return lp


def test_the_decoder_finds_the_words_their_spans_and_pauses():
    lp = posteriors([(5, 12, "lay"), (15, 22, "red"), (22, 28, "by")])
    reads = decode.read_slots(lp, WORDS, SLOTS, fps=25, best=3)
    assert reads[0].text == "lay red by" and reads[0].spans == [(5, 12), (15, 22), (22, 28)]
    assert [r.text for r in reads[1:]] == ["lay red at", "bin red by"] or len(reads) == 3
    assert reads[0].confidence > reads[1].confidence and min(reads[0].word_confidence) > 0.9
    assert sum(r.confidence for r in reads) == pytest.approx(1.0)


def test_the_decoder_refuses_words_the_model_does_not_know_and_too_short_clips():
    with pytest.raises(KeyError, match="green"):
        decode.read_slots(posteriors([]), WORDS, [["green"]], 25)
    assert decode.read_slots(posteriors([], frames=3), WORDS, SLOTS, 25) == []


def test_activity_is_high_where_words_are_and_low_in_silence():
    active = decode.activity(posteriors([(10, 25, "lay")]), WORDS)
    assert active[15:20].min() > 0.9 and active[:5].max() < 0.3 and active[30:].max() < 0.3


# --- training and export ------------------------------------------------------------------


def test_training_is_deterministic(trainer, clips, vocab):
    a, b = (trainer.train(clips[:2], vocab, epochs=1, seed=7, log=lambda _: None) for _ in "ab")
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("frames", [75, 9, 200], ids=["clip", "short", "long"])
def test_onnx_scores_equal_torch(clips, exported, frames):
    net, path = exported
    model = lm.LipReaderModel.load(path)
    c = clips[1]
    feats = np.resize(lm.features(c.controls, c.valid, c.lips), (frames, lm.N_FEATURES))
    with torch.no_grad():
        words, visemes = (t[0].numpy() for t in net(torch.from_numpy(feats)[None]))
    np.testing.assert_allclose(model.run(feats)[0], words, atol=1e-4)
    np.testing.assert_allclose(model.run(feats)[1], visemes, atol=1e-4)
    p = np.exp(model.word_log_posteriors(feats))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert model.metadata["features_version"] == lm.FEATURES_VERSION


def test_training_script_runs_end_to_end(ds, tmp_path):
    out = tmp_path / "lr.onnx"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(ds), "--out", str(out), "--epochs", "1",
         "--test", f"again={ds}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    card = out.with_suffix(".md").read_text()
    assert "| model: again | 4 |" in card and "| template matcher: again | 4 |" in card
    assert lm.LipReaderModel.load(out).metadata["epochs"] == "1"


# --- the model as shipped -----------------------------------------------------------------


def test_the_missing_model_says_how_to_make_one(tmp_path):
    with pytest.raises(EngineUnavailable, match="train_lipreader.py|--method template"):
        lm.LipReaderModel.load(tmp_path / "nothing.onnx")


def test_corrupt_or_foreign_model_files_are_clear_input_errors(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(lm.SHIPPED.read_bytes()[:300])  # a truncated download
    with pytest.raises(InputError, match="broken.onnx is not a readable ONNX model"):
        lm.LipReaderModel.load(bad)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id", [x], [y])
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(InputError, match="not a lip reader"):
        lm.LipReaderModel.load(path)


@pytest.fixture(scope="module")
def unseen_mouths(grid_mouths):
    """The tracked mouths of the three clips (tracked once per run: conftest.grid_mouths)."""
    return {clip: grid_mouths[clip] for clip in UNSEEN}


def test_the_shipped_model_reads_speakers_it_never_saw(unseen_mouths):
    """A third of the words of three unseen speakers at least (measured 7 of 18). Three clips
    cannot rank the model against the templates: eSpeak's readings, which the templates match,
    move by up to half a millisecond from one call to the next, enough to turn the templates'
    6 of 18 into 8 (models/lipreader.md ranks them on s4's 50 clips and seven speakers)."""
    from bridge_server.lipread.reader import load_grammar, read_by_model

    grid = load_grammar("grid")
    model = {
        c: read_by_model(m, lm.LipReaderModel.shipped(), slots=grid)
        for c, m in unseen_mouths.items()
    }
    right = sum(a == b for clip, truth in UNSEEN.items()
                for a, b in zip(model[clip][0].text.split(), truth.split()))  # fmt: skip
    print(f"unseen speakers, words right of 18: model {right}")
    assert right >= 6
    best = model["lbax4n.mpg"]
    assert len(best) == 5 and best[0].confidence >= best[-1].confidence
    words = best[0].words
    assert len(words) == 6 and all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:]))
    assert 0.3 < words[0].start < 1.5 and words[-1].end < 3.0  # GRID: speech mid-clip


def test_the_command_reads_with_the_model_by_default(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "bridge_server.cli", "lipread", str(GRID / "videos" / "lbax4n.mpg"),
         "--grammar", "grid", "--json", "-q", "--best", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert len(found) == 2 and len(found[0]["words"]) == 6 and found[0]["cost"] < found[1]["cost"]


def test_lines_of_its_words_are_read_by_the_model_and_other_lines_by_visemes(unseen_mouths):
    model = lm.LipReaderModel.shipped()
    mouth = unseen_mouths["lbax4n.mpg"]
    lines = ["lay blue at x four now", "bin red by a two please", "set green in q nine soon"]
    ranked = lm.read_with_model(model, mouth, 25.0, choices=lines)
    assert ranked[0].text == "lay blue at x four now" and ranked[0].spans
    other = lm.read_with_model(model, mouth, 25.0, choices=["hello there", "good morning"])
    assert {r.text for r in other} == {"hello there", "good morning"} and not other[0].spans
    with pytest.raises(InputError, match="does not know"):
        lm.read_with_model(model, mouth, 25.0, slots=[["hello"]])


def test_a_bridge_without_a_model_says_how_to_start_one(monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from bridge_server.serve.app import create_app

    monkeypatch.setattr(lm, "SHIPPED", tmp_path / "gone.onnx")
    lm.LipReaderModel.shipped.cache_clear()
    clip = GRID / "videos" / "pwij3p.mpg"
    try:
        with TestClient(create_app()) as client:
            r = client.post("/lipread", files={"file": (clip.name, clip.read_bytes())},
                            data={"grammar": "grid"})  # fmt: skip
            ok = client.post("/lipread", files={"file": (clip.name, clip.read_bytes())},
                             data={"grammar": "grid", "method": "template", "wait": "true"})  # fmt: skip
    finally:
        lm.LipReaderModel.shipped.cache_clear()
    assert r.status_code == 503 and "--lipreader" in r.json()["error"]
    assert ok.status_code == 200 and len(ok.json()["candidates"][0]["text"].split()) == 6


def test_activity_says_when_the_lips_speak_and_draws_it(tmp_path):
    plot = tmp_path / "speaking.png"
    out = subprocess.run(
        [sys.executable, "-m", "bridge_server.cli", "lipread", str(GRID / "videos" / "lbax4n.mpg"),
         "--activity", "--plot", str(plot), "--json", "-q"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert len(found["frames"]) == 75 and found["threshold"] == 0.5
    spans = found["spans"]
    speech = sum(s["end"] - s["start"] for s in spans)
    assert 1.0 < speech < 2.6 and spans[0]["start"] > 0.2  # GRID: silence around ~1.5 s of speech
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_script_timing_keeps_to_where_the_lips_speak(unseen_mouths):
    """Two seconds of resting mouth before a clip: the lips' activity puts the script's words on
    the speech, two seconds later than in the clip itself, not stretched over the still mouth."""
    from bridge_server.lipread.reader import speaking, time_script
    from bridge_server.mouth.controls import Mouth

    m, script = unseen_mouths["lbax4n.mpg"], UNSEEN["lbax4n.mpg"]
    still, pad = np.zeros(50, int), 50 / 25.0
    rows = np.r_[still, np.arange(len(m.times))]
    padded = Mouth(np.arange(len(rows)) / 25.0, m.lips[rows],
                   {k: v[rows] for k, v in m.controls.items()}, m.valid[rows])  # fmt: skip
    active = speaking(padded)
    assert active.spans[0][0] > pad  # nothing said while the mouth rests
    alone = time_script(m, script, speaking(m)).words
    found = time_script(padded, script, active)
    assert [w.text for w in found.words] == script.split()
    moved = [b.start - a.start for a, b in zip(alone, found.words)]
    assert np.mean(np.abs(np.array(moved) - pad)) < 0.08, moved
    assert found.duration == pytest.approx(len(rows) / 25.0)
