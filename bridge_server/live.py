"""Live lip sync: sound in as it comes (a file played as a stream), curves out over OSC.

The incremental engine is pocketsphinx's phone loop: each 20 ms of sound goes in as it
arrives, and its partial hypothesis ends a few frames behind the sound. The mouth shows the
viseme of the newest phone heard, eased in over EASE_S so single-frame changes do not flicker.
The utterance restarts every RESTART_S at a quiet moment: reading a partial hypothesis costs
time in proportion to the utterance's length.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .engines.base import Progress, check_cancel, no_progress
from .phonemes import normalize
from .visemes import load_set

RATE = 16000
CHUNK_S = 0.02
EASE_S = 0.04
RESTART_S = 8.0


@dataclass
class LiveStats:
    frames_sent: int = 0
    seconds: float = 0.0  # of sound streamed
    latencies_ms: list[float] = field(default_factory=list)  # sound of a phone -> its packet

    def latency(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else 0.0


class LivePhones:
    """The phone being said now, from sound fed 20 ms at a time."""

    def __init__(self):
        from .engines import pocketsphinx

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


def stream(
    source,
    host: str,
    port: int,
    *,
    preset: str = "generic",
    fps: float = 60.0,
    realtime: bool = True,
    progress: Progress = no_progress,
) -> LiveStats:
    """Play `source` (any audio file, or its bytes) as if live and send the mouth over OSC."""
    from . import osc
    from .audio import iter_audio

    chosen = osc.load_preset(preset)
    vset = load_set(chosen.viseme_set or "oculus15")
    channels = list(vset.channels)
    build = osc.message_builder(chosen, channels, None)
    client = osc.open_client(host, port)
    phones, stats = LivePhones(), LiveStats()
    weights, step = np.zeros(len(channels)), 1.0 / osc.check_fps(fps)
    next_frame, begin, shown = 0.0, time.monotonic(), None
    ease = min(1.0, CHUNK_S / EASE_S)
    try:
        for chunk in iter_audio(source, chunk_seconds=CHUNK_S):
            if realtime:  # the sound "arrives" at its own pace
                time.sleep(max(0.0, begin + stats.seconds + CHUNK_S - time.monotonic()))
            stats.seconds += len(chunk) / RATE
            ipa, started = phones.feed(chunk)
            target = _weights(vset, channels, ipa)
            weights += (target - weights) * ease
            while next_frame <= stats.seconds:
                client.send(osc.make_bundle(0, build(np.clip(weights, 0, 1))))  # 0 = at once
                stats.frames_sent += 1
                next_frame += step
            if (ipa, started) != shown and ipa != "_":
                shown = (ipa, started)
                stats.latencies_ms.append((time.monotonic() - (begin + started)) * 1000)
            check_cancel(progress, 0.0, "streaming live")
    finally:
        phones.close()
        client.send(osc.make_bundle(0, build([0.0] * len(channels))))  # the mouth at rest
    return stats


def _weights(vset, channels: list[str], ipa: str) -> np.ndarray:
    viseme = vset.viseme_for(ipa)
    mix = vset.visemes[viseme].channels if viseme in vset.visemes else {}
    return np.array([mix.get(c, 0.0) for c in channels])
