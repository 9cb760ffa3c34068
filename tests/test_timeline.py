"""The timeline document: round trips, the golden example, and readers that say what is wrong."""

import json

import pytest

from bridge_server.core.errors import TimelineFormatError
from bridge_server.core.timeline import SCHEMA_VERSION, Curve, Phoneme, Timeline, Word

from .conftest import DATA

GOLDEN = DATA / "golden_timeline.json"


def test_the_golden_example_reads_and_writes_back_unchanged():
    text = GOLDEN.read_text(encoding="utf-8")
    tl = Timeline.from_json(text)
    assert tl.schema_version == SCHEMA_VERSION
    assert [w.text for w in tl.words] == ["Bob", "may", "pay"]
    assert tl.curve("PP").sample([0.25])[0] == pytest.approx(1.0)  # the b of "Bob" closes the lips
    assert Timeline.from_json(tl.to_json()) == tl
    assert json.loads(tl.to_json()) == json.loads(text)


def test_readers_ignore_fields_they_do_not_know():
    d = json.loads(GOLDEN.read_text(encoding="utf-8"))
    d["schema_version"] = "1.7"
    d["future_field"] = {"anything": 1}
    d["phonemes"][0]["formant_hz"] = 700
    tl = Timeline.from_dict(d)
    assert tl.phonemes[0].ipa == "b"


def test_curves_sample_linearly_or_held():
    lin = Curve("aa", [(0.0, 0.0), (1.0, 1.0)])
    held = Curve("A", [(0.0, 0.0), (0.5, 1.0), (1.0, 1.0)], "constant")
    assert list(lin.sample([0.25, 2.0])) == [0.25, 1.0]
    assert list(held.sample([0.25, 0.75])) == [0.0, 1.0]


def test_warnings_fold_repeats():
    tl = Timeline(1.0, 24, "oculus15")
    for _ in range(3):
        tl.warn("phoneme", "unknown phoneme 'ʘ' shown as 'p'")
    assert len(tl.warnings) == 1 and tl.warnings[0].count == 3


@pytest.mark.parametrize(
    "mutate,message",
    [
        (
            lambda d: d.update(schema_version="2.0"),
            "newer than this version understands (1.0); update",
        ),
        (lambda d: d.pop("schema_version"), "schema_version is missing"),
        (lambda d: d.update(fps="24"), "fps must be a number (got '24')"),
        (lambda d: d.update(words={"a": 1}), "words must be a list"),
        (lambda d: d["phonemes"][1].update(end=-1), "phonemes[1] ends (-1.0) before it starts"),
        (
            lambda d: d["curves"][0].update(keys=[[0, "x"]]),
            "curves[0].keys[0] must be a [time, value] pair",
        ),
        (lambda d: d["curves"][0].update(interpolation="cubic"), "must be 'linear' or 'constant'"),
        (lambda d: d["words"].append("Bob"), "words[3] must be an object"),
    ],
    ids=[
        "future",
        "no-version",
        "fps-string",
        "words-dict",
        "negative-phoneme",
        "bad-key",
        "bad-interp",
        "word-string",
    ],
)
def test_malformed_documents_are_refused_with_where_and_why(mutate, message):
    d = json.loads(GOLDEN.read_text(encoding="utf-8"))
    mutate(d)
    with pytest.raises(TimelineFormatError) as e:
        Timeline.from_dict(d)
    assert message in str(e.value)


def test_a_small_timeline_round_trips():
    tl = Timeline(
        0.5,
        30000 / 1001,
        "vrm5",
        words=[Word("a", 0, 0.5)],
        phonemes=[Phoneme("ɑ", 0.1, 0.4, 0, 0.9)],
    )
    assert Timeline.from_json(tl.to_json()) == tl
