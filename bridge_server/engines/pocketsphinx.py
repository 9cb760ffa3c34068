"""pocketsphinx 5.1.1: forced alignment of a known script, and a transcript-free phone loop.

Its US English acoustic model, CMU dictionary and phone language model ship inside the wheel.
Alignment runs pocketsphinx's own two passes (`pocketsphinx align` with phone alignment): words
first, then phones within them. The words come back exactly as the caller gave them. A plain
word (letters, ' and -) is looked up in the dictionary in lower case; any other word ("42",
"Dr.", "$") and any word the dictionary lacks ("Zorblax") is added with the pronunciation
`g2p.pronounce` gives it (gruut expands numbers and abbreviations; the dictionary's own "dr."
is "drive"). So callers may pass script tokens or spoken words (`g2p.pronounce`) alike.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import threading
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ..core.errors import EngineUnavailable, require
from ..core.phonemes import ipa_arpabet, normalize
from ..core.progress import Progress, check_cancel, no_progress
from ..core.timeline import Phoneme, Word
from ..media.audio import loudness
from .g2p import cmudict_entries, pronounce

INSTALL = "pip install pocketsphinx==5.1.1  (or ./setup.sh)"
RATE = 16000
FRAME_S = 0.01  # pocketsphinx's frame step
# A frame's 25.6 ms analysis window is centred 12.8 ms after the frame starts, so a change
# between frames t-1 and t lies 7.8 ms after frame t starts (on eSpeak speech the median
# boundary error goes from -11 to -4 ms, the share within 20 ms from 66% to 72%).
EDGE_S = (0.025625 - FRAME_S) / 2
BLOCK = RATE  # samples per process_raw call: progress and cancelling every second of audio
FIT_MIN = -50.0  # see forced
_QUIET = dict(loglevel="FATAL")  # failures come back as warnings instead
# Alignment needs bestpath off (as `pocketsphinx align` sets it) and wide, equal beams. Of 49
# test clips (TTS sentences, 55 s of TTS, 37 s of LibriVox) the defaults failed 17, bestpath
# off 3, beams of 1e-48 as well 2, beams of 1e-80 without bestpath off 23; this setting none.
# Accents the model fits less well still lose every path: 20 of 40 lines of eSpeak's en-gb-x-rp
# and en-029 voices, which then went to Whisper. Those are searched again without pruning
# (_UNPRUNED), and all align; unpruned throughout, the 356.6 s reading took 1.4x as long.
# topn 2 (of the 4 best Gaussians per codebook): alignment 15% faster, eSpeak boundaries
# within 20 ms 71.3% -> 72.0%, GRID's word boundaries unchanged.
_ALIGN = dict(beam=1e-80, wbeam=1e-80, pbeam=1e-80, bestpath=False, lm=None, topn=2)
_UNPRUNED = dict(_ALIGN, beam=0.0, wbeam=0.0, pbeam=0.0)
_MODEL_FILES = ("en-us/mdef", "cmudict-en-us.dict", "en-us-phone.lm.bin")
_PLAIN = re.compile(r"[a-z][a-z'-]*")
_lock = threading.Lock()  # decoders are not thread-safe; both are loaded once and kept
_grammars = itertools.count()  # names of the loose-ended grammars, one per stretch


@dataclass
class Alignment:
    words: list[Word]  # the given words, timed (seconds, + offset); empty when failed
    phonemes: list[Phoneme]  # IPA; `word` indexes `words`
    warnings: list[str] = field(default_factory=list)
    failed: bool = False  # pocketsphinx could not align this stretch: the caller falls back
    span: tuple[int, int] = (0, 0)  # the given words found in the audio: words[span[0]:span[1]]
    fit: float = 0.0  # acoustic score per frame against the best senone's (0 at best; pauses in)


def check_pocketsphinx() -> str:
    model = Path(_ps().get_model_path("en-us"))
    missing = [f for f in _MODEL_FILES if not (model / f).exists()]
    if missing:
        raise EngineUnavailable(
            f"pocketsphinx's US English model lacks {', '.join(missing)} in {model}; fix: "
            f"pip install --force-reinstall pocketsphinx==5.1.1  (or ./setup.sh)"
        )
    return f"pocketsphinx {version('pocketsphinx')}, US English model in {model}"


def align(
    samples: np.ndarray,
    words: list[str],
    *,
    offset: float = 0.0,
    loose: tuple[int, int] = (0, 0),
    judge: bool = True,
    progress: Progress = no_progress,
) -> Alignment:
    """Times of `words` and of their phonemes in `samples` (float32 mono 16 kHz).

    loose=(a, b): the audio may start up to `a` words early or late around words[a], and end up
    to `b` words around words[-1 - b]: a stretch cut from a long recording by estimated times.
    The words found are words[span[0]:span[1]]. Audio that does not fit the words gives
    `failed=True` and a warning, never an exception, and so does an alignment that looks forced
    (`forced`) unless judge=False: words that were heard, not only written.
    """
    pcm = _pcm(samples)
    warnings: list[str] = []
    with _lock:
        keys = [_entry(_aligner(), w, warnings) for w in words]
        spoken = [k for k in keys if k]
        if not spoken:
            return _failed(warnings, "no word of the script can be pronounced")
        cmn = _cepstral_mean(pcm)
        for unpruned in (False, True):  # where the beams lose every path, search them all
            decoder = _aligner(unpruned)
            for w in words if unpruned else ():
                _entry(decoder, w, [])  # the same keys, in this decoder's dictionary too
            try:
                aligned, fit = _passes(decoder, spoken, loose, pcm, cmn, progress)
                break
            except RuntimeError as e:
                error = e
        else:
            return _failed(
                warnings, f"pocketsphinx could not align the script to the audio ({error})"
            )
    found = _found(spoken, aligned, loose)
    if found is None:
        return _failed(warnings, "pocketsphinx lost words while aligning")
    words, keys, span = _keep(words, keys, found)
    result = _timed(words, keys, aligned, offset, len(samples) / RATE, warnings)
    result.span, result.fit = span, fit
    if judge and forced(result.phonemes, fit):
        return _failed(warnings, f"the script's words do not fit the sound (score {fit:.0f} per "
                                 "frame, many phones at the shortest length); check the script")  # fmt: skip
    unheard = _outside(samples, result.words, offset)
    if unheard > 0.5:
        return _failed(warnings, f"{unheard:.0%} of the sound lies outside the script's words")
    if unheard > 0.1:
        warnings.append(f"{unheard:.0%} of the sound lies outside the script's words (missing?)")
    return result


def forced(phonemes: list[Phoneme], fit: float) -> bool:
    """Whether the alignment forced words onto sounds that are not them: pocketsphinx then
    gives many phones its shortest length, 30 ms (29% of them for a wrong script, 6-12% for
    the right one on TTS and LibriVox speech), and the sounds fit them badly. Fast speech also
    has many short phones (up to 57% in eSpeak's lines), so the fit decides too: per frame, a
    right script scores -12 to -36 on real and neural-TTS speech (-72 at worst in eSpeak's
    accented voices), a wrong one -53 to -58 on the LibriVox reading. Of 310 lines (eSpeak's
    held-out voices, Piper, GRID s1; searched unpruned), short phones alone failed 42 right
    lines and let 140 wrong scripts through, with the fit 29 and 149 (147 of them GRID lines:
    real speech fits any GRID line well, and nothing here tells them apart)."""
    short = sum(p.end - p.start < 0.035 for p in phonemes)
    return len(phonemes) >= 20 and short > 0.2 * len(phonemes) and fit < FIT_MIN


def _passes(decoder, spoken, loose, pcm: bytes, cmn: str, progress: Progress):
    """pocketsphinx's two passes: the words, then the phones within them; (words, fit)."""
    _search(decoder, spoken, loose)
    _decode(decoder, pcm, cmn, progress, 0.0, 0.5)
    if decoder.hyp() is None:
        raise RuntimeError("no path through the words fits the audio")
    decoder.set_alignment()  # second pass: phones within the words found above
    _decode(decoder, pcm, cmn, progress, 0.5, 1.0)
    alignment = decoder.get_alignment()
    return _words(alignment), _fit(alignment)


class PhoneLoop:
    """pocketsphinx's phone loop as a PhoneRecognizer (the `phoneloop` engine)."""

    engine = "phoneloop"

    def recognize(
        self, samples: np.ndarray, *, offset: float = 0.0, progress: Progress = no_progress
    ) -> list[Phoneme]:
        return recognize_phones(samples, offset=offset, progress=progress)


def create_phoneloop(**_) -> PhoneLoop:
    check_pocketsphinx()
    return PhoneLoop()


def recognize_phones(
    samples: np.ndarray, *, offset: float = 0.0, progress: Progress = no_progress
) -> list[Phoneme]:
    """IPA phonemes heard in `samples` (float32 mono 16 kHz), no transcript; pauses left out."""
    pcm = _pcm(samples)
    with _lock:
        decoder = _phone_loop()
        _decode(decoder, pcm, _cepstral_mean(pcm), progress, 0, 1, "recognizing phones")
        segments = [(s.word, s.start_frame, s.end_frame + 1) for s in decoder.seg()]
    end = offset + len(samples) / RATE
    return [
        Phoneme(ipa, *_seconds(first, last - first, offset, end))
        for name, first, last in segments
        if (ipa := normalize(name, "arpabet")[0]) != "_"  # SIL and the noise fillers
    ]


# --- decoding --------------------------------------------------------------------------


def _ps():
    return require("pocketsphinx", INSTALL)


@functools.cache
def _aligner(unpruned: bool = False):
    return _ps().Decoder(**_QUIET, **(_UNPRUNED if unpruned else _ALIGN))


@functools.cache
def _phone_loop():
    ps = _ps()
    # lw 1 instead of 6.5: the phone LM otherwise swallows phones into SIL (bilabials found
    # within 50 ms on LibriVox speech: 56% -> 84%).
    model = ps.get_model_path("en-us/en-us-phone.lm.bin")
    return ps.Decoder(**_QUIET, allphone=model, lw=1.0)


def _pcm(samples: np.ndarray) -> bytes:
    """16-bit PCM with one bit of fixed-seed dither, as TTS audio holds exact digital zeros."""
    x = np.clip(np.asarray(samples, dtype=np.float32), -1, 1) * 32767
    x += np.random.default_rng(0).uniform(-1, 1, len(x))
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


@functools.cache
def _features():
    """A decoder that only measures the cepstral mean (its search, one silence, costs nothing;
    the others would search the features at end_utt), and the model's initial mean."""
    decoder = _ps().Decoder(**_QUIET, lm=None)
    decoder.set_align_text("<sil>")
    return decoder, decoder.get_cmn()


def _cepstral_mean(pcm: bytes) -> str:
    """The audio's own cepstral mean, from a features-only pass (about 300x realtime)."""
    decoder, initial = _features()
    decoder.reinit_feat()
    decoder.set_cmn(initial)  # the estimate blends in the mean it starts from
    decoder.start_utt()
    decoder.process_raw(pcm, no_search=True)
    mean = decoder.get_cmn(True)
    decoder.end_utt()
    return mean


def _decode(decoder, pcm: bytes, cmn: str, progress: Progress, lo, hi, stage="aligning") -> None:
    """One pass over the audio in blocks, reporting progress from lo to hi.

    pocketsphinx carries state from one utterance to the next (the running cepstral mean, the
    noise estimate of its noise removal). Resetting the front end and starting from this audio's
    own mean makes results independent of earlier calls, and gives the second pass the same
    features as the first.
    """
    decoder.reinit_feat()
    decoder.set_cmn(cmn)
    decoder.start_utt()
    try:
        for i in range(0, len(pcm), 2 * BLOCK):
            check_cancel(progress, lo + (hi - lo) * i / len(pcm), stage)
            decoder.process_raw(pcm[i : i + 2 * BLOCK])
    finally:
        decoder.end_utt()  # also when cancelled, so the kept decoder can start again
    check_cancel(progress, hi, stage)


def _search(decoder, spoken: list[str], loose: tuple[int, int]) -> None:
    """Set up the first pass: the words in order, with loose ends as a grammar whose first and
    last words may lie up to loose[i] either way, the nearer the likelier."""
    if loose == (0, 0):
        decoder.set_align_text(" ".join(spoken))
        return
    n, (a, b) = len(spoken), loose
    begin, end = n + 1, n + 2  # states 0..n lie between the words
    arcs = [(i, i + 1, 1.0, w) for i, w in enumerate(spoken)]
    arcs += [(begin, i + 1, 0.5 ** abs(i - a), spoken[i]) for i in range(min(n, 2 * a + 1))]
    last = n - 1 - b
    arcs += [(i, end, 0.5 ** abs(i - last), spoken[i]) for i in range(max(0, last - b), n)]
    grammar = decoder.create_fsg("stretch", begin, end, arcs)
    grammar.add_silence("<sil>", -1, 0.1)  # a pause may follow any word
    # A fresh name: replacing the active search (left active by a failed or cancelled pass)
    # would decode with the grammar of the stretch before.
    name = f"stretch{next(_grammars)}"
    decoder.add_fsg(name, grammar)
    decoder.activate_search(name)
    with contextlib.suppress(KeyError):  # none before in a new decoder (a worker's)
        decoder.remove_search(f"stretch{int(name[7:]) - 1}")


def _found(spoken: list[str], aligned, loose: tuple[int, int]) -> tuple[int, int] | None:
    """Which of the spoken words the alignment holds, as (first, end); None if not in order."""
    names = [re.sub(r"\(\d+\)$", "", w[3]) for w in aligned]  # "the(2)": a variant of "the"
    for first in range(min(len(spoken), 2 * loose[0] + 1)):
        end = first + len(names)
        if spoken[first:end] == names and (loose[1] or end == len(spoken)):
            return first, end
    return None


def _keep(words, keys, found: tuple[int, int]):
    """The caller's words (and keys) from the first to the last found; unpronounceable words
    (no key) in between stay, those outside go."""
    keyed = [i for i, k in enumerate(keys) if k]
    lo, hi = keyed[found[0]], keyed[found[1] - 1] + 1
    return words[lo:hi], keys[lo:hi], (lo, hi)


def _words(alignment) -> list[tuple[int, int, list[tuple[str, int, int]], str]]:
    """(start, frames, [(phone, start, frames)], name) of each word; silences and fillers dropped.

    Copied out at once: an entry used after its alignment is freed crashes the process.
    """
    return [
        (w.start, w.duration, [(p.name, p.start, p.duration) for p in w], w.name)
        for w in alignment
        if not w.name.startswith(("<", "[", "+"))  # <sil>, <s>, [NOISE], +SPN+
    ]


def _fit(alignment) -> float:
    """Mean acoustic score per frame of the whole alignment, pauses included. pocketsphinx
    scores each frame against its best-scoring senone, so this compares the script's sounds with
    the best the model hears there, whatever the recording's level or noise."""
    entries = [(w.score, w.duration) for w in alignment]
    return sum(s for s, _ in entries) / max(1, sum(d for _, d in entries))


def _failed(warnings: list[str], why: str) -> Alignment:
    return Alignment([], [], [*warnings, why], failed=True)


# --- words and phones ------------------------------------------------------------------


def _entry(decoder, word: str, warnings: list[str]) -> str | None:
    """The dictionary entry to align `word` with, added from the G2P when the dictionary has
    none (kept for later scripts); None when the word has no pronunciation at all."""
    key = word.lower().strip()
    if _PLAIN.fullmatch(key) and decoder.lookup_word(key):
        return key
    ipa = _g2p(word)
    phones = [a for p in ipa for a in ipa_arpabet().get(p, "").split()]
    if lost := [p for p in ipa if p not in ipa_arpabet()]:
        warnings.append(f"{word!r}: phonemes {' '.join(lost)} have no pocketsphinx phone")
    if not phones:
        warnings.append(f"no pronunciation for {word!r}; it is left untimed")
        return None
    # The G2P's spelling of "42" or "Dr." must not clash with a dictionary entry: key by sound.
    key = key if _PLAIN.fullmatch(key) else "_" + "".join(phones).lower()
    if decoder.lookup_word(key) != " ".join(phones):
        decoder.add_word(key, " ".join(phones), True)
    return key


@functools.cache
def _g2p(word: str) -> tuple[str, ...]:
    """IPA of a word from the project's G2P (CMUdict, then gruut); numbers come out spoken."""
    return tuple(p for pron in pronounce(word) for p in pron.phonemes)


def _phone_ipa(word: str, key: str, names: list[str]) -> list[str]:
    """IPA of a word's aligned phones: the CMUdict or G2P pronunciation they spell, which keeps
    stress-dependent vowels (pocketsphinx's AH is ʌ or ə), else phone by phone."""
    wanted = [n.upper() for n in names]
    stressed = [[normalize(p, "arpabet")[0] for p in e] for e in cmudict_entries().get(key, [])]
    for ref in stressed or [list(_g2p(word))]:
        if [ipa_arpabet().get(p) for p in ref] == wanted:
            return ref
    return [normalize(n, "arpabet")[0] for n in names]


def _seconds(first: int, frames: int, offset: float, end: float) -> tuple[float, float]:
    """A span of frames as (start, end) seconds after `offset`, kept within the audio; rounded
    to the microsecond, so one phone's end is exactly the next one's start."""
    start = min(round(offset + first * FRAME_S + EDGE_S, 6), end)
    return start, min(round(offset + (first + frames) * FRAME_S + EDGE_S, 6), end)


def _timed(words, keys, aligned, offset: float, duration: float, warnings) -> Alignment:
    """The caller's words and their phonemes, timed; an unpronounceable word gets no time."""
    out_words: list[Word] = []
    phonemes: list[Phoneme] = []
    found = iter(aligned)
    end, last = offset, offset + duration
    for i, (word, key) in enumerate(zip(words, keys)):
        if not key:
            out_words.append(Word(word, end, end))
            continue
        first, frames, phones, _ = next(found)
        ipa = _phone_ipa(word, key, [name for name, _, _ in phones])
        for sym, (_, p_first, p_frames) in zip(ipa, phones):
            phonemes.append(Phoneme(sym, *_seconds(p_first, p_frames, offset, last), word=i))
        start, end = _seconds(first, frames, offset, last)
        out_words.append(Word(word, start, end))
    return Alignment(out_words, phonemes, warnings)


def _outside(samples: np.ndarray, words: list[Word], offset: float) -> float:
    """Share of the loud 10 ms frames (within 20 dB of the loud level) outside every word:
    a script that misses what is said leaves it to pocketsphinx's optional silences."""
    _, loud = loudness(samples)
    inside = np.zeros(len(loud), dtype=bool)
    for w in words:
        inside[max(0, int((w.start - offset) * 100)) : int(np.ceil((w.end - offset) * 100))] = True
    return float(np.sum(loud & ~inside) / max(1, np.sum(loud)))
