"""The Python SDK against a real server: typed events, tool results at the right moment, transparent resume."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import API_KEY, Server, synthesize
from tests.e2e.test_conversation import SYSTEM_PROMPT, WEATHER_TOOL
from tests.e2e.wsclient import read_wav, to_rate
from voxgate.client import VoxgateClient, VoxgateError
from voxgate.protocol.events import (
    AgentTranscript,
    ReplyAudio,
    ReplyDone,
    ServerEvent,
    SessionReady,
    ToolCall,
    UserTranscript,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def _speak(client: VoxgateClient, wav) -> None:
    samples, rate = read_wav(wav)
    audio = np.concatenate([to_rate(samples, rate, 24_000), np.zeros(48_000, np.int16)]).astype("<i2")
    for i in range(0, len(audio), 2_400):  # 100 ms chunks, twice real time
        await client.send_audio(audio[i : i + 2_400].tobytes())
        await asyncio.sleep(0.05)


async def _until(client: VoxgateClient, kind: type, seen: list[ServerEvent], limit_s: float = 120) -> ServerEvent:
    async with asyncio.timeout(limit_s):
        async for event in client.events():
            seen.append(event)
            if isinstance(event, kind):
                return event
    raise AssertionError(f"no {kind.__name__}")


async def test_a_spoken_question_arrives_as_typed_events(server: Server, speech_dir) -> None:
    async with VoxgateClient(server.url, api_key=API_KEY) as client:
        ready = await client.configure(system_prompt=SYSTEM_PROMPT)
        assert isinstance(ready, SessionReady) and client.session_id == ready.session_id
        await _speak(client, synthesize(speech_dir, "What is the capital city of France?"))
        seen: list[ServerEvent] = []
        await _until(client, ReplyDone, seen)
        user = next(e for e in seen if isinstance(e, UserTranscript))
        agent = next(e for e in seen if isinstance(e, AgentTranscript))
        assert "france" in user.text.lower() and "paris" in agent.text.lower()
        assert any(isinstance(e, ReplyAudio) for e in seen)


async def test_a_token_connects_and_a_bad_key_raises(server: Server) -> None:
    response = httpx.get(f"{server.http}/v1/token", headers={"Authorization": f"Bearer {API_KEY}"})
    async with VoxgateClient(server.url, token=response.json()["token"]) as client:
        assert (await client.configure(system_prompt=SYSTEM_PROMPT)).session_id.startswith("sess_")
    with pytest.raises(VoxgateError) as err:
        async with VoxgateClient(server.url, api_key="wrong-key") as client:
            await client.configure(system_prompt=SYSTEM_PROMPT)
    assert err.value.code == "UNAUTHORIZED"


class RecordingClient(VoxgateClient):
    """The SDK, noting when each reply.done arrived and when each tool.result went out."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.order: list[str] = []

    async def _on_event(self, event: ServerEvent) -> None:
        if isinstance(event, ReplyDone):
            self.order.append("reply.done")
        await super()._on_event(event)

    async def _send(self, payload: dict) -> None:
        if payload["type"] == "tool.result":
            self.order.append("tool.result")
        await super()._send(payload)


async def test_tool_results_go_out_after_reply_done_and_the_answer_uses_them(server: Server, speech_dir) -> None:
    async with RecordingClient(server.url, api_key=API_KEY) as client:

        @client.tool("get_weather")
        async def weather(args: dict) -> dict:
            client.order.append("handler")
            return {"city": args.get("city"), "condition": "sunny", "temperature_c": 22}

        await client.configure(system_prompt=SYSTEM_PROMPT, tools=[WEATHER_TOOL], input={"keyterms": ["Paris"]})
        await _speak(client, synthesize(speech_dir, "What's the weather like in Paris right now?"))
        seen: list[ServerEvent] = []
        call = await _until(client, ToolCall, seen)
        assert isinstance(call, ToolCall) and call.name == "get_weather"
        await _until(client, ReplyDone, seen)
        await _until(client, ReplyDone, seen)  # the follow-up reply, answered from the result
        # tool.call comes just before reply.done (protocol §6.4), so the handler may run on either side of it;
        # the result goes out only once the reply is done, whichever finished first.
        assert sorted(client.order[:3]) == ["handler", "reply.done", "tool.result"], client.order
        assert client.order.index("reply.done") < client.order.index("tool.result"), client.order
        agent = [e for e in seen if isinstance(e, AgentTranscript)][-1]
        assert {"sunny", "22", "twenty"} & set(agent.text.lower().replace(".", " ").replace(",", " ").split()), agent


async def test_a_dropped_socket_is_resumed_transparently(server: Server, speech_dir) -> None:
    async with VoxgateClient(server.url, api_key=API_KEY) as client:
        ready = await client.configure(system_prompt=SYSTEM_PROMPT)
        await client._ws.close()  # the network drops
        await asyncio.sleep(0.5)
        await _speak(client, synthesize(speech_dir, "What is the capital city of France?"))
        seen: list[ServerEvent] = []
        await _until(client, ReplyDone, seen)
        assert client.session_id == ready.session_id
        assert any(isinstance(e, UserTranscript) and "france" in e.text.lower() for e in seen)
