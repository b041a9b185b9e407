"""Mid-session changes take effect on the next turn; sockets that come and go leak nothing."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.e2e.conftest import API_KEY, Server, synthesize
from tests.e2e.test_conversation import SYSTEM_PROMPT, WEATHER_TOOL, say, words
from tests.e2e.wsclient import Client, silence

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def test_tools_and_keyterms_change_live(server: Server, speech_dir) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(system_prompt=SYSTEM_PROMPT)  # no tools yet
    await client.send({"type": "session.update", "session": {"tools": [WEATHER_TOOL]}})
    await client.next("session.updated", timeout=10)
    await say(client, synthesize(speech_dir, "What's the weather like in Paris right now?"))
    call = await client.next("tool.call", timeout=120)
    assert call.data["name"] == "get_weather"
    await client.next("reply.done", timeout=60)
    await client.send({"type": "tool.result", "call_id": call.data["call_id"], "result": '{"condition": "rain"}'})
    await client.next("reply.done", timeout=120)

    # A made-up brand: Whisper base alone writes "Zorbic"; only the keyterm can make it "Zorbix".
    booking = synthesize(speech_dir, "I want to cancel my Zorbix subscription.")
    await say(client, booking)
    first = await client.next("transcript.user", timeout=60)
    assert "zorbix" not in words(first.data["text"]), first.data
    await client.next("reply.done", timeout=120)

    await client.send({"type": "session.update", "session": {"input": {"keyterms": ["Zorbix"]}}})
    await client.next("session.updated", timeout=10)
    await say(client, booking)
    second = await client.next("transcript.user", timeout=60)
    assert "zorbix" in words(second.data["text"]), second.data
    await client.next("reply.done", timeout=120)
    await client.close()


async def test_sessions_that_come_and_go_leave_no_tasks_behind(server: Server, speech_dir) -> None:
    def tasks() -> int:
        return int(httpx.get(f"{server.http}/health").json()["tasks"])

    baseline = tasks()
    for _ in range(3):
        client = await Client.connect(server.url, API_KEY)
        ready = await client.configure(system_prompt=SYSTEM_PROMPT, greeting="Hello there, nice to meet you.")
        await client.next("reply.audio", timeout=60)
        await client.ws.close()  # drop in the middle of the greeting
        resumed = await Client.connect(server.url, API_KEY)
        await resumed.send({"type": "session.resume", "session_id": ready["session_id"]})
        await resumed.next("session.ready", timeout=10)
        await resumed.send_audio(silence(0.3), speed=4.0)
        # A second socket takes the same session over: the first is closed, its work cancelled.
        takeover = await Client.connect(server.url, API_KEY)
        await takeover.send({"type": "session.resume", "session_id": ready["session_id"]})
        await takeover.next("session.ready", timeout=10)
        await asyncio.wait_for(resumed.closed.wait(), 10)
        await takeover.close()
    await asyncio.sleep(1.0)
    assert tasks() <= baseline + 1, (baseline, tasks())


async def test_a_session_picks_an_allowed_llm_and_is_refused_others(server: Server, speech_dir) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(system_prompt=SYSTEM_PROMPT)
    await client.send({"type": "session.update", "session": {"llm_model": "gpt-9"}})
    error = await client.next("session.error", timeout=10)
    assert error.data["code"] == "invalid_value" and "smollm2-135m" in error.data["message"]
    await client.send({"type": "session.update", "session": {"llm_model": "smollm2-135m"}})
    await client.next("session.updated", timeout=10)
    await say(client, synthesize(speech_dir, "What is the capital city of France?"))
    done = await client.next("reply.done", timeout=120)
    agent = [e for e in client.events if e.type == "transcript.agent"][-1]
    assert done.data.get("status") in (None, "completed") and agent.data["text"].strip()
    await client.close()
