"""The Lip Sync tab in the 3D View's sidebar."""

from __future__ import annotations

import bpy

from . import compat
from .operators import STATE


class LIPSYNC_UL_mapping(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_property):
        key = context.active_object.data.shape_keys
        row = layout.row(align=True)
        row.label(text=item.channel)
        if key is not None:
            row.prop_search(item, "shape_key", key, "key_blocks", text="")
        else:
            row.prop(item, "shape_key", text="")


class LIPSYNC_PT_panel(bpy.types.Panel):
    bl_label = "Lip Sync"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Lip Sync"

    def draw(self, context):
        layout, settings = self.layout, context.scene.lipsync
        self._bridge(layout)
        self._source(layout.box(), context, settings)
        self._target(layout.box(), context)
        if settings.running:
            self._progress(layout, settings)
        else:
            layout.operator("lipsync.bake", icon="PLAY")

    def _bridge(self, layout) -> None:
        row = layout.row(align=True)
        row.label(text=f"Bridge: {STATE['bridge']}", icon="LINKED")
        row.operator("lipsync.bridge_check", text="", icon="FILE_REFRESH")
        if STATE["process"] is None:
            row.operator("lipsync.bridge_start", text="Start")
        else:
            row.operator("lipsync.bridge_stop", text="Stop")

    def _source(self, box, context, settings) -> None:
        box.prop(settings, "source")
        source = settings.source
        if source == "AUDIO":
            box.prop(settings, "audio_path")
        elif source in ("VIDEO", "LIPS"):
            box.prop(settings, "video_path")
            if source == "VIDEO":
                box.prop(settings, "video_weight", slider=True)
            box.prop(settings, "show_video")
        elif source == "STRIP":
            editor = context.scene.sequence_editor
            if editor is None:
                box.label(text="the sequencer has no strips", icon="INFO")
            else:
                box.prop_search(settings, "strip", editor, compat.STRIPS_ATTR)
        if source == "TEXT":
            box.prop(settings, "text")
            row = box.row(align=True)
            row.prop(settings, "voice_engine", text="")
            row.prop(settings, "voice", text="")
        else:
            box.prop(settings, "script")
            row = box.row(align=True)
            row.prop(settings, "engine", text="")
        row.prop(settings, "lang", text="")
        col = box.column(align=True)
        col.prop(settings, "intensity", slider=True)
        col.prop(settings, "smoothing", slider=True)
        row = box.row(align=True)
        row.prop(settings, "holds")
        row.prop(settings, "frame_offset")
        if source != "STRIP":
            box.prop(settings, "add_strip")

    def _target(self, box, context) -> None:
        obj = context.active_object
        if obj is None or obj.type != "MESH":
            box.label(text="select the character's mesh", icon="ERROR")
            return
        rig = obj.lipsync
        row = box.row(align=True)
        row.label(text=f"{obj.name}: {rig.viseme_set or 'not detected'}", icon="SHAPEKEY_DATA")
        row.prop(context.scene.lipsync, "viseme_set", text="")
        row.operator("lipsync.detect_rig", text="", icon="VIEWZOOM")
        if rig.message:
            box.label(text=rig.message)
        box.template_list("LIPSYNC_UL_mapping", "", rig, "mapping", rig, "active", rows=4)
        row = box.row(align=True)
        row.operator("lipsync.load_mapping", text="Load", icon="IMPORT")
        row.operator("lipsync.save_mapping", text="Save", icon="EXPORT")

    def _progress(self, layout, settings) -> None:
        row = layout.row(align=True)
        text = f"{settings.stage} {settings.progress:.0%}"
        if hasattr(row, "progress"):  # Blender 4.0+
            row.progress(factor=settings.progress, type="BAR", text=text)
        else:
            row.prop(settings, "progress", text=settings.stage, slider=True)
        row.operator("lipsync.cancel", text="", icon="X")


classes = (LIPSYNC_UL_mapping, LIPSYNC_PT_panel)
