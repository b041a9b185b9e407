"""Nothing that is not meant for the ear is said: every case issue 16 names, streamed in small pieces."""

from __future__ import annotations

import pytest

from tests.fakes import tool_call
from voxgate.backends.base import LLMEvent, TextDelta
from voxgate.session.reply import NOTHING_TO_SAY, TRANSITION, llm_items
from voxgate.session.speaker import ToolCallsReady
from voxgate.session.spoken_filter import MarkupFilter, spoken_clause


def filtered(text: str, piece: int = 3) -> str:
    f = MarkupFilter()
    out = "".join(f.feed(text[i : i + piece]) for i in range(0, len(text), piece)) + f.flush()
    return " ".join(out.split())


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("<tools></tools>", ""),  # the literal the tutorial agent heard
        ("Sure.<tools></tools>", "Sure."),
        ("It is sunny.</tool_call><|im_end|>", "It is sunny."),
        ("<|im_start|>assistant Hello there", "assistant Hello there"),
        ('Here you go: {"name": "get_weather", "arguments": {"city": "Paris"}} done.', "Here you go: done."),
        ('{"a": "a } in a string", "b": {"c": 1}} Okay.', "Okay."),
        ('Look:\n```json\n{"x": 1}\n```\nThat is all.', "Look: That is all."),
        ("```python\nprint('hi')\n``` Bye.", "Bye."),
        ("Use `ls` to list.", "Use ls to list."),
        ("The list [1, 2] has two items.", "The list 1, 2 has two items."),
        ("Three < five and seven > two.", "Three five and seven two."),
        ("a <b> tag and <unclosed", "a tag and"),
        ("Plain speech, nothing to remove.", "Plain speech, nothing to remove."),
    ],
)
def test_markup_is_dropped_and_speech_kept(text: str, said: str) -> None:
    assert filtered(text) == said
    assert filtered(text, piece=1) == said  # however the stream is cut


@pytest.mark.parametrize(
    "clause",
    [
        "To get the current weather for Paris, call the get_weather function with the city parameter set to Paris.",
        "I will use the weather tool now.",
        "Calling get_weather(city='Paris').",
        "The function call is ready.",
        "with the arguments set to Paris.",
        "...",
    ],
)
def test_a_call_told_in_words_is_not_said(clause: str) -> None:
    assert spoken_clause(clause) == ""


@pytest.mark.parametrize(
    "clause",
    ["It is sunny in Paris today.", "I can call you back tomorrow.", "Your order 456 has shipped.", "Ok."],
)
def test_ordinary_speech_is_said(clause: str) -> None:
    assert spoken_clause(clause) == clause


async def _said(*events: LLMEvent) -> list[object]:
    async def stream():  # type: ignore[no-untyped-def]
        for e in events:
            yield e

    return [item async for item in llm_items(stream(), first_token_timeout_s=5)]


async def test_a_reply_of_markup_only_says_nothing_to_say() -> None:
    assert await _said(TextDelta("<tools>"), TextDelta("</tools>")) == [NOTHING_TO_SAY]


async def test_markup_before_a_call_leaves_the_transition() -> None:
    call = tool_call("get_weather", city="Paris")
    items = await _said(TextDelta("<tools></tools>\n"), call)
    assert items == [TRANSITION, ToolCallsReady((call,))]


async def test_a_described_call_is_dropped_from_a_spoken_reply() -> None:
    items = await _said(
        TextDelta("Sure. To get the weather, call the get_weather function with the city parameter set to Paris. "),
        TextDelta("Anything else?"),
    )
    assert items == ["Sure.", "Anything else?"]
