"""The installable zips: built by one command, installed the way users install them (an
extension in Blender 5.0, a legacy add-on in Blender 3.4), and the add-on's imports."""

import ast
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

ADDON = ROOT / "blender_addon"
ALLOWED = {"bpy", "bpy_extras", "addon_utils", "bmesh", "blf", "mathutils"}  # Blender's own modules

INSTALL_EXTENSION = """
import bpy, sys
bpy.ops.extensions.package_install_files(filepath=sys.argv[-1], repo="user_default",
                                         enable_on_install=True)
print("ENABLED", "bl_ext.user_default.lipsync" in bpy.context.preferences.addons.keys())
print("OPERATOR", bpy.ops.lipsync.bake.get_rna_type().name)
"""
INSTALL_LEGACY = """
import addon_utils, bpy, sys
bpy.ops.preferences.addon_install(filepath=sys.argv[-1])
addon_utils.enable("lipsync", default_set=True)
print("ENABLED", "lipsync" in bpy.context.preferences.addons.keys())
print("OPERATOR", bpy.ops.lipsync.bake.get_rna_type().name)
"""


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(ADDON / "build.py"), "--out", str(out)], check=True)
    return out / "lipsync-0.1.0.zip", out / "lipsync-0.1.0-legacy.zip"


def isolated(tmp_path) -> dict:
    """Blender's user folders in tmp_path: installing must not touch the real ones."""
    return os.environ | {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}


def test_the_zips_hold_the_add_on_its_presets_and_a_valid_manifest(zips):
    extension, legacy = zips
    inside = zipfile.ZipFile(extension).namelist()
    assert {"blender_manifest.toml", "__init__.py", "batch.py", "rigs/vrchat.json"} <= set(inside)
    assert {"client.py", "frames.py", "request.py", "timeline.py", "mapping.py"} <= set(inside)
    assert {"options.py", "options.json"} <= set(inside) and "build.py" not in inside
    assert {"lipsync/options.json", "lipsync/options.py"} <= set(zipfile.ZipFile(legacy).namelist())
    assert not any("__pycache__" in n for n in inside)
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    manifest = tomllib.loads(zipfile.ZipFile(extension).read("blender_manifest.toml").decode())
    assert manifest["id"] == "lipsync" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0" and len(manifest["tagline"]) <= 64
    assert all(n.startswith("lipsync/") for n in zipfile.ZipFile(legacy).namelist())


@pytest.mark.parametrize("which", ["extension", "legacy"])
def test_the_zips_carry_no_demo(zips, which):
    inside = zipfile.ZipFile(zips[which == "legacy"]).namelist()
    demo = [n for n in inside if any(w in n for w in ("demo", "contact_sheet", "mouth_shapes"))]
    assert demo == [] and len(inside) > 20


def test_the_extension_installs_and_enables_in_blender_5(zips, tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.argv.append({str(zips[0])!r}); exec({INSTALL_EXTENSION!r})"],
        capture_output=True, text=True, timeout=120, env=isolated(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert "ENABLED True" in run.stdout and "OPERATOR Bake Lip Sync" in run.stdout, run.stderr


@pytest.mark.skipif(
    shutil.which("blender") is None, reason="needs Blender (apt-get install blender)"
)
def test_the_legacy_add_on_installs_and_enables_in_blender_3_4(zips, tmp_path):
    run = subprocess.run(
        ["blender", "-b", "--factory-startup", "--python-expr", INSTALL_LEGACY, "--", str(zips[1])],
        capture_output=True, text=True, timeout=120, env=isolated(tmp_path),
    )  # fmt: skip
    assert "ENABLED True" in run.stdout and "OPERATOR Bake Lip Sync" in run.stdout, run.stderr


def test_the_add_on_imports_only_blender_and_the_standard_library():
    for path in ADDON.rglob("*.py"):
        if path.name == "build.py" or "demo" in path.relative_to(ADDON).parts:
            continue  # not in the zips: --options imports bridge_server, the demo draws with PIL
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                ok = top in sys.stdlib_module_names or top in ALLOWED or top == "blender_addon"
                assert ok, f"{path.name} imports {name}"
