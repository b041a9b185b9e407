"""Small asyncio pieces the session and the transports share.

`TaskScope` is how work is owned: each turn state of a session has one, every task the state starts
is spawned in it, and leaving the state closes it (cancels and awaits what is left). Stale work
cannot report back, because it no longer runs: nothing compares counters after the fact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

log = logging.getLogger("voxgate.aio")

T = TypeVar("T")


class TaskScope:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run `coro` as this scope's work; a scope already closed cancels it at once."""
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.name}:{name}")
        if self.closed:
            task.cancel()
            return task
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def adopt(self, task: asyncio.Task[Any]) -> None:
        """Own a task started elsewhere (a prefetched LLM stream handed over to a reply)."""
        if self.closed:
            task.cancel()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def disown(self, task: asyncio.Task[Any]) -> None:
        """Stop owning `task` (it is handed to another scope, which adopts it): closing this one spares it."""
        self._tasks.discard(task)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, timeout_s: float) -> None:
        """Let the scope's work finish for up to `timeout_s` (records being written at shutdown), then close it."""
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)
        await self.close()

    async def close(self) -> None:
        """Cancel and await every task of the scope but the caller's own (it is the one moving on)."""
        self.closed = True
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:  # asyncio.wait, not `await task`: a cancellation of the caller itself must not be swallowed
            await asyncio.wait(tasks)
        self._tasks = {t for t in self._tasks if t is current}


@contextlib.asynccontextmanager
async def closing(iterator: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """`contextlib.aclosing` for whatever async iterator is given (typed as AsyncIterator, not as an async
    generator). An async generator left mid-way is not closed by `async for`; it stays suspended, with
    what it holds, until the garbage collector finalizes it, minutes later. A reply's items hold the
    LLM's stream, and an embedded model serves no one else while one of its streams is open."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def dump_tasks(logger: logging.Logger = log) -> None:
    """Every asyncio task with where it waits, to the log (`kill -USR1` on the server): a session that
    hangs shows its waiting coroutine here, which thread dumps (py-spy, faulthandler) cannot."""
    import io

    tasks = asyncio.all_tasks()
    out = io.StringIO()
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.write(f"--- {task.get_name()} {task!r:.200}\n")
        task.print_stack(limit=12, file=out)
    logger.warning("%d asyncio tasks:\n%s", len(tasks), out.getvalue())
