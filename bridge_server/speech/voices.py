"""The voice that speaks a text: `auto` picks one from the text's writing systems, and a
voice that cannot read the text is refused before any synthesis (core.scripts says why)."""

from __future__ import annotations

import logging

from .. import engines
from ..core.errors import EngineUnavailable
from ..core.scripts import Voice, auto_voice, check_readable, scripts_read
from ..engines import espeak, piper

log = logging.getLogger(__name__)
AUTO = "auto"
LISTS = {"espeak": espeak.voices, "piper": piper.voices}  # engine -> its installed voices


def choose_voice(text: str, engine: str = "espeak", voice: str = "", lang: str = "") -> str:
    """The voice name to speak `text` with; InputError when the voice is unknown or cannot
    read the text, naming the voices that can."""
    name = engines.find(engine, engines.SPEECH).name
    known = _espeak_voices()
    chosen = _piper(voice) if name == "piper" else _espeak(text, voice, lang, known)
    check_readable(text, chosen, known)
    log.debug("voice for %d characters: %s %s (%s)", len(text), name, chosen.name, chosen.language)
    return chosen.name


def _espeak(text: str, voice: str, lang: str, known: list[Voice]) -> Voice:
    if voice.strip().lower() == AUTO:
        return espeak.find_voice(lang) if lang else auto_voice(text, known)
    return espeak.find_voice(voice or lang or "en-us")


def _piper(voice: str) -> Voice:
    """Piper's own voice, or for `auto` the installed one (joe) when it reads the text."""
    return piper.voice_info("" if voice.strip().lower() == AUTO else voice)


def _espeak_voices() -> list[Voice]:
    """eSpeak's voices, for the suggestions; none when libespeak-ng is missing (Piper carries
    its own eSpeak data, so a Piper voice is still checked)."""
    try:
        return espeak.voices()
    except EngineUnavailable as e:
        log.debug("no eSpeak voices to suggest: %s", e)
        return []


def installed_voices(engine: str | None = None) -> tuple[list[dict], dict[str, str]]:
    """Every installed voice as a row (engine, voice, language, scripts it reads, title), and
    the engines that are missing with why. Asked for one engine alone, a missing one raises."""
    rows, missing = [], {}
    for name, listed in LISTS.items():
        if engine not in (None, name):
            continue
        try:
            found = listed()
        except EngineUnavailable as e:
            if engine:
                raise
            missing[name] = str(e)
            continue
        rows += [
            {"engine": v.engine, "voice": v.name, "language": v.language,
             "scripts": scripts_read(v.language), "title": v.title}
            for v in found
        ]  # fmt: skip
    return rows, missing
