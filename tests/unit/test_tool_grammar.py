"""The tool-call grammars (backends/llm/tool_grammar.py) parse in llama.cpp for every kind of schema."""

from __future__ import annotations

from typing import Any

import pytest

from voxgate.backends.base import ToolSpec
from voxgate.backends.llm.tool_grammar import MARKUP_CHARS, _rules, call_grammar, check_grammar, reply_grammar

WEATHER = ToolSpec(
    "get_weather",
    "Weather in a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
)
SCHEMAS: list[dict[str, Any]] = [
    {},  # no parameters at all
    {"type": "object", "properties": {}},
    {"type": "object", "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}}, "required": ["n"]},
    {"type": "object", "properties": {"order_id": {"type": "string", "pattern": "^[0-9]+$"}}},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}},
    {"type": "object", "properties": {"when": {"type": "object", "properties": {"day": {"type": "string"}}}}},
    {"type": "object", "properties": {"x": {"$ref": "https://example.com/elsewhere.json"}}},  # not followed
    {"properties": {"day": {"type": "string", "format": "date"}}},  # no "type": an object all the same
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_schema_makes_a_grammar_llama_cpp_parses(schema: dict[str, Any]) -> None:
    tools = [WEATHER, ToolSpec("tool-with.odd name", "d", schema)]
    assert check_grammar(call_grammar(tools))
    assert check_grammar(reply_grammar(tools))


def test_a_broken_grammar_is_refused() -> None:
    assert not check_grammar("root ::= undefined-rule")


def test_the_call_grammar_names_only_the_tools_and_their_enums() -> None:
    grammar = call_grammar([WEATHER])
    assert '"get_weather\\", \\"arguments\\": "' in grammar  # the name is a literal: no other can be written
    assert '"\\"celsius\\"" | "\\"fahrenheit\\""' in grammar  # an enum is its values only
    assert 'city-kv ( "," space' in grammar  # the required property comes first, unconditionally
    assert "\\n</tool_call>\\n<tool_call>\\n" in grammar  # parallel calls


def test_speech_in_the_reply_grammar_cannot_hold_markup() -> None:
    speech = next(line for line in reply_grammar([WEATHER]).splitlines() if line.startswith("speech ::="))
    for c in "<>{}`|":
        assert c in speech.split("[^", 1)[1]  # every markup character is excluded from speech
    assert set(MARKUP_CHARS) >= set("<>{}[]`")


def test_grammars_are_built_once_per_tool_set() -> None:
    call_grammar([WEATHER])
    hits = _rules.cache_info().hits
    call_grammar([WEATHER])
    reply_grammar([WEATHER])
    assert _rules.cache_info().hits == hits + 2
