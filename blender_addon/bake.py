"""One bake in three steps, so the slow middle can run off Blender's main thread:

    prepare (main thread: read the scene, check everything)
    -> fetch (any thread: the bridge does the work; HTTP only, no bpy)
    -> apply (main thread: keys, action, sound strip)

The operator runs fetch in a worker thread; batch baking and `blender -b` run all three in turn.
Nothing in the scene changes before apply, so a failure or cancel leaves it as it was.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from . import compat, frames, keyframes
from .client import Bridge, BridgeError

LIPS_FIELDS = {"visemes", "fps", "intensity", "smoothing", "holds"}  # what /lipread/script takes
UPLOADS = {"audio": "/lipsync/audio", "video": "/lipsync/video", "lips": "/lipread/script"}


class BakeError(Exception):
    """Why a bake cannot go ahead, and what to do; shown as an error report."""


@dataclass
class Request:
    kind: str  # "audio", "video", "lips" (script timed to the lips) or "text"
    name: str  # the line: names the action and the sound strip
    fields: dict  # the bridge's options
    mapping: dict[str, str]  # channel -> shape key
    frame_offset: float
    fps: float
    filename: str = ""
    data: bytes = b""
    sound_path: str = ""  # the sound for the sequencer; "" when the bridge speaks it
    add_strip: bool = True
    movie_path: str = ""  # a reference video to show in the sequencer


@dataclass
class Fetched:
    timeline: dict
    speech: bytes = b""  # WAV, when the bridge spoke a text
    warnings: list[str] = field(default_factory=list)


# --- prepare ---------------------------------------------------------------------------------


def check_target(obj) -> None:
    """The object must be a local mesh with shape keys."""
    if obj is None or obj.type != "MESH":
        raise BakeError("select the character's mesh: the object with the mouth shape keys.")
    for what, block in (("object", obj), ("mesh", obj.data), ("shape keys", obj.data.shape_keys)):
        if block is not None and block.library is not None:
            raise BakeError(
                f"the {what} of {obj.name!r} is linked from {block.library.filepath}; make it "
                "local or add a library override (Object > Library Override), then bake."
            )
    key = obj.data.shape_keys
    if key is None or len(key.key_blocks) < 2:
        raise BakeError(
            f"{obj.name!r} has no mouth shape keys; add them (or Add > Lip Sync Demo Head to "
            "try it out), or select the character's face mesh."
        )


def prepare(scene, obj, settings, bridge: Bridge) -> Request:
    """Check the target and the source, and gather what the bridge needs."""
    check_target(obj)
    mapping, viseme_set = ensure_mapping(obj, bridge, settings.viseme_set)
    fps = frames.scene_fps(scene)
    fields = {
        "visemes": viseme_set,
        "fps": round(fps, 6),
        "intensity": settings.intensity,
        "smoothing": settings.smoothing,
        "holds": settings.holds,
    }
    offset = scene.frame_start + settings.frame_offset
    request = Request("audio", "", fields, mapping, offset, fps, add_strip=settings.add_strip)
    if settings.source == "TEXT":
        return _text(request, settings)
    if settings.source == "STRIP":
        return _strip(request, scene, settings)
    if settings.source == "LIPS":
        return _lips(request, settings)
    path = settings.video_path if settings.source == "VIDEO" else settings.audio_path
    return _file(request, path, settings, video=settings.source == "VIDEO")


def _lips(request: Request, settings) -> Request:
    """A script timed to the lips of a video: its sound is not used, nor put in the sequencer."""
    script = settings.script.strip() or _sidecar(bpy.path.abspath(settings.video_path))
    if not script:
        raise BakeError("type the script the speaker says: it is timed to the lips in the video.")
    request = _file(request, settings.video_path, settings, video=True)
    request.kind, request.sound_path = "lips", ""
    request.fields = {k: v for k, v in request.fields.items() if k in LIPS_FIELDS}
    request.fields["text"] = script
    return request


def _text(request: Request, settings) -> Request:
    text = settings.text.strip()
    if not text:
        raise BakeError("the text is empty: type the line to speak.")
    request.kind, request.name = "text", _line_name(text)
    request.fields.update(text=text, engine=settings.voice_engine, voice=settings.voice)
    request.fields["lang"] = settings.lang
    return request


def _strip(request: Request, scene, settings) -> Request:
    strip = next((s for s in compat.strips(scene) if s.name == settings.strip), None)
    if strip is None or strip.type != "SOUND":
        raise BakeError(f"no sound strip named {settings.strip!r} in the sequencer; pick one.")
    sound = strip.sound
    if sound.packed_file is not None:
        data, path = bytes(sound.packed_file.data), ""
    else:
        path = bpy.path.abspath(sound.filepath, library=sound.library)
        data = _read(path)
    request.filename, request.data, request.name = Path(sound.filepath).name, data, strip.name
    request.frame_offset = strip.frame_start + settings.frame_offset
    request.add_strip = False  # it is already there
    _options(request, settings, path)
    return request


def _file(request: Request, path: str, settings, video: bool) -> Request:
    if not path.strip():
        raise BakeError(f"choose the {'video' if video else 'audio'} file to lip sync.")
    path = bpy.path.abspath(path)
    request.kind = "video" if video else "audio"
    request.filename, request.data, request.sound_path = Path(path).name, _read(path), path
    request.name = Path(path).stem
    _options(request, settings, path)
    if video:
        request.fields["video_weight"] = settings.video_weight
        request.movie_path = path if getattr(settings, "show_video", False) else ""
    return request


def _options(request: Request, settings, path: str) -> None:
    request.fields.update(engine=settings.engine, lang=settings.lang)
    script = settings.script.strip() or _sidecar(path)
    if script:
        request.fields["text"] = script


def _sidecar(path: str) -> str:
    """The script beside the recording (take.txt for take.wav), as Rhubarb's users keep it."""
    side = Path(path).with_suffix(".txt") if path else None
    return (
        side.read_text(encoding="utf-8", errors="replace").strip()
        if side and side.is_file()
        else ""
    )


def _read(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BakeError(f"cannot read {path}: {e.strerror}; check the path.") from None
    if not data:
        raise BakeError(f"{path} is empty (0 bytes); choose a file with sound.")
    return data


def _line_name(text: str) -> str:
    words = text.split()
    return " ".join(words[:4]) + ("..." if len(words) > 4 else "")


def ensure_mapping(obj, bridge: Bridge, wanted: str = "AUTO") -> tuple[dict[str, str], str]:
    """The object's channel -> shape key mapping; detected from its shape-key names the first
    time (or when another viseme set is asked for) and stored on the object for correcting."""
    rig = obj.lipsync
    if not rig.mapping or (wanted != "AUTO" and wanted != rig.viseme_set):
        detect(obj, bridge, None if wanted == "AUTO" else wanted)
    mapping = {c.channel: c.shape_key for c in rig.mapping if c.shape_key}
    if not mapping:
        raise BakeError(
            f"{rig.message.rstrip('.')}; or pick a shape key for each {rig.viseme_set} channel "
            "in the panel's Mapping list, then bake again."
        )
    return mapping, rig.viseme_set


def detect(obj, bridge: Bridge, visemes: str | None = None) -> dict:
    """Ask the bridge which viseme channels the shape keys are, and store the answer. When none
    match, the list gets the set's channels with no shape keys, for the user to fill in."""
    names = [k.name for k in obj.data.shape_keys.key_blocks[1:]]  # the first is the basis
    try:
        found = bridge.match_rig(names, visemes)
    except BridgeError as e:
        found = _unmatched(bridge, visemes or "oculus15", str(e))
    rig = obj.lipsync
    rig.mapping.clear()
    rig.viseme_set, rig.message = found["viseme_set"], found["message"]
    for channel in list(found["shape_keys"]) + found["missing_channels"]:
        item = rig.mapping.add()
        item.channel, item.shape_key = channel, found["shape_keys"].get(channel, "")
    return found


def _unmatched(bridge: Bridge, viseme_set: str, message: str) -> dict:
    """A mapping with every channel of the set and no shape keys (channels from a preset)."""
    preset = next((r for r in bridge.rigs() if r["viseme_set"] == viseme_set), None)
    if preset is None:
        raise BakeError(message) from None
    channels = list(preset["shape_keys"])
    return {"viseme_set": viseme_set, "shape_keys": {}, "missing_channels": channels,
            "message": message}  # fmt: skip


# --- fetch -----------------------------------------------------------------------------------


def fetch(bridge: Bridge, request: Request, on_progress=None, cancelled=lambda: False) -> Fetched:
    """Have the bridge make the timeline (and the speech, for a text). No bpy in here."""
    if request.kind == "text":
        job = bridge.start_text(request.fields)
    else:
        path = UPLOADS[request.kind]
        job = bridge.start_upload(path, request.filename, request.data, request.fields)
    timeline = bridge.wait(job, on_progress, cancelled)
    speech = bridge.speech(job) if request.kind == "text" else b""
    return Fetched(timeline, speech, [w["message"] for w in timeline.get("warnings", [])])


# --- apply -----------------------------------------------------------------------------------


def apply(scene, obj, request: Request, fetched: Fetched) -> keyframes.Written:
    """Write the keys into the line's action and put its sound in the sequencer."""
    check_target(obj)  # the user may have changed things while the bridge worked
    curves = [
        dict(c, channel=request.mapping[c["channel"]])
        for c in fetched.timeline["curves"]
        if c["channel"] in request.mapping
    ]
    written = keyframes.write_line(
        obj,
        curves,
        fps=request.fps,
        frame_offset=request.frame_offset,
        action_name=f"{obj.name}: {request.name}",
    )
    sound = request.sound_path or (_save_speech(request, fetched.speech) if fetched.speech else "")
    start = int(round(request.frame_offset))
    if request.add_strip and sound:
        compat.add_sound_strip(scene, request.name, sound, start)
    if request.movie_path:
        compat.add_movie_strip(scene, f"{request.name} (video)", request.movie_path, start)
    end = int(round(written.frame_end))
    if scene.frame_end < end:
        scene.frame_end = end  # so playback reaches the end of the line
    return written


def _save_speech(request: Request, wav: bytes) -> str:
    """The spoken line beside the .blend (in lipsync_audio/), or in the temp folder before the
    .blend is saved."""
    folder = Path(bpy.path.abspath("//lipsync_audio")) if bpy.data.filepath else None
    if folder is None:
        folder = Path(tempfile.gettempdir()) / "lipsync_audio"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in request.name)[:40]
    path = folder / f"{safe or 'line'}.wav"
    path.write_bytes(wav)
    return str(path)


def bake_now(scene, obj, settings, bridge: Bridge, on_progress=None) -> keyframes.Written:
    """All three steps on this thread: for batch baking and background mode."""
    request = prepare(scene, obj, settings, bridge)
    return apply(scene, obj, request, fetch(bridge, request, on_progress))
