"""Telephony formats: μ-law and A-law in and out, chosen independently; odd chunk sizes."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from tests.e2e.conftest import API_KEY, Server, synthesize
from tests.e2e.test_conversation import SYSTEM_PROMPT, words
from tests.e2e.wsclient import Client, read_wav, silence, to_rate, ulaw_decode

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def test_mulaw_in_and_out(server: Server, speech_dir) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(
        system_prompt=SYSTEM_PROMPT,
        greeting="Hello, thanks for calling.",
        input={"format": {"encoding": "audio/pcmu"}},
        output={"format": {"encoding": "audio/pcmu"}},
    )
    await client.next("reply.done", timeout=60)
    greeting_bytes = client.reply_audio()
    # 8 kHz μ-law on the wire: one byte a sample, about as long as the sentence takes to say.
    assert 0.8 < len(greeting_bytes) / 8000 < 4.0
    decoded = ulaw_decode(greeting_bytes).astype(np.float64)
    assert np.sqrt(np.mean(decoded**2)) > 300

    mark = len(client.events)
    samples, _ = read_wav(synthesize(speech_dir, "What is the capital city of France?", rate=8000))
    await client.send_audio(samples, encoding="audio/pcmu", rate=8000, speed=2.0, chunk_ms=20)
    await client.send_audio(silence(2.0, 8000), encoding="audio/pcmu", rate=8000, speed=2.0, chunk_ms=20)
    user = await client.next("transcript.user", timeout=60)
    heard = set(words(user.data["text"]))
    assert "france" in heard and heard & {"capital", "capitol"}, user.data  # homophones at 8 kHz
    await client.next("reply.done", timeout=120)
    answer = client.reply_audio(mark)
    assert len(answer) > 8000 * 0.5  # μ-law bytes, not 24 kHz PCM
    agent = [e for e in client.events if e.type == "transcript.agent"][-1]
    assert "paris" in words(agent.data["text"])
    await client.close()


async def test_alaw_output_and_pcm_input_in_odd_chunks(server: Server, speech_dir) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(system_prompt=SYSTEM_PROMPT, greeting="Hi.", output={"format": {"encoding": "audio/pcma"}})
    await client.next("reply.done", timeout=60)
    assert 0.2 < len(client.reply_audio()) / 8000 < 2.5
    samples, rate = read_wav(synthesize(speech_dir, "What is the capital city of France?"))
    raw = np.concatenate([to_rate(samples, rate, 24_000), silence(2.0)]).astype("<i2").tobytes()
    for start in range(0, len(raw), 777):  # odd byte counts split samples across messages
        await client.send({"type": "input.audio", "audio": base64.b64encode(raw[start : start + 777]).decode()})
    user = await client.next("transcript.user", timeout=60)
    assert {"capital", "france"} <= set(words(user.data["text"])), user.data
    await client.next("reply.done", timeout=120)
    await client.close()
