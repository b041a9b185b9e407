"""The speculatively started LLM stream: replayed in order, stopped when dropped, failures passed on."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from voxgate.backends.base import LLMEvent, TextDelta
from voxgate.session.prefetch import PrefetchedReply, PrefetchKey

KEY = PrefetchKey(1, 10, "What time is it?", (0, "prompt"))


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
