"""The video mouth stage: head pose, gaps, jitter, controls, visemes and fusion (the A/V
offset: tests/test_sync.py).

Synthetic arrays with exact expectations first, then the real GRID clips (landmarks from
mediapipe's face mesh, sound from the clips' MP2 tracks).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from bridge_server.core.visemes import load_set
from bridge_server.mouth import controls as M

GRID = Path(__file__).resolve().parents[2] / "shared" / "data" / "grid" / "videos"
CLIPS = sorted(p.name for p in GRID.glob("*.mpg"))
SETS = ["oculus15", "rhubarb", "preston_blair", "vrm5"]


# --- synthetic faces -----------------------------------------------------------------------


def rotation(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Row-vector rotation (p @ R) from angles in degrees about y, x and z."""
    a, b, c = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), np.sin(b)], [0, -np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), np.sin(c), 0], [-np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


@functools.cache
def base_face() -> np.ndarray:
    """478 points in face units: random stable points around the eyes, a closed mouth."""
    rng = np.random.default_rng(7)
    face = rng.normal(0, 0.4, (478, 3))
    m = M.mesh()
    face[m["eye_outer"]["right"]] = [-0.5, 0, 0]
    face[m["eye_outer"]["left"]] = [0.5, 0, 0]
    face[m["forehead"]] = [0, -0.6, 0.05]
    face[m["nose_bridge"]] = [0, 0.35, 0.05]  # same depth: canonical y = this y
    return mouth_shape(face)


def mouth_shape(face, gap=0.0, jaw=0.0, smile=0.0, narrow=0.0, forward=0.0) -> np.ndarray:
    """Lips as arcs (gap: the lower lip's drop at the centre), the chin below (jaw: its drop),
    corners (smile: up and out), width (narrow) and protrusion (forward), in face units."""
    face = face.copy()
    lips = M.mesh()["lips"]
    half = 0.27 - narrow / 2

    def arc(idx, y0, bulge, x_half):
        x = np.linspace(-x_half, x_half, len(idx) + 2)[1:-1] if len(idx) == 9 else None
        x = np.linspace(-x_half, x_half, len(idx)) if x is None else x
        face[idx] = np.stack([x, y0 + bulge * (1 - (x / x_half) ** 2), np.zeros_like(x)], 1)

    arc(lips["outer_upper"], 0.8, -0.08, half)
    arc(lips["inner_upper"], 0.8, -0.01, half - 0.03)
    arc(lips["outer_lower"], 0.8, 0.1 + gap, half)
    arc(lips["inner_lower"], 0.8, 0.01 + gap, half - 0.03)
    for side, sign in (("left", 1), ("right", -1)):
        face[M.mesh()["corners"][side]] = [sign * (half + smile / 2), 0.8 - smile, 0]
    face[M.lip_indices()] += [0, 0, -forward]
    face[M.mesh()["chin"]] = [0, 1.35 + jaw, 0]
    return face


def posed(face: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """n copies of a face, each turned, moved and scaled at random (pixels-like)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r = rotation(*rng.uniform(-35, 35, 3))
        out.append(face @ r * rng.uniform(50, 150) + rng.uniform(-200, 200, 3))
    return np.array(out)


# --- face_mesh.json ------------------------------------------------------------------------


def test_lip_indices_are_mediapipes_lips_in_chained_contours():
    conn = pytest.importorskip("mediapipe.python.solutions.face_mesh_connections")
    edges = {frozenset(e) for e in conn.FACEMESH_LIPS}
    lips = M.mesh()["lips"]
    assert len(M.lip_indices()) == len(set(M.lip_indices())) == 40
    assert set(M.lip_indices()) == {i for e in edges for i in e}
    corners = {"outer": M.mesh()["corners"], "inner": M.mesh()["inner_corners"]}
    for ring in ("outer", "inner"):
        c = corners[ring]
        upper = lips[f"{ring}_upper"]
        lower = [c["right"], *lips[f"{ring}_lower"], c["left"]]
        for chain in (upper, lower):
            assert all(frozenset(p) in edges for p in zip(chain, chain[1:])), chain


def test_stable_points_avoid_the_mouth_and_jaw():
    stable = set(M.mesh()["stable"])
    assert not stable & set(M.lip_indices())
    assert M.mesh()["chin"] not in stable
    assert {M.mesh()["forehead"], M.mesh()["nose_bridge"]} <= stable
    assert set(M.mesh()["eye_outer"].values()) <= stable


# --- head pose ------------------------------------------------------------------------------


def test_posed_copies_of_a_face_give_the_same_canonical_points():
    pts = posed(base_face(), 12)
    canon = M.remove_head_pose(pts)
    np.testing.assert_allclose(canon, np.broadcast_to(canon[0], canon.shape), atol=1e-9)
    m = M.mesh()["eye_outer"]
    np.testing.assert_allclose(
        canon[:, m["left"]] - canon[:, m["right"]], [[1, 0, 0]] * 12, atol=1e-9
    )


def test_pose_removal_keeps_mouth_motion_and_ignores_missing_frames():
    faces = [mouth_shape(base_face(), gap=g) for g in (0.0, 0.05, 0.1, 0.0)]
    pts = np.concatenate([posed(f, 1, seed=i) for i, f in enumerate(faces)])
    pts = np.insert(pts, 2, np.nan, axis=0)  # a frame with no face
    gap = M.measures(M.remove_head_pose(pts))["gap"]
    np.testing.assert_allclose(gap[[0, 1, 3, 4]], M.measures(np.array(faces))["gap"], atol=1e-9)
    assert np.isnan(gap[2])


# --- One Euro -------------------------------------------------------------------------------


def test_one_euro_passes_a_constant_at_any_frame_rate():
    t = np.cumsum(np.random.default_rng(0).uniform(0.01, 0.06, 100))
    x = np.full((100, 4, 3), 2.5)
    np.testing.assert_array_equal(M.OneEuroFilter(1.0, 0.5).run(t, x), x)


def test_one_euro_removes_jitter_at_rest():
    rng = np.random.default_rng(1)
    t = np.arange(300) / 30
    noisy = 1.0 + rng.normal(0, 0.01, 300)
    out = M.OneEuroFilter(min_cutoff=1.0, beta=0.5).run(t, noisy)
    assert np.std(out[30:] - 1.0) < np.std(noisy[30:] - 1.0) / 3


def test_one_euro_lags_little_on_a_ramp():
    t = np.arange(90) / 30
    ramp = 2.0 * t  # 2 units per second
    fast = M.OneEuroFilter(min_cutoff=1.0, beta=5.0).run(t, ramp)
    slow = M.OneEuroFilter(min_cutoff=1.0, beta=0.0).run(t, ramp)
    lag_fast, lag_slow = (ramp[-1] - fast[-1]) / 2, (ramp[-1] - slow[-1]) / 2  # seconds
    assert lag_fast < 0.02 < 0.1 < lag_slow


def test_one_euro_restarts_after_a_nan():
    f = M.OneEuroFilter(1.0, 0.0)
    f(0.0, np.array([0.0]))
    assert np.isnan(f(0.04, np.array([np.nan])))[0]
    assert f(0.08, np.array([5.0]))[0] == 5.0


# --- gaps -----------------------------------------------------------------------------------


def test_short_gaps_are_interpolated_long_ones_flagged():
    t = np.arange(40) / 25
    v = np.stack([t, 2 * t], 1)
    holed = v.copy()
    holed[5:8] = np.nan  # 0.12 s
    holed[20:30] = np.nan  # 0.40 s
    filled, long_gap = M.fill_gaps(t, holed, max_gap_s=0.25)
    np.testing.assert_allclose(filled[5:8], v[5:8])
    assert long_gap[20:30].all() and not long_gap[:20].any() and not long_gap[30:].any()
    assert np.isnan(filled[20:30]).all()


def test_gaps_at_the_ends_hold_the_nearest_face():
    t = np.arange(20) / 25
    v = t[:, None].copy()
    v[:3] = np.nan
    v[-2:] = np.nan
    filled, long_gap = M.fill_gaps(t, v, max_gap_s=0.25)
    np.testing.assert_allclose(filled[:3, 0], t[3])
    np.testing.assert_allclose(filled[-2:, 0], t[-3])
    assert not long_gap.any()


def test_a_gap_of_exactly_the_limit_is_interpolated():
    t = np.arange(30) / 25
    v = t[:, None].copy()
    v[10:15] = np.nan  # 5 frames = 0.20 s
    assert not M.fill_gaps(t, v, max_gap_s=0.2)[1].any()
    assert M.fill_gaps(t, v, max_gap_s=0.16)[1][10:15].all()


# --- controls -------------------------------------------------------------------------------


def controls_of(**shape) -> dict[str, float]:
    rest = M.neutral(np.zeros(1), base_face()[None])
    c = M.mouth_controls(mouth_shape(base_face(), **shape)[None], rest)
    return {k: float(v[0]) for k, v in c.items()}


def test_controls_are_zero_at_neutral():
    assert controls_of() == {k: 0.0 for k in M.CONTROLS}


def test_opening_the_mouth_raises_lips_apart_and_jaw_open():
    steps = [controls_of(gap=g, jaw=g) for g in (0.02, 0.05, 0.1)]
    for name in ("lips_apart", "jaw_open"):
        values = [s[name] for s in steps]
        assert 0 < values[0] < values[1] < values[2], (name, values)
    assert steps[-1]["mouth_close"] == 0  # lips well apart: not a closed-lips jaw drop


@pytest.mark.parametrize(
    ("shape", "rises"),
    [
        ({"smile": 0.04}, {"smile_left", "smile_right"}),
        ({"narrow": 0.08, "forward": 0.05}, {"pucker"}),
        ({"narrow": 0.08, "forward": 0.05, "gap": 0.1}, {"funnel", "lips_apart"}),
        ({"jaw": 0.08}, {"jaw_open", "mouth_close"}),
    ],
    ids=["smile", "pucker", "funnel", "jaw-with-lips-sealed"],
)
def test_each_shape_raises_its_controls(shape, rises):
    c = controls_of(**shape)
    for name in rises:
        assert c[name] > 0.3, (name, c)
    assert all(0.0 <= v <= 1.0 for v in c.values())


def test_neutral_from_a_calibration_span():
    faces = np.array([mouth_shape(base_face(), gap=g) for g in (0.1, 0.0, 0.0, 0.1, 0.1)])
    t = np.arange(5) / 25
    rest = M.neutral(t, faces, span=(0.03, 0.09))
    assert rest.method == "span" and rest.frames.tolist() == [False, True, True, False, False]
    assert rest.measures["gap"] == pytest.approx(M.measures(faces[1])["gap"])


def test_track_mouth_flags_long_gaps_and_turned_heads():
    faces = np.array([mouth_shape(base_face(), gap=0.08 * (i % 5 == 2)) for i in range(50)])
    pts = faces * 100 + [180, 140, 0]
    pts[10:20] = np.nan  # 0.4 s without a face
    pts[30] = pts[30] @ rotation(70)  # looks away for one frame
    mouth = M.track_mouth(np.arange(50) / 25, pts)
    assert mouth.lips.shape == (50, 40, 3)
    assert mouth.flags["long_gap"][10:20].all() and mouth.flags["turned_away"][30]
    assert mouth.flags["filled"][30] and not mouth.valid[10:20].any()
    assert mouth.controls["lips_apart"][12:20].max() < 0.02  # the neutral mouth, smoothed into
    assert mouth.controls["lips_apart"][2] > 0.3


# --- visemes from controls ------------------------------------------------------------------


@pytest.mark.parametrize("name", SETS)
def test_each_prototype_is_read_back_as_its_viseme(name):
    """A mouth exactly in one shape leads with that shape, or with one that looks the same at
    another strength (oculus15's nn is 0.6 x kk: no video can tell them apart), and the rig
    shows that mouth."""
    vset = load_set(name)
    protos = M._json("viseme_controls.json")["sets"][name]
    vec = {v: np.array([p.get(k, 0.0) for k in M.CONTROLS]) for v, p in protos.items()}
    for viseme, proto in vec.items():
        w = M.viseme_weights_from_controls(dict(zip(M.CONTROLS, proto[:, None])), vset)
        best = max((v for v in w if v != vset.rest), key=lambda v: w[v][0])
        cosine = proto @ vec[best] / np.linalg.norm(proto) / np.linalg.norm(vec[best])
        assert best == viseme or cosine > 0.99, (viseme, {v: round(x[0], 2) for v, x in w.items()})
        assert sum(x[0] for x in w.values()) == pytest.approx(1.0)
        shown = sum(w[v][0] * vec[v] for v in vec)
        np.testing.assert_allclose(shown, proto, rtol=0.15, atol=0.06)  # the ridge shrinks it


def test_a_mouth_between_two_shapes_is_read_as_their_mix():
    """Half 'aa', half 'ou' (an open, rounded mouth): both shapes, about half each, and the rig
    shows the mouth it was given (one shape at a time could not)."""
    vset = load_set("oculus15")
    protos = M._json("viseme_controls.json")["sets"]["oculus15"]
    proto = {v: np.array([protos[v].get(k, 0.0) for k in M.CONTROLS]) for v in ("aa", "ou")}
    mouth = 0.5 * proto["aa"] + 0.5 * proto["ou"]
    w = M.viseme_weights_from_controls(dict(zip(M.CONTROLS, mouth[:, None])), vset)
    assert w["aa"][0] == pytest.approx(0.5, abs=0.1) and w["ou"][0] == pytest.approx(0.5, abs=0.1)
    shown = w["aa"][0] * proto["aa"] + w["ou"][0] * proto["ou"]
    np.testing.assert_allclose(shown, mouth, rtol=0.15, atol=0.01)  # the ridge shrinks a little


def test_mixes_never_exceed_one_and_follow_the_mouth_smoothly():
    """However wide or odd the mouth, the weights are 0..1 and sum to at most 1; a mouth that
    opens steadily moves the weights steadily (no shape flickers on and off)."""
    vset = load_set("preston_blair")
    rng = np.random.default_rng(0)
    odd = dict(zip(M.CONTROLS, rng.uniform(0, 2, (len(M.CONTROLS), 50))))
    w = np.stack(list(M.viseme_weights_from_controls(odd, vset).values()), 1)
    assert w.min() >= 0 and np.allclose(w.sum(1), 1.0)
    opening = np.linspace(0, 1, 101)
    steady = {k: np.zeros(101) for k in M.CONTROLS} | {"jaw_open": opening, "lips_apart": opening}
    w = np.stack(list(M.viseme_weights_from_controls(steady, vset).values()), 1)
    assert np.abs(np.diff(w, axis=0)).max() < 0.1


def test_a_stream_frame_by_frame_mixes_as_the_whole_line_does():
    """Live streams mix one frame at a time from the frame before (few steps): the rig shows
    the mouth the whole line at once shows, within 0.01, by nearly the same weights."""
    vset = load_set("oculus15")
    protos = M._json("viseme_controls.json")["sets"]["oculus15"]
    vec = {v: np.array([protos.get(v, {}).get(k, 0.0) for k in M.CONTROLS]) for v in vset.visemes}
    rng = np.random.default_rng(1)
    mouth = np.clip(np.abs(np.cumsum(rng.normal(0, 0.05, (200, len(M.CONTROLS))), 0)), 0, 1)
    whole = M.viseme_weights_from_controls(dict(zip(M.CONTROLS, mouth.T)), vset)
    shares = None
    for i, row in enumerate(mouth):
        shares = M.viseme_weights_from_controls(dict(zip(M.CONTROLS, row[:, None])), vset,
                                                start=shares)  # fmt: skip
        shown = [sum(w[v][j] * vec[v] for v in vec) for w, j in ((shares, 0), (whole, i))]
        np.testing.assert_allclose(*shown, atol=0.01)
        assert max(abs(shares[v][0] - whole[v][i]) for v in whole) < 0.1, i  # look-alikes trade


@pytest.mark.parametrize("name", SETS)
def test_a_neutral_mouth_rests(name):
    vset = load_set(name)
    zero = {k: np.zeros(3) for k in M.CONTROLS}
    channels = M.visemes_from_controls(zero, vset)
    rest = vset.visemes[vset.rest].channels
    assert set(channels) == set(vset.channels)
    for ch, v in channels.items():
        np.testing.assert_allclose(v, rest.get(ch, 0.0))


def test_arkit_channels_from_controls_or_blendshapes():
    c = {k: np.zeros(2) for k in M.CONTROLS} | {"jaw_open": np.array([0.0, 0.7])}
    out = M.visemes_from_controls(c, "arkit")
    assert set(out) == set(load_set("arkit").channels)
    np.testing.assert_allclose(out["jawOpen"], [0.0, 0.7])
    names = ["_neutral", "jawOpen", "mouthFunnel"]
    scores = np.array([[0.1, 0.2, 0.3], [np.nan, np.nan, np.nan]])
    out = M.visemes_from_controls(c, "arkit", blendshapes=scores, blendshape_names=names)
    np.testing.assert_allclose(out["jawOpen"], [0.2, 0.0])
    np.testing.assert_allclose(out["mouthFunnel"], [0.3, 0.0])
    np.testing.assert_allclose(out["tongueOut"], [0.0, 0.0])


# --- fusion ---------------------------------------------------------------------------------


def audio_and_video():
    """Audio says aa, PP, aa; the video shows a wide-open 'oh' throughout."""
    audio = {
        "sil": np.zeros(5),
        "PP": np.array([0, 0, 1.0, 0, 0]),
        "aa": np.array([0.6, 0.6, 0, 0.6, 0.6]),
        "oh": np.zeros(5),
    }
    video = {"sil": np.zeros(5), "PP": np.zeros(5), "aa": np.full(5, 0.2), "oh": np.full(5, 0.9)}
    return audio, video, np.full(5, 0.9)


def test_fuse_at_weight_zero_is_the_audio():
    audio, video, amp = audio_and_video()
    out = M.fuse(audio, video, amp, 0.0)
    for ch in audio:
        np.testing.assert_array_equal(out[ch], audio[ch])


@pytest.mark.parametrize("weight", [0.3, 0.7, 1.0])
def test_fuse_keeps_closures(weight):
    audio, video, amp = audio_and_video()
    out = M.fuse(audio, video, amp, weight)
    assert out["PP"][2] == 1.0
    assert out["aa"][2] == 0.0 and out["oh"][2] == 0.0
    assert out["oh"][0] == pytest.approx(weight * 0.9 / 2)  # the video's shape ...
    assert out["aa"][0] + out["oh"][0] > audio["aa"][0]  # ... and its wider opening


def test_fuse_with_a_closure_signal_for_sets_without_a_closed_channel():
    audio = {"aa": np.array([0.5, 0.0, 0.5])}
    video = {"aa": np.array([0.9, 0.9, 0.9])}
    out = M.fuse(audio, video, np.full(3, 0.9), 1.0, closure=np.array([0, 1.0, 0]), closed=())
    assert out["aa"][1] == 0.0 and out["aa"][0] > 0.5


def test_fuse_uses_audio_where_there_is_no_face():
    audio, video, amp = audio_and_video()
    usable = np.array([True, False, True, True, True])
    out = M.fuse(audio, video, amp, 1.0, usable=usable)
    for ch in audio:
        assert out[ch][1] == pytest.approx(audio[ch][1])


# --- the real GRID clips --------------------------------------------------------------------


@functools.cache
def tracked(name: str):
    """(times, points) of a GRID clip from mediapipe's face mesh, and its sound at 16 kHz."""
    av = pytest.importorskip("av")
    mp = pytest.importorskip("mediapipe")
    from bridge_server.media.audio import load_audio

    times, points = [], []
    mesh = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False, max_num_faces=1, refine_landmarks=True
    )
    with mesh, av.open(str(GRID / name)) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="rgb24")
            h, w = image.shape[:2]
            found = mesh.process(image).multi_face_landmarks
            lm = found[0].landmark if found else []
            points.append([[p.x * w, p.y * h, p.z * w] for p in lm] or np.full((478, 3), np.nan))
            times.append(frame.time)
    return np.array(times), np.array(points, np.float32), load_audio(GRID / name).samples


def loudness_db(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Times and loudness (dB, floored 30 dB below the loud level) of each 10 ms."""
    hop = sample_rate // 100
    n = len(samples) // hop
    rms = np.sqrt(np.mean(np.asarray(samples[: n * hop], float).reshape(n, hop) ** 2, axis=1))
    floor = np.percentile(rms, 95) * 10 ** (-30 / 20)
    return (np.arange(n) + 0.5) / 100, 20 * np.log10(np.maximum(rms, floor) + 1e-12)


needs_grid = pytest.mark.skipif(not CLIPS, reason="GRID clips not in ../shared/data")


@pytest.mark.slow
@needs_grid
@pytest.mark.parametrize("clip", CLIPS)
def test_grid_lips_apart_follows_the_speech(clip):
    times, points, samples = tracked(clip)
    mouth = M.track_mouth(times, points)
    assert mouth.valid.all()
    et, env = loudness_db(samples, 16000)
    r = np.corrcoef(mouth.controls["lips_apart"], np.interp(times, et, env))[0, 1]
    assert r > 0.15, f"{clip}: lips_apart vs loudness r = {r:.2f}"  # 0.24-0.61 on GRID
    assert mouth.controls["lips_apart"].max() > 0.5
    assert np.median(mouth.controls["lips_apart"][mouth.neutral.frames]) < 0.05


@pytest.mark.slow
@needs_grid
def test_grid_head_turn_leaves_lips_apart_unchanged():
    times, points, _ = tracked(CLIPS[0])
    centre = np.nanmean(points, axis=(0, 1))
    turned = (points - centre) @ rotation(30, 10, 12) * 0.8 + centre + [15, -10, 0]
    before = M.track_mouth(times, points).controls["lips_apart"]
    after = M.track_mouth(times, turned).controls["lips_apart"]
    np.testing.assert_allclose(after, before, atol=1e-3)
    # Without the pose removal the same turn reads as mouth motion.
    raw = M.measures(points / 100)["gap"] - M.measures(turned / 100)["gap"]
    assert np.abs(raw).max() > 0.01
