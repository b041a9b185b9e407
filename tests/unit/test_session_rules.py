import time

import pytest

from voxgate.protocol.events import ErrorCode, SessionConfig, Tool, client_event_adapter
from voxgate.server.auth import Authenticator, AuthError, Scope
from voxgate.session.config import ConfigError, LiveConfig, apply_update
from voxgate.session.store import ResumeError, SessionStore


def known(voice: str) -> None:
    if voice not in {"joe", "ivy"}:
        raise ValueError(f"unknown voice {voice!r}")


def update(cfg: LiveConfig, session: dict) -> LiveConfig:
    return apply_update(cfg, SessionConfig.model_validate(session), set(session), known)


def test_first_update_sets_everything_and_later_ones_only_live_fields() -> None:
    cfg = update(
        LiveConfig(system_prompt="x"),
        {"greeting": "hi", "output": {"voice": "ivy", "format": {"encoding": "audio/pcmu"}}},
    )
    assert (cfg.greeting, cfg.voice, cfg.output_encoding) == ("hi", "ivy", "audio/pcmu")
    cfg = update(
        cfg,
        {
            "system_prompt": "y",
            "input": {"keyterms": ["Ozempic", " Ozempic"], "turn_detection": {"min_silence": 300}},
        },
    )
    assert cfg.system_prompt == "y" and cfg.keyterms == ("Ozempic",) and cfg.turn.min_silence == 300
    cfg = update(cfg, {"greeting": "hi", "output": {"voice": "ivy"}})  # unchanged values are not a change
    for change in (
        {"greeting": "bye"},
        {"output": {"voice": "joe"}},
        {"output": {"format": {"encoding": "audio/pcm"}}},
    ):
        with pytest.raises(ConfigError) as err:
            update(cfg, change)
        assert err.value.code == ErrorCode.IMMUTABLE_FIELD


def test_unknown_voice_is_invalid_value_and_changes_nothing() -> None:
    cfg = LiveConfig(system_prompt="x")
    with pytest.raises(ConfigError) as err:
        update(cfg, {"system_prompt": "changed", "output": {"voice": "nobody"}})
    assert err.value.code == ErrorCode.INVALID_VALUE and cfg.system_prompt == "x"


def test_tool_shapes_are_all_accepted() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    for shape in (
        {"name": "get_weather", "description": "d", "parameters": schema},
        {"type": "function", "name": "get_weather", "description": "d", "parameters": schema},
        {"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": schema}},
    ):
        assert Tool.model_validate(shape).name == "get_weather"


def test_client_events_parse_and_reject() -> None:
    event = client_event_adapter.validate_python({"type": "tool.result", "call_id": "c1", "result": {"a": 1}})
    assert event.result == '{"a": 1}'
    with pytest.raises(ValueError):
        client_event_adapter.validate_python(
            {"type": "session.update", "session": {"input": {"turn_detection": {"vad_threshold": 2}}}}
        )
    # Silences out of order are a rule over the merged configuration (an update may send only one of
    # them), so the event parses and the update as a whole is refused: invalid_config (contract §7.1).
    inverted = {"input": {"turn_detection": {"min_silence": 900, "max_silence": 500}}}
    client_event_adapter.validate_python({"type": "session.update", "session": inverted})
    with pytest.raises(ConfigError) as err:
        update(LiveConfig(system_prompt="x"), inverted)
    assert err.value.code == ErrorCode.INVALID_CONFIG and err.value.param == "input.turn_detection.max_silence"
    cfg = update(LiveConfig(system_prompt="x"), {"input": {"turn_detection": {"min_silence": 900}}})
    with pytest.raises(ConfigError) as err:  # merged key by key with the min_silence already set
        update(cfg, {"input": {"turn_detection": {"max_silence": 500}}})
    assert err.value.code == ErrorCode.INVALID_CONFIG and cfg.turn.max_silence is None


def test_store_resume_window_and_owner() -> None:
    store: SessionStore[str] = SessionStore(resume_window_s=0.2)
    store.add("s1", "conv", owner="a")
    store.detach("s1")
    with pytest.raises(ResumeError) as err:
        store.claim("s1", owner="b")
    assert err.value.code == ErrorCode.SESSION_FORBIDDEN
    assert store.claim("s1", owner="a") == "conv"
    store.detach("s1")
    time.sleep(0.3)
    with pytest.raises(ResumeError) as err:
        store.claim("s1", owner="a")
    assert err.value.code == ErrorCode.SESSION_NOT_FOUND  # past the window: as unknown, as the hosted API says
    with pytest.raises(ResumeError) as err:
        store.claim("nope", owner="a")
    assert err.value.code == ErrorCode.SESSION_NOT_FOUND


async def test_tokens_are_single_use_and_scoped() -> None:
    auth = Authenticator(["full", "minter:tokens", "talker:sessions"])
    with pytest.raises(AuthError):
        auth.check_key("wrong")
    with pytest.raises(AuthError) as err:
        await auth.mint_token(auth.check_key("talker"), 60)
    assert err.value.code == "FORBIDDEN"
    token = await auth.mint_token(auth.check_key("minter"), 60)
    principal = await auth.redeem_token(token)
    assert principal.scopes == frozenset({Scope.SESSIONS}) and principal.owner == auth.check_key("minter").owner
    with pytest.raises(AuthError):
        await auth.redeem_token(token)
    assert Authenticator([]).check_key(None).owner == "anonymous"


def test_a_session_may_pick_only_an_allowed_llm() -> None:
    def allowed(model: str) -> None:
        if model not in {"qwen2.5-coder-1.5b", "smollm2-135m"}:
            raise ValueError(f"model {model!r} is not allowed")

    cfg = LiveConfig(system_prompt="x")
    picked = apply_update(
        cfg, SessionConfig.model_validate({"llm_model": "smollm2-135m"}), {"llm_model"}, known, allowed
    )
    assert picked.llm_model == "smollm2-135m"
    for checker in (allowed, None):
        with pytest.raises(ConfigError) as err:
            apply_update(picked, SessionConfig.model_validate({"llm_model": "gpt-9"}), {"llm_model"}, known, checker)
        assert err.value.code == ErrorCode.INVALID_VALUE


def test_the_registry_checks_and_builds_the_models_sessions_pick() -> None:
    from voxgate.backends.registry import Models
    from voxgate.config import Settings

    models = Models(Settings(llm_allowed_models="smollm2-135m"))
    models.check_llm_model("qwen2.5-coder-1.5b")
    with pytest.raises(ValueError, match="allowed"):
        models.check_llm_model("gpt-9")
    small = models.llm_for("smollm2-135m")
    assert small.name == "smollm2-135m" and models.llm_for("smollm2-135m") is small
