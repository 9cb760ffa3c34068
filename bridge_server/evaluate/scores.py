"""Score a timeline against a reference: phone and word boundaries, visemes, lip closures.

Phones are folded to the 39 phones of Lee & Hon (1989) on both sides (data/timit39.tsv) and
matched by edit-distance alignment of the labels; boundaries are compared for matched phones.
Visemes are compared frame by frame at 100 frames/s in one set: the reference's own when it
is a cue file (Rhubarb A-H/X, Preston Blair), else the chosen one.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.animate import held_cues
from ..core.errors import InputError
from ..core.phonemes import ipa_arpabet, normalize, read_tsv
from ..core.timeline import Timeline
from ..core.visemes import VisemeSet, load_set
from ..speech.refine import CLASSES, phone_class
from .references import Reference, Span, label_ipa, read_reference, word_key

FRAME_RATE_HZ = 100
PHONE_TOLERANCES_MS = (10, 20, 25)
WORD_TOLERANCE_MS = 50
CLOSURES = frozenset({"p", "b", "m"})
_EPS = 1e-6
_TIME_WEIGHT = 1e-4  # alignment tie-break per second of offset: never outweighs one edit


@dataclass
class PhoneScore:
    """Boundaries of matched phones; shares are over the boundaries compared."""

    ref_phones: int
    matched: int
    boundaries: int
    within_10ms: float
    within_20ms: float
    within_25ms: float
    mean_abs_error_ms: float
    # by the broad class of the reference phone after the boundary ("silence": a pause):
    # {"stop": {"boundaries": 49, "within_20ms": 0.76}, ...}
    by_class: dict = field(default_factory=dict)


@dataclass
class WordScore:
    """Words matched by text; `within_50ms`: share whose start and end are both that close."""

    ref_words: int
    matched: int
    mean_abs_start_ms: float
    mean_abs_end_ms: float
    mean_abs_error_ms: float
    within_50ms: float


@dataclass
class VisemeScore:
    viseme_set: str
    frames: int
    agreement: float
    kappa: float


@dataclass
class ClosureScore:
    """Reference lip closures (p b m, or closed-mouth cues) where our mouth is closed mid-way."""

    closures: int
    hits: int
    hit_rate: float


@dataclass
class Report:
    reference: str
    format: str
    phones: PhoneScore | None = None
    words: WordScore | None = None
    visemes: VisemeScore | None = None
    closures: ClosureScore | None = None

    def to_dict(self) -> dict:
        """Plain values; a score that could not be computed (nothing to compare) is None."""
        return _no_nan(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def table(self) -> str:
        """A few lines for people; the JSON form has every number."""
        rows = [f"reference  {self.reference} ({self.format})"]
        if p := self.phones:
            rows.append(
                f"phones     {p.matched}/{p.ref_phones} matched; {p.boundaries} boundaries within "
                f"10/20/25 ms: {_pct(p.within_10ms)} / {_pct(p.within_20ms)} / "
                f"{_pct(p.within_25ms)}; mean error {p.mean_abs_error_ms:.1f} ms"
            )
            rows.append("  by class, within 20 ms (boundaries): " + ", ".join(
                f"{k} {_pct(c['within_20ms'])} ({c['boundaries']})" for k, c in p.by_class.items()
            ))  # fmt: skip
        if w := self.words:
            rows.append(
                f"words      {w.matched}/{w.ref_words} matched; mean error {w.mean_abs_error_ms:.1f} ms "
                f"(start {w.mean_abs_start_ms:.1f}, end {w.mean_abs_end_ms:.1f}); "
                f"within 50 ms: {_pct(w.within_50ms)}"
            )
        if v := self.visemes:
            rows.append(
                f"visemes    {v.viseme_set}, {v.frames} frames at {FRAME_RATE_HZ}/s: agreement "
                f"{_pct(v.agreement)}, kappa {v.kappa:.3f}"
            )
        if c := self.closures:
            rows.append(f"closures   {c.hits}/{c.closures} closed ({_pct(c.hit_rate)})")
        return "\n".join(rows)


def _no_nan(d: dict) -> dict:
    return {k: _no_nan(v) if isinstance(v, dict) else None if v != v else v for k, v in d.items()}


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def evaluate(
    timeline: Timeline, reference: Reference | str, viseme_set: str | None = None
) -> Report:
    """Every score the reference allows (a path is read with `read_reference`)."""
    ref = reference if isinstance(reference, Reference) else read_reference(reference)
    report = Report(ref.path, ref.format)
    if ref.phones:
        report.phones = phone_score(timeline, ref)
    if ref.words:
        report.words = word_score(timeline, ref)
    if ref.phones or ref.cues:
        vset = target_set(timeline, ref, viseme_set)
        report.visemes = viseme_score(timeline, ref, vset)
        report.closures = closure_score(timeline, ref)
    return report


# --- phones --------------------------------------------------------------------------------


@functools.cache
def _fold_table() -> dict[str, str]:
    return dict(read_tsv("timit39.tsv")[1])


@functools.cache
def _ipa_to_timit() -> dict[str, str]:
    """IPA -> TIMIT label (the first row wins: stops before closures, m before em)."""
    out: dict[str, str] = {}
    for label, ipa in read_tsv("timit.tsv")[1]:
        out.setdefault(normalize(ipa)[0], label)
    return out


def fold(label: str, alphabet: str) -> list[str]:
    """A phone as Lee & Hon 39-set labels (several for a diphthong with r, ['-'] to drop)."""
    table = _fold_table()
    if alphabet in ("timit", "arpabet"):
        key = label.strip().lower().rstrip("012")
        return [table.get(key, key or "sil")]
    ipa = normalize(label)[0]
    if ipa == "_":
        return ["sil"]
    if ipa in _ipa_to_timit():
        return [table[_ipa_to_timit()[ipa]]]
    arpa = ipa_arpabet().get(ipa, ipa)
    return [table.get(a.lower(), a.lower()) for a in arpa.split()]


def fold_phones(phones: list[Span], alphabet: str, duration: float) -> list[Span]:
    """Folded phones, closures merged with their release, gaps as sil, from 0 to the end."""
    out: list[Span] = []
    closure = False
    for p in sorted(phones, key=lambda s: s.start):
        labels = fold(p.label, alphabet)
        if labels == ["-"]:
            if out:
                out[-1] = out[-1]._replace(end=max(out[-1].end, p.end))
            continue
        step = (p.end - p.start) / len(labels)
        for k, label in enumerate(labels):
            s = Span(label, p.start + k * step, p.start + (k + 1) * step)
            if closure and out and out[-1].label == label and s.start - out[-1].end < 0.002:
                out[-1] = out[-1]._replace(end=s.end)
            else:
                out.append(s)
        closure = alphabet != "ipa" and p.label.strip().lower().endswith("cl")
    return _with_silence(out, duration)


def _with_silence(spans: list[Span], duration: float) -> list[Span]:
    """Gaps filled with sil, and silences next to each other one silence: a TIMIT h# that
    ends before the sound does is no boundary."""
    out: list[Span] = []

    def add(s: Span) -> None:
        if out and out[-1].label == s.label == "sil":
            out[-1] = out[-1]._replace(end=max(out[-1].end, s.end))
        elif s.end > s.start:
            out.append(s)

    pos = 0.0
    for s in spans + [Span("sil", max(duration, pos), max(duration, pos))]:
        if s.start > pos + _EPS:
            add(Span("sil", pos, s.start))
        add(s)
        pos = max(pos, s.end)
    return out


def align(ref: list[Span], ours: list[Span]) -> list[tuple[int, int]]:
    """Index pairs of equal labels in a minimum edit-distance alignment (time breaks ties)."""
    names = {x: k for k, x in enumerate({s.label for s in ref + ours})}
    a = np.array([names[s.label] for s in ref])
    b = np.array([names[s.label] for s in ours])
    b_mid = np.array([(s.start + s.end) / 2 for s in ours])
    n, m = len(a), len(b)
    steps = np.arange(m + 1, dtype=float)
    prev = steps.copy()
    move = np.zeros((n + 1, m + 1), dtype=np.int8)  # 0 diagonal, 1 skip ref, 2 skip ours
    move[0, 1:] = 2
    for i in range(1, n + 1):
        mid = (ref[i - 1].start + ref[i - 1].end) / 2
        diag = prev[:-1] + np.where(b == a[i - 1], _TIME_WEIGHT * np.abs(b_mid - mid), 1.0)
        best = np.concatenate(([prev[0] + 1], np.minimum(diag, prev[1:] + 1)))
        row = np.minimum.accumulate(best - steps) + steps  # skips of ours run left to right
        move[i] = np.where(row < best - 1e-12, 2, 0)
        move[i, 1:] = np.where((move[i, 1:] == 0) & (prev[1:] + 1 < diag), 1, move[i, 1:])
        move[i, 0] = 1
        prev = row
    return _trace(move, a, b)


def _trace(move: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    i, j, pairs = len(a), len(b), []
    while i > 0 or j > 0:
        step = move[i, j]
        if step == 0:
            if a[i - 1] == b[j - 1]:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def phone_pairs(timeline: Timeline, ref: Reference) -> tuple[list[Span], list[Span], list, dict]:
    """Folded reference and our phones, matched index pairs, and {reference boundary: ours}."""
    end = max(ref.end(), timeline.duration)
    theirs = fold_phones(ref.phones, ref.alphabet, end)
    ours = fold_phones([Span(p.ipa, p.start, p.end) for p in timeline.phonemes], "ipa", end)
    pairs = align(theirs, ours)
    last = theirs[-1].end if theirs else 0.0
    bounds: dict[float, float] = {}
    for i, j in pairs:
        if theirs[i].start > _EPS:
            bounds.setdefault(theirs[i].start, ours[j].start)
        if theirs[i].end < last - _EPS:
            bounds.setdefault(theirs[i].end, ours[j].end)
    return theirs, ours, pairs, bounds


def phone_score(timeline: Timeline, ref: Reference) -> PhoneScore:
    """Counts are of speech phones (sil aside); its boundaries with silence count too."""
    theirs, _, pairs, bounds = phone_pairs(timeline, ref)
    errors = np.abs(np.array([o - r for r, o in bounds.items()])) * 1000
    shares = [_share(errors <= tol + 1e-6) for tol in PHONE_TOLERANCES_MS]
    speech = sum(s.label != "sil" for s in theirs)
    matched = sum(theirs[i].label != "sil" for i, _ in pairs)
    after = {s.start: s.label for s in theirs}
    kinds = np.array([CLASSES[phone_class(label_ipa(after.get(r, "sil"), "arpabet"))]
                      for r in bounds])  # fmt: skip
    by_class = {k: {"boundaries": int(np.sum(kinds == k)),
                    "within_20ms": _share(errors[kinds == k] <= 20 + 1e-6)}
                for k in CLASSES if np.any(kinds == k)}  # fmt: skip
    return PhoneScore(speech, matched, len(errors), *shares, _mean(errors), by_class)


def _share(hits: np.ndarray) -> float:
    return float(hits.mean()) if len(hits) else math.nan


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else math.nan


# --- words ---------------------------------------------------------------------------------


def word_score(timeline: Timeline, ref: Reference) -> WordScore:
    theirs = [Span(word_key(w.label), w.start, w.end) for w in ref.words]
    ours = [Span(word_key(w.text), w.start, w.end) for w in timeline.words]
    pairs = align(theirs, ours)
    start = np.array([abs(ours[j].start - theirs[i].start) for i, j in pairs]) * 1000
    end = np.array([abs(ours[j].end - theirs[i].end) for i, j in pairs]) * 1000
    close = np.maximum(start, end) <= WORD_TOLERANCE_MS + 1e-6 if pairs else np.array([])
    both = np.concatenate([start, end])
    return WordScore(len(theirs), len(pairs), _mean(start), _mean(end), _mean(both), _share(close))


# --- visemes and closures ------------------------------------------------------------------


def target_set(timeline: Timeline, ref: Reference, wanted: str | None) -> VisemeSet:
    """The reference's own set when it has cues, else the one asked for or the timeline's."""
    if ref.cues and ref.viseme_set:
        own = load_set(ref.viseme_set)
        if wanted and load_set(wanted).name != own.name and not ref.phones:
            raise InputError(
                f"{ref.path} holds {own.name} mouth shapes, which are compared as they are; "
                f"leave out --visemes or give --visemes {own.name}."
            )
        if not wanted or load_set(wanted).name == own.name:
            return own
    return load_set(wanted or timeline.viseme_set)


def reference_cues(ref: Reference, vset: VisemeSet) -> list[Span]:
    """The reference as shapes of `vset`: its cues, or its phones mapped to visemes."""
    if ref.cues and ref.viseme_set and load_set(ref.viseme_set).name == vset.name:
        return ref.cues
    return [
        Span(vset.viseme_for(label_ipa(p.label, ref.alphabet)), p.start, p.end) for p in ref.phones
    ]


def _labels_at(spans: list, times: np.ndarray, rest: str) -> np.ndarray:
    """The label of the span holding each time (the later one where two overlap), else rest."""
    out = np.full(len(times), rest, dtype=object)
    for s in sorted(spans, key=lambda s: s.start):
        label = s.label if isinstance(s, Span) else s.viseme
        out[(times >= s.start) & (times < s.end)] = label
    return out


def viseme_score(timeline: Timeline, ref: Reference, vset: VisemeSet) -> VisemeScore:
    n = max(1, math.ceil(ref.end() * FRAME_RATE_HZ - _EPS))
    times = (np.arange(n) + 0.5) / FRAME_RATE_HZ
    ours = _labels_at(held_cues(timeline, vset), times, vset.rest)
    theirs = _labels_at(reference_cues(ref, vset), times, vset.rest)
    return VisemeScore(vset.name, n, float(np.mean(ours == theirs)), kappa(ours, theirs))


def kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two label sequences (1 = perfect, 0 = chance)."""
    agree = float(np.mean(a == b))
    chance = sum(np.mean(a == x) * np.mean(b == x) for x in set(a) | set(b))
    return 1.0 if chance >= 1 - 1e-12 else (agree - chance) / (1 - chance)


def reference_closures(ref: Reference) -> list[Span]:
    """p b m (closures merged with their release), else the set's closed-mouth cues."""
    if ref.phones:
        return [s for s in fold_phones(ref.phones, ref.alphabet, ref.end()) if s.label in CLOSURES]
    closed = load_set(ref.viseme_set).closed
    return [c for c in ref.cues if c.label == closed]


def closure_score(timeline: Timeline, ref: Reference) -> ClosureScore | None:
    closures = reference_closures(ref)
    if not closures:
        return None
    mids = np.array([(c.start + c.end) / 2 for c in closures])
    hits = int(np.sum(mouth_closed(timeline, mids)))
    return ClosureScore(len(closures), hits, hits / len(closures))


def mouth_closed(timeline: Timeline, times: np.ndarray) -> np.ndarray:
    """Our closed viseme shown, or the closed channel's curve above 0.5, at each time."""
    vset = load_set(timeline.viseme_set)
    shown = _labels_at(held_cues(timeline, vset), times, vset.rest) == vset.closed
    weights = vset.visemes[vset.closed].channels
    channel = max(weights, key=weights.get) if weights else None
    curve = next((c for c in timeline.curves if c.channel == channel), None)
    return shown | (curve.sample(times) > 0.5 if curve else False)
