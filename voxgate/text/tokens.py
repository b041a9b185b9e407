"""Whitespace tokens with their punctuation split off, and splicing replacements back into the text.

Every entity rule works on words ("five", "dot", "dollars") but must keep what surrounds them: the
comma after a phone number, the period after an email, the original spacing. A token is one
whitespace-separated run; `lead`/`trail` hold the punctuation around its `core`. A replacement of
tokens `first..last` keeps the lead of the first and the trail of the last; punctuation between them
(the commas in "five five five, one two three") is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_LEAD = "\"'“‘([{¿¡«"
_TRAIL = ".,!?;:\"'”’)]}…»"


@dataclass(frozen=True)
class Token:
    start: int
    end: int
    lead: str
    core: str
    trail: str

    @property
    def word(self) -> str:
        """The core, lowercased: what the rules compare against."""
        return self.core.lower()


@dataclass(frozen=True)
class Edit:
    first: int  # index of the first replaced token
    last: int  # index of the last replaced token (inclusive)
    text: str
    trail: str | None = None  # replaces the last token's trailing punctuation when set


def tokenize(text: str) -> list[Token]:
    tokens = []
    for m in re.finditer(r"\S+", text):
        raw = m.group()
        core = raw.lstrip(_LEAD)
        lead = raw[: len(raw) - len(core)]
        stripped = core.rstrip(_TRAIL)
        tokens.append(Token(m.start(), m.end(), lead, stripped, core[len(stripped) :]))
    return tokens


def splice(text: str, tokens: Sequence[Token], edits: Sequence[Edit]) -> str:
    """Apply non-overlapping edits (in any order) to `text`."""
    out = text
    for e in sorted(edits, key=lambda e: e.first, reverse=True):
        a, b = tokens[e.first], tokens[e.last]
        trail = b.trail if e.trail is None else e.trail
        out = out[: a.start] + a.lead + e.text + trail + out[b.end :]
    return out


Finder = Callable[[Sequence[Token], int], "tuple[Edit, int] | None"]


def rewrite(text: str, find: Finder) -> str:
    """Scan the tokens left to right; where `find` recognises an entity at i it returns the edit and
    the index after it, and the scan goes on from there."""
    tokens = tokenize(text)
    edits: list[Edit] = []
    i = 0
    while i < len(tokens):
        found = find(tokens, i)
        if found is None:
            i += 1
            continue
        edit, i = found
        edits.append(edit)
    return splice(text, tokens, edits)
