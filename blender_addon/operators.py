"""Operators: bake and transcribe (modal in the UI, synchronous in background mode), cancel,
the bridge's install/start/stop/check, rig detection and the mapping's save/load."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import bake, client, compat, dialogue, install, mapping, request, targets
from .preferences import preferences

TICK_S = 0.1
# what the add-on started, the bridge's last status and the last install's outcome
STATE = {"process": None, "bridge": "not checked", "install": ""}


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
    problem = targets.problem(context.active_object)  # shape keys, an armature or a 2D mouth
    if problem:
        cls.poll_message_set(problem)
    return not problem


class BridgeJob:
    """The modal part of Bake, Transcribe and Install Bridge: `work(on_progress, cancelled)`
    runs in a worker thread (no bpy), `finish(context, value)` on the main thread."""

    def start(self, context, work):
        self.messages, self.stop = queue.Queue(), threading.Event()
        self.worker = threading.Thread(target=self._run, args=(work,), daemon=True)
        self.worker.start()
        settings = context.scene.lipsync
        settings.running, settings.cancel, settings.progress = True, False, 0.0
        settings.stage = "starting"
        wm = context.window_manager
        self.timer = wm.event_timer_add(TICK_S, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _run(self, work) -> None:
        """In the worker thread: every result goes to the queue."""
        try:
            progress = lambda p, s: self.messages.put(("progress", (p, s)))  # noqa: E731
            self.messages.put(("done", work(progress, self.stop.is_set)))
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
            level = "WARNING" if isinstance(value, client.Cancelled) else "ERROR"
            self.report({level}, request.panel_words(str(value)))
            return {"CANCELLED"}
        return self.finish(context, value)

    def warn(self, warnings) -> None:
        for warning in warnings:
            self.report({"WARNING"}, request.panel_words(warning))


class BridgeCall(BridgeJob):
    """An operator that sends one file to the bridge and shows the answer (Transcribe, Check
    Sync): `call(bridge, line, on_progress, cancelled)` from request, `_line(context)` ->
    (bridge, request.Request); in the background (`blender -b`) it waits on this thread.
    It runs for the `sources` it names, and says `refused` for the others."""

    sources: tuple[str, ...] = ()
    refused = ""

    @classmethod
    def poll(cls, context):
        settings = context.scene.lipsync
        if settings.running:
            cls.poll_message_set("a bake is running")
            return False
        if settings.source not in cls.sources:
            cls.poll_message_set(cls.refused)
            return False
        return True

    def execute(self, context):
        try:
            bridge, line = self._line(context)
            return self.finish(context, self.call(bridge, line, _print_progress))
        except (request.BakeError, client.BridgeError) as e:
            self.report({"ERROR"}, request.panel_words(str(e)))
            return {"CANCELLED"}

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        try:
            bridge, line = self._line(context)
        except (request.BakeError, client.BridgeError) as e:
            self.report({"ERROR"}, request.panel_words(str(e)))
            return {"CANCELLED"}
        return self.start(context, lambda p, c: self.call(bridge, line, p, c))


class LIPSYNC_OT_bake(BridgeJob, bpy.types.Operator):
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
            self.request = bake.prepare(scene, obj, scene.lipsync, bridge)
            fetched = request.fetch(bridge, self.request, _print_progress)
        except (request.BakeError, client.BridgeError, ValueError) as e:
            self.report({"ERROR"}, request.panel_words(str(e)))
            return {"CANCELLED"}
        self.target = obj.name
        return self.finish(context, fetched)

    def invoke(self, context, event):
        if bpy.app.background:  # no event loop: timers and modal handlers never fire
            return self.execute(context)
        scene, obj = context.scene, context.active_object
        try:
            bridge = ensure_bridge(context)
            self.request = bake.prepare(scene, obj, scene.lipsync, bridge)
        except (request.BakeError, client.BridgeError, ValueError) as e:
            self.report({"ERROR"}, request.panel_words(str(e)))
            return {"CANCELLED"}
        self.target = obj.name  # the active object may change while the bridge works
        line = self.request
        return self.start(context, lambda p, c: request.fetch(bridge, line, p, c))

    def finish(self, context, fetched):
        """On the main thread: key the line, and keep what it says on its action."""
        try:
            obj = context.scene.objects.get(self.target)
            written = bake.apply(context.scene, obj, self.request, fetched)
        except (request.BakeError, ValueError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        dialogue.keep(written.action, fetched.timeline, self.request.fields.get("text", ""))
        self.warn(fetched.warnings)
        self._done(written)
        return {"FINISHED"}

    def _done(self, written) -> None:
        self.report({"INFO"}, written.summary())


def _print_progress(fraction: float, stage: str) -> None:
    print(f"lipsync: {fraction:4.0%} {stage}", flush=True)


def _redraw(context) -> None:
    for area in context.screen.areas if context.screen else []:
        if area.type in ("VIEW_3D", "PROPERTIES", "PREFERENCES"):
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

    @classmethod
    def description(cls, context, properties):
        return f"The bridge at {preferences(context).url}: {STATE['bridge']}. Click to check again"

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
        visemes = None if wanted == "AUTO" else wanted
        try:
            found = bake.detect(obj, ensure_bridge(context), visemes)
        except client.BridgeError as e:
            found = match_locally(obj, visemes)  # the bridge is down: the shipped presets
            if found is None:
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


class LIPSYNC_OT_transcribe(BridgeCall, bpy.types.Operator):
    """Recognise what the recording says and put it in the Script field, to correct before
    baking (the bridge's Whisper)"""

    bl_idname = "lipsync.transcribe"
    bl_label = "Transcribe"
    bl_options = {"REGISTER", "UNDO"}

    sources = ("AUDIO", "STRIP", "VIDEO")
    refused = "only a recording, a sound strip or a video can be transcribed"
    call = staticmethod(request.transcribe)

    def _line(self, context):
        settings = context.scene.lipsync
        filename, data = sound_of(context.scene, settings)
        return ensure_bridge(context), request.for_transcript(filename, data, settings)

    def finish(self, context, value):
        text, warnings = value
        context.scene.lipsync.script = text
        self.warn(warnings)
        self.report({"INFO"}, f"transcribed: {text}")
        return {"FINISHED"}


def sound_of(scene, settings) -> tuple[str, bytes]:
    """(file name, bytes) of the chosen recording, video or sound strip."""
    if settings.source == "STRIP":
        strip = next((s for s in compat.strips(scene) if s.name == settings.strip), None)
        if strip is None or strip.type != "SOUND":
            raise request.BakeError(f"no sound strip named {settings.strip!r}; pick one.")
        sound = strip.sound
        if sound.packed_file is not None:
            return Path(sound.filepath).name, bytes(sound.packed_file.data)
        path = bpy.path.abspath(sound.filepath, library=sound.library)
    else:
        path = settings.video_path if settings.source == "VIDEO" else settings.audio_path
        path = bpy.path.abspath(path) if path.strip() else ""
    if not path:
        raise request.BakeError("choose the recording to transcribe.")
    return Path(path).name, request.read(path)


class LIPSYNC_OT_install_bridge(BridgeJob, bpy.types.Operator):
    """Make a Python environment in the chosen folder, install the bridge into it and set the
    Start Command (uv if it is on PATH, else Python's venv and pip)"""

    bl_idname = "lipsync.install_bridge"
    bl_label = "Install Bridge"

    def execute(self, context):
        try:
            return self.finish(context, self._install(context)(None, None))
        except install.InstallError as e:
            return self._failed(str(e))

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        STATE["install"] = "installing..."
        return self.start(context, self._install(context))

    def _install(self, context):
        prefs = preferences(context)
        folder, source, python = bpy.path.abspath(prefs.install_dir), prefs.source, prefs.python
        return lambda p, c: install.install(folder, source, python, on_step=p)

    def finish(self, context, command):
        preferences(context).command = command
        STATE["install"] = "installed: the first bake starts it"
        self.report({"INFO"}, f"bridge installed; Start Command: {command}")
        return {"FINISHED"}

    def _failed(self, message: str):
        STATE["install"] = message
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

    def _finish(self, context, kind, value):
        if kind == "error":
            STATE["install"] = str(value)
        return super()._finish(context, kind, value)


def presets() -> list[dict]:
    """The shipped rig presets, read once."""
    if "presets" not in STATE:
        STATE["presets"] = mapping.shipped_presets()
    return STATE["presets"]


def match_locally(obj, visemes: str | None = None):
    """Fill the Mapping list from a shipped preset whose names the object has; None if none."""
    found = mapping.local_match(bake.shape_key_names(obj), presets(), visemes)
    if found is not None:
        bake.set_rows(obj.lipsync, found["viseme_set"], mapping.rows(found), found["message"])
    return found


@bpy.app.handlers.persistent
def fill_mapping(scene, depsgraph=None) -> None:
    """On selection (any depsgraph update): an empty Mapping list of the active object is filled
    from the shipped presets, without the bridge (cheap: a set lookup per preset name)."""
    obj = getattr(bpy.context, "active_object", None)
    if obj is None or obj.library is not None or targets.problem(obj) or obj.lipsync.mapping:
        return
    if bake.shape_key_names(obj):
        match_locally(obj)


def register() -> None:
    if fill_mapping not in bpy.app.handlers.depsgraph_update_post:
        bpy.app.handlers.depsgraph_update_post.append(fill_mapping)


def unregister() -> None:
    if fill_mapping in bpy.app.handlers.depsgraph_update_post:
        bpy.app.handlers.depsgraph_update_post.remove(fill_mapping)


classes = (
    LIPSYNC_OT_bake,
    LIPSYNC_OT_transcribe,
    LIPSYNC_OT_install_bridge,
    LIPSYNC_OT_cancel,
    LIPSYNC_OT_bridge_start,
    LIPSYNC_OT_bridge_stop,
    LIPSYNC_OT_bridge_check,
    LIPSYNC_OT_detect_rig,
    LIPSYNC_OT_save_mapping,
    LIPSYNC_OT_load_mapping,
)
