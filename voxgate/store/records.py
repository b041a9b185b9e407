"""Stored records as the REST API shows them (§9, §10.1): the one place the public JSON shapes live.

Secrets never leave through here: header values read `"***"`, `llm[].api_key` is dropped and a
webhook's secret reads `"***"` when one is set. Times become ISO 8601 in UTC, written as the session
webhooks write them (`2026-10-02T09:30:00.123456Z`), so a webhook's `data` and `GET /v1/sessions`
agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from voxgate.store.base import Page

#: What a write-only value reads as.
MASK = "***"


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- agents


def agent_json(agent: Mapping[str, Any]) -> dict[str, Any]:
    """The agent record of `GET /v1/agents/{id}` (and of POST and PUT)."""
    hook = agent.get("webhook")
    return {
        "id": agent["id"],
        "name": agent["name"],
        "system_prompt": agent["system_prompt"],
        "greeting": agent.get("greeting"),
        "voice": dict(agent["voice"]),
        "input": agent.get("input") or {},
        "output": agent.get("output") or {},
        "tools": [tool_json(t) for t in agent.get("tools") or ()],
        "pre_connect_requests": list(agent.get("pre_connect_requests") or ()),
        "transfer_targets": list(agent.get("transfer_targets") or ()),
        "outbound_trunk_id": agent.get("outbound_trunk_id"),
        "caller_id": agent.get("caller_id"),
        "llm": [{"base_url": e["base_url"], "model": e["model"]} for e in agent.get("llm") or ()],
        "webhook": None
        if hook is None
        else {"url": hook["url"], "events": list(hook["events"]), "secret": MASK if hook.get("secret") else None},
        "created_at": iso(agent["created_at"]),
        "updated_at": iso(agent["updated_at"]),
    }


def tool_json(tool: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in tool.items() if k != "http"}
    http = tool.get("http")
    out["http"] = (
        None
        if http is None
        else {
            "url": http["url"],
            "http_method": http["http_method"],
            "headers": [
                {"name": h["name"], "value": MASK, "last_set_at": iso(h["last_set_at"])} for h in http["headers"]
            ],
        }
    )
    return out


def agent_summary(agent: Mapping[str, Any]) -> dict[str, Any]:
    """An agent as `GET /v1/agents` lists it."""
    return {
        "id": agent["id"],
        "name": agent["name"],
        "created_at": iso(agent["created_at"]),
        "updated_at": iso(agent["updated_at"]),
    }


def agent_session_config(agent: Mapping[str, Any]) -> dict[str, Any]:
    """The stored agent as the `session` of a `session.update` (§4.1), secrets included, for binding
    `agent_id`: the voice goes back under `output`, each http tool carries its header values as
    `[{name, value}]`, and `llm` keeps its `api_key`. Unset fields are left out."""
    tools = []
    for tool in agent.get("tools") or ():
        entry = {k: v for k, v in tool.items() if k not in ("id", "http") and v is not None}
        http = tool.get("http")
        if http is not None:
            entry["http"] = {
                "url": http["url"],
                "http_method": http["http_method"],
                "headers": [{"name": h["name"], "value": h["value"]} for h in http["headers"]],
            }
        tools.append(entry)
    session: dict[str, Any] = {
        "system_prompt": agent["system_prompt"],
        "greeting": agent.get("greeting"),
        "tools": tools,
        "input": dict(agent.get("input") or {}),
        "output": {**(agent.get("output") or {}), "voice": agent["voice"]["voice_id"]},
        "llm": [dict(e) for e in agent.get("llm") or ()],
        "pre_connect_requests": list(agent.get("pre_connect_requests") or ()),
        "webhook": dict(agent["webhook"]) if agent.get("webhook") else None,
    }
    return {k: v for k, v in session.items() if v is not None}


# ---------------------------------------------------------------- sessions


def session_json(session: Mapping[str, Any]) -> dict[str, Any]:
    """A session as `GET /v1/sessions` lists it (the webhook's `data` has the same fields)."""
    ended = session.get("ended_at")
    return {
        "id": session["id"],
        "agent_id": session.get("agent_id"),
        "status": session["status"],
        "public_close_reason": session.get("close_reason"),
        "duration_seconds": None if ended is None else round(max(0.0, ended - session["created_at"]), 3),
        "created_at": iso(session["created_at"]),
        "ended_at": iso(ended),
    }


def session_detail_json(session: Mapping[str, Any], artifact_url: Callable[[str], str]) -> dict[str, Any]:
    """`GET /v1/sessions/{id}`: the listed fields, the config as at start and the artifacts' links.
    `artifact_url(type)` is a fresh signed link."""
    return {
        **session_json(session),
        "config": session.get("config") or {},
        "artifacts": [
            {"type": a["type"], "url": artifact_url(a["type"]), "content_type": a["content_type"]}
            for a in session.get("artifacts") or ()
        ],
    }


def page_json(key: str, page: Page, item: Callable[[Mapping[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """`{key: [...], "has_more", "response_metadata": {"next_cursor"}}`, the lists' common form."""
    return {
        key: [item(record) for record in page.items],
        "has_more": page.has_more,
        "response_metadata": {"next_cursor": page.next_cursor},
    }
