"""Video decoding: exact frame times, sizes and every way a file can be unusable."""

import av
import numpy as np
import pytest

from bridge_server.core.errors import InputError
from bridge_server.media.video import iter_frames, probe

from .conftest import SHARED
from .videos import GRID, write_video

OGG = SHARED / "librivox_kittens" / "en_male_electricity.ogg"


def _ramp(n: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    return [np.full((height, width, 3), 10 * i % 256, np.uint8) for i in range(n)]


@pytest.mark.slow
@pytest.mark.parametrize("clip", GRID, ids=lambda p: p.stem)
def test_grid_clip_has_75_frames_at_exact_25_fps_times(clip):
    frames = list(iter_frames(clip))
    times = np.array([t for t, _ in frames])
    assert len(frames) == 75
    np.testing.assert_allclose(times, np.arange(75) / 25, atol=1e-9)
    assert all(image.shape == (288, 360, 3) and image.dtype == np.uint8 for _, image in frames)
    assert all(image.flags.c_contiguous for _, image in frames)  # mediapipe needs this


def test_probe_reads_the_headers_of_a_grid_clip():
    info = probe(GRID[0])
    assert (info.width, info.height, info.fps) == (360, 288, 25.0)
    assert info.has_audio and info.codec == "mpeg1video"
    assert 2.9 < info.duration <= 3.0


@pytest.mark.slow
def test_bytes_decode_like_the_path():
    from_path = list(iter_frames(GRID[1]))
    from_bytes = list(iter_frames(GRID[1].read_bytes()))
    assert [t for t, _ in from_path] == [t for t, _ in from_bytes]
    assert np.array_equal(from_path[40][1], from_bytes[40][1])


def test_variable_frame_rate_keeps_each_frames_time(tmp_path):
    times = [0.0, 0.04, 0.1, 0.13, 0.3, 0.31, 0.5, 0.52, 1.25]
    path = write_video(tmp_path / "vfr.mp4", _ramp(len(times)), times)
    assert [t for t, _ in iter_frames(path)] == pytest.approx(times, abs=1e-9)


def test_times_start_at_zero_when_the_stream_does_not(tmp_path):
    path = write_video(tmp_path / "late.ts", _ramp(5), [0.0, 0.04, 0.08, 0.12, 0.16], fmt="mpegts")
    with av.open(str(path)) as container:
        assert container.streams.video[0].start_time > 0  # MPEG-TS starts its clock later
    assert [t for t, _ in iter_frames(path)] == pytest.approx([0, 0.04, 0.08, 0.12, 0.16])


@pytest.mark.parametrize(("max_side", "shape"), [(180, (144, 180, 3)), (1000, (288, 360, 3))])
def test_max_side_scales_down_only(max_side, shape):
    t, image = next(iter_frames(GRID[0], max_side=max_side))
    assert image.shape == shape and image.flags.c_contiguous


def test_rotated_phone_video_comes_out_upright(tmp_path):
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :32] = 255  # left half white
    # -90: the display matrix turns the picture clockwise, as a phone held upright records.
    path = write_video(tmp_path / "phone.mp4", [image] * 3, [0, 0.04, 0.08], rotation=-90)
    upright = next(iter_frames(path))[1]
    assert upright.shape == (64, 48, 3)
    assert upright[:28].mean() > 200 and upright[36:].mean() < 50  # left went to the top
    assert (probe(path).width, probe(path).height) == (48, 64)


def test_audio_file_is_sent_to_lipsync_bake():
    for call in (probe, lambda s: list(iter_frames(s))):
        with pytest.raises(InputError, match="has only sound: use `lipsync bake`"):
            call(OGG)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"\x00\x17garbage, not a video" * 64, "not a video file FFmpeg can read"),
    ],
    ids=["empty", "garbage"],
)
def test_unusable_bytes_are_input_errors(data, message, tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    for source in (data, path):
        with pytest.raises(InputError, match=message):
            list(iter_frames(source))
        with pytest.raises(InputError, match=message):
            probe(source)


def test_missing_file_and_folder_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        probe(tmp_path / "nothing.mp4")
    with pytest.raises(InputError, match="is a folder"):
        list(iter_frames(tmp_path))


def test_video_track_without_frames_is_an_input_error(tmp_path):
    path = tmp_path / "noframes.mkv"
    with av.open(str(path), "w") as container:  # a video track, but only sound is muxed
        video = container.add_stream("mjpeg", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuvj420p"
        sound = container.add_stream("pcm_s16le", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(sound.encode(frame))
        container.mux(sound.encode())
    for call in (probe, lambda s: list(iter_frames(s))):
        with pytest.raises(InputError, match="no frame of it decodes"):
            call(path)


@pytest.mark.slow
def test_a_truncated_clip_gives_the_frames_before_the_cut():
    data = GRID[2].read_bytes()
    frames = list(iter_frames(data[: len(data) // 2]))
    assert 20 < len(frames) < 75
    np.testing.assert_allclose([t for t, _ in frames], np.arange(len(frames)) / 25, atol=1e-9)
