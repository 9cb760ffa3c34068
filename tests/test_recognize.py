"""The recognize stage: its fallbacks on plain records (spreading phones, placing a script),
and a long real reading with its script."""

import numpy as np
import pytest

from bridge_server.core.errors import Cancelled
from bridge_server.core.spread import spread
from bridge_server.core.timeline import Word
from bridge_server.engines.g2p import can_pronounce, pronounce
from bridge_server.speech.recognize import _place_script, _stretches
from tests.conftest import SHARED

KITTENS = SHARED / "librivox_kittens"


def test_phones_spread_over_word_times_with_vowels_longest():
    words = [Word("Guten", 0.5, 0.9), Word("Morgen", 0.9, 1.4)]
    prons = [p.phonemes for p in pronounce("Guten Morgen", "de")]
    phones = spread(words, prons)
    assert [p.ipa for p in phones] == [x for p in prons for x in p]
    assert phones[0].start == 0.5 and phones[-1].end == pytest.approx(1.4)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(phones, phones[1:]))
    vowel = next(p for p in phones if p.ipa == "u")
    stop = next(p for p in phones if p.ipa == "t")
    assert vowel.end - vowel.start > stop.end - stop.start
    assert {p.word for p in phones} == {0, 1}


def test_a_script_is_placed_on_whisper_words_and_gaps_are_shared():
    heard = [Word("Three", 0.0, 0.3), Word("little", 0.3, 0.6), Word("kitens.", 0.6, 1.0),
             Word("lost", 1.2, 1.5)]  # fmt: skip
    warnings = []
    placed = _place_script("Three little kittens, they lost", heard, "en", warnings)
    assert [w.text for w in placed] == ["Three", "little", "kittens", "they", "lost"]
    assert placed[2].start == pytest.approx(0.6) and placed[3].end == pytest.approx(1.2)
    assert placed[4].start == 1.2 and warnings == []


def test_a_script_for_other_audio_is_flagged():
    heard = [Word(w, i * 0.3, i * 0.3 + 0.3) for i, w in enumerate("the weather is fine".split())]
    warnings = []
    _place_script("Completely unrelated sentence about kittens", heard, "en", warnings)
    assert "check that the script belongs to this audio" in warnings[0]


def test_languages_whisper_may_guess_are_checked_against_the_pronunciation_rules():
    # Whisper has taken noisy English for Nynorsk ('nn'), which eSpeak NG has no voice for:
    # the script is then read as English instead of failing on a voice nobody asked for
    assert can_pronounce("en") and can_pronounce("cs") and can_pronounce("ja")
    assert not can_pronounce("nn") and not can_pronounce("xx")


def test_stretches_stay_short_and_keep_every_word():
    words = [Word(f"w{i}", i * 0.5, i * 0.5 + 0.4) for i in range(200)]  # 100 s of speech
    stretches = _stretches(words, 100.0)
    assert all(s.end - s.start <= 30.5 for s in stretches)
    assert [w for s in stretches for w in s.words] == words


@pytest.mark.slow
def test_long_audio_is_cut_at_pauses():
    import numpy as np

    from bridge_server.speech.recognize import RATE, _pause_cuts

    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 25 * 60 * RATE).astype(np.float32)  # 25 minutes of noise
    for quiet_s in (595.0, 1190.0):  # two pauses near the 10-minute marks
        audio[int(quiet_s * RATE) : int((quiet_s + 0.3) * RATE)] = 0.0
    cuts = _pause_cuts(audio, 600.0)
    assert cuts[0] == 0 and cuts[-1] == len(audio) / RATE and len(cuts) == 4
    assert all(b - a <= 600 for a, b in zip(cuts, cuts[1:]))
    assert 595.1 <= cuts[1] <= 595.2 and 1190.1 <= cuts[2] <= 1190.2  # the pauses' middles


# --- a long reading with its script -----------------------------------------------------------


@pytest.fixture(scope="module")
def reading():
    from bridge_server.media.audio import Audio, load_audio

    # The first 150.4 s (a pause) and the script's first 452 words ("... nice new mittens."):
    # long enough to be located and aligned in stretches, a fifth of the reading's run time.
    audio = load_audio(KITTENS / "threelittlekittens_01_rountreesmith.ogg")
    audio = Audio(audio.samples[: int(150.4 * audio.sample_rate)], audio.sample_rate, audio.source)
    words = (KITTENS / "threelittlekittens_01_rountreesmith.txt").read_text().split()
    return audio, " ".join(words[:452])


@pytest.mark.slow
def test_a_long_reading_with_its_script_needs_no_transcription(reading, monkeypatch):
    from bridge_server.speech import recognize as stage
    from tests.test_pocketsphinx import KITTENS_FROM, load_16k

    audio, script = reading

    def no_whisper(*args, **kwargs):
        raise AssertionError("Whisper ran although the script was given")

    monkeypatch.setattr(stage, "_transcribe", no_whisper)

    def cancel(done, stage):
        if stage == "aligning":
            raise Cancelled("stop")

    with pytest.raises(Cancelled):  # the workers are busy; what follows finds them ready
        stage.recognize(audio, text=script, progress=cancel)
    seen = []
    result = stage.recognize(  # as aligned: compared below with one unrefined pass
        audio, text=script, refine=False, progress=lambda f, s: seen.append((f, s))
    )
    assert result.transcript == "script" and result.warnings == []
    spoken = stage._spoken(script)
    assert [w.text for w in result.words] == spoken
    times = [t for w in result.words for t in (w.start, w.end)]
    assert times == sorted(times) and times[-1] <= audio.duration
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {s for _, s in seen} == {"locating the script", "aligning"}

    # The 36.8 s cut of the same reading, aligned in one pass, agrees word for word.
    from bridge_server.engines import pocketsphinx

    cut = load_16k(KITTENS / "shorted-threelittlekittens_01_rountreesmith.ogg")
    start = KITTENS_FROM.split()  # "and she handed", where the cut starts
    first = next(i for i in range(len(spoken)) if spoken[i : i + 3] == start)
    one_pass = pocketsphinx.align(cut, spoken[first : first + 120])
    if one_pass.failed:  # the cut may hold a few words fewer: trim to what it holds
        one_pass = pocketsphinx.align(cut, spoken[first : first + 110])
    assert not one_pass.failed
    n = len(one_pass.words)
    offset = result.words[first].start - one_pass.words[0].start
    error = np.abs(
        [a.start - b.start - offset for a, b in zip(result.words[first:], one_pass.words)]
    )
    assert np.median(error) < 0.02 and np.mean(error[1 : n - 1] < 0.05) > 0.9


@pytest.mark.slow
def test_a_long_recording_with_the_wrong_script_falls_back_to_whisper(reading):
    """A minute of the reading given the Harvard sentences: no stretch aligns, so Whisper hears
    the words, the script is placed on them, and a warning says they do not match."""
    from bridge_server.media.audio import Audio
    from bridge_server.speech.recognize import recognize
    from tests.conftest import DATA

    audio, _ = reading
    minute = Audio(audio.samples[: 60 * 16000], 16000, "first minute")
    wrong = " ".join(DATA.joinpath("harvard.txt").read_text().splitlines()[:12])
    result = recognize(minute, text=wrong)
    assert any("check that the script belongs to this audio" in w for w in result.warnings)
    times = [t for w in result.words for t in (w.start, w.end)]
    assert times == sorted(times) and times[-1] <= 60.0
