"""The Lip Sync tab in the 3D View's sidebar: legible at the sidebar's default width (labels
above or beside fields in a column sized to them, messages wrapped, short status words with
the details in tooltips; fit.py measures the texts)."""

from __future__ import annotations

import bpy

from . import compat, dialogue, fit, request, sync, targets
from .operators import STATE

# the bridge's status as a word on the Check button (its tooltip has the details)
BRIDGE_WORDS = {"running": ("Bridge on", "LINKED"), "down": ("Bridge off", "UNLINKED"),
                "stopped": ("Bridge off", "UNLINKED")}  # fmt: skip
UNCHECKED = ("Bridge ?", "QUESTION")
# the labels beside fields: their column is as wide as the longest
FIELD_LABELS = ("Audio", "Video", "Strip", "Script", "Text", "Voice", "Name", "Engine", "Language")
LIST_PX = 30  # the list's scroll bar and grip, beside its rows
MENU_PX = 16  # a menu's arrow
SEARCH_PX = 40  # a search field's icon and its clear button
PAD_PX = 10  # a slider's room between its name and its value
ADVANCED = "Advanced"


def slider_text(data, name: str) -> str:
    """What a slider shows: its name and its value (at the property's precision)."""
    prop = data.bl_rna.properties[name]
    return f"{prop.name} {getattr(data, name):.{prop.precision}f}"


class LIPSYNC_UL_mapping(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_property):
        names, collection = targets.search(context.active_object)  # shape keys, actions, layers
        row, width = layout.row(align=True), fit.box_px(context.region.width)
        width -= LIST_PX * fit.scale()
        share = fit.column_share([c.channel for c in data.mapping], width, 0.3)
        if item.shape_key != item.channel:  # a name that is the channel's says it itself
            row = row.split(factor=share, align=True)
            fit.label(row, item.channel, share * width)
            width *= 1 - share
        fit.DRAWN.append(
            (item.shape_key, fit.need(item.shape_key) + SEARCH_PX * fit.scale(), width)
        )
        if names is not None:
            row.prop_search(item, "shape_key", names, collection, text="")
        else:
            row.prop(item, "shape_key", text="")


class LIPSYNC_PT_panel(bpy.types.Panel):
    bl_label = "Lip Sync"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Lip Sync"

    def draw(self, context):
        layout, settings = self.layout, context.scene.lipsync
        fit.DRAWN.clear()
        self.width = fit.box_px(context.region.width)
        self.share = fit.column_share(list(FIELD_LABELS), self.width)
        self._bridge(layout, fit.panel_px(context.region.width))
        self._source(layout.box(), context, settings)
        self._target(layout.box(), context)
        self._said(layout, context)
        if settings.running:
            self._progress(layout, settings)
        else:
            layout.operator("lipsync.bake", icon="PLAY")

    def _bridge(self, layout, width) -> None:
        split = layout.split(factor=0.6, align=True)
        status = STATE["bridge"].split(" (")[0]
        word, icon = BRIDGE_WORDS.get(status, UNCHECKED)
        fit.DRAWN.append((word, fit.need(word, icon=True), 0.6 * width))  # a button, measured
        split.operator("lipsync.bridge_check", text=word, icon=icon)
        if STATE["process"] is None:
            split.operator("lipsync.bridge_start", text="Start")
        else:
            split.operator("lipsync.bridge_stop", text="Stop")

    def _field(self, layout, data, name: str, text: str, search=None) -> None:
        """A field with its label beside it, in the label column."""
        split = layout.split(factor=self.share, align=True)
        fit.label(split, text, self.share * self.width)
        if search:
            split.prop_search(data, name, *search, text="")
        else:
            split.prop(data, name, text="")
            self._menu(data, name, (1 - self.share) * self.width)

    def _menu(self, data, name: str, width: float) -> None:
        """Note a menu's shown choice with the room it has (text fields clip as they should)."""
        prop = data.bl_rna.properties[name]
        if prop.type == "ENUM":
            item = prop.enum_items[getattr(data, name)]
            icon = item.icon != "NONE"
            fit.DRAWN.append((item.name, fit.need(item.name, icon) + MENU_PX * fit.scale(), width))

    def _above(self, layout, data, name: str, text: str):
        """A field with its label above it, the whole width; returns the field's row."""
        col = layout.column(align=True)
        fit.label(col, text, self.width)
        row = col.row(align=True)
        row.prop(data, name, text="")
        return row

    def _source(self, box, context, settings) -> None:
        self._above(box, settings, "source", "Source")
        self._menu(settings, "source", self.width)
        source = settings.source
        if source == "AUDIO":
            self._field(box, settings, "audio_path", "Audio")
        elif source in ("VIDEO", "LIPS"):
            self._field(box, settings, "video_path", "Video")
            if source == "VIDEO":
                box.prop(settings, "video_weight", slider=True)
            box.prop(settings, "show_video")
            self._sync(box, context, settings)
        elif source == "STRIP":
            editor = context.scene.sequence_editor
            if editor is None:
                fit.label(box, "no sound strips", self.width, icon="INFO")
            else:
                self._field(box, settings, "strip", "Strip", (editor, compat.STRIPS_ATTR))
        if source == "TEXT":
            self._field(box, settings, "text", "Text")
            self._field(box, settings, "voice_engine", "Voice")
            self._field(box, settings, "voice", "Name")
        else:
            self._field(box, settings, "script", "Script")
            if source != "LIPS":
                box.operator("lipsync.transcribe", icon="REC")
            self._field(box, settings, "engine", "Engine")
        self._field(box, settings, "lang", "Language")
        self._animation(box, settings, source)

    def _animation(self, box, settings, source: str) -> None:
        """How the mouth moves; the lead and the keyframe reduction folded under Advanced."""
        col = box.column(align=True)
        for name in ("intensity", "smoothing"):
            self._slider(col, settings, name)
        self._field(box, settings, "motion", "Motion")
        row = box.row(align=True)
        row.prop(settings, "holds")
        row.prop(settings, "frame_offset")
        if source != "STRIP":
            box.prop(settings, "add_strip")
        shown = settings.show_advanced
        fit.DRAWN.append((ADVANCED, fit.need(ADVANCED, icon=True), self.width))
        row = box.row()
        row.alignment = "LEFT"  # a fold's heading, not a centred button
        row.prop(settings, "show_advanced", text=ADVANCED, emboss=False,
                 icon="TRIA_DOWN" if shown else "TRIA_RIGHT")  # fmt: skip
        if shown:
            col = box.column(align=True)
            for name in ("lead", "max_error"):
                self._slider(col, settings, name)
            box.prop(settings, "rhubarb_rules")  # Rhubarb's set only: its cues as Rhubarb draws

    def _sync(self, box, context, settings) -> None:
        """Check Sync, then its result in words and Shift Sound."""
        self._button(box, "lipsync.check_sync", "Check Sync", "UV_SYNC_SELECT")
        if not sync.checked(settings):
            return
        words, _ = sync.result(context.scene, settings)
        icon = "QUESTION" if settings.sync_reason else "NONE"
        if not settings.sync_reason and not fit.fits(words, self.width):
            words = words.replace(" (", "\n(", 1)  # "(3 frames)" whole on the next line
        self._lines(box, words, icon)
        self._button(box, "lipsync.shift_sound", "Shift Sound", "SEQUENCE")

    def _button(self, layout, operator: str, text: str, icon: str) -> None:
        """An operator's button the whole width, noted with its room."""
        fit.DRAWN.append((text, fit.need(text, icon=True), self.width))
        layout.operator(operator, text=text, icon=icon)

    def _slider(self, layout, data, name: str) -> None:
        """A slider, its name and value inside it, noted with the room it has."""
        text = slider_text(data, name)
        fit.DRAWN.append((text, fit.need(text) + PAD_PX * fit.scale(), self.width))
        layout.prop(data, name, slider=True)

    def _target(self, box, context) -> None:
        obj = context.active_object
        if targets.problem(obj):
            self._lines(box, "select the character's mesh, armature or 2D mouth", "ERROR")
            return
        rig = obj.lipsync
        if obj.type == "ARMATURE":
            box.prop_search(rig, "jaw_bone", obj.data, "bones")
            row = box.row(align=True)
            row.prop(rig, "jaw_axis", expand=True)
            row.prop(rig, "jaw_angle")
        row = self._above(box, context.scene.lipsync, "viseme_set", "Visemes")
        row.operator("lipsync.detect_rig", text="", icon="VIEWZOOM")
        self._menu(context.scene.lipsync, "viseme_set", self.width - fit.ICON_PX * fit.scale())
        self._lines(box, rig.message or f"{obj.name}: press Detect (the lens)")
        box.template_list("LIPSYNC_UL_mapping", "", rig, "mapping", rig, "active", rows=4)
        row = box.row(align=True)
        row.operator("lipsync.load_mapping", text="Load", icon="IMPORT")
        row.operator("lipsync.save_mapping", text="Save", icon="EXPORT")

    def _said(self, layout, context) -> None:
        """What the active object's current line says (kept on its action by the bake)."""
        obj = context.active_object
        block = targets.animated(obj) if obj is not None and not targets.problem(obj) else None
        text, words = dialogue.of(compat.assigned_action(block) if block else None)
        if not text:
            return
        box = layout.box()
        fit.label(box, f"Said ({len(words)} words timed)", self.width, icon="TEXT")
        self._lines(box, text)

    def _lines(self, layout, text: str, icon: str = "NONE") -> None:
        """A message wrapped to the width (its line breaks kept), the icon before its first line."""
        col = layout.column(align=True)
        room = self.width - (fit.ICON_PX * fit.scale() if icon != "NONE" else 0)
        lines = [line for part in text.split("\n") for line in fit.wrap(part, room)]
        for i, line in enumerate(lines):
            fit.label(col, line, self.width, icon if i == 0 else "NONE")

    def _progress(self, layout, settings) -> None:
        row = layout.row(align=True)
        word = request.stage_word(settings.stage)
        if hasattr(row, "progress"):  # Blender 4.0+
            row.progress(
                factor=settings.progress, type="BAR", text=f"{word} {settings.progress:.0%}"
            )
        else:
            row.prop(settings, "percent", text=word, slider=True)
        row.operator("lipsync.cancel", text="", icon="X")


classes = (LIPSYNC_UL_mapping, LIPSYNC_PT_panel)
