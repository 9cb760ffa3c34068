"""A contact sheet: the scene's camera view at chosen frames, one labelled cell each, in one PNG.

Renders with Workbench (fast, and headless in background mode), puts each cell's label in the
render itself (a Text object in front of the camera), and composes the grid with
`bpy.data.images` and the standard library's `array` (Blender 3.4's Python has no numpy). Every
setting it touches is put back afterwards, the current frame included.
"""

from __future__ import annotations

import math
import tempfile
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

import bpy

BACKGROUND = (0.82, 0.85, 0.88)  # the world colour when the scene has no world
SEPARATOR = (0.35, 0.38, 0.42, 1.0)
LABEL_HEIGHT = 0.085  # text size, as a share of the view's height
BAR_HEIGHT = 0.12  # white bar behind the label
# Blender 3.4's built-in font has no IPA (ɑ ʊ ə ...); a system font with it is used where found.
IPA_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/segoeui.ttf",
)

# (path from the scene, value for the sheet); put back in this order (the look after its view
# transform, which may reset it)
SETTINGS = (
    ("render.engine", "BLENDER_WORKBENCH"),
    ("render.resolution_percentage", 100),
    ("render.film_transparent", False),
    ("render.use_border", False),
    ("render.use_stamp", False),
    ("render.use_compositing", False),
    ("render.use_sequencer", False),
    ("render.use_multiview", False),
    ("render.image_settings.file_format", "PNG"),
    ("render.image_settings.color_mode", "RGB"),
    ("render.image_settings.color_depth", "8"),
    ("display.shading.light", "STUDIO"),
    ("display.shading.color_type", "MATERIAL"),
    ("view_settings.view_transform", "Standard"),
    ("view_settings.look", "None"),
    ("view_settings.exposure", 0.0),
    ("view_settings.gamma", 1.0),
    ("render.resolution_x", None),  # the cell size
    ("render.resolution_y", None),
    ("render.filepath", None),
    ("world", None),
)


@dataclass
class Sheet:
    path: Path
    width: int
    height: int
    cells: int
    seconds_per_cell: float  # render and read back, per cell


def render_contact_sheet(scene, obj, cells, path, *, size=192, columns=6) -> Sheet:
    """Render `scene`'s camera view at each (frame, label) of `cells` (frames may be fractional)
    into a grid PNG at `path`: min(columns, len(cells)) cells across, as many rows as needed,
    each `size` pixels square, with its label along the bottom. `obj` (the head the camera
    frames) must be in the scene."""
    if not cells:
        raise ValueError("no cells to render")
    if scene.objects.get(obj.name) is not obj:
        raise ValueError(f"'{obj.name}' is not in scene '{scene.name}'")
    if scene.camera is None:
        raise ValueError("the scene has no camera: add one (demo.head.frame_head) first")
    path = Path(path)
    cols = min(columns, len(cells))
    rows = math.ceil(len(cells) / cols)
    saved = _save(scene)
    frame = (scene.frame_current, scene.frame_subframe)
    label = None
    try:
        _apply(scene, size)
        label = _Label(scene)
        started = time.perf_counter()
        sheet = array("f", (*BACKGROUND, 1.0)) * (cols * size * rows * size)
        with tempfile.TemporaryDirectory(prefix="lipsync-sheet-") as tmp:
            for n, (at, text) in enumerate(cells):
                label.set(text)
                pixels = _render(scene, at, Path(tmp) / "cell.png", size)
                _paste(sheet, pixels, size, cols * size, n % cols, rows - 1 - n // cols)
        seconds = (time.perf_counter() - started) / len(cells)
        _write_png(sheet, cols * size, rows * size, path)
    finally:
        if label is not None:
            label.remove()
        _restore(scene, saved)
        scene.frame_set(frame[0], subframe=frame[1])
    return Sheet(path, cols * size, rows * size, len(cells), seconds)


# -- settings --------------------------------------------------------------------------------


def _owner(scene, dotted: str):
    *parents, name = dotted.split(".")
    owner = scene
    for part in parents:
        owner = getattr(owner, part)
    return owner, name


def _save(scene) -> list:
    return [(dotted, getattr(*_owner(scene, dotted))) for dotted, _ in SETTINGS]


def _restore(scene, saved: list) -> None:
    for dotted, value in saved:
        owner, name = _owner(scene, dotted)
        if getattr(owner, name) != value:
            try:
                setattr(owner, name, value)
            except (TypeError, ValueError):  # e.g. a look this view transform no longer offers
                pass
    for world in [w for w in bpy.data.worlds if w.get("lipsync_sheet") and not w.users]:
        bpy.data.worlds.remove(world)


def _apply(scene, size: int) -> None:
    for dotted, value in SETTINGS:
        if value is not None:
            setattr(*_owner(scene, dotted), value)
    scene.render.resolution_x = scene.render.resolution_y = size
    if scene.world is None:  # no world: Workbench would render black
        world = bpy.data.worlds.new("LipsyncSheetBackground")
        world.color = BACKGROUND
        world["lipsync_sheet"] = True
        scene.world = world


# -- rendering and composing -----------------------------------------------------------------


def _render(scene, at: float, file: Path, size: int) -> array:
    """RGBA floats (rows from the bottom) of the camera view at frame `at`."""
    whole = math.floor(at)
    scene.frame_set(int(whole), subframe=at - whole)
    scene.render.filepath = str(file)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(file))
    try:
        pixels = array("f", bytes(4 * 4 * size * size))
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels


def _paste(sheet: array, pixels: array, size: int, width: int, col: int, row: int) -> None:
    """Copy one cell in, row by row, with a one-pixel frame on its left and top edges."""
    for y in range(size):
        src = 4 * size * y
        dst = 4 * ((row * size + y) * width + col * size)
        sheet[dst : dst + 4 * size] = pixels[src : src + 4 * size]
        sheet[dst : dst + 4] = array("f", SEPARATOR)  # left edge
    top = 4 * ((row * size + size - 1) * width + col * size)
    sheet[top : top + 4 * size] = array("f", SEPARATOR) * size


def _write_png(pixels: array, width: int, height: int, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = bpy.data.images.new("LipsyncContactSheet", width, height, alpha=False)
    try:
        image.pixels.foreach_set(pixels)
        image.filepath_raw = str(path)
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)


class _Label:
    """A text object and a white bar along the bottom of the camera view, parented to the camera."""

    def __init__(self, scene):
        cam = scene.camera
        dist = max(1.0, 2.0 * cam.data.clip_start)
        if cam.data.type == "ORTHO":
            half = cam.data.ortho_scale / 2
        else:
            half = dist * math.tan(cam.data.angle / 2)
        self.materials = [_flat_material("Text", (0.0, 0.0, 0.0, 1.0))]
        self.materials.append(_flat_material("Bar", (1.0, 1.0, 1.0, 1.0)))
        curve = bpy.data.curves.new("LipsyncSheetLabel", "FONT")
        curve.size = 2 * half * LABEL_HEIGHT
        curve.align_x = "CENTER"
        curve.materials.append(self.materials[0])
        self.font = _ipa_font()
        if self.font is not None:
            curve.font = self.font
        self.text = bpy.data.objects.new("LipsyncSheetLabel", curve)
        self.text.location = (0.0, -half + 2 * half * 0.035, -dist)
        bar_top = -half + 2 * half * BAR_HEIGHT
        mesh = bpy.data.meshes.new("LipsyncSheetBar")
        mesh.from_pydata(
            [(-half, -half, 0), (half, -half, 0), (half, bar_top, 0), (-half, bar_top, 0)],
            [],
            [(0, 1, 2, 3)],
        )
        mesh.materials.append(self.materials[1])
        self.bar = bpy.data.objects.new("LipsyncSheetBar", mesh)
        self.bar.location = (0.0, 0.0, -dist * 1.01)
        for item in (self.text, self.bar):
            item.parent = cam
            scene.collection.objects.link(item)

    def set(self, text: str) -> None:
        self.text.data.body = text

    def remove(self) -> None:
        curve, mesh = self.text.data, self.bar.data
        bpy.data.objects.remove(self.text)
        bpy.data.objects.remove(self.bar)
        bpy.data.curves.remove(curve)
        bpy.data.meshes.remove(mesh)
        for material in self.materials:
            bpy.data.materials.remove(material)
        if self.font is not None and not self.font.users:
            bpy.data.fonts.remove(self.font)


def _ipa_font():
    """A newly loaded system font that has IPA, or None (the built-in font is used)."""
    for path in IPA_FONTS:
        if Path(path).is_file():
            try:
                return bpy.data.fonts.load(path)
            except RuntimeError:
                continue
    return None


def _flat_material(name: str, colour: tuple):
    material = bpy.data.materials.new(f"LipsyncSheet.{name}")
    material.diffuse_color = colour
    return material
