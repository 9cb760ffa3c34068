"""Checks on text before it is spoken: one clear error per problem, naming the fix."""

from __future__ import annotations

import unicodedata

from .errors import InputError

MAX_CHARS = 20_000  # about 25 minutes of speech; longer scripts belong in several lines
# Categories no voice can say: controls, format marks, private use, unassigned, surrogates,
# and pictographs/emoji ("So").
_UNSPEAKABLE = {"Cc", "Cf", "Co", "Cn", "Cs", "So"}
_ALLOWED_CONTROLS = {"\n", "\r", "\t"}


def check_text(text: str, *, max_chars: int = MAX_CHARS, skip_unknown: bool = False) -> str:
    """The text to speak, or InputError saying what is wrong with it."""
    if not text or not text.strip():
        raise InputError(
            'the text is empty; give the line to speak, e.g. lipsync say "Hello there."'
        )
    if len(text) > max_chars:
        raise InputError(
            f"the text is {len(text):,} characters, over the limit of {max_chars:,} "
            f"(about {max_chars // 800} minutes of speech); split it into several lines, "
            f"or raise the limit (max_chars)."
        )
    bad = [(i, ch) for i, ch in enumerate(text) if _unspeakable(ch)]
    if bad and not skip_unknown:
        shown = ", ".join(f"{_name(ch)} at {i + 1}" for i, ch in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise InputError(
            f"the text has characters no voice can pronounce: {shown}{more}; "
            f"remove them, or drop them (skip_unknown)."
        )
    if bad:
        text = "".join(ch for ch in text if not _unspeakable(ch))
    if not any(ch.isalnum() for ch in text):
        raise InputError(
            "the text has no pronounceable characters (no letters or digits); give words to speak."
        )
    return text


def _unspeakable(ch: str) -> bool:
    return ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) in _UNSPEAKABLE


def _name(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')}".strip()
