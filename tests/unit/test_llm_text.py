"""The tool-call parser on streamed text split at awkward places, and the prompt's stable prefix."""

import pytest

from voxgate.backends.base import ChatMessage, TextDelta, ToolCallRequest, ToolSpec
from voxgate.backends.llm.qwen_prompt import render
from voxgate.backends.llm.tool_call_parser import ToolCallParser


def parse(text: str, step: int) -> tuple[str, list[ToolCallRequest]]:
    parser = ToolCallParser()
    events = []
    for i in range(0, len(text), step):
        events += parser.feed(text[i : i + step])
    events += parser.flush()
    spoken = "".join(e.text for e in events if isinstance(e, TextDelta))
    return spoken, [e for e in events if isinstance(e, ToolCallRequest)]


CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize(
    ("text", "spoken", "calls"),
    [
        ("The capital of France is Paris.", "The capital of France is Paris.", 0),
        (f"<tool_call>\n{CALL}\n</tool_call>", "", 1),
        (f"```json\n{CALL}\n```", "", 1),
        (CALL, "", 1),
        (f"Let me check that. <tool_call>{CALL}</tool_call>", "Let me check that. ", 1),
        (f"<tool_call>{CALL}</tool_call>\n<tool_call>{CALL.replace('Paris', 'Rome')}</tool_call>", "\n", 2),
        ('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>', "", 1),
        ("Use a {placeholder} like that.", "Use a {placeholder} like that.", 0),
        ("<tool_call>{broken json</tool_call>", "", 0),
        ("Sets look like {1, 2}.", "Sets look like {1, 2}.", 0),
    ],
)
def test_parser_separates_speech_from_calls(text: str, spoken: str, calls: int, step: int) -> None:
    got_spoken, got_calls = parse(text, step)
    assert got_spoken == spoken
    assert len(got_calls) == calls
    for call in got_calls:
        assert isinstance(call.arguments, dict) and call.call_id.startswith("call_")


def test_arguments_given_as_a_string_become_an_object() -> None:
    _, calls = parse('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>', 4)
    assert calls[0].arguments == {"a": 1}


def test_plain_speech_is_released_immediately() -> None:
    parser = ToolCallParser()
    assert parser.feed("Hello there") == [TextDelta("Hello there")]
    assert parser.feed(" <tool") == [TextDelta(" ")]  # "<tool" could start a call: held
    assert parser.feed("s are fun") == [TextDelta("<tools are fun")]


def test_prompt_prefix_is_stable_across_turns() -> None:
    tools = [ToolSpec("get_weather", "Weather.", {"type": "object", "properties": {"city": {"type": "string"}}})]
    system = ChatMessage(role="system", content="Be brief.")
    one = render([system, ChatMessage(role="user", content="Hi")], tools)
    two = render(
        [
            system,
            ChatMessage(role="user", content="Hi"),
            ChatMessage(role="assistant", content="Hello!"),
            ChatMessage(role="user", content="Weather in Paris?"),
        ],
        tools,
    )
    prefix = one.rsplit("<|im_start|>assistant\n", 1)[0]
    assert two.startswith(prefix)
    assert '"name": "get_weather"' in one and "<tools>" in one
    assert "<tools>" not in render([system], [])
