"""Audio input: every format and layout decodes to the same speech, bad files fail clearly.

Format variants are encoded at test time with PyAV from a real LibriVox clip; no media file
is committed.
"""

import re
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from bridge_server.core.errors import EngineUnavailable, InputError
from bridge_server.media.audio import iter_audio, load_audio, wav_bytes

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KITTENS = SHARED / "librivox_kittens"
LONG = KITTENS / "threelittlekittens_01_rountreesmith.ogg"
SHORT = KITTENS / "shorted-threelittlekittens_01_rountreesmith.ogg"
GRID = sorted((SHARED / "grid" / "videos").glob("*.mpg"))
RATE_IN = 48000  # the clip's rate before each variant resamples it
CLIP_S = 8.0


# --- making test files with PyAV ---------------------------------------------------------


@pytest.fixture(scope="session")
def clip() -> np.ndarray:
    """The first 8 s of a real reading, mono float32 at 48 kHz."""
    with av.open(str(SHORT)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE_IN)
        parts = [f.to_ndarray()[0] for fr in c.decode(audio=0) for f in resampler.resample(fr)]
    return np.concatenate(parts)[: int(CLIP_S * RATE_IN)]


def encode(path: Path, clip: np.ndarray, codec: str, rate: int, layout="mono", **kw) -> Path:
    """Write clip with an audio codec (and a few video frames when video= names a codec)."""
    with av.open(str(path), "w", format=kw.get("container")) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        stream.codec_context.options = kw.get("options", {})
        video = video_stream(out, kw["video"]) if "video" in kw else None  # all streams first
        # Stereo gets two different channels, so a wrong downmix would show.
        planes = np.stack([clip, 0.5 * clip]) if layout == "stereo" else clip[None]
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(planes, np.float32), format="fltp", layout=layout
        )
        frame.sample_rate, frame.pts, frame.time_base = RATE_IN, 0, Fraction(1, RATE_IN)
        resampler = av.AudioResampler(
            format=stream.format,
            layout=layout,
            rate=rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        for f in resampler.resample(frame) + resampler.resample(None):
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
        if video:
            mux_video(out, video, len(clip) / RATE_IN)
    return path


def video_stream(out, codec: str):
    stream = out.add_stream(codec, rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    return stream


def mux_video(out, stream, seconds: float) -> None:
    for i in range(round(seconds * 25)):
        image = np.full((48, 64, 3), i * 3 % 256, np.uint8)
        out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
    out.mux(stream.encode(None))


def has_encoder(name: str) -> bool:
    try:
        av.Codec(name, "w")
        return True
    except av.codec.codec.UnknownCodecError:
        return False


@pytest.fixture(scope="session")
def reference(clip, tmp_path_factory) -> np.ndarray:
    """The clip as loaded from a plain 16-bit 48 kHz WAV: what every variant must match."""
    path = encode(tmp_path_factory.mktemp("ref") / "ref.wav", clip, "pcm_s16le", RATE_IN)
    return load_audio(path).samples


def envelope(samples: np.ndarray) -> np.ndarray:
    """RMS per 20 ms at 16 kHz: what lip sync reads from the signal."""
    frames = samples[: len(samples) // 320 * 320].reshape(-1, 320)
    return np.sqrt((frames**2).mean(axis=1))


def same_speech(a: np.ndarray, b: np.ndarray) -> float:
    ea, eb = envelope(a), envelope(b)
    n = min(len(ea), len(eb))
    return float(np.corrcoef(ea[:n], eb[:n])[0, 1])


def assert_clean(audio, seconds: float) -> None:
    assert audio.sample_rate == 16000
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert -1.0 <= audio.samples.min() and audio.samples.max() <= 1.0
    assert audio.duration == pytest.approx(seconds, abs=0.03)


# --- every format decodes to the same speech ---------------------------------------------

WAV = [
    pytest.param(codec, rate, layout, id=f"wav-{codec[4:].removesuffix('le')}-{rate}-{layout}")
    for codec in ("pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_f32le")
    for rate in (8000, 22050, 44100, 48000)
    for layout in ("mono", "stereo")
]


@pytest.mark.slow
@pytest.mark.parametrize("codec, rate, layout", WAV)
def test_wav_sample_formats_rates_and_layouts(codec, rate, layout, clip, reference, tmp_path):
    audio = load_audio(encode(tmp_path / "clip.wav", clip, codec, rate, layout))
    assert_clean(audio, CLIP_S)
    assert audio.source == "clip.wav" and audio.warnings == []
    assert same_speech(audio.samples, reference) > 0.9


OTHER = [
    pytest.param("clip.flac", "flac", 44100, "stereo", {}, id="flac-44100-stereo"),
    pytest.param("clip.mp3", "libmp3lame", 44100, "stereo", {}, id="mp3-44100-stereo"),
    pytest.param("clip.mp3", "libmp3lame", 22050, "mono", {}, id="mp3-22050-mono"),
    pytest.param("clip.m4a", "aac", 48000, "stereo", {}, id="m4a-aac-48000-stereo"),
    pytest.param("clip.ogg", "libopus", 48000, "mono", {}, id="ogg-opus-48000-mono"),
    pytest.param(
        "clip.ogg",
        "vorbis",
        44100,
        "stereo",
        {"options": {"strict": "experimental"}},
        id="ogg-vorbis-44100-stereo",
    ),
    pytest.param("clip.mp4", "aac", 44100, "stereo", {"video": "mpeg4"}, id="mp4-aac+mpeg4"),
    pytest.param("clip.mov", "pcm_s16le", 48000, "mono", {"video": "mpeg4"}, id="mov-pcm+mpeg4"),
    pytest.param("clip.mkv", "libopus", 48000, "stereo", {"video": "mpeg4"}, id="mkv-opus+mpeg4"),
    pytest.param(
        "clip.mpg",
        "mp2",
        44100,
        "stereo",
        {"video": "mpeg1video", "container": "mpeg"},
        id="mpg-mp2+mpeg1video",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, codec, rate, layout, kw", OTHER)
def test_compressed_formats_and_video_containers(
    name, codec, rate, layout, kw, clip, reference, tmp_path
):
    if not has_encoder(codec):
        pytest.skip(f"this PyAV wheel has no {codec} encoder")
    audio = load_audio(encode(tmp_path / name, clip, codec, rate, layout, **kw))
    assert_clean(audio, CLIP_S)
    assert audio.warnings == []
    assert same_speech(audio.samples, reference) > 0.9


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.name) for p in sorted(set(KITTENS.glob("*.ogg")) - {LONG}) + GRID],
)
def test_real_recordings_keep_their_length(path):
    """(The 356 s reading is checked in the long-recording test below.)"""
    with av.open(str(path)) as c:
        seconds = c.duration / 1e6
    audio = load_audio(path)
    assert_clean(audio, seconds)
    assert audio.source == path.name and audio.warnings == []


@pytest.mark.slow
def test_upload_bytes_decode_like_the_file():
    from_file = load_audio(SHORT)
    upload = load_audio(SHORT.read_bytes(), name="take1.ogg")
    assert upload.source == "take1.ogg"
    np.testing.assert_array_equal(upload.samples, from_file.samples)


@pytest.mark.slow
def test_other_sample_rate_on_request(clip, tmp_path):
    audio = load_audio(encode(tmp_path / "clip.wav", clip, "pcm_s16le", 44100), sample_rate=8000)
    assert audio.sample_rate == 8000 and audio.duration == pytest.approx(CLIP_S, abs=0.03)


def test_silence_is_valid_audio(tmp_path):
    path = tmp_path / "silence.wav"
    path.write_bytes(wav_bytes(np.zeros(32000), 16000))
    audio = load_audio(path)
    assert audio.duration == pytest.approx(2.0) and not audio.samples.any()
    assert audio.warnings == []


@pytest.mark.slow
def test_very_short_audio_loads(clip, tmp_path):
    audio = load_audio(
        encode(tmp_path / "short.wav", clip[: int(0.2 * RATE_IN)], "pcm_s16le", 44100)
    )
    assert_clean(audio, 0.2)


# --- truncated and damaged files ---------------------------------------------------------


def cut(source: Path, tmp_path: Path, fraction: float) -> Path:
    data = source.read_bytes()
    path = tmp_path / f"cut-{source.name}"
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


@pytest.fixture
def mp3(clip, tmp_path) -> Path:
    if not has_encoder("libmp3lame"):
        pytest.skip("this PyAV wheel has no libmp3lame encoder")
    return encode(tmp_path / "clip.mp3", clip, "libmp3lame", 44100, "stereo")


def assert_truncated(audio, at_least: float, at_most: float) -> None:
    assert at_least < audio.duration < at_most
    (warning,) = audio.warnings
    assert f"{audio.source} is truncated at {audio.duration:.1f} s" in warning
    assert "re-download" in warning


def test_half_an_ogg_gives_the_first_half_with_a_warning(tmp_path):
    assert_truncated(load_audio(cut(SHORT, tmp_path, 0.5)), 15.0, 21.0)


@pytest.mark.slow
def test_half_an_mp3_gives_the_first_half_with_a_warning(mp3, tmp_path):
    audio = load_audio(cut(mp3, tmp_path, 0.5))
    assert_truncated(audio, 3.0, 5.0)
    assert f"its header says {CLIP_S:.1f} s" in audio.warnings[0]


def test_half_a_flac_stops_at_the_damaged_frame(clip, tmp_path):
    flac = encode(tmp_path / "clip.flac", clip, "flac", 44100)
    audio = load_audio(cut(flac, tmp_path, 0.5))
    assert_truncated(audio, 3.0, 5.0)
    assert "cannot be decoded past that point" in audio.warnings[0]


def test_iter_audio_reports_truncation_too(tmp_path):
    warnings: list[str] = []
    chunks = list(iter_audio(cut(SHORT, tmp_path, 0.5), chunk_seconds=5, warnings=warnings))
    assert len(chunks) == 4 and "is truncated at" in warnings[0]


@pytest.mark.slow
def test_under_half_a_second_of_a_damaged_file_is_an_error(mp3, tmp_path):
    path = tmp_path / "stub.mp3"
    path.write_bytes(mp3.read_bytes()[:3000])
    with pytest.raises(InputError, match=r"stub\.mp3 is damaged: .* under 0\.5 s of it decodes"):
        load_audio(path)


@pytest.mark.slow
def test_m4a_cut_before_its_index_is_an_error(clip, tmp_path):
    m4a = encode(tmp_path / "clip.m4a", clip, "aac", 48000)
    with pytest.raises(InputError, match=r"cut-clip\.m4a is not an audio or video file .*damaged"):
        load_audio(cut(m4a, tmp_path, 0.5))


# --- not audio at all --------------------------------------------------------------------


def png(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = 16, 16, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


BAD = [
    pytest.param(
        lambda d: d / "missing.wav", r"audio file not found: .*missing\.wav", id="missing"
    ),
    pytest.param(lambda d: d, r"is a folder, not an audio file", id="folder"),
    pytest.param(
        lambda d: d / "empty.wav", r"empty\.wav is empty \(0 bytes\); fix: give a WAV", id="empty"
    ),
    pytest.param(
        lambda d: d / "notes.wav",
        r"notes\.wav is not an audio or video file FFmpeg can read.*fix: give a WAV",
        id="text-named-wav",
    ),
    pytest.param(
        lambda d: png(d / "face.png"),
        r"face\.png is not an audio file \(FFmpeg reads it as piped png sequence\); fix:",
        id="png",
    ),
    pytest.param(
        lambda d: d / "no-samples.wav", r"no-samples\.wav holds no audio samples", id="zero-samples"
    ),
]


@pytest.mark.parametrize("make, message", BAD)
def test_bad_files_say_what_is_wrong_and_the_fix(make, message, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.wav").write_text("Three little kittens, they lost their mittens.\n")
    (tmp_path / "no-samples.wav").write_bytes(wav_bytes(np.zeros(0), 16000))
    with pytest.raises(InputError, match=message):
        load_audio(make(tmp_path))


def test_video_without_sound(tmp_path):
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as out:
        mux_video(out, video_stream(out, "mpeg4"), 1.0)
    with pytest.raises(InputError, match=r"silent\.mp4 has no audio track; fix: give a file with"):
        load_audio(path)


def test_empty_upload():
    with pytest.raises(InputError, match=r"clip\.ogg is empty \(0 bytes\)"):
        load_audio(b"", name="clip.ogg")


def test_missing_pyav_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` raise ImportError
    with pytest.raises(EngineUnavailable, match=re.escape("pip install av")):
        load_audio(SHORT)


# --- long recordings ---------------------------------------------------------------------


@pytest.mark.slow
def test_iter_audio_streams_the_long_reading():
    chunks = iter_audio(LONG)
    first = next(chunks)  # a generator: chunks come while the file is still being decoded
    rest = list(chunks)
    assert len(first) == 30 * 16000
    assert all(len(c) == 30 * 16000 for c in rest[:-1]) and 0 < len(rest[-1]) <= 30 * 16000
    whole = load_audio(LONG)
    assert whole.duration == pytest.approx(356.571, abs=0.03)
    np.testing.assert_array_equal(np.concatenate([first, *rest]), whole.samples)
