"""A procedural demo head whose shape keys are the mouths of a viseme set.

Built from vertex lists (no operators, so it works in background mode), with only `bpy` and the
standard library: it runs in Blender's own Python (no numpy) and in the `bpy` module. One mesh:
skin, eyes, brows, nose, and a parametric mouth (lips ring, dark mouth cavity, upper teeth,
tongue). Every mouth vertex is a function of a few parameters (`mouth_shapes.json`), so the
Basis and each shape key are the same function at different parameters, and teeth and tongue
always stay inside the lips. The character faces -Y; its left is +X.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import bpy

HERE = Path(__file__).resolve().parent
SHAPES_FILE = HERE / "mouth_shapes.json"

# Head: an ellipsoid, narrower towards the chin.
HEAD = {"a": 0.92, "b": 1.0, "c": 1.2, "taper": 0.2}
MOUTH_Z = -0.5  # height of the mouth line
MOUTH_HALF = 0.28  # half width of the lips' opening at rest
RING = 32  # vertices around the lips (a multiple of 4: corners and middles are vertices)
LIP_BLEND = (0.0, 0.3, 0.65, 1.0)  # cross-section of a lip, outer edge (on the skin) to inner
LIP_DEPTH = (0.012, 0.055, 0.065, 0.04)  # ... and how far each loop stands in front of the skin
TUCK_DEPTH = (0.012, 0.026, 0.027, 0.025)  # lower lip rolled in: behind the teeth (TEETH_DEPTH)
CAVITY = ((0.35, 0.017), (0.7, 0.014), (1.0, 0.013))  # (fraction to the centre, depth)
TEETH_DEPTH = 0.03
COLUMNS = 11  # columns of the teeth and tongue grids

COLOURS = {
    "skin": (0.90, 0.50, 0.34, 1.0),
    "lips": (0.80, 0.16, 0.20, 1.0),
    "cavity": (0.10, 0.02, 0.03, 1.0),
    "teeth": (0.95, 0.95, 0.90, 1.0),
    "tongue": (0.95, 0.45, 0.50, 1.0),
    "eye": (0.96, 0.96, 0.96, 1.0),
    "pupil": (0.04, 0.05, 0.10, 1.0),
    "brow": (0.25, 0.15, 0.10, 1.0),
}
MATERIALS = list(COLOURS)


RIGS = HERE.parents[1] / "rigs"  # the repository's presets (the demo is not in the zips)


def preset_path(name: str) -> Path:
    """rigs/<name>.json in the repository."""
    path = RIGS / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no rig preset {name!r} in {RIGS}")
    return path


def preset_names() -> list[str]:
    return sorted(p.stem for p in RIGS.glob("*.json"))


def load_preset(name: str) -> dict:
    return json.loads(preset_path(name).read_text(encoding="utf-8"))


def mouth_shapes() -> dict:
    return json.loads(SHAPES_FILE.read_text(encoding="utf-8"))


def build_demo_head_for_preset(name: str, **kwargs) -> bpy.types.Object:
    """A demo head whose shape keys are exactly the preset's (vrchat: vrc.v_sil ... vrc.v_ou)."""
    preset = load_preset(name)
    return build_demo_head(preset["shape_keys"], preset["viseme_set"], **kwargs)


def build_demo_head(
    shape_keys: dict[str, str] | None = None,
    viseme_set: str = "preston_blair",
    name: str = "LipsyncDemoHead",
    collection=None,
) -> bpy.types.Object:
    """The head with a Basis and one shape key per channel -> shape-key name of `shape_keys`.

    `shape_keys` defaults to the demo_head preset for its set (preston_blair), else to the set's
    channel names. The object's "lipsync_mouth" property holds the vertex indices of the lips'
    middles and corners (upper_lip, lower_lip, left_corner, right_corner).
    """
    table = mouth_shapes()
    if viseme_set not in table:
        sets = ", ".join(k for k in table if not k.startswith("_"))
        raise ValueError(f"unknown viseme set {viseme_set!r}; known: {sets}")
    if shape_keys is None:
        preset = load_preset("demo_head")
        same = preset["viseme_set"] == viseme_set
        shape_keys = preset["shape_keys"] if same else {c: c for c in table[viseme_set]}
    unknown = [c for c in shape_keys if c not in table[viseme_set]]
    if unknown:
        raise ValueError(
            f"channels {unknown} are not in viseme set {viseme_set!r}: {list(table[viseme_set])}"
        )
    mesh, mouth_start = _head_mesh(name, _params(table, {}))
    obj = bpy.data.objects.new(name, mesh)
    (collection or bpy.context.collection or bpy.context.scene.collection).objects.link(obj)
    obj["lipsync_mouth"] = _landmarks(mouth_start)
    obj["lipsync_viseme_set"] = viseme_set
    _add_shape_keys(obj, table, viseme_set, shape_keys, mouth_start)
    return obj


def frame_head(scene, obj, *, close_up: bool = True) -> bpy.types.Object:
    """An orthographic camera in front of the face (eyes to chin) and a sun; the scene's camera."""
    height = 1.75 if close_up else 2.7
    centre = (0.0, -6.0, -0.32 if close_up else 0.0)
    cam = bpy.data.objects.new(f"{obj.name}.Camera", bpy.data.cameras.new(f"{obj.name}.Camera"))
    cam.data.type = "ORTHO"
    cam.data.ortho_scale = height * obj.scale[2]
    cam.data.clip_end = 20.0
    cam.location = obj.matrix_world @ _vector(centre)
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)  # looks along +Y, at the face
    sun = bpy.data.objects.new(f"{obj.name}.Sun", bpy.data.lights.new(f"{obj.name}.Sun", "SUN"))
    sun.location = obj.matrix_world @ _vector((2.0, -4.0, 3.0))
    sun.rotation_euler = (math.radians(55), 0.0, math.radians(25))
    for item in (cam, sun):
        scene.collection.objects.link(item)
    scene.camera = cam
    return cam


def _vector(xyz):
    from mathutils import Vector

    return Vector(xyz)


# -- shape keys ------------------------------------------------------------------------------


def _params(table: dict, changes: dict) -> dict:
    return {**table["_neutral"], **{k: v for k, v in changes.items() if k != "side"}}


def _add_shape_keys(obj, table, viseme_set, shape_keys, mouth_start) -> None:
    basis = [tuple(v.co) for v in obj.data.vertices]
    obj.shape_key_add(name="Basis", from_mix=False)
    for channel, key_name in shape_keys.items():
        entry = table[viseme_set][channel]
        mouth = _mouth_points(_params(table, entry))
        coords = basis[:mouth_start] + _one_side(basis[mouth_start:], mouth, entry.get("side"))
        key = obj.shape_key_add(name=key_name, from_mix=False)
        key.data.foreach_set("co", [c for xyz in coords for c in xyz])
    obj.data.update()


def _one_side(basis: list, moved: list, side: str | None) -> list:
    """`moved`, or only its motion on one side (left + right = the whole motion)."""
    if side is None:
        return moved
    sign = 1.0 if side == "left" else -1.0
    out = []
    for b, m in zip(basis, moved):
        w = _smoothstep(-0.06, 0.06, sign * b[0])
        out.append(tuple(bc + w * (mc - bc) for bc, mc in zip(b, m)))
    return out


def _smoothstep(lo: float, hi: float, x: float) -> float:
    t = min(1.0, max(0.0, (x - lo) / (hi - lo)))
    return t * t * (3 - 2 * t)


# -- the mouth as a function of its parameters -----------------------------------------------


def _face_y(x: float, z: float) -> float:
    """Y of the head's front surface at (x, z)."""
    r2 = max(0.0, 1.0 - (z / HEAD["c"]) ** 2)
    a = HEAD["a"] * (1.0 - HEAD["taper"] * max(0.0, -z) / HEAD["c"])
    return -HEAD["b"] * math.sqrt(max(0.0, r2 - (x / a) ** 2))


def _outline(p: dict) -> dict:
    """Sizes of the mouth for parameters `p` (scene units)."""
    rnd, width, la = p["round"], p["width"], p["lips_apart"]
    return {
        "half": MOUTH_HALF * (1 + 0.3 * width) * (1 - 0.4 * rnd),
        "up": 0.025 * la + 0.04 * p["upper_lip_raise"] + 0.03 * p["jaw_open"] + 0.05 * rnd * la,
        "down": 0.035 * la + 0.19 * p["jaw_open"] - 0.045 * p["lower_lip_in"],
        "lift": 0.04 * max(width, 0.0) * (1 - rnd),  # smiling corners rise
        "upper": 0.06 * (1 + 0.4 * rnd) * (1 - 0.25 * p["upper_lip_in"]),  # lip thickness
        "lower": 0.075 * (1 + 0.4 * rnd) * (1 - 0.3 * p["lower_lip_in"]),
        "outer_rise": 0.025 * p["lower_lip_in"],  # the rolled-in lower lip's skin edge rises less
        "corner": 0.03 + 0.03 * rnd,
        "pout": 1 + 0.8 * rnd,
    }


def _mouth_points(p: dict) -> list[tuple[float, float, float]]:
    """Every mouth vertex: lips ring, cavity, teeth, tongue (the order of _mouth_faces)."""
    o = _outline(p)
    return _lips(p, o) + _cavity(o) + _teeth(o) + _tongue(p, o)


def _on_face(x: float, z: float, depth: float) -> tuple[float, float, float]:
    return (x, _face_y(x, z) - depth, z)


def _lips(p: dict, o: dict) -> list:
    points = []
    for k, (blend, depth) in enumerate(zip(LIP_BLEND, LIP_DEPTH)):
        for i in range(RING):
            c, s = _ring_angle(i)
            zc = MOUTH_Z + o["lift"] * c * c
            if s >= 0:  # upper lip
                inner, outer = o["up"] * s, (o["up"] + o["upper"]) * s
                d = depth * (o["pout"] if k else 1)
            else:
                inner = o["down"] * s
                outer = (o["down"] + o["lower"] + o["outer_rise"]) * s
                tuck = p["lower_lip_in"] * math.sqrt(-s)
                d = (depth * (o["pout"] if k else 1)) * (1 - tuck) + TUCK_DEPTH[k] * tuck
            x = (o["half"] + o["corner"] * (1 - blend)) * c
            points.append(_on_face(x, zc + outer + blend * (inner - outer), d))
    return points


def _ring_angle(i: int) -> tuple[float, float]:
    angle = 2 * math.pi * i / RING
    return math.cos(angle), math.sin(angle)


def _cavity(o: dict) -> list:
    """Loops from the lips' inner edge to a centre point, so the opening is always filled."""
    centre_z = MOUTH_Z + (o["up"] - o["down"]) / 2
    inner = []
    for i in range(RING):
        c, s = _ring_angle(i)
        edge = o["up"] * s if s >= 0 else o["down"] * s
        inner.append((o["half"] * c, MOUTH_Z + o["lift"] * c * c + edge))
    points = []
    for f, depth in CAVITY[:-1]:
        for x, z in inner:
            points.append(_on_face(x * (1 - f), z + f * (centre_z - z), depth))
    points.append(_on_face(0.0, centre_z, CAVITY[-1][1]))
    return points


def _teeth(o: dict) -> list:
    """Upper teeth: a band hung from under the upper lip, narrower than the lips' opening."""
    top = max(0.035, o["up"] + 0.006)
    points = []
    for row in (0, 1):
        for j in range(COLUMNS):
            sx = -1 + 2 * j / (COLUMNS - 1)
            c = 0.82 * sx
            zc = MOUTH_Z + o["lift"] * c * c
            z = (
                zc + top * math.sqrt(1 - sx * sx)
                if row == 0
                else zc + (top - 0.07) * math.sqrt(1 - sx**4)
            )
            points.append(_on_face(o["half"] * c, z, TEETH_DEPTH))
    return points


def _tongue(p: dict, o: dict) -> list:
    """The tongue lies on the lower lip's inner edge and rises into a share of the opening."""
    reach = 0.3 + 0.55 * max(p["tongue_up"], p["tongue_out"])
    depth = 0.022 + 0.02 * p["tongue_out"]  # tongue_out: in front of the teeth
    points = []
    for v in (0.0, 0.5, 1.0):
        for j in range(COLUMNS):
            sx = -1 + 2 * j / (COLUMNS - 1)
            c = 0.7 * sx
            s = math.sqrt(1 - c * c)
            zc = MOUTH_Z + o["lift"] * c * c
            low, high = zc - o["down"] * s, zc + o["up"] * s
            gap = max(0.0, high - low)
            z = low + 0.1 * gap + v * reach * gap * math.sqrt(1 - sx * sx)
            points.append(_on_face(o["half"] * c, z, depth))
    return points


def _mouth_faces(start: int) -> list[tuple[tuple[int, ...], str]]:
    faces = []
    ring = lambda k, i: start + k * RING + i % RING  # noqa: E731
    for k in range(len(LIP_BLEND) - 1):
        faces += [
            ((ring(k, i), ring(k, i + 1), ring(k + 1, i + 1), ring(k + 1, i)), "lips")
            for i in range(RING)
        ]
    last = len(LIP_BLEND) - 1
    for k in range(last, last + len(CAVITY) - 2):
        faces += [
            ((ring(k, i), ring(k, i + 1), ring(k + 1, i + 1), ring(k + 1, i)), "cavity")
            for i in range(RING)
        ]
    centre = start + (len(LIP_BLEND) + len(CAVITY) - 1) * RING
    k = last + len(CAVITY) - 2
    faces += [((ring(k, i), ring(k, i + 1), centre), "cavity") for i in range(RING)]
    faces += _grid_faces(centre + 1, 2, "teeth")
    faces += _grid_faces(centre + 1 + 2 * COLUMNS, 3, "tongue")
    return faces


def _grid_faces(start: int, rows: int, material: str) -> list:
    at = lambda r, j: start + r * COLUMNS + j  # noqa: E731
    return [
        ((at(r, j), at(r, j + 1), at(r + 1, j + 1), at(r + 1, j)), material)
        for r in range(rows - 1)
        for j in range(COLUMNS - 1)
    ]


def _landmarks(start: int) -> dict[str, int]:
    inner = start + (len(LIP_BLEND) - 1) * RING
    return {
        "upper_lip": inner + RING // 4,
        "lower_lip": inner + 3 * RING // 4,
        "left_corner": inner,
        "right_corner": inner + RING // 2,
    }


# -- the rest of the head --------------------------------------------------------------------


def _ellipsoid(centre, radii, rings: int, segments: int, head: bool = False):
    """Vertices and faces (local indices) of a UV ellipsoid; `head` uses the head's taper."""
    cx, cy, cz = centre
    verts = [(cx, cy, cz + radii[2])]
    for r in range(1, rings):
        t = math.pi * r / rings
        z = radii[2] * math.cos(t)
        a = radii[0] * (1 - HEAD["taper"] * max(0.0, -z) / radii[2]) if head else radii[0]
        for j in range(segments):
            phi = 2 * math.pi * j / segments
            x, y = a * math.sin(t) * math.sin(phi), -radii[1] * math.sin(t) * math.cos(phi)
            verts.append((cx + x, cy + y, cz + z))
    verts.append((cx, cy, cz - radii[2]))
    at = lambda r, j: 1 + (r - 1) * segments + j % segments  # noqa: E731
    faces = [(0, at(1, j), at(1, j + 1)) for j in range(segments)]
    for r in range(1, rings - 1):
        faces += [(at(r, j), at(r + 1, j), at(r + 1, j + 1), at(r, j + 1)) for j in range(segments)]
    bottom = len(verts) - 1
    faces += [(bottom, at(rings - 1, j + 1), at(rings - 1, j)) for j in range(segments)]
    return verts, faces


def _features() -> list[tuple[tuple, tuple, int, int, str]]:
    """(centre, radii, rings, segments, material) of the eyes, pupils, brows and nose."""
    parts = []
    for x in (-0.34, 0.34):
        eye_y = _face_y(x, 0.18) + 0.06
        parts.append(((x, eye_y, 0.18), (0.15, 0.15, 0.15), 12, 16, "eye"))
        parts.append(((x, eye_y - 0.12, 0.18), (0.065, 0.05, 0.07), 8, 12, "pupil"))
        parts.append(((x, _face_y(x, 0.42) + 0.01, 0.42), (0.16, 0.04, 0.035), 6, 12, "brow"))
    parts.append(((0.0, _face_y(0.0, -0.12) - 0.03, -0.12), (0.11, 0.12, 0.15), 10, 16, "skin"))
    return parts


def _head_mesh(name: str, neutral: dict):
    verts, faces = [], []

    def add(part_verts, part_faces, material):
        offset = len(verts)
        verts.extend(part_verts)
        faces.extend((tuple(i + offset for i in f), material) for f in part_faces)

    add(*_ellipsoid((0, 0, 0), (HEAD["a"], HEAD["b"], HEAD["c"]), 32, 48, head=True), "skin")
    for centre, radii, rings, segments, material in _features():
        add(*_ellipsoid(centre, radii, rings, segments), material)
    mouth_start = len(verts)
    verts.extend(_mouth_points(neutral))
    faces.extend(_mouth_faces(mouth_start))
    # Face winding from a wide-open mouth, where no mouth face has collapsed to nothing.
    open_mouth = verts[:mouth_start] + _mouth_points(
        {**neutral, "jaw_open": 1.0, "lips_apart": 1.0}
    )
    polys = [_outward(f, open_mouth, mouth_start) for f, _ in faces]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts, [], polys)
    for material in MATERIALS:
        mesh.materials.append(_material(material))
    mesh.polygons.foreach_set("material_index", [MATERIALS.index(m) for _, m in faces])
    mesh.polygons.foreach_set("use_smooth", [True] * len(polys))
    mesh.update()
    return mesh, mouth_start


def _outward(face: tuple, verts: list, mouth_start: int) -> tuple:
    """Mouth faces wound to face the camera (-Y); ellipsoids are built outward already."""
    if face[0] < mouth_start:
        return face
    p = [verts[i] for i in face]
    u = [p[1][k] - p[0][k] for k in range(3)]
    v = [p[-1][k] - p[0][k] for k in range(3)]
    normal_y = u[2] * v[0] - u[0] * v[2]
    return face if normal_y <= 0 else tuple(reversed(face))


def _material(kind: str):
    mat = bpy.data.materials.new(f"LipsyncDemo.{kind}")
    mat.diffuse_color = COLOURS[kind]  # Workbench's colour; Eevee/Cycles get the same base colour
    mat.roughness = 0.6
    return mat
