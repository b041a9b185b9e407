"""A socket that drops mid-reply or mid-hold, and the session resumed on a new one (virtual time).

Detaching returns the conversation to a resting state, so nothing of the old socket's turn survives into
the new one: the next utterance behaves exactly like a first one (problem 1 of core-redesign.md).
"""

from __future__ import annotations

import asyncio

from tests.fakes import ScriptedLLM, Session, open_session
from tests.virtual_time import virtual

STORY = ["Once upon a time there was a knight. ", "He lived in a castle by the sea. "]
ANSWERED = [
    "input.speech.started",
    "transcript.user.delta: What time is it?",
    "input.speech.stopped",
    "transcript.user: What time is it?",
    "reply.started",
    "reply.audio",
    "transcript.agent: It is noon.",
    "reply.done completed",
]


async def telling(s: Session, into_reply: float) -> None:
    await s.user.say("Tell me a story.", 1.0)
    await s.until(lambda: s.transport.audio_s() > 0)
    await s.user.pause(s.transport.first("reply.audio") + into_reply - s.now())


async def resumed_and_asked(s: Session) -> None:
    await s.drop()
    assert s.state() == "Listening" and s.conversation.listener is None
    await asyncio.sleep(2.0)  # the client reconnects
    s.resume()
    assert s.conversation.listener is not None
    await s.user.pause(0.3)
    await s.user.say("What time is it?", 1.0, then=1.0)
    await s.idle()


@virtual
async def test_resumed_mid_reply_the_next_turn_is_a_plain_one() -> None:
    s = await open_session(llm=ScriptedLLM(STORY, ["It is noon."]))
    await telling(s, into_reply=1.0)
    assert s.state() == "Replying"
    old = s.transport
    await resumed_and_asked(s)
    assert old.events[-1].type == "reply.audio"  # the old socket is gone: nothing more was sent to it
    assert s.wire() == ANSWERED
    assert [(m.role, m.content) for m in s.conversation.history] == [
        ("user", "Tell me a story."),
        # what the user heard before the socket dropped (~0.99 s): "time" (midpoint 0.72 s), not "there" (1.02 s)
        ("assistant", "Once upon a time"),
        ("user", "What time is it?"),
        ("assistant", "It is noon."),
    ]
    assert [m.content for m in s.llm.calls[-1].messages[1:3]] == ["Tell me a story.", "Once upon a time"]


@virtual
async def test_resumed_mid_hold_the_next_turn_is_a_plain_one() -> None:
    s = await open_session(llm=ScriptedLLM(STORY, ["It is noon."]))
    await telling(s, into_reply=1.0)
    await s.user.say("Mm-hmm.", 0.3)  # over the agent: the reply paused while its words are read
    await s.until(lambda: s.state() == "OverAgent(reading)")
    assert s.conversation.state.reply.paused  # type: ignore[union-attr]
    old = s.transport
    await resumed_and_asked(s)
    assert old.events[-1].type == "input.speech.started"  # the pause, never resolved on the old socket
    assert s.wire() == ANSWERED  # one input.speech.started: no hold, no paused reply carried over
    assert len(s.vads) == 2  # the new socket's audio went to a fresh detector
