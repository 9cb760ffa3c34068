"""Intelligibility and the naturalness proxies of the built-in voices."""

import json

import numpy as np
import pytest

from bridge_server.cli import main
from bridge_server.evaluate.speech import edits, evaluate_tts, f0_spread, normalise, pitch

SR = 16000


def tone(hz, seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    hz = np.broadcast_to(hz, t.shape)
    return 0.5 * np.sin(2 * np.pi * np.cumsum(hz) / SR)


def test_words_are_compared_as_a_listener_would():
    assert normalise("It's 5 o'clock, Mr. Smith!") == ["it's", "five", "o'clock", "mr", "smith"]
    assert edits("the cat sat".split(), "the cat sat".split()) == 0
    assert edits("the cat sat".split(), "a cat sat down".split()) == 2


def test_pitch_follows_a_tone_and_its_glide():
    f0 = pitch(tone(150.0), SR)
    assert np.nanmedian(f0) == pytest.approx(150, rel=0.03)
    assert f0_spread(tone(150.0), SR) < 0.1  # a monotone does not move
    glide = np.linspace(100, 200, SR)  # one octave: 12 semitones, spread ~ 12 / sqrt(12)
    assert f0_spread(tone(glide), SR) == pytest.approx(12 / np.sqrt(12), rel=0.15)
    noise = np.random.default_rng(0).normal(0, 0.3, SR)
    assert np.isnan(pitch(noise, SR)).mean() > 0.8  # noise is unvoiced


@pytest.mark.slow
def test_the_neural_voice_moves_its_pitch_more_than_the_formant_voice(sentences):
    espeak, piper = (evaluate_tts(sentences[:2], v) for v in ("espeak", "piper"))
    for r in (espeak, piper):
        assert 0 <= r.wer <= 1.5 and all(s.heard for s in r.sentences)
    assert piper.f0_spread_st > espeak.f0_spread_st
    assert piper.wer <= espeak.wer  # Whisper hears the neural voice at least as well


@pytest.mark.slow
def test_the_command_prints_a_report_and_refuses_an_empty_file(tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("The birch canoe slid on the smooth planks.\n")
    assert main(["evaluate-tts", str(lines), "--voice", "espeak", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)[0]
    assert report["voice"] == "espeak" and len(report["sentences"]) == 1
    lines.write_text("\n\n")
    assert main(["evaluate-tts", str(lines), "--voice", "espeak", "-q"]) == 3
