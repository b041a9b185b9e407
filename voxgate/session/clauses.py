"""Cutting streamed LLM text into clauses that can be spoken while the rest is still generated.

The first clause is cut early (at a comma once it has a few words) so the first audio comes soon;
later clauses are cut at sentence ends so the voice keeps natural prosody. Decimal points ("3.5"),
abbreviations ("Dr.") and e-mail-like dots do not end a sentence.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s+|[\n]+")
_SOFT_BREAK = re.compile(r"[,;:—–]\s+")
_ABBREVIATIONS = frozenset({"mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "etc.", "e.g.", "i.e.", "no.", "jr.", "sr."})

FIRST_CLAUSE_MIN_WORDS = 4
SOFT_BREAK_MIN_WORDS = 12
MAX_CLAUSE_CHARS = 220


class ClauseSplitter:
    def __init__(self) -> None:
        self._buffer = ""
        self._emitted = 0

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        out: list[str] = []
        while (clause := self._next_clause()) is not None:
            if clause:
                out.append(clause)
        return out

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _next_clause(self) -> str | None:
        buf = self._buffer
        for match in _SENTENCE_END.finditer(buf):
            candidate = buf[: match.end()].strip()
            last_word = candidate.split()[-1].lower() if candidate.split() else ""
            if last_word in _ABBREVIATIONS:
                continue
            return self._take(match.end())
        min_words = FIRST_CLAUSE_MIN_WORDS if self._emitted == 0 else SOFT_BREAK_MIN_WORDS
        for match in _SOFT_BREAK.finditer(buf):
            if len(buf[: match.start()].split()) >= min_words:
                return self._take(match.end())
        if len(buf) > MAX_CLAUSE_CHARS:
            cut = buf.rfind(" ", 0, MAX_CLAUSE_CHARS)
            return self._take(cut + 1 if cut > 0 else MAX_CLAUSE_CHARS)
        return None

    def _take(self, end: int) -> str:
        clause, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
        self._emitted += 1
        return clause
