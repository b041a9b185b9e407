"""§4.1 session.update and §5 the config echo: the connect sequence, merge rules, immutable fields, and
which events are accepted before the first session.update."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from tests.e2e.conformance.raw import SESS_ID, SYSTEM_PROMPT, WEATHER_TOOL, connect, session
from tests.e2e.conftest import API_KEY, Server

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

CONFIG_KEYS = {"id", "system_prompt", "greeting", "input", "output", "tools", "llm", "pre_connect_requests"}
INPUT_KEYS = {
    "type",
    "format",
    "keyterms",
    "turn_detection",
    "language_codes",
    "transcription_mode",
    "transcription_prompt",
    "voice_focus",
    "voice_focus_threshold",
    "continuous_partials",
}
TURN_KEYS = {
    "vad_threshold",
    "min_silence",
    "max_silence",
    "interrupt_response",
    "interruption_delay",
    "type",
    "uninterruptible_turns",
}
OUTPUT_KEYS = {"type", "voice", "format", "volume"}


def assert_full_config(config: dict[str, Any]) -> None:
    assert CONFIG_KEYS <= set(config), sorted(CONFIG_KEYS - set(config))
    assert INPUT_KEYS <= set(config["input"]), sorted(INPUT_KEYS - set(config["input"]))
    turn = config["input"]["turn_detection"]
    assert TURN_KEYS <= set(turn), sorted(TURN_KEYS - set(turn))
    assert OUTPUT_KEYS <= set(config["output"]), sorted(OUTPUT_KEYS - set(config["output"]))


async def test_first_update_gets_session_updated_then_session_ready(server: Server) -> None:
    conn = await connect(server.url, authorization=f"Bearer {API_KEY}")
    connected = time.time()
    await conn.send({"type": "session.update", "session": {"system_prompt": SYSTEM_PROMPT}})
    ready = await conn.next("session.ready", "session.error")
    assert conn.types()[:2] == ["session.updated", "session.ready"], conn.describe()
    updated = conn.events[0].data
    assert isinstance(updated["config"], dict) and updated["config"]["system_prompt"] == SYSTEM_PROMPT
    data = ready.data
    assert SESS_ID.match(data["session_id"]), data
    assert isinstance(data["config"], dict) and data["config"]["system_prompt"] == SYSTEM_PROMPT
    assert isinstance(data["expires_at"], int) and data["expires_at"] > connected, data
    assert isinstance(data["resume_token"], str) and data["resume_token"], data
    assert not conn.bad_timestamps(), conn.bad_timestamps()
    await conn.close()


async def test_several_updates_before_ready_are_applied_in_order_with_one_ready(server: Server) -> None:
    conn = await connect(server.url, authorization=API_KEY)
    await conn.send({"type": "session.update", "session": {"system_prompt": "first"}})
    await conn.send({"type": "session.update", "session": {"system_prompt": "second"}})
    await conn.next("session.ready")
    await conn.none_of("session.ready", seconds=1.5)
    assert len(conn.of("session.ready")) == 1
    final = conn.of("session.updated", "session.ready")[-1]
    assert final.data["config"]["system_prompt"] == "second", conn.describe()
    await conn.close()


async def test_config_has_every_contract_key_with_null_where_unset(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY)
    config = ready["config"]
    assert_full_config(config)
    assert_full_config(conn.of("session.updated")[0].data["config"])
    turn = config["input"]["turn_detection"]
    assert turn["min_silence"] is None and turn["max_silence"] is None, turn  # adaptive (§4.3)
    assert config["input"]["transcription_prompt"] is None, config["input"]
    assert config["greeting"] in (None, ""), config
    assert config["id"] == "", config  # no stored agent bound
    await conn.close()


async def test_config_defaults_match_the_contract(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY)
    config = ready["config"]
    inp, out, turn = config["input"], config["output"], config["input"]["turn_detection"]
    assert inp["type"] == "audio" and inp["format"]["encoding"] == "audio/pcm", inp
    assert inp["format"].get("sample_rate", 24_000) == 24_000, inp
    assert inp["keyterms"] == [] and inp["transcription_mode"] == "balanced", inp
    assert inp["voice_focus"] == "near-field" and inp["voice_focus_threshold"] == 0.7, inp
    assert inp["continuous_partials"] is True, inp
    assert turn["vad_threshold"] == 0.5 and turn["interrupt_response"] is True, turn
    assert turn["uninterruptible_turns"] == [], turn
    assert out["type"] == "audio" and out["format"]["encoding"] == "audio/pcm" and out["volume"] == 100, out
    assert isinstance(out["voice"], str) and out["voice"], out  # the operator's default voice, by ID
    assert config["tools"] == [], config
    await conn.close()


async def test_later_update_gets_only_session_updated(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY)
    mark = conn.mark()
    updated = await conn.update({"system_prompt": "You are a pirate."})
    assert updated.type == "session.updated", updated.data
    assert updated.data["config"]["system_prompt"] == "You are a pirate."
    assert_full_config(updated.data["config"])
    await conn.none_of("session.ready", seconds=1.5, start=mark)
    await conn.close()


async def test_objects_merge_key_by_key(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"input": {"keyterms": ["Ozempic"]}})
    await conn.update({"input": {"turn_detection": {"interrupt_response": False}}})
    updated = await conn.update({"input": {"turn_detection": {"vad_threshold": 0.7}}})
    inp = updated.data["config"]["input"]
    assert inp["keyterms"] == ["Ozempic"], inp  # input merged: keyterms kept
    assert inp["turn_detection"]["vad_threshold"] == 0.7, inp
    assert inp["turn_detection"]["interrupt_response"] is False, inp  # turn_detection merged too
    updated = await conn.update({"output": {"volume": 40}})
    out = updated.data["config"]["output"]
    assert out["volume"] == 40 and out["format"]["encoding"] == "audio/pcm" and out["voice"], out
    await conn.close()


async def test_lists_replace(server: Server) -> None:
    other = {**WEATHER_TOOL, "name": "get_time", "description": "Get the time."}
    conn, _ = await session(server.url, API_KEY, {"input": {"keyterms": ["a", "b"]}, "tools": [WEATHER_TOOL, other]})
    updated = await conn.update({"input": {"keyterms": ["c"]}, "tools": [other]})
    config = updated.data["config"]
    assert config["input"]["keyterms"] == ["c"], config["input"]
    assert [t["name"] for t in config["tools"]] == ["get_time"], config["tools"]
    updated = await conn.update({"tools": []})
    assert updated.data["config"]["tools"] == []
    await conn.close()


async def test_null_counts_as_not_sent(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY, {"system_prompt": "Keep me.", "input": {"keyterms": ["Ozempic"]}})
    updated = await conn.update(
        {"system_prompt": None, "input": {"keyterms": None, "turn_detection": None}, "output": {"volume": None}}
    )
    assert updated.type == "session.updated", updated.data
    config = updated.data["config"]
    assert config["system_prompt"] == "Keep me." and config["input"]["keyterms"] == ["Ozempic"], config
    assert config["output"]["volume"] == 100, config["output"]
    await conn.close()


async def test_immutable_fields_sent_again_with_the_same_value_are_accepted(server: Server) -> None:
    first = {
        "greeting": "Hi.",
        "output": {"type": "audio", "voice": "anna", "format": {"encoding": "audio/pcm", "sample_rate": 24_000}},
    }
    conn, ready = await session(server.url, API_KEY, first)
    updated = await conn.update(first)
    assert updated.type == "session.updated", updated.data
    assert updated.data["config"]["output"]["voice"] == ready["config"]["output"]["voice"]
    await conn.close()


@pytest.mark.parametrize(
    "change",
    [
        {"greeting": "A different greeting."},
        {"output": {"voice": "james"}},
        {"output": {"format": {"encoding": "audio/pcmu"}}},
        {"output": {"type": "text"}},
    ],
    ids=["greeting", "output.voice", "output.format", "output.type"],
)
async def test_immutable_field_with_a_different_value_is_immutable_field(
    server: Server, change: dict[str, Any]
) -> None:
    conn, _ = await session(server.url, API_KEY, {"greeting": "Hi.", "output": {"voice": "anna"}})
    await conn.send({"type": "session.update", "session": change})
    await conn.error("immutable_field")
    await conn.alive()  # stays open
    await conn.close()


async def test_output_volume_is_mutable(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY)
    updated = await conn.update({"output": {"volume": 30}})
    assert updated.type == "session.updated" and updated.data["config"]["output"]["volume"] == 30, updated.data
    await conn.close()


async def test_unknown_fields_in_client_events_are_ignored(server: Server) -> None:
    conn = await connect(server.url, authorization=API_KEY)
    await conn.send({"type": "session.update", "session": {"system_prompt": SYSTEM_PROMPT}, "event_id": "e1"})
    ready = await conn.next("session.ready", "session.error")
    assert ready.type == "session.ready", ready.data
    await conn.close()


@pytest.mark.parametrize(
    "event",
    [
        {"type": "tool.result", "call_id": "call_" + "0" * 32, "result": "{}"},
        {"type": "reply.create"},
        {"type": "reply.cancel"},
        {"type": "conversation.message", "role": "user", "content": "hello"},
        {"type": "session.end"},
    ],
    ids=lambda e: e["type"],
)
async def test_before_first_update_other_events_are_invalid_format(server: Server, event: dict[str, Any]) -> None:
    conn = await connect(server.url, authorization=API_KEY)
    await conn.send(event)
    await conn.error("invalid_format")
    ready = await conn.start()  # still open: the session can be configured
    assert SESS_ID.match(ready["session_id"])
    await conn.close()


async def test_input_audio_before_session_ready_is_dropped_silently(server: Server) -> None:
    conn = await connect(server.url, authorization=API_KEY)
    chunk = {"type": "input.audio", "audio": base64.b64encode(b"\x00\x00" * 1200).decode()}
    await conn.send(chunk)  # before the first update
    await conn.send({"type": "session.update", "session": {}})
    await conn.send(chunk)  # after the update, before session.ready
    await conn.next("session.ready")
    await conn.none_of("session.error", seconds=1.5, start=0)
    await conn.close()
