"""Tool-call arguments as the user said them, and whether a call's arguments come from the conversation.

A small model re-types the entities it was told: "order number four five six" (transcribed "456", or
by Whisper "4.56") becomes `"4.56"`, a phone number loses or gains its dashes, an email its dots. The
formatted transcript (voxgate/text/entities.py) already has the entity right, so an argument that is
one is taken from there:

- **digits**: a parameter whose schema `pattern` accepts digits only (`^[0-9]+$`, `^\\d{5}$`), or whose
  name or description says so (order number, phone, zip, PIN, account number, "digits"): spoken
  digits and separators are dropped ("four five six", "4.56" → "456") when the pattern asks for
  digits, or when those digits are a number the user said.
- **emails**: an argument that is the user's email mangled ("ana lopez at example dot com",
  "Ana.Lopez@Example.com ") becomes the transcript's `ana.lopez@example.com`.
- **dates** (`format: date`): an ISO date the transcript has, when the model wrote another form of it.

`grounded` is the other half: the 1.5B model answers "what is the capital of France?" with
`get_weather(city="Paris")` and "hi" with `get_weather(city="London")`. A call whose free-form string
arguments share no word with what the user (or a tool result) said was not asked for; the embedded
backend speaks instead (llama_cpp_backend.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from voxgate.text.numbers import UNITS

_DIGITS_NAME = re.compile(
    r"(order|account|tracking|confirmation|reference|booking|member|policy|invoice|case|ticket)[ _-]?(number|no|num|id)"
    r"|phone|zip|postal|postcode|pin\b|digits|mobile|telephone",
    re.IGNORECASE,
)
_DIGITS_PATTERN = re.compile(r"^\^?(\[0-9\]|\\d)(\+|\*|\{\d+(,\d*)?\})\$?$")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
# A word keeps its contraction: split at the apostrophe, "Don't forget the meeting!" had two words nobody
# said ("don", "t") and was refused as made up for "remind them about the meeting".
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
STEM_CHARS = 5  # words that share this many first letters are taken as forms of one word
_DIGIT_WORDS = re.compile(r"\b(?:(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b[\s,-]*)+", re.IGNORECASE)
_DATE_OR_TIME = re.compile(r"date|time|day|when|hour", re.IGNORECASE)
# Words that say nothing of what was asked: an argument made of these alone is not grounded by them.
_FILLER = frozenset(
    "a an the of to in on at for and or is are was be my me i you your it this that with please "
    "do does did don't doesn't didn't not will won't can can't i'm i'll".split()
)


def _digit_kind(name: str, prop: Mapping[str, Any]) -> str | None:
    """'pattern': the schema demands digits; 'named': the name or description suggests them; None."""
    pattern = prop.get("pattern")
    if isinstance(pattern, str) and _DIGITS_PATTERN.match(pattern):
        return "pattern"
    if prop.get("format") in ("digits", "phone"):
        return "pattern"
    description = prop.get("description")
    text = f"{name} {description if isinstance(description, str) else ''}"
    return "named" if _DIGITS_NAME.search(text) else None


def spoken_digits(value: str) -> str:
    """The digits of `value`, spoken digit words included ("four 5 six" → "456", "4.56" → "456")."""
    out = []
    for word in re.findall(r"[A-Za-z]+|\d+", value):
        if word.isdigit():
            out.append(word)
        elif word.lower() in UNITS:
            out.append(str(UNITS[word.lower()]))
        elif word.lower() == "oh":
            out.append("0")
    return "".join(out)


def _all_digits(value: str) -> bool:
    """Nothing but digits, digit words and separators: "4.56", "four five six", not "AB-12"."""
    return all(w.isdigit() or w.lower() in UNITS or w.lower() == "oh" for w in re.findall(r"[A-Za-z]+|\d+", value))


def _said_numbers(sources: Iterable[str]) -> set[str]:
    """Every run of digits the sources hold, with their separators dropped ("555-123-4567", "4.56")."""
    runs: set[str] = set()
    for text in sources:
        for m in re.finditer(r"\d(?:[\d.\- ]*\d)?", text):
            runs.add(re.sub(r"\D", "", m.group()))
            runs.update(re.findall(r"\d+", m.group()))
        for m in _DIGIT_WORDS.finditer(text):  # text a client added unformatted: "eight zero eight"
            runs.add(spoken_digits(m.group()))
    return runs


def _email_key(value: str) -> str:
    text = value.strip().lower()
    text = re.sub(r"\s+at\s+", "@", text)
    text = re.sub(r"\s+dot\s+", ".", text)
    return re.sub(r"[\s.]", "", text)


def normalise_arguments(
    arguments: Mapping[str, Any], parameters: Mapping[str, Any], sources: Sequence[str]
) -> dict[str, Any]:
    """`arguments` with their entities as `sources` (the formatted user turns) have them."""
    properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
    if not isinstance(properties, Mapping):
        return dict(arguments)
    out = dict(arguments)
    said = _said_numbers(sources)
    emails = [m.group() for text in sources for m in _EMAIL.finditer(text)]
    dates = [m.group() for text in sources for m in _ISO_DATE.finditer(text)]
    for name, value in arguments.items():
        prop = properties.get(name)
        if not isinstance(value, str) or not isinstance(prop, Mapping) or prop.get("enum"):
            continue
        kind = _digit_kind(name, prop)
        digits = spoken_digits(value)
        if kind is not None and digits and (kind == "pattern" or (digits in said and _all_digits(value))):
            out[name] = digits
        elif "@" in value or " at " in value or prop.get("format") == "email" or "email" in name.lower():
            key = _email_key(value)
            match = next((e for e in reversed(emails) if _email_key(e) == key), None)
            if match is None and prop.get("format") == "email" and len(set(emails)) == 1:
                match = emails[0]
            if match is not None:
                out[name] = match
        elif prop.get("format") == "date" and value not in dates:
            parts = [int(n) for n in re.findall(r"\d+", value)]
            out[name] = next((d for d in dates if [int(n) for n in d.split("-")] == parts), value)
    return out


_WHEN = frozenset(
    "today tomorrow tonight morning afternoon evening noon midnight am pm next week monday tuesday wednesday "
    "thursday friday saturday sunday january february march april may june july august september october "
    "november december".split()
)


def _heard(value: Any, heard: set[str], said: set[str]) -> bool:
    """Whether one argument's value was said: a word of it, its digits, or (a date or time written in
    the model's own format) any day, date or time word; booleans and empty values are no evidence."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return str(value).removesuffix(".0") in said
    if isinstance(value, list | dict):
        return any(_heard(v, heard, said) for v in (value.values() if isinstance(value, dict) else value))
    text = str(value).lower()
    words = [w for w in _words(text) if w not in _FILLER]
    if any(_form_heard(w, heard) for w in words):
        return True
    if spoken_digits(text) and spoken_digits(text) in said:
        return True
    return bool(re.fullmatch(r"[\d:\-tT ]+", text.strip())) and bool(heard & _WHEN or said)


def grounded(arguments: Mapping[str, Any], parameters: Mapping[str, Any], sources: Sequence[str]) -> bool:
    """Whether every required free-form string argument was said: half its words (or its digits) are in
    `sources`. One shared word was the rule, and "a fun fact about the ocean" grounded
    `remember("The ocean is the largest body of water on Earth.")`: a sentence the model wrote itself.

    Enums, dates and times are exempt (the model rightly writes "2025-05-03" for "May third"), and so
    are optional arguments (a transfer's `reason` made up is no reason to refuse the transfer)."""
    properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
    properties = properties if isinstance(properties, Mapping) else {}
    required = parameters.get("required") if isinstance(parameters, Mapping) else None
    if isinstance(required, list):
        arguments = {k: v for k, v in arguments.items() if k in required}
    heard = {w for text in sources for w in _words(text)}
    said = _said_numbers(sources)
    if arguments and not any(_heard(v, heard, said) for v in arguments.values()):
        return False  # "how do you spell necessary?" is not set_temperature_unit("celsius")
    for name, value in arguments.items():
        prop = properties.get(name, {})
        if not isinstance(value, str) or not value.strip() or (isinstance(prop, Mapping) and prop.get("enum")):
            continue
        description = prop.get("description", "") if isinstance(prop, Mapping) else ""
        if _DATE_OR_TIME.search(f"{name} {description}") or (isinstance(prop, Mapping) and prop.get("format")):
            continue
        words = [w for w in _words(value) if w not in _FILLER]
        digits = spoken_digits(value)
        if digits and digits in said:
            continue
        if words and 2 * sum(_word_heard(w, heard) for w in words) < len(words):
            return False
    return True


def _words(text: str) -> list[str]:
    """The words of `text`, a possessive's "'s" left off ("John's" is "john"), other contractions kept whole."""
    return [w.removesuffix("'s") for w in _WORD.findall(text.lower().replace("\u2019", "'"))]


def _form_heard(word: str, heard: set[str]) -> bool:
    """`word`, or it without a plural's "s", was said ("plants" for "plant")."""
    return word in heard or (len(word) > 3 and word.rstrip("s") in heard)


def _word_heard(word: str, heard: set[str]) -> bool:
    """`word` or a form of it was said: `_form_heard`, or a word that begins the same ("reminder" for "remind")."""
    if _form_heard(word, heard):
        return True
    stem = word[:STEM_CHARS]
    return len(word) >= STEM_CHARS and any(h.startswith(stem) for h in heard if len(h) >= STEM_CHARS)
