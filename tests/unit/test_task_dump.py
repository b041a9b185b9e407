"""`kill -USR1` on the server logs every asyncio task with where it waits (voxgate/aio.py `dump_tasks`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from voxgate.aio import closing, dump_tasks


async def test_every_task_is_logged_with_the_line_it_waits_at(caplog: pytest.LogCaptureFixture) -> None:
    async def waits_for_the_model() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(waits_for_the_model(), name="session:reply")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="voxgate.aio"):
        dump_tasks()
    task.cancel()
    text = caplog.text
    assert "--- session:reply" in text
    assert "waits_for_the_model" in text and "await asyncio.Event().wait()" in text


async def test_closing_closes_an_async_generator_left_mid_way() -> None:
    closed = asyncio.Event()

    async def clauses() -> AsyncIterator[int]:
        try:
            for n in range(10):
                yield n
        finally:
            closed.set()

    gen = clauses()
    async with closing(gen):
        async for n in gen:
            if n == 2:
                break
    assert closed.is_set()  # while `gen` is still referenced: not left to the garbage collector
