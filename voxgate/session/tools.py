"""The tool calls a session waits on, and what becomes of their results.

A call made by a reply that completed is pending until the client answers it with `tool.result`; when
every pending call has its result, the next reply uses them. Results are kept through anything short
of losing their turn: voice over the agent, a cough or an "mm-hmm" before the result arrives do not
drop them, and neither does an "mm-hmm" the user says while waiting (it is not a turn). A call is
discarded only when its reply was interrupted (the protocol says so, and the
client drops its results) or when the user's next turn was committed first; that turn's reply then
sees the results that did arrive, and the assistant message keeps only the calls that were answered,
so history never holds a call without its result.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Literal

from voxgate.backends.base import ChatMessage, ToolCallRequest
from voxgate.protocol.events import Tool

log = logging.getLogger("voxgate.session")

DISCARDED_REMEMBERED = 256  # call ids whose late results are ignored quietly; older ones are forgotten

ResultVerdict = Literal["kept", "discarded", "unknown"]


class ToolLedger:
    def __init__(self) -> None:
        self._pending: dict[str, ToolCallRequest] = {}
        self._settings: dict[str, Tool | None] = {}  # call id -> its tool's settings (mode, instructions)
        self._results: dict[str, tuple[str, bool]] = {}  # call id -> (result, is_error)
        self._discarded: OrderedDict[str, None] = OrderedDict()
        self._timed_out: dict[str, ToolCallRequest] = {}  # the last call that timed out, for its apology
        self._run_here: set[str] = set()  # calls the server runs itself: a client's result for them is ignored

    @property
    def pending(self) -> frozenset[str]:
        return frozenset(self._pending)

    def expect(self, calls: Iterable[ToolCallRequest], settings: Callable[[str], Tool | None] = lambda _: None) -> None:
        """A reply that called tools completed: their results are due. `settings(name)`: the tool's settings."""
        for call in calls:
            self._pending[call.call_id] = call
            self._settings[call.call_id] = settings(call.name)

    def result(
        self, call_id: str, result: str, *, in_flight: Iterable[ToolCallRequest] = (), is_error: bool = False
    ) -> ResultVerdict:
        """`in_flight`: calls of the reply still speaking, whose results may come before its `reply.done`."""
        if call_id in self._discarded:
            return "discarded"
        if call_id not in self._pending and all(c.call_id != call_id for c in in_flight):
            return "unknown"
        self._results[call_id] = (result, is_error)
        return "kept"

    def run_here(self, call_id: str) -> None:
        self._run_here.add(call_id)

    def runs_here(self, call_id: str) -> bool:
        return call_id in self._run_here

    @property
    def holding(self) -> bool:
        """A `hold` tool runs: the agent stays quiet and the user's turns wait for its result."""
        return any(
            (tool := self._settings.get(cid)) is not None and tool.execution_mode == "hold" and cid not in self._results
            for cid in self._pending
        )

    def guidance(self) -> str | None:
        """The tools' `response_instructions` for the reply that uses their results (`error` for failures)."""
        parts = []
        for cid in self._pending:
            tool = self._settings.get(cid)
            if tool is None or tool.response_instructions is None or cid not in self._results:
                continue
            text = tool.response_instructions.error if self._results[cid][1] else tool.response_instructions.success
            if text:
                parts.append(text)
        return " ".join(parts) or None

    def name_of(self, call_id: str) -> str | None:
        """The tool a call (pending, or just timed out) was for."""
        call = self._pending.get(call_id) or self._timed_out.get(call_id)
        return call.name if call is not None else None

    def time_out(self, call_id: str, history: list[ChatMessage]) -> bool:
        """A call got no result in time: it is answered in history as timed out, and a late result ignored."""
        if call_id not in self._pending or call_id in self._results:
            return False
        self._timed_out = {call_id: self._pending.pop(call_id)}
        self._settings.pop(call_id, None)
        self._remember_discarded(call_id)
        history.append(
            ChatMessage(role="tool", content='{"error": "the tool did not answer in time"}', tool_call_id=call_id)
        )
        return True

    def answered(self) -> bool:
        """Every pending call has its result."""
        return bool(self._pending) and all(cid in self._results for cid in self._pending)

    def take_results(self) -> list[ChatMessage]:
        """The results of the pending calls, as the tool messages that follow the assistant's calls."""
        messages = [
            ChatMessage(role="tool", content=_content(*self._results[cid]), tool_call_id=cid)
            for cid in self._pending
            if cid in self._results
        ]
        self._run_here -= set(self._pending)
        self._pending, self._results, self._settings = {}, {}, {}
        return messages

    def forget(self, calls: Iterable[ToolCallRequest]) -> None:
        """Calls of an interrupted reply: their results, if any come, are ignored."""
        for call in calls:
            self._remember_discarded(call.call_id)

    def settle(self, history: list[ChatMessage]) -> None:
        """The user's turn was committed (or a reply interrupted) while calls were pending: the results that
        came go into history, and calls still unanswered are taken out of it and discarded."""
        if not self._pending:
            return
        unanswered = {cid for cid in self._pending if cid not in self._results}
        results = self.take_results()
        if unanswered:
            for message in reversed(history):
                if message.role == "assistant" and message.tool_calls:
                    message.tool_calls = [c for c in message.tool_calls if c.call_id not in unanswered]
                    break
            for cid in unanswered:
                self._remember_discarded(cid)
            log.debug("tool calls discarded, unanswered when the turn moved on: %s", sorted(unanswered))
        history.extend(results)

    def _remember_discarded(self, call_id: str) -> None:
        self._discarded[call_id] = None
        while len(self._discarded) > DISCARDED_REMEMBERED:
            self._discarded.popitem(last=False)


def _content(result: str, is_error: bool) -> str:
    """What the LLM reads of a result; a failed tool says so, whatever its text."""
    return f"Error: {result}" if is_error else result
