"""Tool guards on the real embedded model (slow): a call is valid against its schema, chit-chat and a
question no tool answers are spoken without markup, and a call given up mid-way frees the model."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from voxgate.backends.base import ChatMessage, LLMEvent, TextDelta, ToolCallRequest, ToolSpec
from voxgate.backends.llm.embedded_models import resolve_gguf
from voxgate.backends.llm.llama_cpp_backend import _CHAT_REPLY, LlamaCppLLM
from voxgate.backends.llm.qwen_prompt import render
from voxgate.backends.llm.tool_grammar import NAMED, OPEN
from voxgate.bench import soak
from voxgate.config import Settings

pytestmark = pytest.mark.slow

TOOLS = [
    ToolSpec(
        "get_weather",
        "Get the current weather for a city",
        {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    ),
    ToolSpec(
        "get_order_status",
        "Look up an order by its order number",
        {"type": "object", "properties": {"order_number": {"type": "string", "pattern": "^[0-9]+$"}}},
    ),
]


@pytest.fixture(scope="module")
def llm() -> LlamaCppLLM:
    return LlamaCppLLM(resolve_gguf(Settings().llm_model), max_tokens=40, temperature=0.0, seed=7)


async def reply(llm: LlamaCppLLM, said: str) -> list[LLMEvent]:
    messages = [ChatMessage("system", "You are a helpful voice assistant."), ChatMessage("user", said)]
    return [e async for e in llm.stream(messages, TOOLS)]


def calls(events: list[LLMEvent]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, e.arguments) for e in events if isinstance(e, ToolCallRequest)]


async def test_a_call_has_every_required_argument_and_enum_values_only(llm: LlamaCppLLM) -> None:
    made = calls(await reply(llm, "What's the weather in Berlin?"))
    assert len(made) == 1 and made[0][0] == "get_weather"
    assert "berlin" in made[0][1]["city"].lower() and made[0][1]["unit"] in ("celsius", "fahrenheit")


async def test_digits_are_digits(llm: LlamaCppLLM) -> None:
    assert calls(await reply(llm, "Where is my order? The order number is 456.")) == [
        ("get_order_status", {"order_number": "456"})
    ]


@pytest.mark.parametrize("said", ["Hi, how are you?", "What is the capital of France?", "Thanks, goodbye!"])
async def test_no_tool_is_spoken_without_markup(llm: LlamaCppLLM, said: str) -> None:
    events = await reply(llm, said)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert not calls(events) and text.strip()
    assert not any(c in text for c in "<>{}[]`")


async def test_a_call_given_up_frees_the_model(llm: LlamaCppLLM) -> None:
    system = ChatMessage("system", "You are a helpful voice assistant.")
    stream = llm.stream([system, ChatMessage("user", "Weather in Oslo and in Rome and in Paris please?")], TOOLS)
    task = asyncio.ensure_future(anext(stream))  # type: ignore[arg-type]
    await asyncio.sleep(0.5)
    task.cancel()  # as a barge-in does: the consumer is cancelled, which closes the stream
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await stream.aclose()  # type: ignore[attr-defined]
    async with asyncio.timeout(180):  # a contended 2-core machine; idle it is seconds
        assert calls(await reply(llm, "Where is order 12?")) == [("get_order_status", {"order_number": "12"})]


# voxgate/bench/soak.py's prompt and tools: all about its tools, where speech used to tell calls in words
SOAK_TOOLS = [ToolSpec(t["name"], t["description"], t["parameters"]) for t in soak.TOOLS]


@pytest.mark.parametrize(
    ("said", "answer"),
    [("What is the capital city of France?", "paris"), ("How many days are there in a leap year?", "366")],
)
async def test_speech_under_a_prompt_about_tools_answers_instead_of_telling_a_call(
    llm: LlamaCppLLM, said: str, answer: str
) -> None:
    """Seen in the soak: the model, kept from its markup, wrote "call get_weather with the city", or just
    "chat", which the spoken filter drops: the user heard "Sorry, could you say that again?"."""
    events = [
        e async for e in llm.stream([ChatMessage("system", soak.SYSTEM_PROMPT), ChatMessage("user", said)], SOAK_TOOLS)
    ]
    assert calls(events) == []
    text = "".join(e.text for e in events if isinstance(e, TextDelta)).lower()
    assert answer in text, text
    assert not any(word in text for word in ("get_weather", "function", "chat", "call ")), text


async def test_after_a_result_the_reply_tells_it_and_does_not_call_again(llm: LlamaCppLLM) -> None:
    """Asked to name a function after its own result, the model named the same one again; with the note
    for speech, it greeted ("Hello! How can I help?") instead of saying the result."""
    said = "Remember that I parked the car on level three."
    call = ToolCallRequest(call_id="call_1", name="remember", arguments={"fact": "I parked the car on level three."})
    messages = [
        ChatMessage("system", soak.SYSTEM_PROMPT),
        ChatMessage("user", said),
        ChatMessage("assistant", "One moment, let me check.", tool_calls=[call]),
        ChatMessage("tool", '{"saved": true}', tool_call_id="call_1"),
    ]
    events = [e async for e in llm.stream(messages, SOAK_TOOLS)]
    assert calls(events) == []
    text = "".join(e.text for e in events if isinstance(e, TextDelta)).lower()
    assert "level three" in text or "saved" in text, text
    assert "hello" not in text and "how can i help" not in text, text


async def test_a_fact_the_model_wrote_itself_is_not_remembered(llm: LlamaCppLLM) -> None:
    """The soak's fourth turn: after a weather call, "a fun fact about the ocean" was written as a `remember`
    call of the model's own fact, then `chat`, then the call again, until the token limit: 30 s of silence
    and an `llm_timeout`. One shared word ("ocean") grounded the fact; half of its words must now be said."""
    weather = ToolCallRequest(call_id="call_1", name="get_weather", arguments={"city": "Paris"})
    messages = [
        ChatMessage("system", soak.SYSTEM_PROMPT),
        ChatMessage("user", "Hello, how are you today?"),
        ChatMessage("assistant", "Hello! I'm just a computer program, so I don't have feelings. How can I help you?"),
        ChatMessage("user", "what is the capital city of France"),
        ChatMessage("assistant", "The capital city of France is Paris."),
        ChatMessage("user", "What is the weather like in Paris right now?"),
        ChatMessage("assistant", "One moment, let me check.", tool_calls=[weather]),
        ChatMessage("tool", '{"city": "Paris", "forecast": "sunny", "temperature_c": 21}', tool_call_id="call_1"),
        ChatMessage("assistant", "The weather forecast for Paris is sunny, with a temperature of 21 degrees Celsius."),
        ChatMessage("user", "Can you tell me a fun fact about the ocean?"),
    ]
    events = [e async for e in llm.stream(messages, SOAK_TOOLS)]
    assert calls(events) == []
    assert llm.last_route in ("chat", "ungrounded")  # was "refused", after 400 tokens of calls
    assert "ocean" in "".join(e.text for e in events if isinstance(e, TextDelta)).lower()


async def test_after_a_result_the_reply_tells_that_result_not_an_earlier_one(llm: LlamaCppLLM) -> None:
    """Seen in the soak: after `remember`'s result, the reply told the weather result of a turn before
    ("The weather forecast for Paris is sunny ..."), or began "The function's result means"."""
    weather = ToolCallRequest(call_id="call_1", name="get_weather", arguments={"city": "Paris"})
    remember = ToolCallRequest(call_id="call_2", name="remember", arguments={"fact": "I parked on level three"})
    messages = [
        ChatMessage("system", soak.SYSTEM_PROMPT),
        ChatMessage("user", "What is the weather like in Paris right now?"),
        ChatMessage("assistant", "One moment, let me check.", tool_calls=[weather]),
        ChatMessage("tool", '{"city": "Paris", "forecast": "sunny", "temperature_c": 21}', tool_call_id="call_1"),
        ChatMessage("assistant", "The weather forecast for Paris is sunny, with a temperature of 21 degrees Celsius."),
        ChatMessage("user", "Remember that I parked the car on level three."),
        ChatMessage("assistant", "One moment, let me check.", tool_calls=[remember]),
        ChatMessage("tool", '{"saved": true}', tool_call_id="call_2"),
    ]
    events = [e async for e in llm.stream(messages, SOAK_TOOLS)]
    assert calls(events) == []
    text = "".join(e.text for e in events if isinstance(e, TextDelta)).lower()
    assert "level three" in text or "saved" in text or "remember" in text, text
    assert not any(word in text for word in ("weather", "sunny", "function")), text


async def test_a_reply_that_calls_nothing_reads_no_note_before_it(llm: LlamaCppLLM) -> None:
    """The reply goes through `chat`, whose opening is read with the call's in one batch: before, a system
    note of ~30 tokens was read after `chat` was named, ~0.6 s on 2 cores before the first word."""
    system = ChatMessage("system", "You are a helpful voice assistant.")
    messages = [system, ChatMessage("user", "Good morning.")]
    await llm.read_ahead([system], TOOLS)
    new = llm.count_tokens(render(messages, llm.prompt_tools(TOOLS))) - llm.count_tokens(
        render([system], llm.prompt_tools(TOOLS))
    )
    before = llm.evaluated_tokens
    events = [e async for e in llm.stream(messages, TOOLS)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert llm.last_route == "chat" and not calls(events) and text.strip(), text
    openings = llm.count_tokens(OPEN + NAMED) + llm.count_tokens(_CHAT_REPLY)
    # +3: the cached prefix ends before the system prompt's own `<|im_start|>assistant\n`, which `new` leaves out.
    # With the note, ~33 tokens more were read.
    assert llm.evaluated_tokens - before <= new + openings + 3
    assert not any(c in text for c in "<>{}[]`")


def test_warming_up_builds_the_token_masks_of_replies_with_tools(llm: LlamaCppLLM) -> None:
    """Built by the first reply with tools, they cost it ~1 s (the whole vocabulary is read)."""
    llm._vocab = None
    llm.warmup("You are a helpful voice assistant.", ())
    assert llm._vocab is not None and len(llm._vocab.markup) and len(llm._vocab.closes)
