"""§4.2–§4.5 field validation in session.update, §11 the hosted voice IDs, and the error codes of §7.1
that updates can earn (invalid_value with `param`, invalid_config, invalid_webhook)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conformance.raw import WEATHER_TOOL, connect, session
from tests.e2e.conftest import API_KEY, Server

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

# §11, typed from the contract.
LAUNCH_STILL_LISTED = [
    "ivy", "james", "tyler", "winter", "bella", "david", "kyle", "helen", "martha", "river", "emma", "victor",
    "eleanor", "arjun", "dmitri", "pierre", "giulia", "luca", "lucia", "mateo", "diego",
]  # fmt: skip
LAUNCH_REMOVED_JUNE = [
    "sam", "mia", "jack", "sophie", "oliver", "ethan", "mei", "lukas", "lena", "mina", "joon", "ren", "hana",
]  # fmt: skip
SEPTEMBER = [
    "alba", "eve", "george", "jane", "jean", "mary", "michael", "anna", "charles", "paul", "vera", "giovanni",
    "lola", "juergen", "rafael", "estelle",
]  # fmt: skip
PRE_LAUNCH = ["autumn", "claire", "dawn", "josh", "grace", "pete"]
HOSTED_VOICES = LAUNCH_STILL_LISTED + LAUNCH_REMOVED_JUNE + SEPTEMBER + PRE_LAUNCH


def nest(path: str, value: Any) -> dict[str, Any]:
    """ "input.turn_detection.vad_threshold", 2 → {"input": {"turn_detection": {"vad_threshold": 2}}}."""
    out: Any = value
    for key in reversed(path.split(".")):
        out = {key: out}
    return out  # type: ignore[no-any-return]


async def rejected_after_ready(server: Server, update: dict[str, Any], code: str, param: str | None = None) -> None:
    conn, _ = await session(server.url, API_KEY)
    await conn.send({"type": "session.update", "session": update})
    error = await conn.error(code)
    if param is not None:
        assert error.get("param") == param, error
    assert error.get("session_id") == conn.of("session.ready")[0].data["session_id"], error
    await conn.alive()  # validation errors leave the session open
    await conn.close()


async def accepted_after_ready(server: Server, update: dict[str, Any]) -> dict[str, Any]:
    conn, _ = await session(server.url, API_KEY)
    updated = await conn.update(update)
    assert updated.type == "session.updated", updated.data
    await conn.close()
    return updated.data["config"]  # type: ignore[no-any-return]


async def rejected_first(server: Server, update: dict[str, Any], code: str, param: str | None = None) -> None:
    """Rejected in the first update; the socket stays open and a corrected update gets session.ready."""
    conn = await connect(server.url, authorization=API_KEY)
    await conn.send({"type": "session.update", "session": update})
    error = await conn.error(code)
    if param is not None:
        assert error.get("param") == param, error
    assert not conn.of("session.ready")
    await conn.start({})
    await conn.close()


async def accepted_first(server: Server, update: dict[str, Any]) -> dict[str, Any]:
    conn = await connect(server.url, authorization=API_KEY)
    ready = await conn.start(update)
    await conn.close()
    return ready["config"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ §3 / §4.2 input


@pytest.mark.parametrize("rate", [16_000, 8_000, 48_000])
async def test_pcm_sample_rate_other_than_24000_is_invalid_value(server: Server, rate: int) -> None:
    await rejected_after_ready(
        server, nest("input.format", {"encoding": "audio/pcm", "sample_rate": rate}), "invalid_value",
        "input.format.sample_rate",
    )  # fmt: skip


async def test_output_sample_rate_other_than_24000_is_invalid_value(server: Server) -> None:
    update = nest("output.format", {"encoding": "audio/pcm", "sample_rate": 16_000})
    await rejected_first(server, update, "invalid_value", "output.format.sample_rate")


async def test_sample_rate_with_pcmu_is_ignored(server: Server) -> None:
    config = await accepted_first(server, {"input": {"format": {"encoding": "audio/pcmu", "sample_rate": 16_000}}})
    assert config["input"]["format"]["encoding"] == "audio/pcmu", config["input"]


async def test_input_format_is_mutable(server: Server) -> None:
    config = await accepted_after_ready(server, nest("input.format", {"encoding": "audio/pcma"}))
    assert config["input"]["format"]["encoding"] == "audio/pcma"


async def test_unknown_audio_encoding_is_invalid_value(server: Server) -> None:
    await rejected_after_ready(server, nest("input.format", {"encoding": "audio/opus"}), "invalid_value")


@pytest.mark.parametrize("value", [1.5, -0.1, "high"])
async def test_vad_threshold_out_of_range_is_invalid_value_with_param(server: Server, value: Any) -> None:
    update = nest("input.turn_detection.vad_threshold", value)
    await rejected_after_ready(server, update, "invalid_value", "input.turn_detection.vad_threshold")


@pytest.mark.parametrize("value", [0.0, 1.0])
async def test_vad_threshold_range_edges_accepted(server: Server, value: float) -> None:
    config = await accepted_after_ready(server, nest("input.turn_detection.vad_threshold", value))
    assert config["input"]["turn_detection"]["vad_threshold"] == value


async def test_max_silence_below_min_silence_is_invalid_config(server: Server) -> None:
    update = {"input": {"turn_detection": {"min_silence": 1000, "max_silence": 500}}}
    await rejected_after_ready(server, update, "invalid_config")


async def test_explicit_silences_are_echoed_exactly(server: Server) -> None:
    config = await accepted_after_ready(
        server, {"input": {"turn_detection": {"min_silence": 1000, "max_silence": 3000}}}
    )
    turn = config["input"]["turn_detection"]
    assert (turn["min_silence"], turn["max_silence"]) == (1000, 3000), turn


async def test_negative_min_silence_is_invalid_value(server: Server) -> None:
    update = nest("input.turn_detection.min_silence", -5)
    await rejected_after_ready(server, update, "invalid_value", "input.turn_detection.min_silence")


@pytest.mark.parametrize("value", [-1, 1001])
async def test_interruption_delay_outside_0_to_1000_is_invalid_value(server: Server, value: int) -> None:
    update = nest("input.turn_detection.interruption_delay", value)
    await rejected_after_ready(server, update, "invalid_value", "input.turn_detection.interruption_delay")


@pytest.mark.parametrize("value", [0, 1000])
async def test_interruption_delay_edges_accepted(server: Server, value: int) -> None:
    config = await accepted_after_ready(server, nest("input.turn_detection.interruption_delay", value))
    assert config["input"]["turn_detection"]["interruption_delay"] == value


@pytest.mark.parametrize("value", ["server_vad", "semantic_vad"])
async def test_turn_detection_type_values_accepted(server: Server, value: str) -> None:
    config = await accepted_after_ready(server, nest("input.turn_detection.type", value))
    assert config["input"]["turn_detection"]["type"] == value


async def test_turn_detection_type_unknown_is_invalid_value(server: Server) -> None:
    update = nest("input.turn_detection.type", "magic_vad")
    await rejected_after_ready(server, update, "invalid_value", "input.turn_detection.type")


async def test_uninterruptible_turns_accepts_contract_names_and_ignores_unknown_ones(server: Server) -> None:
    names = ["greeting", "dtmf_prompt", "tool_refused_ask", "no_such_turn"]
    config = await accepted_after_ready(server, nest("input.turn_detection.uninterruptible_turns", names))
    assert {"greeting", "tool_refused_ask"} <= set(config["input"]["turn_detection"]["uninterruptible_turns"])


@pytest.mark.parametrize("mode", ["balanced", "min_latency", "max_accuracy"])
async def test_transcription_mode_values_accepted(server: Server, mode: str) -> None:
    config = await accepted_after_ready(server, nest("input.transcription_mode", mode))
    assert config["input"]["transcription_mode"] == mode


async def test_transcription_mode_unknown_is_invalid_value(server: Server) -> None:
    update = nest("input.transcription_mode", "fast")
    await rejected_after_ready(server, update, "invalid_value", "input.transcription_mode")


async def test_transcription_prompt_of_1750_characters_accepted(server: Server) -> None:
    config = await accepted_after_ready(server, nest("input.transcription_prompt", "a" * 1750))
    assert config["input"]["transcription_prompt"] == "a" * 1750


async def test_transcription_prompt_over_1750_characters_is_invalid_value(server: Server) -> None:
    update = nest("input.transcription_prompt", "a" * 1751)
    await rejected_after_ready(server, update, "invalid_value", "input.transcription_prompt")


async def test_100_keyterms_accepted(server: Server) -> None:
    terms = [f"term{i}" for i in range(100)]
    config = await accepted_after_ready(server, nest("input.keyterms", terms))
    assert config["input"]["keyterms"] == terms


async def test_more_than_100_keyterms_is_invalid_value(server: Server) -> None:
    update = nest("input.keyterms", [f"term{i}" for i in range(101)])
    await rejected_after_ready(server, update, "invalid_value", "input.keyterms")


async def test_keyterm_over_100_characters_is_invalid_value(server: Server) -> None:
    conn, _ = await session(server.url, API_KEY)
    await conn.send({"type": "session.update", "session": nest("input.keyterms", ["x" * 101])})
    error = await conn.error("invalid_value")
    assert str(error.get("param")).startswith("input.keyterms"), error  # the list, or its item
    await conn.alive()
    await conn.close()


async def test_language_codes_accepted_and_echoed(server: Server) -> None:
    config = await accepted_after_ready(server, nest("input.language_codes", ["en", "es"]))
    assert config["input"]["language_codes"] == ["en", "es"]


async def test_language_code_the_models_cannot_handle_is_not_an_error(server: Server) -> None:
    config = await accepted_after_ready(server, nest("input.language_codes", ["sw"]))
    assert isinstance(config["input"]["language_codes"], list)


@pytest.mark.parametrize("focus", ["near-field", "far-field"])
async def test_voice_focus_values_accepted(server: Server, focus: str) -> None:
    config = await accepted_after_ready(server, {"input": {"voice_focus": focus, "voice_focus_threshold": 0.4}})
    assert config["input"]["voice_focus"] == focus and config["input"]["voice_focus_threshold"] == 0.4


async def test_voice_focus_unknown_is_invalid_value(server: Server) -> None:
    await rejected_after_ready(server, nest("input.voice_focus", "mid-field"), "invalid_value", "input.voice_focus")


async def test_voice_focus_threshold_over_1_is_invalid_value(server: Server) -> None:
    update = nest("input.voice_focus_threshold", 1.5)
    await rejected_after_ready(server, update, "invalid_value", "input.voice_focus_threshold")


async def test_continuous_partials_false_accepted(server: Server) -> None:
    config = await accepted_after_ready(server, nest("input.continuous_partials", False))
    assert config["input"]["continuous_partials"] is False


async def test_input_type_text_accepted(server: Server) -> None:
    config = await accepted_first(server, nest("input.type", "text"))
    assert config["input"]["type"] == "text"


async def test_input_type_unknown_is_invalid_value(server: Server) -> None:
    await rejected_after_ready(server, nest("input.type", "video"), "invalid_value", "input.type")


# ------------------------------------------------------------------ §4.4 output, §11 voices


async def test_unknown_voice_is_invalid_value_with_param_output_voice(server: Server) -> None:
    await rejected_first(server, nest("output.voice", "no-such-voice"), "invalid_value", "output.voice")


@pytest.mark.parametrize("voice", HOSTED_VOICES)
async def test_every_hosted_voice_id_is_accepted(server: Server, voice: str) -> None:
    config = await accepted_first(server, nest("output.voice", voice))
    assert isinstance(config["output"]["voice"], str) and config["output"]["voice"], config["output"]


@pytest.mark.parametrize("voice", ["Anna", "IVY"])
async def test_voice_ids_match_case_insensitively(server: Server, voice: str) -> None:
    await accepted_first(server, nest("output.voice", voice))


@pytest.mark.parametrize("volume", [0, 100])
async def test_volume_edges_accepted(server: Server, volume: int) -> None:
    config = await accepted_after_ready(server, nest("output.volume", volume))
    assert config["output"]["volume"] == volume


@pytest.mark.parametrize("volume", [-1, 101])
async def test_volume_outside_0_to_100_is_invalid_value(server: Server, volume: int) -> None:
    await rejected_after_ready(server, nest("output.volume", volume), "invalid_value", "output.volume")


async def test_output_type_text_accepted(server: Server) -> None:
    config = await accepted_first(server, nest("output.type", "text"))
    assert config["output"]["type"] == "text"


# ------------------------------------------------------------------ §4.5 tools


async def test_tool_defaults_are_filled_in_config_tools(server: Server) -> None:
    bare = {k: v for k, v in WEATHER_TOOL.items() if k in ("name", "description", "parameters")}  # no type
    hold = {**WEATHER_TOOL, "name": "book_flight", "execution_mode": "hold", "timeout_seconds": 30}
    config = await accepted_after_ready(server, {"tools": [bare, hold]})
    first, second = config["tools"]
    assert first["name"] == "get_weather" and first["type"] == "function", first
    assert first["execution_mode"] == "interactive" and first["timeout_seconds"] == 120, first
    assert first["parameters"] == WEATHER_TOOL["parameters"], first
    assert second["execution_mode"] == "hold" and second["timeout_seconds"] == 30, second


async def test_tool_without_description_or_parameters_gets_their_defaults(server: Server) -> None:
    config = await accepted_after_ready(server, {"tools": [{"type": "function", "name": "ping"}]})
    tool = config["tools"][0]
    assert tool["description"] == "" and tool["parameters"] == {"type": "object", "properties": {}}, tool


async def test_openai_chat_form_tool_is_accepted(server: Server) -> None:
    chat_form = {"type": "function", "function": {k: WEATHER_TOOL[k] for k in ("name", "description", "parameters")}}
    config = await accepted_after_ready(server, {"tools": [chat_form]})
    assert config["tools"][0]["name"] == "get_weather", config["tools"]


@pytest.mark.parametrize("timeout", [0, 301])
async def test_tool_timeout_seconds_outside_1_to_300_is_invalid_value(server: Server, timeout: int) -> None:
    await rejected_after_ready(server, {"tools": [{**WEATHER_TOOL, "timeout_seconds": timeout}]}, "invalid_value")


async def test_tool_execution_mode_unknown_is_invalid_value(server: Server) -> None:
    await rejected_after_ready(server, {"tools": [{**WEATHER_TOOL, "execution_mode": "later"}]}, "invalid_value")


async def test_tool_response_instructions_accepted(server: Server) -> None:
    tool = {**WEATHER_TOOL, "response_instructions": {"success": "Be brief.", "error": "Apologise."}}
    await accepted_after_ready(server, {"tools": [tool]})


async def test_tool_named_after_the_builtin_luhn_check_is_accepted(server: Server) -> None:
    config = await accepted_after_ready(server, {"tools": [{"type": "function", "name": "aai_credit_card_luhn_check"}]})
    assert config["tools"][0]["name"] == "aai_credit_card_luhn_check"


# ------------------------------------------------------------------ §4.1 llm, pre_connect_requests, webhook


async def test_llm_field_is_accepted_and_never_echoes_the_key(server: Server) -> None:
    llm = [{"base_url": "http://127.0.0.1:9/v1", "model": "some-model", "api_key": "sk-secret-value"}]
    config = await accepted_after_ready(server, {"llm": llm})
    assert "sk-secret-value" not in repr(config), config["llm"]
    assert isinstance(config["llm"], list)
    for entry in config["llm"]:
        assert "api_key" not in entry, entry


async def test_llm_with_more_than_one_entry_is_invalid_value(server: Server) -> None:
    entry = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}
    await rejected_after_ready(server, {"llm": [entry, entry]}, "invalid_value")


async def test_pre_connect_requests_accepted_on_a_websocket_session(server: Server) -> None:
    request = {
        "url": "http://127.0.0.1:9/context",
        "sends": {"caller": "{{caller_id}}"},
        "returns": [{"name": "customer", "path": "$.name", "default": "there"}],
        "timeout_ms": 800,
        "allow_overrides": ["greeting"],
        "on_failure": "continue",
    }
    config = await accepted_first(server, {"pre_connect_requests": [request]})
    assert isinstance(config["pre_connect_requests"], list), config


async def test_disallowed_llm_model_is_invalid_value(server: Server) -> None:
    await rejected_after_ready(server, {"llm_model": "not-an-allowed-model"}, "invalid_value", "llm_model")


async def test_valid_webhook_is_accepted(server: Server) -> None:
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["session.started", "session.completed"], "secret": "s" * 32}
    await accepted_after_ready(server, {"webhook": hook})


@pytest.mark.parametrize(
    "hook",
    [
        {"url": "ftp://example.com/hook", "events": ["session.completed"], "secret": "s" * 32},
        {"url": "https://example.com/hook", "events": [], "secret": "s" * 32},
        {"url": "https://example.com/hook", "events": ["session.exploded"], "secret": "s" * 32},
        {"url": "https://example.com/hook", "events": ["session.completed"], "secret": "short"},
    ],
    ids=["not-http", "no-events", "unknown-event", "short-secret"],
)
async def test_invalid_webhook_is_invalid_webhook(server: Server, hook: dict[str, Any]) -> None:
    await rejected_after_ready(server, {"webhook": hook}, "invalid_webhook")
