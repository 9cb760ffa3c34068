"""The dataset builder on real GRID clips: files per clip, the manifest, failures listed and
skipped, resuming after an interruption, and the command's exit codes."""

import json
import shutil
import time

import numpy as np
import pytest

from bridge_server import dataset
from bridge_server.cli import main
from bridge_server.visemes import load_set
from tests.conftest import SHARED

GRID = SHARED / "grid"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two GRID clips (one with a sidecar script, one from the TSV), a damaged file and a
    sound-only file, built once with mouth crops."""
    videos = tmp_path_factory.mktemp("videos")
    for name in ("pwij3p.mpg", "lbax4n.mpg"):
        shutil.copy(GRID / "videos" / name, videos / name)
    (videos / "pwij3p.txt").write_text("place white in j three please")
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x07" * 2000)
    shutil.copy(SHARED / "librivox_kittens" / "en_male_electricity.ogg", videos / "sound.ogg")
    out = tmp_path_factory.mktemp("ds")
    result = dataset.build(videos, out, transcripts=GRID / "transcripts.tsv", crops=True)
    return videos, out, result


def manifest(out) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_each_clip_gets_sound_timeline_and_frames(built):
    _, out, result = built
    assert sorted(result.built) == ["lbax4n", "pwij3p"]
    for clip in result.built:
        folder = out / "clips" / clip
        assert (folder / "audio.wav").read_bytes()[:4] == b"RIFF"
        timeline = json.loads((folder / "timeline.json").read_text())
        assert timeline["words"] and timeline["landmarks"]["frames"] and timeline["mouth_controls"]
        frames = np.load(folder / "frames.npz")
        n = len(frames["times"])
        assert (
            n == 75 and frames["controls"].shape == (n, 10) and frames["lips"].shape == (n, 40, 3)
        )
        assert frames["valid"].all() and frames["crops"].shape == (n, 48, 96)
    # "place..." starts with p: the aligned viseme of its frames there is PP (the target a lip
    # reader learns)
    frames = np.load(out / "clips" / "pwij3p" / "frames.npz")
    timeline = json.loads((out / "clips" / "pwij3p" / "timeline.json").read_text())
    p = next(x for x in timeline["phonemes"] if x["ipa"] == "p")
    inside = (frames["times"] >= p["start"]) & (frames["times"] < p["end"])
    pp = list(load_set("oculus15").visemes).index("PP")
    assert inside.any() and (frames["visemes"][inside] == pp).all()


def test_the_manifest_says_where_each_transcript_came_from(built):
    _, out, _ = built
    rows = {r["id"]: r for r in manifest(out)}
    assert rows["pwij3p"]["transcript_source"] == "sidecar"
    assert rows["lbax4n"]["transcript_source"] == "tsv"
    assert rows["lbax4n"]["transcript"] == "lay blue at x four now"
    assert all(r["face_found"] == 1.0 and r["ok"] and r["duration"] > 2.9 for r in rows.values())


def test_bad_clips_are_listed_and_skipped(built):
    _, out, result = built
    failed = {f.id: f.error for f in result.failed}
    assert set(failed) == {"broken", "sound"}
    assert "lipsync bake" in failed["sound"]  # a sound-only file: the fix is named
    listed = [json.loads(x) for x in (out / "failed.jsonl").read_text().splitlines()]
    assert {x["id"] for x in listed} >= {"broken", "sound"}


def test_a_second_run_resumes_and_redoes_only_what_is_missing(built):
    videos, out, _ = built
    start = time.perf_counter()
    again = dataset.build(videos, out, transcripts=GRID / "transcripts.tsv", crops=True)
    assert again.built == [] and sorted(again.kept) == ["lbax4n", "pwij3p"]
    assert time.perf_counter() - start < 5  # nothing tracked again
    shutil.rmtree(out / "clips" / "lbax4n")  # as if interrupted while writing it
    lines = [x for x in (out / "manifest.jsonl").read_text().splitlines() if "lbax4n" not in x]
    (out / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    redone = dataset.build(videos, out, transcripts=GRID / "transcripts.tsv", crops=True)
    assert redone.built == ["lbax4n"]
    assert sorted(r["id"] for r in manifest(out)) == ["lbax4n", "pwij3p"]  # one line each


def test_the_command_reports_and_exits_by_what_it_built(built, tmp_path, capsys):
    videos, _, _ = built
    out = tmp_path / "ds"
    tsv = str(GRID / "transcripts.tsv")
    # sorted: broken.mp4 fails, lbax4n is built; one clip built is a success
    assert main(["dataset", "build", str(videos), "--out", str(out), "--transcripts", tsv,
                 "--limit", "2"]) == 0  # fmt: skip
    assert [r["id"] for r in manifest(out)] == ["lbax4n"]
    assert "broken" in capsys.readouterr().err
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    shutil.copy(videos / "broken.mp4", only_bad / "broken.mp4")
    assert main(["dataset", "build", str(only_bad), "--out", str(tmp_path / "ds2")]) == 3
    assert "broken" in capsys.readouterr().err
