"""Where the bridge is, how the add-on may start it, and where Install Bridge puts it."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, StringProperty

from .client import DEFAULT_URL
from .install import DEFAULT_SOURCE

INSTALL_DIR = str(Path.home() / "lipsync-bridge")


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
    install_dir: StringProperty(
        name="Folder", subtype="DIR_PATH", default=INSTALL_DIR,
        description="where Install Bridge makes the bridge's Python environment",
    )  # fmt: skip
    source: StringProperty(
        name="Install From", default=DEFAULT_SOURCE,
        description="the package name, a wheel file, or the lipsync-bridge folder "
        "(e.g. /home/me/lipsync[all])",
    )  # fmt: skip
    python: StringProperty(
        name="Python", subtype="FILE_PATH",
        description="the Python 3.10+ to build it on; empty: uv's choice, or python3",
    )  # fmt: skip

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "url")
        col.prop(self, "token")
        col.prop(self, "command")
        col.prop(self, "autostart")
        self._install(self.layout.box())

    def _install(self, box) -> None:
        from .operators import STATE  # operators imports this module

        box.label(text="Install the bridge here (fills Start Command)", icon="IMPORT")
        for name in ("install_dir", "source", "python"):
            box.prop(self, name)
        box.operator("lipsync.install_bridge", icon="IMPORT")
        if STATE["install"]:
            box.label(text=STATE["install"], icon="INFO")


def preferences(context=None):
    """The add-on's preferences, or defaults when it is not registered as an add-on (tests,
    `blender -b -P batch.py`)."""
    addon = (context or bpy.context).preferences.addons.get(__package__)
    if addon is not None:
        return addon.preferences
    return _Defaults()


class _Defaults:
    url, token, command, autostart = DEFAULT_URL, "", "lipsync serve", True
    install_dir, source, python = INSTALL_DIR, DEFAULT_SOURCE, ""
