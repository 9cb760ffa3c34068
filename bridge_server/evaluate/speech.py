"""How good the synthesised speech is: intelligibility and a naturalness proxy.

Intelligibility is the word error rate of Whisper transcribing each sentence a voice speaks:
what a listener who knows the language but not the text would get wrong.

Naturalness has no cheap ground truth (that is what listening tests are for: `lipsync
review`). Two measurable proxies, reported side by side and never folded into one number:
- pitch movement: the spread of the voice's F0 in semitones over voiced frames. Flat,
  robotic voices (formant synthesis) move little; natural read speech moves 2-4 semitones.
  Limits: a voice can move its pitch and still sound unnatural; the tracker (autocorrelation)
  misses creaky and breathy voice.
- recogniser familiarity: Whisper's mean token log-probability. Whisper learned from 680,000
  hours of human speech, so speech it finds likely sounds human to it. Limits: it also rewards
  clear articulation and penalises rare words, so it mixes intelligibility into naturalness.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import engines
from ..core.errors import InputError
from ..core.progress import Progress, check_cancel, no_progress
from ..media.audio import load_audio, wav_bytes

NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve".split()
F0_MIN_HZ, F0_MAX_HZ = 60.0, 400.0
FRAME_S, HOP_S = 0.04, 0.01
VOICED = 0.5  # normalised autocorrelation peak above which a frame is voiced


@dataclass
class Sentence:
    text: str
    heard: str
    errors: int  # word edits from the text to what Whisper heard
    words: int
    f0_spread_st: float  # semitones (standard deviation of log F0)
    logprob: float


@dataclass
class SpeechReport:
    voice: str
    sentences: list[Sentence] = field(default_factory=list)

    @property
    def wer(self) -> float:
        return sum(s.errors for s in self.sentences) / max(1, sum(s.words for s in self.sentences))

    @property
    def f0_spread_st(self) -> float:
        return float(np.nanmean([s.f0_spread_st for s in self.sentences]))

    @property
    def logprob(self) -> float:
        return float(np.mean([s.logprob for s in self.sentences]))

    def to_dict(self) -> dict:
        summary = {"wer": self.wer, "f0_spread_st": self.f0_spread_st, "logprob": self.logprob}
        return {"voice": self.voice, **summary, "sentences": [asdict(s) for s in self.sentences]}


def evaluate_tts(
    sentences: list[str],
    voice: str = "espeak",
    *,
    asr_model: str = "base",
    progress: Progress = no_progress,
) -> SpeechReport:
    """Speak each sentence with `voice` ("espeak", "piper" or "engine:voice") and score it.
    The listener is Whisper `base` (packaged, multilingual; `tiny.en` hears worse)."""
    sentences = [s.strip() for s in sentences if s.strip()]
    if not sentences:
        raise InputError("no sentences to speak; give a text file with one sentence per line.")
    name, _, voice_name = voice.partition(":")
    tts = engines.create(name, engines.SPEECH, voice=voice_name)
    asr = engines.create("whisper", engines.TRANSCRIPT, model=asr_model)
    report = SpeechReport(voice)
    for k, text in enumerate(sentences):
        check_cancel(progress, k / len(sentences), f"sentence {k + 1} of {len(sentences)}")
        speech = tts.synthesize(text)
        sound = load_audio(wav_bytes(speech.audio, speech.sample_rate))  # 16 kHz for Whisper
        heard = asr.transcribe(sound.samples, language="en")
        ref, hyp = normalise(text), normalise(heard.text)
        report.sentences.append(
            Sentence(text, heard.text, edits(ref, hyp), len(ref),
                     f0_spread(sound.samples, sound.sample_rate),
                     float(np.mean([s.avg_logprob for s in heard.segments] or [0.0])))
        )  # fmt: skip
    check_cancel(progress, 1.0, "done")
    return report


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation; digits up to 12 as words (Whisper writes "5")."""
    words = re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))
    return [NUMBERS[int(w)] if w.isdigit() and int(w) < len(NUMBERS) else w for w in words]


def edits(ref: list[str], hyp: list[str]) -> int:
    """Word-level edit distance (substitutions, insertions, deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def pitch(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """F0 in Hz per 10 ms (NaN where unvoiced), by normalised autocorrelation."""
    size, hop = int(FRAME_S * sample_rate), int(HOP_S * sample_rate)
    lo, hi = int(sample_rate / F0_MAX_HZ), int(sample_rate / F0_MIN_HZ)
    if len(samples) < size:
        return np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(samples, size)[::hop].astype(float)
    frames = frames - frames.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(frames, 2 * size)
    corr = np.fft.irfft(spectrum * np.conj(spectrum))[:, : hi + 1]
    energy = corr[:, :1]
    norm = corr[:, lo:] / np.maximum(energy, 1e-12)
    lag = lo + np.argmax(norm, axis=1)
    peak = norm.max(axis=1)
    loud = energy[:, 0] > 1e-3 * np.percentile(energy[:, 0], 95)
    return np.where((peak > VOICED) & loud, sample_rate / lag, np.nan)


def f0_spread(samples: np.ndarray, sample_rate: int) -> float:
    """Standard deviation of F0 in semitones over voiced frames (NaN with too few)."""
    f0 = pitch(samples, sample_rate)
    voiced = f0[~np.isnan(f0)]
    return float(np.std(12 * np.log2(voiced))) if len(voiced) >= 10 else float("nan")
