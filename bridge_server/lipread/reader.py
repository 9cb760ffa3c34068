"""Lip reading by template matching: which sentence, and when each word, from the lips alone.

No sound is ever read. A candidate text is spoken by eSpeak (exact phoneme times), turned into
the mouth controls it should produce (viseme weights per frame mixed from the per-viseme
control prototypes, data/viseme_controls.json), and dynamic time warping (DTW) matches that
expected motion against the controls the face tracker measured:

    expected   text -> eSpeak phonemes -> viseme weights per frame -> (M, C) controls
    observed   Mouth.controls -> (N, C), each control scaled by the clip's own range
    rank       one DTW per candidate sentence, silence of any length before and after
    read_grammar   one-pass DTW over word templates, slot by slot (connected words)
    time_script    the script's phoneme and word times carried through the warping path

Both sides are measured from the relaxed closed mouth, each control divided by its own range
(the speaker's over the clip, the model's over a reference text), mixed into five features
(open, close, round, spread, lip-teeth; data/lipread.json) and compared by their change per
frame: speakers rest differently (lips apart before the line, pressed after it), so silence
is "not moving" on both sides and openings and closures carry the match. Ten geometric
controls tell apart far fewer sounds than a learned lip reader: on GRID they choose the right
sentence among 24 about half the time and time a known script to ~50 ms
(benchmarks/lipread_grid.py).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import engines
from ..core.animate import animate
from ..core.curves import CurveSettings, frame_times, viseme_weights
from ..core.errors import EngineUnavailable, InputError
from ..core.phonemes import DATA
from ..core.progress import no_progress
from ..core.text import check_text
from ..core.timeline import Phoneme, Word
from ..core.visemes import load_set
from ..engines import face
from ..mouth.controls import CONTROLS, Mouth, _json, mouth_of, prototypes
from .decode import activity, spans_over
from .model import features as model_features
from .model import read_with_model

log = logging.getLogger(__name__)
GRAMMARS = DATA / "grammars"


def grammar_names() -> list[str]:
    """The built-in grammars, by name (data/grammars/NAME.json)."""
    return sorted(p.stem for p in GRAMMARS.glob("*.json"))


VISEME_SET = "oculus15"  # the set with the richest control prototypes
N_BEST = 5  # sentences read_grammar returns
TRIM_PAD_S = 0.2  # kept either side of where the lips speak: a word's onset starts before it
_PER_SLOT = 4  # words per slot combined into sentences for read_grammar's n-best


@functools.cache
def settings() -> dict:
    """data/lipread.json: features, scales and DTW penalties (documented there)."""
    return _json("lipread.json")


@dataclass
class Expected:
    """The mouth motion a text would produce, on its own clock (eSpeak's)."""

    text: str
    features: np.ndarray  # (M, C) controls at `fps`, CONTROLS order, 0 = relaxed closed mouth
    fps: float
    words: list[Word]
    phonemes: list[Phoneme]

    @property
    def times(self) -> np.ndarray:
        return np.arange(len(self.features)) / self.fps


@dataclass
class Candidate:
    """One reading of the video: its text, DTW cost, confidence 0..1 and word times (video)."""

    text: str
    cost: float  # mean distance per video frame along the best warping path (lower is better)
    confidence: float
    words: list[Word] = field(default_factory=list)
    phonemes: list[Phoneme] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "cost": round(self.cost, 4),
            "confidence": round(self.confidence, 4),
            "words": [
                {"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
                for w in self.words
            ],
        }


# --- expected motion ----------------------------------------------------------------------


def expected(text: str, fps: float = 25.0) -> Expected:
    """The mouth controls eSpeak's reading of `text` implies, per frame at `fps`."""
    words, phonemes, duration = _speak(text)
    times = frame_times(fps, duration)
    return Expected(text, controls_for(phonemes, times), fps, list(words), list(phonemes))


def controls_for(phonemes: list[Phoneme], times: np.ndarray) -> np.ndarray:
    """(len(times), C) controls: the viseme prototypes mixed by the curves' viseme weights."""
    vset = load_set(VISEME_SET)
    weights = viseme_weights(phonemes, vset, times, CurveSettings())
    return sum(weights[v][:, None] * p for v, p in prototypes(VISEME_SET).items())


@functools.lru_cache(maxsize=512)
def _speak(text: str) -> tuple[tuple[Word, ...], tuple[Phoneme, ...], float]:
    """eSpeak's words and phonemes for `text` (cached: grammars speak the same words often)."""
    speech = _voice().synthesize(check_text(text))
    if not speech.phonemes:
        raise InputError(f"eSpeak says no speech sounds for {text[:80]!r}; give words.")
    return tuple(speech.words), tuple(speech.phonemes), speech.duration


@functools.cache
def _voice():
    return engines.create("espeak", engines.SPEECH)


# --- observed motion ----------------------------------------------------------------------


def observed(mouth: Mouth) -> np.ndarray:
    """(N, F) the clip's features, each control divided by the clip's own range first;
    frames without a face are the relaxed mouth, which silence matches."""
    c = np.stack([np.asarray(mouth.controls[k], float) for k in CONTROLS], axis=1)
    valid = np.asarray(mouth.valid, bool) & ~np.isnan(c).any(axis=1)
    if not valid.any():
        raise InputError("no frame of the video shows a face to read the lips of.")
    scaled = c / _scale(c[valid])
    scaled[~valid] = 0.0
    return features(scaled)


def normalised(controls: np.ndarray) -> np.ndarray:
    """(M, F) expected controls on the same footing: divided by the model's own range."""
    return features(controls / _model_scale())


def features(scaled: np.ndarray) -> np.ndarray:
    """Scaled controls -> the compared features: the mixes of data/lipread.json, their
    values and their changes per frame, weighted."""
    cfg = settings()
    x = np.minimum(scaled, cfg["cap"]) @ _mixes()
    speed = np.gradient(x, axis=0) if len(x) > 1 else np.zeros_like(x)
    return np.concatenate([cfg["level"] * x, cfg["speed"] * speed], axis=1)


@functools.cache
def _mixes() -> np.ndarray:
    """(C, F): how much each control adds to each feature."""
    mixes = settings()["features"].values()
    return np.array([[mix.get(k, 0.0) for mix in mixes] for k in CONTROLS])


def _scale(c: np.ndarray) -> np.ndarray:
    cfg = settings()
    return np.maximum(np.percentile(c, cfg["scale_percentile"], axis=0), cfg["min_scale"])


@functools.cache
def _model_scale() -> np.ndarray:
    """The model's range per control, over a reference text that uses every viseme, so it
    is the same for every candidate."""
    return _scale(expected(_REFERENCE).features)


_REFERENCE = (
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
    "She sells sea shells by the sea shore, while the thin judge watched."
)


def video_fps(mouth: Mouth) -> float:
    t = np.asarray(mouth.times, float)
    return float(1.0 / np.median(np.diff(t))) if len(t) > 1 else 25.0


# --- sentence DTW -------------------------------------------------------------------------


@dataclass
class Warp:
    """The best pairing of every video frame with one expected frame (or the silence)."""

    cost: float  # total distance plus penalties along the path
    path: np.ndarray  # (N,) expected frame per video frame; -1 = silence before, M = after


def warp(obs: np.ndarray, exp: np.ndarray) -> Warp:
    """Open-ended DTW: each video frame pairs with one expected frame or with silence; the
    expected frames are passed in order, each held (penalised) or skipped by at most one, and
    silence may take any number of frames before and after the speech."""
    n, m = len(obs), len(exp)
    dist = _distances(obs, exp)  # (N, M)
    rest = np.linalg.norm(obs, axis=1)  # distance to silence (all features 0)
    inf = np.inf
    before = np.cumsum(rest)  # all silence up to frame i
    acc = np.full((n, m), inf)
    move = np.zeros((n, m), np.int8)  # 0 stay, 1 step, 2 skip, 3 entered from silence
    acc[0, 0] = before[0] - rest[0] + dist[0, 0]
    move[0, 0] = 3
    for i in range(1, n):
        prev = acc[i - 1]
        options = np.full((4, m), inf)
        options[0] = prev + settings()["stay_penalty"]
        options[1, 1:] = prev[:-1]
        options[2, 2:] = prev[:-2] + settings()["skip_penalty"]
        options[3, 0] = before[i - 1]
        move[i] = options.argmin(0)
        acc[i] = dist[i] + options.min(0)
    after = np.r_[np.cumsum(rest[::-1])[::-1][1:], 0.0]  # silence after frame i
    ends = acc[:, m - 1] + after
    last = int(np.argmin(ends))
    return Warp(float(ends[last]), _backtrack(move, last, m))


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def _backtrack(move: np.ndarray, last: int, m: int) -> np.ndarray:
    n = len(move)
    path = np.full(n, m)
    i, j = last, m - 1
    while i >= 0:
        path[i] = j
        step = move[i, j]
        if step == 3:
            path[:i] = -1
            break
        j -= (0, 1, 2)[step]
        i -= 1
    return path


def map_times(path: np.ndarray, video_times: np.ndarray, exp_fps: float, m: int):
    """A function from expected seconds to video seconds along the warping path: each expected
    frame maps to the middle of the video frames paired with it, linearly in between."""
    period = float(np.median(np.diff(video_times))) if len(video_times) > 1 else 1 / 25
    inside = (path >= 0) & (path < m)
    js, first = np.unique(path[inside], return_index=True)
    counts = np.bincount(path[inside], minlength=m)[js]
    t0 = video_times[inside][first]
    centres = t0 + (counts - 1) * period / 2
    # half a frame either side of the first and last paired frames
    xs = np.r_[js[0] - 0.5, js, js[-1] + 0.5] / exp_fps
    ys = np.r_[t0[0] - period / 2, centres, t0[-1] + (counts[-1] - 0.5) * period]

    def to_video(t: float) -> float:
        return float(np.interp(t, xs, ys))

    return to_video


# --- ranking sentences --------------------------------------------------------------------


def rank(mouth: Mouth, choices: list[str]) -> list[Candidate]:
    """Every candidate sentence scored against the lips, best first."""
    texts = [c.strip() for c in choices if c.strip()]
    if not texts:
        raise InputError("no candidate sentences to choose from; give one or more lines.")
    obs, fps = observed(mouth), video_fps(mouth)
    times = np.asarray(mouth.times, float)
    found = []
    for text in texts:
        exp = expected(text, fps)
        w = warp(obs, normalised(exp.features))
        words, phonemes = _mapped(exp, w, times)
        found.append(Candidate(text, w.cost / len(obs), 0.0, words, phonemes))
    return with_confidence(found)


def _mapped(exp: Expected, w: Warp, times: np.ndarray) -> tuple[list[Word], list[Phoneme]]:
    to_video = map_times(w.path, times, exp.fps, len(exp.features))
    words = [Word(x.text, to_video(x.start), to_video(x.end)) for x in exp.words]
    phonemes = [Phoneme(p.ipa, to_video(p.start), to_video(p.end), p.word) for p in exp.phonemes]
    return words, phonemes


def with_confidence(found: list[Candidate], temperature: float | None = None) -> list[Candidate]:
    """Best first, each with its share of a softmax over -cost / temperature."""
    costs = np.array([c.cost for c in found])
    share = np.exp(-(costs - costs.min()) / (temperature or settings()["temperature"]))
    for c, s in zip(found, share / share.sum()):
        c.confidence = float(s)
    return sorted(found, key=lambda c: c.cost)


# --- connected words: a sentence grammar ----------------------------------------------------


def load_grammar(name: str | Path) -> list[list[str]]:
    """A grammar's slots: a built-in name (data/grammars/NAME.json) or a JSON file holding
    {"slots": [[word, ...], ...]} or the list of slots itself."""
    path = Path(name)
    if not path.suffix:
        path = GRAMMARS / f"{name}.json"
        if not path.is_file():
            known = ", ".join(grammar_names())
            raise InputError(f"unknown grammar {name!r}; give one of: {known}, or a JSON file.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read the grammar {path}: {e}") from None
    return check_grammar(data.get("slots") if isinstance(data, dict) else data, str(path))


def check_grammar(slots, where: str = "the grammar") -> list[list[str]]:
    """The slots as lists of words, or InputError saying what is wrong."""
    ok = isinstance(slots, list) and slots
    ok = ok and all(isinstance(s, list) and s and all(isinstance(w, str) for w in s) for s in slots)
    if not ok:
        raise InputError(
            f"{where} must be a list of slots, each a non-empty list of words, e.g. "
            '{"slots": [["bin", "lay"], ["blue", "red"]]}.'
        )
    return [[w.strip() for w in slot if w.strip()] for slot in slots]


@dataclass
class _Level:
    """One step of the sentence: a slot's word templates, or optional silence (one zero
    frame held as long as needed)."""

    templates: list[np.ndarray]
    optional: bool = False
    free_stay: bool = False

    def __post_init__(self) -> None:
        self.flat = np.concatenate(self.templates)
        self.word = np.concatenate([np.full(len(t), i) for i, t in enumerate(self.templates)])
        self.pos = np.concatenate([np.arange(len(t)) for t in self.templates])
        self.last = np.r_[self.pos[1:] == 0, True]

    def reversed(self) -> _Level:
        return _Level([t[::-1] for t in self.templates], self.optional, self.free_stay)


def read_grammar(mouth: Mouth, grammar: list[list[str]], best: int = N_BEST) -> list[Candidate]:
    """The sentences of the grammar that the lips fit best, best first.

    One-pass DTW over word templates (eSpeak in a carrier sentence: the word in its slot,
    the grammar's first words around it, so its edges carry real neighbours), with optional
    silence before, between and after the words. A forward and a time-reversed pass give,
    for every word, the cost of the best sentence through it; the best few words per slot
    are combined into sentences, which are then scored whole (coarticulation across word
    boundaries as eSpeak says it) by `rank`; confidences are shares among those sentences.
    """
    slots = check_grammar(grammar)
    obs, fps = observed(mouth), video_fps(mouth)
    through = word_costs(obs, word_templates(slots, fps))
    sentences = _combine(slots, through, max(best, 1) * 4)
    return rank(mouth, sentences)[:best]


def word_templates(slots: list[list[str]], fps: float) -> list[list[np.ndarray]]:
    """Each word's expected features, cut from eSpeak's reading of a carrier sentence."""
    carrier = [slot[0] for slot in slots]
    out = []
    for s, slot in enumerate(slots):
        row = []
        for word in slot:
            exp = expected(" ".join(carrier[:s] + [word] + carrier[s + 1 :]), fps)
            f = normalised(exp.features)
            said = exp.words[s] if len(exp.words) == len(slots) else _span_of(exp, s, len(slots))
            lo = int(round(said.start * fps))
            row.append(f[lo : max(lo + 1, int(round(said.end * fps)))])
        out.append(row)
    return out


def _span_of(exp: Expected, s: int, n: int) -> Word:
    """Where word s of n lies when eSpeak split or merged words: an even share of the speech."""
    start, end = exp.phonemes[0].start, exp.phonemes[-1].end
    step = (end - start) / n
    return Word("", start + s * step, start + (s + 1) * step)


def _levels(templates: list[list[np.ndarray]], width: int) -> list[_Level]:
    silence = _Level([np.zeros((1, width))], optional=True, free_stay=True)
    out = [silence]
    for row in templates:
        out += [_Level(row), silence]
    return out


def word_costs(obs: np.ndarray, templates: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Per slot, per word: the cost of the best whole reading that says that word there."""
    levels = _levels(templates, obs.shape[1])
    _, ends = _one_pass(obs, levels)
    behind, _ = _one_pass(obs[::-1], [lv.reversed() for lv in levels[::-1]])
    n, count = len(obs), len(levels)
    out = []
    for li in range(1, count, 2):  # the word levels
        after = behind[count - 2 - li, n - 1 - np.arange(n)]  # frames t+1.. by later levels
        out.append((ends[li] + after[:, None]).min(axis=0))
    return out


def _one_pass(obs: np.ndarray, levels: list[_Level]) -> tuple[np.ndarray, dict]:
    """Forward DTW through the levels in order. done[l, t]: best cost of frames 0..t-1 with
    levels 0..l said (done[l, 0]: none yet); ends[l][t, w]: word w of level l ending at t."""
    n, inf = len(obs), np.inf
    done = np.full((len(levels), n + 1), inf)
    ends = {li: np.full((n, len(lv.templates)), inf) for li, lv in enumerate(levels)}
    acc = [np.full(len(lv.flat), inf) for lv in levels]
    prior = True
    for li, lv in enumerate(levels):
        prior = prior and lv.optional
        done[li, 0] = 0.0 if prior else inf
    stay = settings()["stay_penalty"]
    for t in range(n):
        before = 0.0 if t == 0 else inf  # the virtual level before the first
        for li, lv in enumerate(levels):
            entry = before if li == 0 else done[li - 1, t]
            acc[li] = _advance(acc[li], lv, np.linalg.norm(lv.flat - obs[t], axis=1), entry, stay)
            np.minimum.at(ends[li][t], lv.word[lv.last], acc[li][lv.last])
            done[li, t + 1] = ends[li][t].min()
            if lv.optional:
                done[li, t + 1] = min(done[li, t + 1], done[li - 1, t + 1] if li else inf)
    return done, ends


def _advance(prev: np.ndarray, lv: _Level, dist: np.ndarray, entry: float, stay: float):
    """One video frame further: hold a template frame, step one, skip one, or start a word."""
    inf = np.inf
    step = np.r_[inf, prev[:-1]]
    step[lv.pos == 0] = inf
    skip = np.r_[inf, inf, prev[:-2]][: len(prev)]
    skip[lv.pos < 2] = inf
    start = np.where(lv.pos == 0, entry, inf)
    hold = prev + (0.0 if lv.free_stay else stay)
    return dist + np.minimum(np.minimum(hold, step), np.minimum(skip, start))


def _combine(slots: list[list[str]], through: list[np.ndarray], count: int) -> list[str]:
    """The `count` word combinations whose summed excess over the best reading is least,
    taking the best few words of each slot."""
    picks = []
    for words, cost in zip(slots, through):
        order = np.argsort(cost)[:_PER_SLOT]
        picks.append([(cost[i] - cost[order[0]], words[i]) for i in order])
    combos = sorted(itertools.product(*picks), key=lambda c: sum(x for x, _ in c))
    return [" ".join(w for _, w in combo) for combo in combos[:count]]


# --- script timing ----------------------------------------------------------------------


@dataclass
class ScriptTiming:
    """A script's words and phonemes on the video's clock, found from the lips alone."""

    words: list[Word]
    phonemes: list[Phoneme]
    duration: float
    cost: float


def time_script(mouth: Mouth, script: str, speaking: Activity | None = None) -> ScriptTiming:
    """When each word and phoneme of `script` is said in the video, from the lips alone:
    eSpeak's reading warped onto the video (`warp`), its times carried through the path. With
    `speaking` (lip_activity), the warp sees only the span where the lips speak (the silence
    around it is not stretched over): s4's word starts 123 -> 92 ms off on average."""
    t = np.asarray(mouth.times, float)
    duration = float(t[-1] + (np.median(np.diff(t)) if len(t) > 1 else 0.0)) if len(t) else 0.0
    part, start = trimmed(mouth, speaking.spans) if speaking else (mouth, 0.0)
    found = rank(part, [script])[0]
    return ScriptTiming(_later(found.words, start), _later(found.phonemes, start), duration,
                        found.cost)  # fmt: skip


def _later(spans: list, seconds: float) -> list:
    """Words or phonemes moved `seconds` later (from a trimmed clip's clock to the video's)."""
    return [replace(x, start=x.start + seconds, end=x.end + seconds) for x in spans]


def trimmed(mouth: Mouth, spans: list[tuple[float, float]], pad_s: float = TRIM_PAD_S):
    """(the mouth from the first speaking span to the last, `pad_s` either side, its clock
    starting at 0; where that starts in the clip). No spans: the whole mouth."""
    if not spans:
        return mouth, 0.0
    keep = (mouth.times >= spans[0][0] - pad_s) & (mouth.times < spans[-1][1] + pad_s)
    if keep.sum() < 2:
        return mouth, 0.0
    start = float(mouth.times[keep][0])
    return Mouth(mouth.times[keep] - start, mouth.lips[keep],
                 {k: v[keep] for k, v in mouth.controls.items()}, mouth.valid[keep]), start  # fmt: skip


# --- from a video file ------------------------------------------------------------------


def read_mouth(video, *, face_model: str = "auto", neutral=None, name: str = "", progress=None):
    """The video's tracked mouth (face.track + mouth.track_mouth); never reads its sound."""
    tracked = face.track(video, model=face_model, progress=progress or no_progress, name=name)
    return mouth_of(tracked, name or str(video), neutral)


def lipread(
    video,
    choices: list[str] | None = None,
    grammar: list[list[str]] | str | None = None,
    *,
    best: int = N_BEST,
    model=None,
    face_model: str = "auto",
    name: str = "",
    progress=None,
) -> list[Candidate]:
    """What is said in a video, from the lips: the candidate lines ranked or the grammar's
    best sentences, by a trained `model` (model.LipReaderModel) or, without one, by template
    matching of the mouth's motion."""
    if (choices is None) == (grammar is None):
        raise InputError("give either candidate lines or a grammar to read the lips with.")
    if choices is not None and not [c for c in choices if c.strip()]:
        raise InputError("no candidate sentences to choose from; give one or more lines.")
    slots = load_grammar(grammar) if isinstance(grammar, (str, Path)) else grammar
    mouth = read_mouth(video, face_model=face_model, name=name, progress=progress)
    if model is not None:  # the model reads silence as a word: no trimming needed
        found = read_by_model(mouth, model, choices=choices, slots=slots, best=best)
        return found[:best] if best else found
    active = speaking(mouth)  # templates are not stretched over the silence around speech
    part, start = trimmed(mouth, active.spans) if active else (mouth, 0.0)
    found = rank(part, choices) if choices is not None else read_grammar(part, slots, best)
    found = [replace(c, words=_later(c.words, start), phonemes=_later(c.phonemes, start))
             for c in found]  # fmt: skip
    return found[:best] if best else found


def read_by_model(mouth, model, *, choices=None, slots=None, best: int = N_BEST) -> list[Candidate]:
    """A trained lip reader's reading: the grammar's best sentences with word times, or the
    candidate lines ranked, best first."""
    times = mouth.times
    steps = np.diff(times)
    fps = 1.0 / float(np.median(steps)) if len(steps) else 25.0
    reads = read_with_model(model, mouth, fps, slots=slots, choices=choices, best=best)
    return [_candidate(r, times, fps) for r in reads]


@dataclass
class Activity:
    """When the lips speak, from the lips alone (the trained model's P(not silence))."""

    times: np.ndarray  # (N,) seconds, the video's frames
    values: np.ndarray  # (N,) 0..1
    threshold: float
    spans: list[tuple[float, float]]  # seconds where values stay over the threshold

    def to_dict(self) -> dict:
        return {"threshold": self.threshold,
                "spans": [{"start": round(a, 3), "end": round(b, 3)} for a, b in self.spans],
                "frames": [[round(float(t), 3), round(float(v), 3)]
                           for t, v in zip(self.times, self.values)]}  # fmt: skip

    def against(self, words: list[Word]) -> tuple[float, float]:
        """(seconds the lips speak outside every word, seconds of words while the lips rest):
        how far the lips and the sound's words disagree. In-sync GRID clips of unseen speakers
        stay under 0.5 s and 0.8 s (s4's 50 clips)."""
        heard = np.zeros(len(self.times), bool)
        for w in words:
            heard |= (self.times >= w.start) & (self.times < w.end)
        lips = self.values > self.threshold
        step = float(np.median(np.diff(self.times))) if len(self.times) > 1 else 0.04
        return float((lips & ~heard).sum() * step), float((heard & ~lips).sum() * step)


def lip_activity(mouth, model, threshold: float = 0.5) -> Activity:
    """Per frame, how likely the lips are speaking, and the spans over `threshold`."""
    values = activity(model.word_log_posteriors(model_features(mouth)), model.vocab)
    return Activity(mouth.times, values, threshold, spans_over(values, mouth.times, threshold))


def speaking(mouth: Mouth) -> Activity | None:
    """When the lips speak, by the shipped model; None (the whole clip is used) without it."""
    from .model import LipReaderModel

    try:
        return lip_activity(mouth, LipReaderModel.shipped())
    except EngineUnavailable as e:
        log.info("no lip activity, the whole clip is used: %s", e)
        return None


def _candidate(read, times: np.ndarray, fps: float) -> Candidate:
    """A model's reading as a Candidate: cost = -mean log p per frame, word spans in seconds."""
    n = max(len(times), 1)
    words = [
        Word(w, round(float(times[a]), 3), round(float(times[b - 1]) + 1.0 / fps, 3))
        for w, (a, b) in zip(read.words, read.spans)
    ]
    return Candidate(read.text, -read.score / n, read.confidence, words)


def time_script_to_video(
    video,
    script: str,
    *,
    viseme_set: str = "oculus15",
    fps: float = 24.0,
    curve_settings: CurveSettings = CurveSettings(),
    face_model: str = "auto",
    name: str = "",
    progress=None,
):
    """A timeline of `script` timed to the speaker's lips in `video` (its sound unused)."""
    mouth = read_mouth(video, face_model=face_model, name=name, progress=progress)
    timing = time_script(mouth, script, speaking(mouth))
    source = {"kind": "video-lips", "video": (name or str(video))[:200], "text": script,
              "lipread_cost": round(timing.cost, 4)}  # fmt: skip
    return animate(
        timing.words, timing.phonemes, timing.duration, viseme_set, fps, curve_settings, source
    )


def sample_sentences(
    grammar: list[list[str]], count: int, seed: int = 0, exclude: tuple[str, ...] = ()
) -> list[str]:
    """`count` different sentences drawn evenly from a grammar (reproducible by `seed`),
    none of `exclude`: distractors for measuring how well candidates are told apart."""
    rng, found = random.Random(seed), dict.fromkeys(())
    total = int(np.prod([len(s) for s in grammar]))
    if count > total - len(exclude):
        raise InputError(f"the grammar has only {total} sentences; ask for fewer.")
    while len(found) < count:
        text = " ".join(rng.choice(slot) for slot in grammar)
        if text not in exclude:
            found[text] = None
    return list(found)
