"""Lip Sync: one-button lip sync onto shape keys, from audio, a sound strip, text or a
reference video, through the local lip-sync bridge (`lipsync serve`).

Imports only bpy and the standard library. Installs as a Blender 4.2+ extension
(blender_manifest.toml) and as a legacy add-on (bl_info) for Blender 3.4 to 4.1. The bpy-free
parts (client, frames, request, timeline, mapping) import without Blender, for plain tests.
"""

import bpy

from . import operators, panels, preferences, properties, sync

bl_info = {
    "name": "Lip Sync",
    "author": "lipsync-bridge developers",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "3D View > Sidebar > Lip Sync",
    "description": "One-button lip sync onto shape keys from audio, text or video",
    "doc_url": "https://github.com/lipsync-bridge/lipsync-bridge",
    "category": "Animation",
}

classes = (
    preferences.LipsyncPreferences,
    *operators.classes,
    *sync.classes,
    *panels.classes,
)


def register() -> None:
    properties.register()
    for cls in classes:
        bpy.utils.register_class(cls)
    operators.register()  # fills the Mapping list on selection from the shipped presets


def unregister() -> None:
    operators.unregister()
    operators.stop_started_bridge()  # it stops what it started
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    properties.unregister()
