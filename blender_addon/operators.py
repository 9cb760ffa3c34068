"""Operators: bake (modal in the UI, synchronous in background mode), cancel, the bridge's
start/stop/check, rig detection and the mapping's save/load."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import bake, client, mapping, request
from .preferences import preferences

TICK_S = 0.1
STATE = {"process": None, "bridge": "not checked"}  # what the add-on started, and last status


def bridge_for(context) -> client.Bridge:
    prefs = preferences(context)
    return client.Bridge(prefs.url, prefs.token)


def ensure_bridge(context) -> client.Bridge:
    """The bridge, started from the preferences' command when it is down and that is allowed."""
    bridge, prefs = bridge_for(context), preferences(context)
    try:
        bridge.health()
    except client.BridgeError:
        if not prefs.autostart or STATE["process"] is not None:
            STATE["bridge"] = "down"
            raise
        STATE["process"] = client.start_bridge(prefs.command, prefs.url)
    STATE["bridge"] = "running"
    return bridge


def stop_started_bridge() -> None:
    client.stop_bridge(STATE["process"])
    STATE["process"] = None


def _target_poll(cls, context) -> bool:
    obj = context.active_object
    if obj is None or obj.type != "MESH":
        cls.poll_message_set("select the character's mesh")
        return False
    if obj.data.shape_keys is None:
        cls.poll_message_set("the mesh has no shape keys")
        return False
    return True


class LIPSYNC_OT_bake(bpy.types.Operator):
    """Make the mouth animation for the line and key it onto the shape keys"""

    bl_idname = "lipsync.bake"
    bl_label = "Bake Lip Sync"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if context.scene.lipsync.running:
            cls.poll_message_set("a bake is running")
            return False
        return _target_poll(cls, context)

    def execute(self, context):
        """Synchronous: background mode and scripts (`bpy.ops.lipsync.bake()`)."""
        scene, obj = context.scene, context.active_object
        try:
            bridge = ensure_bridge(context)
            written = bake.bake_now(scene, obj, scene.lipsync, bridge, _print_progress)
        except (request.BakeError, client.BridgeError, ValueError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self._done(written)
        return {"FINISHED"}

    def invoke(self, context, event):
        if bpy.app.background:  # no event loop: timers and modal handlers never fire
            return self.execute(context)
        scene, obj = context.scene, context.active_object
        try:
            bridge = ensure_bridge(context)
            self.request = bake.prepare(scene, obj, scene.lipsync, bridge)
        except (request.BakeError, client.BridgeError, ValueError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.target = obj.name  # the active object may change while the bridge works
        self.messages, self.stop = queue.Queue(), threading.Event()
        self.worker = threading.Thread(target=self._fetch, args=(bridge,), daemon=True)
        self.worker.start()
        settings = scene.lipsync
        settings.running, settings.cancel, settings.progress = True, False, 0.0
        settings.stage = "starting"
        wm = context.window_manager
        self.timer = wm.event_timer_add(TICK_S, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _fetch(self, bridge) -> None:
        """In the worker thread: HTTP only; every result goes to the queue."""
        try:
            fetched = request.fetch(
                bridge,
                self.request,
                lambda p, s: self.messages.put(("progress", (p, s))),
                self.stop.is_set,
            )
            self.messages.put(("done", fetched))
        except Exception as e:  # noqa: BLE001 - reported on the main thread
            self.messages.put(("error", e))

    def modal(self, context, event):
        settings = context.scene.lipsync
        if event.type == "ESC" or settings.cancel:
            self.stop.set()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        while not self.messages.empty():
            kind, value = self.messages.get()
            if kind == "progress":
                settings.progress, settings.stage = value
                context.window_manager.progress_update(int(value[0] * 100))
                _redraw(context)
                continue
            return self._finish(context, kind, value)
        return {"PASS_THROUGH"}

    def _finish(self, context, kind, value):
        wm, settings = context.window_manager, context.scene.lipsync
        wm.event_timer_remove(self.timer)
        wm.progress_end()
        settings.running, settings.cancel, settings.stage = False, False, ""
        _redraw(context)
        if kind == "error":
            self.report({"WARNING" if isinstance(value, client.Cancelled) else "ERROR"}, str(value))
            return {"CANCELLED"}
        try:
            obj = context.scene.objects.get(self.target)
            written = bake.apply(context.scene, obj, self.request, value)
        except (request.BakeError, ValueError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        for warning in value.warnings:
            self.report({"WARNING"}, warning)
        self._done(written)
        return {"FINISHED"}

    def _done(self, written) -> None:
        message = (
            f"{written.keys} keys on {len(written.channels)} shape keys in action "
            f"{written.action.name!r}, frames {written.frame_start:.0f}-{written.frame_end:.0f}"
        )
        if written.previous:
            message += f" (the previous action {written.previous!r} is kept)"
        if written.missing:
            message += f"; no shape key for {', '.join(written.missing)}"
        self.report({"INFO"}, message)


def _print_progress(fraction: float, stage: str) -> None:
    print(f"lipsync: {fraction:4.0%} {stage}", flush=True)


def _redraw(context) -> None:
    for area in context.screen.areas if context.screen else []:
        if area.type in ("VIEW_3D", "PROPERTIES"):
            area.tag_redraw()


class LIPSYNC_OT_cancel(bpy.types.Operator):
    """Stop the running bake; nothing is changed"""

    bl_idname = "lipsync.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        context.scene.lipsync.cancel = True
        return {"FINISHED"}


class LIPSYNC_OT_bridge_start(bpy.types.Operator):
    """Start the lip-sync bridge with the command in the add-on's preferences"""

    bl_idname = "lipsync.bridge_start"
    bl_label = "Start Bridge"

    def execute(self, context):
        prefs = preferences(context)
        try:
            bridge_for(context).health()
            STATE["bridge"] = "running"
            self.report({"INFO"}, f"the bridge is already running at {prefs.url}")
            return {"FINISHED"}
        except client.BridgeError:
            pass
        try:
            STATE["process"] = client.start_bridge(prefs.command, prefs.url)
        except client.BridgeError as e:
            STATE["bridge"] = "down"
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        STATE["bridge"] = "running"
        self.report({"INFO"}, f"bridge started at {prefs.url}")
        return {"FINISHED"}


class LIPSYNC_OT_bridge_stop(bpy.types.Operator):
    """Stop the bridge this add-on started"""

    bl_idname = "lipsync.bridge_stop"
    bl_label = "Stop Bridge"

    @classmethod
    def poll(cls, context):
        if STATE["process"] is None:
            cls.poll_message_set("only a bridge started from Blender can be stopped here")
            return False
        return True

    def execute(self, context):
        stop_started_bridge()
        STATE["bridge"] = "stopped"
        return {"FINISHED"}


class LIPSYNC_OT_bridge_check(bpy.types.Operator):
    """Ask the bridge whether it is running"""

    bl_idname = "lipsync.bridge_check"
    bl_label = "Check Bridge"

    def execute(self, context):
        try:
            version = bridge_for(context).health()["version"]
        except client.BridgeError as e:
            STATE["bridge"] = "down"
            self.report({"WARNING"}, str(e))
            return {"CANCELLED"}
        STATE["bridge"] = f"running ({version})"
        return {"FINISHED"}


class LIPSYNC_OT_detect_rig(bpy.types.Operator):
    """Match the shape keys to mouth shapes (fills the Mapping list, which you can correct)"""

    bl_idname = "lipsync.detect_rig"
    bl_label = "Detect"
    bl_options = {"REGISTER", "UNDO"}

    poll = classmethod(_target_poll)

    def execute(self, context):
        obj, wanted = context.active_object, context.scene.lipsync.viseme_set
        try:
            found = bake.detect(obj, ensure_bridge(context), None if wanted == "AUTO" else wanted)
        except client.BridgeError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, found["message"])
        return {"FINISHED"}


class LIPSYNC_OT_save_mapping(bpy.types.Operator, ExportHelper):
    """Save the Mapping list as a rig preset (JSON, the format of the bridge's rigs/)"""

    bl_idname = "lipsync.save_mapping"
    bl_label = "Save Mapping"
    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    poll = classmethod(_target_poll)

    def execute(self, context):
        obj = context.active_object
        rig = obj.lipsync
        choice = mapping.chosen([(c.channel, c.shape_key) for c in rig.mapping])
        text = mapping.to_preset(
            Path(self.filepath).stem,
            f"{obj.name}'s mouth shapes",
            f"saved from Blender ({bpy.data.filepath or 'unsaved file'})",
            rig.viseme_set,
            choice,
        )
        Path(self.filepath).write_text(text, encoding="utf-8")
        self.report({"INFO"}, f"saved {len(choice)} channels to {self.filepath}")
        return {"FINISHED"}


class LIPSYNC_OT_load_mapping(bpy.types.Operator, ImportHelper):
    """Load a rig preset (JSON) into the Mapping list"""

    bl_idname = "lipsync.load_mapping"
    bl_label = "Load Mapping"
    bl_options = {"REGISTER", "UNDO"}
    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    poll = classmethod(_target_poll)

    def execute(self, context):
        try:
            viseme_set, keys = mapping.load_preset(self.filepath)
        except ValueError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        message = f"loaded from {Path(self.filepath).name}"
        bake.set_rows(context.active_object.lipsync, viseme_set, list(keys.items()), message)
        return {"FINISHED"}


classes = (
    LIPSYNC_OT_bake,
    LIPSYNC_OT_cancel,
    LIPSYNC_OT_bridge_start,
    LIPSYNC_OT_bridge_stop,
    LIPSYNC_OT_bridge_check,
    LIPSYNC_OT_detect_rig,
    LIPSYNC_OT_save_mapping,
    LIPSYNC_OT_load_mapping,
)
