"""Engine phoneme symbols -> the project's IPA phonemes (the keys of data/phonemes.tsv).

Each engine speaks its own alphabet; tables in data/ convert them to IPA, and normalisation
strips what lip sync cannot see (stress, length, ties, most diacritics). No symbol is ever
dropped: an unknown one falls back to its base character and comes back with a warning.
"""

from __future__ import annotations

import functools
import itertools
import unicodedata
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"  # the package's data tables
ALPHABETS = ("ipa", "arpabet", "espeak", "timit")
SILENCE = "_"

# Marks that change the sound but not the visible mouth shape: stress, length, ties (espeak
# --ipa=3 ties with a zero-width joiner), release/secondary articulations, syllable breaks, tones.
_STRESS = set("ˈˌ'")
_TIES = set("\u0361\u035c\u200d\u200c")
_MARKS = _STRESS | _TIES | set("ːˑ:ʰʱʲʷˠˤʼ˞ⁿˡᵝ‿.-") | set("˥˦˧˨˩ꜛꜜ↑↓") | set("0123456789")
# Other spellings of a table phoneme.  ə+l is eSpeak's syllabic l (@L), shown as l like l̩.
_ALIASES = {
    "g": "ɡ",
    "ε": "ɛ",
    "ɩ": "ɪ",
    "ɷ": "ʊ",
    "əl": "l",
    "ʦ": "ts",
    "ʣ": "dz",
    "ʧ": "tʃ",
    "ʤ": "dʒ",
    "ʨ": "tɕ",
    "ʥ": "dʑ",
    "ə˞": "ɚ",
    "ɜ˞": "ɝ",
}
# Vowel letters: split_ipa never joins a vowel to a following consonant without a tie,
# because that consonant may start the next syllable (very = vɛ.ɹi, not vɛɹ.i).
VOWELS = frozenset("aeiouyæɐɑɒɔəɘɚɛɜɝɞɤɨɪɯɵɶʉʊʌʏøœᵻᵿä")
_IPA_BREAKS = set("_|‖")


@functools.cache
def read_tsv(name: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Header and rows of data/<name>; lines starting with # are comments."""
    path = DATA / name
    header: tuple[str, ...] = ()
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = tuple(line.split("\t"))
        if not header:
            header = cells
        elif len(cells) != len(header) or not all(cells):
            raise ValueError(f"{path}: line {number}: need {len(header)} non-empty cells: {line!r}")
        else:
            rows.append(cells)
    return header, tuple(rows)


@functools.cache
def phoneme_table() -> dict[str, dict[str, str]]:
    """phonemes.tsv as {ipa: {column: value}} (columns: example and one per viseme set)."""
    header, rows = read_tsv("phonemes.tsv")
    table: dict[str, dict[str, str]] = {}
    for row in rows:
        if row[0] in table:
            raise ValueError(f"{DATA / 'phonemes.tsv'}: phoneme {row[0]!r} is listed twice")
        table[row[0]] = dict(zip(header[1:], row[1:]))
    return table


@functools.cache
def ipa_arpabet() -> dict[str, str]:
    """IPA -> CMU ARPAbet phones (a cell may hold two: ɑɹ -> 'AA R'), from ipa_arpabet.tsv."""
    return dict(read_tsv("ipa_arpabet.tsv")[1])


def known_phonemes() -> frozenset[str]:
    return _known()


def is_silence(ipa: str) -> bool:
    return ipa == SILENCE


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(phoneme_table())


@functools.cache
def _known_chars() -> frozenset[str]:
    return frozenset("".join(_known()))


@functools.cache
def _conversion(alphabet: str) -> dict[str, str]:
    _, rows = read_tsv(f"{alphabet}.tsv")
    fold = str.upper if alphabet == "arpabet" else str.lower if alphabet == "timit" else str
    return {fold(row[0]): row[1] for row in rows}


def _is_mark(char: str) -> bool:
    return char in _MARKS or unicodedata.category(char) == "Mn"


def _clean(symbol: str) -> str:
    """Drop marks; reduce letters outside the table to their base letter (ä -> a)."""
    text = unicodedata.normalize("NFC", symbol)
    for spelling in ("ə˞", "ɜ˞"):
        text = text.replace(spelling, _ALIASES[spelling])
    out = []
    for char in text:
        if _is_mark(char):
            continue
        if char not in _known_chars():
            char = unicodedata.normalize("NFD", char)[0]
        out.append(char)
    return "".join(out)


def _ipa_key(symbol: str) -> str | None:
    """The table phoneme an IPA spelling stands for, or None."""
    text = _clean(symbol)
    text = _ALIASES.get(text, text)
    half = len(text) // 2
    if half and text == text[:half] * 2:  # geminate / doubled letter: ss, aa
        text = _ALIASES.get(text[:half], text[:half])
    return text if text in _known() else None


def _is_ipa_break(symbol: str) -> bool:
    """Spaces, punctuation and break symbols (_ | ‖) are pauses, not phonemes."""
    return all(
        c in _IPA_BREAKS or unicodedata.category(c)[0] in "PZ" or c.isspace() for c in symbol
    )


def _engine_ipa(symbol: str, alphabet: str) -> str | None:
    """An engine symbol's IPA from its table, after the alphabet's own clean-up."""
    table = _conversion(alphabet)
    if alphabet == "arpabet":
        symbol = symbol.upper()
        if symbol.startswith("+") and symbol.endswith("+") and len(symbol) > 2:
            return table.get(symbol, SILENCE)  # pocketsphinx fillers (+NOISE+) are pauses
        return table.get(symbol) or table.get(symbol.rstrip("012"))
    if alphabet == "espeak":
        return table.get(symbol.lstrip("',%=") or symbol)
    return table.get(symbol.lower())


def _fallback(symbol: str, alphabet: str) -> str:
    """Longest known prefix, else the first known letter, else silence."""
    if alphabet == "ipa":
        text = _ALIASES.get(_clean(symbol), _clean(symbol))
        heads = [_ipa_key(text[:end]) for end in range(len(text) - 1, 0, -1)]
    else:
        text = symbol.lstrip("',%=")
        heads = [_engine_ipa(text[:end], alphabet) for end in range(len(text) - 1, 0, -1)]
        heads = [_ipa_key(head) if head else None for head in heads]
    heads += [_ipa_key(char) for char in text]
    return next((head for head in heads if head), SILENCE)


def normalize(symbol: str, alphabet: str = "ipa") -> tuple[str, str | None]:
    """Convert one engine symbol to a known IPA phoneme: (ipa, warning or None).

    Only a symbol that had to fall back to part of itself (or to silence) gets a warning;
    stripping stress, length, ties or diacritics is not worth one.
    """
    if alphabet not in ALPHABETS:
        raise ValueError(f"unknown phoneme alphabet {alphabet!r}; choose one of: {ALPHABETS}")
    text = symbol.strip()
    if alphabet == "ipa":
        if _is_ipa_break(text):
            return SILENCE, None
        found = _ipa_key(text)
    else:
        ipa = _engine_ipa(text, alphabet)
        found = _ipa_key(ipa) if ipa else None
    if found:
        return found, None
    shown = _fallback(text, alphabet)
    return shown, f"unknown phoneme {symbol!r} ({alphabet}) shown as {shown!r}"


def split_ipa(text: str) -> list[str]:
    """Split an IPA string into phonemes, longest match first, marks kept with their letter.

    Tied letters (t͡ʃ, or eSpeak's zero-width joiner) always stay one phoneme; stress marks,
    spaces and punctuation separate phonemes and are dropped.
    """
    units = _letters(text)
    phonemes, i = [], 0
    while i < len(units):
        if units[i] is None:
            i += 1
            continue
        end = i + 1
        for j in range(i + 2, len(units) + 1):
            if not _may_join(units[i:j]):
                break
            if _clean("".join(u[0] for u in units[i:j])) in _known():
                end = j
        phonemes.append("".join(u[0] for u in units[i:end]))
        i = end
    return phonemes


def _letters(text: str) -> list[tuple[str, bool] | None]:
    """(letter with its marks, joinable) units; tied letters are one unit; None = boundary."""
    units: list[list | None] = []
    tied = False
    for char in unicodedata.normalize("NFC", text):
        if char in _STRESS or char in "‿." or (char not in _MARKS and _is_ipa_break(char)):
            units.append(None)
            tied = False
        elif char in _TIES:
            tied = bool(units and units[-1])
            if tied and char in "\u0361\u035c":  # keep tie bars, drop eSpeak's joiners
                units[-1][0] += char
        elif _is_mark(char):
            if units and units[-1]:
                units[-1][0] += char
        elif tied:
            units[-1] = [units[-1][0] + char, False]
            tied = False
        else:
            units.append([char, True])
    return [tuple(u) if u else None for u in units]


def _may_join(run: list[tuple[str, bool] | None]) -> bool:
    """Untied letters may form one phoneme, unless a vowel would swallow a consonant."""
    return all(u and u[1] for u in run) and not any(
        _clean(a[0])[-1:] in VOWELS and _clean(b[0])[:1] not in VOWELS
        for a, b in itertools.pairwise(run)
    )
