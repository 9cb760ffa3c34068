"""Which writing systems (Unicode scripts) a text is in, and whether a voice can read them.

eSpeak NG never refuses text: letters its voice cannot read it names one by one ("Japanese
letter"), so a line in the wrong script becomes seconds of nonsense. Text is checked against
the voice here, before any synthesis. Tables: data/scripts.tsv, data/script_voices.tsv.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass

from .errors import InputError
from .phonemes import read_tsv

COMMON = "Common"  # letters of every script (ー, ª) and everything but letters
LATIN = "Latin"


@dataclass(frozen=True)
class Voice:
    """A voice as the user picks it, and the eSpeak language it reads text with."""

    engine: str  # "espeak" or "piper"
    name: str  # what --voice (and the HTTP field voice) takes
    language: str  # eSpeak language code ("en-us", "ja"); Piper voices phonemize with eSpeak
    title: str = ""  # what it is, e.g. "English (America)"
    aliases: tuple[str, ...] = ()  # other names the engine accepts (language codes, its title)


@functools.cache
def _ranges() -> tuple[list[int], list[int], list[str]]:
    _, rows = read_tsv("scripts.tsv")
    return [int(r[0], 16) for r in rows], [int(r[1], 16) for r in rows], [r[2] for r in rows]


@functools.cache
def _table() -> dict[str, tuple[str, tuple[str, ...]]]:
    """script -> (the voice `auto` picks, the language codes that read it)."""
    _, rows = read_tsv("script_voices.tsv")
    return {script: (auto, tuple(readers.split(","))) for script, auto, readers in rows}


def script_of(ch: str) -> str:
    """The Unicode script of a letter; COMMON for anything every voice reads or skips."""
    if not ch.isalpha():
        return COMMON
    starts, ends, names = _ranges()
    i = bisect.bisect_right(starts, ord(ch)) - 1
    return names[i] if i >= 0 and ord(ch) <= ends[i] else COMMON


def scripts_in(text: str) -> dict[str, int]:
    """Each script the text's letters are in (not COMMON), with its first letter's index."""
    found: dict[str, int] = {}
    for i, ch in enumerate(text):
        if ch.isalpha():
            found.setdefault(script_of(ch), i)
    found.pop(COMMON, None)
    return found


def reads(language: str, script: str) -> bool:
    """Whether a voice of this eSpeak language reads the script (a code covers longer forms)."""
    row = _table().get(script)
    if row is None:
        return False
    return any(r == "*" or language == r or language.startswith(r + "-") for r in row[1])


def scripts_read(language: str) -> list[str]:
    """The scripts a voice of this eSpeak language reads, its own first (Latin last)."""
    found = [s for s in _table() if reads(language, s)]
    return sorted(found, key=lambda s: s == LATIN)


def check_readable(text: str, voice: Voice, installed: list[Voice]) -> None:
    """InputError when the voice cannot read some of the text, naming voices that can."""
    found = scripts_in(text)
    unread = [s for s in found if not reads(voice.language, s)]
    if unread:
        about = f", {voice.title}," if voice.title else ""
        raise InputError(
            f"the {voice.engine} voice {voice.name}{about} cannot read the text's "
            f"{_where(text, found, unread)}: it would say the letters' names instead of words. "
            + suggest(text, installed, voice.engine)
        )


def auto_voice(text: str, installed: list[Voice]) -> Voice:
    """The voice for the text's scripts: the table's choice for its first non-Latin script
    (or Latin's) when installed, else any installed voice that reads them all."""
    found = scripts_in(text)
    able = _able(found, installed)
    if not able:
        raise InputError("voice auto (voice): " + _nobody(text, found, installed, located=True))
    return able[0]


def suggest(text: str, installed: list[Voice], engine: str) -> str:
    """What to do instead: the voices that read all of the text, else what reads each script."""
    found = scripts_in(text)
    able = [v.name for v in _able(found, installed)]
    if not able:
        return _nobody(text, found, installed)
    switch = " with the espeak engine (engine)" if engine != "espeak" else ""
    return (
        f"Voices that read it: {_few(able)}; choose one (voice), e.g. {able[0]}{switch}, or "
        "auto to pick one from the text."
    )


def _able(found: dict[str, int], installed: list[Voice]) -> list[Voice]:
    """The installed voices that read every script found, the table's choices first."""
    table = _table()
    wanted = [table[s][0] for s in found if s != LATIN and s in table] + [table[LATIN][0]]
    rank = {name: i for i, name in reversed(list(enumerate(wanted)))}
    able = [v for v in installed if all(reads(v.language, s) for s in found)]
    return sorted(able, key=lambda v: rank.get(v.name, len(rank)))


def _nobody(text: str, found: dict[str, int], installed: list[Voice], located=False) -> str:
    """No voice reads all the text: what reads each script (Latin: every voice), and the fixes."""
    hard = [s for s in found if "*" not in _table().get(s, ("", ()))[1]]
    readers = {s: [v.name for v in installed if reads(v.language, s)] for s in hard}
    each = "; ".join(f"{s}: {_few(names)}" for s, names in readers.items() if names)
    scripts = "the text's " + _where(text, found, hard) if located else " and ".join(hard)
    together = " together" if len(hard) > 1 else ""
    kanji = " (kanji in kana for Japanese)" if "Han" in hard and len(hard) > 1 else ""
    write = "Split the text by script, write it" if len(hard) > 1 else "Write the text"
    return (
        f"No installed voice reads {scripts}{together}" + (f" ({each})" if each else "") + ". "
        f"{write} in a script one voice reads{kanji} or romanised, or use a Piper voice "
        "trained for its language: the piper engine (engine) with its .onnx file (voice)."
    )


def _few(names: list[str], most: int = 8) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _where(text: str, found: dict[str, int], scripts: list[str]) -> str:
    """'Hiragana (こ at character 1) and Han (元 at character 6)'."""
    parts = [f"{s} ({text[found[s]]} at character {found[s] + 1})" for s in scripts]
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
