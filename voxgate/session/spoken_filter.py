"""What of a model's text may be said: nothing that is not meant for the ear reaches TTS or the transcript.

The tool-call parser (backends/llm/tool_call_parser.py) takes whole calls out of the stream, but a
small model also writes what is not a call and not speech: the literal `<tools></tools>` of its
prompt, a stray `</tool_call>` or `<|im_end|>`, a code fence, a JSON object, brackets, or the call
described in words ("call the get_weather function with the city parameter set to Paris"). TTS
would read those aloud and `transcript.agent` would show them. Two filters, both used by
session/reply.py `llm_items` for every backend:

- `MarkupFilter`, on the stream: drops tags (`<...>` that look like markup), fenced code, balanced
  `{...}` objects, and every stray bracket. Text that might still be the start of a tag is held
  (a few characters at most), so speech is never delayed by more than that.
- `spoken_clause`, on each clause: a clause that talks about functions, parameters or snake_case
  identifiers is the model narrating a call, never something to say.
"""

from __future__ import annotations

import logging
import re

from voxgate.session.clauses import FIRST_CLAUSE_MIN_WORDS, ClauseSplitter

log = logging.getLogger("voxgate.session")

_TAG_CHARS = re.compile(r"[\w|/:\-.]")
_TAG_MAX = 40  # a longer run after "<" is not a tag
_STRAY = frozenset("<>[]{}`")
_IDENTIFIER = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b|\b[a-z]+[A-Z][A-Za-z]+\(|\w\(\)")
_NARRATED_CALL = re.compile(
    r"\b(?:call(?:ing)?|use|using|invoke|invoking|run)\s+(?:the\s+|a\s+)?\S+\s+(?:function|tool)\b"
    r"|\b(?:function|tool)\s+call\b|\b(?:parameters?|arguments?)\s+(?:set\s+to|to|=|of)\b",
    re.IGNORECASE,
)


class MarkupFilter:
    """Streamed text in, speakable text out (see the module's docstring)."""

    def __init__(self) -> None:
        self._mode = "text"  # "text", "tag" (after "<"), "fence" (inside ```), "json" (inside {...})
        self._held = ""  # a possible tag, or the backticks of a possible fence
        self._depth = 0
        self._in_string = self._escaped = False
        self.dropped = 0  # characters removed (for the bench and logs)

    def feed(self, text: str) -> str:
        out: list[str] = []
        for ch in text:
            self._step(ch, out)
        return "".join(out)

    def flush(self) -> str:
        """The end of the reply: whatever is held (an unclosed `<tag`, backticks, an unclosed object) goes."""
        self.dropped += len(self._held)
        self._mode, self._held, self._depth = "text", "", 0
        return ""

    def _step(self, ch: str, out: list[str]) -> None:
        if self._mode == "tag":
            self._tag(ch, out)
        elif self._mode == "fence":
            self._fence(ch)
        elif self._mode == "json":
            self._json(ch)
        elif self._held:  # backticks so far
            if ch == "`":
                self._held += ch
                if self._held == "```":
                    self._mode, self._held = "fence", ""
                    self.dropped += 3
                return
            self.dropped += len(self._held)
            self._held = ""
            self._step(ch, out)
        elif ch == "<":
            self._mode, self._held = "tag", ch
        elif ch == "`":
            self._held = ch
        elif ch == "{":
            self._mode, self._depth, self._in_string = "json", 1, False
            self.dropped += 1
        elif ch in _STRAY:
            self.dropped += 1
        else:
            out.append(ch)

    def _tag(self, ch: str, out: list[str]) -> None:
        if ch == ">":  # a whole tag: dropped
            self.dropped += len(self._held) + 1
            self._mode, self._held = "text", ""
        elif _TAG_CHARS.fullmatch(ch) and len(self._held) < _TAG_MAX:
            self._held += ch
        else:  # "<" then something no tag has: only the "<" was stray
            kept = self._held[1:]
            self.dropped += 1
            self._mode, self._held = "text", ""
            for c in kept:
                self._step(c, out)
            self._step(ch, out)

    def _fence(self, ch: str) -> None:
        self.dropped += 1
        self._held = self._held + ch if ch == "`" else ""
        if self._held == "```":
            self._mode, self._held = "text", ""

    def _json(self, ch: str) -> None:
        self.dropped += 1
        if self._in_string:
            if self._escaped:
                self._escaped = False
            elif ch == "\\":
                self._escaped = True
            elif ch == '"':
                self._in_string = False
        elif ch == '"':
            self._in_string = True
        elif ch == "{":
            self._depth += 1
        elif ch == "}":
            self._depth -= 1
            if self._depth == 0:
                self._mode = "text"


def spoken_clause(clause: str) -> str:
    """The clause, or "" when it narrates a tool call or names code (nothing a listener should hear)."""
    if _IDENTIFIER.search(clause) or _NARRATED_CALL.search(clause):
        return ""
    return clause if any(c.isalnum() for c in clause) else ""


class SpokenSplitter:
    """Clauses of what may be said: the markup filter before the clause splitter, `spoken_clause` after.

    `filtered=False` is the splitter alone (what was said before these filters; for `bench tools`)."""

    def __init__(self, *, filtered: bool = True, first_min_words: int = FIRST_CLAUSE_MIN_WORDS) -> None:
        self._markup = MarkupFilter() if filtered else None
        self._splitter = ClauseSplitter(first_min_words=first_min_words)

    def feed(self, text: str) -> list[str]:
        return self._spoken(self._splitter.feed(self._markup.feed(text) if self._markup else text))

    def flush(self) -> list[str]:
        rest = self._splitter.feed(self._markup.flush()) if self._markup else []
        return self._spoken([*rest, *self._splitter.flush()])

    def _spoken(self, clauses: list[str]) -> list[str]:
        if self._markup is None:
            return clauses
        kept = [c for c in clauses if spoken_clause(c)]
        if len(kept) < len(clauses):
            log.debug("not said (a call told in words, or markup): %r", [c for c in clauses if c not in kept])
        return kept
