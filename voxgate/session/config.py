"""A session's live configuration, the rules for changing it, and the resolved `config` the client is shown.

Updates merge as the hosted API's do: objects (`input`, `turn_detection`, `output`, …) key by key with
what is set, lists (`tools`, `keyterms`, `language_codes`) replace, and a `null` counts as not sent.
`greeting`, `output.voice`, `output.format` and `output.type` are fixed by the first update; the same
value again is accepted. The whole update is validated before anything is applied, so a refused update
changes nothing, and the error names the field (`param`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from voxgate.backends.base import ToolSpec
from voxgate.protocol.events import (
    WEBHOOK_EVENTS,
    ErrorCode,
    InputConfig,
    LlmEndpoint,
    OutputConfig,
    SessionConfig,
    Tool,
    TurnDetection,
    Webhook,
)
from voxgate.session.builtin_tools import builtin_tool
from voxgate.session.turn_timing import TurnTiming

MIN_WEBHOOK_SECRET = 32
IMMUTABLE_OUTPUT = ("voice", "format", "type")


class ConfigError(Exception):
    def __init__(self, code: ErrorCode, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


@dataclass(frozen=True)
class LiveConfig:
    system_prompt: str
    greeting: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_settings: tuple[Tool, ...] = ()
    turn: TurnDetection = field(default_factory=TurnDetection)
    keyterms: tuple[str, ...] = ()
    language: str | None = "en"  # the one recognition and reply language; None = detect
    language_codes: tuple[str, ...] = ()
    input_type: str = "audio"
    input_encoding: str = "audio/pcm"
    transcription_mode: str = "balanced"
    transcription_prompt: str | None = None
    voice_focus: str = "near-field"
    voice_focus_threshold: float = 0.7
    continuous_partials: bool = True
    output_type: str = "audio"
    output_encoding: str = "audio/pcm"
    voice: str | None = None  # as requested by the client; None = server default
    volume: float = 100.0
    llm: tuple[LlmEndpoint, ...] = ()
    llm_model: str | None = None  # as picked by the client; None = server default
    webhook: Webhook | None = None
    pre_connect_requests: tuple[dict[str, Any], ...] = ()
    applied_once: bool = False
    sent: dict[str, Any] = field(default_factory=dict)  # everything the client set, merged
    server_prompt: str | None = None  # the operator's prompt and language, for what the client leaves unset
    server_language: str | None = "en"
    default_voice: str = ""  # the server's voice, which a client may name again once the session started
    turn_latency: bool = False  # [Voxgate] `voxgate.turn.latency` after each spoken turn (voxgate.turn_latency)

    @property
    def timing(self) -> TurnTiming:
        return TurnTiming.of(
            self.turn, far_field=self.voice_focus == "far-field", focus_threshold=self.voice_focus_threshold
        )

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tool_settings if t.name == name), None)


def merge(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; anything else (lists, scalars) replaces."""
    merged = dict(current)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def sent_fields(update: SessionConfig) -> dict[str, Any]:
    """What the client set in `update`, as JSON (a `null` counts as not sent)."""
    return update.model_dump(exclude_unset=True, exclude_none=True, mode="json")


#: The languages the recognizer knows (Whisper's codes): what `input.language` may name.
RECOGNIZED_LANGUAGES = frozenset(
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi hr ht hu "
    "hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no oc pa pl ps pt ro "
    "ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo zh yue".split()
)


def apply_update(
    current: LiveConfig,
    update: SessionConfig,
    fields_set: set[str] | None,
    known_voice: object,
    allowed_model: Callable[[str], None] | None = None,
    *,
    session_llm_allowed: bool = False,
) -> LiveConfig:
    """Return the configuration after `update`; raise ConfigError and change nothing if it is refused.

    `known_voice(voice_id)` raises ValueError for an unknown voice, `allowed_model(name)` for an LLM the
    operator does not let sessions pick (no checker: none may be picked). `fields_set` is kept for
    callers of the older form; what was sent is read from the model itself.
    """
    raw = sent_fields(update)
    raw.pop("agent_id", None)  # bound by the caller (stored agents), never merged
    if current.applied_once:
        _check_immutable(current, raw)
    merged = merge(current.sent, raw)
    try:
        model = SessionConfig.model_validate(merged)
    except ValidationError as exc:  # a cross-field rule over the merged whole
        raise ConfigError(ErrorCode.INVALID_CONFIG, str(exc.errors()[0]["msg"])) from None
    turn = (model.input.turn_detection if model.input else None) or TurnDetection()
    if turn.min_silence is not None and turn.max_silence is not None and turn.max_silence < turn.min_silence:
        raise ConfigError(
            ErrorCode.INVALID_CONFIG, "max_silence must be >= min_silence", "input.turn_detection.max_silence"
        )
    output = model.output or OutputConfig()
    if "voice" in raw.get("output", {}) and output.voice is not None:
        try:
            known_voice(output.voice)  # type: ignore[operator]
        except ValueError as exc:
            raise ConfigError(ErrorCode.INVALID_VALUE, str(exc), "output.voice") from None
    if "llm_model" in raw and model.llm_model is not None:
        try:
            if allowed_model is None:
                raise ValueError("this server does not let sessions choose the LLM")
            allowed_model(model.llm_model)
        except ValueError as exc:
            raise ConfigError(ErrorCode.INVALID_VALUE, str(exc), "llm_model") from None
    if model.webhook is not None:
        _check_webhook(model.webhook)
    inp = model.input or InputConfig()
    if "language" in raw.get("input", {}):
        _check_language(inp.language)
    fmt_in = inp.format
    fmt_out = output.format
    server_prompt = current.server_prompt if current.applied_once else current.system_prompt
    server_language = current.server_language if current.applied_once else current.language
    codes = tuple(code.lower() for code in inp.language_codes or ())
    tools = tuple(_with_builtin(t) for t in model.tools or ())
    return replace(
        current,
        system_prompt=model.system_prompt if model.system_prompt is not None else (server_prompt or ""),
        greeting=model.greeting if model.greeting else None,
        tools=tuple(ToolSpec(t.name, t.description, t.parameters) for t in tools),
        tool_settings=tools,
        turn=turn,
        keyterms=tuple(dict.fromkeys(k.strip() for k in inp.keyterms or () if k.strip())),
        language=_language(codes, inp.language, server_language),
        language_codes=codes,
        input_type=inp.type or "audio",
        input_encoding=fmt_in.encoding if fmt_in else "audio/pcm",
        transcription_mode=inp.transcription_mode or "balanced",
        transcription_prompt=inp.transcription_prompt or None,
        voice_focus=inp.voice_focus or "near-field",
        voice_focus_threshold=inp.voice_focus_threshold if inp.voice_focus_threshold is not None else 0.7,
        continuous_partials=inp.continuous_partials if inp.continuous_partials is not None else True,
        output_type=output.type or "audio",
        output_encoding=fmt_out.encoding if fmt_out else "audio/pcm",
        voice=output.voice,
        volume=output.volume if output.volume is not None else 100.0,
        llm=tuple(model.llm or ()) if session_llm_allowed else (),
        llm_model=model.llm_model,
        webhook=model.webhook,
        pre_connect_requests=tuple(model.pre_connect_requests or ()),
        applied_once=True,
        sent=merged,
        server_prompt=server_prompt,
        server_language=server_language,
        turn_latency=bool(model.voxgate is not None and model.voxgate.turn_latency),
    )


def _with_builtin(tool: Tool) -> Tool:
    """A platform tool named with no description takes Voxgate's definition of it (§4.5)."""
    known = builtin_tool(tool.name)
    if known is None or tool.description:
        return tool
    return tool.model_copy(update={"description": known.description, "parameters": dict(known.parameters)})


def _language(codes: tuple[str, ...], single: str | None, server: str | None) -> str | None:
    """One code: that language; several: detect among them (None); none: the older field, else the server's.

    One code the recognizer does not know is detection, never an error (shared/protocol.md §4.2): passed
    on, it made Whisper raise on every turn (L7)."""
    if codes:
        primary = codes[0].split("-")[0]
        return primary if len(codes) == 1 and primary in RECOGNIZED_LANGUAGES else None
    if single is not None:
        return None if single.lower() == "auto" else single.lower().replace("_", "-").split("-")[0]
    return server


def _check_language(language: str | None) -> None:
    """`input.language` (Voxgate's older field) is `auto` or a language the recognizer knows, with an
    optional region (`en-US`); anything else is refused as invalid_value, not found out by the first
    turn's decode (L7: `"xx"` was accepted, then Whisper raised on every turn)."""
    if language is None or language.lower() == "auto":
        return
    primary = language.lower().replace("_", "-").split("-")[0]
    if len(language) <= 16 and primary in RECOGNIZED_LANGUAGES:
        return
    shown = language if len(language) <= 16 else language[:16] + "..."
    raise ConfigError(
        ErrorCode.INVALID_VALUE, f"unknown input.language {shown!r}: an ISO 639-1 code or 'auto'", "input.language"
    )


def _check_immutable(current: LiveConfig, raw: dict[str, Any]) -> None:
    if "greeting" in raw and (raw["greeting"] or None) != current.greeting:
        raise ConfigError(ErrorCode.IMMUTABLE_FIELD, "greeting cannot change after the session started", "greeting")
    output = raw.get("output", {})
    before = current.sent.get("output", {})
    for key in IMMUTABLE_OUTPUT:
        if key not in output:
            continue
        new, old = output[key], before.get(key)
        if key == "voice":
            same = str(new).lower() == str(old or current.default_voice).lower()
        elif key == "format":
            old_encoding = (old or {}).get("encoding", "audio/pcm")
            same = isinstance(new, dict) and new.get("encoding", old_encoding) == old_encoding
        else:
            same = new == (old or "audio")
        if not same:
            raise ConfigError(
                ErrorCode.IMMUTABLE_FIELD, f"output.{key} cannot change after the session started", f"output.{key}"
            )


def _check_webhook(hook: Webhook) -> None:
    if not hook.url.startswith(("http://", "https://")):
        raise ConfigError(ErrorCode.INVALID_WEBHOOK, "webhook.url must be an http(s) URL", "webhook.url")
    if not hook.events or any(e not in WEBHOOK_EVENTS for e in hook.events):
        raise ConfigError(
            ErrorCode.INVALID_WEBHOOK, f"webhook.events must be drawn from {sorted(WEBHOOK_EVENTS)}", "webhook.events"
        )
    if hook.secret is not None and len(hook.secret) < MIN_WEBHOOK_SECRET:
        raise ConfigError(
            ErrorCode.INVALID_WEBHOOK,
            f"webhook.secret must be at least {MIN_WEBHOOK_SECRET} characters",
            "webhook.secret",
        )


def resolved(config: LiveConfig, *, default_voice: str, agent_id: str = "") -> dict[str, Any]:
    """The `config` of session.ready / session.updated: every key present, `null` where unset."""
    turn = config.turn
    encoding_in = config.input_encoding
    out: dict[str, Any] = {
        "id": agent_id,
        "system_prompt": config.system_prompt,
        "greeting": config.greeting,
        "input": {
            "type": config.input_type,
            "format": {"encoding": encoding_in, "sample_rate": 24000 if encoding_in == "audio/pcm" else None},
            "keyterms": list(config.keyterms),
            "turn_detection": {
                "vad_threshold": turn.vad_threshold,
                "min_silence": turn.min_silence,
                "max_silence": turn.max_silence,
                "interrupt_response": turn.interrupt_response,
                "interruption_delay": turn.interruption_delay,
                "type": turn.type,
                "uninterruptible_turns": list(turn.uninterruptible_turns),
            },
            "language_codes": _language_codes(config),
            "transcription_mode": config.transcription_mode,
            "transcription_prompt": config.transcription_prompt,
            "voice_focus": config.voice_focus,
            "voice_focus_threshold": config.voice_focus_threshold,
            "continuous_partials": config.continuous_partials,
        },
        "output": {
            "type": config.output_type,
            "voice": config.voice or default_voice,
            "format": {
                "encoding": config.output_encoding,
                "sample_rate": 24000 if config.output_encoding == "audio/pcm" else None,
            },
            "volume": int(config.volume) if float(config.volume).is_integer() else config.volume,
        },
        "tools": [_tool_json(t) for t in config.tool_settings],
        "llm": [{"base_url": e["base_url"], "model": e["model"]} for e in config.sent.get("llm", [])],
        "pre_connect_requests": list(config.pre_connect_requests),
    }
    if "language" in _sent_input(config):
        out["input"]["language"] = config.language or "auto"
    if config.llm_model is not None:
        out["llm_model"] = config.llm_model
    if config.webhook is not None:  # the secret is write-only
        out["webhook"] = {"url": config.webhook.url, "events": list(config.webhook.events)}
    ignored = _not_honoured(config)
    if not agent_id and any(t.http for t in config.tool_settings):
        ignored.append("tools.http")  # inline: the client runs it; the server runs a stored agent's http tools
    extensions: dict[str, Any] = {}
    if isinstance(config.sent.get("voxgate"), dict) and "turn_latency" in config.sent["voxgate"]:
        extensions["turn_latency"] = config.turn_latency  # [Voxgate] fields appear only if the client set them
    if ignored:
        extensions["not_honoured"] = ignored
    if extensions:
        out["voxgate"] = extensions
    return out


def _language_codes(config: LiveConfig) -> list[str]:
    if config.language_codes:
        return list(config.language_codes)
    return [config.language] if config.language else []


def _sent_input(config: LiveConfig) -> dict[str, Any]:
    value = config.sent.get("input", {})
    return value if isinstance(value, dict) else {}


def _not_honoured(config: LiveConfig) -> list[str]:
    """The settings this client set that change nothing here, so the echo says so instead of hiding it."""
    names = []
    if config.pre_connect_requests:
        names.append("pre_connect_requests")
    if any(t.dtmf_collected_arguments for t in config.tool_settings):
        names.append("tools.dtmf_collected_arguments")
    if config.sent.get("llm") and not config.llm:
        names.append("llm")  # the operator does not let sessions bring their own LLM
    turns = set(config.turn.uninterruptible_turns) - {"greeting"}
    if turns:
        names.append("input.turn_detection.uninterruptible_turns: " + ", ".join(sorted(turns)))
    return names


def _tool_json(tool: Tool) -> dict[str, Any]:
    http = None
    if tool.http is not None:
        http = {
            "url": tool.http.get("url"),
            "method": tool.http.get("http_method") or tool.http.get("method") or "POST",
            "headers_ciphertext": "",
            "headers_encrypted_data_key": "",
            "headers_kms_key_id": "",
        }
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "execution_mode": tool.execution_mode,
        "timeout_seconds": tool.timeout_seconds,
        "response_instructions": tool.response_instructions.model_dump() if tool.response_instructions else None,
        "http": http,
    }
