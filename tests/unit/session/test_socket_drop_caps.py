"""Resumes against the session cap (M1), sessions left at shutdown (H6), and a turn in flight when the
socket dropped (M7): SessionStore, SessionRegistry and Conversation with scripted ports."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes import ScriptedLLM, open_session
from tests.unit.session.test_registry import Socket, registry
from tests.virtual_time import virtual
from voxgate.protocol.events import ErrorCode
from voxgate.session.conversation import Conversation
from voxgate.session.store import ResumeError, SessionStore


def test_a_resume_counts_against_the_cap_and_a_takeover_is_neutral() -> None:
    store: SessionStore[str] = SessionStore(resume_window_s=30.0)
    store.add("a", "A", "k1")
    store.add("b", "B", "k1")
    store.detach("a")
    store.add("c", "C", "k2")  # the cap of 2 is full: b and c
    with pytest.raises(ResumeError) as refused:
        store.claim("a", "k1", max_attached=2)
    assert refused.value.code == ErrorCode.SERVER_ERROR
    assert store.attached_count == 2
    assert store.claim("b", "k1", max_attached=2) == "B"  # still attached: a takeover, not refused
    assert store.attached_count == 2
    store.remove("c")
    assert store.claim("a", "k1", max_attached=2) == "A"


def test_a_resume_counts_against_the_per_key_limit() -> None:
    store: SessionStore[str] = SessionStore(resume_window_s=30.0)
    store.add("a", "A", "k1")
    store.detach("a")
    store.add("b", "B", "k1")
    with pytest.raises(ResumeError) as refused:
        store.claim("a", "k1", max_attached=10, max_per_owner=1)
    assert refused.value.code == ErrorCode.CONCURRENCY_EXCEEDED
    assert store.claim("a", "k1", max_attached=10, max_per_owner=2) == "A"


@virtual
async def test_the_registry_refuses_a_resume_at_capacity() -> None:
    from tests.fakes import Lexicon

    reg = registry(Lexicon())
    reg.max_sessions = 1
    first, second = Socket("first"), Socket("second")
    conversation = reg.open("owner", first)
    assert conversation is not None
    await reg.release(conversation, first)
    assert reg.open("owner", second) is not None  # the only slot
    with pytest.raises(ResumeError):
        await reg.resume(conversation.session_id, "owner", Socket("third"))
    assert reg.attached_count == 1


@virtual
async def test_shutdown_finishes_every_session_left_and_closes_its_socket_1012() -> None:
    from tests.fakes import Lexicon

    reg = registry(Lexicon())
    held, dropped = Socket("held"), Socket("dropped")
    live = reg.open("owner", held)
    waiting = reg.open("owner", dropped)
    assert live is not None and waiting is not None
    await reg.release(waiting, dropped)
    finished: list[tuple[str, str]] = []

    def record(conversation: Conversation, close_reason: str) -> None:
        finished.append((conversation.session_id, close_reason))

    reg.records.finished = record  # type: ignore[method-assign]
    await reg.shutdown()
    assert sorted(finished) == sorted([(live.session_id, "server_shutdown"), (waiting.session_id, "server_shutdown")])
    assert held.closed == [(1012, "server shutting down")] and dropped.closed == []
    assert len(reg) == 0
    await reg.shutdown()  # idempotent
    assert len(finished) == 2


@virtual
async def test_a_reply_still_thinking_when_the_socket_dropped_is_given_after_resume() -> None:
    s = await open_session(llm=ScriptedLLM(["It is noon."], ["It is noon."], first_token_s=2.0))
    await s.user.say("What time is it?", 1.0)
    await s.until(lambda: s.state() == "Replying")
    await s.drop()
    assert [m.role for m in s.conversation.history] == ["user"]  # committed, never answered
    await asyncio.sleep(1.0)
    s.resume()
    await s.conversation.answer_owed()
    await s.idle()
    assert [e for e in s.wire() if e.startswith(("transcript.agent", "reply.done"))] == [
        "transcript.agent: It is noon.",
        "reply.done completed",
    ]
    assert [m.role for m in s.conversation.history] == ["user", "assistant"]


@virtual
async def test_nothing_is_owed_when_the_reply_was_heard() -> None:
    s = await open_session(llm=ScriptedLLM(["Once upon a time there was a knight. "], ["Again."]))
    await s.user.say("Tell me a story.", 1.0)
    await s.until(lambda: s.transport.audio_s() > 0.5)
    await s.user.pause(1.0)
    await s.drop()
    s.resume()
    await s.conversation.answer_owed()
    await asyncio.sleep(1.0)
    assert s.wire() == []  # the new socket: nothing re-said
