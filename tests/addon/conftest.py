"""The add-on in the bpy module (Blender 5.0.1 as a Python module), with a real bridge
running in its own process. Each test starts from an empty scene; the add-on stays enabled."""

import sys

import pytest

from tests.conftest import ROOT

bpy = pytest.importorskip("bpy", reason="the add-on tests need the bpy module (pip install bpy)")


@pytest.fixture
def scene(bridge_url):
    """An empty scene; the add-on enabled, its preferences pointing at the test bridge."""
    import addon_utils

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    bpy.ops.wm.read_homefile(use_empty=True)
    if bpy.context.preferences.addons.get("blender_addon") is None:  # factory settings drop it
        addon_utils.enable("blender_addon", default_set=True)
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.url, prefs.autostart = bridge_url, False
    return bpy.context.scene


VRCHAT = "sil pp ff th dd kk ch ss nn rr aa e ih oh ou".split()


def make_rig(names: list[str], name: str = "Head"):
    """A mesh with a basis and one shape key per name, active and selected."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)], [], [(0, 1, 2, 3)])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    for key in names:
        obj.shape_key_add(name=key).data[2].co.z = 0.5
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return obj


@pytest.fixture
def head(scene):
    return make_rig([f"vrc.v_{v}" for v in VRCHAT])
