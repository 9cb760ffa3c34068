"""Audio in (any file FFmpeg reads, via PyAV, as mono float32) and out (16-bit PCM WAV)."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import InputError, require
from .open import open_media

INSTALL = "pip install av  (or ./setup.sh)"
MIN_PARTIAL_S = 0.5  # a damaged file is still used if at least this much of it decodes
FIX_DAMAGED = "fix: re-export or re-download the file"
FIX_FORMAT = "fix: give a WAV, FLAC, MP3, OGG, M4A or a video with sound"

Source = str | Path | bytes  # a path, or the bytes of an upload


@dataclass
class Audio:
    """Decoded audio: mono float32 in -1..1 at one sample rate."""

    samples: np.ndarray
    sample_rate: int
    source: str  # file name, for messages and the timeline's source
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def shifted(audio: Audio, seconds: float) -> Audio:
    """The same sound started `seconds` later (silence first), or earlier (its start cut)."""
    n = int(round(abs(seconds) * audio.sample_rate))
    if seconds >= 0:
        samples = np.concatenate([np.zeros(n, np.float32), audio.samples])
    else:
        samples = audio.samples[n:]
    return Audio(samples, audio.sample_rate, audio.source, audio.warnings)


def load_audio(source: Source, *, sample_rate: int = 16000, name: str = "") -> Audio:
    """Decode a whole audio or video file (path or bytes) to mono float32 at sample_rate."""
    label = _label(source, name)
    warnings: list[str] = []
    parts = list(_decode(source, label, sample_rate, warnings))
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return Audio(samples, sample_rate, label, warnings)


def iter_audio(
    source: Source,
    *,
    sample_rate: int = 16000,
    chunk_seconds: float = 30.0,
    name: str = "",
    warnings: list[str] | None = None,
) -> Iterator[np.ndarray]:
    """Consecutive mono float32 chunks of chunk_seconds (the last one shorter), decoded lazily.

    Concatenated they equal load_audio(...).samples; only one chunk (plus one decoded frame)
    is held at a time. Warnings (a truncated file) are appended to `warnings` when given.
    """
    size = max(1, round(chunk_seconds * sample_rate))
    pending: list[np.ndarray] = []
    count = 0
    sink = [] if warnings is None else warnings
    for part in _decode(source, _label(source, name), sample_rate, sink):
        pending.append(part)
        count += len(part)
        while count >= size:
            block = np.concatenate(pending)
            yield block[:size]
            pending, count = [block[size:]], count - size
    if count:
        yield np.concatenate(pending)


def _label(source: Source, name: str) -> str:
    if name:
        return name
    return "uploaded audio" if isinstance(source, bytes) else Path(source).name


def _decode(
    source: Source, label: str, sample_rate: int, warnings: list[str]
) -> Iterator[np.ndarray]:
    """Yield the first audio track as mono float32 pieces, one per decoded frame.

    Stops at the first damaged packet: the audio before it keeps its exact timing, which
    matters more for lip sync than the audio after it.
    """
    av = require("av", INSTALL)
    data = source if isinstance(source, bytes) else Path(source)
    with open_media(av, data, label, "audio", FIX_FORMAT) as container:
        stream = _audio_track(container, label)
        decoded = 0
        try:
            for piece in _resampled(av, container.decode(stream), sample_rate):
                decoded += len(piece)
                yield piece
            short = _cut_short(data, container, stream, decoded / sample_rate)
        except av.FFmpegError as e:
            short = f"cannot be decoded past that point ({e.strerror})"
        if short is None and decoded == 0:
            raise InputError(f"{label} holds no audio samples; fix: give a file with sound")
        if short is None:
            return
        end = decoded / sample_rate
        if end < MIN_PARTIAL_S:
            raise InputError(
                f"{label} is damaged: {short}, and under {MIN_PARTIAL_S} s of it decodes; "
                + FIX_DAMAGED
            )
        warnings.append(
            f"{label} is truncated at {end:.1f} s: {short}; only that part is used; {FIX_DAMAGED}"
        )


def _audio_track(container, label: str):
    """The first audio stream; a clear error for silent videos and for images or text."""
    if container.streams.audio:
        return container.streams.audio[0]
    # Videos have a duration; images and text that FFmpeg also opens (PNG, ANSI art) do not.
    if container.streams.video and container.duration:
        raise InputError(f"{label} has no audio track; fix: give a file with sound")
    raise InputError(
        f"{label} is not an audio file (FFmpeg reads it as {container.format.long_name}); "
        "fix: give a WAV, FLAC, MP3, OGG, M4A or a video with sound"
    )


def _resampled(av, frames, sample_rate: int) -> Iterator[np.ndarray]:
    """Convert the frames to mono float32 at sample_rate, about a second at a time: a decoded
    frame holds ~20 ms, and converting each on its own took 4x longer than decoding."""
    fifo, resampler, setup = av.AudioFifo(), None, None
    for frame in frames:
        # A chained Ogg or an odd MP3 can change rate or layout midway: start a new resampler.
        if (frame.format.name, frame.layout.name, frame.sample_rate) != setup:
            yield from _drain(fifo, resampler, flush=True)
            fifo = av.AudioFifo()
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            setup = (frame.format.name, frame.layout.name, frame.sample_rate)
        frame.pts = None  # the FIFO refuses timestamps with gaps; the samples are what count
        fifo.write(frame)
        if fifo.samples >= frame.sample_rate:
            yield from _drain(fifo, resampler)
    yield from _drain(fifo, resampler, flush=True)


def _drain(fifo, resampler, flush: bool = False) -> Iterator[np.ndarray]:
    if resampler is None:
        return
    for out in resampler.resample(fifo.read()) if fifo.samples else []:
        yield _samples(out)
    for out in resampler.resample(None) if flush else []:
        yield _samples(out)


def _samples(frame) -> np.ndarray:
    # Float sources (and lossy decoders) can overshoot full scale; callers rely on -1..1.
    return np.clip(frame.to_ndarray()[0], -1.0, 1.0)


def _cut_short(data: Path | bytes, container, stream, decoded_s: float) -> str | None:
    """Why the file ended early although FFmpeg raised nothing, or None if it looks whole."""
    if stream.duration is not None:  # headers that count samples: MP3 (LAME), FLAC, MP4
        declared = float(stream.duration * stream.time_base)
        if declared - decoded_s > max(0.5, 0.05 * declared):
            return f"its header says {declared:.1f} s"
    if container.format.name == "ogg" and not _ogg_ends_whole(_tail(data, 1 << 17)):
        return "its last Ogg page is incomplete"
    return None


def _tail(data: Path | bytes, n: int) -> bytes:
    if isinstance(data, bytes):
        return data[-n:]
    with data.open("rb") as f:
        f.seek(max(0, data.stat().st_size - n))
        return f.read()


def _ogg_ends_whole(tail: bytes) -> bool:
    """True if the bytes end with a complete Ogg page flagged end-of-stream.

    FFmpeg's Ogg demuxer drops a cut-off last page silently and sizes the stream from the
    last whole page, so only the page framing shows a truncated download.
    """
    at = tail.rfind(b"OggS")
    while at >= 0:  # "OggS" may also occur inside a page's data: try every candidate
        nseg = tail[at + 26] if at + 27 <= len(tail) else 0
        body = at + 27 + nseg
        ends_here = body <= len(tail) and body + sum(tail[at + 27 : body]) == len(tail)
        if ends_here and tail[at + 5] & 0x04:
            return True
        at = tail.rfind(b"OggS", 0, at)
    return False


def hop_rms(samples: np.ndarray, hop: int) -> np.ndarray:
    """RMS of each whole run of `hop` samples (a trailing part hop is left out)."""
    n = len(samples) // hop
    frames = np.asarray(samples[: n * hop], np.float64).reshape(n, hop)
    return np.sqrt(np.mean(np.square(frames), 1))


def loudness(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RMS of each 10 ms of 16 kHz samples, and which of them are loud: within 20 dB of the
    loud level (the 95th percentile), so the test adapts to the recording's own gain."""
    rms = hop_rms(samples, 160)
    if not len(rms):
        return rms, np.zeros(0, bool)
    return rms, rms > 0.1 * np.percentile(rms, 95)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Mono float samples in -1..1 as a 16-bit PCM WAV file."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()
