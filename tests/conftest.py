"""Shared fixtures: real voices loaded once per session, and the project's test sentences."""

import fcntl
import os
import pickle
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def sentences() -> list[str]:
    return DATA.joinpath("harvard.txt").read_text().splitlines()


@pytest.fixture(scope="session")
def espeak():
    from bridge_server import engines

    return engines.create("espeak")


@pytest.fixture(scope="session")
def piper():
    from bridge_server import engines

    return engines.create("piper")


@pytest.fixture(scope="session")
def bridge_url():
    """One real bridge (`lipsync serve`) in its own process for the whole run, shared by the
    add-on's tests and the add-on client's: starting one takes seconds."""
    from tests.bridge import running_bridge

    with running_bridge() as url:
        yield url


@contextmanager
def made_once(tmp_path_factory, name: str):
    """A folder that the whole run shares: pytest-xdist runs a process per core, so the first
    to come makes what is in it while the others wait, then find it made."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        (root / name).mkdir(exist_ok=True)
        yield root / name


@pytest.fixture(scope="session")
def grid_mouths(tmp_path_factory) -> dict:
    """The mouth of each GRID clip in ../shared/data/grid, by file name, tracked once per run
    (lip reading, sync and the trained reader differ in what they read from the same lips),
    with every way of loading sound made to fail: the lips are read from the picture alone."""
    pytest.importorskip("mediapipe")
    from bridge_server.lipread.reader import read_mouth

    with made_once(tmp_path_factory, "grid_mouths") as folder:
        saved = folder / "mouths.pickle"
        if saved.is_file():
            return pickle.loads(saved.read_bytes())
        clips = sorted(SHARED.joinpath("grid", "videos").glob("*.mpg"))
        with pytest.MonkeyPatch.context() as mp:
            refuse_sound(mp)
            mouths = {c.name: read_mouth(c) for c in clips}
        saved.write_bytes(pickle.dumps(mouths))
        return mouths


@pytest.fixture(scope="session")
def grid_dataset(tmp_path_factory) -> Path:
    """The four GRID clips built by the dataset builder once per run (for the trainers; a
    second build of the same folder finds every clip complete)."""
    from bridge_server import dataset

    grid = SHARED / "grid"
    with made_once(tmp_path_factory, "grid_dataset") as folder:
        result = dataset.build(grid / "videos", folder / "ds", transcripts=grid / "transcripts.tsv")
    assert not result.failed, result.failed
    return folder / "ds"


def refuse_sound(mp: pytest.MonkeyPatch) -> None:
    """Make every way of loading sound fail (lip reading must never hear the clip)."""

    def refuse(*_a, **_k):
        raise AssertionError("lip reading tried to load the sound")

    mp.setattr("bridge_server.media.audio.load_audio", refuse)
    mp.setattr("bridge_server.pipeline.load_audio", refuse)


def said_first(code: str, *args: str):
    """What `code` (Python, run in the project root with `args`) pickles to standard output,
    run in a fresh process: libespeak carries state from one utterance to the next, so a line
    said after other tests sounds slightly different, and some lines sit near a threshold."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, check=True,
                         cwd=ROOT).stdout  # fmt: skip
    return pickle.loads(out)


def wer(ref: list[str], hyp: list[str]) -> float:
    """Word error rate: word-level edit distance / reference length."""
    from bridge_server.evaluate.speech import edits

    return edits(ref, hyp) / max(1, len(ref))


# Slow as a whole: the add-on in Blender (bpy alone takes seconds to import), and modules whose
# fixtures train a model or build a dataset.
SLOW_PATHS = [ROOT / "tests" / "addon", ROOT / "tests" / "test_lipreader_model.py",
              ROOT / "tests" / "test_dataset.py"]  # fmt: skip


def _slow(path: Path) -> bool:
    return any(path.is_relative_to(slow) for slow in SLOW_PATHS)


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """`-m "not slow"` does not even import the slow modules."""
    return True if config.option.markexpr == "not slow" and _slow(collection_path) else None


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if _slow(Path(item.path)):
            item.add_marker(pytest.mark.slow)
