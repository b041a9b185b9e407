"""Separating speech from tool calls in a streamed reply.

Qwen emits a call as `<tool_call>{...}</tool_call>`, as a ```json fence, or as bare JSON. Text that
cannot be the start of a call is released at once (so speech is never held back), text that might
be is held until it is decided, and call syntax never reaches the voice.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from voxgate.backends.base import LLMEvent, TextDelta, ToolCallRequest

log = logging.getLogger("voxgate.llm")

_OPENERS = ("<tool_call>", "```json", "```", "{")
_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>|```(?:json)?\s*(.*?)```", re.DOTALL)


def _call_from(obj: Any) -> ToolCallRequest | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return None
    if not isinstance(args, dict):
        return None
    return ToolCallRequest(call_id="call_" + uuid.uuid4().hex, name=obj["name"], arguments=args)


def _json_end(text: str) -> int | None:
    """Index just past the balanced JSON object starting at text[0], or None if not closed yet."""
    depth, in_str, escaped = 0, False, False
    for i, ch in enumerate(text):
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


class ToolCallParser:
    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> list[LLMEvent]:
        self._held += text
        return self._drain(final=False)

    def flush(self) -> list[LLMEvent]:
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[LLMEvent]:
        events: list[LLMEvent] = []
        while self._held:
            start = self._candidate_start(self._held)
            if start is None:
                events.append(TextDelta(self._held))
                self._held = ""
                break
            if start > 0:
                events.append(TextDelta(self._held[:start]))
                self._held = self._held[start:]
            consumed = self._try_call(self._held, final)
            if consumed is None:  # undecided: wait for more text
                if final:
                    if not self._looks_like_call(self._held):
                        events.append(TextDelta(self._held))
                    else:
                        log.warning("dropping an unfinished tool call: %r", self._held[:200])
                    self._held = ""
                break
            n, call, is_text = consumed
            if call is not None:
                events.append(call)
            elif is_text:
                events.append(TextDelta(self._held[:n]))
            self._held = self._held[n:]
        return [e for e in events if not (isinstance(e, TextDelta) and not e.text)]

    @staticmethod
    def _candidate_start(text: str) -> int | None:
        """Where a call could begin: an opener, or a suffix that is a prefix of an opener."""
        best: int | None = None
        for opener in _OPENERS:
            i = text.find(opener)
            if i >= 0 and (best is None or i < best):
                best = i
        for k in range(1, max(len(o) for o in _OPENERS)):
            tail = text[-k:]
            if any(o.startswith(tail) and o != tail for o in _OPENERS):
                pos = len(text) - k
                best = pos if best is None else min(best, pos)
        return best

    @staticmethod
    def _looks_like_call(text: str) -> bool:
        return text.startswith(("<tool_call>", "```")) or bool(re.match(r'\{\s*"name"', text))

    def _try_call(self, text: str, final: bool) -> tuple[int, ToolCallRequest | None, bool] | None:
        """(chars consumed, the call or None, whether the consumed chars were plain text) or None if undecided."""
        if text.startswith("<tool_call>") or text.startswith("```"):
            m = _BLOCK.match(text)
            if m is None:
                if any(o.startswith(text) for o in _OPENERS):
                    return None
                return None if not final else (len(text), None, False)
            body = (m.group(1) or m.group(2) or "").strip()
            return m.end(), self._parse(body), False
        if text.startswith("{"):
            end = _json_end(text)
            if end is None:
                # Only hold what could still be a call: {"name"... ; "{b}" style text is released.
                if re.match(r'^\{\s*("(n(a(m(e)?)?)?)?)?$', text[:8]) or re.match(r'^\{\s*"name"', text):
                    return None
                return 1, None, True
            try:
                obj = json.loads(text[:end])
            except json.JSONDecodeError:
                return 1, None, True
            call = _call_from(obj)
            return (end, call, False) if call else (1, None, True)
        # a partial opener at the very end ("<tool", "``")
        if any(o.startswith(text) for o in _OPENERS) and not final:
            return None
        return 1, None, True

    @staticmethod
    def _parse(body: str) -> ToolCallRequest | None:
        try:
            call = _call_from(json.loads(body))
        except json.JSONDecodeError:
            call = None
        if call is None:
            log.warning("unparseable tool call dropped: %r", body[:200])
        return call
