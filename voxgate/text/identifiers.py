"""Spoken digit strings and spelled IDs: phone and card numbers, zip codes, order and booking numbers.

text2num reads "five five five" as three numbers ("5 5 5"), and knows neither "oh" for zero, "double
five", nor letters spelled among digits, so runs of spoken digits are joined here. phonenumbers
formats international numbers ("plus four four ..." -> "+44 20 7946 0958"). North American numbers
are formatted by hand as "555-123-4567": phonenumbers' national format is "(555) 123-4567", and its
validation rejects the fictional 555 numbers people use as examples.

Letters join a run only when they clearly belong to an ID (two or more, a spoken "dash", or a single
letter other than "a"/"I" next to three digits), so "I have a question" keeps its "I" and "a".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers

from voxgate.text.numbers import UNITS, two_digit_value
from voxgate.text.tokens import Edit, Token, splice, tokenize

_REPEAT = {"double": 2, "triple": 3}
_DASH = frozenset({"dash", "hyphen"})
_DIGITS, _LETTER, _DASH_KIND, _OH, _REPEAT_KIND, _TENS = "digits", "letter", "dash", "oh", "repeat", "tens"


@dataclass
class _Item:
    first: int  # token indexes covered
    last: int
    kind: str
    text: str
    spoken: bool = True
    comma: bool = False  # a comma follows


_PHONE_TALK = re.compile(r"\b(phone|call|cell|mobile|reach|text me|number)\b", re.IGNORECASE)
_CARD_TALK = re.compile(r"\b(card|visa|mastercard|amex|credit|debit)\b", re.IGNORECASE)
# Digit groups Whisper wrote with its own separators: "503-5550156", "4242. 42424242424242", "6011-0009-9013-9424".
_WRITTEN_RUN = re.compile(r"(?<![\d-])\d+(?:(?:[-.]\s?|,?\s)\d+)*(?![\d-])")


def _card(digits: str) -> str:
    groups = (4, 6, 5) if len(digits) == 15 else (4, 4, 4, 4)
    out, i = [], 0
    for g in groups:
        out.append(digits[i : i + g])
        i += g
    return " ".join(out)


def regroup_written_numbers(text: str) -> str:
    """Whisper writes dictated numbers in odd pieces; where the sentence is about a card (15 or 16
    digits) or a phone (10 digits), the whole run gets the shape spoken numbers get."""
    card, phone = bool(_CARD_TALK.search(text)), bool(_PHONE_TALK.search(text))
    if not (card or phone):
        return text

    def regroup(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        if card and len(digits) in (15, 16):
            return _card(digits)
        if phone and not card and len(digits) == 10:
            return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
        return m.group(0)

    return _WRITTEN_RUN.sub(regroup, text)


def format_identifiers(text: str) -> str:
    text = regroup_written_numbers(text)
    tokens = tokenize(text)
    edits: list[Edit] = []
    i = 0
    while i < len(tokens):
        items: list[_Item] = []
        j = i
        while j < len(tokens) and not (items and tokens[j].lead):
            item = _item(tokens, j)
            if item is None:
                break
            items.append(item)
            j = item.last + 1
            if tokens[item.last].trail not in ("", ","):
                break
        if items:
            edits.extend(_run_edits(tokens, items))
        i = max(j, i + 1)
    return splice(text, tokens, edits)


def _item(tokens: Sequence[Token], j: int) -> _Item | None:
    tok = tokens[j]
    w = tok.word
    comma = tok.trail == ","
    if w in UNITS:
        return _Item(j, j, _DIGITS, str(UNITS[w]), comma=comma)
    if w == "oh":
        return _Item(j, j, _OH, "0", comma=comma)
    if w in _REPEAT:
        return _Item(j, j, _REPEAT_KIND, str(_REPEAT[w]), comma=comma)
    if w in _DASH:
        return _Item(j, j, _DASH_KIND, "-", comma=comma)
    value = two_digit_value(w)
    if value is not None and value >= 10:
        nxt = tokens[j + 1] if j + 1 < len(tokens) else None
        unit = UNITS.get(nxt.word, 0) if nxt is not None and not tok.trail and not nxt.lead else 0
        if value % 10 == 0 and value >= 20 and unit:  # "forty five" is one pair of digits
            return _Item(j, j + 1, _TENS, str(value + unit), comma=nxt is not None and nxt.trail == ",")
        return _Item(j, j, _TENS, str(value), comma=comma)
    if re.fullmatch(r"\d+(?:-\d+)*", tok.core):
        return _Item(j, j, _DIGITS, tok.core.replace("-", ""), spoken=False, comma=comma)
    if len(tok.core) == 1 and tok.core.isalpha():
        return _Item(j, j, _LETTER, tok.core.upper(), comma=comma)
    return None


def _segments(tokens: Sequence[Token], items: list[_Item]) -> list[list[_Item]]:
    """Resolve "double"/"oh"/two-digit words and cut the run where they do not read as digits."""
    segments: list[list[_Item]] = [[]]
    k = 0
    while k < len(items):
        item, nxt = items[k], items[k + 1] if k + 1 < len(items) else None
        seg = segments[-1]
        digits_so_far = sum(len(x.text) for x in seg if x.kind == _DIGITS)
        after_digit = bool(seg) and seg[-1].kind == _DIGITS and not seg[-1].comma
        before_digit = nxt is not None and nxt.kind in (_DIGITS, _OH) and not item.comma
        if item.kind == _REPEAT_KIND and nxt is not None and nxt.kind in (_DIGITS, _OH) and not item.comma:
            seg.append(_Item(item.first, nxt.last, _DIGITS, nxt.text * int(item.text), comma=nxt.comma))
            k += 2
            continue
        if item.kind == _OH and (after_digit or (before_digit and (seg or tokens[item.first].core == "oh"))):
            seg.append(_Item(item.first, item.last, _DIGITS, "0", comma=item.comma))
        elif item.kind == _TENS and digits_so_far >= 3:
            seg.append(_Item(item.first, item.last, _DIGITS, item.text, comma=item.comma))
        elif item.kind in (_DIGITS, _LETTER, _DASH_KIND):
            seg.append(item)
        else:
            segments.append([])
        k += 1
    return [s for s in segments if s]


def _run_edits(tokens: Sequence[Token], items: list[_Item]) -> list[Edit]:
    edits: list[Edit] = []
    for seg in _segments(tokens, items):
        digits = "".join(x.text for x in seg if x.kind == _DIGITS)
        only_digits = all(x.kind == _DIGITS for x in seg)
        plus = _plus_before(tokens, seg[0].first)
        if any(x.comma for x in seg[:-1]) and only_digits and (plus or _phone_or_card(digits)):
            pieces = [seg]  # "five five five, one two three, four five six seven" is one number
        else:
            pieces = [[]]
            for x in seg:
                pieces[-1].append(x)
                if x.comma:
                    pieces.append([])
        for piece in pieces:
            edit = _piece_edit(tokens, piece)
            if edit is not None:
                edits.append(edit)
    return edits


def _plus_before(tokens: Sequence[Token], first: int) -> bool:
    return first > 0 and tokens[first - 1].word == "plus" and not tokens[first - 1].trail and not tokens[first].lead


def _phone_or_card(digits: str) -> bool:
    return len(digits) in (10, 15, 16) or (len(digits) == 11 and digits[0] == "1")


def _trim_letters(piece: list[_Item]) -> list[_Item]:
    """Drop letters at either end that do not belong to the ID (see the module docstring)."""
    digit_at = [k for k, x in enumerate(piece) if x.kind == _DIGITS]
    if not digit_at:
        return []
    n_digits = sum(len(x.text) for x in piece if x.kind == _DIGITS)
    lo, hi = digit_at[0], digit_at[-1]

    def keep(group: list[_Item]) -> bool:
        letters = [x for x in group if x.kind == _LETTER]
        if not letters:
            return False
        if len(letters) >= 2 or any(x.kind == _DASH_KIND for x in group):
            return True
        return letters[0].text not in ("A", "I") and n_digits >= 3

    start = 0 if keep(piece[:lo]) else lo
    while start < lo and piece[start].kind != _LETTER:
        start += 1
    end = len(piece) if keep(piece[hi + 1 :]) else hi + 1
    while end > hi + 1 and piece[end - 1].kind != _LETTER:
        end -= 1
    return piece[start:end]


def _piece_edit(tokens: Sequence[Token], piece: list[_Item]) -> Edit | None:
    piece = _trim_letters(piece)
    digits = "".join(x.text for x in piece if x.kind == _DIGITS)
    has_letters = any(x.kind == _LETTER for x in piece)
    if not any(x.spoken and x.kind == _DIGITS for x in piece) or len(digits) < (2 if has_letters else 3):
        return None
    first, last = piece[0].first, piece[-1].last
    if has_letters or any(x.kind == _DASH_KIND for x in piece):
        return Edit(first, last, "".join(x.text for x in piece))
    if _plus_before(tokens, first):
        return Edit(first - 1, last, _international(digits))
    return Edit(first, last, _digit_string(digits))


def _international(digits: str) -> str:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return "+" + digits
    if not phonenumbers.is_possible_number(number):
        return "+" + digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _digit_string(digits: str) -> str:
    """North American phone numbers and card numbers get their usual grouping; anything else stays a plain run."""
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    if len(digits) == 11 and digits[0] == "1":
        return f"+1 {digits[1:4]}-{digits[4:7]}-{digits[7:]}"
    if len(digits) == 16:
        return " ".join(digits[k : k + 4] for k in range(0, 16, 4))
    if len(digits) == 15:
        return f"{digits[:4]} {digits[4:10]} {digits[10:]}"
    return digits
