"""An asyncio event loop on virtual time, for scripted conversations that take seconds but run in milliseconds.

In the manner of LiveKit Agents' `tests/virtual_time.py`: the loop's `time()` is a number the loop owns.
When no callback is ready and no I/O is pending, instead of sleeping until its next timer the loop
jumps the clock there ("autojump"). Every `asyncio.sleep`, `asyncio.timeout` and `loop.call_later`
therefore takes no wall time, and what happens in one run is what happens in every run.

Blocking work handed to an executor (`asyncio.to_thread`, `loop.run_in_executor`: the session loads
its models and picks its LLM that way) runs inline, on the loop's thread, at the virtual instant it
was asked for. A worker thread would finish after an unknown stretch of wall time, and the loop would
either jump past it or deliver its result between other callbacks in an order that varies from run to
run; inline, it is as if the blocking call took no time, in the same order every run. Fakes must
therefore not block for real. Threads that post to the loop by themselves (`call_soon_threadsafe`)
are waited for only when the loop has nothing at all to do (no timer either); a loop with nothing to
do and nothing arriving within `DEADLOCK_WAIT_S` of wall time is a deadlock, and raises.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")

DEADLOCK_WAIT_S = 1.0  # wall time the loop waits for another thread when it has nothing to do
VIRTUAL_LIMIT_S = 600.0  # a script still running after this much virtual time has hung
# Past this the clock's float spacing exceeds the loop's clock resolution (1 ns), and a timer due exactly
# at the jumped-to time would never count as due.
MAX_VIRTUAL_S = 1e6
# Where the clock starts: not 0, as code written against time.monotonic() may take 0 for "long ago"
# (the echo guard's end of the last playback is 0.0 until something plays).
START_S = 1000.0


class VirtualTimeDeadlock(RuntimeError):
    """Nothing is ready, nothing is scheduled, and nothing arrived: the awaited thing never happens."""


class _AutojumpSelector(selectors.DefaultSelector):
    """Polls for real I/O without waiting; where the loop would wait for a timer, the clock jumps to it."""

    def __init__(self) -> None:
        super().__init__()
        self.advance: Callable[[float], None] = lambda _seconds: None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer at all: only another thread can wake the loop
            events = super().select(DEADLOCK_WAIT_S)
            if not events:
                raise VirtualTimeDeadlock(f"nothing scheduled; waiting tasks: {_waiting()}")
            return events
        self.advance(timeout)
        return []


def _waiting() -> list[str]:
    return sorted(t.get_name() for t in asyncio.all_tasks() if not t.done())


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, start: float = START_S) -> None:
        selector = _AutojumpSelector()
        super().__init__(selector)
        self._virtual_now = start
        selector.advance = self._advance

    def time(self) -> float:
        return self._virtual_now

    def _advance(self, seconds: float) -> None:
        if self._virtual_now + seconds > MAX_VIRTUAL_S:
            raise VirtualTimeDeadlock(f"virtual time past {MAX_VIRTUAL_S:g} s; waiting tasks: {_waiting()}")
        self._virtual_now += seconds

    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        """Run the blocking call now, on this thread: it takes no virtual time (see the module docstring)."""
        future: asyncio.Future[T] = self.create_future()
        try:
            future.set_result(func(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future


def run_virtual(main: Coroutine[Any, Any, T], *, limit_s: float = VIRTUAL_LIMIT_S) -> T:
    """Run `main` to completion on a fresh virtual-time loop (from a plain, synchronous test function)."""

    async def bounded() -> T:
        try:
            async with asyncio.timeout(limit_s) as deadline:
                return await main
        except TimeoutError:
            if deadline.expired():
                raise VirtualTimeDeadlock(f"still running after {limit_s:g} virtual s; tasks: {_waiting()}") from None
            raise

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(bounded())


def virtual(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Decorate an async test: pytest calls a plain function that runs it with `run_virtual`."""

    @functools.wraps(test)
    def run() -> None:
        run_virtual(test())

    return run
