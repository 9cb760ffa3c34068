"""A video's sound against its picture: Check Sync asks the bridge how late the sound is (off
the main thread, like Transcribe); Shift Sound moves the video's sound strip by that many whole
frames. Neither touches the keys."""

from __future__ import annotations

import os
from pathlib import Path

import bpy

from . import compat, frames, request
from .operators import BridgeCall, ensure_bridge

VIDEOS = ("VIDEO", "LIPS")
MOVED = "lipsync_sync_frames"  # on a sound strip: how many frames Shift Sound moved it earlier


def video_path(settings) -> str:
    return bpy.path.abspath(settings.video_path) if settings.video_path.strip() else ""


def checked(settings) -> bool:
    """Whether the last Check Sync measured the video now chosen."""
    same = settings.sync_video == settings.video_path
    return settings.source in VIDEOS and same and bool(settings.video_path)


def sound_strip(scene, path: str):
    """The sound strip playing the video's sound (the bake adds one), or None."""
    editor = scene.sequence_editor
    if editor is None or not path:
        return None
    sounds = (s for s in getattr(editor, compat.STRIPS_ATTR) if s.type == "SOUND" and s.sound)
    return next((s for s in sounds if _same_file(s.sound, path)), None)


def _same_file(sound, path: str) -> bool:
    played = bpy.path.abspath(sound.filepath, library=sound.library)
    return os.path.normpath(played) == os.path.normpath(path)


def result(scene, settings) -> tuple[str, int]:
    """The last check in words, and the frames still to move (0 when unsure): what Shift
    Sound already moved the strip is taken off."""
    fps = frames.scene_fps(scene)
    strip = sound_strip(scene, video_path(settings))
    moved = int(strip.get(MOVED, 0)) if strip else 0
    left = settings.sync_ms - moved * 1000 / fps
    words = request.sync_words(left, fps, settings.sync_reason, moved)
    return words, 0 if settings.sync_reason else request.sync_frames(left, fps)


class LIPSYNC_OT_check_sync(BridgeCall, bpy.types.Operator):
    """Measure how late the video's sound is against the speaker's lips (the bridge's sync
    model); the keys and the strips stay as they are"""

    bl_idname = "lipsync.check_sync"
    bl_label = "Check Sync"
    bl_options = {"REGISTER", "UNDO"}

    sources = VIDEOS
    refused = "only a video's sound can be checked against its picture"
    call = staticmethod(request.check_sync)

    def _line(self, context):
        settings = context.scene.lipsync
        path = video_path(settings)
        if not path:
            raise request.BakeError("choose the video to check.")
        self.video = settings.video_path  # the result is this video's
        return ensure_bridge(context), request.for_sync(Path(path).name, request.read(path))

    def finish(self, context, value):
        settings = context.scene.lipsync
        settings.sync_video, (settings.sync_ms, settings.sync_reason) = self.video, value
        words, _ = result(context.scene, settings)
        self.report({"WARNING" if settings.sync_reason else "INFO"}, words)
        return {"FINISHED"}


class LIPSYNC_OT_shift_sound(bpy.types.Operator):
    """Move the video's sound strip by the offset Check Sync found, in whole frames (earlier
    when the sound is late); the keys stay where they are"""

    bl_idname = "lipsync.shift_sound"
    bl_label = "Shift Sound"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        problem = shift_problem(context.scene)
        if problem:
            cls.poll_message_set(problem)
        return not problem

    def execute(self, context):
        scene = context.scene
        path = video_path(scene.lipsync)
        strip = sound_strip(scene, path)
        if strip is None:
            self.report({"ERROR"}, f"no sound strip of {Path(path).name} in the sequencer: bake "
                        "it as a Reference Video with Add Sound Strip on first.")  # fmt: skip
            return {"CANCELLED"}
        _, shift = result(scene, scene.lipsync)
        strip.frame_start -= shift
        strip[MOVED] = int(strip.get(MOVED, 0)) + shift
        way = f"{request.in_frames(shift)} {'earlier' if shift > 0 else 'later'}"
        self.report({"INFO"}, f"moved {strip.name} {way}; the keys are unchanged")
        return {"FINISHED"}


def shift_problem(scene) -> str:
    """Why Shift Sound cannot run now ("" when it can)."""
    settings = scene.lipsync
    if settings.running:
        return "a bake is running"
    if not checked(settings):
        return "press Check Sync first"
    if settings.sync_reason:
        return f"the check is unsure: {settings.sync_reason}"
    if result(scene, settings)[1] == 0:
        return "the sound is in sync: nothing to move"
    return ""


classes = (LIPSYNC_OT_check_sync, LIPSYNC_OT_shift_sound)
