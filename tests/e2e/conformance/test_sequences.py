"""§6 sequences with real speech: the greeting, a user turn, barge-in, interactive and hold tools,
tool timeouts, uninterruptible turns and interrupt_response false. The microphone streams 50 ms
chunks of 24 kHz pcm16 at real time for the whole session, as a live client does."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conformance.raw import (
    CALL_ID,
    MSG_ID,
    RESP_ID,
    SYSTEM_PROMPT,
    WEATHER_QUESTION,
    WEATHER_TOOL,
    Conn,
    Event,
    Mic,
    reply_span,
    session,
    speech,
    words,
)
from tests.e2e.conftest import API_KEY, Server, synthesize

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

GREETING = "Hello, thanks for calling the city library. How can I help you today?"
LONG_GREETING = (
    "Hello and welcome. I am the assistant for the city library, and I can help you find books, "
    "renew your loans, check opening hours, and book a room for your study group. "
    "You can also ask me about events for children, language classes, and the local history archive."
)
QUESTION = "Hello there. I would like to know the name of the capital city of France, please."
BARGE_IN = "Wait, stop. What time is it?"
OVER_GREETING = "Excuse me, can you hear me?"
WEATHER_RESULT = '{"city": "Paris", "condition": "sunny", "temperature_c": 22}'
APOLOGY = {"sorry", "apologize", "apologise", "apologies", "unfortunately", "unable", "couldn't", "can't", "trouble"}


def for_reply(rid: str) -> Any:
    return lambda d: d.get("reply_id") == rid


async def done_of(conn: Conn, started: Event, timeout: float = 90) -> Event:
    return await conn.next("reply.done", timeout=timeout, where=for_reply(started.data["reply_id"]))


def agent_text(conn: Conn, rid: str) -> dict[str, Any]:
    found = [e.data for e in conn.of("transcript.agent") if e.data.get("reply_id") == rid]
    assert len(found) == 1, (rid, found)
    return found[0]


async def tool_session(server: Server, speech_dir: Path, tool: dict[str, Any]) -> tuple[Conn, Mic, Event, Event]:
    """Ask for the weather in Paris with `tool` defined; returns at the tool.call, with the reply that made it."""
    conn, _ = await session(
        server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT, "tools": [tool], "input": {"keyterms": ["Paris"]}}
    )
    mic = Mic(conn).start()
    await mic.say(speech(synthesize(speech_dir, WEATHER_QUESTION)))
    call = await conn.next("tool.call", timeout=120)
    started = [e for e in conn.of("reply.started") if e.index < call.index][-1]
    return conn, mic, started, call


def assert_tool_call(call: Event) -> None:
    assert CALL_ID.match(call.data["call_id"]), call.data
    assert call.data["name"] == "get_weather", call.data
    assert isinstance(call.data["arguments"], dict), call.data  # an object, not a string, not `args`
    assert "paris" in str(call.data["arguments"].get("city", "")).lower(), call.data


# ------------------------------------------------------------------ §6.2 greeting


async def test_greeting_sequence_with_word_timed_agent_deltas(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"greeting": GREETING})
    started = await conn.next("reply.started", timeout=60)
    done = await done_of(conn, started)
    assert conn.types()[:3] == ["session.updated", "session.ready", "reply.started"], conn.describe()
    assert RESP_ID.match(started.data["reply_id"]) and MSG_ID.match(started.data["item_id"]), started.data
    assert done.data["status"] == "completed", done.data
    span = reply_span(conn, started)
    types = [e.type for e in span]
    assert types[-2:] == ["transcript.agent", "reply.done"], types
    assert set(types[1:-2]) == {"reply.audio", "transcript.agent.delta"}, types
    agent = span[-2].data
    assert agent["text"] == GREETING and agent["interrupted"] is False, agent  # word for word, by TTS
    deltas = [e for e in span if e.type == "transcript.agent.delta"]
    starts = [d.data["start_ms"] for d in deltas]
    assert all(isinstance(s, int) for s in starts) and starts == sorted(starts), starts
    assert all(d.data["item_id"] == started.data["item_id"] for d in deltas)
    assert all(d.data["end_ms"] >= d.data["start_ms"] for d in deltas), [d.data for d in deltas]
    assert all(len(d.data["delta"].split()) == 1 for d in deltas), [d.data["delta"] for d in deltas]  # one word
    assert words(" ".join(d.data["delta"] for d in deltas)) == words(agent["text"])
    # Each word comes with the audio chunk where it begins: captions interleave with the audio.
    audio_ms = 0.0
    for e in span:
        if e.type == "reply.audio":
            audio_ms += len(base64.b64decode(e.data["data"])) / 48
        elif e.type == "transcript.agent.delta":
            assert e.data["start_ms"] >= audio_ms - 1500, (e.data, audio_ms)
    last_audio = max(e.index for e in span if e.type == "reply.audio")
    assert deltas[0].index < last_audio, types
    await conn.close()


async def test_reply_audio_is_paced_at_about_real_time(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"greeting": GREETING})
    started = await conn.next("reply.started", timeout=60)
    done = await done_of(conn, started)
    audio = [e for e in reply_span(conn, started) if e.type == "reply.audio"]
    first = audio[0].at
    sent_ms = 0.0
    for e in audio:  # never the whole reply in one burst: at most ~1 s ahead of playback (§3)
        assert sent_ms - (e.at - first) * 1000 < 2000, (sent_ms, e.at - first)
        sent_ms += len(base64.b64decode(e.data["data"])) / 48
    duration = sent_ms / 1000
    assert duration > 1.5, duration
    assert done.at - first > duration - 1.2, (done.at - first, duration)
    await conn.close()


# ------------------------------------------------------------------ §6.3 a turn


async def test_user_turn_sequence_from_speech_started_to_reply_done(server: Server, speech_dir: Path) -> None:
    conn, _ = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT})
    mic = Mic(conn).start()
    await mic.say(speech(synthesize(speech_dir, QUESTION)))
    user = await conn.next("transcript.user", timeout=60)
    reply = await conn.next("reply.started", timeout=60)
    done = await done_of(conn, reply, timeout=120)
    await mic.stop()
    types = conn.types(0, user.index + 1)
    assert "input.speech.started" in types and "input.speech.stopped" in types, types
    first_started = types.index("input.speech.started")
    first_delta = types.index("transcript.user.delta")
    first_stopped = types.index("input.speech.stopped", first_started)
    assert first_started < first_delta < first_stopped < user.index, conn.describe(0)
    assert MSG_ID.match(user.data["item_id"]), user.data
    deltas = [e for e in conn.of("transcript.user.delta") if e.index < user.index]
    assert {d.data["item_id"] for d in deltas} == {user.data["item_id"]}, [d.data for d in deltas]
    assert all(isinstance(d.data["text"], str) for d in deltas)
    assert {"capital", "france"} <= set(words(user.data["text"])), user.data
    assert reply.index > user.index
    assert RESP_ID.match(reply.data["reply_id"]) and reply.data["item_id"] != user.data["item_id"], reply.data
    span = [e.type for e in reply_span(conn, reply)]
    assert "reply.audio" in span and span[-2:] == ["transcript.agent", "reply.done"], span
    assert done.data["status"] == "completed", done.data
    assert not conn.bad_timestamps(), conn.bad_timestamps()[:3]
    await conn.close()


# ------------------------------------------------------------------ §6.6 barge-in


async def test_barge_in_sends_agent_transcript_before_reply_done(server: Server, speech_dir: Path) -> None:
    conn, _ = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT, "greeting": LONG_GREETING})
    interruption = speech(synthesize(speech_dir, BARGE_IN))
    mic = Mic(conn).start()
    greeting = await conn.next("reply.started", timeout=60)
    rid = greeting.data["reply_id"]
    await conn.next("reply.audio", timeout=60, where=for_reply(rid))
    await asyncio.sleep(2.5)
    mark = conn.mark()
    await mic.say(interruption, wait=False)
    speech_started = await conn.next("input.speech.started", timeout=30)
    agent = await conn.next("transcript.agent", timeout=30, where=for_reply(rid))
    done = await conn.next("reply.done", timeout=30, where=for_reply(rid))
    assert speech_started.index < agent.index < done.index, conn.describe(mark)
    assert agent.data["interrupted"] is True, agent.data
    assert done.data["status"] == "interrupted", done.data
    heard, full = words(agent.data["text"]), words(LONG_GREETING)
    assert 0 < len(heard) < len(full) and heard == full[: len(heard)], agent.data  # trimmed to what was spoken
    after = conn.events[done.index + 1 :]
    assert not [e for e in after if e.data.get("reply_id") == rid], "events of the interrupted reply after reply.done"
    user = await conn.next("transcript.user", timeout=60)  # the user's turn continues
    assert "time" in words(user.data["text"]), user.data
    new = await conn.next("reply.started", timeout=60)
    assert new.data["reply_id"] != rid and new.index > user.index
    await mic.stop()
    await conn.close()


async def test_uninterruptible_greeting_discards_user_speech(server: Server, speech_dir: Path) -> None:
    conn, _ = await session(
        server.url,
        API_KEY,
        {
            "system_prompt": SYSTEM_PROMPT,
            "greeting": LONG_GREETING,
            "input": {"turn_detection": {"uninterruptible_turns": ["greeting"]}},
        },
    )
    words_over = speech(synthesize(speech_dir, OVER_GREETING))
    mic = Mic(conn).start()
    greeting = await conn.next("reply.started", timeout=60)
    await conn.next("reply.audio", timeout=60, where=for_reply(greeting.data["reply_id"]))
    await asyncio.sleep(1.0)
    await mic.say(words_over)
    done = await done_of(conn, greeting)
    assert done.data["status"] == "completed", done.data
    agent = agent_text(conn, greeting.data["reply_id"])
    assert agent["interrupted"] is False and agent["text"] == LONG_GREETING, agent
    assert "input.speech.started" not in conn.types(greeting.index, done.index), conn.describe(greeting.index)
    await conn.none_of("reply.started", seconds=5.0, start=done.index + 1)  # discarded, not queued
    assert not conn.of("transcript.user", "input.speech.started", start=greeting.index), conn.describe(greeting.index)
    await mic.stop()
    await conn.close()


async def test_interrupt_response_false_lets_the_agent_talk_on_and_answers_after(
    server: Server, speech_dir: Path
) -> None:
    conn, _ = await session(
        server.url,
        API_KEY,
        {
            "system_prompt": SYSTEM_PROMPT,
            "greeting": LONG_GREETING,
            "input": {"turn_detection": {"interrupt_response": False}},
        },
    )
    words_over = speech(synthesize(speech_dir, OVER_GREETING))
    mic = Mic(conn).start()
    greeting = await conn.next("reply.started", timeout=60)
    await conn.next("reply.audio", timeout=60, where=for_reply(greeting.data["reply_id"]))
    await asyncio.sleep(1.0)
    await mic.say(words_over)
    done = await done_of(conn, greeting)
    assert done.data["status"] == "completed", done.data
    agent = agent_text(conn, greeting.data["reply_id"])
    assert agent["interrupted"] is False and agent["text"] == LONG_GREETING, agent
    assert "input.speech.started" not in conn.types(greeting.index, done.index), conn.describe(greeting.index)
    conn.cursor = greeting.index  # transcribed (maybe while the agent spoke), and answered after the reply
    user = await conn.next("transcript.user", timeout=60)
    assert set(words(user.data["text"])) & {"hear", "excuse"}, user.data
    answer = await conn.next("reply.started", timeout=60, where=lambda d: d["reply_id"] != greeting.data["reply_id"])
    assert answer.index > done.index and answer.index > user.index, conn.describe(greeting.index)
    await mic.stop()
    await conn.close()


# ------------------------------------------------------------------ §6.4 / §6.5 tools


async def test_interactive_tool_call_comes_after_transcript_agent_and_the_result_gets_a_new_reply(
    server: Server, speech_dir: Path
) -> None:
    conn, mic, started, call = await tool_session(server, speech_dir, {**WEATHER_TOOL, "execution_mode": "interactive"})
    assert_tool_call(call)
    done = await done_of(conn, started)
    assert done.data["status"] == "completed", done.data
    span = reply_span(conn, started)
    types = [e.type for e in span]
    assert types[-1] == "reply.done" and types.count("tool.call") == 1, " ".join(types)
    i_agent, i_call = types.index("transcript.agent"), types.index("tool.call")
    assert "reply.audio" in types[:i_call], " ".join(types)  # a spoken transition first
    assert i_agent < i_call, " ".join(types)  # transcript.agent, then tool.call, both before reply.done
    assert not conn.of("reply.started", start=done.index + 1)

    await conn.send({"type": "tool.result", "call_id": call.data["call_id"], "result": WEATHER_RESULT})
    follow = await conn.next("reply.started", timeout=60)
    assert follow.data["reply_id"] != started.data["reply_id"] and follow.data["item_id"] != started.data["item_id"]
    assert RESP_ID.match(follow.data["reply_id"]) and MSG_ID.match(follow.data["item_id"]), follow.data
    finished = await done_of(conn, follow, timeout=120)
    assert finished.data["status"] == "completed", finished.data
    assert set(words(agent_text(conn, follow.data["reply_id"])["text"])) & {"sunny", "22", "twenty"}
    assert not conn.of("session.error")
    await mic.stop()
    await conn.close()


async def test_tool_result_with_is_error_and_an_object_result_is_accepted(server: Server, speech_dir: Path) -> None:
    conn, mic, started, call = await tool_session(server, speech_dir, WEATHER_TOOL)
    await done_of(conn, started)
    await conn.send(
        {
            "type": "tool.result",
            "call_id": call.data["call_id"],
            "result": {"error": "The weather service is unavailable."},
            "is_error": True,
        }
    )
    follow = await conn.next("reply.started", timeout=60)
    finished = await done_of(conn, follow, timeout=120)
    assert finished.data["status"] == "completed", finished.data
    assert not conn.of("session.error"), conn.describe()
    await mic.stop()
    await conn.close()


async def test_hold_tool_gets_a_silent_reply_and_the_result_fires_the_next_reply(
    server: Server, speech_dir: Path
) -> None:
    conn, mic, started, call = await tool_session(server, speech_dir, {**WEATHER_TOOL, "execution_mode": "hold"})
    assert_tool_call(call)
    done = await done_of(conn, started)
    assert done.data["status"] == "completed", done.data
    types = [e.type for e in reply_span(conn, started)]
    assert types[0] == "reply.started" and types[-1] == "reply.done" and "tool.call" in types, types
    assert "reply.audio" not in types and "transcript.agent.delta" not in types, types  # no transition phrase
    await conn.none_of("reply.started", seconds=3.0, start=done.index + 1)  # silent while held

    mark = conn.mark()
    await conn.send({"type": "tool.result", "call_id": call.data["call_id"], "result": WEATHER_RESULT})
    follow = await conn.next("reply.started", timeout=60)  # by itself: no reply.create
    assert follow.data["reply_id"] != started.data["reply_id"]
    finished = await done_of(conn, follow, timeout=120)
    assert finished.data["status"] == "completed"
    assert "reply.audio" in [e.type for e in reply_span(conn, follow)]
    await conn.none_of("reply.started", seconds=3.0, start=finished.index + 1)  # exactly one reply
    assert len(conn.of("reply.started", start=mark)) == 1
    await mic.stop()
    await conn.close()


async def test_reply_create_during_a_hold_gives_a_status_reply_and_the_result_still_fires_one(
    server: Server, speech_dir: Path
) -> None:
    conn, mic, started, _call = await tool_session(server, speech_dir, {**WEATHER_TOOL, "execution_mode": "hold"})
    await done_of(conn, started)
    await conn.send({"type": "reply.create", "instructions": "Tell the user you are still checking the weather."})
    status = await conn.next("reply.started", timeout=60)
    finished = await done_of(conn, status)
    assert finished.data["status"] == "completed", finished.data
    said = agent_text(conn, status.data["reply_id"])["text"]
    assert said.strip(), " ".join(e.type for e in reply_span(conn, status))  # a status reply says something
    for pending in conn.of("tool.call"):  # the status reply may have called the tool again: answer every call
        await conn.send({"type": "tool.result", "call_id": pending.data["call_id"], "result": WEATHER_RESULT})
    conn.cursor = finished.index + 1
    follow = await conn.next("reply.started", timeout=60)  # the hold still ends at the result
    assert follow.data["reply_id"] not in (started.data["reply_id"], status.data["reply_id"])
    assert (await done_of(conn, follow, timeout=120)).data["status"] == "completed"
    await mic.stop()
    await conn.close()


async def test_tool_without_a_result_within_timeout_seconds_gets_an_apology(server: Server, speech_dir: Path) -> None:
    conn, mic, started, call = await tool_session(server, speech_dir, {**WEATHER_TOOL, "timeout_seconds": 1})
    await done_of(conn, started)
    apology = await conn.next("reply.started", timeout=30)  # a normal reply, no tool.result sent
    assert apology.data["reply_id"] != started.data["reply_id"]
    finished = await done_of(conn, apology)
    assert finished.data["status"] == "completed"
    assert set(words(agent_text(conn, apology.data["reply_id"])["text"])) & APOLOGY, conn.describe(apology.index)
    mark = conn.mark()
    await conn.send({"type": "tool.result", "call_id": call.data["call_id"], "result": WEATHER_RESULT})
    await conn.none_of("session.error", "reply.started", seconds=3.0, start=mark)  # a late result is ignored silently
    await mic.stop()
    await conn.close()
