"""§4 client events and their answers (§5): malformed input, reply.create / reply.cancel,
conversation.message, session.end, output.volume, and the faster-than-real-time allowance (§3)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import numpy as np
import pytest

from tests.e2e.conformance.raw import (
    MSG_ID,
    RESP_ID,
    SYSTEM_PROMPT,
    Conn,
    Event,
    Mic,
    connect,
    pcm16,
    reply_span,
    session,
    words,
)
from tests.e2e.conftest import API_KEY, Server

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

LONG_GREETING = (
    "Hello and welcome. I am the assistant for the city library, and I can help you find books, "
    "renew your loans, check opening hours, and book a room for your study group."
)
SAY_SHORT = "Say exactly this sentence and nothing else: The library opens at nine."


def pcm_b64(samples: np.ndarray) -> str:
    return base64.b64encode(samples.astype("<i2").tobytes()).decode()


async def playing(conn: Conn) -> Event:
    """Wait until a reply is playing (its first reply.audio); returns its reply.started."""
    started = await conn.next("reply.started", timeout=60)
    await conn.next("reply.audio", timeout=60, where=lambda d: d.get("reply_id") == started.data["reply_id"])
    return started


async def assert_interrupted_ending(conn: Conn, reply_id: str) -> tuple[Event, Event]:
    """transcript.agent {interrupted: true} then reply.done {status: interrupted}, in that order (§4, §6.6)."""
    agent = await conn.next("transcript.agent", timeout=30, where=lambda d: d.get("reply_id") == reply_id)
    done = await conn.next("reply.done", timeout=30, where=lambda d: d.get("reply_id") == reply_id)
    assert agent.data["interrupted"] is True, agent.data
    assert done.data["status"] == "interrupted", done.data
    dones = [e for e in conn.of("reply.done") if e.data.get("reply_id") == reply_id]
    assert dones[0].index > agent.index, conn.describe(agent.index - 5)
    return agent, done


# ------------------------------------------------------------------ malformed input


async def test_unknown_event_type_is_invalid_format_and_the_session_stays_open(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY)
    await conn.send({"type": "response.create"})
    error = await conn.error("invalid_format")
    assert error.get("session_id") == ready["session_id"], error  # once a session exists (§5)
    await conn.alive()
    await conn.close()


@pytest.mark.parametrize(
    "frame",
    ["{not json", "[1, 2, 3]", '{"session": {}}', '{"type": 7}'],
    ids=["bad-json", "array", "no-type", "type-int"],
)
async def test_malformed_frame_is_invalid_format(server: Server, frame: str) -> None:
    conn, _ = await session(server.url, API_KEY)
    await conn.send(frame)
    await conn.error("invalid_format")
    await conn.alive()
    await conn.close()


async def test_binary_frame_is_invalid_format(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY)
    await conn.send(b"\x00\x01\x02binary")
    await conn.error("invalid_format")
    await conn.alive()
    await conn.close()


@pytest.mark.parametrize("audio", ["***not base64***", 42], ids=["bad-base64", "not-a-string"])
async def test_undecodable_audio_is_invalid_audio(server: Server, audio: Any) -> None:
    conn, _ = await session(server.url, API_KEY)
    await conn.send({"type": "input.audio", "audio": audio})
    await conn.error("invalid_audio")
    await conn.alive()
    await conn.close()


async def test_audio_chunk_over_1_mib_is_invalid_audio(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY)
    await conn.send({"type": "input.audio", "audio": base64.b64encode(b"\x00" * (1024 * 1024 + 2)).decode()})
    await conn.error("invalid_audio")
    await conn.alive()
    await conn.close()


async def test_tool_result_for_unknown_call_id_is_invalid_value_with_param_call_id(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY)
    await conn.send({"type": "tool.result", "call_id": "call_" + "0" * 32, "result": "{}"})
    error = await conn.error("invalid_value")
    assert error.get("param") == "call_id", error
    await conn.alive()
    await conn.close()


async def test_session_resume_after_the_first_message_is_invalid_format(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY)
    await conn.send({"type": "session.resume", "session_id": ready["session_id"]})
    await conn.error("invalid_format")
    await conn.alive()
    await conn.close()


# ------------------------------------------------------------------ reply.create / reply.cancel


async def test_reply_create_gives_the_full_reply_sequence(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT})
    mark = conn.mark()
    await conn.send({"type": "reply.create", "instructions": SAY_SHORT})
    started = await conn.next("reply.started", timeout=60)
    rid, item = started.data["reply_id"], started.data["item_id"]
    assert RESP_ID.match(rid) and MSG_ID.match(item), started.data
    done = await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == rid)
    assert done.data["status"] == "completed", done.data
    span = reply_span(conn, started)
    types = [e.type for e in span]
    assert types[0] == "reply.started" and types[-2:] == ["transcript.agent", "reply.done"], types
    assert set(types[1:-2]) <= {"reply.audio", "transcript.agent.delta"} and "reply.audio" in types, types
    for e in span:
        assert e.data.get("reply_id") == rid, e.data
    deltas = [e.data for e in span if e.type == "transcript.agent.delta"]
    assert deltas, types
    for d in deltas:
        assert d["item_id"] == item and isinstance(d["delta"], str) and d["delta"].strip(), d
        assert isinstance(d["start_ms"], int) and isinstance(d["end_ms"], int) and d["end_ms"] >= d["start_ms"], d
    agent = span[-2].data
    assert agent["item_id"] == item and agent["interrupted"] is False and agent["text"], agent
    assert words(" ".join(d["delta"] for d in deltas)) == words(agent["text"]), (deltas, agent)
    assert not conn.of("transcript.user", "input.speech.started", start=mark)
    assert not conn.bad_timestamps(), conn.bad_timestamps()[:3]
    await conn.close()


async def test_reply_create_while_a_reply_plays_interrupts_it_then_starts_the_new_one(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT, "greeting": LONG_GREETING})
    greeting = await playing(conn)
    old = greeting.data["reply_id"]
    await asyncio.sleep(1.0)
    await conn.send({"type": "reply.create", "instructions": SAY_SHORT})
    agent, done = await assert_interrupted_ending(conn, old)
    assert len(words(agent.data["text"])) < len(words(LONG_GREETING)), agent.data
    new = await conn.next("reply.started", timeout=60, where=lambda d: d.get("reply_id") != old)
    assert new.index > done.index and RESP_ID.match(new.data["reply_id"]), conn.describe(done.index)
    assert new.data["item_id"] != greeting.data["item_id"]
    finished = await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == new.data["reply_id"])
    assert finished.data["status"] == "completed"
    await conn.close()


@pytest.mark.parametrize("with_id", [False, True], ids=["without-reply-id", "with-reply-id"])
async def test_reply_cancel_ends_the_reply_like_a_barge_in_with_no_user_turn(server: Server, with_id: bool) -> None:
    conn, _ = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT, "greeting": LONG_GREETING})
    greeting = await playing(conn)
    rid = greeting.data["reply_id"]
    await asyncio.sleep(1.0)
    await conn.send({"type": "reply.cancel", "reply_id": rid} if with_id else {"type": "reply.cancel"})
    _, done = await assert_interrupted_ending(conn, rid)
    await conn.none_of("reply.started", "transcript.user", "input.speech.started", "session.error", seconds=3.0)
    later_audio = [e for e in conn.events[done.index + 1 :] if e.type == "reply.audio"]
    assert not later_audio, "reply.audio after reply.done"
    await conn.close()


async def test_reply_cancel_of_a_reply_id_that_is_not_current_is_ignored(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"greeting": "Hello, thanks for calling. How can I help?"})
    greeting = await playing(conn)
    await conn.send({"type": "reply.cancel", "reply_id": "resp_" + "0" * 32})
    done = await conn.next("reply.done", timeout=60)
    assert done.data["reply_id"] == greeting.data["reply_id"] and done.data["status"] == "completed", done.data
    assert not conn.of("session.error")
    await conn.close()


# ------------------------------------------------------------------ conversation.message


async def test_conversation_message_adds_context_without_a_reply(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT})
    mark = conn.mark()
    await conn.send({"type": "conversation.message", "role": "system", "content": "The caller's name is Alice."})
    await conn.send({"type": "conversation.message", "role": "user", "content": "Hi! My name is Alice."})
    await conn.none_of("reply.started", "session.error", seconds=4.0, start=mark)
    await conn.send({"type": "reply.create", "instructions": "Greet the user by name."})
    started = await conn.next("reply.started", timeout=60)
    done = await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == started.data["reply_id"])
    assert done.data["status"] == "completed"
    agent = next(e for e in conn.of("transcript.agent") if e.data["reply_id"] == started.data["reply_id"])
    assert "alice" in words(agent.data["text"]), agent.data
    await conn.close()


async def test_text_input_user_message_is_answered(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT, "input": {"type": "text"}})
    await conn.send({"type": "conversation.message", "role": "user", "content": "What is the capital city of France?"})
    started = await conn.next("reply.started", timeout=60)
    done = await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == started.data["reply_id"])
    assert done.data["status"] == "completed"
    agent = next(e for e in conn.of("transcript.agent") if e.data["reply_id"] == started.data["reply_id"])
    assert "paris" in words(agent.data["text"]), agent.data
    await conn.close()


async def test_text_output_has_transcripts_but_no_reply_audio(server: Server) -> None:
    conn, _ = await session(
        server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT, "input": {"type": "text"}, "output": {"type": "text"}}
    )
    await conn.send({"type": "conversation.message", "role": "user", "content": "What is the capital city of France?"})
    started = await conn.next("reply.started", timeout=60)
    done = await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == started.data["reply_id"])
    assert done.data["status"] == "completed"
    span = reply_span(conn, started)
    assert "reply.audio" not in [e.type for e in span], [e.type for e in span]
    assert span[-2].type == "transcript.agent" and span[-2].data["text"], span[-2].data
    for e in span:
        if e.type == "transcript.agent.delta":
            assert e.data["start_ms"] is None and e.data["end_ms"] is None, e.data
    await conn.close()


# ------------------------------------------------------------------ session.end


async def test_session_end_sends_session_ended_then_close_1000_and_the_id_dies(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY)
    await conn.send({"type": "session.end"})
    ended = await conn.next("session.ended", timeout=15)
    assert isinstance(ended.data["session_duration_seconds"], int | float), ended.data
    assert ended.data["session_duration_seconds"] >= 0
    assert "audio_duration_seconds" in ended.data and ended.data["audio_duration_seconds"] is None, ended.data
    assert (await conn.wait_closed())[0] == 1000
    assert conn.events[-1].type == "session.ended"

    again = await connect(server.url, authorization=API_KEY)
    await again.send({"type": "session.resume", "session_id": ready["session_id"]})
    await again.error("session_not_found")
    assert await again.wait_closed() == (1008, "session_not_found")


async def test_session_ended_counts_the_audio_streamed(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY)
    mic = Mic(conn).start()
    await asyncio.sleep(2.0)
    await mic.stop()
    streamed = mic.sent_s
    await conn.send({"type": "session.end"})
    ended = await conn.next("session.ended", timeout=15)
    assert abs(ended.data["audio_duration_seconds"] - streamed) < 0.5, (ended.data, streamed)
    assert ended.data["session_duration_seconds"] >= 2.0, ended.data
    assert (await conn.wait_closed())[0] == 1000


async def test_session_end_drops_an_in_flight_reply_with_no_further_events(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"greeting": LONG_GREETING})
    await playing(conn)
    mark = conn.mark()
    await conn.send({"type": "session.end"})
    await conn.next("session.ended", timeout=15)
    await conn.wait_closed()
    after = conn.types(mark)
    tail = after[after.index("session.ended") :]
    assert tail == ["session.ended"], after
    assert "reply.done" not in after and "transcript.agent" not in after, after


# ------------------------------------------------------------------ output.volume


async def test_output_volume_0_makes_the_following_reply_audio_silent(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"greeting": "Hello, thanks for calling.", "output": {"volume": 0}})
    greeting = await conn.next("reply.started", timeout=60)
    await conn.next("reply.done", timeout=60, where=lambda d: d.get("reply_id") == greeting.data["reply_id"])
    quiet = pcm16(conn.audio(reply_id=greeting.data["reply_id"]))
    assert len(quiet) > 24_000 * 0.5, len(quiet)  # audio still streams, at volume 0
    assert int(np.abs(quiet.astype(np.int32)).max()) <= 1, int(np.abs(quiet).max())

    await conn.update({"output": {"volume": 100}})
    await conn.send({"type": "reply.create", "instructions": SAY_SHORT})
    loud_reply = await conn.next("reply.started", timeout=60)
    await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == loud_reply.data["reply_id"])
    loud = pcm16(conn.audio(reply_id=loud_reply.data["reply_id"]))
    assert int(np.abs(loud.astype(np.int32)).max()) > 3000, int(np.abs(loud).max())
    await conn.close()


# ------------------------------------------------------------------ §3 faster than real time


async def test_audio_beyond_20_s_ahead_of_real_time_is_audio_rate_violation_and_the_session_stays_open(
    server: Server,
) -> None:
    conn, _ = await session(server.url, API_KEY)
    chunk = {"type": "input.audio", "audio": pcm_b64(np.zeros(1_200, dtype=np.int16))}  # 50 ms
    begin = time.monotonic()
    for _ in range(300):  # 15 s of audio at once: inside the 20 s allowance
        await conn.send(chunk)
    await asyncio.sleep(0.5)
    assert not conn.of("session.error"), conn.describe()
    for _ in range(300):  # 15 s more, still far ahead of the wall clock
        await conn.send(chunk)
    assert time.monotonic() - begin < 5, "the burst took too long to send to be ahead of real time"
    error = await conn.error("audio_rate_violation")
    assert error["code"] == "audio_rate_violation"
    violations = [e for e in conn.of("session.error") if e.data.get("code") == "audio_rate_violation"]
    assert len(violations) < 100, len(violations)  # rate-limited, not one per chunk
    await conn.alive()
    await conn.close()
