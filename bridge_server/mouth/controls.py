"""Tracked face landmarks -> a head-free mouth -> mouth controls 0..1 -> viseme channels.

Pure numpy: the landmarks come from the face engine (MediaPipe face mesh, 468/478 points in
pixels, x right, y down, z depth). The stages, each usable alone:

    remove_head_pose  rigid fit on points that do not move when speaking: a head-fixed frame
                      in face units (1 = the distance between the outer eye corners)
    fill_gaps         frames without a face: short gaps interpolated, long ones flagged
    OneEuroFilter     jitter removal that keeps fast lip motion (Casiez et al., CHI 2012)
    neutral           the actor's relaxed closed mouth; controls are measured against it
    mouth_controls    ten controls 0..1 (data/mouth_controls.json documents each one)
    visemes_from_controls / fuse   video -> channels, and audio + video together

(The A/V offset is mouth.sync's learned model.)

`track_mouth` runs the first five in order. Index tables are data (data/face_mesh.json), and
so are the control ranges, the per-viseme control prototypes (data/viseme_controls.json) and
the metric they are mixed in (data/viseme_mapping.json, fitted by models/fit_viseme_mapping.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..core.curves import to_channels
from ..core.errors import InputError
from ..core.phonemes import DATA
from ..core.visemes import VisemeSet, load_set

_EPS = 1e-9
STREAM_STEPS = 20  # mix_of's steps for each frame of a live stream, from the frame before


@functools.cache
def _json(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def mesh() -> dict:
    """The landmark index table (data/face_mesh.json)."""
    return _json("face_mesh.json")


def control_table() -> dict:
    """Control definitions, ranges in face units, and tracking settings (mouth_controls.json)."""
    return _json("mouth_controls.json")


def lip_indices() -> list[int]:
    """The 40 lip points: outer upper, outer lower, inner upper, inner lower contours."""
    lips = mesh()["lips"]
    return [*lips["outer_upper"], *lips["outer_lower"], *lips["inner_upper"], *lips["inner_lower"]]


CONTROLS = tuple(_json("mouth_controls.json")["controls"])


# --- head pose ----------------------------------------------------------------------------


def remove_head_pose(points: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Every frame's points moved, turned and scaled so its stable points best match a
    head-fixed reference: rigid head motion no longer reads as mouth motion.

    points: (N, P, 3) face-mesh points (P >= 468), NaN rows where no face. reference: the
    stable points (S, 3) in the canonical frame; default the clip's own median stable shape.
    Canonical frame: origin between the outer eye corners, x towards the subject's left eye,
    y down the face, z away from the camera; unit = outer eye corner distance ("face units").
    """
    pts = np.asarray(points, dtype=float)
    if reference is None:
        reference = canonical_reference(pts)
    scale, rot, src, dst = _similarity(pts[:, mesh()["stable"]], reference)
    out = scale[:, None, None] * np.einsum("npi,nij->npj", pts - src[:, None], rot)
    return out + dst


def canonical_reference(points: np.ndarray, rounds: int = 3) -> np.ndarray:
    """The clip's median stable shape (generalised Procrustes), in the canonical frame."""
    stable = np.asarray(points, dtype=float)[:, mesh()["stable"]]
    seen = stable[~np.isnan(stable).any(axis=(1, 2))]
    if not len(seen):
        raise ValueError("no frame has a face: nothing to fit the head pose to")
    ref = np.median(seen - seen.mean(axis=1, keepdims=True), axis=0)
    for _ in range(rounds):  # median of the aligned frames; a few rounds settle it
        s, r, src, dst = _similarity(seen, ref)
        ref = np.median(s[:, None, None] * np.einsum("npi,nij->npj", seen - src[:, None], r), 0)
        ref += dst
    return _to_canonical_axes(ref)


def _to_canonical_axes(stable: np.ndarray) -> np.ndarray:
    m, idx = mesh(), mesh()["stable"]
    eye_r, eye_l = (stable[idx.index(m["eye_outer"][k])] for k in ("right", "left"))
    top, bridge = stable[idx.index(m["forehead"])], stable[idx.index(m["nose_bridge"])]
    x = (eye_l - eye_r) / np.linalg.norm(eye_l - eye_r)
    y = bridge - top
    y = (y - (y @ x) * x) / np.linalg.norm(y - (y @ x) * x)
    axes = np.stack([x, y, np.cross(x, y)], axis=1)
    return (stable - (eye_l + eye_r) / 2) @ axes / np.linalg.norm(eye_l - eye_r)


def _similarity(src: np.ndarray, dst: np.ndarray):
    """Per frame, the scale s, rotation R (row vectors) and centroids that map src (N, S, 3)
    onto dst (S, 3) in the least-squares sense (Umeyama 1991). NaN frames give NaN."""
    mu_s, mu_d = src.mean(axis=1), dst.mean(axis=0)
    a, b = src - mu_s[:, None], dst - mu_d
    u, sv, vt = np.linalg.svd(np.einsum("nki,kj->nij", np.nan_to_num(a), b))
    d = np.sign(np.linalg.det(u @ vt))  # no reflections
    u[:, :, 2] *= d[:, None]
    sv[:, 2] *= d
    scale = sv.sum(axis=1) / np.maximum(np.sum(a * a, axis=(1, 2)), _EPS)
    return scale, u @ vt, mu_s, mu_d


def head_angles(points: np.ndarray) -> np.ndarray:
    """(N, 2) yaw and pitch in degrees of each frame's head against the camera (0 = facing
    it), from the eye line and the forehead-to-nose-bridge line; NaN where no face."""
    p = np.asarray(points, dtype=float)
    m = mesh()
    eye = p[:, m["eye_outer"]["left"]] - p[:, m["eye_outer"]["right"]]
    down = p[:, m["nose_bridge"]] - p[:, m["forehead"]]
    yaw = np.arcsin(np.clip(eye[:, 2] / np.linalg.norm(eye, axis=1), -1, 1))
    pitch = np.arcsin(np.clip(down[:, 2] / np.linalg.norm(down, axis=1), -1, 1))
    return np.degrees(np.stack([yaw, pitch], axis=1))


# --- gaps and jitter ----------------------------------------------------------------------


def fill_gaps(
    times: np.ndarray, values: np.ndarray, max_gap_s: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """Fill rows with NaN (no face): runs lasting at most max_gap_s are interpolated linearly
    (held at the clip's ends); longer runs stay NaN and are True in the returned mask.

    NaN rather than a guess, because only the caller knows what a missing mouth should do:
    track_mouth puts the neutral mouth there, and fuse() lets the audio alone drive it.
    """
    t = np.asarray(times, dtype=float)
    vals = np.array(values, dtype=float)
    flat = vals.reshape(len(t), -1)
    seen = ~np.isnan(flat).any(axis=1)
    long_gap = np.zeros(len(t), bool)
    if not seen.any():
        return vals, ~long_gap
    period = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    for lo, hi in _runs(~seen):
        long_gap[lo:hi] = t[hi - 1] - t[lo] + period > max_gap_s + 1e-9
    fill = ~seen & ~long_gap
    flat[fill] = _interp_rows(t[fill], t[seen], flat[seen])
    return flat.reshape(vals.shape), long_gap


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _interp_rows(t: np.ndarray, tk: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """np.interp for every column of rows at once (held beyond the ends)."""
    hi = np.clip(np.searchsorted(tk, t), 1, len(tk) - 1) if len(tk) > 1 else np.zeros(len(t), int)
    lo = np.maximum(hi - 1, 0)
    span = np.where(tk[hi] > tk[lo], tk[hi] - tk[lo], 1.0)
    w = np.clip((t - tk[lo]) / span, 0.0, 1.0)[:, None]
    return rows[lo] * (1 - w) + rows[hi] * w


class OneEuroFilter:
    """The 1€ filter (Casiez, Roussel, Vogel, CHI 2012): a low-pass whose cutoff rises with
    speed, so a still mouth stops jittering and a moving one does not lag.

    Works element-wise on arrays of any shape, sample by sample with their own timestamps
    (variable frame rate). min_cutoff (Hz) sets the smoothing at rest, beta (per unit of
    speed) how fast the cutoff opens, d_cutoff (Hz) the smoothing of the speed estimate.
    A sample with NaN restarts the filter (a face lost and found again).
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self._t: float | None = None
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, t: float, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if np.isnan(x).any():
            self.reset()
            return x
        if self._t is None or self._x is None or self._dx is None:
            self._t, self._x, self._dx = t, x, np.zeros_like(x)
            return x
        dt = t - self._t
        if dt <= 0:  # a repeated timestamp adds nothing
            return self._x
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x

    def run(self, times: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Filter a whole track (rows = samples at `times`) from a fresh state."""
        self.reset()
        return np.stack([self(float(t), v) for t, v in zip(times, values)])


def _alpha(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    tau = 1.0 / (2 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


# --- neutral and controls -----------------------------------------------------------------


@dataclass
class Neutral:
    """The actor's relaxed closed mouth: canonical points and their measures."""

    points: np.ndarray  # (P, 3) canonical
    measures: dict[str, float]
    frames: np.ndarray  # (N,) bool: the frames it was taken from
    method: str  # "quietest" (least open frames) or "span" (an explicit calibration span)


def measures(canonical: np.ndarray) -> dict[str, np.ndarray]:
    """Raw mouth geometry per frame, in face units (canonical frame: y down, z away)."""
    p = np.asarray(canonical, dtype=float)
    if p.ndim == 2:
        return {k: v[0] for k, v in measures(p[None]).items()}
    m = mesh()
    y, z = p[..., 1], p[..., 2]
    up, lo = zip(*m["inner_pairs"])
    right, left = m["corners"]["right"], m["corners"]["left"]
    top, bottom = m["outer_centre"]["upper"], m["outer_centre"]["lower"]
    centre = [top, bottom, m["inner_centre"]["upper"], m["inner_centre"]["lower"]]
    gap = np.mean(y[:, list(lo)] - y[:, list(up)], axis=1)
    return {
        "gap": gap,
        "thickness": y[:, bottom] - y[:, top] - gap,  # both lips' red height together
        "width": p[:, left, 0] - p[:, right, 0],
        "chin": y[:, m["chin"]],
        "upper": y[:, top],
        "lower_above_chin": y[:, m["chin"]] - y[:, bottom],
        "forward": -np.mean(z[:, centre], axis=1),
        "out_left": p[:, left, 0],
        "out_right": -p[:, right, 0],
        "up_left": -y[:, left],
        "up_right": -y[:, right],
    }


def neutral(
    times: np.ndarray,
    canonical: np.ndarray,
    *,
    span: tuple[float, float] | None = None,
    percentile: float | None = None,
    usable: np.ndarray | None = None,
) -> Neutral:
    """The relaxed closed mouth: the median shape over an explicit calibration span
    (start, end seconds), or else over the least open usable frames (lip gap at or below
    `percentile`, default from mouth_controls.json)."""
    t = np.asarray(times, dtype=float)
    p = np.asarray(canonical, dtype=float)
    ok = ~np.isnan(p).any(axis=(1, 2)) if usable is None else np.asarray(usable, bool)
    if span is not None:
        frames = ok & (t >= span[0]) & (t <= span[1])
        method = "span"
    else:
        q = control_table()["tracking"]["neutral_percentile"] if percentile is None else percentile
        gap = measures(np.where(ok[:, None, None], p, 0.0))["gap"]
        frames = ok & (gap <= np.percentile(gap[ok], q)) if ok.any() else ok
        method = "quietest"
    if not frames.any():
        where = f"between {span[0]:g} and {span[1]:g} s" if span else "in the video"
        raise InputError(
            f"no frame {where} shows the face to calibrate the resting mouth on; choose a span "
            "where the actor faces the camera with the mouth closed"
        )
    pts = np.median(p[frames], axis=0)
    return Neutral(pts, {k: float(v) for k, v in measures(pts).items()}, frames, method)


def mouth_controls(
    canonical: np.ndarray, rest: Neutral, ranges: Mapping[str, float] | None = None
) -> dict[str, np.ndarray]:
    """The ten controls (CONTROLS), each 0..1 and 0 at the neutral mouth. A control is a
    change of mouth geometry (face units) divided by its range; data/mouth_controls.json
    says what each one measures and holds the ranges (pass `ranges` to override some)."""
    r = _ranges() | dict(ranges or {})
    d = {k: v - rest.measures[k] for k, v in measures(canonical).items()}

    def unit(x: np.ndarray, name: str) -> np.ndarray:
        return np.clip(x / r[name], 0.0, 1.0)

    lips_apart = unit(d["gap"], "lips_apart")
    jaw_open = unit(d["chin"], "jaw_open")
    sealed = 1.0 - np.clip(d["gap"] / r["seal_gap"], 0.0, 1.0)
    press = unit(-d["thickness"], "lip_press") * sealed
    rounding = (unit(d["forward"], "protrusion") + unit(-d["width"], "narrowing")) / 2
    opening = np.clip(d["gap"] / r["funnel_gap"], 0.0, 1.0)
    up = np.maximum((d["up_left"] + d["up_right"]) / 2, 0.0)
    out = {
        "jaw_open": jaw_open,
        "lips_apart": lips_apart,
        "mouth_close": np.maximum(jaw_open * sealed, press),
        "funnel": rounding * opening,
        "pucker": rounding * (1.0 - opening),
        "smile_left": unit(d["up_left"] + 0.5 * d["out_left"], "smile_left"),
        "smile_right": unit(d["up_right"] + 0.5 * d["out_right"], "smile_right"),
        "stretch": unit((d["out_left"] + d["out_right"]) / 2 - up, "stretch"),
        "upper_lip_raise": unit(-d["upper"], "upper_lip_raise"),
        "lower_lip_raise": unit(d["lower_above_chin"], "lower_lip_raise"),
    }
    return {k: out[k] for k in CONTROLS}


def _ranges() -> dict[str, float]:
    table = control_table()
    sections = (table["controls"], table["helpers"])
    return {k: float(v["range"]) for sec in sections for k, v in sec.items() if "range" in v}


# --- the whole video stage ----------------------------------------------------------------


@dataclass
class Mouth:
    """The mouth of one tracked clip, head motion removed, with its controls."""

    times: np.ndarray  # (N,) seconds
    lips: np.ndarray  # (N, 40, 3) canonical face units, order of lip_indices()
    controls: dict[str, np.ndarray]  # CONTROLS -> (N,) 0..1
    valid: np.ndarray  # (N,) a face was seen, facing the camera closely enough
    flags: dict[str, np.ndarray] = field(default_factory=dict)  # long_gap, turned_away, filled
    neutral: Neutral | None = None

    def amplitude(self) -> np.ndarray:
        """How open the mouth is, 0..1: what fuse() takes from the video."""
        return np.maximum(self.controls["jaw_open"], self.controls["lips_apart"])


def track_mouth(
    times: np.ndarray,
    points: np.ndarray,
    *,
    calibration: tuple[float, float] | None = None,
    smoothing: Mapping[str, float] | None = None,
) -> Mouth:
    """Head pose removed, gaps filled, jitter filtered, neutral found, controls measured.

    Frames turned further than tracking.max_turn_deg count as missing (the mesh guesses a
    profile's far lip). Long gaps hold the neutral mouth, so their controls are 0 and
    flags["long_gap"] marks them for fuse() to ignore the video there.
    """
    settings = control_table()["tracking"]
    t = np.asarray(times, dtype=float)
    canon = remove_head_pose(points)
    turned = (np.abs(head_angles(points)) > settings["max_turn_deg"]).any(axis=1)
    seen = ~np.isnan(canon).any(axis=(1, 2))
    if not (seen & ~turned).any():
        raise InputError("no frame shows a face turned to the camera; fix: give a video of a face")
    canon[turned] = np.nan
    canon, long_gap = fill_gaps(t, canon, settings["max_gap_s"])
    rest = neutral(t, canon, span=calibration, usable=seen & ~turned)
    canon[long_gap] = rest.points
    euro = {**settings["one_euro"], **(smoothing or {})}
    canon = OneEuroFilter(**euro).run(t, canon) if len(t) else canon
    flags = {"long_gap": long_gap, "turned_away": turned, "filled": ~(seen & ~turned) & ~long_gap}
    return Mouth(
        t, canon[:, lip_indices()], mouth_controls(canon, rest), seen & ~turned, flags, rest
    )


# --- controls -> viseme channels ----------------------------------------------------------


@functools.cache
def prototypes(name: str) -> dict[str, np.ndarray]:
    """The control prototype of each viseme of set `name` that data/viseme_controls.json lists
    (what the rig's shape looks like), in the set's order; the others take no part."""
    listed = _json("viseme_controls.json")["sets"][name]
    vset = load_set(name)
    found = {v: np.array([listed[v].get(k, 0.0) for k in CONTROLS]) for v in vset.visemes
             if v in listed}  # fmt: skip
    for p in found.values():
        p.flags.writeable = False  # shared by every caller
    return found


def visemes_from_controls(
    controls: Mapping[str, np.ndarray],
    viseme_set: VisemeSet | str,
    *,
    blendshapes: np.ndarray | None = None,
    blendshape_names: Iterable[str] = (),
) -> dict[str, np.ndarray]:
    """The set's channel weights (0..1) that the measured mouth shows.

    Each viseme has a prototype control vector (data/viseme_controls.json: what the rig's
    shape looks like); the frame's viseme weights are the mix of prototypes that reproduces
    the controls best (`viseme_weights_from_controls`), and they become channels as curves.py
    mixes viseme weights. For arkit the channels come straight from the controls (a table in
    the same file), or are the tracker's ARKit blendshape scores themselves when given.
    """
    vset = load_set(viseme_set) if isinstance(viseme_set, str) else viseme_set
    if vset.name == "arkit":
        return _arkit_channels(controls, vset, blendshapes, list(blendshape_names))

    return to_channels(viseme_weights_from_controls(controls, vset), vset)


def viseme_weights_from_controls(
    controls: Mapping[str, np.ndarray],
    vset: VisemeSet,
    mapping: Mapping | None = None,
    start: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Weight of each viseme per frame (summing to 1 with the rest viseme): `mix_of` the set's
    prototypes, judged as `mapping` says (by default the set's, fitted on tracked GRID faces by
    models/fit_viseme_mapping.py). `start`: a stream's previous weights, to begin from: the
    mouth moves little in one chunk, and STREAM_STEPS from there follow it within 0.01."""
    mapping = mapping or _json("viseme_mapping.json")["sets"][vset.name]
    protos = prototypes(vset.name)
    names = [v for v in protos if v != vset.rest]
    c = np.stack([np.asarray(controls[k], float) for k in CONTROLS], axis=1)  # (N, C)
    p = np.array([protos[v] for v in names])  # (V, C)
    if start is None:
        w = mix_of(c, p, mapping)
    else:
        w = mix_of(c, p, mapping, np.stack([start[v] for v in names], 1), STREAM_STEPS)
    out = {v: np.zeros(len(c)) for v in vset.visemes}
    out.update({v: w[:, i] for i, v in enumerate(names)})
    out[vset.rest] = np.clip(1.0 - w.sum(axis=1), 0.0, 1.0)
    return out


def mix_of(c: np.ndarray, p: np.ndarray, mapping: Mapping, start: np.ndarray | None = None,
           steps: int = 300, tol: float = 1e-4) -> np.ndarray:  # fmt: skip
    """(N, V) weights w >= 0 with sum <= 1 per row minimising, with each shape's contribution
    s_v = w_v p_v and norms that weight each control by the mapping's metric,
        |c - sum_v s_v|^2 / 2 + ridge sum_v |s_v|^2 / 2 + sparsity sum_v |s_v|:
    the rig's shapes mixed to look most like the measured mouth. Several shapes may mix (an
    open, rounded mouth is "aa" and "ou"); the sparsity term prefers the fewest shapes (a mouth
    exactly in one shape is read as that shape, not as a blend of its look-alikes), the ridge
    keeps similar mouths on similar mixes. A small convex problem per frame, solved for all
    frames at once by accelerated projected gradient (FISTA), until no weight moves by `tol`."""
    metric = np.array([mapping["metric"][k] for k in CONTROLS])
    gram = (p * metric) @ p.T
    a = gram + mapping["ridge"] * np.diag(np.diag(gram))
    b = (c * metric) @ p.T - mapping["sparsity"] * np.sqrt(np.diag(gram))
    step = 1.0 / np.linalg.eigvalsh(a).max()
    w = y = np.zeros_like(b) if start is None else np.broadcast_to(start, b.shape).copy()
    t = 1.0
    for _ in range(steps):
        w_next = _capped_simplex(y - step * (y @ a - b))
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = w_next + (t - 1.0) / t_next * (w_next - w)
        done = np.abs(w_next - w).max(initial=0.0) < tol
        w, t = w_next, t_next
        if done:
            break
    return w


def _capped_simplex(w: np.ndarray) -> np.ndarray:
    """Rows projected onto w >= 0, sum(w) <= 1 (rows over 1 onto the simplex: Duchi et al.,
    ICML 2008)."""
    w = np.maximum(w, 0.0)
    over = w.sum(axis=1) > 1.0
    if over.any():
        v = w[over]
        u = -np.sort(-v, axis=1)
        cum = np.cumsum(u, axis=1) - 1.0
        k = np.arange(1, v.shape[1] + 1)
        last = v.shape[1] - 1 - np.argmax((u - cum / k > 0)[:, ::-1], axis=1)
        theta = cum[np.arange(len(v)), last] / (last + 1)
        w[over] = np.maximum(v - theta[:, None], 0.0)
    return w


def _arkit_channels(controls, vset, blendshapes, names) -> dict[str, np.ndarray]:
    n = len(next(iter(controls.values())))
    if blendshapes is not None:
        scores = np.asarray(blendshapes, dtype=float)
        col = {name: i for i, name in enumerate(names)}
        return {
            ch: np.nan_to_num(scores[:, col[ch]]) if ch in col else np.zeros(n)
            for ch in vset.channels
        }
    table = _json("viseme_controls.json")["arkit"]
    out = {}
    for ch in vset.channels:
        mix = table.get(ch, {})
        out[ch] = np.clip(
            sum((w * np.asarray(controls[k]) for k, w in mix.items()), np.zeros(n)), 0.0, 1.0
        )
    return out


# --- audio + video ------------------------------------------------------------------------


def closed_channels(vset: VisemeSet) -> list[str]:
    """The channels the set's closed viseme (p b m) drives; empty when closed = all off."""
    return list(vset.visemes[vset.closed].channels)


def fuse(
    audio_weights: Mapping[str, np.ndarray],
    video_weights: Mapping[str, np.ndarray],
    amplitude: np.ndarray,
    weight: float,
    *,
    closure: np.ndarray | None = None,
    closed: Iterable[str] = ("PP",),
    usable: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Channel weights from audio and video on one time grid: audio says when and which
    shape, video how wide and in what shape; weight w = 0 is the audio alone (exactly),
    1 leans on the video as far as the rule allows.

    Rule, per frame and open channel c (a = audio, v = video weight, A = video amplitude,
    o = the audio's openness = its largest open channel, k = closure):
        a'_c  = a_c * clip(A / o, 0, 2)            audio identity at the video's amplitude
        out_c = (1 - w) a_c + w (a'_c + v_c) / 2 * (1 - k)
    and for the closed channels: out = max(blend, k). k is the audio's closure (default the
    largest audio weight among `closed`, e.g. PP or mouthPressLeft/Right; pass it for sets
    whose closed viseme drives no channel, e.g. vrm5), so every p/b/m still shuts the mouth
    whatever the video shows. Where `usable` is False (no face), the audio alone is used.
    """
    w = float(np.clip(weight, 0.0, 1.0))
    closed = [c for c in closed if c in audio_weights]
    first = next(iter(audio_weights.values()))
    k = _closure(audio_weights, closed, closure, len(first))
    open_ch = [c for c in audio_weights if c not in closed]
    o = np.max([audio_weights[c] for c in open_ch], axis=0) if open_ch else np.zeros(len(k))
    gain = np.clip(np.asarray(amplitude, float) / np.maximum(o, 1e-3), 0.0, 2.0)
    if usable is not None:  # no face: the video term becomes the audio itself
        gain = np.where(usable, gain, 1.0)
    out = {}
    for c, a in audio_weights.items():
        a = np.asarray(a, float)
        v = np.asarray(video_weights.get(c, np.zeros_like(a)), float)
        if usable is not None:
            v = np.where(usable, v, a)
        blend = (1 - w) * a + w * (a * gain + v) / 2 * (1 - k)
        out[c] = np.clip(np.maximum(blend, k) if c in closed else blend, 0.0, 1.0)
    return out


def _closure(audio, closed, closure, n) -> np.ndarray:
    if closure is not None:
        return np.clip(np.asarray(closure, float), 0.0, 1.0)
    if not closed:
        return np.zeros(n)
    return np.clip(np.max([np.asarray(audio[c], float) for c in closed], axis=0), 0.0, 1.0)


def mouth_of(tracked, label: str, neutral: tuple[float, float] | None = None):
    """The tracked face's mouth, measured against the relaxed closed mouth (found by itself,
    or in the `neutral` span of seconds); a video with no face at all is refused here."""
    if not tracked.faces.any():
        dark = tracked.dark()
        raise InputError(
            f"no face found in any of the {len(tracked.times)} frames of {label[:200]}"
            + (f" (the picture is dark: mean brightness {dark:.0f} of 255)" if dark else "")
            + "; film the speaker's face from the front, well lit, at least about 100 pixels wide."
        )
    return track_mouth(tracked.times, tracked.points, calibration=neutral)
