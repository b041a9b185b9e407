"""Where a block of calls written under the grammar ends: the 1.5B model can repeat a call (or alternate
it with `chat`) until the token limit, seen in the soak as 30 s of silence and an `llm_timeout`."""

from __future__ import annotations

from voxgate.backends.llm.llama_cpp_backend import _block_end
from voxgate.backends.llm.tool_grammar import CLOSE, OPEN

REMEMBER = '{"name": "remember", "arguments": {"fact": "my sister\'s birthday is May 4"}}'
WEATHER = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
NEXT = CLOSE + "\n" + OPEN


def test_one_call_goes_on_to_its_natural_end() -> None:
    assert _block_end(REMEMBER) is None
    assert _block_end(REMEMBER + CLOSE) is None
    assert _block_end(REMEMBER + NEXT + '{"name": "get_') is None


def test_parallel_calls_that_differ_are_kept() -> None:
    assert _block_end(REMEMBER + NEXT + WEATHER + CLOSE) is None
    assert _block_end(REMEMBER + NEXT + WEATHER + NEXT + '{"name": "rem') is None


def test_chat_after_a_call_ends_the_block_before_it() -> None:
    assert _block_end(REMEMBER + NEXT + '{"name": "chat"') == REMEMBER + CLOSE
    assert _block_end(REMEMBER + NEXT + WEATHER + NEXT + '{"name": "chat", "arg') == REMEMBER + NEXT + WEATHER + CLOSE


def test_the_same_call_again_ends_the_block_without_it() -> None:
    assert _block_end(REMEMBER + NEXT + REMEMBER + NEXT) == REMEMBER + CLOSE
    assert _block_end(REMEMBER + NEXT + WEATHER + NEXT + REMEMBER + NEXT + '{"na') == REMEMBER + NEXT + WEATHER + CLOSE
