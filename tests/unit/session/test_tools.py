"""Scripted conversations with tool calls, on virtual time: the call and its result, a result that comes
early, a call cut by a barge-in, and voice while a slow tool runs (H3 in reliability-findings.md)."""

from __future__ import annotations

from tests.fakes import LLMScript, ScriptedLLM, Session, open_session, tool_call
from tests.virtual_time import virtual
from voxgate.backends.base import ChatMessage
from voxgate.session.reply import TRANSITION

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
QUESTION = "What's the weather in Paris?"
RESULT = '{"condition": "sunny"}'
TRANSITION_SPOKEN = [
    "input.speech.started",
    f"transcript.user.delta: {QUESTION}",
    "input.speech.stopped",
    f"transcript.user: {QUESTION}",
    "reply.started",
    "reply.audio",
]
# The docs' order (shared/protocol.md §6.4): the transition's transcript, then the call, then reply.done.
CALL_DONE = [
    *TRANSITION_SPOKEN,
    f"transcript.agent: {TRANSITION}",
    'tool.call get_weather {"city": "Paris"}',
    "reply.done completed",
]
ANSWER = ["reply.started", "reply.audio", "transcript.agent: It is sunny in Paris.", "reply.done completed"]


def weather_agent(messages: list[ChatMessage]) -> LLMScript:
    """Calls the tool for the question, answers from a result, and says "Okay." to anything else."""
    last = messages[-1]
    if last.role == "tool":
        return ["It is sunny ", "in Paris."]
    if last.content == QUESTION:
        return [tool_call("get_weather", city="Paris")]
    return ["Okay."]


async def asked() -> Session:
    s = await open_session(llm=ScriptedLLM(respond=weather_agent), config={"tools": [WEATHER]})
    await s.user.say(QUESTION, 1.2)
    return s


def roles(messages: list[ChatMessage]) -> list[tuple[str, str, list[str], str | None]]:
    return [(m.role, m.content, [c.call_id for c in m.tool_calls], m.tool_call_id) for m in messages]


@virtual
async def test_a_tool_call_and_its_result_make_the_next_reply() -> None:
    s = await asked()
    await s.idle()
    assert s.wire() == CALL_DONE  # the transition phrase is said, then the call goes out in the same reply
    assert s.state() == "AwaitingTools"
    await s.user.pause(1.0)  # the tool takes a second
    await s.conversation.on_tool_result("call_1", RESULT)
    await s.idle()
    assert s.wire() == [*CALL_DONE, *ANSWER]
    assert s.state() == "Listening"
    *_, answering = s.llm.calls
    assert roles(answering.messages[1:]) == [
        ("user", QUESTION, [], None),
        ("assistant", TRANSITION, ["call_1"], None),
        ("tool", RESULT, [], "call_1"),
    ]
    assert [t.name for t in answering.tools] == ["get_weather"]
    assert roles(s.conversation.history)[-1] == ("assistant", "It is sunny in Paris.", [], None)


@virtual
async def test_a_result_that_comes_before_reply_done_is_kept_for_it() -> None:
    # Voxgate is lenient (§6.4): a result for a call of the reply still speaking is held until it ends.
    s = await asked()
    await s.until(lambda: any(e.type == "reply.audio" for e in s.events))
    assert s.conversation.state.reply.calls  # type: ignore[union-attr]  # the LLM asked; the transition plays
    await s.conversation.on_tool_result("call_1", RESULT)
    assert not any(e.type == "reply.done" for e in s.events)
    await s.idle()
    assert s.wire() == [*CALL_DONE, *ANSWER]
    assert s.llm.calls[-1].started_at == s.transport.first("reply.done")  # answered as soon as the call is done


@virtual
async def test_a_tool_call_cut_by_a_barge_in_drops_its_result() -> None:
    s = await asked()
    await s.until(lambda: any(e.type == "reply.audio" for e in s.events))
    await s.user.pause(0.3)  # the transition plays: "One" (0-0.12 s), "moment," (0.12-0.52 s), "let" (0.52-0.72 s)
    await s.user.say("Wait, stop", 0.6, then=0.3)  # the reply pauses at its onset: about 0.49 s heard
    await s.conversation.on_tool_result("call_1", RESULT)  # a result for the cut reply's call
    await s.user.pause(2.0)
    await s.idle()
    assert s.wire() == [
        *TRANSITION_SPOKEN,
        "input.speech.started",
        "transcript.agent interrupted: One moment,",  # "moment," half played and more, "let" not begun
        "reply.done interrupted",
        "input.speech.stopped",
        "transcript.user: Wait, stop",
        "reply.started",
        "reply.audio",
        "transcript.agent: Okay.",
        "reply.done completed",
    ]  # a cut reply never announces its call; no session.error for the result, and no reply made from it
    assert s.state() == "Listening"
    assert roles(s.conversation.history) == [
        ("user", QUESTION, [], None),
        ("assistant", "One moment,", [], None),  # what was heard, without the call that was cut
        ("user", "Wait, stop", [], None),
        ("assistant", "Okay.", [], None),
    ]
    assert all(m.role != "tool" for call in s.llm.calls for m in call.messages)


@virtual
async def test_a_sound_while_a_slow_tool_runs_keeps_the_call() -> None:
    # H3: a cough or a click after reply.done must not discard the call whose result is on its way.
    s = await asked()
    await s.idle()
    await s.user.noise(0.13, then=1.0)  # voice for the VAD, too short to be a turn
    assert s.state() == "AwaitingTools"
    await s.conversation.on_tool_result("call_1", RESULT)
    await s.idle()
    assert s.wire() == [*CALL_DONE, "input.speech.started", "input.speech.stopped", *ANSWER]
    assert roles(s.llm.calls[-1].messages)[-1] == ("tool", RESULT, [], "call_1")


@virtual
async def test_a_backchannel_while_a_slow_tool_runs_keeps_the_call() -> None:
    # H3 too: an "mm-hmm" while waiting for a result is not the user's next turn; the call stays pending.
    s = await asked()
    await s.idle()
    await s.user.say("Mm-hmm.", 0.4, then=1.0)
    assert s.state() == "AwaitingTools"
    await s.conversation.on_tool_result("call_1", RESULT)
    await s.idle()
    assert s.wire() == [*CALL_DONE, "input.speech.started", "input.speech.stopped", *ANSWER]  # no transcript.user
    assert roles(s.llm.calls[-1].messages)[-1] == ("tool", RESULT, [], "call_1")


@virtual
async def test_the_users_next_turn_before_the_result_discards_the_call() -> None:
    # Documented (session/tools.py): a turn committed first wins; the call leaves history unanswered.
    s = await asked()
    await s.idle()
    await s.user.say("Never mind.", 0.8, then=1.0)
    await s.idle()
    await s.conversation.on_tool_result("call_1", RESULT)
    await s.user.pause(1.0)
    assert s.wire() == [
        *CALL_DONE,
        "input.speech.started",
        "transcript.user.delta: Never mind.",
        "input.speech.stopped",
        "transcript.user: Never mind.",
        "reply.started",
        "reply.audio",
        "transcript.agent: Okay.",
        "reply.done completed",
    ]  # the late result is ignored quietly
    assert roles(s.conversation.history)[:2] == [("user", QUESTION, [], None), ("assistant", TRANSITION, [], None)]


@virtual
async def test_a_result_for_an_unknown_call_is_an_error() -> None:
    s = await asked()
    await s.idle()
    await s.conversation.on_tool_result("call_nope", RESULT)
    assert s.wire() == [*CALL_DONE, "session.error invalid_value"]
    assert s.state() == "AwaitingTools"
