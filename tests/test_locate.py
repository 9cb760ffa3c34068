"""Locating a script in a recording: time warping on known paces, and on another voice."""

import numpy as np
import pytest

from bridge_server.engines.g2p import pronounce
from bridge_server.speech.locate import HOP_S, features, locate, warp
from bridge_server.speech.recognize import LOOSE


def test_warp_follows_a_changing_pace_and_a_long_pause():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(300, 13)).astype(np.float32)
    # x: y's first half slowed to 1.5x, a pause 40 frames long (y's frame 150, held), then the
    # second half at 0.75x
    source = np.concatenate(
        [np.arange(0, 150, 1 / 1.5), np.full(40, 150.0), np.arange(150, 300, 1 / 0.75)]
    ).astype(int)
    x = y[source] + rng.normal(scale=0.1, size=(len(source), 13)).astype(np.float32)
    found = dict(warp(x, y))  # x frame -> the y frame it is paired with (the last one)
    error = np.abs(np.array([found[i] for i in range(len(x))]) - source)
    assert np.mean(error <= 1) > 0.95 and error.max() <= 3


@pytest.mark.slow
def test_features_are_comparable_across_sample_rates(espeak):
    speech = espeak.synthesize("The birch canoe slid on the smooth planks.")
    from tests.test_pocketsphinx import to_16k

    a = features(speech.audio, speech.sample_rate)
    b = features(to_16k(speech.audio, speech.sample_rate), 16000)
    n = min(len(a), len(b))
    assert abs(len(a) - len(b)) <= 1 and np.mean(np.abs(a[:n] - b[:n])) < 0.3


@pytest.mark.slow
def test_another_voice_is_located_word_by_word(piper, sentences):
    """Piper's reading of ten sentences, located by eSpeak's reading of the same words."""
    from tests.test_pocketsphinx import to_16k

    text = " ".join(sentences[:10])
    speech = piper.synthesize(text)
    words = [p.word for p in pronounce(text)]
    assert len(words) == len(speech.words)
    found = locate(to_16k(speech.audio, speech.sample_rate), 16000, words)
    assert [w.text for w in found] == words
    error = np.abs([f.start - w.start for f, w in zip(found, speech.words)])
    # Measured: median 45 ms, 90% within 0.16 s, worst 0.4 s (a word or two, well within LOOSE)
    assert np.median(error) < 2 * HOP_S and np.percentile(error, 90) < 0.25
    starts = np.array([w.start for w in speech.words])
    middles = np.array([(f.start + f.end) / 2 for f in found])
    index_error = np.abs(np.searchsorted(middles, starts) - np.arange(len(words)))
    assert index_error.max() < LOOSE / 2
