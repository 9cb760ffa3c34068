"""Audio (and its script, when given) -> words and timed phonemes, lined up with what is heard.

script, short audio   ─► pocketsphinx forced alignment of the whole file
script, up to 10 min  ─► eSpeak + time warping locate the words ─► stretches cut at pauses ─►
                         alignment per stretch with loose ends, stitched where the ends meet
no script / long file ─► Whisper words ─► stretches of ≤ 30 s ─► alignment per stretch
alignment fails       ─► phones spread over the stretch's word times (a warning says so)
Stretches are aligned in parallel, one process per core.
not English           ─► G2P per word, spread over Whisper's word times (a warning says so)
--engine allosaurus / phoneloop ─► phones straight from the audio, no words
words only (`hear`)   ─► Whisper's words and times, nothing aligned
then, on every path  ─► each phone boundary moved to where the sound puts it (refine.py)
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from difflib import SequenceMatcher

import numpy as np

from .. import engines
from ..core.errors import EngineUnavailable, InputError
from ..core.progress import Progress, check_cancel, no_progress, part
from ..core.spread import spread
from ..core.timeline import Phoneme, Word
from ..engines import pocketsphinx
from ..engines.g2p import can_pronounce, pronounce
from ..engines.whisper import choose_model
from ..media.audio import Audio, loudness
from . import refine as _refine
from .locate import locate

log = logging.getLogger(__name__)

# What `bake --engine` takes: auto (the script, else Whisper), Whisper, or a phone recogniser.
AUDIO_ENGINES = ["auto", "whisper", *engines.names(engines.PHONES)]
# What `transcribe` takes: the engines that hear words.
TRANSCRIBE_ENGINES = engines.names(engines.TRANSCRIPT)

WHOLE_FILE_MAX_S = 40.0  # alignment memory grows with length squared (356 s in one pass: 3.4 GB)
LOCATE_MAX_S = 600.0  # time warping against eSpeak is linear but its band is a fixed 40 s
STRETCH_S = 30.0
LOOSE = 10  # words a located stretch may start or end early or late
WHISPER_PIECE_S = 600.0
RATE = 16000


@dataclass
class Recognized:
    words: list[Word]
    phonemes: list[Phoneme]
    language: str
    transcript: str  # "script", "whisper" or "none"
    warnings: list[str] = field(default_factory=list)
    aligned: bool = False  # the forced aligner timed the phones (refinement trusts it more)


@dataclass
class Heard:
    """What a recording says, as Whisper heard it: no phonemes, nothing aligned."""

    text: str
    words: list[Word]
    language: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        words = [{"text": w.text, "start": w.start, "end": w.end} for w in self.words]
        return {"text": self.text, "words": words, "language": self.language,
                "warnings": list(self.warnings)}  # fmt: skip


@dataclass
class _Stretch:
    start: float
    end: float
    words: list[Word]  # Whisper's words (times known) or script words placed in this stretch


def recognize(
    audio: Audio,
    *,
    text: str | None = None,
    engine: str = "auto",
    model: str = "auto",
    lang: str = "",
    refine: bool = True,
    progress: Progress = no_progress,
) -> Recognized:
    """Words and phonemes of `audio`; the strategy follows the inputs (see the module doc).
    `refine`: move each phone boundary to where the boundary model hears it."""
    found = _recognized(audio, text, engine, model, lang, progress)
    return _refined(audio, found) if refine else found


def _refined(audio: Audio, found: Recognized) -> Recognized:
    """The boundaries refined; without a usable boundary model, as aligned (a warning says why)."""
    if not found.phonemes:
        return found
    try:
        model = _refine.BoundaryModel.shipped()
    except (InputError, EngineUnavailable) as e:
        log.warning("boundary model unusable", exc_info=True)
        found.warnings.append(f"phone boundaries left as aligned: {e}")
        return found
    prior = _refine.ALIGNED_PRIOR_S if found.aligned else None
    found.phonemes, found.words = _refine.refine(audio, found.phonemes, found.words, model, prior)
    return found


def _recognized(audio, text, engine, model, lang, progress) -> Recognized:
    if engine in engines.names(engines.PHONES):
        return _phones_only(audio, engine, progress)
    if engine not in ("auto", "pocketsphinx", "whisper"):
        raise InputError(f"unknown engine '{engine}'; choose one of: {', '.join(AUDIO_ENGINES)}.")
    english = not lang or lang.lower().startswith("en")
    if text is not None and english and audio.duration <= LOCATE_MAX_S:
        result = _from_script(audio, text, progress)
        if result:
            return result
        log.info("the script could not be located in the sound; Whisper places it")
    return _from_whisper(audio, text, engine, model, lang, progress)


def _from_script(audio: Audio, text: str, progress: Progress) -> Recognized | None:
    """English with its script, up to LOCATE_MAX_S: no transcription needed."""
    spoken = _spoken(text)
    if not spoken:
        raise InputError(
            "the script has no words; give the words spoken in the audio, or no script."
        )
    if audio.duration <= WHOLE_FILE_MAX_S:
        return _align_script(audio, spoken, progress)
    return _align_located(audio, spoken, progress)


def hear(
    audio: Audio,
    *,
    engine: str = "whisper",
    model: str = "auto",
    lang: str = "",
    progress: Progress = no_progress,
) -> Heard:
    """Only the words of `audio` and their times: a transcript to read or correct, faster than
    `recognize` as nothing is aligned."""
    if engine not in TRANSCRIBE_ENGINES:
        raise InputError(
            f"unknown engine '{engine}'; choose one of: {', '.join(TRANSCRIBE_ENGINES)}."
        )
    language, words, warnings = _listen(audio, engine, model, lang, progress)
    if not words:
        warnings.append(f"no speech found in {audio.source}")
    return Heard(" ".join(w.text for w in words), words, language, warnings)


def _listen(audio, engine, model, lang, progress) -> tuple[str, list[Word], list[str]]:
    """(language, words, warnings): the model chosen for the language, then its words."""
    check_cancel(progress, 0.0, "detecting the language")
    model, hint, chosen = choose_model(model, lang, audio.samples)
    language, heard, warnings = _transcribe(audio, model, hint, progress, engine)
    language = lang or language
    log.info("%s %s heard %d words of language %r", engine, model, len(heard), language)
    return language, heard, chosen + warnings


def _from_whisper(audio, text, engine, model, lang, progress) -> Recognized:
    """Whisper's words (or the script placed on them) in stretches, aligned where English."""
    language, heard, warnings = _listen(audio, "whisper", model, lang, part(progress, 0.0, 0.5))
    if not lang and not can_pronounce(language):  # Whisper's guess, e.g. 'nn' for noisy English
        warnings.append(f"Whisper took the speech for '{language}', which the pronunciation "
                        "rules lack; it is read as English (give --lang to say the language)")  # fmt: skip
        language = "en"
    if text is not None:
        heard = _place_script(text, heard, language, warnings)
    if not heard:
        return Recognized(
            [], [], language, "whisper", warnings + [f"no speech found in {audio.source}"]
        )
    stretches = _stretches(heard, audio.duration)
    english = language.lower().startswith("en")
    if not english:
        warnings.append(
            f"language '{language}': phonemes come from pronunciation rules timed by Whisper's "
            f"word times, so lip sync is less accurate than for English"
        )
    jobs = [
        _job(audio, _spoken(" ".join(w.text for w in s.words)), s.start, s.end) for s in stretches
    ]
    for job in jobs:  # Whisper heard these words (or the script's placed on them): keep them
        job.judge = False
    align = english and engine != "whisper"
    aligned = _align_all(jobs, part(progress, 0.5, 1.0)) if align else [None] * len(jobs)
    words, phonemes = [], []
    for s, a in zip(stretches, aligned):
        w, p = _stretch(s, a, language, len(words), warnings)
        words += w
        phonemes += p
    return Recognized(
        words, phonemes, language, "script" if text is not None else "whisper", warnings, align
    )


def _transcribe(
    audio: Audio, model: str, hint: str | None, progress: Progress, engine: str = "whisper"
) -> tuple[str, list[Word], list[str]]:
    """Whisper's words, in pieces of at most WHISPER_PIECE_S cut at pauses: Whisper
    computes features for all it is given at once (an hour in one piece peaked at 3.9 GB)."""
    whisper = engines.create(engine, engines.TRANSCRIPT, model=model)
    cuts = [round(t * RATE) for t in _pause_cuts(audio.samples, WHISPER_PIECE_S)]
    language, words, warnings = hint or "en", [], []
    for a, b in zip(cuts, cuts[1:]):
        t = whisper.transcribe(
            audio.samples[a:b], language=hint, progress=part(progress, a / cuts[-1], b / cuts[-1])
        )
        language = t.language
        warnings += [w for w in t.warnings if w not in warnings]
        offset = a / RATE
        words += [
            Word(w.text, w.start + offset, w.end + offset) for s in t.segments for w in s.words
        ]
    return language, words, warnings


def _spoken(text: str) -> list[str]:
    """The words as spoken: "42" is "forty two"."""
    return [p.word for p in pronounce(text)]


def _align_script(audio: Audio, spoken: list[str], progress: Progress) -> Recognized | None:
    """Force-align the whole script; None when it does not fit the audio (the caller falls back)."""
    a = pocketsphinx.align(audio.samples, spoken, progress=progress)
    if a.failed:
        return None
    return Recognized(a.words, a.phonemes, "en", "script", list(a.warnings), aligned=True)


def _align_located(audio: Audio, spoken: list[str], progress: Progress) -> Recognized | None:
    """The script cut into stretches at pauses, where eSpeak and time warping locate its words;
    each stretch aligned with loose ends, and stitched. None if too little of it aligns."""
    progress(0.0, "locating the script")
    _warm_workers()  # they load their models while this process locates the words
    located = locate(audio.samples, RATE, spoken)
    cuts = _pause_cuts(audio.samples, STRETCH_S)
    middles = np.array([(w.start + w.end) / 2 for w in located])
    bounds = [0, *np.searchsorted(middles, cuts[1:-1]).tolist(), len(spoken)]
    spans = [(k, a, b) for k, (a, b) in enumerate(zip(bounds, bounds[1:])) if b > a]
    jobs = [_job(audio, spoken, cuts[k], cuts[k + 1], (a, b)) for k, a, b in spans]
    aligned = _align_all(jobs, part(progress, 0.1, 1.0))
    words, phonemes, warnings, done, lost = [], [], [], 0, 0.0
    fits = []  # (fit, seconds) of the stretches aligned
    for (k, _, end), job, result in zip(spans, jobs, aligned):
        t0, t1 = cuts[k], cuts[k + 1]
        if result.failed or job.first + result.span[0] != done or _at_limit(job, result):
            # the ends do not meet, or one may lie beyond its range: again, from where the
            # stretch before ended, and with a wider range for the end
            job = _job(audio, spoken, t0, t1, (done, end), exact_start=True, loose=3 * LOOSE)
            result = _align_all([job], no_progress)[0]
        if result.failed:  # the located times it is, for this stretch
            lost += t1 - t0
            w, p = _stretch(_Stretch(t0, t1, located[done:end]), None, "en", len(words), [])
            done = end
        else:
            w, p = _stretch(_Stretch(t0, t1, []), result, "en", len(words), [])
            done = job.first + result.span[1]
            fits.append((result.fit, t1 - t0))
        words += w
        phonemes += p
    fit = np.average([f for f, _ in fits], weights=[s for _, s in fits]) if fits else 0.0
    if lost > 0.5 * audio.duration or done < len(spoken) or pocketsphinx.forced(phonemes, fit):
        return None
    if lost:
        warnings.append(
            f"alignment failed for {lost:.0f} s of the audio; phones there are timed by the "
            "script's estimated place, less exactly"
        )
    return Recognized(words, phonemes, "en", "script", warnings, aligned=True)


@dataclass
class _Job:
    """One stretch to align: its samples and words, where they lie, and how loose its ends are."""

    samples: np.ndarray
    words: list[str]
    offset: float
    loose: tuple[int, int] = (0, 0)
    first: int = 0  # index of words[0] among all the words
    judge: bool = True  # fail an alignment that looks forced (pocketsphinx.forced)


def _job(audio, words, t0, t1, span=None, exact_start=False, loose=LOOSE) -> _Job:
    """A stretch t0..t1 holding `words`, or, given span=(a, b), about words[a:b] (`loose` words
    either way, except at the script's ends and, with exact_start, at its start)."""
    samples = audio.samples[int(t0 * RATE) : int(t1 * RATE)]
    if span is None:
        return _Job(samples, words, t0)
    a, b = span
    lo = a if exact_start else max(0, a - loose)
    hi = min(len(words), b + loose)
    return _Job(samples, words[lo:hi], t0, (a - lo, hi - b), lo)


def _at_limit(job: _Job, result) -> bool:
    """Whether the alignment ended on the last word it was offered, short of the script's end:
    the stretch may hold more."""
    return job.loose[1] > 0 and result.span[1] == len(job.words)


def _align_all(jobs: list[_Job], progress: Progress) -> list:
    """pocketsphinx alignments of the jobs, one process per core (it holds Python's lock)."""
    if len(jobs) < 2 or _cores() < 2 or sum(len(j.samples) for j in jobs) < 40 * RATE:
        out = []
        for k, job in enumerate(jobs):
            check_cancel(progress, k / len(jobs), "aligning")
            out.append(_align_job(job))
        check_cancel(progress, 1.0, "aligning")
        return out
    futures = [_pool().submit(_align_job, job) for job in jobs]
    try:
        pending = set(futures)
        while pending:
            check_cancel(progress, 1 - len(pending) / len(futures), "aligning")
            pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED).not_done
        check_cancel(progress, 1.0, "aligning")
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        raise


def _align_job(job: _Job):
    return pocketsphinx.align(
        job.samples, job.words, offset=job.offset, loose=job.loose, judge=job.judge
    )


def _cores() -> int:
    if multiprocessing.current_process().daemon:  # a pool's or Dask's worker: no children
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def _pool() -> ProcessPoolExecutor:
    # fork, not spawn: spawn re-runs the caller's main script in every worker
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    return ProcessPoolExecutor(_cores(), mp_context=context, initializer=_fresh_worker)


def _warm_workers() -> None:
    if _cores() >= 2:
        for _ in range(_cores()):
            _pool().submit(_load_models)


def _fresh_worker() -> None:
    """A forked worker starts with its own decoder and lock: the parent's may be mid-use."""
    pocketsphinx._lock = threading.Lock()
    pocketsphinx._aligner.cache_clear()
    pocketsphinx._features.cache_clear()


def _load_models() -> None:
    pocketsphinx._aligner()
    pocketsphinx._features()


def _pause_cuts(samples: np.ndarray, most_s: float) -> list[float]:
    """Times 0 .. end cutting the audio into pieces of at most most_s, each cut in the middle of
    the longest pause in the second half of the piece (the quietest 10 ms if there is none)."""
    rms, loud = loudness(samples)
    cuts, end = [0.0], len(samples) / RATE
    while end - cuts[-1] > most_s:
        lo, hi = int((cuts[-1] + most_s / 2) * 100), int((cuts[-1] + most_s) * 100)
        run, best, at = 0, -1, lo + int(np.argmin(rms[lo:hi]))
        for i in range(lo, hi):
            run = 0 if loud[i] else run + 1
            if run > best and run > 0:
                best, at = run, i - run // 2
        cuts.append(at / 100 + 0.005)
    return cuts + [end]


def _place_script(text: str, heard: list[Word], language: str, warnings: list[str]) -> list[Word]:
    """The script's words, timed by matching them to Whisper's words (long or unaligned files)."""
    script = [p.word for p in pronounce(text, language if language != "en" else "en-us")]
    if not heard:
        return []
    key = [w.text.strip(".,!?;:\"'").lower() for w in heard]
    placed: list[Word | None] = [None] * len(script)
    matcher = SequenceMatcher(None, [s.lower() for s in script], key, autojunk=False)
    for a, b, n in matcher.get_matching_blocks():
        for k in range(n):
            placed[a + k] = Word(script[a + k], heard[b + k].start, heard[b + k].end)
    matched = sum(p is not None for p in placed)
    if matched < 0.5 * len(script):
        warnings.append(
            f"the script matches only {matched} of {len(script)} words Whisper heard; "
            "check that the script belongs to this audio"
        )
    # Unmatched script words share the time between their matched neighbours.
    out, k = [], 0
    while k < len(placed):
        if placed[k] is not None:
            out.append(placed[k])
            k += 1
            continue
        j = k
        while j < len(placed) and placed[j] is None:
            j += 1
        lo = out[-1].end if out else heard[0].start
        hi = placed[j].start if j < len(placed) else heard[-1].end
        step = max(hi - lo, 0.0) / (j - k)
        out += [Word(script[i], lo + (i - k) * step, lo + (i - k + 1) * step) for i in range(k, j)]
        k = j
    return out


def _stretches(words: list[Word], duration: float) -> list[_Stretch]:
    """Consecutive words grouped into stretches of at most STRETCH_S, cut at the longest pauses."""
    out: list[_Stretch] = []
    current: list[Word] = []
    for w in words:
        if current and w.end - current[0].start > STRETCH_S:
            out.append(_close(current, duration))
            current = []
        current.append(w)
    if current:
        out.append(_close(current, duration))
    for a, b in zip(out, out[1:]):  # no shared time: words aligned in one cannot overlap the next
        if a.end > b.start:
            a.end = b.start = max(a.words[-1].end, min(b.words[0].start, (a.end + b.start) / 2))
    return out


def _close(words: list[Word], duration: float) -> _Stretch:
    return _Stretch(max(0.0, words[0].start - 0.15), min(duration, words[-1].end + 0.15), words)


def _stretch(
    s: _Stretch, aligned, language: str, first: int, warnings: list[str]
) -> tuple[list[Word], list[Phoneme]]:
    """One stretch: its alignment when there is one, else phones spread over the word times."""
    if aligned is not None and not aligned.failed:
        for p in aligned.phonemes:
            p.word += first
        return aligned.words, aligned.phonemes
    if aligned is not None:
        warnings.append(
            f"alignment failed for {s.start:.1f}-{s.end:.1f} s; phones there are spread over "
            "Whisper's word times"
        )
    words = [Word(w.text, w.start, w.end) for w in s.words]
    return words, spread(words, _pronunciations(words, language), first)


def _pronunciations(words: list[Word], language: str) -> list[list[str]]:
    lang = "en-us" if language.lower().startswith("en") else language
    out = []
    for w in words:
        p = pronounce(w.text, lang)
        out.append([ph for x in p for ph in x.phonemes])
    return out


def _phones_only(audio: Audio, engine: str, progress: Progress) -> Recognized:
    """Transcript-free: phones straight from the audio, in any language."""
    recognizer = engines.create(engine, engines.PHONES)
    phones = recognizer.recognize(audio.samples, progress=progress)
    warnings = [] if phones else [f"no speech sounds found in {audio.source}"]
    return Recognized([], phones, "", "none", warnings)
