"""§3 telephony formats: audio/pcmu and audio/pcma are 8 kHz, one byte a sample, G.711."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.conformance.raw import (
    SYSTEM_PROMPT,
    Conn,
    Mic,
    alaw_decode,
    pcm16,
    reply_span,
    rms,
    session,
    speech,
    ulaw_decode,
    words,
)
from tests.e2e.conftest import API_KEY, Server, synthesize

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

GREETING = "Hello, thanks for calling. How can I help you today?"
# The codes of the quietest samples: μ-law 0xFF/0x7F, A-law 0xD5/0x55 (G.711), with a step of slack.
NEAR_ZERO = {"audio/pcmu": {0xFF, 0x7F, 0xFE, 0x7E}, "audio/pcma": {0xD5, 0x55, 0xD4, 0x54}}


async def greeting_audio(server: Server, encoding: str) -> tuple[bytes, float]:
    """The greeting's reply.audio bytes and how long it took to stream (first chunk to reply.done)."""
    config = {
        "greeting": GREETING,
        "input": {"format": {"encoding": encoding}},
        "output": {"format": {"encoding": encoding}},
    }
    conn, ready = await session(server.url, API_KEY, config)
    assert ready["config"]["output"]["format"]["encoding"] == encoding, ready["config"]["output"]
    started = await conn.next("reply.started", timeout=60)
    done = await conn.next("reply.done", timeout=60, where=lambda d: d.get("reply_id") == started.data["reply_id"])
    audio = [e for e in reply_span(conn, started) if e.type == "reply.audio"]
    await conn.close()
    return conn.audio(reply_id=started.data["reply_id"]), done.at - audio[0].at


@pytest.mark.parametrize("encoding", ["audio/pcmu", "audio/pcma"])
async def test_g711_output_is_8_khz_one_byte_a_sample(server: Server, encoding: str) -> None:
    reference, _ = await greeting_audio(server, "audio/pcm")
    data, streamed_s = await greeting_audio(server, encoding)
    pcm_s = len(reference) / 48_000  # 24 kHz, 2 bytes a sample
    g711_s = len(data) / 8_000  # 8 kHz, 1 byte a sample
    assert pcm_s > 1.5, pcm_s
    assert abs(g711_s - pcm_s) < 0.15 * pcm_s, (g711_s, pcm_s)
    assert streamed_s > g711_s - 1.2, (streamed_s, g711_s)  # paced at real time at that rate
    decoded = ulaw_decode(data) if encoding == "audio/pcmu" else alaw_decode(data)
    assert rms(decoded) > 300, rms(decoded)  # speech, when decoded with this law
    assert abs(rms(decoded) - rms(pcm16(reference))) < 0.5 * rms(pcm16(reference)), (
        rms(decoded),
        rms(pcm16(reference)),
    )
    quietest = Counter(data).most_common(1)[0][0]
    assert quietest in NEAR_ZERO[encoding], hex(quietest)


async def test_pcmu_input_is_understood(server: Server, speech_dir: Path) -> None:
    conn: Conn
    conn, _ = await session(
        server.url,
        API_KEY,
        {
            "system_prompt": SYSTEM_PROMPT,
            "input": {"format": {"encoding": "audio/pcmu"}},
            "output": {"format": {"encoding": "audio/pcmu"}},
        },
    )
    mic = Mic(conn, encoding="audio/pcmu").start()
    await mic.say(speech(synthesize(speech_dir, "What is the capital city of France?"), rate=8_000))
    user = await conn.next("transcript.user", timeout=60)
    heard = set(words(user.data["text"]))
    assert "france" in heard, user.data
    await mic.stop()
    await conn.close()
