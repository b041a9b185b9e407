"""§9 stored agents, §4.1 `agent_id` binding, §4.5 http tools the server runs, §10 session records,
artifacts and webhooks, from the client's side: plain httpx and websockets, JSON written by hand.

The record store outlives one run (the main server's data dir is under test-artifacts), so every
agent made here has a fresh name, and lists are checked for what this test made, not for being empty.
Session records are written by the server in the background: the tests poll for them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import re
import threading
import time
import uuid
import wave
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest

from tests.e2e.conformance.raw import (
    CALL_ID,
    SYSTEM_PROMPT,
    WEATHER_QUESTION,
    WEATHER_TOOL,
    Conn,
    Mic,
    assert_rest_error,
    connect,
    rest,
    rms,
    session,
    speech,
    words,
)
from tests.e2e.conftest import (
    API_KEY,
    MAIN_ENV,
    OTHER_KEY,
    SESSIONS_ONLY_KEY,
    Server,
    start_server,
    stop_server,
    synthesize,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

AGENT_ID = re.compile(r"^agent_[0-9a-f]{32}$")
TOOL_ID = re.compile(r"^tool_[0-9a-f]{32}$")
AGENT_KEYS = {
    "id",
    "name",
    "system_prompt",
    "greeting",
    "voice",
    "input",
    "output",
    "tools",
    "pre_connect_requests",
    "transfer_targets",
    "outbound_trunk_id",
    "caller_id",
    "llm",
    "created_at",
    "updated_at",
}
SUMMARY_KEYS = {"id", "name", "created_at", "updated_at"}
SESSION_KEYS = {"id", "agent_id", "status", "public_close_reason", "duration_seconds", "created_at", "ended_at"}
TURN_KEYS = {"role", "item_id", "reply_id", "text", "interrupted", "trigger"}

GREETING = "Hello, thanks for calling the city library. How can I help you today?"
QUESTION = "Hello there. I would like to know the name of the capital city of France, please."
WEATHER_RESULT = '{"city": "Paris", "condition": "sunny", "temperature_c": 22}'
LOOKUP_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "lookup_order",
    "description": "Look up an order by its number.",
    "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
}
WEBHOOK_SECRET = "whsec-" + "0123456789abcdef" * 3  # 54 characters: over the 32 the contract asks for

T = TypeVar("T")


# ------------------------------------------------------------------ helpers


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def iso(value: Any) -> datetime:
    """An ISO 8601 time (§9: all times are ISO 8601)."""
    assert isinstance(value, str), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def api(
    server: Server,
    method: str,
    path: str,
    *,
    key: str = API_KEY,
    authorization: str | None = None,
    params: dict[str, Any] | None = None,
    body: Any = None,
) -> httpx.Response:
    """A REST call with the key as Bearer (or `authorization` as given), off the event loop so that open
    sockets keep reading."""
    auth = authorization if authorization is not None else f"Bearer {key}"
    return await asyncio.to_thread(rest, server.http, method, path, authorization=auth, params=params, body=body)


async def create_agent(server: Server, body: dict[str, Any], *, key: str = API_KEY) -> dict[str, Any]:
    response = await api(server, "POST", "/v1/agents", key=key, body=body)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


async def delete_agent(server: Server, agent_id: str) -> None:
    await api(server, "DELETE", f"/v1/agents/{agent_id}")


async def until(check: Callable[[], Awaitable[T | None]], *, timeout: float, what: str, every: float = 0.25) -> T:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        await asyncio.sleep(every)


async def session_record(server: Server, session_id: str, *, key: str = API_KEY) -> dict[str, Any] | None:
    response = await api(server, "GET", f"/v1/sessions/{session_id}", key=key)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def record_when(
    server: Server, session_id: str, ok: Callable[[dict[str, Any]], bool], *, timeout: float = 30, what: str = ""
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        record = await session_record(server, session_id)
        return record if record is not None and ok(record) else None

    return await until(check, timeout=timeout, what=what or f"the record of {session_id}", every=0.2)


def completed_with_artifacts(record: dict[str, Any]) -> bool:
    return record["status"] == "completed" and {"timeline", "metadata"} <= {a["type"] for a in record["artifacts"]}


async def end(conn: Conn) -> None:
    """session.end → session.ended → close 1000 (§6.7)."""
    await conn.send({"type": "session.end"})
    await conn.next("session.ended", timeout=30)
    code, _ = await conn.wait_closed(30)
    assert code == 1000, code


def mint_token(server: Server) -> str:
    response = rest(
        server.http, "GET", "/v1/token", authorization=f"Bearer {API_KEY}", params={"expires_in_seconds": 60}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def walk(server: Server, path: str, key: str, *, limit: int, params: dict[str, Any] | None = None) -> list[Any]:
    """Every item of a paginated list, following next_cursor to the end; checks the page form on the way."""
    items: list[Any] = []
    cursor = ""
    for _ in range(1000):
        response = await api(server, "GET", path, params={**(params or {}), "limit": limit, "cursor": cursor})
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) >= {key, "has_more", "response_metadata"}, page
        assert len(page[key]) <= limit, len(page[key])
        items += page[key]
        cursor = page["response_metadata"]["next_cursor"]
        assert isinstance(cursor, str), page["response_metadata"]
        if not page["has_more"]:
            assert cursor == "", page["response_metadata"]  # "" when there are no more pages
            return items
        assert cursor, page["response_metadata"]
    raise AssertionError("the list never ended")


class Service:
    """A tiny local HTTP service in a thread: records every request and answers `reply` (JSON)."""

    def __init__(self, reply: str = "{}") -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                        "at": time.time(),
                    }
                )
                data = outer.reply.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    async def wait(self, count: int, *, timeout: float) -> list[dict[str, Any]]:
        async def check() -> list[dict[str, Any]] | None:
            return list(self.requests) if len(self.requests) >= count else None

        return await until(check, timeout=timeout, what=f"{count} request(s) at {self.url}")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service()
    yield svc
    svc.close()


def basic_agent(**extra: Any) -> dict[str, Any]:
    return {"name": unique("conf"), "system_prompt": SYSTEM_PROMPT, "voice": {"voice_id": "ivy"}, **extra}


# ------------------------------------------------------------------ §9 restart survival (two model loads)


async def test_stored_agents_survive_a_restart(tmp_path: Path) -> None:
    env = {**MAIN_ENV, "VOXGATE_DATA_DIR": str(tmp_path / "data")}
    first = await asyncio.to_thread(start_server, "store-restart", env)
    try:
        response = await asyncio.to_thread(
            rest,
            first.http,
            "POST",
            "/v1/agents",
            authorization=f"Bearer {API_KEY}",
            body=basic_agent(greeting="Hi.", tools=[WEATHER_TOOL]),
        )
        assert response.status_code == 201, response.text
        created = response.json()
        response = await asyncio.to_thread(
            rest,
            first.http,
            "PUT",
            f"/v1/agents/{created['id']}",
            authorization=API_KEY,
            body={"greeting": "Hello again."},
        )
        assert response.status_code == 200, response.text
        updated = response.json()
    finally:
        await asyncio.to_thread(stop_server, first)
    second = await asyncio.to_thread(start_server, "store-restart", env)
    try:
        response = await asyncio.to_thread(
            rest, second.http, "GET", f"/v1/agents/{created['id']}", authorization=f"Bearer {API_KEY}"
        )
        assert response.status_code == 200, response.text
        assert response.json() == updated  # the same record, tool ids and times included
        listed = await asyncio.to_thread(rest, second.http, "GET", "/v1/agents", authorization=API_KEY)
        assert listed.status_code == 200, listed.text
        assert created["id"] in [a["id"] for a in listed.json()["agents"]], listed.json()
    finally:
        await asyncio.to_thread(stop_server, second)


# ------------------------------------------------------------------ §9 POST


async def test_create_agent_is_201_with_the_agent_record(server: Server) -> None:
    body = {
        "name": unique("create"),
        "system_prompt": "You are the library's assistant.",
        "greeting": GREETING,
        "voice": {"voice_id": "ivy"},
        "input": {"keyterms": ["Paris", "Lyon"]},
        "tools": [WEATHER_TOOL],
    }
    before = time.time()
    response = await api(server, "POST", "/v1/agents", authorization=API_KEY, body=body)  # the raw key
    assert response.status_code == 201, response.text
    agent = response.json()
    assert AGENT_KEYS <= set(agent), sorted(AGENT_KEYS - set(agent))
    assert AGENT_ID.match(agent["id"]), agent["id"]
    assert agent["name"] == body["name"] and agent["system_prompt"] == body["system_prompt"], agent
    assert agent["greeting"] == GREETING, agent
    assert agent["voice"] == {"voice_id": "ivy"}, agent["voice"]
    assert agent["input"].get("keyterms") == ["Paris", "Lyon"], agent["input"]
    assert isinstance(agent["output"], dict), agent
    assert [t["name"] for t in agent["tools"]] == ["get_weather"], agent["tools"]
    tool = agent["tools"][0]
    assert TOOL_ID.match(tool["id"]), tool
    assert tool["description"] == WEATHER_TOOL["description"] and tool["parameters"] == WEATHER_TOOL["parameters"]
    assert agent["pre_connect_requests"] == [] and agent["transfer_targets"] == [], agent
    assert agent["llm"] == [], agent["llm"]
    created, updated = iso(agent["created_at"]), iso(agent["updated_at"])
    assert abs(created.timestamp() - before) < 60 and updated >= created, agent

    got = await api(server, "GET", f"/v1/agents/{agent['id']}")  # Bearer
    assert got.status_code == 200, got.text
    assert got.json() == agent
    await delete_agent(server, agent["id"])


@pytest.mark.parametrize("missing", ["name", "system_prompt", "voice"])
async def test_create_agent_without_a_required_field_is_422_validation_error(server: Server, missing: str) -> None:
    body = {k: v for k, v in basic_agent().items() if k != missing}
    response = await api(server, "POST", "/v1/agents", body=body)
    error = assert_rest_error(response, 422, "VALIDATION_ERROR")
    assert error["errors"], error


async def test_create_agent_with_an_unknown_voice_is_422_validation_error(server: Server) -> None:
    response = await api(server, "POST", "/v1/agents", body=basic_agent(voice={"voice_id": "no-such-voice-xyz"}))
    assert_rest_error(response, 422, "VALIDATION_ERROR")
    response = await api(server, "POST", "/v1/agents", body=basic_agent(voice="no-such-voice-xyz"))
    assert_rest_error(response, 422, "VALIDATION_ERROR")


async def test_voice_as_a_bare_string_is_returned_as_an_object(server: Server) -> None:
    agent = await create_agent(server, basic_agent(voice="ivy"))
    assert agent["voice"] == {"voice_id": "ivy"}, agent["voice"]
    put = await api(server, "PUT", f"/v1/agents/{agent['id']}", body={"voice": "anna"})
    assert put.status_code == 200, put.text
    assert put.json()["voice"] == {"voice_id": "anna"}, put.json()["voice"]
    put = await api(server, "PUT", f"/v1/agents/{agent['id']}", body={"voice": {"voice_id": "james"}})
    assert put.status_code == 200, put.text
    assert put.json()["voice"] == {"voice_id": "james"}, put.json()["voice"]
    await delete_agent(server, agent["id"])


# ------------------------------------------------------------------ §9 GET


async def test_list_agents_is_newest_first_with_cursor_pages(server: Server) -> None:
    made = [await create_agent(server, basic_agent()) for _ in range(3)]
    ids = [a["id"] for a in made]
    response = await api(server, "GET", "/v1/agents", params={"limit": 2})
    assert response.status_code == 200, response.text
    page = response.json()
    assert set(page) >= {"agents", "has_more", "response_metadata"}, page
    assert [a["id"] for a in page["agents"]] == [ids[2], ids[1]], page  # newest first
    for item in page["agents"]:
        assert SUMMARY_KEYS <= set(item), item
        assert iso(item["updated_at"]) >= iso(item["created_at"]), item
    assert page["agents"][0]["name"] == made[2]["name"], page
    assert page["has_more"] is True and page["response_metadata"]["next_cursor"], page
    nxt = await api(
        server, "GET", "/v1/agents", params={"limit": 2, "cursor": page["response_metadata"]["next_cursor"]}
    )
    assert nxt.status_code == 200, nxt.text
    assert nxt.json()["agents"][0]["id"] == ids[0], nxt.json()

    everything = await walk(server, "/v1/agents", "agents", limit=200)
    seen = [a["id"] for a in everything]
    assert len(seen) == len(set(seen)), "an agent listed twice"
    assert [i for i in seen if i in ids] == ids[::-1], seen
    times = [iso(a["created_at"]) for a in everything]
    assert times == sorted(times, reverse=True), "not newest first"
    for agent_id in ids:
        await delete_agent(server, agent_id)


@pytest.mark.parametrize("limit", [0, 201, "many"])
async def test_list_agents_limit_out_of_range_is_422(server: Server, limit: Any) -> None:
    assert_rest_error(await api(server, "GET", "/v1/agents", params={"limit": limit}), 422, "VALIDATION_ERROR")


async def test_get_agent_by_id_and_by_name(server: Server) -> None:
    agent = await create_agent(server, basic_agent(greeting="Hi."))
    by_id = await api(server, "GET", f"/v1/agents/{agent['id']}")
    assert by_id.status_code == 200 and by_id.json() == agent, by_id.text
    by_name = await api(server, "GET", f"/v1/agents/{agent['name']}", authorization=API_KEY)
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["id"] == agent["id"], by_name.json()
    await delete_agent(server, agent["id"])


async def test_unknown_agent_is_404_agent_not_found(server: Server) -> None:
    unknown = "agent_" + "0" * 32
    assert_rest_error(await api(server, "GET", f"/v1/agents/{unknown}"), 404, "AGENT_NOT_FOUND")
    assert_rest_error(await api(server, "PUT", f"/v1/agents/{unknown}", body={"greeting": "x"}), 404, "AGENT_NOT_FOUND")
    assert_rest_error(await api(server, "DELETE", f"/v1/agents/{unknown}"), 404, "AGENT_NOT_FOUND")


# ------------------------------------------------------------------ §9 PUT


async def test_put_keeps_fields_left_out_and_replaces_lists(server: Server) -> None:
    weather = {**WEATHER_TOOL}
    agent = await create_agent(
        server,
        basic_agent(greeting="First greeting.", input={"keyterms": ["Paris", "Lyon"]}, tools=[weather, LOOKUP_TOOL]),
    )
    ids = {t["name"]: t["id"] for t in agent["tools"]}
    assert all(TOOL_ID.match(i) for i in ids.values()) and len(set(ids.values())) == 2, agent["tools"]

    put = await api(server, "PUT", f"/v1/agents/{agent['id']}", body={"system_prompt": "A new prompt."})
    assert put.status_code == 200, put.text
    after = put.json()
    assert after["system_prompt"] == "A new prompt.", after
    for kept in ("id", "name", "greeting", "voice", "input", "tools", "created_at"):
        assert after[kept] == agent[kept], (kept, agent[kept], after[kept])
    assert iso(after["updated_at"]) >= iso(agent["updated_at"]), after

    put = await api(server, "PUT", f"/v1/agents/{agent['id']}", body={"input": {"keyterms": ["Nice"]}})
    assert put.status_code == 200, put.text
    assert put.json()["input"]["keyterms"] == ["Nice"], put.json()["input"]  # a list replaces

    changed = {**LOOKUP_TOOL, "description": "Find an order by its number."}
    put = await api(server, "PUT", f"/v1/agents/{agent['id']}", body={"tools": [changed]})
    assert put.status_code == 200, put.text
    tools = put.json()["tools"]
    assert [t["name"] for t in tools] == ["lookup_order"], tools  # the list replaces the old one
    assert tools[0]["description"] == "Find an order by its number.", tools
    assert tools[0]["id"] == ids["lookup_order"], (tools, ids)  # the id stays while the name does

    put = await api(server, "PUT", f"/v1/agents/{agent['id']}", body={"greeting": "Second greeting."})
    assert put.status_code == 200, put.text
    assert put.json()["tools"][0]["id"] == ids["lookup_order"], put.json()["tools"]

    renamed = {**LOOKUP_TOOL, "name": "find_order"}
    put = await api(server, "PUT", f"/v1/agents/{agent['id']}", body={"tools": [renamed, changed]})
    assert put.status_code == 200, put.text
    now = {t["name"]: t["id"] for t in put.json()["tools"]}
    assert TOOL_ID.match(now["find_order"]) and now["find_order"] not in ids.values(), (now, ids)  # a new name
    assert now["lookup_order"] == ids["lookup_order"], (now, ids)

    got = await api(server, "GET", f"/v1/agents/{agent['id']}")
    assert got.status_code == 200 and got.json() == put.json(), got.text
    assert got.json()["greeting"] == "Second greeting." and got.json()["system_prompt"] == "A new prompt."

    bad = await api(server, "PUT", f"/v1/agents/{agent['id']}", body={"voice": {"voice_id": "no-such-voice-xyz"}})
    assert_rest_error(bad, 422, "VALIDATION_ERROR")
    await delete_agent(server, agent["id"])


async def test_http_header_values_are_write_only(server: Server) -> None:
    http = {
        "url": "http://127.0.0.1:9/lookup",
        "http_method": "POST",
        "headers": [{"name": "X-Key", "value": "first-secret-value"}, {"name": "X-Extra", "value": "extra-secret-val"}],
    }
    created = await api(server, "POST", "/v1/agents", body=basic_agent(tools=[{**LOOKUP_TOOL, "http": http}]))
    assert created.status_code == 201, created.text
    agent = created.json()
    assert "first-secret-value" not in created.text and "extra-secret-val" not in created.text, created.text
    tool = agent["tools"][0]
    assert tool["http"]["url"] == http["url"] and tool["http"]["http_method"] == "POST", tool
    headers = tool["http"]["headers"]
    assert [h["name"] for h in headers] == ["X-Key", "X-Extra"], headers
    assert all(h["value"] == "***" for h in headers), headers
    set_at = {h["name"]: iso(h["last_set_at"]) for h in headers}
    got = await api(server, "GET", f"/v1/agents/{agent['id']}")
    assert got.status_code == 200 and "first-secret-value" not in got.text, got.text

    def tools_with(headers: list[dict[str, Any]]) -> dict[str, Any]:
        return {"tools": [{**LOOKUP_TOOL, "http": {**http, "headers": headers}}]}

    # Name only keeps the stored value; remove: true deletes the header.
    put = await api(
        server,
        "PUT",
        f"/v1/agents/{agent['id']}",
        body=tools_with([{"name": "X-Key"}, {"name": "X-Extra", "remove": True}]),
    )
    assert put.status_code == 200, put.text
    headers = put.json()["tools"][0]["http"]["headers"]
    assert [h["name"] for h in headers] == ["X-Key"], headers
    assert headers[0]["value"] == "***" and iso(headers[0]["last_set_at"]) == set_at["X-Key"], headers
    assert put.json()["tools"][0]["id"] == tool["id"], put.json()["tools"]

    # A value rotates it.
    put = await api(
        server, "PUT", f"/v1/agents/{agent['id']}", body=tools_with([{"name": "X-Key", "value": "second-secret-value"}])
    )
    assert put.status_code == 200, put.text
    assert "second-secret-value" not in put.text, put.text
    headers = put.json()["tools"][0]["http"]["headers"]
    assert [h["name"] for h in headers] == ["X-Key"] and headers[0]["value"] == "***", headers
    assert iso(headers[0]["last_set_at"]) > set_at["X-Key"], headers
    got = await api(server, "GET", f"/v1/agents/{agent['id']}")
    assert "second-secret-value" not in got.text and "first-secret-value" not in got.text, got.text
    await delete_agent(server, agent["id"])


async def test_llm_api_key_is_never_returned(server: Server) -> None:
    secret = "sk-never-returned-" + uuid.uuid4().hex
    llm = [{"base_url": "http://127.0.0.1:9/v1", "model": "tiny-model", "api_key": secret}]
    created = await api(server, "POST", "/v1/agents", body=basic_agent(llm=llm))
    assert created.status_code == 201, created.text
    assert secret not in created.text, created.text
    agent = created.json()
    assert agent["llm"] == [{"base_url": "http://127.0.0.1:9/v1", "model": "tiny-model"}], agent["llm"]
    for response in (
        await api(server, "GET", f"/v1/agents/{agent['id']}"),
        await api(server, "PUT", f"/v1/agents/{agent['id']}", body={"greeting": "Hi."}),
        await api(server, "GET", "/v1/agents", params={"limit": 200}),
    ):
        assert response.status_code == 200, response.text
        assert secret not in response.text and "api_key" not in response.text, response.text
    await delete_agent(server, agent["id"])


# ------------------------------------------------------------------ §9 owners and credentials


async def test_another_keys_agent_is_404_agent_not_found(server: Server) -> None:
    agent = await create_agent(server, basic_agent())
    path = f"/v1/agents/{agent['id']}"
    assert_rest_error(await api(server, "GET", path, key=OTHER_KEY), 404, "AGENT_NOT_FOUND")
    assert_rest_error(await api(server, "PUT", path, key=OTHER_KEY, body={"greeting": "x"}), 404, "AGENT_NOT_FOUND")
    assert_rest_error(await api(server, "DELETE", path, key=OTHER_KEY), 404, "AGENT_NOT_FOUND")
    listed = await api(server, "GET", "/v1/agents", key=OTHER_KEY, params={"limit": 200})
    assert listed.status_code == 200 and agent["id"] not in listed.text, listed.text
    still = await api(server, "GET", path)
    assert still.status_code == 200 and still.json()["greeting"] == agent["greeting"], still.text
    await delete_agent(server, agent["id"])


async def test_temporary_token_and_sessions_only_key_are_403_and_no_key_is_401(server: Server) -> None:
    agent = await create_agent(server, basic_agent())
    token = await asyncio.to_thread(mint_token, server)
    for authorization in (f"Bearer {token}", f"Bearer {SESSIONS_ONLY_KEY}"):
        for method, path, body in (
            ("GET", "/v1/agents", None),
            ("POST", "/v1/agents", basic_agent()),
            ("GET", f"/v1/agents/{agent['id']}", None),
            ("DELETE", f"/v1/agents/{agent['id']}", None),
            ("GET", "/v1/sessions", None),
        ):
            response = await api(server, method, path, authorization=authorization, body=body)
            assert_rest_error(response, 403, "FORBIDDEN")
    response = await asyncio.to_thread(rest, server.http, "GET", "/v1/agents")
    assert_rest_error(response, 401, "MISSING_AUTHORIZATION")
    assert_rest_error(await api(server, "GET", "/v1/agents", key="not-a-key"), 401, "UNAUTHORIZED")
    assert (await api(server, "GET", f"/v1/agents/{agent['id']}")).status_code == 200  # nothing was deleted
    await delete_agent(server, agent["id"])


async def test_delete_agent_is_204_then_404(server: Server) -> None:
    agent = await create_agent(server, basic_agent())
    response = await api(server, "DELETE", f"/v1/agents/{agent['id']}", authorization=API_KEY)
    assert response.status_code == 204 and response.content == b"", (response.status_code, response.text)
    assert_rest_error(await api(server, "GET", f"/v1/agents/{agent['id']}"), 404, "AGENT_NOT_FOUND")
    assert_rest_error(await api(server, "DELETE", f"/v1/agents/{agent['id']}"), 404, "AGENT_NOT_FOUND")
    listed = await api(server, "GET", "/v1/agents", params={"limit": 200})
    assert agent["id"] not in listed.text, listed.text


# ------------------------------------------------------------------ §4.1 agent_id binding


async def test_agent_id_binds_the_stored_agent_and_its_greeting_is_spoken(server: Server) -> None:
    http_tool = {
        **LOOKUP_TOOL,
        "http": {
            "url": "http://127.0.0.1:9/lookup",
            "http_method": "POST",
            "headers": [{"name": "X-Key", "value": "bound-secret-value"}],
        },
    }
    agent = await create_agent(
        server,
        {
            "name": unique("bound"),
            "system_prompt": "You are the city library's assistant. Answer briefly.",
            "greeting": GREETING,
            "voice": "ivy",
            "input": {"keyterms": ["library"]},
            "tools": [WEATHER_TOOL, http_tool],
        },
    )
    conn, ready = await session(server.url, API_KEY, {"agent_id": agent["id"]})
    assert conn.types()[:2] == ["session.updated", "session.ready"], conn.describe()
    config = ready["config"]
    assert config["id"] == agent["id"], config
    assert config["system_prompt"] == agent["system_prompt"] and config["greeting"] == GREETING, config
    assert config["output"]["voice"] == "ivy", config["output"]
    assert config["input"]["keyterms"] == ["library"], config["input"]
    assert [t["name"] for t in config["tools"]] == ["get_weather", "lookup_order"], config["tools"]
    assert config["tools"][0].get("http") is None, config["tools"][0]
    assert config["tools"][1]["http"] == {
        "url": "http://127.0.0.1:9/lookup",
        "method": "POST",
        "headers_ciphertext": "",
        "headers_encrypted_data_key": "",
        "headers_kms_key_id": "",
    }, config["tools"][1]
    assert "bound-secret-value" not in json.dumps([e.data for e in conn.events]), "a header value was echoed"

    started = await conn.next("reply.started", timeout=60)
    rid = started.data["reply_id"]
    done = await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == rid)
    assert done.data["status"] == "completed", done.data
    spoken = [e.data for e in conn.of("transcript.agent") if e.data.get("reply_id") == rid]
    assert len(spoken) == 1 and spoken[0]["text"] == GREETING, spoken  # the stored greeting, word for word
    assert conn.audio(reply_id=rid), "no reply.audio for the greeting"
    session_id = ready["session_id"]
    await end(conn)

    # §10.1: the record names the agent, and agent_id= filters by it.
    record = await record_when(server, session_id, completed_with_artifacts)
    assert record["agent_id"] == agent["id"], record
    assert record["config"].get("system_prompt") == agent["system_prompt"], record["config"]
    assert "bound-secret-value" not in json.dumps(record), record

    async def filtered() -> list[Any] | None:
        response = await api(server, "GET", "/v1/sessions", params={"agent_id": agent["id"]})
        assert response.status_code == 200, response.text
        return response.json()["sessions"] or None

    sessions = await until(filtered, timeout=30, what="sessions of the agent")
    assert [s["id"] for s in sessions] == [session_id], sessions
    assert all(s["agent_id"] == agent["id"] for s in sessions), sessions
    await delete_agent(server, agent["id"])


async def test_agent_id_with_other_fields_is_invalid_config_and_the_session_stays_open(server: Server) -> None:
    agent = await create_agent(server, basic_agent(greeting="Hi."))
    conn = await connect(server.url, authorization=f"Bearer {API_KEY}")
    await conn.send({"type": "session.update", "session": {"agent_id": agent["id"], "system_prompt": "Other."}})
    await conn.error("invalid_config")
    assert not conn.of("session.ready") and not conn.closed.is_set()
    ready = await conn.start({"agent_id": agent["id"]})  # a corrected update still works
    assert ready["config"]["id"] == agent["id"], ready["config"]
    await conn.close()
    await delete_agent(server, agent["id"])


async def test_agent_id_in_a_later_update_is_agent_id_not_first(server: Server) -> None:
    agent = await create_agent(server, basic_agent())
    conn, ready = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT})
    assert ready["config"]["id"] == "", ready["config"]  # no agent bound
    await conn.send({"type": "session.update", "session": {"agent_id": agent["id"]}})
    await conn.error("agent_id_not_first")
    await conn.alive()
    await conn.close()
    await delete_agent(server, agent["id"])


async def test_unknown_agent_id_is_agent_not_found_then_close_1008(server: Server) -> None:
    conn = await connect(server.url, authorization=f"Bearer {API_KEY}")
    await conn.send({"type": "session.update", "session": {"agent_id": "agent_" + "f" * 32}})
    await conn.error("agent_not_found")
    assert await conn.wait_closed(30) == (1008, "agent_not_found")
    assert not conn.of("session.ready")


async def test_another_keys_agent_id_is_agent_not_found(server: Server) -> None:
    agent = await create_agent(server, basic_agent())
    conn = await connect(server.url, authorization=f"Bearer {OTHER_KEY}")
    await conn.send({"type": "session.update", "session": {"agent_id": agent["id"]}})
    await conn.error("agent_not_found")
    assert (await conn.wait_closed(30))[0] == 1008
    await delete_agent(server, agent["id"])


async def test_an_agent_file_name_works_as_agent_id(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY, {"agent_id": "support"})
    config = ready["config"]
    assert config["id"] == "support", config
    assert "Northwind" in config["system_prompt"], config["system_prompt"]
    assert config["greeting"].startswith("Thanks for calling Northwind Internet support"), config["greeting"]
    assert "lookup_account" in [t["name"] for t in config["tools"]], config["tools"]
    started = await conn.next("reply.started", timeout=60)
    rid = started.data["reply_id"]
    await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == rid)
    spoken = [e.data["text"] for e in conn.of("transcript.agent") if e.data.get("reply_id") == rid]
    assert spoken == [config["greeting"]], spoken
    await end(conn)


# ------------------------------------------------------------------ §4.5 an http tool run by the server


async def test_http_tool_is_run_by_the_server_and_the_follow_up_needs_no_tool_result(
    server: Server, speech_dir: Path
) -> None:
    svc = Service(reply=WEATHER_RESULT)
    try:
        url = f"{svc.url}/weather"

        def weather(headers: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{**WEATHER_TOOL, "http": {"url": url, "http_method": "POST", "headers": headers}}]

        agent = await create_agent(
            server,
            basic_agent(input={"keyterms": ["Paris"]}, tools=weather([{"name": "X-Key", "value": "stale-value"}])),
        )
        tool_id = agent["tools"][0]["id"]
        # Rotate the value, then send the header by name only (keeps it): the server must send "secret".
        for headers in ([{"name": "X-Key", "value": "secret"}], [{"name": "X-Key"}]):
            put = await api(server, "PUT", f"/v1/agents/{agent['id']}", body={"tools": weather(headers)})
            assert put.status_code == 200, put.text
            assert put.json()["tools"][0]["id"] == tool_id, put.json()["tools"]

        conn, ready = await session(server.url, API_KEY, {"agent_id": agent["id"]})
        assert ready["config"]["tools"][0]["http"]["url"] == url, ready["config"]["tools"]
        mic = Mic(conn).start()
        await mic.say(speech(synthesize(speech_dir, WEATHER_QUESTION)))
        call = await conn.next("tool.call", timeout=90)
        assert CALL_ID.match(call.data["call_id"]) and call.data["name"] == "get_weather", call.data
        arguments = call.data["arguments"]
        assert isinstance(arguments, dict) and "paris" in str(arguments.get("city", "")).lower(), call.data

        (request,) = (await svc.wait(1, timeout=30))[:1]
        assert request["method"] == "POST" and request["path"] == "/weather", request
        assert request["headers"].get("x-key") == "secret", request["headers"]
        assert request["headers"].get("content-type", "").startswith("application/json"), request["headers"]
        assert json.loads(request["body"]) == arguments, (request["body"], arguments)

        carrier = [e for e in conn.of("reply.started") if e.index < call.index][-1].data["reply_id"]
        await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == carrier)
        follow = await conn.next("reply.started", timeout=60)  # with no tool.result from the client
        assert follow.data["reply_id"] != carrier, follow.data
        rid = follow.data["reply_id"]
        done = await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == rid)
        assert done.data["status"] == "completed", done.data
        text = " ".join(e.data["text"] for e in conn.of("transcript.agent") if e.data.get("reply_id") == rid)
        assert set(words(text)) & {"sunny", "22", "twenty"}, text  # the service's answer became the result
        assert len(svc.requests) == 1, svc.requests
        assert not conn.of("session.error"), conn.describe()
        await mic.stop()
        await end(conn)
        await delete_agent(server, agent["id"])
    finally:
        svc.close()


# ------------------------------------------------------------------ §10.1 session records


def wav_channels(data: bytes) -> tuple[int, np.ndarray]:
    with wave.open(io.BytesIO(data), "rb") as w:
        channels, width = w.getnchannels(), w.getsampwidth()
        assert width == 2, width
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return channels, frames.reshape(-1, channels) if channels else frames


async def test_an_ended_session_is_listed_completed_with_its_config_and_artifacts(
    server: Server, speech_dir: Path
) -> None:
    conn, ready = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT, "greeting": GREETING})
    session_id = ready["session_id"]
    live = await record_when(server, session_id, lambda r: True, what="the live session's record")
    assert live["status"] == "active", live
    assert live["duration_seconds"] is None and live["ended_at"] is None, live
    assert live["artifacts"] == [], live

    greeting = await conn.next("reply.started", timeout=60)
    await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == greeting.data["reply_id"])
    mic = Mic(conn).start()
    await mic.say(speech(synthesize(speech_dir, QUESTION)))
    user = await conn.next("transcript.user", timeout=60)
    answer = await conn.next("reply.started", timeout=60)
    await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == answer.data["reply_id"])
    await mic.stop()
    await end(conn)

    record = await record_when(
        server,
        session_id,
        lambda r: completed_with_artifacts(r) and "audio" in {a["type"] for a in r["artifacts"]},
        what="the completed record with its audio",
    )
    assert SESSION_KEYS | {"config", "artifacts"} <= set(record), sorted(record)
    assert record["id"] == session_id and record["agent_id"] is None, record
    assert record["public_close_reason"] == "client_end", record
    assert isinstance(record["duration_seconds"], int | float) and record["duration_seconds"] > 0, record
    assert iso(record["ended_at"]) >= iso(record["created_at"]), record
    assert record["config"]["system_prompt"] == SYSTEM_PROMPT and record["config"]["greeting"] == GREETING, record
    for artifact in record["artifacts"]:
        assert {"type", "url", "content_type"} <= set(artifact), artifact

    # The list has it, newest first, with the summary fields.
    listed = await api(server, "GET", "/v1/sessions", params={"limit": 20})
    assert listed.status_code == 200, listed.text
    page = listed.json()
    mine = [s for s in page["sessions"] if s["id"] == session_id]
    assert len(mine) == 1, page
    assert SESSION_KEYS <= set(mine[0]), mine[0]
    assert mine[0]["status"] == "completed" and mine[0]["public_close_reason"] == "client_end", mine[0]
    assert mine[0]["duration_seconds"] == record["duration_seconds"], (mine[0], record)
    times = [iso(s["created_at"]) for s in page["sessions"]]
    assert times == sorted(times, reverse=True), "not newest first"

    # status= filters.
    completed = await api(server, "GET", "/v1/sessions", params={"status": "completed", "limit": 50})
    assert completed.status_code == 200, completed.text
    assert session_id in [s["id"] for s in completed.json()["sessions"]], completed.json()
    assert all(s["status"] == "completed" for s in completed.json()["sessions"]), completed.json()
    active = await api(server, "GET", "/v1/sessions", params={"status": "active", "limit": 200})
    assert active.status_code == 200, active.text
    assert session_id not in [s["id"] for s in active.json()["sessions"]], active.json()
    assert all(s["status"] == "active" for s in active.json()["sessions"]), active.json()

    # The artifact links work without Authorization.
    links = {a["type"]: a for a in record["artifacts"]}
    fetched = {}
    for kind in ("timeline", "metadata", "audio"):
        response = await asyncio.to_thread(httpx.get, links[kind]["url"], timeout=30)
        assert response.status_code == 200, (kind, response.status_code, response.text[:300])
        fetched[kind] = response
    assert links["timeline"]["content_type"].startswith("application/json"), links["timeline"]
    turns = fetched["timeline"].json()["turns"]
    for turn in turns:
        assert TURN_KEYS <= set(turn), turn
    users = [t for t in turns if t["role"] == "user"]
    agents = [t for t in turns if t["role"] != "user"]
    assert [t["text"] for t in users] == [user.data["text"]], turns
    assert users[0]["item_id"] == user.data["item_id"], turns
    assert agents[0]["text"] == GREETING and agents[0]["trigger"] == "greeting", agents
    assert agents[0]["reply_id"] == greeting.data["reply_id"], agents
    assert answer.data["reply_id"] in [t["reply_id"] for t in agents], agents
    assert [t["trigger"] for t in agents if t["reply_id"] == answer.data["reply_id"]] == ["user_turn"], agents

    metadata = fetched["metadata"].json()
    assert isinstance(metadata, dict), metadata
    assert session_id in json.dumps(metadata) and "client_end" in json.dumps(metadata), metadata

    assert links["audio"]["content_type"] in ("audio/wav", "audio/x-wav", "audio/wave"), links["audio"]
    channels, frames = wav_channels(fetched["audio"].content)
    assert channels == 2, channels  # stereo: the user left, the agent right
    assert len(frames) > 0, "an empty recording"
    left, right = frames[:, 0], frames[:, 1]
    assert rms(left) > 30, ("no user audio on the left", rms(left))
    assert rms(right) > 30, ("no agent audio on the right", rms(right))


async def test_a_dropped_session_is_disconnected_in_the_resume_window(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT})
    session_id = ready["session_id"]
    await record_when(server, session_id, lambda r: r["status"] == "active", what="the active record")
    await conn.drop()  # no session.end: a network drop (§6.8); the test server's window is 5 s
    record = await record_when(
        server, session_id, lambda r: r["status"] != "active", timeout=4.5, what="the record after the drop"
    )
    assert record["status"] == "disconnected", record
    listed = await api(server, "GET", "/v1/sessions", params={"status": "disconnected", "limit": 200})
    assert listed.status_code == 200, listed.text
    assert session_id in [s["id"] for s in listed.json()["sessions"]], listed.json()  # status=disconnected
    finished = await record_when(
        server, session_id, lambda r: r["status"] == "completed", timeout=30, what="the record after the window"
    )
    assert finished["public_close_reason"] == "grace_expired", finished
    assert isinstance(finished["duration_seconds"], int | float) and finished["ended_at"], finished


async def test_session_list_pagination(server: Server) -> None:
    made = []
    for _ in range(2):
        conn, ready = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT})
        await end(conn)
        made.append(ready["session_id"])
    for sid in made:
        await record_when(server, sid, lambda r: r["status"] == "completed", what=f"the record of {sid}")
    first = await api(server, "GET", "/v1/sessions", params={"limit": 1})
    assert first.status_code == 200, first.text
    page = first.json()
    assert set(page) >= {"sessions", "has_more", "response_metadata"}, page
    assert [s["id"] for s in page["sessions"]] == [made[1]], page  # newest first
    assert page["has_more"] is True and page["response_metadata"]["next_cursor"], page
    second = await api(
        server, "GET", "/v1/sessions", params={"limit": 1, "cursor": page["response_metadata"]["next_cursor"]}
    )
    assert second.status_code == 200, second.text
    assert [s["id"] for s in second.json()["sessions"]] == [made[0]], second.json()
    everything = await walk(server, "/v1/sessions", "sessions", limit=200)
    ids = [s["id"] for s in everything]
    assert len(ids) == len(set(ids)) and ids[:2] == made[::-1], ids[:5]
    assert_rest_error(await api(server, "GET", "/v1/sessions", params={"limit": 0}), 422, "VALIDATION_ERROR")
    assert_rest_error(await api(server, "GET", "/v1/sessions", params={"limit": 201}), 422, "VALIDATION_ERROR")


async def test_delete_session_is_204_then_404_and_its_artifacts_are_gone(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY, {"greeting": "Hi there."})
    session_id = ready["session_id"]
    started = await conn.next("reply.started", timeout=60)
    await conn.next("reply.done", timeout=90, where=lambda d: d.get("reply_id") == started.data["reply_id"])
    await end(conn)
    record = await record_when(server, session_id, completed_with_artifacts)
    url = next(a["url"] for a in record["artifacts"] if a["type"] == "timeline")
    assert (await asyncio.to_thread(httpx.get, url, timeout=30)).status_code == 200

    assert_rest_error(
        await api(server, "DELETE", f"/v1/sessions/{session_id}", key=OTHER_KEY), 404, "SESSION_NOT_FOUND"
    )
    response = await api(server, "DELETE", f"/v1/sessions/{session_id}", authorization=API_KEY)
    assert response.status_code == 204 and response.content == b"", (response.status_code, response.text)
    assert_rest_error(await api(server, "GET", f"/v1/sessions/{session_id}"), 404, "SESSION_NOT_FOUND")
    assert_rest_error(await api(server, "DELETE", f"/v1/sessions/{session_id}"), 404, "SESSION_NOT_FOUND")
    gone = await asyncio.to_thread(httpx.get, url, timeout=30)
    assert gone.status_code in (403, 404, 410), (gone.status_code, gone.text[:200])
    listed = await api(server, "GET", "/v1/sessions", params={"limit": 200})
    assert session_id not in listed.text, "a deleted session is still listed"


async def test_delete_of_a_live_session_ends_it(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT})
    session_id = ready["session_id"]
    await record_when(server, session_id, lambda r: r["status"] == "active", what="the active record")
    response = await api(server, "DELETE", f"/v1/sessions/{session_id}")
    assert response.status_code == 204, response.text
    await conn.wait_closed(30)
    assert_rest_error(await api(server, "GET", f"/v1/sessions/{session_id}"), 404, "SESSION_NOT_FOUND")
    again = await connect(server.url, authorization=f"Bearer {API_KEY}")
    await again.send({"type": "session.resume", "session_id": session_id})
    await again.error("session_not_found")  # it was ended, not just dropped


async def test_unknown_and_other_keys_sessions_are_404_session_not_found(server: Server) -> None:
    assert_rest_error(await api(server, "GET", "/v1/sessions/sess_" + "0" * 32), 404, "SESSION_NOT_FOUND")
    conn, ready = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT})
    await end(conn)
    sid = ready["session_id"]
    await record_when(server, sid, lambda r: r["status"] == "completed")
    assert_rest_error(await api(server, "GET", f"/v1/sessions/{sid}", key=OTHER_KEY), 404, "SESSION_NOT_FOUND")
    listed = await api(server, "GET", "/v1/sessions", key=OTHER_KEY, params={"limit": 200})
    assert listed.status_code == 200 and sid not in listed.text, listed.text


# ------------------------------------------------------------------ §10.2 webhooks


def check_signature(request: dict[str, Any]) -> None:
    header = request["headers"].get("x-aai-signature", "")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    assert set(parts) >= {"t", "v1"}, header
    t = int(parts["t"])
    assert abs(time.time() - t) < 300, (t, time.time())  # verified with a 300 s tolerance
    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected), (header, expected)


async def test_webhook_gets_session_started_and_completed_signed(server: Server, service: Service) -> None:
    hook = {"url": f"{service.url}/hook", "events": ["session.started", "session.completed"], "secret": WEBHOOK_SECRET}
    conn, ready = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT, "webhook": hook})
    session_id = ready["session_id"]
    await service.wait(1, timeout=30)
    await end(conn)
    requests = await service.wait(2, timeout=60)
    assert len(requests) == 2, requests
    bodies = [json.loads(r["body"]) for r in requests]
    assert [b["event"] for b in bodies] == ["session.started", "session.completed"], bodies
    for request, body in zip(requests, bodies, strict=True):
        assert request["method"] == "POST" and request["path"] == "/hook", request
        check_signature(request)
        assert {"event", "session_id", "agent_id", "timestamp", "data"} <= set(body), body
        assert body["session_id"] == session_id and body["agent_id"] is None, body
        assert isinstance(body["timestamp"], int | float | str), body
        assert SESSION_KEYS <= set(body["data"]) and body["data"]["id"] == session_id, body
    started, completed = bodies[0]["data"], bodies[1]["data"]
    assert started["status"] == "active" and started["ended_at"] is None, started
    assert completed["status"] == "completed" and completed["public_close_reason"] == "client_end", completed
    assert isinstance(completed["duration_seconds"], int | float), completed
    await asyncio.sleep(2)
    assert len(service.requests) == 2, service.requests  # each delivered once (they were answered 200)


async def test_webhook_set_in_a_later_update_gets_only_the_events_not_yet_sent(
    server: Server, service: Service
) -> None:
    hook = {"url": f"{service.url}/hook", "events": ["session.completed"], "secret": WEBHOOK_SECRET}
    conn, ready = await session(server.url, API_KEY, {"system_prompt": SYSTEM_PROMPT})
    updated = await conn.update({"webhook": hook})  # mutable: applies to events not yet sent
    assert updated.type == "session.updated", updated.data
    await end(conn)
    requests = await service.wait(1, timeout=60)
    await asyncio.sleep(2)
    bodies = [json.loads(r["body"]) for r in service.requests]
    assert [b["event"] for b in bodies] == ["session.completed"], bodies
    assert bodies[0]["session_id"] == ready["session_id"], bodies
    check_signature(requests[0])
