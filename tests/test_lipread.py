"""Lip reading from the mouth controls alone: made-up mouths with exact answers first, then
the four GRID clips (face tracked by mediapipe; their sound must never be decoded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bridge_server.core.errors import InputError
from bridge_server.lipread import reader as lr
from bridge_server.mouth.controls import CONTROLS, Mouth
from tests.conftest import refuse_sound

GRID = Path(__file__).resolve().parents[2] / "shared" / "data" / "grid"
FPS, PAD_S = 25.0, 0.5


def said(text: str, slower: float = 1.0) -> Mouth:
    """A mouth that moves exactly as eSpeak's reading of `text` implies, `slower` times slower,
    with half a second of closed mouth before and after (as GRID's clips have)."""
    c = lr.expected(text, FPS / slower).features
    pad = np.zeros((int(PAD_S * FPS), len(CONTROLS)))
    c = np.r_[pad, c, pad]
    t = np.arange(len(c)) / FPS
    return Mouth(t, np.zeros((len(c), 40, 3)), dict(zip(CONTROLS, c.T)), np.ones(len(c), bool))


@pytest.fixture(scope="module")
def grid() -> list[list[str]]:
    return lr.load_grammar("grid")


@pytest.fixture(scope="module")
def scripts() -> dict[Path, str]:
    rows = (GRID / "transcripts.tsv").read_text().splitlines()[1:]
    return {GRID / "videos" / r.split("\t")[0]: r.split("\t")[2] for r in rows if r.strip()}


@pytest.fixture(scope="module")
def choices(grid, scripts) -> list[str]:
    truths = tuple(scripts.values())
    return list(truths) + lr.sample_sentences(grid, 20, seed=0, exclude=truths)


# --- made-up mouths -----------------------------------------------------------------------


@pytest.mark.parametrize("slower", [1.0, 1.3], ids=["espeak-pace", "slower"])
@pytest.mark.slow
def test_the_sentence_a_mouth_says_ranks_first_among_others(choices, scripts, slower):
    for text in scripts.values():
        ranked = lr.rank(said(text, slower), choices)
        assert ranked[0].text == text
        assert sum(c.confidence for c in ranked) == pytest.approx(1.0)
        assert [c.cost for c in ranked] == sorted(c.cost for c in ranked)


def test_word_times_come_back_through_the_warp():
    text = "bin blue at f two now"
    exp = lr.expected(text, FPS)
    timing = lr.time_script(said(text), text)
    errors = [abs(w.start - (e.start + PAD_S)) for w, e in zip(timing.words, exp.words)]
    assert [w.text for w in timing.words] == text.split()
    assert np.mean(errors) < 0.04  # within a frame
    starts = [p.start for p in timing.phonemes]
    assert starts == sorted(starts) and all(p.end >= p.start for p in timing.phonemes)


@pytest.mark.slow
def test_the_grammar_decoder_finds_most_words_of_a_clean_mouth(grid, scripts):
    right = 0
    for text in scripts.values():
        best = lr.read_grammar(said(text), grid, best=3)
        assert len(best) == 3 and all(len(c.words) == 6 for c in best)
        right += sum(a == b for a, b in zip(best[0].text.split(), text.split()))
    assert right >= 16  # of 24; b/p/m and the like look alike even here


def test_the_warp_keeps_order_and_gives_silence_its_frames():
    text = "place white in j three please"
    obs, exp = lr.observed(said(text)), lr.normalised(lr.expected(text, FPS).features)
    path = lr.warp(obs, exp).path
    assert np.all(np.diff(path) >= 0) and np.all(np.diff(path) <= 2)
    assert path[0] == -1 and path[-1] == len(exp)  # silence before and after


def test_the_grid_grammar_ships_as_data(grid):
    assert [len(s) for s in grid] == [4, 4, 4, 25, 10, 4]
    assert "w" not in grid[3]


@pytest.mark.parametrize(
    "content",
    ['{"slots": []}', '{"slots": [["a"], []]}', "[1, 2]", "not json"],
    ids=["no-slots", "empty-slot", "not-words", "not-json"],
)
def test_a_bad_grammar_file_says_what_is_wrong(tmp_path, content):
    path = tmp_path / "g.json"
    path.write_text(content)
    with pytest.raises(InputError, match="grammar|slots"):
        lr.load_grammar(path)


def test_a_grammar_file_of_slots_is_read(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps([["bin", "lay"], ["blue", "red"]]))
    assert lr.load_grammar(path) == [["bin", "lay"], ["blue", "red"]]


def test_an_unknown_grammar_name_lists_the_known_ones():
    with pytest.raises(InputError, match="unknown grammar 'nope'.*grid"):
        lr.load_grammar("nope")


def test_no_choices_is_an_error():
    with pytest.raises(InputError, match="no candidate"):
        lr.rank(said("bin blue"), ["", "  "])


def test_distractors_are_reproducible_and_exclude_the_truth(grid):
    first = lr.sample_sentences(grid, 20, seed=0, exclude=("bin blue at f two now",))
    assert first == lr.sample_sentences(grid, 20, seed=0, exclude=("bin blue at f two now",))
    assert len(set(first)) == 20 and "bin blue at f two now" not in first


# --- the GRID clips -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mouths(scripts, grid_mouths):
    """The clips' mouths (tracked once per run, with the sound refused: conftest.grid_mouths)."""
    return {clip: grid_mouths[clip.name] for clip in scripts}


@pytest.mark.slow
def test_grid_sentences_are_chosen_from_the_lips_alone(mouths, scripts, choices, monkeypatch):
    refuse_sound(monkeypatch)
    chosen = sum(lr.rank(mouths[c], choices)[0].text == s for c, s in scripts.items())
    assert chosen >= 2  # of 4; chance is 1 in 24 each (measured: 2)


@pytest.mark.slow
def test_grid_grammar_words_beat_chance(mouths, scripts, grid, monkeypatch):
    refuse_sound(monkeypatch)
    right = 0
    for clip, script in scripts.items():
        best = lr.read_grammar(mouths[clip], grid)[0]
        right += sum(a == b for a, b in zip(best.text.split(), script.split()))
    # of 24; chance about 4.6. Measured 6 to 8: the templates are eSpeak's readings, whose pitch
    # flutter runs on from call to call in a process and moves phone times by up to 0.5 ms.
    assert right >= 6


@pytest.mark.slow
@pytest.mark.parametrize("code", ["bbaf2n", "swwp2s"])
def test_grid_word_times_from_the_lips_are_near_the_aligned_ones(mouths, scripts, code):
    clip = next(c for c in scripts if c.stem.endswith(code))
    truth = [
        (int(a) / 25000, int(b) / 25000)
        for a, b, w in (r.split() for r in next(GRID.glob(f"align/*{code}.align")).open())
        if w != "sil"
    ]
    words = lr.time_script(mouths[clip], scripts[clip]).words
    errors = [abs(w.start - a) + abs(w.end - b) for w, (a, b) in zip(words, truth)]
    assert np.mean(errors) / 2 < 0.08  # s per boundary (measured: 0.036 and 0.057)


@pytest.mark.slow
def test_the_command_line_ranks_lines_and_times_a_script(tmp_path, capsys, monkeypatch):
    from bridge_server.cli import main

    pytest.importorskip("mediapipe")
    refuse_sound(monkeypatch)
    clip = GRID / "videos" / "bbaf2n.mpg"
    lines = tmp_path / "lines.txt"
    lines.write_text("bin blue at f two now\nset white with p two soon\n\n")
    assert main(["lipread", str(clip), "--choices", str(lines), "--json", "-q"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [c["text"] for c in found][0] == "bin blue at f two now"
    assert [w["text"] for w in found[0]["words"]] == "bin blue at f two now".split()
    out = tmp_path / "take.json"
    assert main(["lipread", str(clip), "--script", "bin blue at f two now", "--timeline",
                 str(out), "-q"]) == 0  # fmt: skip
    timeline = json.loads(out.read_text())
    assert timeline["source"]["kind"] == "video-lips" and len(timeline["words"]) == 6


def test_the_command_line_refuses_empty_choices_and_unknown_grammars(tmp_path, capsys):
    from bridge_server.cli import main

    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    clip = str(GRID / "videos" / "bbaf2n.mpg")
    assert main(["lipread", clip, "--choices", str(empty)]) == InputError.exit_code
    assert main(["lipread", clip, "--grammar", "nope"]) == InputError.exit_code
    assert main(["lipread", clip]) == InputError.exit_code
    assert "no lines" in capsys.readouterr().err


@pytest.mark.slow
def test_a_video_without_a_face_is_refused(tmp_path):
    from tests.videos import write_video

    pytest.importorskip("mediapipe")
    blank = write_video(tmp_path / "blank.mp4", [np.full((64, 64, 3), 90, np.uint8)] * 5,
                        np.arange(5) / 25)  # fmt: skip
    with pytest.raises(InputError, match="no face"):
        lr.lipread(blank, choices=["bin blue"])
