"""The LLM started before the turn is certain, so the answer is under way when it is.

At the first pause (`SPECULATE_AFTER_S` of silence) the final transcript is already decoded speculatively. When
those words read as a finished turn, the reply's LLM stream is started too, and its events are kept
in a queue. If the turn then ends as guessed (same utterance, no voice since), the reply replays that
queue instead of starting the model cold: the prompt prefill and first tokens were paid for during
the `min_silence` the user was waiting anyway. If the user goes on, the stream is cancelled unheard.

The reply's first clause is cut from the stream as it comes (the same cut the reply will make), so
its speech can be synthesized before the turn is certain too (`first_clause`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from voxgate.backends.base import LLMEvent, TextDelta
from voxgate.session.clauses import FIRST_CLAUSE_MIN_WORDS
from voxgate.session.spoken_filter import SpokenSplitter

_END = object()


@dataclass(frozen=True)
class PrefetchKey:
    """What the prefetched answer was computed for besides the audio (voice after the pause cancels it
    outright); any difference at the end of turn means it was for another question."""

    user_text: str
    context: tuple[object, ...]  # history length, system prompt, tools, model


class PrefetchedReply:
    def __init__(
        self,
        key: PrefetchKey,
        stream: AsyncIterator[LLMEvent],
        *,
        filtered: bool = True,
        first_min_words: int = FIRST_CLAUSE_MIN_WORDS,
    ) -> None:
        self.key = key
        self.started_at = asyncio.get_running_loop().time()  # when the model was asked (session/turn_stages.py)
        self.first_event_at: float | None = None  # when its first token came
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        # The reply's first clause, once the stream has one; None when it opens with a tool call or fails.
        self.first_clause: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        # the reply's own first clause, made the same way (the same voice's cut)
        self._splitter = SpokenSplitter(filtered=filtered, first_min_words=first_min_words)
        self._task = asyncio.ensure_future(self._pump(stream))
        self._task.add_done_callback(self._no_first_clause)  # also when cancelled before it ever ran

    def _no_first_clause(self, _task: object) -> None:
        if not self.first_clause.done():
            self.first_clause.set_result(None)

    def _cut_first_clause(self, event: LLMEvent | None) -> None:
        if self.first_clause.done():
            return
        if isinstance(event, TextDelta):
            clauses = self._splitter.feed(event.text)
        else:  # a tool call, or the end of the stream: what is left is the clause (the reply flushes it too)
            clauses = self._splitter.flush() if event is None else []
        if clauses or not isinstance(event, TextDelta):
            self.first_clause.set_result(clauses[0] if clauses else None)

    async def _pump(self, stream: AsyncIterator[LLMEvent]) -> None:
        try:
            async for event in stream:
                if self.first_event_at is None:
                    self.first_event_at = asyncio.get_running_loop().time()
                self._queue.put_nowait(event)
                self._cut_first_clause(event)
            self._queue.put_nowait(_END)
            self._cut_first_clause(None)
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
