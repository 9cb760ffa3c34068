"""Timed phonemes -> per-channel weight curves (blended) or held shapes (2D), with guarantees.

Blending is dominance-style coarticulation (Cohen & Massaro): every phoneme pulls the mouth
towards its viseme with a strength that plateaus over the phoneme and falls off outside it;
at each frame the visemes share the mouth in proportion to those strengths. Lip closures
(p b m) and lip-teeth contacts (f v) are then forced to full weight on their frames, because a
mouth that fails to close on "b" is the first thing a viewer notices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from fractions import Fraction

import numpy as np

from .errors import EngineUnavailable, InputError
from .rhubarb import ALL_RULES, rhubarb_cues
from .timeline import Curve, Phoneme, VisemeCue
from .visemes import VisemeSet

# Frame rates people type as decimals but mean as NTSC fractions.
_NTSC = {23.976: Fraction(24000, 1001), 29.97: Fraction(30000, 1001), 59.94: Fraction(60000, 1001)}
_REACH = 3.0  # a phoneme's pull is ignored beyond this many spreads outside it
MOTIONS = ("rules", "learned")  # how the mouth moves; "learned" is mouth.motion's model
FPS_MIN, FPS_MAX = 1.0, 1000.0  # frame rates any animation uses


def option(default, help: str, lo: float | None = None, hi: float | None = None,
           choices: tuple[str, ...] | None = None):  # fmt: skip
    """A field every front end offers: the CLI's flag, the HTTP form field and the add-on's
    property are all made from its default, range (or choices) and help."""
    meta = {"help": help, "min": lo, "max": hi} | ({"choices": list(choices)} if choices else {})
    return field(default=default, metadata=meta)


def check_ranges(options) -> None:
    """Refuse a value outside its field's range or choices, naming the field and them."""
    for f in fields(options):
        lo, hi, value = f.metadata.get("min"), f.metadata.get("max"), getattr(options, f.name)
        name, choices = f.name.replace("_", " "), f.metadata.get("choices")
        if lo is not None and not lo <= value <= hi:
            raise InputError(f"{name} must be within {lo:g}..{hi:g}; got {value}.")
        if choices and value not in choices:
            raise InputError(f"{name} must be one of {', '.join(choices)}; got {value!r}.")


@dataclass(frozen=True)
class CurveSettings:
    """How the mouth moves. Every field has a default that suits dialogue at film rates."""

    intensity: float = option(
        1.0, "scales open shapes; closures and contacts always reach 1", 0.0, 2.0
    )
    smoothing: float = option(
        0.5, "0 crisp .. 1 soft: how far shapes blend into neighbours", 0.0, 1.0
    )
    lead: float = option(
        0.0, "seconds the mouth moves before the sound (0.04 is one frame at 24 fps)", -0.5, 0.5
    )
    holds: bool = option(False, "one shape at a time, stepped keys (2D)")
    rhubarb_rules: bool = option(
        False, "Rhubarb-set cues drawn by Rhubarb Lip Sync's own rules (the shape nearest the "
        "last, vowels anticipated, p/b closed before the release, no shape under 7 cs) instead "
        "of each phone's own shape on its time",
    )  # fmt: skip
    max_error: float = option(
        0.01, "keyframe reduction tolerance in weight units; 0 keeps every frame", 0.0, 0.2
    )
    motion: str = option(
        "rules", "how the mouth moves from shape to shape: rules (viseme targets blended by set "
        "rules) or learned (a model trained on real talking faces); holds use the rules",
        choices=MOTIONS,
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_ranges(self)

    @property
    def spread(self) -> float:
        """Seconds over which a phoneme's pull fades outside it."""
        return 0.01 + 0.05 * self.smoothing


@dataclass(frozen=True)
class Animation:
    """The animation options every front end offers, defined once: which shapes, at what frame
    rate, and how the mouth moves. `option_fields()` lists them flat, as the front ends show them."""

    visemes: str = option("oculus15", "viseme set: oculus15, rhubarb, preston_blair, vrm5, arkit")
    fps: float = option(24.0, "frame rate, e.g. 24, 25, 29.97, 30, 60", FPS_MIN, FPS_MAX)
    curves: CurveSettings = field(default_factory=CurveSettings)

    def __post_init__(self) -> None:
        exact_fps(self.fps)  # checks the range, naming the usual rates
        check_ranges(self)

    @classmethod
    def from_flat(cls, **values) -> Animation:
        """From flat option values (CLI flags, form fields); unknown names are ignored."""
        curve = {k: values[k] for k in _names(CurveSettings) if values.get(k) is not None}
        own = {k: values[k] for k in ("visemes", "fps") if values.get(k) is not None}
        return cls(**own, curves=CurveSettings(**curve))


def option_fields() -> list:
    """Every animation option as a dataclass field (name, type, default, metadata help/min/max)."""
    return [f for f in fields(Animation) if f.name != "curves"] + list(fields(CurveSettings))


def _names(cls) -> list[str]:
    return [f.name for f in fields(cls)]


def exact_fps(fps: float) -> float:
    """The frame rate as meant: 29.97 -> 30000/1001. Rejects rates no animation uses."""
    if not FPS_MIN <= fps <= FPS_MAX:
        raise InputError(
            f"fps {fps} is outside {FPS_MIN:g}..{FPS_MAX:g}; use your scene's rate, e.g. 24, 25, "
            "30, 29.97 or 60."
        )
    return float(_NTSC.get(round(fps, 3), fps))


def frame_times(fps: float, duration: float) -> np.ndarray:
    """Times of frames 0..N, the last at or just after `duration`."""
    return np.arange(int(np.ceil(duration * fps - 1e-9)) + 1) / fps


# The line's sound where it is at hand: mono samples and their rate (the rules do not use it).
Sound = tuple[np.ndarray, int]


def make_curves(
    phonemes: list[Phoneme],
    vset: VisemeSet,
    fps: float,
    duration: float,
    settings: CurveSettings,
    sound: Sound | None = None,
) -> list[Curve]:
    """Channel curves of the set, keyframe-reduced within settings.max_error."""
    times = frame_times(fps, duration)
    return curves_from(times, channel_weights(phonemes, vset, times, settings, sound), settings)


# A motion other than the rules: (phonemes, vset, times, settings, sound) -> channel weights.
# The learned one needs onnxruntime, above the core: bridge_server.mouth.motion registers it.
Motion = Callable[
    [list[Phoneme], VisemeSet, np.ndarray, "CurveSettings", "Sound | None"], dict[str, np.ndarray]
]
_MOTIONS: dict[str, Motion] = {}


def register_motion(name: str, channels: Motion) -> None:
    _MOTIONS[name] = channels


def channel_weights(
    phonemes: list[Phoneme],
    vset: VisemeSet,
    times: np.ndarray,
    settings: CurveSettings,
    sound: Sound | None = None,
) -> dict[str, np.ndarray]:
    """Each output channel's weight at each of `times` (one shape at a time when holding)."""
    if settings.motion != "rules" and not settings.holds:
        if settings.motion not in _MOTIONS:
            raise EngineUnavailable(f"{settings.motion} motion is not loaded: import "
                                    "bridge_server (the package registers it), or use rules")  # fmt: skip
        return _MOTIONS[settings.motion](phonemes, vset, times, settings, sound)
    return rule_channels(phonemes, vset, times, settings)


def rule_channels(
    phonemes: list[Phoneme], vset: VisemeSet, times: np.ndarray, settings: CurveSettings
) -> dict[str, np.ndarray]:
    """The rules' channel weights: blended viseme targets, contacts forced (one-hot holds)."""
    weights = viseme_weights(phonemes, vset, times, settings)
    if settings.holds and vset.cue_rules:  # the keys show what the set's rules hold
        duration = float(times[-1]) if len(times) else 0.0
        cues = hold_cues(phonemes, vset, _fps_of(times), duration, settings.lead,
                         settings.rhubarb_rules)  # fmt: skip
        weights = _shown(cues, list(weights), times)
    elif settings.holds:
        weights = _one_hot(weights)
    return to_channels(weights, vset)


def curves_from(
    times: np.ndarray, values: dict[str, np.ndarray], settings: CurveSettings
) -> list[Curve]:
    """Per-frame channel values -> keyframe-reduced curves (stepped keys when holding)."""
    interp = "constant" if settings.holds else "linear"
    reduce = _step_keys if settings.holds else _reduce
    return [Curve(ch, reduce(times, v, settings.max_error), interp) for ch, v in values.items()]


def hold_cues(
    phonemes: list[Phoneme],
    vset: VisemeSet,
    fps: float,
    duration: float,
    lead: float = 0.0,
    rhubarb_rules: bool = False,
) -> list[VisemeCue]:
    """One shape at a time: contiguous cues covering 0..duration, frame-aligned. Rhubarb's set
    is held in centiseconds, as Rhubarb does: each phone's shape on its time, or with
    `rhubarb_rules` as Rhubarb's rules draw it."""
    if vset.cue_rules == "rhubarb":
        rules = ALL_RULES if rhubarb_rules else frozenset()
        contacts = vset.closed + vset.teeth
        return rhubarb_cues(phonemes, duration, vset.table, lead, rules, fps, contacts)
    times = frame_times(fps, duration)
    weights = viseme_weights(phonemes, vset, times, CurveSettings(lead=lead))
    names = list(weights)
    best = np.argmax(np.stack([weights[n] for n in names]), axis=0)
    cues: list[VisemeCue] = []
    for k, idx in enumerate(best):
        start = float(times[k])
        if start >= duration:
            break
        if cues and cues[-1].viseme == names[idx]:
            continue
        if cues:
            cues[-1].end = start
        cues.append(VisemeCue(names[idx], start, duration))
    return cues or [VisemeCue(vset.rest, 0.0, duration)]


def viseme_weights(
    phonemes: list[Phoneme], vset: VisemeSet, times: np.ndarray, settings: CurveSettings
) -> dict[str, np.ndarray]:
    """Weight of every viseme at every frame time; they sum to 1 at each frame."""
    spans = _spans(phonemes, vset, float(times[-1]) if len(times) else 0.0, settings.lead)
    names = list(vset.visemes)
    pull = np.zeros((len(names), len(times)))
    strong = {vset.closed, vset.teeth}
    reach = _REACH * settings.spread
    for viseme, start, end in spans:
        lo, hi = np.searchsorted(times, [start - reach, end + reach])
        t = times[lo:hi]
        outside = np.maximum(0.0, np.maximum(start - t, t - end))
        pull[names.index(viseme), lo:hi] += np.exp(-((outside / settings.spread) ** 2))
    total = pull.sum(axis=0)
    rest = names.index(vset.rest)
    pull[rest, total == 0] = 1.0  # nothing nearby: the mouth rests
    weights = pull / np.maximum(total, 1e-12)
    _apply_intensity(weights, names, vset, settings.intensity)
    _force_contacts(weights, names, spans, times, strong)
    return dict(zip(names, weights))


def _spans(
    phonemes: list[Phoneme], vset: VisemeSet, end_time: float, lead: float
) -> list[tuple[str, float, float]]:
    """(viseme, start, end) per phoneme, shifted by the lead, with silent gaps as rest."""
    spans = []
    cursor = 0.0
    for p in phonemes:
        start, end = max(0.0, p.start - lead), max(0.0, p.end - lead)
        if start > cursor:
            spans.append((vset.rest, cursor, start))
        spans.append((vset.viseme_for(p.ipa), start, end))
        cursor = max(cursor, end)
    spans.append((vset.rest, cursor, max(cursor, end_time) + 1.0))
    return spans


def _apply_intensity(
    weights: np.ndarray, names: list[str], vset: VisemeSet, intensity: float
) -> None:
    """Scale open shapes; what they give up (or take) is balanced by the rest shape."""
    keep = {vset.rest, vset.closed, vset.teeth}
    open_rows = [i for i, n in enumerate(names) if n not in keep]
    before = weights[open_rows].sum(axis=0)
    weights[open_rows] = np.minimum(weights[open_rows] * intensity, 1.0)
    rest = names.index(vset.rest)
    weights[rest] = np.maximum(weights[rest] + before - weights[open_rows].sum(axis=0), 0.0)


def _force_contacts(
    weights: np.ndarray, names: list[str], spans: list, times: np.ndarray, strong: set[str]
) -> None:
    """Closures and contacts own their frames outright (the nearest frame if shorter than one)."""
    for viseme, start, end in spans:
        if viseme not in strong or end <= start:
            continue
        lo, hi = np.searchsorted(times, [start, end])
        if hi <= lo:  # shorter than a frame: take the frame nearest its middle
            lo = int(np.clip(np.rint((start + end) / 2 * _fps_of(times)), 0, len(times) - 1))
            hi = lo + 1
        weights[:, lo:hi] = 0.0
        weights[names.index(viseme), lo:hi] = 1.0


def _fps_of(times: np.ndarray) -> float:
    return 1.0 / (times[1] - times[0]) if len(times) > 1 else 1.0


def _one_hot(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = list(weights)
    best = np.argmax(np.stack([weights[n] for n in names]), axis=0)
    return {n: (best == i).astype(float) for i, n in enumerate(names)}


def _shown(cues: list[VisemeCue], names: list[str], times: np.ndarray) -> dict[str, np.ndarray]:
    """1 for the cue's shape at each time, 0 for the others."""
    out = {n: np.zeros(len(times)) for n in names}
    for c in cues:
        out[c.viseme][(times >= c.start) & (times < c.end)] = 1.0
    if len(times) and not any(v[-1] for v in out.values()):
        out[cues[-1].viseme][-1] = 1.0  # the last frame may fall on the end
    return out


def to_channels(weights: dict[str, np.ndarray], vset: VisemeSet) -> dict[str, np.ndarray]:
    """Mix viseme weights into the set's output channels (ARKit and VRM combine several)."""
    n = len(next(iter(weights.values())))
    out = {ch: np.zeros(n) for ch in vset.channels}
    for name, w in weights.items():
        for ch, amount in vset.visemes[name].channels.items():
            out[ch] += amount * w
    return {ch: np.clip(v, 0.0, 1.0) for ch, v in out.items()}


def _reduce(times: np.ndarray, values: np.ndarray, tol: float) -> list[tuple[float, float]]:
    """Fewest keys whose linear interpolation stays within `tol` of every frame (Douglas-Peucker)."""
    keep = np.zeros(len(times), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(times) - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        line = np.interp(times[a + 1 : b], times[[a, b]], values[[a, b]])
        err = np.abs(values[a + 1 : b] - line)
        k = int(np.argmax(err))
        if err[k] > tol:
            m = a + 1 + k
            keep[m] = True
            stack += [(a, m), (m, b)]
    return [(round(float(t), 6), round(float(v), 4)) for t, v in zip(times[keep], values[keep])]


def _step_keys(times: np.ndarray, values: np.ndarray, _tol: float) -> list[tuple[float, float]]:
    """Held values: a key wherever the value changes (plus the first and last frame)."""
    change = np.r_[True, values[1:] != values[:-1]]
    change[-1] = True
    return [(round(float(t), 6), round(float(v), 4)) for t, v in zip(times[change], values[change])]
