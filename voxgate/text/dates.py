"""Spoken times and dates: "three thirty pm" -> "3:30 PM", "the twenty first of June" -> "June 21".

text2num converts the numbers but not their shape: it gives "3 30 pm" and "March 3rd", and under
its threshold it leaves "nine a m" alone. Times need an hour of one to twelve with minutes and/or an
AM/PM marker (or "o'clock"); bare "H MM" becomes a time only with minutes of 15, 30 or 45, or
after "at"/"by"/"until"..., so "one twenty dollar bill" is not a time. Dates need a month name, and
"May"/"March" only count when capitalised ("you may", "they march").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from voxgate.text.numbers import TENS, UNITS, is_cardinal_word, read_int, two_digit_value
from voxgate.text.tokens import Edit, Token, rewrite

MONTHS = "January February March April May June July August September October November December".split()
_MONTH = {m.lower(): m for m in MONTHS} | {"sept": "September"}
_CAPITALISED_ONLY = frozenset({"may", "march"})
_COUNTED = frozenset(
    "dollar dollars buck bucks cent cents euro euros pound pounds percent year years old day days minute minutes"
    " hour hours people times pages items".split()
)
_TIME_PREPOSITIONS = frozenset({"at", "by", "until", "till", "til", "around", "before", "after", "from", "to", "about"})


# Times Whisper wrote itself, in its own shapes: "3.30 pm", "11.30am", "9am", "4.45 p.m.", "at 10.15".
_WRITTEN_MARKED = re.compile(r"\b(\d{1,2})(?:[.:]?(\d{2}))?\s?([ap])\.?\s?m\b(\.(?=\s+[a-z]))?", re.IGNORECASE)
_WRITTEN_AFTER = re.compile(r"\b(at|by|until|till|from|before|after|around)\s(\d{1,2})\.(\d{2})\b", re.IGNORECASE)


def _written_times(text: str) -> str:
    """Whisper's own ways of writing a time, in the one shape the spoken ones get ("3:30 PM")."""

    def marked(m: re.Match[str]) -> str:
        hour, minutes, half = int(m.group(1)), m.group(2), m.group(3).upper()
        if not 1 <= hour <= 12:
            return m.group(0)
        return f"{hour}:{minutes} {half}M" if minutes else f"{hour} {half}M"

    text = _WRITTEN_MARKED.sub(marked, text)
    return _WRITTEN_AFTER.sub(
        lambda m: (
            f"{m.group(1)} {m.group(2)}:{m.group(3)}" if int(m.group(2)) <= 23 and int(m.group(3)) < 60 else m.group(0)
        ),
        text,
    )


def format_times(text: str) -> str:
    return rewrite(_written_times(text), _time_at)


def format_dates(text: str) -> str:
    return rewrite(text, lambda tokens, i: _month_day(tokens, i) or _day_of_month(tokens, i))


def _numberish(tok: Token) -> bool:
    return tok.core.isdigit() or is_cardinal_word(tok.word) or tok.word == "oh"


def _hour(tokens: Sequence[Token], i: int) -> tuple[int, int | None, int] | None:
    """(hour, minutes if written as "3:30", index after) for an hour word or written hour at `i`."""
    core = tokens[i].core
    if core.isdigit() and 1 <= int(core) <= 12 and len(core) <= 2:
        return int(core), None, i + 1
    head, colon, tail = core.partition(":")
    if colon and head.isdigit() and tail.isdigit() and len(tail) == 2 and 1 <= int(head) <= 12 and int(tail) < 60:
        return int(head), int(tail), i + 1
    value = UNITS.get(tokens[i].word) or two_digit_value(tokens[i].word)
    if value is not None and 1 <= value <= 12 and tokens[i].word in (UNITS.keys() | {"ten", "eleven", "twelve"}):
        return value, None, i + 1
    return None


def _minutes(tokens: Sequence[Token], i: int) -> tuple[int, int] | None:
    """Spoken minutes at `i` ("thirty", "forty five", "oh five", "15"): (minutes, index after)."""
    if i >= len(tokens) or tokens[i].lead:
        return None
    tok = tokens[i]
    if tok.word == "oh" and not tok.trail and i + 1 < len(tokens):
        unit = UNITS.get(tokens[i + 1].word, 0)
        return (unit, i + 2) if unit and not tokens[i + 1].lead else None
    if tok.core.isdigit() and len(tok.core) == 2 and int(tok.core) < 60:
        return int(tok.core), i + 1
    value = two_digit_value(tok.word)
    if value is None or not 10 <= value < 60:
        return None
    if tok.word in TENS and not tok.trail and i + 1 < len(tokens) and not tokens[i + 1].lead:
        unit = UNITS.get(tokens[i + 1].word, 0)
        if unit:
            return value + unit, i + 2
    return value, i + 1


def _marker(tokens: Sequence[Token], i: int) -> tuple[str, int, bool] | None:
    """AM/PM at `i`: (marker, index after, whether it was written with dots, "a.m.")."""
    if i >= len(tokens) or tokens[i].lead:
        return None
    w = tokens[i].word
    if w.replace(".", "") in ("am", "pm"):
        return w.replace(".", "").upper(), i + 1, "." in w
    if w in ("a", "p") and not tokens[i].trail and i + 1 < len(tokens) and tokens[i + 1].word == "m":
        return f"{w.upper()}M", i + 2, False
    return None


def _time_at(tokens: Sequence[Token], i: int) -> tuple[Edit, int] | None:
    if i > 0 and (_numberish(tokens[i - 1]) and not tokens[i - 1].trail):
        return None  # inside a digit run ("five five five ...")
    hour = _hour(tokens, i)
    if hour is None:
        return None
    h, minutes, j = hour
    spoken = not tokens[i].core[0].isdigit()
    if minutes is None and not tokens[i].trail:
        got = _minutes(tokens, j)
        if got is not None:
            minutes, j = got
            spoken = spoken or not tokens[j - 1].core.isdigit()
    clock = f"{h}:{minutes:02d}" if minutes is not None else str(h)
    marker = _marker(tokens, j) if not tokens[j - 1].trail else None
    before = tokens[i - 1].word if i > 0 and not tokens[i - 1].trail else ""
    if marker is not None:
        name, end, dotted = marker
        bare_am = tokens[j].word == "am"
        if (
            bare_am
            and minutes is None
            and before not in _TIME_PREPOSITIONS
            and end < len(tokens)
            and not tokens[end - 1].trail
        ):
            return None  # "which one am I"
        if not spoken and (dotted or tokens[j].core in ("AM", "PM")):
            return None  # already written: leave "3:30 p.m." as Whisper wrote it
        trail = None
        if dotted:  # "a.m." carries its own period; keep it only where it also ends the sentence
            rest = tokens[end - 1].trail[1:] if tokens[end - 1].trail.startswith(".") else tokens[end - 1].trail
            sentence_end = end >= len(tokens) or tokens[end].core[:1].isupper()
            trail = tokens[end - 1].trail if sentence_end else rest
        return Edit(i, end - 1, f"{clock} {name}", trail), end
    if not spoken or (j < len(tokens) and _numberish(tokens[j]) and not tokens[j - 1].trail):
        return None
    if j < len(tokens) and tokens[j].word in ("o'clock", "o’clock") and not tokens[j - 1].trail and minutes is None:
        return Edit(i, j - 1, str(h)), j + 1
    if j < len(tokens) and tokens[j].word in _COUNTED:
        return None  # "one twenty dollar bill", "two fifteen year olds"
    if minutes is not None and (minutes in (15, 30, 45) or before in _TIME_PREPOSITIONS):
        return Edit(i, j - 1, clock), j
    return None


def _month(tok: Token) -> str | None:
    month = _MONTH.get(tok.word)
    if month is None or (tok.word in _CAPITALISED_ONLY and not tok.core[0].isupper()):
        return None
    return month


def _day(tokens: Sequence[Token], i: int, *, cardinal_words: bool) -> tuple[int, int] | None:
    """A day of the month at `i`: "third", "twenty first", "21st", "21" (and "three" if `cardinal_words`)."""
    if i >= len(tokens) or tokens[i].lead:
        return None
    got = read_int(tokens, i, ordinal=True)
    if got is None or not 1 <= got[0] <= 31:
        return None
    last = tokens[got[1] - 1]
    is_ordinal = not last.core.isdigit() and not is_cardinal_word(last.word)
    if not (is_ordinal or tokens[i].core.isdigit() or cardinal_words):
        return None
    return got


def _year(tokens: Sequence[Token], i: int) -> tuple[int, int] | None:
    """A spoken or written year at `i`: "two thousand twenty four", "nineteen ninety nine", "2024"."""
    if i >= len(tokens) or tokens[i].lead:
        return None
    got = read_int(tokens, i)
    if got is not None:
        spoken = 1000 <= got[0] <= 2099 and got[1] > i + 1
        written = tokens[i].core.isdigit() and len(tokens[i].core) == 4
        if spoken or written:
            return got
    century = two_digit_value(tokens[i].word)
    if century is None or not 13 <= century <= 20 or tokens[i].trail:
        return None
    rest = _minutes(tokens, i + 1)  # the same shapes: "eighty", "ninety nine", "oh five"
    if rest is None:
        return None
    return century * 100 + rest[0], rest[1]


def _with_year(tokens: Sequence[Token], first: int, end: int, month: str, day: int) -> tuple[Edit, int]:
    if not tokens[end - 1].trail or tokens[end - 1].trail == ",":
        year = _year(tokens, end)
        if year is not None and not (
            year[1] < len(tokens) and _numberish(tokens[year[1]]) and not tokens[year[1] - 1].trail
        ):
            return Edit(first, year[1] - 1, f"{month} {day}, {year[0]}"), year[1]
    return Edit(first, end - 1, f"{month} {day}"), end


def _month_day(tokens: Sequence[Token], i: int) -> tuple[Edit, int] | None:
    """ "March third", "June the twenty first", "March 3rd"."""
    month = _month(tokens[i])
    if month is None or tokens[i].trail:
        return None
    j = i + 1
    if j < len(tokens) and tokens[j].word == "the" and not tokens[j].trail:
        j += 1
    day = _day(tokens, j, cardinal_words=j == i + 1 and tokens[i].word not in _CAPITALISED_ONLY)
    if day is None:
        return None
    if day[1] < len(tokens) and tokens[day[1]].word == "of" and not tokens[day[1] - 1].trail:
        return None  # "May one of us ..."
    return _with_year(tokens, i, day[1], month, day[0])


def _day_of_month(tokens: Sequence[Token], i: int) -> tuple[Edit, int] | None:
    """ "the twenty first of June", "3rd of March" -> "June 21", "March 3"."""
    j = i + 1 if tokens[i].word == "the" and not tokens[i].trail else i
    day = _day(tokens, j, cardinal_words=False)
    if day is None or (tokens[j].core.isdigit()):
        return None
    k = day[1]
    if k + 1 >= len(tokens) or tokens[k].word != "of" or tokens[k - 1].trail or tokens[k].trail:
        return None
    month = _month(tokens[k + 1])
    if month is None:
        return None
    return _with_year(tokens, i, k + 2, month, day[0])
