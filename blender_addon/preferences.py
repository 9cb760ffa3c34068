"""Where the bridge is, and how the add-on may start it."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, StringProperty

from .client import DEFAULT_URL


class LipsyncPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    url: StringProperty(name="Bridge URL", default=DEFAULT_URL)
    token: StringProperty(name="Token", subtype="PASSWORD", description="when the bridge has one")
    command: StringProperty(
        name="Start Command",
        default="lipsync serve",
        description="how to start the bridge (full path if it is not on PATH), e.g. "
        "/home/me/lipsync/.venv/bin/lipsync serve",
    )
    autostart: BoolProperty(name="Start When Needed", default=True)

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "url")
        col.prop(self, "token")
        col.prop(self, "command")
        col.prop(self, "autostart")


def preferences(context=None):
    """The add-on's preferences, or defaults when it is not registered as an add-on (tests,
    `blender -b -P batch.py`)."""
    addon = (context or bpy.context).preferences.addons.get(__package__)
    if addon is not None:
        return addon.preferences
    return _Defaults()


class _Defaults:
    url, token, command, autostart = DEFAULT_URL, "", "lipsync serve", True
