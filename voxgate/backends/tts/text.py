"""Text as a voice should say it.

LLM replies are written for screens: markdown, bullet lists, links and emoji. Every phonemizer we use
(espeak-ng inside Piper and Kokoro, and espeak-ng itself) reads such symbols aloud ("asterisk",
"number sign", "grinning face") or spells a URL letter by letter, so the text is cleaned once here,
before any engine sees it.
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
_INVISIBLE = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}  # joiners and variation selectors inside emoji


def _drop_symbols(text: str) -> str:
    """Remove emoji and pictographs by Unicode category, so new emoji need no new ranges; and control
    characters other than whitespace (a NUL made Piper raise "embedded null character")."""
    text = text.replace("°", " degrees ")
    return "".join(c for c in text if c not in _INVISIBLE and _speakable_category(c))


def _speakable_category(c: str) -> bool:
    category = unicodedata.category(c)
    return category not in ("So", "Sk", "Cs", "Co") and (category != "Cc" or c.isspace())


def speakable(text: str) -> str:
    """Strip what a voice should not read: markdown markers, raw URLs (kept as their domain), emoji.

    Line breaks become commas when a line has no closing punctuation, so a list is read as a list
    with small pauses instead of one run-on sentence.
    """
    text = _LINK.sub(r"\1", text)
    text = _URL.sub(r"\1", text)
    text = _FENCE.sub("", text)
    text = _LINE_MARK.sub("", text)
    text = _INNER_UNDERSCORE.sub(" ", text)
    text = _EMPHASIS.sub("", text)
    text = _HASH.sub("", text)
    text = _drop_symbols(text)
    text = _LINE_END.sub(", ", text.strip())
    text = _SPACE_BEFORE_MARK.sub("", _SPACES.sub(" ", text).strip())
    return text.strip(" ,")
