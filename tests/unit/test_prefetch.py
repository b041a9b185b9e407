"""The speculatively started LLM stream: replayed in order, stopped when dropped, failures passed on."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from voxgate.backends.base import LLMEvent, TextDelta
from voxgate.session.prefetch import PrefetchedReply, PrefetchKey

KEY = PrefetchKey("What time is it?", (0, "prompt"))


class Source:
    """An LLM stream that makes `n` deltas, one per tick, and records whether it was closed early."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.made = 0
        self.closed = False

    async def stream(self) -> AsyncIterator[LLMEvent]:
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise ConnectionError("model server went away")
                await asyncio.sleep(0.01)
                self.made += 1
                yield TextDelta(f"w{i} ")
        finally:
            self.closed = True


async def test_events_made_before_the_turn_ended_are_replayed_first_and_in_order() -> None:
    source = Source(6)
    prefetched = PrefetchedReply(KEY, source.stream())
    await asyncio.sleep(0.035)  # the user is still in min_silence: the model is already working
    assert 2 <= source.made < 6
    texts = [e.text async for e in prefetched.events() if isinstance(e, TextDelta)]
    assert texts == [f"w{i} " for i in range(6)]


async def test_dropping_it_stops_the_model() -> None:
    source = Source(1000)
    prefetched = PrefetchedReply(KEY, source.stream())
    await asyncio.sleep(0.03)
    prefetched.cancel()
    with pytest.raises(asyncio.CancelledError):
        await prefetched.task
    made = source.made
    await asyncio.sleep(0.03)
    assert source.closed and source.made == made < 1000


async def test_a_consumer_that_stops_early_stops_the_model() -> None:
    source = Source(1000)
    prefetched = PrefetchedReply(KEY, source.stream())
    events = prefetched.events()
    await anext(events)
    await events.aclose()  # a barge-in cancels the reply that was replaying it
    await asyncio.sleep(0.03)
    assert source.closed and source.made < 1000


async def test_a_failure_reaches_the_consumer_like_a_live_one() -> None:
    prefetched = PrefetchedReply(KEY, Source(5, fail_at=2).stream())
    seen = []
    with pytest.raises(ConnectionError):
        async for event in prefetched.events():
            seen.append(event)
    assert len(seen) == 2


async def _deltas(*events: LLMEvent) -> AsyncIterator[LLMEvent]:
    for event in events:
        await asyncio.sleep(0.005)
        yield event


async def test_the_first_clause_is_the_one_the_reply_will_speak_first() -> None:
    from voxgate.session.clauses import ClauseSplitter

    parts = ["The capital", " of France is Paris,", " a city of about two million people.", " It is big."]
    prefetched = PrefetchedReply(KEY, _deltas(*(TextDelta(p) for p in parts)))
    first = await asyncio.wait_for(prefetched.first_clause, 1)
    splitter = ClauseSplitter()
    expected = next(c for p in parts for c in splitter.feed(p))
    assert first == expected and first.startswith("The capital of France")
    assert [e.text async for e in prefetched.events() if isinstance(e, TextDelta)] == parts


async def test_a_short_answer_is_its_own_first_clause_and_a_tool_call_has_none() -> None:
    from voxgate.backends.base import ToolCallRequest

    short = PrefetchedReply(KEY, _deltas(TextDelta("Sure")))
    assert await asyncio.wait_for(short.first_clause, 1) == "Sure"
    call = ToolCallRequest(call_id="c1", name="lookup", arguments={})
    tool = PrefetchedReply(KEY, _deltas(call, TextDelta("Done.")))
    assert await asyncio.wait_for(tool.first_clause, 1) is None
    dropped = PrefetchedReply(KEY, _deltas(TextDelta("Well"), TextDelta(" then")))
    dropped.cancel()
    assert await asyncio.wait_for(dropped.first_clause, 1) is None
