"""Cutting streamed LLM text into clauses that can be spoken while the rest is still generated.

The first clause is cut early (at a comma once it has a few words) so the first audio comes soon;
later clauses are cut at sentence ends so the voice keeps natural prosody. Decimal points ("3.5"),
abbreviations ("Dr.") and e-mail-like dots do not end a sentence.

A long value read back ("Your number is 415-555-0134.") is the slowest first clause there is: the
embedded LLM writes a digit per token, so the sentence is complete only after ~18 tokens (~1 s on
2 cores). Once five digits of it are in, the words before it are spoken on their own ("Your number
is"), which is also where a person pauses before reading a number out. Shorter numbers (a year, "4
people") are never cut off from their sentence.

Every scan looks at a bounded window from the current position, never at the whole rest of the text:
no clause is longer than MAX_CLAUSE_CHARS, so nothing past the window can change where the next cut
falls, and splitting a long text is linear in its length (a greeting without punctuation used to be
rescanned from the start for every clause: quadratic, seconds of a frozen event loop).
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s+|[\n]+")
_SOFT_BREAK = re.compile(r"[,;:—–]\s+")
_ABBREVIATIONS = frozenset({"mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "etc.", "e.g.", "i.e.", "no.", "jr.", "sr."})

FIRST_CLAUSE_MIN_WORDS = 4
# A slow voice (Kokoro: ~0.6 s of synthesis per second of speech on 2 cores, ~0.4 s at the least) says
# its reply's opening words on their own at the first comma: with bf_emma, idle, "Sure," took 0.43 s to
# synthesize and "Sure, I can help with that." 1.01 s (2026-12-02). A fast voice keeps the clause whole.
SLOW_VOICE_FIRST_CLAUSE_MIN_WORDS = 1
VALUE_CUT_MIN_WORDS = 3  # "Your number is" before a long value
VALUE_MIN_DIGITS = 5
SOFT_BREAK_MIN_WORDS = 12
MAX_CLAUSE_CHARS = 220


def first_clause_min_words(slow_start: bool) -> int:
    """Where a reply's first clause may end at a comma, for a voice slow to start or not."""
    return SLOW_VOICE_FIRST_CLAUSE_MIN_WORDS if slow_start else FIRST_CLAUSE_MIN_WORDS


_WINDOW = MAX_CLAUSE_CHARS + 64  # room for the sentence end and quotes after a full-length clause


class ClauseSplitter:
    def __init__(self, *, first_min_words: int = FIRST_CLAUSE_MIN_WORDS) -> None:
        """`first_min_words`: the words a first clause needs before a comma may end it."""
        self._first_min_words = first_min_words
        self._buffer = ""
        self._pos = 0  # where the unsplit text starts: cutting by slicing the rest off would copy it per clause
        self._emitted = 0

    def feed(self, text: str) -> list[str]:
        if self._pos:
            self._buffer, self._pos = self._buffer[self._pos :], 0
        self._buffer += text
        out: list[str] = []
        while (clause := self._next_clause()) is not None:
            if clause:
                out.append(clause)
        return out

    def flush(self) -> list[str]:
        rest, self._buffer, self._pos = self._buffer[self._pos :].strip(), "", 0
        return [rest] if rest else []

    def _next_clause(self) -> str | None:
        rest = len(self._buffer) - self._pos
        buf = self._buffer[self._pos : self._pos + _WINDOW]
        sentence_end = None
        for match in _SENTENCE_END.finditer(buf):
            candidate = buf[: match.end()].strip()
            last_word = candidate.split()[-1].lower() if candidate.split() else ""
            if last_word not in _ABBREVIATIONS:
                sentence_end = match
                break
        # A comma before the sentence's end cuts it as it would have streamed in, whole text or not.
        min_words = self._first_min_words if self._emitted == 0 else SOFT_BREAK_MIN_WORDS
        for match in _SOFT_BREAK.finditer(buf[: sentence_end.start()] if sentence_end else buf):
            if len(buf[: match.start()].split()) >= min_words:
                return self._take(match.end())
        if sentence_end is not None:
            return self._take(sentence_end.end())
        if self._emitted == 0 and (cut := _before_long_value(buf)) is not None:
            return self._take(cut)
        if rest > MAX_CLAUSE_CHARS:
            cut = buf.rfind(" ", 0, MAX_CLAUSE_CHARS)
            return self._take(cut + 1 if cut > 0 else MAX_CLAUSE_CHARS)
        return None

    def _take(self, end: int) -> str:
        clause = self._buffer[self._pos : self._pos + end].strip()
        self._pos += end
        self._emitted += 1
        return clause


def _before_long_value(buf: str) -> int | None:
    """Where the first number in `buf` starts, if it has at least VALUE_MIN_DIGITS digits so far and
    enough words come before it to say on their own."""
    for i, word in enumerate(re.finditer(r"\S+", buf)):
        if not any(c.isdigit() for c in word.group()):
            continue
        if i < VALUE_CUT_MIN_WORDS or sum(c.isdigit() for c in buf[word.start() :]) < VALUE_MIN_DIGITS:
            return None
        return word.start()
    return None
