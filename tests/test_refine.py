"""Boundary refinement: the model's inputs, the order it keeps, and what it does to real timing."""

from __future__ import annotations

import numpy as np
import pytest

from bridge_server.core.errors import EngineUnavailable, InputError
from bridge_server.core.timeline import Phoneme, Word
from bridge_server.media.audio import Audio, load_audio, wav_bytes
from bridge_server.speech import refine as R
from bridge_server.speech.recognize import recognize
from tests.conftest import SHARED, said_first


def phones(spec: str) -> list[Phoneme]:
    """'b 0.10 0.16 ɑ 0.16 0.40 _ k 0.55 0.60' (word index from the order of '_' breaks)."""
    out, word, parts = [], 0, spec.split()
    i = 0
    while i < len(parts):
        if parts[i] == "_":
            word, i = word + 1, i + 1
            continue
        out.append(Phoneme(parts[i], float(parts[i + 1]), float(parts[i + 2]), word))
        i += 3
    return out


def test_every_start_and_every_end_before_a_pause_is_a_boundary_with_its_sides_classes():
    found = R.boundaries(phones("b 0.10 0.16 ɑ 0.16 0.40 _ s 0.55 0.60"))
    assert [(b.time, b.after, b.before) for b in found] == [
        (0.10, -1, 0), (0.16, 0, 1), (0.40, 1, -1), (0.55, -1, 2), (0.60, 2, -1)
    ]  # fmt: skip
    names = [(R.CLASSES[b.left], R.CLASSES[b.right]) for b in found]
    assert names[:3] == [("silence", "stop"), ("stop", "vowel"), ("vowel", "silence")]
    assert names[3][1] == "fricative"


def test_windows_hold_the_hops_around_each_boundary_and_zeros_past_the_ends():
    mel = np.arange(100 * 40, dtype=np.float32).reshape(100, 40)
    w = R.windows(mel, np.array([0.0, 0.25]))
    assert w.shape == (2, 2 * R.HALF + 1, 40)
    assert np.all(w[0, : R.HALF] == 0) and np.array_equal(w[0, R.HALF], mel[0])
    assert np.array_equal(w[1, R.HALF], mel[50])  # 0.25 s is hop 50 of 5 ms


class Pushy:
    """A stand-in scorer that moves every boundary by a fixed amount, to check the ordering
    rules (the real model's effect is measured below on real sound)."""

    sure = 0.0

    def __init__(self, shift: float):
        self.shift = shift

    def offsets(self, mel, classes, prior_s=None):
        n = len(mel)
        return np.full(n, self.shift), np.ones(n)


def test_refined_phones_stay_ordered_joined_and_words_follow_them():
    ps = phones("b 0.10 0.16 ɑ 0.16 0.19 t 0.19 0.30 _ s 0.55 0.60")
    words = [Word("bot", 0.10, 0.30), Word("s", 0.55, 0.60)]
    sound = Audio(np.zeros(16000, np.float32), 16000, "silence")
    for shift in (-0.05, 0.05):
        new, new_words = R.refine(sound, ps, words, Pushy(shift))
        assert all(p.end - p.start >= R.MIN_PHONE_S - 1e-9 for p in new)
        assert all(a.end <= b.start + 1e-9 for a, b in zip(new, new[1:]))
        assert new[0].end == new[1].start and new[1].end == new[2].start  # still one word
        assert (new_words[0].start, new_words[0].end) == (new[0].start, new[2].end)
    assert R.refine(sound, [], words, Pushy(0.05)) == ([], words)


def test_phones_next_to_a_pause_start_and_end_where_the_sound_does_but_not_in_noise():
    rng = np.random.default_rng(0)
    sound = np.zeros(16000, np.float32)
    sound[4000:12000] = 0.3 * rng.standard_normal(8000)  # 0.25-0.75 s: the speech
    ps = phones("s 0.05 0.40 ɑ 0.40 0.95")  # the aligner ran both ends into the silence
    quiet = Audio(sound + 1e-4 * rng.standard_normal(16000).astype(np.float32), 16000, "quiet")
    new, words = R.refine(quiet, ps, [Word("saw", 0.05, 0.95)], Pushy(0.0))
    assert (new[0].start, new[1].end) == pytest.approx((0.25, 0.75), abs=0.006)
    assert new[0].end == new[1].start == 0.40  # a joined boundary is the model's alone
    assert (words[0].start, words[0].end) == (new[0].start, new[1].end)
    noisy = Audio(sound + 0.01 * rng.standard_normal(16000).astype(np.float32), 16000, "noisy")
    assert R.refine(noisy, ps, [], Pushy(0.0))[0] == ps  # 30 dB down: not silence enough
    # a whispered line and, after it, a door slam 40 dB louder: the speech is no silence
    slam = np.concatenate([0.01 * quiet.samples, rng.uniform(-1, 1, 8000).astype(np.float32)])
    new, _ = R.refine(Audio(slam, 16000, "slam"), ps, [], Pushy(0.0))
    assert (new[0].start, new[1].end) == pytest.approx((0.25, 0.75), abs=0.006)


def test_a_real_recording_line_ends_where_its_sound_ends_not_in_the_silence_after_it(tmp_path):
    """A man saying "Electricity." (Rhubarb's cues: speech from 0.10 to 0.96 s), with half a
    second of quiet before and after: the aligner lets the last vowel run on 70 ms into it."""
    clip = load_audio(SHARED / "librivox_kittens" / "en_male_electricity.ogg").samples
    pad = np.random.default_rng(0).normal(0, 1e-4, 8000).astype(np.float32)
    sound = Audio(np.concatenate([pad, clip, pad]), 16000, "electricity")
    aligned = recognize(sound, text="Electricity.", refine=False).words[0]
    refined = recognize(sound, text="Electricity.").words[0]
    assert aligned.end > 0.5 + 0.96 + 0.04
    assert (refined.start, refined.end) == pytest.approx((0.5 + 0.10, 0.5 + 0.96), abs=0.02)


class Scores:
    """An onnxruntime session stand-in with fixed logits: two equally likely candidates, one
    40 ms early, one 5 ms late."""

    def __init__(self):
        self.logits = np.full((1, 2 * R.REACH + 1), -10.0, np.float32)
        self.logits[0, [R.REACH - 8, R.REACH + 1]] = 0.0

    def get_modelmeta(self):
        meta = {"features_version": R.FEATURES_VERSION, "sure": "0.25"}
        return type("Meta", (), {"custom_metadata_map": meta})()

    def get_inputs(self):
        return [type("In", (), {"name": n, "shape": [1, k]})()
                for n, k in (("mel", R.MELS), ("classes", 2 * len(R.CLASSES)))]  # fmt: skip

    def run(self, _outputs, _inputs):
        return [self.logits]


def test_where_the_aligner_placed_a_boundary_a_far_candidate_must_be_much_likelier_to_win():
    model = R.BoundaryModel(Scores(), "scores")
    mel, classes = np.zeros((1, 2 * R.HALF + 1, R.MELS), np.float32), np.zeros((1, 14), np.float32)
    alone, _ = model.offsets(mel, classes)
    trusted, sure = model.offsets(mel, classes, R.ALIGNED_PRIOR_S)
    assert alone[0] == pytest.approx(-0.0175, abs=1e-3)  # halfway: right on neither
    assert trusted[0] == pytest.approx(0.005, abs=2e-3) and sure[0] > 0.9  # the near one


def test_a_missing_or_wrong_model_file_says_how_to_make_one(tmp_path):
    with pytest.raises(EngineUnavailable, match="train_boundaries.py"):
        R.BoundaryModel.load(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a readable ONNX model"):
        R.BoundaryModel.load(bad)


def held_out_lines(n: int) -> list:
    """n lines of dictionary words in eSpeak voices the shipped model never trained on, with
    their exact phone times (models/exact_speech.py), said first in a fresh process."""
    code = (
        "import pickle, sys, numpy as np; from models import exact_speech as X; "
        "rng = np.random.default_rng(7); "
        "voices = [a + v for a in X.HELD_ACCENTS for v in X.HELD_VARIANTS]; "
        f"texts = X.lines({n}, rng, X.dictionary_words()); "
        "said = [X.synthesize(voices[k % len(voices)], t) for k, t in enumerate(texts)]; "
        "pickle.dump([(a, r, p, t) for (a, r, p), t in zip(said, texts)], sys.stdout.buffer)"
    )
    return [(load_audio(wav_bytes(a, r)), t, p) for a, r, p, t in said_first(code)]


def test_the_shipped_model_moves_boundaries_nearer_the_sound_in_voices_it_never_heard():
    from models.exact_speech import pairs

    errors = {True: [], False: []}
    for sound, text, truth in held_out_lines(6):
        # the same phones before and after: a line that goes to Whisper differs run to run
        found = recognize(sound, text=text, refine=False)
        refined, _ = R.refine(sound, found.phonemes, found.words)
        for key, phonemes in ((False, found.phonemes), (True, refined)):
            errors[key] += [abs(t - b.time) for b, t in pairs(truth, phonemes)]
    within = {k: np.mean(np.array(v) <= 0.02) for k, v in errors.items()}
    assert within[True] >= within[False] + 0.08, within  # measured 0.62 -> 0.75 (median 13 -> 2 ms)
    assert np.median(errors[True]) < np.median(errors[False])


def test_without_a_usable_model_the_bake_keeps_the_aligned_boundaries_and_says_why(
    tmp_path, monkeypatch
):
    sound, text, _ = held_out_lines(1)[0]
    aligned = recognize(sound, text=text, refine=False)
    (tmp_path / "boundaries.onnx").write_bytes(b"truncated download")
    monkeypatch.setattr(R, "SHIPPED", tmp_path / "boundaries.onnx")
    R.BoundaryModel.shipped.cache_clear()
    try:
        found = recognize(sound, text=text)
    finally:
        R.BoundaryModel.shipped.cache_clear()
    assert found.phonemes == aligned.phonemes
    assert any("left as aligned" in w and "boundaries.onnx" in w for w in found.warnings)


def test_espeak_stops_start_where_their_closure_starts_as_people_label_them():
    from bridge_server.engines.espeak import EspeakVoice
    from models.exact_speech import closure_starts

    speech = EspeakVoice("en-us", None).synthesize("a happy topic")
    audio = np.asarray(speech.audio, np.float32)
    moved = closure_starts(speech.phonemes, audio, speech.sample_rate)
    stops = [(p, q) for p, q in zip(speech.phonemes, moved) if q.ipa in ("p", "t")]
    assert len(stops) == 3
    for burst, closure in stops:
        assert burst.start - closure.start >= 0.015, (burst, closure)  # eSpeak's closures: 30-40 ms
        span = audio[
            int(closure.start * speech.sample_rate) : int(burst.start * speech.sample_rate)
        ]
        assert np.abs(span).max() < 0.01  # the closure is silent
    assert all(a.end == b.start for a, b in zip(moved, moved[1:]))  # still joined


def test_foreign_festival_phones_train_by_their_class_with_pauses_as_gaps_and_geminates_joined():
    from models.exact_speech import _classed

    # Festival's Italian and Czech segments: name, end, vowel?, consonant type ("-": Czech has none)
    rows = [["#", "0.30", "-", "0"], ["p", "0.38", "-", "s"], ["a1", "0.47", "+", "0"],
            ["l", "0.51", "-", "l"], ["l", "0.55", "-", "l"], ["w", "0.60", "-", "0"],
            ["c~", "0.70", "-", "-"], ["n*", "0.76", "-", "-"], ["#", "1.00", "0", "0"]]  # fmt: skip
    got = [(R.phone_class(p.ipa), p.start, p.end) for p in _classed(rows)]
    stop, affricate, nasal, approximant, vowel = 1, 2, 4, 5, 6
    assert got == [(stop, 0.30, 0.38), (vowel, 0.38, 0.47), (approximant, 0.47, 0.55),
                   (approximant, 0.55, 0.60), (affricate, 0.60, 0.70), (nasal, 0.70, 0.76)]  # fmt: skip


def test_training_lines_keep_no_digital_silence_and_their_floor_stays_far_below_the_speech():
    # the synthesisers' pauses are exact zeros, a cue no recording gives the model
    from models.exact_speech import noise_floor

    rng = np.random.default_rng(0)
    speech = np.concatenate([np.zeros(4000), 0.3 * np.sin(np.arange(8000) / 5), np.zeros(4000)])
    floored = noise_floor(speech.astype(np.float32), rng)
    pause = floored[:4000]
    assert np.all(pause != 0)
    below = 20 * np.log10(np.sqrt(np.mean(speech**2)) / np.sqrt(np.mean(pause**2)))
    assert 39 <= below <= 71, below  # 40-70 dB below the line's level


def test_speech_labelled_by_people_trains_from_the_aligned_edges_to_where_the_labels_put_them(
    tmp_path,
):
    # TIMIT's layout: a sound beside its .phn and .wrd (samples at 16 kHz); here eSpeak's own
    # phone times stand in for a labeller's.
    from bridge_server.core.phonemes import ipa_arpabet
    from bridge_server.engines.espeak import EspeakVoice
    from bridge_server.evaluate.references import labelled_utterances
    from models.train_boundaries import labelled

    text = "she had your dark suit"
    speech = EspeakVoice("en-us", None).synthesize(text)
    truth = speech.phonemes
    plain, timit = tmp_path / "plain", tmp_path / "TEST" / "DR1" / "FAKE0"
    plain.mkdir()
    timit.mkdir(parents=True)
    (plain / "sa1.wav").write_bytes(wav_bytes(np.asarray(speech.audio), speech.sample_rate))
    at = lambda t: int(round(t * 16000))  # noqa: E731
    (plain / "sa1.phn").write_text("".join(
        f"{at(p.start)} {at(p.end)} {ipa_arpabet()[p.ipa].split()[0].lower()}\n" for p in truth))  # fmt: skip
    spans = [[p for p in truth if p.word == k] for k in range(len(text.split()))]
    (plain / "sa1.wrd").write_text("".join(
        f"{at(w[0].start)} {at(w[-1].end)} {word}\n" for w, word in zip(spans, text.split())))  # fmt: skip
    (plain / "sx2.phn").write_text("0 1600 h#\n")  # labels without their sound: skipped
    # TIMIT's own files: upper case, the sound in NIST SPHERE
    pcm = (load_audio(plain / "sa1.wav").samples * 32767).astype("<i2")
    head = (f"NIST_1A\n   1024\nsample_rate -i 16000\nchannel_count -i 1\nsample_n_bytes -i 2\n"
            f"sample_count -i {len(pcm)}\nsample_byte_format -s2 01\nsample_coding -s3 pcm\n"
            "end_head\n").encode()  # fmt: skip
    (timit / "SA1.WAV").write_bytes(head.ljust(1024) + pcm.tobytes())
    for kind in ("phn", "wrd"):
        (timit / f"SA1.{kind.upper()}").write_text((plain / f"sa1.{kind}").read_text())

    found = list(labelled_utterances(tmp_path))
    assert [s.relative_to(tmp_path).as_posix() for s, _ in found] == [
        "TEST/DR1/FAKE0/SA1.WAV", "plain/sa1.wav"]  # fmt: skip
    assert abs(load_audio(found[0][0]).duration - load_audio(found[1][0]).duration) < 1e-3
    data = labelled([plain], 1, np.random.default_rng(0), None)
    clean = data["copy"] == 0
    assert clean.sum() >= 10 and (~clean).sum() >= 10  # the line, and a degraded copy of it
    aligned = recognize(load_audio(plain / "sa1.wav"), text=text, refine=False).phonemes
    edges = [b.time for b in R.boundaries(aligned)]
    labels = [t / 16000 for p in truth for t in (at(p.start), at(p.end))]
    # each clean example: an aligned edge, and the offset from it to a labelled edge
    for offset in data["offset"][clean]:
        assert any(min(abs(e + offset - t) for t in labels) < 1e-4 for e in edges), offset
    assert np.abs(data["offset"][clean]).mean() < 0.03  # pairs, not arbitrary edges
