"""One bake in three steps, so the slow middle can run off Blender's main thread:

    prepare (main thread: read the scene into a request.Request, check everything)
    -> request.fetch (any thread: the bridge does the work and names the curves; no bpy)
    -> apply (main thread: keys, action, sound strip)

The operator runs fetch in a worker thread; batch baking and `blender -b` run all three in turn.
Nothing in the scene changes before apply, so a failure or cancel leaves it as it was.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy

from . import compat, frames, keyframes, mapping, request, targets
from .client import Bridge
from .request import BakeError, Fetched, Request, fetch

# --- prepare ---------------------------------------------------------------------------------


def check_target(obj) -> str:
    """The object's target kind (targets.kind), once it is local and has something to key."""
    return targets.check(obj)


def prepare(scene, obj, settings, bridge: Bridge) -> Request:
    """Check the target and the source, and gather what the bridge needs."""
    check_target(obj)
    chosen, viseme_set = ensure_mapping(obj, bridge, settings.viseme_set)
    sent, names = targets.sent(obj, chosen, [c.channel for c in obj.lipsync.mapping])
    line = request.base(
        settings,
        fps=frames.scene_fps(scene),
        frame_offset=scene.frame_start + settings.frame_offset,
        viseme_set=viseme_set,
        mapping=sent,
        shape_keys=names,
    )
    line.chosen = chosen
    source = settings.source
    if source == "TEXT":
        return request.for_text(line, settings)
    if source == "STRIP":
        return _strip(line, scene, settings)
    path = _abspath(settings.video_path if source in ("VIDEO", "LIPS") else settings.audio_path)
    if source == "LIPS":
        return request.for_lips(line, path, settings)
    return request.for_file(line, path, settings, video=source == "VIDEO")


def shape_key_names(obj) -> list[str]:
    """The names the bridge matches to mouth shapes: shape keys, pose actions or layers."""
    return targets.names(obj)


def _abspath(path: str) -> str:
    return bpy.path.abspath(path) if path.strip() else ""


def _strip(line: Request, scene, settings) -> Request:
    strip = next((s for s in compat.strips(scene) if s.name == settings.strip), None)
    if strip is None or strip.type != "SOUND":
        raise BakeError(f"no sound strip named {settings.strip!r} in the sequencer; pick one.")
    sound = strip.sound
    if sound.packed_file is not None:
        data, path = bytes(sound.packed_file.data), ""
    else:
        path = bpy.path.abspath(sound.filepath, library=sound.library)
        data = request.read(path)
    line.filename, line.data, line.name = Path(sound.filepath).name, data, strip.name
    line.frame_offset = strip.frame_start + settings.frame_offset
    line.add_strip = False  # it is already there
    request.options(line, settings, path)
    return line


def ensure_mapping(obj, bridge: Bridge, wanted: str = "AUTO") -> tuple[dict[str, str], str]:
    """The object's channel -> shape key choices; detected from its shape-key names the first
    time (or when another viseme set is asked for) and stored on the object for correcting."""
    rig = obj.lipsync
    if not rig.mapping or (wanted != "AUTO" and wanted != rig.viseme_set):
        detect(obj, bridge, None if wanted == "AUTO" else wanted)
    chosen = mapping.chosen([(c.channel, c.shape_key) for c in rig.mapping])
    if not chosen and targets.needs_mapping(obj):
        raise BakeError(
            f"{rig.message.rstrip('.')}; or pick a {targets.noun(obj)} for each "
            f"{rig.viseme_set} channel in the panel's Mapping list, then bake again."
        )
    return chosen, rig.viseme_set


def detect(obj, bridge: Bridge, visemes: str | None = None) -> dict:
    """Ask the bridge which viseme channels the shape keys (poses, layers) are, and fill the
    Mapping list."""
    names = shape_key_names(obj)
    if names:
        found = mapping.match(bridge, names, visemes)
    else:  # an armature with a jaw bone and no poses: the jaw alone moves
        message = "no viseme poses (actions named after mouth shapes): the jaw alone moves"
        found = mapping.unmatched(bridge, visemes or mapping.FALLBACK_SET, message)
    message = found["message"].replace("shape keys", targets.noun(obj) + "s")  # the bridge's word
    set_rows(obj.lipsync, found["viseme_set"], mapping.rows(found), message)
    return found


def set_rows(rig, viseme_set: str, rows: list[tuple[str, str]], message: str) -> None:
    rig.mapping.clear()
    rig.viseme_set, rig.message = viseme_set, message
    for channel, shape_key in rows:
        item = rig.mapping.add()
        item.channel, item.shape_key = channel, shape_key


# --- apply -----------------------------------------------------------------------------------


def apply(scene, obj, line: Request, fetched: Fetched) -> keyframes.Written:
    """Key the line onto the object's target (shape keys, bones or drawings) and put the sound
    in the sequencer."""
    check_target(obj)  # the user may have changed things while the bridge worked
    written = targets.write(
        obj,
        fetched.timeline,
        line.chosen,
        fps=line.fps,
        frame_offset=line.frame_offset,
        action_name=f"{obj.name}: {line.name}",
    )
    sound = line.sound_path or (_save_speech(line, fetched.speech) if fetched.speech else "")
    start = int(round(line.frame_offset))
    if line.add_strip and sound:
        compat.add_sound_strip(scene, line.name, sound, start)
    if line.movie_path:
        compat.add_movie_strip(scene, f"{line.name} (video)", line.movie_path, start)
    end = int(round(written.frame_end))
    if scene.frame_end < end:
        scene.frame_end = end  # so playback reaches the end of the line
    return written


def _save_speech(line: Request, wav: bytes) -> str:
    """The spoken line beside the .blend (in lipsync_audio/), or in the temp folder before the
    .blend is saved."""
    folder = Path(bpy.path.abspath("//lipsync_audio")) if bpy.data.filepath else None
    if folder is None:
        folder = Path(tempfile.gettempdir()) / "lipsync_audio"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in line.name)[:40]
    path = folder / f"{safe or 'line'}.wav"
    path.write_bytes(wav)
    return str(path)


def bake_now(scene, obj, settings, bridge: Bridge, on_progress=None) -> keyframes.Written:
    """All three steps on this thread: for batch baking and background mode."""
    line = prepare(scene, obj, settings, bridge)
    return apply(scene, obj, line, fetch(bridge, line, on_progress))
