"""Runs inside Blender with its UI (under Xvfb, with --enable-event-simulate): opens the Lip Sync
tab of the sidebar at its default width, bakes a typed line, transcribes a recording with the
Transcribe button, checks a video's sync with Check Sync, and screenshots the panel after each
and during the transcription; notes every measured text's room (fit.DRAWN), whether the rig's
list filled on selection, and where Shift Sound and its undo left the video's sound strip.

    blender --factory-startup --enable-event-simulate --python panel_session.py -- \
        ROOT BRIDGE_URL AUDIO VIDEO OUT_DIR
"""

import json
import sys
from pathlib import Path

import bpy

ROOT, URL, AUDIO, VIDEO, OUT = sys.argv[sys.argv.index("--") + 1 :]
sys.path.insert(0, ROOT)
import addon_utils  # noqa: E402

addon_utils.enable("blender_addon", default_set=True)
bpy.context.preferences.addons["blender_addon"].preferences.url = URL
fit = sys.modules["blender_addon.fit"]
report = {"version": bpy.app.version_string, "shots": {}}


def view3d():
    window = bpy.context.window_manager.windows[0]
    area = next(a for a in window.screen.areas if a.type == "VIEW_3D")
    return window, area, next(r for r in area.regions if r.type == "UI")


def press(window, kind: str, x: int, y: int) -> None:
    window.event_simulate("MOUSEMOVE", "NOTHING", x=x, y=y)
    window.event_simulate(kind, "PRESS", x=x, y=y)
    window.event_simulate(kind, "RELEASE", x=x, y=y)


def rig():
    bpy.ops.mesh.primitive_plane_add()
    head = bpy.context.object
    head.name = "Head"
    head.shape_key_add(name="Basis")
    for v in "sil pp ff th dd kk ch ss nn rr aa e ih oh ou".split():
        head.shape_key_add(name="vrc.v_" + v)
    return head


def open_tab():
    """Click down the sidebar's tab column until the Lip Sync panel draws."""
    window, area, ui = view3d()
    for y in range(ui.y + ui.height - 15, ui.y, -12):
        fit.DRAWN.clear()
        press(window, "LEFTMOUSE", ui.x + ui.width - 9, y)
        yield
        yield
        if fit.DRAWN:
            return
    raise RuntimeError("the Lip Sync tab was not found in the sidebar")


def shot(name: str):
    """Screenshot the 3D View, noting where the sidebar is and what the panel drew."""
    window, area, ui = view3d()
    for region in area.regions:
        region.tag_redraw()
    yield
    yield
    path = str(Path(OUT) / f"{name}.png")
    with bpy.context.temp_override(window=window, area=area):
        bpy.ops.screen.screenshot_area(filepath=path)
    report["shots"][name] = {
        "path": path,
        "sidebar": [ui.x - area.x, ui.width, area.height],
        "drawn": [list(d) for d in fit.DRAWN],
    }


def steps():
    window, area, ui = view3d()
    press(window, "ESC", 10, 10)  # the splash
    yield
    head = rig()
    area.spaces[0].show_region_ui = True
    yield
    report["mapping_on_selection"] = len(head.lipsync.mapping)  # before any Detect
    yield from open_tab()
    window, area, ui = view3d()
    report["sidebar_px"] = ui.width
    report["scale"] = fit.scale()
    old = "Bridge: running (0.1.0)"  # the old status label, in a third of its row
    report["old_status"] = [fit.need(old, icon=True), fit.panel_px(ui.width) / 3]
    with bpy.context.temp_override(window=window, area=area, region=ui):
        bpy.ops.lipsync.bridge_check()
        settings = bpy.context.scene.lipsync
        settings.show_advanced = True  # the Advanced fold open: its sliders are measured too
        settings.source, settings.text = "TEXT", "Bob put the big blue map back in the box."
        bpy.ops.lipsync.bake("INVOKE_DEFAULT")
    while settings.running:
        yield
    yield from shot("text")
    settings.source, settings.audio_path, settings.script = "AUDIO", AUDIO, ""
    with bpy.context.temp_override(window=window, area=area, region=ui):
        bpy.ops.lipsync.transcribe("INVOKE_DEFAULT")  # the Transcribe button
    while settings.running:
        if settings.stage not in ("", "starting") and "progress" not in report["shots"]:
            yield from shot("progress")
        yield
    report["transcript"] = settings.script
    yield from shot("audio")
    yield from check_and_shift(window, area, ui, settings)


def check_and_shift(window, area, ui, settings):
    """Check Sync on the video, then Shift Sound on its sound strip, then undo."""
    name = Path(VIDEO).stem
    compat = sys.modules["blender_addon.compat"]
    compat.add_sound_strip(bpy.context.scene, name, VIDEO, 1)  # as a bake of the video does
    settings.source, settings.video_path = "VIDEO", VIDEO
    with bpy.context.temp_override(window=window, area=area, region=ui):
        bpy.ops.lipsync.check_sync("INVOKE_DEFAULT")  # the Check Sync button
    while settings.running:
        yield
    report["sync_ms"], report["fps"] = settings.sync_ms, bpy.context.scene.render.fps
    yield from shot("video")
    with bpy.context.temp_override(window=window, area=area, region=ui):
        bpy.ops.lipsync.shift_sound("INVOKE_DEFAULT", True)  # the button: an undo step
        report["shifted"] = compat.strips(bpy.context.scene)[name].frame_start
        bpy.ops.ed.undo()
    report["after_undo"] = compat.strips(bpy.context.scene)[name].frame_start


def tick(state=steps()):
    try:
        next(state)
        return 0.1
    except Exception as e:  # StopIteration ends the session too
        if not isinstance(e, StopIteration):
            report["error"] = repr(e)
        with open(Path(OUT) / "report.json", "w") as f:
            json.dump(report, f)
        bpy.ops.wm.quit_blender()
        return None


bpy.app.timers.register(tick, first_interval=1.0)
