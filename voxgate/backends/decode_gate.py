"""The server's local decodes, as many at once as the cores run without slowing each other, most urgent first.

Two Whisper decodes at once on 2 cores (each with `stt_threads` 2) do not finish sooner than one after
the other: both finish late, at about twice one's time, and every turn that waits on them waits for
the later. One at a time, the first turn is answered at once and only the second waits. A turn's
final transcript (which the end-of-turn check waits for) goes before a read of voice over the agent.

asyncio's own primitives wake waiters in arrival order; this needs an order by urgency, so it is a
small heap of futures. A waiter that is cancelled leaves its place; one cancelled just after it was
handed a slot gives the slot on.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
from collections.abc import AsyncIterator, Callable


def decodes_that_fit(stt_threads: int) -> int:
    """Local decodes the cores run at once without slowing each other: each uses `stt_threads`."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, stt_threads))


class DecodeGate:
    def __init__(self, slots: Callable[[], int]) -> None:
        """`slots`: how many decodes may run at once (read at each hand-over: the cores can change)."""
        self._slots = slots
        self._running = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return sum(not f.cancelled() for _, _, f in self._waiting)

    @contextlib.asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        """Hold one slot while the block runs; a lower `priority` is served first, ties in arrival order."""
        if self._running < max(1, self._slots()) and not self.waiting:
            self._running += 1
        else:
            handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (priority, next(self._order), handed))
            try:
                await handed
            except asyncio.CancelledError:
                if handed.done() and not handed.cancelled():
                    self._release()  # the slot came as the waiter was cancelled: the next one gets it
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self._running -= 1
        while self._waiting and self._running < max(1, self._slots()):
            _, _, handed = heapq.heappop(self._waiting)
            if handed.cancelled():
                continue
            self._running += 1
            handed.set_result(None)
