"""The trained lip reader: dataset loading, the shared features, training, ONNX export and the
onnxruntime run time, sentence ranking. Real GRID clips, a few epochs: these check that it
runs and agrees with itself, not that it reads lips (held-out accuracy goes in the card)."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from bridge_server.core.errors import EngineUnavailable, InputError
from bridge_server.lipread import model as lm
from bridge_server.mouth.controls import CONTROLS

from .conftest import ROOT, SHARED

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("mediapipe")

GRID = SHARED / "grid"
SCRIPT = ROOT / "models" / "train_lipreader.py"
TRANSCRIPTS = [
    "bin blue at f two now",
    "set white with p two soon",
    "lay blue at x four now",
    "place white in j three please",
]


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
def ds(tmp_path_factory):
    """A dataset of two GRID clips, made by the dataset builder once per module."""
    from bridge_server import dataset

    out = tmp_path_factory.mktemp("lipreader") / "ds"
    result = dataset.build(GRID / "videos", out, transcripts=GRID / "transcripts.tsv", limit=2)
    assert not result.failed, result.failed
    return out


@pytest.fixture(scope="module")
def clips(trainer, ds):
    return trainer.load_dataset(ds)


@pytest.fixture(scope="module")
def exported(trainer, clips, tmp_path_factory):
    """A model trained for a few epochs, and its ONNX export."""
    net = trainer.train(clips, epochs=5, seed=0)
    path = trainer.export_onnx(net, tmp_path_factory.mktemp("model") / "lr.onnx", {"fps": "25"})
    return net, path


def test_dataset_folder_loads_into_arrays(clips):
    assert [c.id for c in clips] == ["bbaf2n", "id2_vcd_swwp2s"]
    for c in clips:
        n = len(c.times)
        assert n == 75 and c.fps == pytest.approx(25.0)
        assert c.controls.shape == (n, len(CONTROLS)) and c.valid.shape == (n,)
        assert c.visemes.dtype == np.int64 and 0 <= c.visemes.min() <= c.visemes.max() < 15
        assert c.visemes[0] == lm.SILENCE and (c.visemes != lm.SILENCE).sum() > 20


def test_training_uses_the_runtime_feature_function(trainer, clips):
    assert trainer.features is lm.features
    c = clips[0]
    as_dict = {k: c.controls[:, i] for i, k in enumerate(CONTROLS)}
    a, b = lm.features(c.controls, c.valid), lm.features(as_dict, c.valid)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(trainer.clip_features(c), a)
    assert a.shape == (75, lm.N_FEATURES) and a.dtype == np.float32


def test_features_are_z_scored_controls_and_their_differences():
    rng = np.random.default_rng(1)
    controls = rng.uniform(0, 1, (50, len(CONTROLS)))
    controls[:, 3] = 0.25  # a control that never moves stays 0, not noise blown up
    valid = np.ones(50, bool)
    valid[10:15] = False
    controls[12] = np.nan
    f = lm.features(controls, valid)
    z, d = f[:, : len(CONTROLS)], f[:, len(CONTROLS) :]
    np.testing.assert_allclose(z[valid].mean(axis=0), 0.0, atol=1e-5)
    assert np.all(z[~valid] == 0.0) and np.all(z[:, 3] == 0.0)
    np.testing.assert_allclose(d[1:], np.diff(z, axis=0), atol=1e-6)
    assert np.all(d[0] == 0.0) and np.isfinite(f).all()


def test_training_is_deterministic(trainer, clips):
    a, b = (trainer.train(clips, epochs=3, seed=7) for _ in range(2))
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("frames", [75, 9, 200], ids=["clip", "short", "long"])
def test_onnx_logits_equal_torch(trainer, clips, exported, frames):
    net, path = exported
    model = lm.LipReaderModel.load(path)
    feats = np.resize(trainer.clip_features(clips[1]), (frames, lm.N_FEATURES))
    np.testing.assert_allclose(model.logits(feats), trainer.torch_logits(net, feats), atol=1e-4)
    assert model.metadata["features_version"] == lm.FEATURES_VERSION
    assert tuple(__import__("json").loads(model.metadata["classes"])) == lm.VISEMES


def test_posteriors_are_distributions(clips, exported):
    model = lm.LipReaderModel.load(exported[1])
    p = model.posteriors(lm.features(clips[0].controls, clips[0].valid))
    assert p.shape == (75, 15) and (p >= 0).all() and (p <= 1).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert model.posteriors(np.zeros((0, lm.N_FEATURES), np.float32)).shape == (0, 15)


def test_missing_model_says_how_to_make_one(tmp_path):
    with pytest.raises(EngineUnavailable, match="train_lipreader.py"):
        lm.LipReaderModel.load(tmp_path / "nothing.onnx")


def test_corrupt_model_file_is_a_clear_input_error(tmp_path, exported):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(exported[1].read_bytes()[:300])  # a truncated download
    with pytest.raises(InputError, match="broken.onnx is not a readable ONNX model"):
        lm.LipReaderModel.load(bad)
    bad.write_text("not a model")
    with pytest.raises(InputError, match="not a readable ONNX model"):
        lm.LipReaderModel.load(bad)


def test_other_onnx_model_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id", [x], [y])
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(InputError, match="not a lip reader"):
        lm.LipReaderModel.load(path)


def test_rank_with_model_ranks_every_candidate(clips, exported):
    model = lm.LipReaderModel.load(exported[1])
    c = clips[0]
    ranked = lm.rank_with_model(model, c.controls, c.valid, c.fps, TRANSCRIPTS)
    assert sorted(t for t, _ in ranked) == sorted(TRANSCRIPTS)
    costs = [cost for _, cost in ranked]
    assert costs == sorted(costs) and np.isfinite(costs).all()
    with pytest.raises(InputError, match="no candidate"):
        lm.rank_with_model(model, c.controls, c.valid, c.fps, [])


def test_expected_visemes_come_from_espeak_at_the_frame_rate():
    seq = lm.expected_visemes("bin blue", 25.0)
    names = [lm.VISEMES[i] for i in seq]
    assert names[0] == "PP" and names[-1] == "ou"  # b..., ...u; silence trimmed
    assert {"ih", "nn"} <= set(names) and len(seq) > len(lm.expected_visemes("bin", 25.0))


def test_warp_cost_prefers_the_matching_template_and_silence_is_free_at_the_ends():
    a, b = lm.VISEMES.index("aa"), lm.VISEMES.index("PP")
    truth = [a] * 6 + [b] * 4 + [a] * 6
    post = np.full((30, 15), 0.01)
    post[np.arange(7, 23), truth] = 0.86  # speech in the middle, silence around it
    post[:7, lm.SILENCE] = post[23:, lm.SILENCE] = 0.86
    neg = -np.log(post)
    good = lm.warp_cost(neg, truth[::2])  # said twice as slowly as the template: stretches
    assert good == pytest.approx(-np.log(0.86))
    assert lm.warp_cost(neg, [b] * 8 + [a] * 8) > good + 0.5
    assert lm.warp_cost(neg, []) > good and lm.warp_cost(neg[:0], truth) == np.inf


def test_training_script_runs_end_to_end(ds, tmp_path):
    out = tmp_path / "lr.onnx"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(ds), "--out", str(out), "--epochs", "3",
         "--distractors", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "majority class" in run.stdout and out.is_file()
    card = out.with_suffix(".md").read_text()
    assert "leave-one-clip-out" in card and "| prototypes |" in card
    assert lm.LipReaderModel.load(out).metadata["epochs"] == "3"


def test_the_command_ranks_choices_with_a_model(exported, tmp_path, capsys):
    from bridge_server.cli import main

    lines = tmp_path / "lines.txt"
    lines.write_text("place white in j three please\nbin blue at f two now\n")
    clip = GRID / "videos" / "pwij3p.mpg"
    model = exported[1]
    assert main(["lipread", str(clip), "--choices", str(lines), "--model", str(model),
                 "--json", "-q"]) == 0  # fmt: skip
    ranked = json.loads(capsys.readouterr().out)
    assert sorted(c["text"] for c in ranked) == sorted(lines.read_text().split("\n")[:2])
    assert sum(c["confidence"] for c in ranked) == pytest.approx(1.0, abs=0.01)
    assert main(["lipread", str(clip), "--grammar", "grid", "--model", str(model)]) == 3
    assert main(["lipread", str(clip), "--choices", str(lines), "--model",
                 str(tmp_path / "none.onnx")]) == 4  # fmt: skip


def test_the_bridge_ranks_with_its_model_when_started_with_one(exported):
    import urllib.request

    from tests.bridge import running_bridge

    clip = GRID / "videos" / "pwij3p.mpg"
    lines = "place white in j three please\nbin blue at f two now"
    with running_bridge(None, "--lipreader", str(exported[1])) as url:
        body, ctype = _form({"choices": lines, "model": "true", "wait": "true"}, clip)
        request = urllib.request.Request(url + "/lipread", body, {"Content-Type": ctype})
        ranked = json.loads(urllib.request.urlopen(request, timeout=120).read())["candidates"]
    assert sorted(c["text"] for c in ranked) == sorted(lines.splitlines())


def test_a_bridge_without_a_model_says_how_to_start_one():
    from fastapi.testclient import TestClient

    from bridge_server.serve.app import create_app

    clip = GRID / "videos" / "pwij3p.mpg"
    with TestClient(create_app()) as client:
        r = client.post("/lipread", files={"file": (clip.name, clip.read_bytes())},
                        data={"choices": "a\nb", "model": "true"})  # fmt: skip
    assert r.status_code == 400 and "--lipreader" in r.json()["error"]


def _form(fields: dict, path) -> tuple[bytes, str]:
    boundary = "lipsyncboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
