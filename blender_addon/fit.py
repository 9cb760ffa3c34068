"""Texts that fit the sidebar: measured with Blender's UI font at the UI scale, so the panel
can wrap a message or size a label column, and tests can check that no label is cut."""

from __future__ import annotations

import blf
import bpy

SIDEBAR_PX = 220  # the sidebar's default width at UI scale 1 (Blender's UI_SIDEBAR_PANEL_WIDTH)
TABS_PX = 20  # the tab column at the sidebar's edge
SIDES_PX = 34  # the panel's margins, both sides together
BOX_PX = 10  # a box's padding, both sides together
PAD_PX = 10  # the room a label keeps around its text
ICON_PX = 20  # an icon before a text
DRAWN: list[tuple[str, float, float]] = []  # (text, px needed, px given) of the last draw


def scale() -> float:
    """The UI scale (with the display's DPI; 0 in background mode, where the setting is used)."""
    prefs = bpy.context.preferences
    return prefs.system.ui_scale or prefs.view.ui_scale


def text_px(text: str) -> float:
    """The width of `text` in the UI's widget font."""
    points = bpy.context.preferences.ui_styles[0].widget.points
    if bpy.app.version >= (4, 0, 0):
        blf.size(0, points * scale())
    else:  # 3.x: size in points at a DPI
        blf.size(0, points, round(72 * scale()))
    return blf.dimensions(0, text)[0]


def need(text: str, icon: bool = False) -> float:
    return text_px(text) + (PAD_PX + (ICON_PX if icon else 0)) * scale()


def panel_px(region_width: float | None = None) -> float:
    """The width the panel's layout gets in a sidebar this wide (default: Blender's default)."""
    width = region_width if region_width and region_width > 1 else SIDEBAR_PX * scale()
    return width - (TABS_PX + SIDES_PX) * scale()


def box_px(region_width: float | None = None) -> float:
    return panel_px(region_width) - BOX_PX * scale()


def fits(text: str, slot_px: float, icon: bool = False) -> bool:
    return need(text, icon) <= slot_px + 0.01  # a column sized to its text: rounding


def wrap(text: str, slot_px: float, most: int = 4) -> list[str]:
    """`text` in lines that fit, at most `most` (the last ends in "..." when cut)."""
    lines: list[str] = []
    for word in text.split():
        if lines and fits(f"{lines[-1]} {word}", slot_px):
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] += " ..."
    return lines


def label(layout, text: str, slot_px: float, icon: str = "NONE") -> None:
    """A label, noted with the room it has (DRAWN) for the legibility checks."""
    DRAWN.append((text, need(text, icon != "NONE"), slot_px))
    layout.label(text=text, icon=icon)


def column_share(texts: list[str], width_px: float, most: float = 0.45) -> float:
    """The share of the width a label column needs for its longest text (at most `most`)."""
    return min(most, max(need(t) for t in texts) / width_px)
