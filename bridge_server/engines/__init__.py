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


@dataclass(frozen=True)
class EngineInfo:
    name: str
    job: str  # what it does, in the words of `lipsync engines`
    module: str  # bridge_server.<module>, with check_<name>() -> version, and create() if it runs
    default: bool = False


ENGINES = [
    EngineInfo("espeak", "text -> speech + exact phoneme times", "engines.espeak", default=True),
    EngineInfo("piper", "text -> speech + phoneme times (neural voice)", "engines.piper"),
    EngineInfo("whisper", "audio -> transcript (words + times)", "engines.whisper", default=True),
    EngineInfo(
        "pocketsphinx",
        "audio + transcript -> phone times (forced alignment); phones without one (phone loop)",
        "engines.pocketsphinx",
        default=True,
    ),
    EngineInfo(
        "allosaurus", "audio -> phones, no transcript (universal IPA)", "engines.allosaurus"
    ),
    EngineInfo(
        "mediapipe",
        "video -> face landmarks (478 points; ARKit blendshapes with face_landmarker.task)",
        "engines.face",
    ),
    EngineInfo("cmudict", "text -> phonemes (dictionary)", "engines.g2p", default=True),
    EngineInfo(
        "gruut", "text -> phonemes (unknown words, numbers, other languages)", "engines.g2p"
    ),
]


@dataclass(frozen=True)
class Status:
    engine: EngineInfo
    available: bool
    detail: str  # version / model when available, else why not and the fix


def _module(info: EngineInfo) -> Any:
    return importlib.import_module(f"bridge_server.{info.module}")


def find(name: str, job_word: str = "") -> EngineInfo:
    """The registry row called `name` (optionally restricted to jobs containing `job_word`)."""
    rows = [e for e in ENGINES if job_word in e.job]
    for e in rows:
        if e.name == name.lower():
            return e
    raise InputError(f"unknown engine '{name}'; choose one of: {', '.join(e.name for e in rows)}.")


def status(info: EngineInfo) -> Status:
    """Whether an engine can run here, and exactly why not."""
    try:
        return Status(info, True, getattr(_module(info), f"check_{info.name}")())
    except EngineUnavailable as e:
        log.debug("engine %s unavailable: %s", info.name, e)
        return Status(info, False, str(e))


def create(name: str, job_word: str = "", **options: Any) -> Any:
    """A ready engine object; raises EngineUnavailable naming the fix."""
    info = find(name, job_word)
    log.debug("creating engine %s with %s", info.name, options)
    return getattr(_module(info), f"create_{info.name}")(**options)
