"""Spoken numbers to digits, on top of text2num.

text2num's `alpha2digit` does the conversion (English, Spanish, French, German, Italian,
Portuguese). What is written here is the choice of *which* numbers to convert, because alpha2digit
on its own changes ordinary speech: it converts small numbers that stand in a sequence even under
its `threshold` ("one and two" -> "1 and 2", "the first and second" -> "the 1st and 2nd"), turns
plural scale words into numbers ("hundreds of people" -> "100 of people"), splits spoken years
("nineteen eighty" -> "19 80") and scale words ("one point five million" -> "1.5 1000000").
So the text is converted once with threshold 0, aligned with the original word by word, and each
changed block is kept or reverted by `_decide`.

`read_number` serves the English entity rules (amounts, times, dates), which need a number at a
given word whatever its size ("three dollars", "nine a m").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from functools import lru_cache

from text_to_num import alpha2digit

from voxgate.text.tokens import Token

SUPPORTED_LANGUAGES = frozenset({"en", "es", "fr", "de", "it", "pt"})
SMALL = 11  # integers below this stay words in ordinary sentences ("two of them", "the first time")

UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
TEENS = {
    w: i + 10
    for i, w in enumerate("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())
}
TENS = {w: (i + 2) * 10 for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
SCALES = frozenset({"hundred", "thousand", "million", "billion", "trillion"})
BIG_SCALES = frozenset({"million", "billion", "trillion"})
ORDINALS = frozenset(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth"
    " fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth fortieth fiftieth sixtieth"
    " seventieth eightieth ninetieth hundredth thousandth".split()
)
_DECADES = {w[:-1] + "ies": v for w, v in TENS.items()}  # "nineties" -> 90
_CARDINAL_WORDS = frozenset(UNITS) | frozenset(TEENS) | frozenset(TENS) | SCALES
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)")
_LEADING_NUMBER = re.compile(r"^(\d+(?:[.,]\d+)?)(\D*)$")


def _parts(word: str) -> list[str]:
    return word.lower().split("-")


def is_cardinal_word(word: str) -> bool:
    """An English cardinal number word, hyphenated compounds included ("twenty-five")."""
    return all(p in _CARDINAL_WORDS for p in _parts(word))


def is_ordinal_word(word: str) -> bool:
    *head, last = _parts(word)
    return last in ORDINALS and all(p in _CARDINAL_WORDS for p in head)


def two_digit_value(word: str) -> int | None:
    """Value of one English word between 0 and 99 ("seven", "fifteen", "forty-five"), else None."""
    w = word.lower()
    if w in UNITS:
        return UNITS[w]
    if w in TEENS:
        return TEENS[w]
    if w in TENS:
        return TENS[w]
    tens, _, unit = w.partition("-")
    if tens in TENS and unit in UNITS and unit != "zero":
        return TENS[tens] + UNITS[unit]
    return None


@lru_cache(maxsize=4096)
def is_number_word(word: str, lang: str) -> bool:
    """Whether text2num reads `word` alone as a number in `lang` (English uses the word list above)."""
    if lang == "en":
        return is_cardinal_word(word)
    if lang not in SUPPORTED_LANGUAGES or not word.isalpha():
        return False
    return _NUMBER.fullmatch(alpha2digit(word, lang, threshold=0)) is not None


def words_to_digits(words: Sequence[str], lang: str) -> str | None:
    """Digits for a run of number words, concatenated ("twenty three" -> "23", "one two" -> "12")."""
    if lang not in SUPPORTED_LANGUAGES:
        return None
    out = alpha2digit(" ".join(words), lang, threshold=0).replace(" ", "")
    return out if out.isdigit() else None


def read_number(
    tokens: Sequence[Token], i: int, *, ordinal: bool = False, max_words: int = 12
) -> tuple[str, int] | None:
    """The English number starting at token `i`: (digits, index after it), or None.

    Digits already written ("25", "1,500", "3.5") count. With `ordinal`, an ordinal ("twenty first",
    "21st") is accepted too and comes back as "21st". A number never runs across punctuation.
    """
    if i >= len(tokens):
        return None
    core = tokens[i].core
    if _NUMBER.fullmatch(core) or re.fullmatch(r"\d{1,3}(?:,\d{3})+", core):
        return core.replace(",", ""), i + 1
    if ordinal and _ORDINAL.fullmatch(core.lower()):
        return core.lower(), i + 1
    words: list[str] = []
    j = i
    while j < len(tokens) and len(words) < max_words:
        tok = tokens[j]
        w = tok.word
        if j > i and tok.lead:
            break
        if is_cardinal_word(w) or (ordinal and is_ordinal_word(w)) or (words and w in ("and", "point")):
            words.append(w)
        else:
            break
        j += 1
        if tok.trail or is_ordinal_word(w):
            break
    for k in range(len(words), 0, -1):
        if words[k - 1] in ("and", "point"):
            continue
        out = alpha2digit(" ".join(words[:k]), "en", threshold=0)
        if _NUMBER.fullmatch(out) or (ordinal and _ORDINAL.fullmatch(out)):
            return out, i + k
    return None


def read_int(tokens: Sequence[Token], i: int, *, ordinal: bool = False) -> tuple[int, int] | None:
    """Like `read_number`, for whole numbers only: (value, index after it)."""
    got = read_number(tokens, i, ordinal=ordinal)
    if got is None:
        return None
    m = re.fullmatch(r"(\d+)(?:st|nd|rd|th)?", got[0])
    return (int(m.group(1)), got[1]) if m else None


def convert_numbers(text: str, lang: str) -> str:
    """Spoken numbers of ordinary speech to digits; small ones (below eleven) stay words."""
    if lang not in SUPPORTED_LANGUAGES:
        return text
    converted = alpha2digit(text, lang, threshold=0)
    if converted == text:
        return text
    spans = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]
    old = [s[2] for s in spans]
    new = converted.split()
    edits: list[tuple[int, int, str]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag != "replace":
            continue
        decided = _decide(old, i1, i2, new[j1:j2], lang)
        if decided is not None:
            edits.append(decided)
    out = text
    for first, end, replacement in sorted(edits, reverse=True):
        out = out[: spans[first][0]] + replacement + out[spans[end - 1][1] :]
    return out


def _bare(word: str) -> str:
    return word.strip(".,!?;:\"'()").lower()


def _decide(old: list[str], i1: int, i2: int, new: list[str], lang: str) -> tuple[int, int, str] | None:
    """Whether the words old[i1:i2], which text2num reads as `new`, become digits: (first, end, text)."""
    parsed = [_LEADING_NUMBER.match(t) for t in new]
    if any(m is None for m in parsed):
        return None
    values = [float(m.group(1).replace(",", ".")) for m in parsed if m]
    words = [_bare(w) for w in old[i1:i2]]
    if lang == "en":
        if any(w.endswith("s") and w[:-1] in SCALES for w in words):
            return None  # "hundreds of people", "thousands"
        if len(words) > 1 and words[-1] in BIG_SCALES:
            head = alpha2digit(" ".join(old[i1 : i2 - 1]), "en", threshold=0)
            if _NUMBER.fullmatch(head) and (float(head) >= SMALL or "." in head):
                return i1, i2, f"{head} {old[i2 - 1]}"  # "1.5 million", "25 million"
            return None
        year = _spoken_year(words, values)
        if year is not None:
            return i1, i2, year + (parsed[-1].group(2) if parsed[-1] else "")
        decade = _bare(old[i2]) if i2 < len(old) else ""
        if len(values) == 1 and 13 <= values[0] <= 20 and decade in _DECADES and old[i2 - 1][-1:].isalpha():
            tail = old[i2][len(old[i2].rstrip(".,!?;:\"')")) :]
            return i1, i2 + 1, f"{int(values[0])}{_DECADES[decade]}s{tail}"  # "the nineteen nineties" -> "the 1990s"
        if words[0] in SCALES and i1 > 0 and old[i1 - 1].lower() in ("a", "an") and len(words) > 1:
            return i1 - 1, i2, " ".join(new)  # "a hundred and twenty" -> "120"
    if len(words) == 1 and len(values) == 1 and values[0] >= 100 and f"{values[0]:.0f}".strip("0") == "1":
        return None  # a bare scale word: "a hundred people", "cent"
    if any(v < SMALL and v == int(v) for v in values):
        return None
    return i1, i2, " ".join(new)


def _spoken_year(words: list[str], values: list[float]) -> str | None:
    """ "nineteen eighty" / "twenty twenty four" (read by text2num as two numbers) -> "1980" / "2024"."""
    if len(values) != 2 or not all(v == int(v) for v in values):
        return None
    century, rest = int(values[0]), int(values[1])
    if not (13 <= century <= 20 and 10 <= rest <= 99) or words[0] not in TEENS | TENS:
        return None
    return f"{century}{rest:02d}"
