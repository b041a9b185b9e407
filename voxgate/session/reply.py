"""One reply of the agent's: a handle on it, and the LLM's stream turned into what is said.

An `ActiveReply` is a holder: the task speaking it runs in its scope, so closing the reply (a barge-in,
the user going on while it was still thinking, the socket going) stops synthesis, the LLM and the
sending at once. What the user heard is known from its speaker's playback clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal

from voxgate.aio import TaskScope
from voxgate.backends.base import LLMEvent, TextDelta, ToolCallRequest
from voxgate.protocol.events import ReplyErrorCode, new_id
from voxgate.redaction import redact
from voxgate.session.clauses import FIRST_CLAUSE_MIN_WORDS, ClauseSplitter
from voxgate.session.speaker import ReplySpeaker, SpeechItem, ToolCallsReady
from voxgate.session.spoken_filter import SpokenSplitter

log = logging.getLogger("voxgate.session")

TRANSITION = "One moment, let me check."
APOLOGY = "Sorry, I'm having trouble answering right now."
NOTHING_TO_SAY = "Sorry, could you say that again?"
TOOL_TIMED_OUT = "Sorry, that is taking too long. Let's go on without it."

# What started a reply (the session record's `trigger`); `greeting` is what `uninterruptible_turns` names.
Trigger = Literal["greeting", "user_turn", "reply_create", "tool_result", "apology", "resume"]


class ReplyFailed(Exception):
    """A reply's model failed: it becomes `reply.error`, the reply closes as interrupted, an apology follows."""

    def __init__(self, code: ReplyErrorCode, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.status_code: int | None = None
        self.provider_code: str | None = None
        self.provider_param: str | None = None


@dataclass(eq=False)
class ActiveReply:
    reply_id: str
    scope: TaskScope
    item_id: str = ""
    trigger: Trigger = "user_turn"
    uninterruptible: bool = False  # `uninterruptible_turns` names its class: user speech over it is discarded
    speaker: ReplySpeaker | None = None  # set once the reply has its voice
    started: bool = False  # reply.started has been sent
    finished: bool = False  # it ended on its own (completed, or closed after a failure)
    calls: list[ToolCallRequest] = field(default_factory=list)

    @classmethod
    def new(cls, session_id: str, trigger: Trigger = "user_turn", *, uninterruptible: bool = False) -> ActiveReply:
        reply_id = new_id("resp_")
        return cls(reply_id, TaskScope(f"{session_id}:{reply_id}"), new_id("msg_"), trigger, uninterruptible)

    @property
    def speaking(self) -> bool:
        """The user is hearing it, or would be but for a pause: voice now is voice over the agent."""
        return self.started and not self.finished

    @property
    def paused(self) -> bool:
        return self.speaker is not None and self.speaker.paused

    async def close(self) -> None:
        await self.scope.close()


async def clauses_of(text: str, *, first_min_words: int = FIRST_CLAUSE_MIN_WORDS) -> AsyncIterator[SpeechItem]:
    splitter = ClauseSplitter(first_min_words=first_min_words)
    for clause in [*splitter.feed(text), *splitter.flush()]:
        yield clause


async def llm_items(
    stream: AsyncIterator[LLMEvent],
    *,
    first_token_timeout_s: float,
    hold: Callable[[str], bool] = lambda _: False,
    filtered: bool = True,
    first_min_words: int = FIRST_CLAUSE_MIN_WORDS,
) -> AsyncIterator[SpeechItem]:
    """The LLM's deltas as clauses to say, and its tool calls after a spoken transition.

    `hold(name)`: a `hold` tool, which gets no transition (the agent goes quiet while it runs). A model
    that fails or does not answer in time raises ReplyFailed: the reply reports it and an apology
    follows, never dead air. What is not meant for the ear (markup, JSON, a call told in words) is
    dropped on the way (session/spoken_filter.py) unless `filtered` is off (only to measure it).
    `first_min_words`: where the first clause may end, for the voice that says it (session/clauses.py).
    """
    splitter = SpokenSplitter(filtered=filtered, first_min_words=first_min_words)
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
                    if not spoke and not hold(event.name):
                        spoke = True
                        yield TRANSITION
                    spoke = True
                calls.append(event)
    except TimeoutError:
        raise ReplyFailed(
            ReplyErrorCode.LLM_TIMEOUT, "the language model did not answer in time", retryable=True
        ) from None
    except Exception as exc:  # the backend failed: say so, and tell the user in words
        log.exception("language model failed")
        failure = ReplyFailed(ReplyErrorCode.LLM_ERROR, f"language model failed: {redact(str(exc))}")
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):
            failure.status_code = status
            failure.retryable = status >= 500
        code = getattr(exc, "code", None)
        failure.provider_code = code if isinstance(code, str) else None
        param = getattr(exc, "param", None)  # an OpenAI-compatible error names the parameter it refused
        failure.provider_param = param if isinstance(param, str) else None
        raise failure from exc
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    for clause in splitter.flush():
        spoke = True
        yield clause
    if calls:
        yield ToolCallsReady(tuple(calls))
    elif not spoke:
        yield NOTHING_TO_SAY
