"""A reference video to a timeline: the GRID clips through the whole path (tracking, controls,
fusion, A/V offset), from Python, the command line and HTTP, and the bad inputs."""

import json

import numpy as np
import pytest

from bridge_server.cli import main
from bridge_server.core.errors import InputError
from bridge_server.pipeline import bake, sync, track
from tests.conftest import SHARED

GRID = SHARED / "grid" / "videos"
CLIP = GRID / "pwij3p.mpg"  # "place white in j three please"
SCRIPT = "place white in j three please"


@pytest.fixture(scope="module")
def tracked():
    return track(CLIP, text=SCRIPT)


@pytest.mark.slow
def test_a_video_gives_landmarks_controls_and_curves_that_follow_the_face(tracked):
    video = tracked.source["video"]
    assert video["face_found"] == 1.0 and video["frames"] == 75
    assert len(tracked.landmarks.frames) == 75 and len(tracked.landmarks.frames[0]) == 40
    controls = {c.channel: np.array(c.keys) for c in tracked.mouth_controls}
    assert {"jaw_open", "lips_apart", "mouth_close", "smile_left", "pucker"} <= set(controls)
    assert controls["lips_apart"][:, 1].max() > 0.6  # the mouth opens
    assert [w.text.lower() for w in tracked.words] == SCRIPT.split()
    assert abs(video["av_offset_ms"]) < 60  # the clip is in sync


@pytest.mark.slow
def test_closures_survive_any_video_weight_and_weight_zero_is_the_sound(tracked):
    sound_only = bake(CLIP, text=SCRIPT)
    zero = track(CLIP, text=SCRIPT, video_weight=0.0)
    for a, b in zip(sound_only.curves, zero.curves):
        assert a.channel == b.channel
        times = np.linspace(0, 2.9, 300)
        assert np.allclose(a.sample(times), b.sample(times), atol=0.02)
    full = track(CLIP, text=SCRIPT, video_weight=1.0)
    pp = full.curve("PP")
    for p in (p for p in full.phonemes if p.ipa in ("p", "b", "m")):
        assert pp.sample([(p.start + p.end) / 2])[0] > 0.9, p


@pytest.mark.slow
def test_the_sound_shifted_against_the_picture_is_measured(tmp_path):
    import av

    shifted = tmp_path / "late.mkv"
    _delay_audio(CLIP, shifted, 0.2)
    found = sync(shifted)
    assert found.offset_ms == pytest.approx(sync(CLIP).offset_ms + 200, abs=40)
    assert found.confidence > 1.0
    assert av.open(str(shifted)).streams.audio  # (the remux kept the sound)


@pytest.mark.slow
def test_arkit_rigs_take_the_blendshapes(tracked):
    arkit = track(CLIP, text=SCRIPT, viseme_set="arkit")
    jaw = arkit.curve("jawOpen")
    assert max(v for _, v in jaw.keys) > 0.2
    assert arkit.source["video"]["model"] == "landmarker"


@pytest.mark.slow
def test_the_command_writes_timeline_and_plot_and_sync_prints_the_offset(tmp_path, capsys):
    out, png = tmp_path / "take.json", tmp_path / "take.png"
    assert main(["track", str(CLIP), "--text", SCRIPT, "--timeline", str(out), "--plot",
                 str(png), "-q"]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    assert doc["mouth_controls"] and doc["landmarks"]["frames"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["sync", str(CLIP), "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(result["offset_ms"]) < 60 and result["confidence"] > 1.0


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_video_without_sound_follows_the_face_alone(tmp_path):
    silent = tmp_path / "silent.mkv"
    _remux(CLIP, silent, audio=False)
    timeline = track(silent)
    assert not timeline.phonemes and timeline.source["video"]["face_found"] == 1.0
    assert any("no sound" in w.message for w in timeline.warnings)
    assert max(max(v for _, v in c.keys) for c in timeline.curves if c.channel != "sil") > 0.3
    with pytest.raises(InputError, match="has no sound"):
        sync(silent)


def test_sound_without_picture_and_a_damaged_file_are_named(tmp_path):
    with pytest.raises(InputError, match="lipsync bake"):
        track(SHARED / "librivox_kittens" / "en_male_electricity.ogg")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x07" * 3000)
    with pytest.raises(InputError):
        track(broken)


@pytest.mark.slow
def test_no_face_is_an_error_that_says_so(tmp_path):
    blank = tmp_path / "blank.mp4"
    _blank_video(blank)
    with pytest.raises(InputError, match="face"):
        track(blank)


# --- helpers: videos made with PyAV --------------------------------------------------------


def _remux(src, dst, audio: bool = True, audio_delay_s: float = 0.0) -> None:
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        ain = inp.streams.audio[0] if audio else None
        aout = out.add_stream_from_template(ain) if ain else None
        shift = int(audio_delay_s / ain.time_base) if ain else 0
        for packet in inp.demux(*(s for s in (vin, ain) if s is not None)):
            if packet.dts is None:
                continue
            if packet.stream is vin:
                packet.stream = vout
            else:
                packet.pts += shift
                packet.dts += shift
                packet.stream = aout
            out.mux(packet)


def _delay_audio(src, dst, seconds: float) -> None:
    _remux(src, dst, audio=True, audio_delay_s=seconds)


def _blank_video(path) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(25):
            frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), 90 + i, np.uint8), "rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.slow
def test_a_small_face_is_tracked_with_a_warning(tmp_path):
    from tests.videos import grid_frames, write_video

    small = [f[::3, ::3][:96, :120] for f in grid_frames(3)]  # 120x96: ~25 px between the eyes
    path = write_video(tmp_path / "small.mp4", small, [k / 25 for k in range(len(small))])
    timeline = track(path)
    assert timeline.source["video"]["face_found"] > 0.9
    assert any("the face is small" in w.message for w in timeline.warnings)


@pytest.mark.slow
def test_the_resting_mouth_can_be_given_as_a_span(tmp_path, capsys):
    out = tmp_path / "take.json"
    assert main(["track", str(CLIP), "--text", SCRIPT, "--neutral", "2.5:2.9", "--timeline",
                 str(out), "-q"]) == 0  # fmt: skip
    assert main(["track", str(CLIP), "--neutral", "5:6", "--timeline", str(out), "-q"]) == 3
    assert "between 5 and 6 s" in capsys.readouterr().err
    assert main(["track", str(CLIP), "--neutral", "later", "-q"]) == 3


@pytest.mark.slow
def test_a_dark_picture_is_named_as_the_reason(tmp_path):
    from tests.videos import grid_frames, write_video

    frames = grid_frames(3)
    times = [k / 25 for k in range(len(frames))]
    dim = write_video(tmp_path / "dim.mp4", [(f * 0.25).astype(np.uint8) for f in frames], times)
    found = track(dim)  # still a face, with a warning to light it
    assert any("the picture is dark" in w.message for w in found.warnings)
    black = write_video(
        tmp_path / "black.mp4", [(f * 0.02).astype(np.uint8) for f in frames], times
    )
    with pytest.raises(InputError, match="the picture is dark.*well lit"):
        track(black)
