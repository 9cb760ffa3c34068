"""Timed phonemes -> a timeline: held viseme cues and blended curves, for any input."""

from __future__ import annotations

from .curves import CurveSettings, Sound, exact_fps, hold_cues, make_curves
from .timeline import Phoneme, Timeline, VisemeCue, Word
from .visemes import VisemeSet, load_set


def animate(
    words: list[Word],
    phonemes: list[Phoneme],
    duration: float,
    viseme_set: str,
    fps: float,
    settings: CurveSettings,
    source: dict,
    sound: Sound | None = None,
) -> Timeline:
    """Timed phonemes -> a timeline with held viseme cues and blended curves (any input); the
    line's `sound`, where it is at hand, for the learned motion."""
    vset, fps = load_set(viseme_set), exact_fps(fps)
    return Timeline(
        duration=duration,
        fps=fps,
        viseme_set=vset.name,
        source=source,
        words=words,
        phonemes=phonemes,
        visemes=hold_cues(phonemes, vset, fps, duration, settings.lead, settings.rhubarb_rules),
        curves=make_curves(phonemes, vset, fps, duration, settings, sound),
        curve_settings=vars(settings) | {"spread": settings.spread},
    )


def retarget(
    timeline: Timeline,
    viseme_set: str,
    fps: float | None = None,
    settings: CurveSettings | None = None,
) -> Timeline:
    """The same speech animated for another viseme set, frame rate or curve settings."""
    if settings is None:
        known = CurveSettings.__dataclass_fields__
        settings = CurveSettings(**{k: v for k, v in timeline.curve_settings.items() if k in known})
    new = animate(
        timeline.words,
        timeline.phonemes,
        timeline.duration,
        viseme_set,
        fps or timeline.fps,
        settings,
        timeline.source,
    )
    new.warnings = list(timeline.warnings)
    return new


def held_cues(timeline: Timeline, vset: VisemeSet) -> list[VisemeCue]:
    """The shapes `vset` holds over the timeline: its own cues when they are of that set, else
    recomputed from its phonemes with its lead and Rhubarb rules ([] when nothing is said)."""
    if timeline.viseme_set == vset.name and timeline.visemes:
        return timeline.visemes
    if not timeline.phonemes:
        return []
    get = timeline.curve_settings.get
    return hold_cues(timeline.phonemes, vset, timeline.fps, timeline.duration,
                     float(get("lead", 0.0)), bool(get("rhubarb_rules", False)))  # fmt: skip
