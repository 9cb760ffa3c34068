"""Live lip sync: sound in as it comes (a microphone, or a file played as a stream), curves
out over OSC. Two ways to hear the mouth, fed 20 ms of sound at a time:

- learned (the default): the live motion model (mouth.listen) turns the sound's log-mel bands
  into the mouth controls of the moment 20 ms before the newest sound, for any language;
- rules: pocketsphinx's phone loop, whose partial hypothesis ends a few frames behind the
  sound; the mouth shows the viseme of the newest phone heard, eased in over EASE_S so
  single-frame changes do not flicker. The utterance restarts every RESTART_S at a quiet
  moment: reading a partial hypothesis costs time in proportion to the utterance's length.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.curves import MOTIONS, to_channels
from ..core.errors import EngineUnavailable, InputError
from ..core.phonemes import normalize
from ..core.progress import Progress, check_cancel, no_progress
from ..core.visemes import load_set
from ..engines import pocketsphinx
from ..media.audio import iter_audio
from ..mouth.controls import viseme_weights_from_controls, visemes_from_controls
from ..mouth.listen import Listener, controls_dict
from . import stream as osc

RATE = 16000
CHUNK_S = 0.02
EASE_S = 0.04
RESTART_S = 8.0


@dataclass
class LiveStats:
    frames_sent: int = 0
    seconds: float = 0.0  # of sound streamed
    overflows: int = 0  # microphone blocks lost because we fell behind
    latencies_ms: list[float] = field(default_factory=list)  # sound of a phone -> its packet

    def latency(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else 0.0

    def summary(self) -> dict:
        return {
            "frames_sent": self.frames_sent,
            "seconds": round(self.seconds, 3),
            "overflows": self.overflows,
            "phones": len(self.latencies_ms),
            "latency_ms": {"p50": self.latency(50), "p95": self.latency(95)},
        }


SHAPES = load_set("oculus15")  # the shapes whose changes an ARKit stream's statistics time


class LiveVoice:
    """The mouth the live motion model hears, as the set's channel weights (mouth.listen)."""

    def __init__(self, vset, channels: list[str]):
        self.listener = Listener()
        self.vset, self.channels = vset, channels
        self.weights, self.shown, self.shares = np.zeros(len(channels)), "", None
        self.contacts = [  # the set's closed and teeth shapes as channel weights
            np.array([vset.visemes[v].channels.get(c, 0.0) for c in channels])
            for v in (vset.closed, vset.teeth)
        ]

    def feed(self, samples: np.ndarray) -> tuple[np.ndarray, float | None]:
        """(the channel weights now; the moment of sound a new shape shows, or None). Where
        the model hears the lips close or touch the teeth (k), that shape is put on top:
        (1 - k) x the controls' mix + k x the set's closed or teeth shape."""
        heard = self.listener.feed(samples)
        if not len(heard.times):
            return self.weights, None
        now = controls_dict(heard.controls[-1:])
        shapes = SHAPES if self.vset.name == "arkit" else self.vset  # whose changes are timed
        shares = self.shares = viseme_weights_from_controls(now, shapes, start=self.shares)
        if shapes is self.vset:
            mix = to_channels(shares, self.vset)
        else:  # ARKit: the table's channels, and those the model learned in their place
            mix = visemes_from_controls(now, self.vset)
            mix |= dict(zip(self.listener.model.arkit, heard.arkit[-1:].T))
        weights = np.array([float(mix[c][0]) for c in self.channels])
        k = np.clip(heard.contacts[-1], 0.0, 1.0)
        contact = int(np.argmax(k))
        self.weights = (1 - k[contact]) * weights + k[contact] * self.contacts[contact]
        name = (
            (shapes.closed, shapes.teeth)[contact]
            if k[contact] > 0.5
            else max(shares, key=lambda v: shares[v][0])
        )
        changed, self.shown = name != self.shown, name
        return self.weights, float(heard.times[-1]) if changed and name != shapes.rest else None

    def close(self) -> None:
        pass


class LivePhones:
    """The phone being said now, from sound fed 20 ms at a time."""

    def __init__(self):
        self._decoder = pocketsphinx._phone_loop()
        self._pcm = pocketsphinx._pcm
        self._start = 0.0  # seconds of sound before this utterance
        self._fed = 0.0
        self._decoder.start_utt()

    def feed(self, samples: np.ndarray) -> tuple[str, float]:
        """(IPA of the newest phone heard, "_" in pauses; when it started, in seconds)."""
        quiet = float(np.sqrt(np.mean(np.square(samples)))) < 0.01 if len(samples) else True
        if quiet and self._fed - self._start > RESTART_S:
            self._decoder.end_utt()
            self._decoder.start_utt()
            self._start = self._fed
        self._decoder.process_raw(self._pcm(samples))
        self._fed += len(samples) / RATE
        last = None
        for last in self._decoder.seg() or []:  # noqa: B007 - an iterator: the last one is wanted
            pass
        if last is None:
            return "_", self._fed
        return normalize(last.word, "arpabet")[0], self._start + last.start_frame / 100

    def close(self) -> None:
        self._decoder.end_utt()


class PhoneMouth:
    """The newest phone's viseme as the set's channel weights (the phone loop, rules)."""

    def __init__(self, vset, channels: list[str]):
        self.phones, self.vset, self.channels, self.shown = LivePhones(), vset, channels, None

    def feed(self, samples: np.ndarray) -> tuple[np.ndarray, float | None]:
        """(the channel weights now; the moment of sound a new shape shows, or None)."""
        ipa, started = self.phones.feed(samples)
        new = (ipa, started) != self.shown and ipa != "_"
        self.shown = (ipa, started) if new else self.shown
        return _weights(self.vset, self.channels, ipa), started if new else None

    def close(self) -> None:
        self.phones.close()


def _hearing(motion: str, vset, channels: list[str]):
    """How the stream hears the mouth: the live motion model (learned) or the phone loop."""
    if motion not in MOTIONS:
        raise InputError(f"motion must be one of {', '.join(MOTIONS)}; got {motion!r}.")
    return LiveVoice(vset, channels) if motion == "learned" else PhoneMouth(vset, channels)


def stream(
    source,
    host: str,
    port: int,
    *,
    preset: str = "generic",
    fps: float = 60.0,
    realtime: bool = True,
    motion: str = "learned",
    progress: Progress = no_progress,
    stats: LiveStats | None = None,
) -> LiveStats:
    """Send the mouth over OSC as `source` is heard: an audio file (or its bytes) played as if
    live, or chunks of 16 kHz samples as they come (`microphone()`). `motion`: learned (the
    live motion model) or rules (the phone loop's visemes)."""
    chosen = osc.load_preset(preset)
    vset = load_set(chosen.viseme_set or "oculus15")
    channels = list(vset.channels)
    build = osc.message_builder(chosen, channels, None)
    hearing = _hearing(motion, vset, channels)  # a missing model fails before any packet
    client = osc.open_client(host, port)
    stats = stats or LiveStats()
    chunks = iter(played(source, realtime) if isinstance(source, (str, Path, bytes)) else source)
    weights, step = np.zeros(len(channels)), 1.0 / osc.check_fps(fps)
    next_frame, heard = 0.0, Arrivals()
    ease = min(1.0, CHUNK_S / EASE_S) if motion == "rules" else 1.0  # the model is smooth
    try:
        for chunk in chunks:
            stats.seconds += len(chunk) / RATE
            heard.add(stats.seconds)
            target, moment = hearing.feed(chunk)
            weights += (target - weights) * ease
            while next_frame <= stats.seconds:
                client.send(osc.make_bundle(0, build(np.clip(weights, 0, 1))))  # 0 = at once
                stats.frames_sent += 1
                next_frame += step
            if moment is not None:  # a new shape: how long since its sound was heard
                stats.latencies_ms.append(heard.since(moment) * 1000)
            check_cancel(progress, 0.0, "streaming live")
    except KeyboardInterrupt:  # Ctrl-C ends a live stream as the end of the sound would
        pass
    finally:
        getattr(chunks, "close", lambda: None)()  # a microphone closes its device now
        hearing.close()
        client.send(osc.make_bundle(0, build([0.0] * len(channels))))  # the mouth at rest
        stats.overflows = getattr(source, "overflows", 0)
    return stats


class Arrivals:
    """When each chunk of sound arrived, to tell how long ago a moment of the sound was heard:
    the clock alone would be wrong for a source faster than real time."""

    def __init__(self, keep: int = 1500):  # 30 s of chunks; an utterance restarts within 8 s
        self.ends: deque[float] = deque(maxlen=keep)
        self.times: deque[float] = deque(maxlen=keep)

    def add(self, sound_end: float) -> None:
        self.ends.append(sound_end)
        self.times.append(time.monotonic())

    def since(self, moment: float) -> float:
        """Seconds since the sound at `moment` (seconds into the stream) was heard."""
        i = min(bisect.bisect_left(self.ends, moment), len(self.ends) - 1)
        return time.monotonic() - self.times[i] + max(0.0, self.ends[i] - moment)


def played(source, realtime: bool = True) -> Iterator[np.ndarray]:
    """An audio file's samples, CHUNK_S at a time, at the pace of playback when `realtime`."""
    begin, seconds = time.monotonic(), 0.0
    for chunk in iter_audio(source, chunk_seconds=CHUNK_S):
        if realtime:  # the sound "arrives" at its own pace
            time.sleep(max(0.0, begin + seconds + CHUNK_S - time.monotonic()))
        seconds += len(chunk) / RATE
        yield chunk


class Microphone:
    """16 kHz float samples from an input device, CHUNK_S at a time, for `seconds` (or until
    the consumer stops). Blocking reads: when we fall behind, PortAudio drops sound and
    `overflows` counts it."""

    def __init__(self, device: str | int | None = None, seconds: float | None = None):
        self.sd = _sounddevice()
        self.device = _input_device(self.sd, device)
        self.name = self.sd.query_devices(self.device)["name"]
        self.seconds, self.overflows = seconds, 0

    def __iter__(self) -> Iterator[np.ndarray]:
        sd, rate = self.sd, self._rate()
        block, total = round(rate * CHUNK_S), None if self.seconds is None else self.seconds * rate
        convert = _converter(rate)
        read = 0
        try:
            with sd.InputStream(
                device=self.device, samplerate=rate, channels=1, dtype="int16", blocksize=block
            ) as s:
                while total is None or read < total:
                    data, overflowed = s.read(block)
                    self.overflows += bool(overflowed)
                    read += len(data)
                    yield from convert(data[:, 0].astype(np.float32) / 32768)
        except sd.PortAudioError as e:
            raise InputError(
                f"the microphone {self.device!r} stopped: {e}; check that it is connected and "
                "not used by another program, or choose another with --device."
            ) from None

    def _rate(self) -> int:
        """16 kHz where the device offers it (through PulseAudio/PipeWire it does); otherwise
        its own rate, resampled as it comes."""
        try:
            self.sd.check_input_settings(self.device, samplerate=RATE, channels=1, dtype="int16")
            return RATE
        except Exception:
            return int(self.sd.query_devices(self.device)["default_samplerate"])


def input_devices() -> list[dict]:
    """The input devices PortAudio sees: name, index, channels, default rate."""
    sd = _sounddevice()
    return [
        {
            "index": d["index"],
            "name": d["name"],
            "channels": d["max_input_channels"],
            "rate": d["default_samplerate"],
        }
        for d in sd.query_devices()
        if d["max_input_channels"] > 0
    ]


def _sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise EngineUnavailable(
            "live input from a microphone needs sounddevice: pip install 'lipsync-bridge[live]'."
        ) from None
    except OSError:  # the Python package is there, the PortAudio library is not
        raise EngineUnavailable(
            "live input from a microphone needs the PortAudio library: apt-get install "
            "libportaudio2 (macOS: brew install portaudio), then run this again."
        ) from None
    return sounddevice


def _input_device(sd, device: str | int | None) -> int:
    names = ", ".join(f"{d['index']}: {d['name']}" for d in input_devices()) or "none"
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    try:
        return sd.query_devices(device, kind="input")["index"]
    except (ValueError, sd.PortAudioError):
        wanted = f"no input device matches {device!r}" if device is not None else "no microphone"
        raise InputError(
            f"{wanted}; input devices here: {names}. Connect a microphone, or pass --device "
            "with a name or number from that list."
        ) from None


def _converter(rate: int):
    """Samples at `rate` -> chunks at 16 kHz (the same chunks when `rate` is 16 kHz)."""
    if rate == RATE:
        return lambda x: [x]
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)

    def convert(x: np.ndarray) -> list[np.ndarray]:
        frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        return [out.to_ndarray()[0] for out in resampler.resample(frame)]

    return convert


def _weights(vset, channels: list[str], ipa: str) -> np.ndarray:
    viseme = vset.viseme_for(ipa)
    mix = vset.visemes[viseme].channels if viseme in vset.visemes else {}
    return np.array([mix.get(c, 0.0) for c in channels])
