"""Stored agents (§9): the request bodies, their validation, and how a create or an update becomes
the full stored record (base.py describes it).

The rules are the socket's where the fields are the socket's: tools go through the protocol's `Tool`
(the same shapes and ranges as `session.update`), `input` and `output` through its `InputConfig`
and `OutputConfig`, `llm` through `LlmEndpoint`, and a webhook through the checks of
`invalid_webhook`. What only a stored agent has is checked here:

- `voice` is `{"voice_id": ...}` or a bare string, and must be a voice this server resolves.
- An `http` tool block is `{url, http_method, headers: [{name, value?, remove?}]}`. A header with a
  `value` sets or rotates it (`last_set_at` is now), one with only a `name` keeps the value stored
  under that name (in the same tool), and `remove: true` drops it. The list is the tool's new header
  list, so an unlisted header goes too; an `http` block without `headers` keeps the stored ones. A
  value of `"***"` (the mask a read returns) counts as no value, so a read-modify-write keeps it.
- Each tool gets `id` `tool_` + 32 hex, kept while an updated tool list has a tool of that name.
- `llm[].api_key` is write-only too: an entry without one keeps the key stored for the same
  `base_url`. A webhook's `secret` likewise (`"***"` or left out keeps it).

Updates (PUT) merge field by field: a field left out is kept, objects (`input`, `output`,
`webhook`) merge key by key, and lists replace. `null` resets a field to its default (none, `{}` or
`[]`), and inside an object removes the key (JSON merge patch); `name`, `system_prompt` and `voice`
cannot be reset.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from voxgate.protocol.events import (
    WEBHOOK_EVENTS,
    InputConfig,
    LlmEndpoint,
    OutputConfig,
    Tool,
    TurnDetection,
    Webhook,
    new_id,
)
from voxgate.store.records import MASK

AGENT_PREFIX = "agent_"
TOOL_PREFIX = "tool_"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MIN_WEBHOOK_SECRET = 32  # as on the socket (invalid_webhook)
_HTTP_URL = re.compile(r"^https?://[^\s/]+")
_HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"  # an RFC 9110 token


class AgentInvalid(ValueError):
    """A create or update refused. `errors`: FastAPI-style `{type, loc, msg}`, `loc` within the body."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors))
        self.errors = errors


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class VoiceRef(_Lenient):
    voice_id: Annotated[str, Field(min_length=1, max_length=128)]


class HeaderIn(_Lenient):
    name: Annotated[str, Field(min_length=1, max_length=256, pattern=_HEADER_NAME)]
    value: Annotated[str, Field(max_length=8192, pattern=r"^[^\r\n\x00]*$")] | None = None
    remove: bool = False


class HttpIn(_Lenient):
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    http_method: str = "POST"
    headers: Annotated[list[HeaderIn], Field(max_length=50)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _method_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "http_method" not in data and "method" in data:
            return {**data, "http_method": data["method"]}
        return data

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not _HTTP_URL.match(value):
            raise ValueError("url must be an http:// or https:// URL")
        return value

    @field_validator("http_method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value.upper() not in HTTP_METHODS:
            raise ValueError(f"http_method must be one of {', '.join(HTTP_METHODS)}")
        return value.upper()


Name = Annotated[str, Field(min_length=1, max_length=256)]
Prompt = Annotated[str, Field(min_length=1, max_length=100_000)]


class AgentUpdate(_Lenient):
    """The body of `PUT /v1/agents/{id}`: any subset of the create fields."""

    name: Name | None = None
    system_prompt: Prompt | None = None
    greeting: str | None = None
    voice: Annotated[str, Field(min_length=1, max_length=128)] | VoiceRef | None = None
    input: InputConfig | None = None
    output: OutputConfig | None = None
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    llm: Annotated[list[LlmEndpoint], Field(max_length=1)] | None = None
    pre_connect_requests: Annotated[list[dict[str, Any]], Field(max_length=2)] | None = None
    transfer_targets: list[Any] | None = None
    outbound_trunk_id: str | None = None
    caller_id: str | None = None
    webhook: dict[str, Any] | None = None  # checked whole after the merge: an update may send part of it


class AgentCreate(AgentUpdate):
    """The body of `POST /v1/agents`: `name`, `system_prompt` and `voice` are required."""

    name: Name
    system_prompt: Prompt
    voice: Annotated[str, Field(min_length=1, max_length=128)] | VoiceRef


def voice_id_of(voice: str | VoiceRef) -> str:
    return voice if isinstance(voice, str) else voice.voice_id


def merge_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7396): objects merge key by key, `null` removes, anything else replaces."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _errors(exc: ValidationError, *prefix: str | int) -> list[dict[str, Any]]:
    return [{"type": e["type"], "loc": [*prefix, *e["loc"]], "msg": e["msg"]} for e in exc.errors()]


def _error(msg: str, *loc: str | int, kind: str = "value_error") -> dict[str, Any]:
    return {"type": kind, "loc": list(loc), "msg": msg}


def build_agent(
    owner: str,
    body: AgentUpdate,
    *,
    now: float,
    check_voice: Callable[[str], object],
    current: Mapping[str, Any] | None = None,
    replace: bool = False,
) -> dict[str, Any]:
    """The full stored agent after `body`: a new one (`current` None), `current` updated (PUT), or
    `current` replaced by `body` whole (`replace`: an agent file imported again), keeping its id,
    creation time, tool ids and write-only values. Raises AgentInvalid and returns nothing partial.

    `check_voice(voice_id)` raises ValueError for a voice this server does not have.
    """
    previous = current or {}
    if current is None or replace:
        agent: dict[str, Any] = {
            "id": previous.get("id") or new_id(AGENT_PREFIX),
            "owner": owner,
            "name": "",
            "system_prompt": "",
            "greeting": None,
            "voice": {"voice_id": ""},
            "input": {},
            "output": {},
            "tools": [],
            "llm": [],
            "pre_connect_requests": [],
            "transfer_targets": [],
            "outbound_trunk_id": None,
            "caller_id": None,
            "webhook": None,
            "created_at": previous.get("created_at", now),
            "updated_at": now,
        }
    else:
        agent = copy.deepcopy(dict(current))
    sent = body.model_dump(mode="json", exclude_unset=True)
    errors: list[dict[str, Any]] = []

    for key in ("name", "system_prompt"):
        if key in sent:
            if sent[key] is None:
                errors.append(_error(f"{key} cannot be null", key))
            else:
                agent[key] = sent[key]
    for key in ("greeting", "outbound_trunk_id", "caller_id"):
        if key in sent:
            agent[key] = sent[key]
    for key in ("pre_connect_requests", "transfer_targets"):
        if key in sent:
            agent[key] = sent[key] or []

    voice_sent = "voice" in sent
    if voice_sent and body.voice is None:
        errors.append(_error("voice cannot be null", "voice"))
    elif body.voice is not None:
        agent["voice"] = {"voice_id": voice_id_of(body.voice)}

    for key, model in (("input", InputConfig), ("output", OutputConfig)):
        if key not in sent:
            continue
        merged = merge_patch(agent.get(key) or {}, sent[key]) if sent[key] is not None else {}
        if key == "output" and "voice" in merged:  # a session's output.voice: the agent's is top-level
            moved = merged.pop("voice")
            if not voice_sent and isinstance(moved, str) and moved:
                agent["voice"] = {"voice_id": moved}
                voice_sent = True
        try:
            agent[key] = model.model_validate(merged).model_dump(mode="json", exclude_unset=True, exclude_none=True)
        except ValidationError as exc:
            errors.extend(_errors(exc, key))
    if "input" in sent:
        turn = TurnDetection.model_validate((agent.get("input") or {}).get("turn_detection") or {})
        if turn.min_silence is not None and turn.max_silence is not None and turn.max_silence < turn.min_silence:
            errors.append(_error("max_silence must be >= min_silence", "input", "turn_detection", "max_silence"))

    if voice_sent and agent["voice"]["voice_id"]:
        try:
            check_voice(agent["voice"]["voice_id"])
        except ValueError as exc:
            errors.append(_error(str(exc), "voice"))

    if "tools" in sent:
        agent["tools"] = _tools(body.tools or [], previous.get("tools") or [], now, errors)
    if "llm" in sent:
        agent["llm"] = _llm(body.llm or [], previous.get("llm") or [])
    if "webhook" in sent:
        agent["webhook"] = _webhook(sent["webhook"], agent.get("webhook"), previous.get("webhook"), errors)

    if errors:
        raise AgentInvalid(errors)
    agent["owner"] = owner
    agent["updated_at"] = now
    return agent


def _tools(tools: list[Tool], old_tools: list[dict[str, Any]], now: float, errors: list[dict[str, Any]]) -> list[Any]:
    old_by_name = {t["name"]: t for t in old_tools}
    seen: set[str] = set()
    stored = []
    for i, tool in enumerate(tools):
        if tool.name in seen:
            errors.append(_error(f"tool names must be unique: {tool.name!r} is repeated", "tools", i, "name"))
            continue
        seen.add(tool.name)
        old = old_by_name.get(tool.name)
        entry: dict[str, Any] = {
            "id": old["id"] if old else new_id(TOOL_PREFIX),
            "type": "function",
            **tool.model_dump(mode="json", exclude={"http"}),
            "http": None,
        }
        if tool.http is not None:
            try:
                spec = HttpIn.model_validate(tool.http)
            except ValidationError as exc:
                errors.extend(_errors(exc, "tools", i, "http"))
                continue
            entry["http"] = _http(spec, (old or {}).get("http"), now, errors, ("tools", i, "http"))
        stored.append(entry)
    return stored


def _http(
    spec: HttpIn, old_http: Mapping[str, Any] | None, now: float, errors: list[dict[str, Any]], loc: tuple[Any, ...]
) -> dict[str, Any]:
    old_headers = {h["name"].lower(): h for h in (old_http or {}).get("headers", ())}
    if spec.headers is None:
        headers = [dict(h) for h in old_headers.values()]
    else:
        headers = []
        seen: set[str] = set()
        for j, header in enumerate(spec.headers):
            key = header.name.lower()
            if key in seen:
                errors.append(_error(f"header {header.name!r} is repeated", *loc, "headers", j, "name"))
                continue
            seen.add(key)
            if header.remove:
                continue
            if header.value is not None and header.value != MASK:
                headers.append({"name": header.name, "value": header.value, "last_set_at": now})
            elif key in old_headers:
                old = old_headers[key]
                headers.append({"name": header.name, "value": old["value"], "last_set_at": old["last_set_at"]})
            else:
                errors.append(
                    _error(f"header {header.name!r} has no stored value: send its value", *loc, "headers", j, "value")
                )
    return {"url": spec.url, "http_method": spec.http_method, "headers": headers}


def _llm(entries: Iterable[LlmEndpoint], old: list[dict[str, Any]]) -> list[dict[str, Any]]:
    old_keys = {e["base_url"]: e.get("api_key") for e in old}
    stored = []
    for entry in entries:
        key = entry.api_key
        if key is None or key == MASK:
            key = old_keys.get(entry.base_url)
        stored.append({"base_url": entry.base_url, "model": entry.model, "api_key": key or None})
    return stored


def _webhook(
    sent: dict[str, Any] | None,
    current: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None,
    errors: list[dict[str, Any]],
) -> dict[str, Any] | None:
    if sent is None:
        return None
    merged = merge_patch(current or {}, sent)
    if merged.get("secret") == MASK:
        old_secret = (previous or {}).get("secret")
        if old_secret:
            merged["secret"] = old_secret
        else:
            merged.pop("secret")
    try:
        hook = Webhook.model_validate(merged)
    except ValidationError as exc:
        errors.extend(_errors(exc, "webhook"))
        return None
    if not hook.url.startswith(("http://", "https://")):
        errors.append(_error("webhook.url must be an http(s) URL", "webhook", "url"))
    if not hook.events or any(e not in WEBHOOK_EVENTS for e in hook.events):
        errors.append(_error(f"webhook.events must be drawn from {sorted(WEBHOOK_EVENTS)}", "webhook", "events"))
    if hook.secret is not None and len(hook.secret) < MIN_WEBHOOK_SECRET:
        errors.append(_error(f"webhook.secret must be at least {MIN_WEBHOOK_SECRET} characters", "webhook", "secret"))
    return {"url": hook.url, "events": list(hook.events), "secret": hook.secret}


# ---------------------------------------------------------------- agent files


def body_from_agent_file(config: Any, *, default_voice: str) -> dict[str, Any]:
    """An agent file (voxgate.agents.AgentConfig) as the body of `POST /v1/agents`.

    The prompt and greeting get the file's default `variables` filled in (a stored agent has no
    per-call variables); each tool's `webhook` becomes an `http` block (POST, no headers) and its
    `timeout_s` the tool's `timeout_seconds`; turn detection, keyterms and language go under `input`.
    A file without a voice gets `default_voice`. The description has no stored-agent field.
    """
    from voxgate.agents import AgentConfig, fill

    assert isinstance(config, AgentConfig)
    variables = dict(config.variables)
    tools = []
    for tool in config.tools:
        entry: dict[str, Any] = {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            "timeout_seconds": max(1, min(300, math.ceil(tool.timeout_s))),
        }
        if tool.webhook:
            entry["http"] = {"url": tool.webhook, "http_method": "POST", "headers": []}
        tools.append(entry)
    input_config: dict[str, Any] = {}
    if config.turn_detection is not None:
        input_config["turn_detection"] = config.turn_detection.model_dump(mode="json", exclude_unset=True)
    if config.keyterms:
        input_config["keyterms"] = list(config.keyterms)
    if config.language:
        input_config["language"] = config.language
    return {
        "name": config.name,
        "system_prompt": fill(config.system_prompt, variables),
        "greeting": fill(config.greeting, variables) if config.greeting else None,
        "voice": {"voice_id": config.voice or default_voice},
        "tools": tools,
        "input": input_config,
    }
