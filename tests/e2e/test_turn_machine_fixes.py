"""Bugs of the old conversation core, seen from a plain client against a real server on real models.

H3: a cough or an "mm" between a tool-calling reply and its `tool.result` discarded the call silently.
H4: a backend failure (the recognizer raising, a voice raising) became dead air: no error, no reply.done.
Each test failed against the core before the turn machine (reliability-findings.md has how each was seen).
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

from tests.e2e.conftest import API_KEY, Server, start_server, stop_server, synthesize
from tests.e2e.test_conversation import SYSTEM_PROMPT, WEATHER_TOOL, say, words
from tests.e2e.test_sessions import assert_failed_reply
from tests.e2e.wsclient import Client, read_wav, silence, to_rate

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


def voice_burst(speech: np.ndarray, seconds: float, rate: int = 24_000) -> np.ndarray:
    """`seconds` of a recording from where its voice starts: a sound too short to be a turn."""
    loud = np.flatnonzero(np.abs(speech.astype(np.float32)) > 0.1 * np.abs(speech).max())
    start = int(loud[0])
    return speech[start : start + int(seconds * rate)]


async def test_a_short_sound_before_the_tool_result_keeps_the_call(server: Server, speech_dir) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(system_prompt=SYSTEM_PROMPT, tools=[WEATHER_TOOL], input={"keyterms": ["Paris"]})
    await say(client, synthesize(speech_dir, "What's the weather like in Paris right now?"))
    call = await client.next("tool.call", timeout=120)
    await client.next("reply.done", timeout=60)
    samples, rate = read_wav(synthesize(speech_dir, "Okay."))
    mark = len(client.events)
    await client.send_audio(voice_burst(to_rate(samples, rate, 24_000), 0.2), speed=1.0)  # ~0.13 s voiced
    await client.send_audio(silence(1.0), speed=1.0)
    assert "input.speech.started" in client.types_since(mark)  # the server heard it as the start of speech
    await client.send(
        {
            "type": "tool.result",
            "call_id": call.data["call_id"],
            "result": '{"city": "Paris", "condition": "sunny", "temperature_c": 22}',
        }
    )
    await client.next("reply.started", timeout=60)  # before: nothing (the call had been discarded)
    await client.next("reply.done", timeout=120)
    agent = [e for e in client.events if e.type == "transcript.agent"][-1]
    assert set(words(agent.data["text"])) & {"sunny", "22", "twenty"}, agent.data
    await client.close()


async def test_a_greeting_the_voice_cannot_read_still_ends_its_reply(server: Server) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(system_prompt=SYSTEM_PROMPT, greeting="Hello\u0000 there, how can I help?")
    done = await client.next("reply.done", timeout=60)  # before: reply.started, then nothing
    assert done.data["status"] == "completed"
    assert client.reply_audio()  # it was spoken
    await client.close()


async def test_a_recognizer_failure_is_reported_and_the_user_hears_an_apology(speech_dir) -> None:
    """The recognizer raises on every decode: here a remote OpenAI-compatible recognizer that refuses the
    connection (an unknown input.language no longer makes Whisper raise: it falls back to detection).
    A model failure is the reply's (§7.2): reply.error, the reply ends interrupted, then an apology."""
    deaf = start_server(
        "refusing-stt",
        {
            "VOXGATE_API_KEYS": API_KEY,
            "VOXGATE_PRELOAD": "false",
            "VOXGATE_STT_BACKEND": "openai",
            "VOXGATE_STT_BASE_URL": f"http://127.0.0.1:{_closed_port()}/v1",
            "VOXGATE_LLM_MODEL": "smollm2-135m",
        },
    )
    try:
        client = await Client.connect(deaf.url, API_KEY)
        await client.configure(system_prompt=SYSTEM_PROMPT)
        await say(client, synthesize(speech_dir, "What is the capital city of France?"))
        started = await client.next("reply.started", timeout=60)  # before: input.speech.stopped, then nothing
        # stt_timeout is the contract's only recognizer code; a refusal is not worth retrying.
        await assert_failed_reply(client, started, "stt_timeout", retryable=False)
        assert "transcript.user" not in client.types_since()  # nothing was recognized
        assert "session.error" not in client.types_since()
        await client.close()
    finally:
        stop_server(deaf)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens on it once the socket is closed
