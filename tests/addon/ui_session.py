"""Runs inside Blender with its UI (under Xvfb): presses Bake the way a user does (the modal
operator, its worker thread and progress), undoes it, then bakes a long line and cancels it.

    blender --factory-startup --python ui_session.py -- ROOT BRIDGE_URL LONG_AUDIO OUT.json
"""

import json
import sys

import bpy

ROOT, URL, LONG, OUT = sys.argv[sys.argv.index("--") + 1 :]
sys.path.insert(0, ROOT)
import addon_utils  # noqa: E402

addon_utils.enable("blender_addon", default_set=True)
bpy.context.preferences.addons["blender_addon"].preferences.url = URL

report = {"progress": [], "steps": []}


def rig():
    bpy.ops.mesh.primitive_plane_add()
    head = bpy.context.object
    head.name = "Head"
    head.shape_key_add(name="Basis")
    for v in "sil pp ff th dd kk ch ss nn rr aa e ih oh ou".split():
        head.shape_key_add(name="vrc.v_" + v)
    return head


def context():
    window = bpy.context.window_manager.windows[0]
    area = next(a for a in window.screen.areas if a.type == "VIEW_3D")
    region = next(r for r in area.regions if r.type == "WINDOW")
    return bpy.context.temp_override(window=window, area=area, region=region)


def action():
    key = bpy.data.objects["Head"].data.shape_keys
    return (
        key.animation_data.action.name if key.animation_data and key.animation_data.action else None
    )


def steps():
    settings = bpy.context.scene.lipsync
    yield  # let the window settle
    with context():
        bpy.ops.ed.undo_push(message="before the bake")
        settings.source, settings.text = "TEXT", "Bob put the big blue map back in the box."
        report["invoke"] = list(bpy.ops.lipsync.bake("INVOKE_DEFAULT"))
    while settings.running:
        report["progress"].append(round(settings.progress, 3))
        yield
    report["baked"] = action()
    with context():
        bpy.ops.ed.undo()
    report["after_undo"] = action()
    with context():
        settings = bpy.context.scene.lipsync  # undo replaced the scene's data
        settings.source, settings.audio_path = "AUDIO", LONG  # no script: Whisper, seconds
        bpy.ops.lipsync.bake("INVOKE_DEFAULT")
    for _ in range(5):
        yield
    report["running_before_cancel"] = settings.running
    settings.cancel = True  # the panel's Cancel button
    while settings.running:
        yield
    report["after_cancel"] = action()
    report["actions"] = sorted(a.name for a in bpy.data.actions)
    report["strips"] = (
        len(bpy.context.scene.sequence_editor.sequences_all)
        if bpy.context.scene.sequence_editor
        else 0
    )


def tick(state=steps()):
    try:
        next(state)
        return 0.1
    except Exception as e:  # StopIteration ends the session too
        if not isinstance(e, StopIteration):
            report["error"] = repr(e)
        with open(OUT, "w") as f:
            json.dump(report, f)
        bpy.ops.wm.quit_blender()
        return None


rig()
bpy.app.timers.register(tick, first_interval=1.0)
