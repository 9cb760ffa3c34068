"""Live mode for real: a recording played as a stream, the mouth received over OSC."""

import numpy as np
import pytest

from bridge_server.cli import main
from bridge_server.media.audio import wav_bytes
from bridge_server.osc.live import stream
from tests.conftest import said_first
from tests.test_osc import PythonReceiver

LINE = "Bob put the big blue map back in the box."
LATENCY_S = 0.05  # a frame shows the sound heard about this long before (p50 53 ms learned)


@pytest.fixture
def receiver():
    r = PythonReceiver()
    yield r
    r.close()


@pytest.mark.slow
@pytest.mark.parametrize("motion", ["learned", "rules"])
def test_the_mouth_follows_the_sound_closely(receiver, motion):
    speech = said_first(
        "import pickle, sys; from bridge_server import engines; "
        "pickle.dump(engines.create('espeak').synthesize(sys.argv[1]), sys.stdout.buffer)",
        LINE,
    )
    stats = stream(wav_bytes(speech.audio, speech.sample_rate), "127.0.0.1", receiver.port,
                   motion=motion)  # fmt: skip
    bundles = receiver.received(stats.frames_sent + 1)
    assert len(bundles) == stats.frames_sent + 1  # every frame, then the rest frame
    assert abs(stats.frames_sent - speech.duration * 60) <= 2
    # Measured: sound-to-packet latency p50 ~100 ms, p95 ~210 ms (rules); ~53 and ~56 (learned)
    assert stats.latency(50) < (250 if motion == "rules" else 100)
    # Where the lips close, in the sound's time: frame i is sent once i/60 s of sound has been
    # heard, so this is what the stream decided, however busy the machine (the wall clock's
    # share is the latency above).
    closed = [
        i / 60
        for i, b in enumerate(bundles[:-1])
        if dict((m[0], m[1]) for m in b.messages)["/lipsync/PP"] > 0.4
    ]
    closures = [p.start for p in speech.phonemes if p.ipa in ("p", "b", "m")]
    near = [any(0 <= t - c <= 0.35 for t in closed) for c in closures]
    # eSpeak's sound differs a little with what it said before (so the line is said first, in
    # a fresh process), and the phone loop's partial hypotheses with it: said after other
    # tests, rules closed on 4 to 9 of the 9 p/b/m (4 once, under CI); said first, on 9 of 9
    # (6 runs, both motions).
    assert np.mean(near) >= (0.5 if motion == "rules" else 0.9)  # soon after the p/b/m
    assert all(m[1] == 0.0 for m in bundles[-1].messages)  # and rest at the end


@pytest.mark.slow
def test_the_command_streams_a_file_live_and_refuses_both_inputs(
    espeak, receiver, tmp_path, capsys
):
    speech = espeak.synthesize("Hello there.")
    wav = tmp_path / "take.wav"
    wav.write_bytes(wav_bytes(speech.audio, speech.sample_rate))
    assert main(["osc", "--live", str(wav), "--to", f"127.0.0.1:{receiver.port}"]) == 0
    assert "latency p50" in capsys.readouterr().err
    assert main(["osc", "--to", f"127.0.0.1:{receiver.port}"]) == 3
    assert "--live AUDIO" in capsys.readouterr().err


def test_a_missing_live_model_says_how_to_make_one_before_sending(monkeypatch, receiver, tmp_path):
    from bridge_server.core.errors import EngineUnavailable
    from bridge_server.mouth import listen

    monkeypatch.setattr(listen, "SHIPPED", tmp_path / "gone.onnx")
    listen.LiveMotionModel.shipped.cache_clear()
    try:
        with pytest.raises(EngineUnavailable, match="train_live_motion.py.*--motion rules"):
            stream(b"not even read", "127.0.0.1", receiver.port)
    finally:
        listen.LiveMotionModel.shipped.cache_clear()
    assert receiver.received(1, timeout=0.3) == []  # nothing was sent


@pytest.mark.slow
@pytest.mark.parametrize("motion", ["learned", "rules"])
def test_arkit_receivers_get_rounded_lips_on_rounded_vowels(espeak, motion):
    """Streamed to an ARKit receiver, the lips pucker on the vowels of "who knew you two" and
    stay spread on those of "see me eat cheese": learned, mouthPucker is a channel the live
    model learned from real faces; rules, the phone loop's visemes."""
    rounding = {}
    for text in ("Who knew you two.", "See me eat cheese."):
        speech, receiver = espeak.synthesize(text), PythonReceiver()  # a receiver per line
        try:
            stats = stream(wav_bytes(speech.audio, speech.sample_rate), "127.0.0.1",
                           receiver.port, preset="arkit", realtime=False, motion=motion)  # fmt: skip
            bundles = receiver.received(stats.frames_sent + 1)[:-1]
        finally:
            receiver.close()
        frames = [dict((m[0], m[1]) for m in b.messages) for b in bundles]
        vowels = [p for p in speech.phonemes if p.ipa[0] in "uiː"]  # the line's vowels
        shown = [f["/lipsync/arkit/mouthPucker"] + f["/lipsync/arkit/mouthFunnel"]
                 for i, f in enumerate(frames)
                 if any(p.start <= i / 60 - LATENCY_S <= p.end for p in vowels)]  # fmt: skip
        assert len(shown) > 10, speech.phonemes
        rounding[text] = np.mean(shown)
    # Measured: learned 0.105 against 0.004 (the model before it learned mouthPucker: 0.034 against
    # 0.004, its table's); rules 1.05 against 0.025.
    assert rounding["Who knew you two."] > 5 * rounding["See me eat cheese."], rounding
