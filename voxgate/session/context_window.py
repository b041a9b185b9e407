"""Fitting a long conversation into the LLM's context window.

Without this, a conversation dies of its own length: the whole history went to the model every turn,
so after ~50 exchanges (a ten-minute call) llama.cpp first cut replies short and then refused every
turn ("Requested tokens exceed context window"). Here the model sees the system prompt, a short
recap of the oldest turns, and the newest turns verbatim, always inside its window.

Three things shape how turns are folded away:
- Folding happens in steps, not a turn at a time. When the turns outgrow their budget, the oldest are
  folded until the rest fills about `LOW_WATER` of it, and the view then only grows for many turns:
  each turn's prompt extends the previous one, which the embedded model keeps evaluated.
- A fold keeps what it keeps in the order the model read it, and the recap goes right before the
  newest question (where the prompt is new anyway). The embedded model then drops the folded span
  from its cache and reads only the recap (backends/llm/llama_cpp_backend.py); a recap placed first
  would make it re-read everything after it, tens of seconds on 2 cores.
- Turns are folded whole: a user message starts a group, and the agent's replies, tool calls and
  tool results after it go with it. A tool result is never kept without its call, or a call without
  its result.

The recap is extractive (the opening words of each folded message; when it is too long, the first and
the newest are kept): it costs no model time, and a fact the user gave early ("my name is Ada") still
has its words there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voxgate.backends.base import ChatMessage, ToolSpec

LOW_WATER = 0.5  # after a fold, the verbatim turns fill about this share of their budget
RECAP_SHARE = 0.15  # of the turns' budget, for the recap of what was folded
RECAP_WORDS_USER = 24  # words kept of each folded user message
RECAP_WORDS_AGENT = 12  # and of each folded agent reply
MARGIN_TOKENS = 128  # the voice rules the backends add to the system prompt, and counting slack
TOOLS_PREAMBLE_TOKENS = 160  # how the tools are introduced (backends/llm/qwen_prompt.py)
MESSAGE_TOKENS = 6  # a message's own markup in the chat template
RECAP_HEADER = "Earlier in this conversation (older turns, condensed):"


@dataclass(frozen=True)
class Window:
    """What the LLM sees of the conversation this turn."""

    recap: str  # "" until something was folded
    turns: list[ChatMessage]  # the recap among them, as a system message
    system_cut: bool  # the system prompt alone did not fit and was shortened


class ContextWindow:
    """One conversation's view of its history; it only moves forward, in steps (see the module's docstring)."""

    def __init__(self) -> None:
        self._start = 0  # index in the history where the verbatim turns begin
        self._recap = ""
        self._recap_at = 0  # the recap goes before this message of the history
        self.folds = 0

    def fit(
        self,
        system: str,
        tools: Sequence[ToolSpec],
        history: Sequence[ChatMessage],
        *,
        context_tokens: int,
        reply_tokens: int,
        count: Callable[[str], int],
        turns_tokens: int | None = None,
    ) -> tuple[str, Window]:
        """The system prompt (shortened only if it alone overflows) and the turns to send with it.

        `turns_tokens`: at most this much of the window for the turns and the recap (a slow model
        re-reads what is kept at each fold, so it keeps less than its window holds)."""
        fixed = count(system) + reply_tokens + MARGIN_TOKENS
        if tools:
            fixed += TOOLS_PREAMBLE_TOKENS + sum(count(_tool_text(t)) for t in tools)
        budget = context_tokens - fixed
        system_cut = False
        minimum = max(256, context_tokens // 8)  # the newest turn must always fit
        if budget < minimum:
            system = _cut_to(system, count, count(system) - (minimum - budget))
            system_cut = True
            budget = minimum
        if turns_tokens is not None:
            budget = min(budget, max(minimum, turns_tokens))
        if self._start > len(history):  # the history was replaced (a new conversation in the same object)
            self._start, self._recap, self._recap_at = 0, "", 0
        view = self._view(history)
        if _tokens(view, count) > budget:
            self._fold(history, budget, count)
            view = self._view(history)
        return system, Window(self._recap, view, system_cut)

    def _view(self, history: Sequence[ChatMessage]) -> list[ChatMessage]:
        if not self._recap:
            return list(history[self._start :])
        recap = ChatMessage(role="system", content=self._recap)
        return [*history[self._start : self._recap_at], recap, *history[self._recap_at :]]

    def _fold(self, history: Sequence[ChatMessage], budget: int, count: Callable[[str], int]) -> None:
        """Fold the oldest turns, past the last recap, until the rest fills about LOW_WATER of `budget`."""
        starts = [i for i in range(max(self._start, self._recap_at), len(history)) if history[i].role == "user"]
        if not starts:
            return
        target = int(budget * LOW_WATER)
        recap_budget = int(budget * RECAP_SHARE)
        new_start = starts[-1]  # even the newest group alone over the target: keep just it
        for i in starts:
            if _tokens(history[i:], count) + recap_budget <= target:
                new_start = i
                break
        if new_start <= self._start:
            return
        self._recap = _recap(history[:new_start], recap_budget, count)
        self._start = new_start
        # The recap goes before the newest turn, where the prompt is new anyway: the turns kept before it
        # stay as the model evaluated them (the embedded model drops the folded span from its cache).
        self._recap_at = starts[-1]
        self.folds += 1


def _tool_text(tool: ToolSpec) -> str:
    return f"{tool.name} {tool.description} {tool.parameters}"


def _tokens(messages: Sequence[ChatMessage], count: Callable[[str], int]) -> int:
    total = 0
    for m in messages:
        total += count(m.content) + MESSAGE_TOKENS
        for call in m.tool_calls:
            total += count(f"{call.name} {call.arguments}") + 2 * MESSAGE_TOKENS
    return total


def _recap(folded: Sequence[ChatMessage], budget: int, count: Callable[[str], int]) -> str:
    """Opening words of the folded user messages and agent replies. Over budget, the first ones (where
    a caller says who they are and what they want) and the newest are kept, and the middle goes."""
    lines: list[str] = []
    for m in folded:
        if m.role == "user":
            lines.append("User: " + _opening(m.content, RECAP_WORDS_USER))
        elif m.role == "assistant" and m.content.strip():
            lines.append("Agent: " + _opening(m.content, RECAP_WORDS_AGENT))
        elif m.role == "assistant" and m.tool_calls:
            lines.append("Agent called " + ", ".join(c.name for c in m.tool_calls))
        # system messages stay in the system prompt; tool results are too long to keep
    if not lines:
        return ""
    costs = [count(line) + 1 for line in lines]
    room = budget - count(RECAP_HEADER) - 2
    if sum(costs) <= room:
        return "\n".join([RECAP_HEADER, *lines])
    head: list[str] = []
    used = 0
    for line, cost in zip(lines, costs, strict=True):
        if used + cost > room // 3:
            break
        head.append(line)
        used += cost
    tail: list[str] = []
    for line, cost in zip(reversed(lines[len(head) :]), reversed(costs[len(head) :]), strict=True):
        if used + cost > room:
            break
        tail.append(line)
        used += cost
    return "\n".join([RECAP_HEADER, *head, "…", *reversed(tail)])


def _opening(text: str, words: int) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def _cut_to(text: str, count: Callable[[str], int], tokens: int) -> str:
    """`text` shortened from the end to about `tokens` (a prompt too long for the model keeps its start)."""
    if tokens <= 0:
        return ""
    total = max(1, count(text))
    return text[: max(0, int(len(text) * tokens / total))]


def estimate_tokens(text: str) -> int:
    """For models whose tokenizer we do not have (remote ones): English runs ~4 characters a token,
    so 3 errs on the side of fitting."""
    return len(text) // 3 + 1
