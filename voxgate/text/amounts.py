"""Spoken amounts: "twenty five dollars" -> "$25", "three dollars and fifty cents" -> "$3.50", "ten percent" -> "10%".

text2num reads the numbers ("25 dollars", "3 dollars and 50 cents"; under its threshold "three
dollars" stays words) but does not write currency signs, join dollars with cents or write "%";
that is done here, for English only.
"""

from __future__ import annotations

from collections.abc import Sequence

from voxgate.text.numbers import BIG_SCALES, SCALES, read_int, read_number
from voxgate.text.tokens import Edit, Token, rewrite

_CURRENCY = {"dollar": "$", "dollars": "$", "buck": "$", "bucks": "$", "euro": "€", "euros": "€"}


def format_amounts(text: str) -> str:
    return rewrite(text, _amount_at)


def _amount_at(tokens: Sequence[Token], i: int) -> tuple[Edit, int] | None:
    got = read_number(tokens, i)
    if got is None:
        return None
    value, j = got
    scale = ""
    if j - i > 1 and tokens[j - 1].word in BIG_SCALES:  # "$5 million", not "$5000000"
        head = read_number(tokens, i, max_words=j - 1 - i)
        if head is not None and head[1] == j - 1:
            value, scale = head[0], " " + tokens[j - 1].word
    elif j < len(tokens) and tokens[j].word in BIG_SCALES and not tokens[j - 1].trail and not tokens[j].lead:
        scale, j = " " + tokens[j].word, j + 1  # "one point five million": text2num reads "1.5 1000000"
    first = i
    if tokens[i].word in SCALES and i > 0 and tokens[i - 1].word in ("a", "an") and not tokens[i - 1].trail:
        first = i - 1  # "a hundred dollars"
    if j >= len(tokens) or tokens[j - 1].trail or tokens[j].lead:
        return None
    unit = tokens[j].word
    if unit == "percent" or (
        unit == "per" and j + 1 < len(tokens) and tokens[j + 1].word == "cent" and not tokens[j].trail
    ):
        end = j if unit == "percent" else j + 1
        return Edit(first, end, f"{value}{scale}%"), end + 1
    sign = _CURRENCY.get(unit)
    if sign is None:
        return None
    whole, _, fraction = value.partition(".")
    if scale:
        return Edit(first, j, f"{sign}{value}{scale}"), j + 1  # "$1.5 million"
    if len(fraction) > 2:
        return None
    cents = fraction.ljust(2, "0") if fraction else ""
    end = j
    if not cents and not tokens[j].trail:
        more = _cents(tokens, j + 1)
        if more is not None:
            cents, end = more
    return Edit(first, end, f"{sign}{int(whole):,}{'.' + cents if cents else ''}"), end + 1


def _cents(tokens: Sequence[Token], k: int) -> tuple[str, int] | None:
    """ "(and) fifty cents" after the dollars: (two digits, index of the "cents" token)."""
    if k < len(tokens) and tokens[k].word == "and" and not tokens[k].trail:
        k += 1
    got = read_int(tokens, k)
    if got is None or got[0] >= 100 or got[1] >= len(tokens) or tokens[got[1] - 1].trail:
        return None
    if tokens[got[1]].word not in ("cent", "cents"):
        return None
    return f"{got[0]:02d}", got[1]
