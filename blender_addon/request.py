"""What one bake asks of the bridge, and the asking: no bpy, so it runs in a worker thread and
in plain Python tests. bake.py reads the scene into these; the bridge names the curves after
the rig's shape keys (from the Mapping list), so the answer is written as it comes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from . import options as choices
from . import timeline
from .client import Bridge, BridgeError

LIPS_FIELDS = {"visemes", "fps", *choices.ANIMATION, "shape_keys", "mapping"}
UPLOADS = {"audio": "/lipsync/audio", "video": "/lipsync/video", "lips": "/lipread/script",
           "transcript": "/transcribe", "sync": "/sync"}  # fmt: skip


class BakeError(Exception):
    """Why a bake cannot go ahead, and what to do; shown as an error report."""


@dataclass
class Request:
    kind: str  # "audio", "video", "lips" (script timed to the lips) or "text"
    name: str  # the line: names the action and the sound strip
    fields: dict  # the bridge's options (lists and dicts as they are; form() flattens them)
    mapping: dict[str, str]  # channel -> shape key, as sent: the curves must come back so named
    frame_offset: float
    fps: float
    filename: str = ""
    data: bytes = b""
    sound_path: str = ""  # the sound for the sequencer; "" when the bridge speaks it
    add_strip: bool = True
    movie_path: str = ""  # a reference video to show in the sequencer
    chosen: dict[str, str] = field(default_factory=dict)  # channel -> pose or drawing, applied
    # by the add-on (targets other than shape keys; their curves come back named by channel)


@dataclass
class Fetched:
    timeline: dict
    speech: bytes = b""  # WAV, when the bridge spoke a text
    warnings: list[str] = field(default_factory=list)


# --- building ---------------------------------------------------------------------------------


def base(settings, *, fps, frame_offset, viseme_set, mapping, shape_keys) -> Request:
    """The options every source shares: animation settings (the bridge's names, each the
    setting of that name) and the rig (the bridge maps)."""
    fields = {
        "visemes": viseme_set,
        "fps": round(fps, 6),
        **{name: getattr(settings, name) for name in choices.ANIMATION},
        "shape_keys": list(shape_keys),
        "mapping": dict(mapping),
    }
    return Request("audio", "", fields, dict(mapping), frame_offset, fps,
                   add_strip=settings.add_strip)  # fmt: skip


def for_text(request: Request, settings) -> Request:
    text = settings.text.strip()
    if not text:
        raise BakeError("the text is empty: type the line to speak.")
    request.kind, request.name = "text", line_name(text)
    request.fields.update(text=text, engine=settings.voice_engine, voice=settings.voice)
    request.fields["lang"] = settings.lang
    return request


def for_file(request: Request, path: str, settings, video: bool) -> Request:
    """A recording or reference video on disk (`path` absolute, "" when none was chosen)."""
    if not path:
        raise BakeError(f"choose the {'video' if video else 'audio'} file to lip sync.")
    request.kind = "video" if video else "audio"
    request.filename, request.data, request.sound_path = Path(path).name, read(path), path
    request.name = Path(path).stem
    options(request, settings, path)
    if video:
        request.fields["video_weight"] = settings.video_weight
        request.movie_path = path if getattr(settings, "show_video", False) else ""
    return request


def for_lips(request: Request, path: str, settings) -> Request:
    """A script timed to the lips of a video: its sound is not used, nor put in the sequencer."""
    script = settings.script.strip() or sidecar(path)
    if not script:
        raise BakeError("type the script the speaker says: it is timed to the lips in the video.")
    request = for_file(request, path, settings, video=True)
    request.kind, request.sound_path = "lips", ""
    request.fields = {k: v for k, v in request.fields.items() if k in LIPS_FIELDS}
    request.fields["text"] = script
    return request


def options(request: Request, settings, path: str) -> None:
    """Recognition options, and the script: typed, or the sidecar beside the recording."""
    request.fields.update(engine=settings.engine, lang=settings.lang)
    script = settings.script.strip() or sidecar(path)
    if script:
        request.fields["text"] = script


def sidecar(path: str) -> str:
    """The script beside the recording (take.txt for take.wav), as Rhubarb's users keep it."""
    side = Path(path).with_suffix(".txt") if path else None
    if side is None or not side.is_file():
        return ""
    return side.read_text(encoding="utf-8", errors="replace").strip()


def read(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BakeError(f"cannot read {path}: {e.strerror}; check the path.") from None
    if not data:
        raise BakeError(f"{path} is empty (0 bytes); choose a file with sound.")
    return data


def line_name(text: str) -> str:
    words = text.split()
    return " ".join(words[:4]) + ("..." if len(words) > 4 else "")


def form(fields: dict) -> dict:
    """The fields as multipart form values: shape keys comma-separated (a name with a comma
    cannot be sent that way and is left out), the mapping as JSON."""
    out = dict(fields)
    if "shape_keys" in out:
        out["shape_keys"] = ",".join(k for k in out["shape_keys"] if "," not in k)
    if "mapping" in out:
        out["mapping"] = json.dumps(out["mapping"])
    return out


def for_transcript(filename: str, data: bytes, settings) -> Request:
    """Only the words: the recording heard by the bridge's Whisper, nothing animated."""
    fields = {"lang": settings.lang}
    return Request("transcript", Path(filename).stem, fields, {}, 0.0, 0.0, filename, data)


def for_sync(filename: str, data: bytes) -> Request:
    """A video whose sound is measured against its speaker's lips; nothing animated."""
    return Request("sync", Path(filename).stem, {}, {}, 0.0, 0.0, filename, data)


# --- in Blender's words -------------------------------------------------------------------------

# The bridge names a setting that fixes a problem as "(lang)": the panel's field for each; the
# advice is dropped where the panel has no such setting.
PANEL_WORDS = (
    (", or raise the limit (max_chars)", ""),
    (", or drop them (skip_unknown)", ""),
    ("(lang)", "(the Language field)"),
    ("(voice)", "(the voice's Name field)"),
    ("(engine)", "(the Voice field)"),
)
# the bridge's job stages, in a word each (a new stage shows its first word)
STAGES = {
    "queued": "Waiting", "starting": "Starting", "decoding": "Reading",
    "detecting the language": "Language", "locating the script": "Script",
    "transcribing": "Listening", "aligning": "Aligning", "recognizing phones": "Phones",
    "speaking": "Speaking", "tracking faces": "Face", "done": "Done",
}  # fmt: skip


def panel_words(message: str) -> str:
    """A bridge message with the settings it names put in the panel's words."""
    for flag, words in PANEL_WORDS:
        message = message.replace(flag, words)
    return message


def stage_word(stage: str) -> str:
    """The bridge's stage in one word, for the progress bar."""
    return STAGES.get(stage) or (stage.split() or [""])[0].capitalize()


def said(document: dict, script: str = "") -> tuple[str, list[str]]:
    """What the line says (the script as sent, else the bridge's source.text: the typed or
    given text, or the words heard; bridges before it: the timed words) and the words the
    timing follows."""
    source = document.get("source") or {}
    words = [w["text"] for w in document.get("words", []) if isinstance(w, dict) and "text" in w]
    return str(script or source.get("text") or " ".join(words)).strip(), words


# --- asking -------------------------------------------------------------------------------------


def fetch(bridge: Bridge, request: Request, on_progress=None, cancelled=lambda: False) -> Fetched:
    """Have the bridge make the timeline (and the speech, for a text)."""
    if request.kind == "text":
        job = bridge.start_text(request.fields)
    else:
        fields = form(request.fields)
        job = bridge.start_upload(UPLOADS[request.kind], request.filename, request.data, fields)
    document = timeline.read(bridge.wait(job, on_progress, cancelled), "the bridge's timeline")
    check_named(document, request.mapping, bridge.url)
    speech = bridge.speech(job) if request.kind == "text" else b""
    return Fetched(document, speech, timeline.warnings(document))


def _upload(bridge: Bridge, line: Request, kind: str, doing: str) -> str:
    """Start the job; a bridge without the route is older than the add-on: say so."""
    try:
        return bridge.start_upload(UPLOADS[kind], line.filename, line.data, line.fields)
    except BridgeError as e:
        if e.status != 404:
            raise
        raise BridgeError(
            f"the bridge at {bridge.url} cannot {doing} (no {UPLOADS[kind]}): it is older than "
            "this add-on; update lipsync-bridge."
        ) from None


def transcribe(bridge: Bridge, line: Request, on_progress=None, cancelled=lambda: False):
    """(transcript, warnings) of a recording."""
    job = _upload(bridge, line, "transcript", "transcribe")
    heard = bridge.wait(job, on_progress, cancelled)
    text = str(heard.get("text", "")).strip() if isinstance(heard, dict) else ""
    if not text:
        raise BridgeError(f"no words were heard in {line.filename}; type the script instead.")
    return text, [str(w) for w in heard.get("warnings", [])]


def check_sync(bridge: Bridge, line: Request, on_progress=None, cancelled=lambda: False):
    """(offset_ms, reason) of a video's sound against its lips (+: the sound is late)."""
    job = _upload(bridge, line, "sync", "check sync")
    found = bridge.wait(job, on_progress, cancelled)
    try:
        # Blender plays a sound strip from its first sample: a delay kept in the file's
        # container is not heard, so it is not part of what Shift Sound should move.
        offset = float(found["offset_ms"]) - float(found.get("container_delay_ms") or 0.0)
        return offset, str(found.get("reason") or "")
    except (TypeError, KeyError, ValueError):
        raise BridgeError(
            f"the bridge at {bridge.url} sent no offset; update lipsync-bridge."
        ) from None


def sync_frames(offset_ms: float, fps: float) -> int:
    """The offset in whole frames at `fps`, halves away from zero (what Shift Sound moves)."""
    frames = abs(offset_ms) * fps / 1000
    return int(math.copysign(math.floor(frames + 0.5), offset_ms))


def sync_words(offset_ms: float, fps: float, reason: str = "", moved: int = 0) -> str:
    """Check Sync's result for the panel: "Sound 120 ms late (3 frames)", "In sync", or
    "Unsure: <reason>"; `offset_ms` is what is left after Shift Sound moved it `moved` frames."""
    if reason:
        return f"Unsure: {reason}"
    frames = sync_frames(offset_ms, fps)
    if frames == 0:
        return f"In sync (moved {in_frames(moved)})" if moved else "In sync"
    side = "late" if frames > 0 else "early"
    return f"Sound {abs(offset_ms):.0f} ms {side} ({in_frames(frames)})"


def in_frames(count: int) -> str:
    """The count in words, without its sign: "3 frames", "1 frame"."""
    return f"{abs(count)} frame{'' if abs(count) == 1 else 's'}"


def check_named(document: dict, mapping: dict[str, str], url: str) -> None:
    """The curves must be named after the mapped shape keys: a bridge that ignored the mapping
    (older than the add-on) would key the wrong shapes."""
    wanted = set(mapping.values())
    other = sorted({c["channel"] for c in document["curves"]} - wanted)
    if other:
        raise BridgeError(
            f"the bridge at {url} sent curves for {', '.join(other[:5])}, not the shape keys of "
            "the Mapping list: it is older than this add-on; update lipsync-bridge."
        )
