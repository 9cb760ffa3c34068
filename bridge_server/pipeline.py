"""The whole pipeline on one screen: each step is one stage module.

text ─► check ─► speech engine ─► phonemes ─► viseme cues + curves ─► Timeline
audio ─► decode ─► script or Whisper ─► alignment ─► refinement ─► phonemes ─► ... ─► Timeline
audio ─► decode ─► Whisper ─► words (transcribe: only the transcript)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import engines
from .core.animate import animate
from .core.curves import CurveSettings, option_fields
from .core.errors import InputError
from .core.progress import Progress, no_progress, part
from .core.text import MAX_CHARS, check_text
from .core.timeline import Timeline
from .core.visemes import available_sets, load_set
from .engines import face
from .engines.base import Speech
from .media.audio import Audio, load_audio, shifted, wav_bytes
from .media.video import probe
from .mouth import motion as _motion  # noqa: F401 - registers the learned motion
from .mouth.controls import mouth_of
from .mouth.fusion import add_video
from .mouth.sync import LOW_CONFIDENCE, SyncModel, measure
from .speech.recognize import AUDIO_ENGINES, RATE, Heard, hear, recognize
from .speech.voices import choose_voice

log = logging.getLogger(__name__)


def say(
    text: str,
    *,
    engine: str = "espeak",
    voice: str = "",
    lang: str = "",
    rate_wpm: int | None = None,
    viseme_set: str = "oculus15",
    fps: float = 24.0,
    settings: CurveSettings = CurveSettings(),
    max_chars: int = MAX_CHARS,
    skip_unknown: bool = False,
    progress: Progress = no_progress,
) -> tuple[Speech, Timeline]:
    """Speak `text` and animate it: the audio and its timeline, timed by the synthesiser itself."""
    text = check_text(text, max_chars=max_chars, skip_unknown=skip_unknown)
    voice = choose_voice(text, engine, voice, lang)  # a voice that cannot read it fails here
    load_set(viseme_set)  # a wrong set name fails before any work
    tts = engines.create(engine, engines.SPEECH, voice=voice, lang=lang, rate_wpm=rate_wpm)
    log.info("say: %d characters with %s", len(text), engine)
    speech = tts.synthesize(text, progress)
    if not speech.phonemes:
        raise InputError("the voice produced no speech sounds for this text; give words to speak.")
    source = {"kind": "text", "text": text, "engine": speech.engine, "voice": speech.voice}
    timeline = animate(speech.words, speech.phonemes, speech.duration, viseme_set, fps, settings,
                       source, (speech.audio, speech.sample_rate))  # fmt: skip
    for message in speech.warnings:
        timeline.warn("phoneme", message)
    progress(1.0, "done")
    return speech, timeline


def bake(
    source: str | Path | bytes | Audio,
    *,
    text: str | None = None,
    engine: str = "auto",
    model: str = "auto",
    lang: str = "",
    viseme_set: str = "oculus15",
    fps: float = 24.0,
    settings: CurveSettings = CurveSettings(),
    name: str = "",
    refine: bool = True,
    progress: Progress = no_progress,
) -> Timeline:
    """Animate a recording (optionally with its script): the timeline lines up with what is heard.
    `refine=False` keeps the aligner's phone boundaries (speech/refine.py)."""
    load_set(viseme_set)  # a wrong set name fails before any work
    progress(0.0, "decoding")
    audio = _heard(source, name)
    log.info(
        "bake: %s, %.2f s, %s",
        audio.source,
        audio.duration,
        "with its script" if text else "no script",
    )
    found = recognize(audio, text=text, engine=engine, model=model, lang=lang, refine=refine,
                      progress=part(progress, 0.05, 0.95))  # fmt: skip
    source_info = {
        "kind": "audio",
        "audio": audio.source,
        "transcript": found.transcript,  # where the words came from: script, whisper or none
        "text": said(text, found.words),
        "language": found.language,
        "engine": engine,
    }
    timeline = animate(found.words, found.phonemes, audio.duration, viseme_set, fps, settings,
                       source_info, (audio.samples, audio.sample_rate))  # fmt: skip
    for message in audio.warnings + found.warnings:
        timeline.warn("audio", message)
    progress(1.0, "done")
    return timeline


def _heard(source, name: str) -> Audio:
    """The source decoded at the rate the recognisers hear (16 kHz); an Audio given at another
    rate (a synthesiser's 22.05 kHz) is resampled, not misread."""
    if not isinstance(source, Audio):
        return load_audio(source, name=name)
    if source.sample_rate == RATE:
        return source
    wav = wav_bytes(source.samples, source.sample_rate)
    return replace(load_audio(wav, name=source.source), warnings=list(source.warnings))


def said(script: str | None, words) -> str:
    """What the line says: the script as given, else the words heard (none: "")."""
    return script.strip() if script is not None else " ".join(w.text for w in words)


def transcribe(
    source: str | Path | bytes | Audio,
    *,
    engine: str = "whisper",
    model: str = "auto",
    lang: str = "",
    name: str = "",
    progress: Progress = no_progress,
) -> Heard:
    """Only what a recording (or a video's sound) says: its words and their times."""
    progress(0.0, "decoding")
    audio = _heard(source, name)
    log.info("transcribe: %s, %.2f s", audio.source, audio.duration)
    heard = hear(audio, engine=engine, model=model, lang=lang, progress=part(progress, 0.05, 0.95))
    heard.warnings = audio.warnings + heard.warnings
    progress(1.0, "done")
    return heard


SYNC_FIX_MIN_MS = 20.0  # less than half a frame at 25 fps: not worth moving the sound


def track(source: str | Path | bytes, **options: Any) -> Timeline:
    """Animate a reference video: its sound gives the timing and the phonemes (as `bake`), the
    tracked face the mouth's size and shape (`video_weight` 0..1), closures always kept.
    `neutral` (start, end seconds) is where the actor rests with the mouth closed. The options
    are track_video's."""
    return track_video(source, **options).timeline


@dataclass
class VideoTrack:
    """Everything `track` makes of a video, for callers that need more than the timeline."""

    timeline: Timeline
    tracking: Any  # engines.face.Tracking: the face in every frame, in pixels
    mouth: Any  # mouth.Mouth: head-free lips and controls at the same frame times
    info: Any  # video.VideoInfo
    sound: Audio | None  # on the picture's clock; None when the video has no sound


def track_video(
    source: str | Path | bytes,
    *,
    text: str | None = None,
    engine: str = "auto",
    model: str = "auto",
    lang: str = "",
    viseme_set: str = "oculus15",
    fps: float = 24.0,
    settings: CurveSettings = CurveSettings(),
    video_weight: float = 0.5,
    face_model: str = "auto",
    neutral: tuple[float, float] | None = None,
    fix_sync: bool = False,
    name: str = "",
    refine: bool = True,
    progress: Progress = no_progress,
) -> VideoTrack:
    """`track`, with the face tracking, the mouth and the sound it was made from. `fix_sync`:
    a sound measured early or late against the lips is moved into place before alignment."""
    load_set(viseme_set)
    info = probe(source, name=name)
    tracked = face.track(source, model=face_model, progress=part(progress, 0.0, 0.5), name=name)
    mouth = mouth_of(tracked, name or str(source), neutral)
    sound = None
    if info.has_audio:
        sound = shifted(load_audio(source, name=name), info.sound_delay)  # on the picture's clock
        moved = _sync_fix(mouth, sound) if fix_sync else 0.0
        sound = shifted(sound, -moved / 1000) if moved else sound
        timeline = bake(sound, text=text, engine=engine, model=model, lang=lang,
                        viseme_set=viseme_set, fps=fps, settings=settings, refine=refine,
                        progress=part(progress, 0.5, 0.95))  # fmt: skip
    else:
        source_info = {"kind": "video", "video": name or str(source)[:200], "text": said(text, [])}
        timeline = animate([], [], info.duration, viseme_set, fps, settings, source_info)
        timeline.warn("video", "the video has no sound: the mouth follows the face alone")
    add_video(timeline, tracked, mouth, info, video_weight, settings, sound)
    if fix_sync and info.has_audio:
        sync_note(timeline, moved)
    progress(1.0, "done")
    return VideoTrack(timeline, tracked, mouth, info, sound)


def in_sync(source: str | Path | bytes, sound: Audio, *, name: str = "",
            progress: Progress = no_progress) -> tuple[Audio, float]:  # fmt: skip
    """A video's sound (as decoded from its own start) on the picture's clock and moved into
    place against the speaker's lips (the sync model), and by how much in ms (0: in sync, or
    not sure enough to move it)."""
    try:
        info = probe(source, name=name)
    except InputError:
        raise InputError(
            f"{name or source} has no picture to read the lips from: moving the sound into place "
            "needs the speaker's face (fix_sync); leave it out for a recording"
        ) from None
    sound = shifted(sound, info.sound_delay)  # on the picture's clock
    tracked = face.track(source, progress=progress, name=name)
    moved = _sync_fix(mouth_of(tracked, name or str(source)), sound)
    return (shifted(sound, -moved / 1000) if moved else sound), moved


def sync_note(timeline: Timeline, moved: float) -> None:
    """Say in the timeline that (and how far) the sound was moved into place."""
    timeline.source["sound_moved_ms"] = round(-moved, 1)
    if moved:
        timeline.warn("video", f"the sound was {abs(moved):.0f} ms "
                      f"{'late' if moved > 0 else 'early'} against the lips; it was moved "
                      "into place before timing the mouth")  # fmt: skip


def _sync_fix(mouth, sound: Audio) -> float:
    """The offset (ms) to take out of the sound: the measured one where the model is sure of
    it and it is over a frame's worth, else 0."""
    found = measure(mouth, sound.samples, sound.sample_rate)
    sure = found.confidence >= LOW_CONFIDENCE and abs(found.offset_ms) > SYNC_FIX_MIN_MS
    return found.offset_ms if sure else 0.0


def sync(source: str | Path | bytes, *, name: str = "", progress: Progress = no_progress):
    """How late a video's sound is against its speaker's lips (mouth.sync.Sync: the offset,
    a confidence, the score per offset and per segment of a long take)."""
    info = probe(source, name=name)
    if not info.has_audio:
        raise InputError(
            f"{name or source} has no sound to compare the mouth with; give a video with its sound."
        )
    model = SyncModel.shipped()  # before tracking: a missing model fails at once
    tracked = face.track(source, progress=part(progress, 0.0, 0.9), name=name)
    mouth = mouth_of(tracked, name or str(source))
    sound = shifted(load_audio(source, name=name), info.sound_delay)  # on the picture's clock
    found = measure(mouth, sound.samples, sound.sample_rate, model)
    found.container_delay_ms = round(info.sound_delay * 1000, 1)
    progress(1.0, "done")
    return found


def choices() -> dict:
    """What a caller can choose, from the definitions themselves: the animation options (default,
    range, help), the engines per input and the viseme sets. The HTTP API serves it (GET
    /options) and the add-on ships a copy (blender_addon/options.json) for its properties."""
    return {
        "animation": [
            {"name": f.name, "default": f.default} | dict(f.metadata) for f in option_fields()
        ],
        "engines": {"audio": AUDIO_ENGINES, "text": engines.names(engines.SPEECH)},
        "viseme_sets": available_sets(),
    }
