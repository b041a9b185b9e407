"""The turns of a session as the client saw them: the session record's `timeline` artifact.

Built from the events the session sends, so it says exactly what the client was told: each user
turn at its `transcript.user`, each reply from its `reply.started` to its `transcript.agent` (with
what started it and whether it was cut). Bounded: a long call keeps its latest turns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from voxgate.protocol.events import AgentTranscript, ReplyStarted, ServerEvent, UserTranscript

TIMELINE_MAX = 5000  # turns kept


class Timeline:
    def __init__(self, started_at: float, *, now: Callable[[], float] = time.time) -> None:
        self._started_at = started_at
        self._now = now
        self.turns: list[dict[str, Any]] = []
        self._replies: dict[str, tuple[float, str]] = {}  # reply_id -> (started, trigger)

    def note(self, event: ServerEvent, trigger_of: Callable[[str], str]) -> None:
        """`trigger_of(reply_id)`: what started that reply (`greeting`, `user_turn`, `tool_result`, …)."""
        at = round(self._now() - self._started_at, 3)
        if isinstance(event, ReplyStarted):
            self._replies[event.reply_id] = (at, trigger_of(event.reply_id))
            return
        if isinstance(event, UserTranscript):
            turn: dict[str, Any] = {"role": "user", "item_id": event.item_id, "reply_id": None, "text": event.text}
            turn |= {"interrupted": False, "trigger": None, "start_s": at, "end_s": at}
        elif isinstance(event, AgentTranscript):
            started, trigger = self._replies.pop(event.reply_id, (at, "user_turn"))
            turn = {"role": "agent", "item_id": event.item_id, "reply_id": event.reply_id, "text": event.text}
            turn |= {"interrupted": event.interrupted, "trigger": trigger, "start_s": started, "end_s": at}
        else:
            return
        self.turns.append(turn)
        if len(self.turns) > TIMELINE_MAX:
            del self.turns[: len(self.turns) - TIMELINE_MAX]

    def __len__(self) -> int:
        return len(self.turns)
