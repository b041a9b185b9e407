"""A conversation saved as a snapshot and rebuilt elsewhere (session/snapshot.py), on virtual time:
what another replica needs to carry it on after a drop or its replica's death."""

from __future__ import annotations

import json

import pytest

from tests.fakes import ScriptedLLM, Session, open_session, wire
from tests.unit.session.test_tools import ANSWER, QUESTION, RESULT, WEATHER, weather_agent
from tests.virtual_time import virtual
from voxgate.backends.base import ChatMessage
from voxgate.session.conversation import Conversation
from voxgate.session.snapshot import SnapshotError, restore, snapshot


def rebuilt(s: Session) -> Conversation:
    """The conversation as another replica rebuilds it: through JSON, on the same kind of ports."""
    data = json.loads(json.dumps(snapshot(s.conversation)))
    return restore(data, s.conversation.ports, s.conversation.policy)


@virtual
async def test_a_pending_call_and_the_context_survive_and_its_result_is_answered() -> None:
    s = await open_session(
        llm=ScriptedLLM(respond=weather_agent),
        config={"tools": [WEATHER], "system_prompt": "Be brief.", "input": {"keyterms": ["Paris"]}},
    )
    await s.user.say("Hello there.", 1.0)
    await s.idle()
    await s.user.say(QUESTION, 1.2)
    await s.idle()
    assert s.state() == "AwaitingTools"
    await s.drop()
    again = rebuilt(s)
    assert again.session_id == s.conversation.session_id and again.owner == "owner"
    assert again.started_at == s.conversation.started_at and again.expires_at == s.conversation.expires_at
    assert again.config.system_prompt == "Be brief." and again.config.keyterms == ("Paris",)
    assert again.config.tool("get_weather") is not None and again.resolved_config() == s.conversation.resolved_config()
    assert [(m.role, m.content) for m in again.history] == [(m.role, m.content) for m in s.conversation.history]
    assert again.tools.pending == frozenset({"call_1"})
    assert len(again.timeline) == len(s.conversation.timeline)
    # The session goes on on the rebuilt conversation: a new socket, the call's result, the answer.
    s.conversation = again
    s.user.conversation = again
    transport = s.resume()
    await again.on_tool_result("call_1", RESULT)
    await s.idle()
    assert wire(transport.events) == ANSWER  # the new socket hears the answer, and only that
    assert s.llm.calls[-1].messages[-1] == ChatMessage(role="tool", content=RESULT, tool_call_id="call_1")
    said = [m.content for m in s.llm.calls[-1].messages if m.role == "user"]
    assert said == ["Hello there.", QUESTION]
    await again.end()


@virtual
async def test_a_turn_in_flight_at_the_save_is_owed_to_the_resumed_socket() -> None:
    s = await open_session(llm=ScriptedLLM(["Okay."], ["Sure."]))
    await s.user.say("Remember the number seven.", 1.0)
    await s.idle()
    s.conversation.history.append(ChatMessage(role="user", content="And the colour blue."))  # then the replica died
    again = rebuilt(s)
    await s.drop()
    s.conversation = again
    s.user.conversation = again
    s.resume()
    await again.answer_owed()
    await s.idle()
    assert [m.content for m in s.llm.calls[-1].messages if m.role == "user"][-1] == "And the colour blue."
    assert again.history[-1] == ChatMessage(role="assistant", content="Sure.")
    await again.end()


@virtual
async def test_a_result_that_came_before_the_save_is_answered_after_the_restore() -> None:
    s = await open_session(llm=ScriptedLLM(respond=weather_agent), config={"tools": [WEATHER]})
    await s.user.say(QUESTION, 1.2)
    await s.idle()
    s.conversation.tools.result("call_1", RESULT)  # the result came in; the replica died before its reply
    again = rebuilt(s)
    assert again.history[-1] == ChatMessage(role="tool", content=RESULT, tool_call_id="call_1")
    assert not again.tools.pending
    await s.drop()
    s.conversation = again
    s.user.conversation = again
    s.resume()
    await again.answer_owed()
    await s.idle()
    assert again.history[-1] == ChatMessage(role="assistant", content="It is sunny in Paris.")
    await again.end()


async def test_another_version_or_a_damaged_snapshot_is_refused() -> None:
    s = await open_session()
    data = snapshot(s.conversation)
    with pytest.raises(SnapshotError, match="version"):
        restore({**data, "version": 99}, s.conversation.ports, s.conversation.policy)
    with pytest.raises(SnapshotError, match="cannot be rebuilt"):
        restore({**data, "history": [{"no": "role"}]}, s.conversation.ports, s.conversation.policy)
    await s.user.stop()
    await s.conversation.end()
