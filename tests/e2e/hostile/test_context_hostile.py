"""Hostile input against the conversation itself, on a real server with the embedded models (H5, H7).

- H5: a conversation longer than the model's window once made every turn fail ("Requested tokens
  exceed context window"). Here the history is stuffed with `conversation.message`s far past the
  4096-token window, and the next reply must still be a completed answer.
- H5: a 300 KB `tool.result`, system prompt or tool list was accepted and filled the window in one step.
- H7: a 300 KB greeting without punctuation froze every session for 3.4 s (quadratic clause splitting
  on the event loop): it is refused now, and the server answers meanwhile.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.e2e.conformance.raw import close_all, session
from tests.e2e.conftest import API_KEY, Server

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
async def _close_sockets() -> None:
    yield
    await close_all()


async def test_h5_a_history_far_past_the_window_still_gets_a_completed_reply(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"system_prompt": "Answer in one short sentence."})
    fact = "My favourite colour is teal. " * 40  # ~300 tokens a message
    for i in range(40):  # ~12 000 tokens in all: three times the embedded model's window
        await conn.send({"type": "conversation.message", "role": "user", "content": f"Note {i}. {fact}"})
    start = conn.mark()
    await conn.send({"type": "reply.create"})
    done = await conn.next("reply.done", timeout=240)
    assert done.data.get("status") == "completed", conn.describe(start)
    assert not conn.of("reply.error", "session.error", start=start), conn.describe(start)
    text = " ".join(e.data.get("text", "") for e in conn.of("transcript.agent", start=start))
    assert text.strip() and "trouble" not in text.lower(), text


@pytest.mark.parametrize(
    ("event", "param"),
    [
        ({"type": "session.update", "session": {"system_prompt": "x " * 150_000}}, "system_prompt"),
        ({"type": "session.update", "session": {"tools": [{"name": f"t{i}"} for i in range(5000)]}}, "tools"),
        ({"type": "session.update", "session": {"greeting": "hello " * 50_000}}, "greeting"),
    ],
)
async def test_h5_h7_oversized_configuration_is_refused_naming_the_limit(
    server: Server, event: dict, param: str
) -> None:
    conn, _ = await session(server.url, API_KEY)
    start = conn.mark()
    await conn.send(event)
    error = await conn.next("session.error", timeout=30)
    assert error.data["code"] == "invalid_value", error.data
    assert error.data.get("param") == param
    assert "at most" in error.data["message"] and len(error.data["message"]) < 1000
    assert not conn.of("session.updated", start=start)
    await conn.alive()


async def test_h5_an_oversized_tool_result_is_refused_and_the_session_goes_on(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY)
    start = conn.mark()
    await conn.send({"type": "tool.result", "call_id": "call_x", "result": "y" * 300_000})
    error = await conn.next("session.error", timeout=30)
    assert error.data["code"] == "invalid_value", error.data
    assert error.data.get("param") == "result"
    assert "at most" in error.data["message"] and len(error.data["message"]) < 1000
    assert not conn.of("reply.started", start=start)
    await conn.alive()


async def test_h7_a_huge_greeting_does_not_freeze_the_server(server: Server) -> None:
    """Big greetings sent over and over while /health is timed: it must keep answering promptly."""
    conn, _ = await session(server.url, API_KEY)
    greeting = "word " * 60_000  # 300 KB, no punctuation
    slowest = 0.0

    async def flood() -> None:
        for _ in range(5):
            await conn.send({"type": "session.update", "session": {"greeting": greeting}})
            await asyncio.sleep(0.1)

    async with httpx.AsyncClient() as http:
        flooding = asyncio.create_task(flood())
        while not flooding.done():
            t = time.monotonic()
            assert (await http.get(f"{server.http}/health", timeout=30)).status_code == 200
            slowest = max(slowest, time.monotonic() - t)
            await asyncio.sleep(0.05)
        await flooding
    assert slowest < 2.5, f"/health took {slowest:.2f} s during the flood"  # it was 3.4 s per greeting
    await conn.alive()
