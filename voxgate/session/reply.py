"""One reply of the agent's: a handle on it, and the LLM's stream turned into what is said.

An `ActiveReply` is a holder: the task speaking it runs in its scope, so closing the reply (a barge-in,
the user going on while it was still thinking, the socket going) stops synthesis, the LLM and the
sending at once. What the user heard is known from its speaker's playback clock.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from voxgate.aio import TaskScope
from voxgate.backends.base import LLMEvent, TextDelta, ToolCallRequest
from voxgate.protocol.events import ErrorCode
from voxgate.session.clauses import ClauseSplitter
from voxgate.session.speaker import ReplySpeaker, SpeechItem, ToolCallsReady

log = logging.getLogger("voxgate.session")

TRANSITION = "One moment, let me check."
APOLOGY = "Sorry, I'm having trouble answering right now."
NOTHING_TO_SAY = "Sorry, could you say that again?"

ReportError = Callable[[ErrorCode, str], Awaitable[None]]


@dataclass(eq=False)
class ActiveReply:
    reply_id: str
    scope: TaskScope
    speaker: ReplySpeaker | None = None  # set once the reply has its voice
    started: bool = False  # reply.started has been sent
    finished: bool = False  # it ended on its own (completed, or closed after a failure)
    calls: list[ToolCallRequest] = field(default_factory=list)

    @classmethod
    def new(cls, session_id: str) -> ActiveReply:
        reply_id = "reply_" + uuid.uuid4().hex[:16]
        return cls(reply_id, TaskScope(f"{session_id}:{reply_id}"))

    @property
    def speaking(self) -> bool:
        """The user is hearing it, or would be but for a pause: voice now is voice over the agent."""
        return self.started and not self.finished

    @property
    def paused(self) -> bool:
        return self.speaker is not None and self.speaker.paused

    async def close(self) -> None:
        await self.scope.close()


async def clauses_of(text: str) -> AsyncIterator[SpeechItem]:
    splitter = ClauseSplitter()
    for clause in [*splitter.feed(text), *splitter.flush()]:
        yield clause


async def llm_items(
    stream: AsyncIterator[LLMEvent], *, first_token_timeout_s: float, report: ReportError
) -> AsyncIterator[SpeechItem]:
    """The LLM's deltas as clauses to say, and its tool calls after a spoken transition.

    A model that fails or does not answer in time is reported (`report`) and, if nothing was said
    yet, the user hears an apology: never dead air.
    """
    splitter = ClauseSplitter()
    spoke = False
    calls: list[ToolCallRequest] = []
    try:
        first = True
        while True:
            try:
                if first:
                    async with asyncio.timeout(first_token_timeout_s):
                        event = await anext(stream)
                    first = False
                else:
                    event = await anext(stream)
            except StopAsyncIteration:
                break
            if isinstance(event, TextDelta):
                for clause in splitter.feed(event.text):
                    spoke = True
                    yield clause
            else:
                if not spoke and not calls:
                    for clause in splitter.flush():
                        spoke = True
                        yield clause
                    if not spoke:
                        spoke = True
                        yield TRANSITION
                calls.append(event)
    except TimeoutError:
        await report(ErrorCode.AGENT_TIMEOUT, "the language model did not answer in time")
        if not spoke:
            yield APOLOGY
        return
    except Exception as exc:  # the backend failed: say so, and tell the user in words
        log.exception("language model failed")
        await report(ErrorCode.SERVER_ERROR, f"language model failed: {exc}")
        if not spoke:
            yield APOLOGY
        return
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    for clause in splitter.flush():
        spoke = True
        yield clause
    if calls:
        yield ToolCallsReady(tuple(calls))
    elif not spoke:
        yield NOTHING_TO_SAY
