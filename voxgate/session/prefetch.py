"""The LLM started before the turn is certain, so the answer is under way when it is.

At the first pause (`SPECULATE_AFTER_S` of silence) the final transcript is already decoded speculatively. When
those words read as a finished turn, the reply's LLM stream is started too, and its events are kept
in a queue. If the turn then ends as guessed (same utterance, no voice since), the reply replays that
queue instead of starting the model cold: the prompt prefill and first tokens were paid for during
the `min_silence` the user was waiting anyway. If the user goes on, the stream is cancelled unheard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from voxgate.backends.base import LLMEvent

_END = object()


@dataclass(frozen=True)
class PrefetchKey:
    """What the prefetched answer was computed for; any difference at the end of turn makes it stale."""

    utterance: int
    voiced_frames: int
    user_text: str
    context: tuple[object, ...]  # history length, system prompt, tools, model


class PrefetchedReply:
    def __init__(self, key: PrefetchKey, stream: AsyncIterator[LLMEvent]) -> None:
        self.key = key
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._pump(stream))

    async def _pump(self, stream: AsyncIterator[LLMEvent]) -> None:
        try:
            async for event in stream:
                self._queue.put_nowait(event)
            self._queue.put_nowait(_END)
        except Exception as exc:  # replayed to the consumer, which reports it like a live failure
            self._queue.put_nowait(exc)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]

    async def events(self) -> AsyncIterator[LLMEvent]:
        """The stream's events, those already made first; closing this stops the model."""
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    return
                if isinstance(item, Exception):
                    raise item
                assert not isinstance(item, BaseException)
                yield item  # type: ignore[misc]
        finally:
            self.cancel()

    def cancel(self) -> None:
        self._task.cancel()

    @property
    def task(self) -> asyncio.Task[None]:
        return self._task
