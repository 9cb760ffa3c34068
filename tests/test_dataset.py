"""The dataset builder on real GRID clips: files per clip, the manifest, failures listed and
skipped, resuming after an interruption, and the command's exit codes."""

import json
import shutil
import time

import numpy as np
import pytest

from bridge_server import dataset
from bridge_server.cli import main
from bridge_server.core.timeline import viseme_at
from bridge_server.core.visemes import load_set
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
        # the landmarker's ARKit scores beside the controls: its jawOpen follows our jaw
        names = list(frames["blendshape_names"])
        jaw = frames["blendshapes"][:, names.index("jawOpen")]
        assert frames["blendshapes"].shape == (n, len(names)) and "mouthPucker" in names
        assert np.corrcoef(jaw, frames["controls"][:, 0])[0, 1] > 0.5
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


# --- more of the format, failures and resuming (the same build where one is needed) ----------

NAMES = list(load_set("oculus15").visemes)


def test_frames_npz_arrays_share_the_video_frames(built):
    from bridge_server.mouth.controls import CONTROLS

    _, out, _ = built
    for row in manifest(out):
        z, n = np.load(out / "clips" / row["id"] / "frames.npz"), row["frames"]
        assert z["times"].shape == (n,) and np.all(np.diff(z["times"]) > 0)
        assert np.isfinite(z["lips"]).all() and z["valid"].dtype == bool
        assert list(z["control_names"]) == list(CONTROLS) and list(z["viseme_names"]) == NAMES
        assert z["visemes"].shape == (n,) and 0 <= z["visemes"].min() <= z["visemes"].max() < 15
        assert z["visemes"][0] == NAMES.index("sil")  # silence before the first word
        assert z["crops"].dtype == np.uint8 and z["crops"].std() > 10  # pictures, not blanks


def test_every_closure_is_a_pp_target(built):
    _, out, _ = built
    for row in manifest(out):
        z = np.load(out / "clips" / row["id"] / "frames.npz")
        timeline = json.loads((out / "clips" / row["id"] / "timeline.json").read_text())
        for p in (x for x in timeline["phonemes"] if x["ipa"] in ("p", "b", "m")):
            near = (z["times"] >= p["start"] - 0.04) & (z["times"] < p["end"] + 0.04)
            assert NAMES.index("PP") in z["visemes"][near], (row["id"], p)


def test_the_manifest_describes_each_clip(built):
    videos, out, _ = built
    for row in manifest(out):
        assert (row["fps"], row["frames"], row["width"], row["height"]) == (25.0, 75, 360, 288)
        assert row["words"] == 6 and row["language"] == "en" and row["crops"] is True
        assert row["video"] == str(videos / f"{row['id']}.mpg")
        assert abs(row["av_offset_ms"]) < 80 and isinstance(row["warnings"], list)
        assert row["speaker"] == "unknown (GRID s1-s34)"  # the TSV's column


def test_a_clip_folder_without_its_manifest_line_is_redone(built):
    videos, out, _ = built
    rows = [r for r in manifest(out) if r["id"] != "pwij3p"]  # cut off before its line
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    again = dataset.build(videos, out, transcripts=GRID / "transcripts.tsv", crops=True)
    assert again.built == ["pwij3p"] and sorted(r["id"] for r in manifest(out)) == [
        "lbax4n",
        "pwij3p",
    ]


def test_cancelling_keeps_no_half_clip(built, tmp_path):
    from bridge_server.core.errors import Cancelled

    videos, _, _ = built

    def progress(done, stage):
        if "tracking" in stage:
            raise KeyboardInterrupt

    with pytest.raises(Cancelled, match="run the same command again"):
        dataset.build(videos, tmp_path, limit=2, progress=progress)
    assert list((tmp_path / "clips").iterdir()) == []
    assert not (tmp_path / "manifest.jsonl").exists()


def test_whisper_transcribes_a_clip_without_a_script(tmp_path):
    (tmp_path / "s9").mkdir()
    (tmp_path / "s9" / "clip.mpg").symlink_to(GRID / "videos" / "bbaf2n.mpg")
    result = dataset.build(tmp_path, tmp_path / "ds", lang="en")
    row = manifest(tmp_path / "ds")[0]
    assert result.built == ["clip"] and row["transcript_source"] == "whisper"
    assert "two now" in row["transcript"].lower() and row["speaker"] == "s9"  # the folder's name


def test_a_video_without_sound_is_listed(tmp_path, capsys):
    from tests.videos import grid_frames, write_video

    (tmp_path / "in").mkdir()
    write_video(tmp_path / "in" / "silent.mp4", grid_frames(0)[:10], np.arange(10) / 25)
    assert main(["dataset", "build", str(tmp_path / "in"), "--out", str(tmp_path / "ds")]) == 3
    assert "silent" in capsys.readouterr().err
    (failed,) = [json.loads(x) for x in (tmp_path / "ds" / "failed.jsonl").read_text().split("\n")
                 if x]  # fmt: skip
    assert "no sound" in failed["error"]


def test_bad_arguments_exit_with_3_or_2(tmp_path):
    assert main(["dataset", "build", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 3
    assert main(["dataset", "build", str(tmp_path), "--out", str(tmp_path / "d")]) == 3  # empty
    with pytest.raises(SystemExit) as e:
        main(["dataset", "build", str(tmp_path)])  # --out is required
    assert e.value.code == 2


# --- the pure parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "paths, ids",
    [
        (["a/x.mp4", "b/x.mp4", "c/X.mov"], ["x", "b_x", "c_X"]),
        (["a/x.mp4", "a/x.mov", "a/x.mkv"], ["x", "a_x", "x_2"]),
        (["a/my clip (1).mp4", "a/.mp4"], ["my_clip_1", "mp4"]),
    ],
    ids=["same-stem-other-folders", "same-stem-same-folder", "unsafe-characters"],
)
def test_clip_ids_are_unique_and_safe(paths, ids):
    from pathlib import Path

    taken: set[str] = set()
    assert [dataset._unique_id(Path(p), taken) for p in paths] == ids


def test_viseme_at_takes_the_cue_holding_each_time():
    from bridge_server.core.timeline import VisemeCue

    cues = [VisemeCue("sil", 0.0, 0.1), VisemeCue("PP", 0.1, 0.2), VisemeCue("aa", 0.2, 0.3)]
    times = np.array([0.0, 0.05, 0.1, 0.19, 0.2, 0.31])
    assert viseme_at(cues, NAMES, times).tolist() == [0, 0, 1, 1, 10, 0]
    assert viseme_at([], NAMES, times).tolist() == [0] * 6


def test_lip_boxes_are_padded_two_to_one_and_fill_faceless_frames():
    from bridge_server.mouth.controls import lip_indices

    points = np.full((3, 478, 3), np.nan, np.float32)
    corners = np.array([[100, 200], [140, 200], [120, 190], [120, 210]], np.float32)
    for i in (0, 2):
        points[i, lip_indices(), :2] = corners[np.arange(40) % 4]
    boxes = dataset.lip_boxes(points)
    assert boxes[0].tolist() == [90, 185, 150, 215]  # 40 wide + 25% a side = 60; 60 / 2 = 30
    assert boxes[1].tolist() == boxes[0].tolist()  # no face: the neighbours' box


def test_a_tsv_without_the_columns_is_refused(tmp_path):
    from bridge_server.core.errors import InputError

    (tmp_path / "t.tsv").write_text("name\ttext\na.mp4\thello\n")
    with pytest.raises(InputError, match="file and transcript"):
        dataset._read_tsv(tmp_path / "t.tsv")


def test_when_the_lips_speak_is_kept_and_a_disagreeing_sound_is_flagged(built):
    from bridge_server.core.timeline import Word
    from bridge_server.lipread.decode import spans_over
    from bridge_server.lipread.reader import Activity

    _, out, _ = built
    for row in manifest(out):
        z = np.load(out / "clips" / row["id"] / "frames.npz")
        words = json.loads((out / "clips" / row["id"] / "timeline.json").read_text())["words"]
        assert z["speaking"].shape == z["times"].shape
        start, end = row["speaking"]  # the lips speak over the words (and may move around them)
        assert start < words[0]["start"] + 0.2 and end > words[-1]["end"] - 0.3
        assert row["lips_only_s"] < 1.0 and row["sound_only_s"] < 1.0
        assert not [w for w in row["warnings"] if "lips" in w]
    # The same lips over a muted sound (no words), and the words over a still face (a voice
    # off camera): each is flagged, naming what to check.
    for lips, heard, warned in [(z["speaking"], [], "where the sound has no word"),
                                (0 * z["speaking"], words, "while the lips rest")]:  # fmt: skip
        active = Activity(z["times"], lips, 0.5, spans_over(lips, z["times"]))
        entry = dataset.Entry(**row)
        dataset._check_speaking(
            entry, active, [Word(w["text"], w["start"], w["end"]) for w in heard]
        )
        assert warned in " ".join(entry.warnings) and "lipsync sync" in entry.warnings[-1]


def test_on_dask_workers_the_same_clips_come_out_and_a_changed_script_is_redone(built, tmp_path):
    videos, sequential, _ = built
    out = tmp_path / "ds"
    first = dataset.build(videos, out, transcripts=GRID / "transcripts.tsv", workers=2)
    assert sorted(first.built) == ["lbax4n", "pwij3p"] and len(first.failed) == 2
    assert {f.id for f in first.failed} == {"broken", "sound"}
    for clip in ("lbax4n", "pwij3p"):  # the same result as one process in order
        a = np.load(out / "clips" / clip / "frames.npz")
        b = np.load(sequential / "clips" / clip / "frames.npz")
        np.testing.assert_allclose(a["lips"], b["lips"], atol=1e-5)
    assert all(e["key"] for e in manifest(out))
    (videos / "pwij3p.txt").write_text("place white in j three again")  # the script changed
    try:
        again = dataset.build(videos, out, transcripts=GRID / "transcripts.tsv", workers=1)
    finally:
        (videos / "pwij3p.txt").write_text("place white in j three please")
    assert (again.built, again.kept) == (["pwij3p"], ["lbax4n"])
    assert sorted(e["id"] for e in manifest(out)) == ["lbax4n", "pwij3p"]  # one line each
    assert [e["transcript"] for e in manifest(out) if e["id"] == "pwij3p"] == [
        "place white in j three again"
    ]
