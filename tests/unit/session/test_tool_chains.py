"""Multi-step tool use on virtual time: a result that leads to another call, parallel calls, a failed
tool said gracefully, and markup a model writes around its calls kept out of speech (issue 16)."""

from __future__ import annotations

from tests.fakes import LLMScript, ScriptedLLM, open_session, tool_call
from tests.virtual_time import virtual
from voxgate.backends.base import ChatMessage, TextDelta

LOOKUP = {
    "name": "find_customer",
    "description": "Find a customer by phone number",
    "parameters": {"type": "object", "properties": {"phone": {"type": "string", "pattern": "^[0-9]+$"}}},
}
ORDERS = {
    "name": "get_orders",
    "description": "A customer's orders",
    "parameters": {"type": "object", "properties": {"customer_id": {"type": "string"}}},
}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def calls_of(s: object) -> list[str]:
    return [w for w in s.wire() if w.startswith("tool.call")]  # type: ignore[attr-defined]


@virtual
async def test_a_result_leads_to_another_call_then_to_speech() -> None:
    def agent(messages: list[ChatMessage]) -> LLMScript:
        last = messages[-1]
        if last.role == "tool" and "C-7" in last.content:
            return [tool_call("get_orders", call_id="call_2", customer_id="C-7")]
        if last.role == "tool":
            return ["You have one order, ", "it ships Friday."]
        return [tool_call("find_customer", phone="5551234567")]

    s = await open_session(llm=ScriptedLLM(respond=agent), config={"tools": [LOOKUP, ORDERS]})
    await s.user.say("My number is 555-123-4567, what are my orders?", 2.0)
    await s.idle()
    await s.conversation.on_tool_result("call_1", '{"customer_id": "C-7"}')
    await s.idle()
    await s.conversation.on_tool_result("call_2", '{"orders": [{"ships": "Friday"}]}')
    await s.idle()
    assert calls_of(s) == [
        'tool.call find_customer {"phone": "5551234567"}',
        'tool.call get_orders {"customer_id": "C-7"}',
    ]
    assert s.wire()[-2:] == ["transcript.agent: You have one order, it ships Friday.", "reply.done completed"]
    assert s.state() == "Listening"


@virtual
async def test_parallel_calls_are_sent_together_and_answered_together() -> None:
    def agent(messages: list[ChatMessage]) -> LLMScript:
        results = [m for m in messages if m.role == "tool"]
        if results:
            return [f"I have {len(results)} answers."]
        return [
            tool_call("get_weather", call_id="call_1", city="Paris"),
            tool_call("get_weather", call_id="call_2", city="Rome"),
        ]

    llm = ScriptedLLM(respond=agent)
    s = await open_session(llm=llm, config={"tools": [WEATHER]})
    await s.user.say("Weather in Paris and Rome?", 1.5)
    await s.idle()
    assert calls_of(s) == ['tool.call get_weather {"city": "Paris"}', 'tool.call get_weather {"city": "Rome"}']
    await s.conversation.on_tool_result("call_1", "sunny")
    await s.idle()
    assert s.state() == "AwaitingTools"  # one of two: no reply yet
    await s.conversation.on_tool_result("call_2", "rain")
    await s.idle()
    assert s.wire()[-2:] == ["transcript.agent: I have 2 answers.", "reply.done completed"]
    assert [m.tool_call_id for m in llm.calls[-1].messages if m.role == "tool"] == ["call_1", "call_2"]


@virtual
async def test_a_failed_tool_is_said_in_words_not_markup() -> None:
    def agent(messages: list[ChatMessage]) -> LLMScript:
        last = messages[-1]
        if last.role == "tool":
            assert last.content.startswith("Error: ")  # the model is told it failed
            return [TextDelta('<tool_response>{"error": 1}</tool_response> '), "Sorry, the weather service is down."]
        return [tool_call("get_weather", city="Lisbon")]

    s = await open_session(llm=ScriptedLLM(respond=agent), config={"tools": [WEATHER]})
    await s.user.say("Weather in Lisbon?", 1.2)
    await s.idle()
    await s.conversation.on_tool_result("call_1", "service unavailable", is_error=True)
    await s.idle()
    assert s.wire()[-2:] == ["transcript.agent: Sorry, the weather service is down.", "reply.done completed"]


@virtual
async def test_digits_the_user_said_are_the_calls_argument() -> None:
    s = await open_session(
        llm=ScriptedLLM([tool_call("find_customer", phone="555.123.4567")]), config={"tools": [LOOKUP]}
    )
    await s.user.say("Find 555-123-4567.", 1.2)
    await s.idle()
    assert calls_of(s) == ['tool.call find_customer {"phone": "5551234567"}']
