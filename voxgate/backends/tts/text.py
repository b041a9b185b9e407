"""Text as a voice should say it.

LLM replies are written for screens: markdown, bullet lists, links and emoji. Every phonemizer we use
(espeak-ng inside Piper and Kokoro, and espeak-ng itself) reads such symbols aloud ("asterisk",
"number sign", "grinning face") or spells a URL letter by letter, so the text is cleaned once here,
before any engine sees it.

Then `say_entities` writes out what a person reads differently from its spelling: amounts ("$42.50":
"forty-two dollars and fifty cents"), times ("3:30 PM": "three thirty PM"), ISO dates, ordinals,
percentages, phone numbers (digit by digit, in groups), emails ("ana dot lopez at example dot com")
and IDs ("AB1234": "A B one two three four"). English numbers become words here; in other languages
the digits are left to the engine's phonemizer (espeak-ng reads them natively in its language) and
only the symbols around them are written out (times, currency, "@", dots in addresses). Every engine
goes through it: the catalog calls `speakable` before any backend.
"""

from __future__ import annotations

import re
import unicodedata

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [label](url) and ![alt](src): keep the words
_URL = re.compile(r"\b(?:https?://|www\.)(?:www\.)?([^/\s?#]+)[^\s]*", re.IGNORECASE)
_LINE_MARK = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+•][ \t]+|\d{1,3}[.)][ \t]+)", re.MULTILINE)
_FENCE = re.compile(r"```[^\n]*")
_EMPHASIS = re.compile(r"[*`~|]+|(?<!\w)_+|_+(?!\w)")
_INNER_UNDERSCORE = re.compile(r"(?<=\w)_+(?=\w)")
_HASH = re.compile(r"(?<!\w)#(?=\w)")  # "#42" -> "42", but "C#" stays
_LINE_END = re.compile(r"(?<![.!?:;,])[ \t]*\n+[ \t]*")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_MARK = re.compile(r"\s+(?=[.,!?;:](?:\s|$))")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_INVISIBLE = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}  # joiners and variation selectors inside emoji


def _drop_symbols(text: str) -> str:
    """Remove emoji and pictographs by Unicode category, so new emoji need no new ranges; and control
    characters other than whitespace (a NUL made Piper raise "embedded null character")."""
    text = text.replace("°", " degrees ")
    return "".join(c for c in text if c not in _INVISIBLE and _speakable_category(c))


def _speakable_category(c: str) -> bool:
    category = unicodedata.category(c)
    return category not in ("So", "Sk", "Cs", "Co") and (category != "Cc" or c.isspace())


def speakable(text: str, language: str = "en") -> str:
    """Strip what a voice should not read: markdown markers, raw URLs (kept as their domain), emoji.

    Line breaks become commas when a line has no closing punctuation, so a list is read as a list
    with small pauses instead of one run-on sentence.
    """
    text = _LINK.sub(r"\1", text)
    text = _EMAIL.sub(lambda m: _say_email(m, _primary(language)), text)
    text = _URL.sub(r"\1", text)
    text = _FENCE.sub("", text)
    text = _LINE_MARK.sub("", text)
    text = _INNER_UNDERSCORE.sub(" ", text)
    text = _EMPHASIS.sub("", text)
    text = _HASH.sub("", text)
    text = _drop_symbols(text)
    text = _LINE_END.sub(", ", text.strip())
    text = _SPACE_BEFORE_MARK.sub("", _SPACES.sub(" ", text).strip())
    text = say_entities(text, language)
    return _SPACES.sub(" ", text).strip(" ,")


# ---------------------------------------------------------------- entities read as a person would


def _primary(tag: str) -> str:
    return (tag or "en").strip().lower().replace("_", "-").split("-")[0]


_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_SCALES = ((1_000_000_000, "billion"), (1_000_000, "million"), (1000, "thousand"))
_MONTHS = "January February March April May June July August September October November December".split()

#: Per language: how "@" and "." in an address, and a time's colon, are said.
_AT = {"en": "at", "es": "arroba", "fr": "arobase", "it": "chiocciola", "pt": "arroba", "de": "at", "hi": "at"}
_DOT = {"en": "dot", "es": "punto", "fr": "point", "it": "punto", "pt": "ponto", "de": "Punkt", "hi": "dot"}
_CURRENCY = {
    "$": {"en": ("dollar", "dollars", "cent", "cents"), "*": ("dólares", "dólares", "", "")},
    "€": {"en": ("euro", "euros", "cent", "cents"), "fr": ("euros",) * 2 + ("",) * 2, "*": ("euros",) * 2 + ("",) * 2},
    "£": {"en": ("pound", "pounds", "penny", "pence"), "*": ("libras",) * 2 + ("",) * 2},
}


def number_words(n: int) -> str:
    """English words for a whole number: 1250 -> "one thousand two hundred fifty"."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return f"{number_words(high)} {name}" + (f" {number_words(rest)}" if rest else "")
    return str(n)


def ordinal_words(n: int) -> str:
    words = number_words(n)
    head, _, last = words.rpartition(" ") if "-" not in words.rsplit(" ", 1)[-1] else ("", "", words)
    if "-" in last:
        first, _, unit = last.rpartition("-")
        return f"{head} {first}-{_ordinal_word(unit)}".strip()
    return f"{head} {_ordinal_word(last)}".strip()


def _ordinal_word(word: str) -> str:
    if word in _ORDINAL:
        return _ORDINAL[word]
    return word[:-1] + "ieth" if word.endswith("y") else word + "th"


def year_words(n: int) -> str:
    """1990 -> "nineteen ninety", 2026 -> "twenty twenty-six", 2000 -> "two thousand", 2005 -> "two thousand five"."""
    high, low = divmod(n, 100)
    if 2000 <= n < 2010:
        return number_words(n)
    if low == 0:
        return f"{number_words(high)} hundred"
    return f"{number_words(high)} {'oh ' + _ONES[low] if low < 10 else number_words(low)}"


def _digits(text: str) -> str:
    return " ".join(_ONES[int(d)] for d in text if d.isdigit())


def _say_email(match: re.Match[str], lang: str) -> str:
    at, dot = _AT.get(lang, "at"), _DOT.get(lang, "dot")
    local, _, domain = match.group(0).partition("@")

    def part(piece: str) -> str:
        piece = piece.replace("_", " underscore " if lang == "en" else " ").replace(
            "-", " dash " if lang == "en" else " "
        )
        return re.sub(r"\d+", lambda m: _digits(m.group(0)) if lang == "en" else " ".join(m.group(0)), piece)

    said_local = f" {dot} ".join(part(p) for p in local.split("."))
    said_domain = f" {dot} ".join(part(p) for p in domain.split("."))
    return f" {said_local} {at} {said_domain} "


_PHONE = re.compile(
    r"(?<![\w.])(\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{2,4}(?:[ .-]\d{2,4}){0,2}(?!\w|[.,]\d)"
)
_MONEY_BEFORE = re.compile(r"([$€£])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\b")
_MONEY_AFTER = re.compile(r"\b(\d{1,3}(?:[.,\s]\d{3})+|\d+)(?:[.,](\d{1,2}))?\s?([€$£])")
_TIME = re.compile(
    r"\b([01]?\d|2[0-3])[:h]([0-5]\d)\b(?:\s?([AaPp])(?:\.[Mm]\.|[Mm]\b))?|\b(1[0-2]|[1-9])\s?([AaPp])(?:\.[Mm]\.|[Mm]\b)"
)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_ORDINAL_NUM = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_PERCENT = re.compile(r"\b(\d+(?:\.\d+)?)\s?%")
_ID = re.compile(
    r"\b[A-Z]{1,3} \d{3,}\b|\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z]{1,4}-?\d{2,}[A-Z0-9-]*\b|\b\d+[A-Z]{1,3}\d*\b"
)
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w])")
_PERCENT_WORD = {"en": "percent", "es": "por ciento", "fr": "pour cent", "it": "per cento", "pt": "por cento"}


def _en_number(whole: str, fraction: str | None = None) -> str:
    words = number_words(int(whole.replace(",", "")))
    if fraction:
        words += " point " + _digits(fraction)
    return words


def _money(lang: str, symbol: str, whole: str, cents: str | None) -> str:
    names = _CURRENCY[symbol].get(lang) or _CURRENCY[symbol]["*"]
    amount = int(re.sub(r"[^\d]", "", whole))
    if lang != "en":
        spoken = f"{amount} {names[1]}"
        return spoken + (f" {int(cents)}" if cents and int(cents) else "")
    spoken = f"{number_words(amount)} {names[0] if amount == 1 else names[1]}"
    if cents and int(cents):
        c = int(cents.ljust(2, "0"))
        spoken += f" and {number_words(c)} {names[2] if c == 1 else names[3]}"
    return spoken


def _time(lang: str, m: re.Match[str]) -> str:
    if m.group(4):  # "7 pm"
        hour, mark = int(m.group(4)), m.group(5).upper()
        return f"{number_words(hour)} {mark} M" if lang == "en" else f"{hour} {mark} M"
    hour, minute, mark = int(m.group(1)), int(m.group(2)), m.group(3)
    suffix = f" {mark.upper()} M" if mark else ""
    if lang != "en":
        return f"{hour} {minute}" if minute else f"{hour}"
    if minute == 0:
        said = f"{number_words(hour)} o'clock" if not mark else number_words(hour)
    elif minute < 10:
        said = f"{number_words(hour)} oh {_ONES[minute]}"
    else:
        said = f"{number_words(hour)} {number_words(minute)}"
    return said + suffix


def _iso_date(lang: str, m: re.Match[str]) -> str:
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31) or lang != "en":
        return f"{day} {month} {year}" if lang != "en" else m.group(0)
    return f"{_MONTHS[month - 1]} {ordinal_words(day)}, {year_words(year)}"


def _phone(lang: str, m: re.Match[str]) -> str:
    text = m.group(0)
    digits = re.sub(r"\D", "", text)
    if len(digits) < 7:
        return text
    groups = [g for g in re.split(r"[\s().+-]+", text) if g]
    spell = _digits if lang == "en" else " ".join
    said = ", ".join(spell(g) for g in groups)
    return ("plus " if lang == "en" else "+ ") + said if text.startswith("+") else said


def _id(lang: str, m: re.Match[str]) -> str:
    out = []
    for ch in m.group(0):
        if ch.isdigit():
            out.append(_ONES[int(ch)] if lang == "en" else ch)
        elif ch.isalpha():
            out.append(ch)
    return " ".join(out)


def say_entities(text: str, language: str = "en") -> str:
    """Amounts, times, dates, ordinals, percentages, phone numbers, IDs and (English) numbers in words."""
    lang = _primary(language)
    text = _MONEY_BEFORE.sub(lambda m: _money(lang, m.group(1), m.group(2), m.group(3)), text)
    text = _MONEY_AFTER.sub(lambda m: _money(lang, m.group(3), m.group(1), m.group(2)), text)
    text = _ISO_DATE.sub(lambda m: _iso_date(lang, m), text)
    text = _TIME.sub(lambda m: _time(lang, m), text)
    text = _PHONE.sub(lambda m: _phone(lang, m), text)
    text = _PERCENT.sub(lambda m: f"{m.group(1)} {_PERCENT_WORD.get(lang, '%')}", text)
    text = _ID.sub(lambda m: _id(lang, m), text)
    if lang != "en":
        return text
    text = _ORDINAL_NUM.sub(lambda m: ordinal_words(int(m.group(1))), text)
    return _NUMBER.sub(_en_plain_number, text)


def _en_plain_number(m: re.Match[str]) -> str:
    whole, fraction = m.group(1), m.group(2)
    if fraction is None and "," not in whole and len(whole) == 4 and 1100 <= int(whole) <= 2099:
        return year_words(int(whole))
    if fraction is None and len(whole) > 1 and whole.startswith("0"):
        return _digits(whole)
    return _en_number(whole, fraction)
