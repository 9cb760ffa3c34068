"""What a baked line says, kept on its action (custom properties, saved in the .blend) for the
panel and the batch summary. No bpy: works on any ID block."""

from __future__ import annotations

from .request import said

TRANSCRIPT = "lipsync_transcript"  # the script, the recognised words or the typed text
WORDS = "lipsync_words"  # the words the timing follows, in order


def keep(action, document: dict, script: str = "") -> str:
    """Store what the line says (`script`: as sent) on the action; returns the transcript."""
    text, words = said(document, script)
    action[TRANSCRIPT], action[WORDS] = text, words
    return text


def of(action) -> tuple[str, list[str]]:
    """(transcript, words) stored on an action; empty when it was not baked by Lip Sync."""
    if action is None:
        return "", []
    return str(action.get(TRANSCRIPT, "")), [str(w) for w in action.get(WORDS, [])]
