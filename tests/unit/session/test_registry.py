"""The resume races (H2 in reliability-findings.md), on SessionRegistry with scripted ports and fake sockets.

A resume that overlaps the old socket's release must leave the session owned by the new socket, counted
as attached, and listening; two sockets resuming at once must end with exactly one of them holding it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.fakes import (
    SCRIPT_POLICY,
    Lexicon,
    RecordingTransport,
    ScriptedLLM,
    ScriptedRecognizer,
    ScriptedVad,
    ToneVoices,
    User,
)
from tests.virtual_time import virtual
from voxgate.backends.registry import Models
from voxgate.config import Settings
from voxgate.protocol.events import SessionConfig
from voxgate.server.sessions import SessionRegistry
from voxgate.session.conversation import Conversation
from voxgate.session.ports import SessionPorts


class Socket:
    """A Holder: records how it was closed; closing takes a moment, as a real socket's does."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed: list[tuple[int, str]] = []

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await asyncio.sleep(0.01)
        self.closed.append((code, reason))


def registry(lexicon: Lexicon) -> SessionRegistry:
    ports = SessionPorts(
        new_vad=ScriptedVad,
        recognizer=ScriptedRecognizer(lexicon),
        turn_model=None,
        llms=ScriptedLLM(respond=lambda messages: ["It is noon."]),
        voices=ToneVoices(),
        prepare=lambda: None,
    )
    return SessionRegistry(Models(Settings(max_sessions=4, resume_window_s=30.0)), ports, SCRIPT_POLICY)


async def speaking(reg: SessionRegistry, holder: Socket) -> Conversation:
    """A session opened by `holder`, greeting its user (so detaching it has work to cancel and wait for)."""
    conversation = reg.open("owner", holder)
    assert conversation is not None
    conversation.attach(RecordingTransport())
    greeting = {"greeting": "Hello there, and welcome to the line, how can I help you today?"}
    await conversation.update(SessionConfig.model_validate(greeting), set(greeting))
    await conversation.greet()
    await asyncio.sleep(0.5)
    return conversation


def slow_detach(conversation: Conversation, log: list[str]) -> None:
    """Detaching takes a while (a reply to cancel, a socket to flush): widen the window a race needs."""
    detach: Callable[[], Awaitable[None]] = conversation.detach

    async def slowly() -> None:
        log.append("detach started")
        await asyncio.sleep(0.2)
        await detach()
        log.append("detach done")

    conversation.detach = slowly  # type: ignore[method-assign]


async def answers(conversation: Conversation, lexicon: Lexicon) -> list[str]:
    """The conversation hears a question on a fresh socket and answers it: it is not deaf."""
    transport = RecordingTransport()
    conversation.attach(transport)
    user = User(conversation, lexicon)
    user.start()
    await user.say("What time is it?", 1.0, then=1.5)
    await user.stop()
    # the audio and the word captions that go with it are left out (tests/unit/session/test_protocol.py has them)
    return [e.type for e in transport.events if e.type not in ("reply.audio", "transcript.agent.delta")]


ANSWERED = [
    "input.speech.started",
    "transcript.user.delta",
    "input.speech.stopped",
    "transcript.user",
    "reply.started",
    "transcript.agent",
    "reply.done",
]


@virtual
async def test_a_resume_racing_the_old_sockets_release_keeps_the_session() -> None:
    lexicon = Lexicon()
    reg = registry(lexicon)
    old, new = Socket("old"), Socket("new")
    conversation = await speaking(reg, old)
    log: list[str] = []
    slow_detach(conversation, log)

    async def resume() -> Conversation:
        await asyncio.sleep(0.05)  # arrives while the release is still detaching
        log.append("resume")
        return await reg.resume(conversation.session_id, "owner", new)

    _, resumed = await asyncio.gather(reg.release(conversation, old), resume())
    assert log == ["detach started", "resume", "detach done"]  # the race happened
    assert resumed is conversation
    assert reg.holds(conversation, new) and not reg.holds(conversation, old)
    assert reg.attached_count == 1 and len(reg) == 1  # counted as attached: not reaped, not free capacity
    assert conversation.listener is not None  # not deaf
    assert old.closed == [] and new.closed == []  # the old socket closed itself; nobody closes the new one
    assert await answers(conversation, lexicon) == ANSWERED


@virtual
async def test_a_release_that_comes_after_the_resume_changes_nothing() -> None:
    lexicon = Lexicon()
    reg = registry(lexicon)
    old, new = Socket("old"), Socket("new")
    conversation = await speaking(reg, old)
    await reg.resume(conversation.session_id, "owner", new)  # the new socket before the old one noticed its drop
    assert old.closed == [(4000, "session resumed on another socket")]
    await reg.release(conversation, old)  # the old socket's own close, late
    assert reg.holds(conversation, new) and reg.attached_count == 1
    assert conversation.listener is not None
    assert await answers(conversation, lexicon) == ANSWERED


@virtual
async def test_two_concurrent_resumes_leave_exactly_one_holder() -> None:
    lexicon = Lexicon()
    reg = registry(lexicon)
    old, first, second = Socket("old"), Socket("first"), Socket("second")
    conversation = await speaking(reg, old)
    slow_detach(conversation, [])
    await asyncio.gather(
        reg.resume(conversation.session_id, "owner", first),
        reg.resume(conversation.session_id, "owner", second),
    )
    holders = [s.name for s in (old, first, second) if reg.holds(conversation, s)]
    assert holders == ["second"]
    resumed_elsewhere = [(4000, "session resumed on another socket")]
    assert old.closed == resumed_elsewhere and first.closed == resumed_elsewhere and second.closed == []
    assert reg.attached_count == 1
    assert conversation.listener is not None
    # the loser's release (its socket was closed) changes nothing
    await reg.release(conversation, first)
    assert reg.holds(conversation, second) and reg.attached_count == 1
    assert await answers(conversation, lexicon) == ANSWERED
