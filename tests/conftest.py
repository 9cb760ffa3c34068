"""Shared fixtures: real voices loaded once per session, and the project's test sentences."""

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


def wer(ref: list[str], hyp: list[str]) -> float:
    """Word error rate: word-level edit distance / reference length."""
    from bridge_server.evaluate.speech import edits

    return edits(ref, hyp) / max(1, len(ref))
