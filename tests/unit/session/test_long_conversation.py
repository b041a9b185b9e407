"""A conversation of hundreds of turns never fails for length (H5 in reliability-findings.md).

The scripted model has a small window and refuses a prompt that overflows it, as llama.cpp does
("Requested tokens exceed context window"): before the history was fitted, every turn past the
window's worth of exchanges failed with reply.error and an apology.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.fakes import LLMScript, ScriptedLLM, open_session, tool_call
from tests.virtual_time import run_virtual
from voxgate.backends.base import ChatMessage, ToolSpec

WINDOW = 1024
QUESTIONS = [f"Tell me something about topic number {i} please" for i in range(7)]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _count(text: str) -> int:
    return len(text.split()) + text.count("{")


class SmallWindowLLM(ScriptedLLM):
    """A model with a 1024-token window that refuses prompts over it."""

    context_tokens = WINDOW
    max_tokens = 100

    def __init__(self) -> None:
        super().__init__(respond=self._answer, first_token_s=0.2)
        self.largest_prompt = 0

    def count_tokens(self, text: str) -> int:
        return _count(text)

    def _answer(self, messages: list[ChatMessage]) -> LLMScript:
        prompt = sum(_count(m.content) + 4 for m in messages)
        self.largest_prompt = max(self.largest_prompt, prompt)
        if prompt + self.max_tokens > WINDOW:
            return [ValueError(f"Requested tokens ({prompt}) exceed context window of {WINDOW}")]
        last = messages[-1]
        if last.role == "tool":
            return ["It is sunny there, ", "as it was all week long."]
        if "weather" in last.content:
            return [tool_call("get_weather", call_id=f"call_{len(self.calls)}", city="Paris")]
        return ["That is a good question, ", "and here is a fairly long answer ", "about it for you."]

    def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]):  # type: ignore[no-untyped-def]
        return super().stream(messages, tools)


def test_two_hundred_turns_with_tool_calls_all_get_answers() -> None:
    run_virtual(_two_hundred_turns(), limit_s=3600)


async def _two_hundred_turns() -> None:
    llm = SmallWindowLLM()
    s = await open_session(llm=llm, config={"tools": [WEATHER]})
    for i in range(200):
        question = "What is the weather in Paris?" if i % 10 == 3 else QUESTIONS[i % len(QUESTIONS)]
        await s.user.say(question, 1.2, then=1.5)
        await s.idle(within=60)
        if s.state() == "AwaitingTools":
            call = next(e for e in reversed(s.events) if e.type == "tool.call")
            await s.conversation.on_tool_result(call.call_id, '{"sky": "clear"}')  # type: ignore[union-attr]
            await s.user.pause(0.5)
            await s.idle(within=60)
    wire = s.wire()
    assert not [w for w in wire if w.startswith(("reply.error", "session.error"))]
    assert wire.count("reply.done completed") >= 200
    assert llm.largest_prompt + llm.max_tokens <= WINDOW
    assert len(s.conversation.history) > 400  # the history is all there; the model saw a fitted view of it


CHAT = ToolSpec("chat", " ".join(["Use this for small talk."] * 100), {"type": "object", "properties": {}})


class ListsMoreToolsLLM(SmallWindowLLM):
    """Like the embedded model with its tool guards: its prompt lists a tool of its own (`chat`) besides
    the session's, and those tokens count against its window too."""

    def __init__(self) -> None:
        super().__init__()
        self._listed: Sequence[ToolSpec] = ()

    def prompt_tools(self, tools: Sequence[ToolSpec]) -> Sequence[ToolSpec]:
        return [*tools, CHAT] if tools else tools

    def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]):  # type: ignore[no-untyped-def]
        self._listed = self.prompt_tools(tools)
        return super().stream(messages, tools)

    def _answer(self, messages: list[ChatMessage]) -> LLMScript:
        listed = sum(_count(f"{t.name} {t.description} {t.parameters}") for t in self._listed)
        if sum(_count(m.content) + 4 for m in messages) + listed + self.max_tokens > WINDOW:
            return [ValueError(f"Requested tokens exceed context window of {WINDOW}")]
        return super()._answer(messages)


def test_the_tools_the_model_adds_to_its_prompt_count_in_the_fit() -> None:
    run_virtual(_listed_tools_counted(), limit_s=1800)


async def _listed_tools_counted() -> None:
    llm = ListsMoreToolsLLM()
    s = await open_session(llm=llm, config={"tools": [WEATHER]})
    for i in range(40):
        await s.user.say(QUESTIONS[i % len(QUESTIONS)], 1.2, then=1.5)
        await s.idle(within=60)
    assert not [w for w in s.wire() if w.startswith(("reply.error", "session.error"))]
