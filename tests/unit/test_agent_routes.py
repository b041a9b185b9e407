"""Stored agents over REST (§9): every route, field, error and pagination case, and `voxgate agents import`.

The app is built with API keys, no preload and a store in tmp_path, so nothing loads a model: the
voice check reads the catalog's descriptions only.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from voxgate import cli
from voxgate.app import create_app
from voxgate.config import Settings
from voxgate.protocol.events import SessionConfig
from voxgate.server.auth import Authenticator
from voxgate.store import SQLiteStore
from voxgate.store.binding import agent_lookup

ROOT = Path(__file__).resolve().parents[2]
KEY = "agents-key"
OTHER_KEY = "agents-other-key"
SESSIONS_KEY = "agents-sessions-only"
TOKENS_KEY = "agents-tokens-only"
ERROR_FIELDS = {"code", "message", "param", "request_id", "errors", "detail"}
AUTH = {"Authorization": KEY}
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}
ID = re.compile(r"^agent_[0-9a-f]{32}$")
TOOL_ID = re.compile(r"^tool_[0-9a-f]{32}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
RECORD_FIELDS = {
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
    "webhook",
    "created_at",
    "updated_at",
}
SECRET = "s3cr3t-header-value"
API_KEY = "sk-never-returned"


def settings_for(path: Path, **overrides: Any) -> Settings:
    keys = [
        SecretStr(KEY),
        SecretStr(OTHER_KEY),
        SecretStr(f"{SESSIONS_KEY}:sessions"),
        SecretStr(f"{TOKENS_KEY}:tokens"),
    ]
    return Settings(preload=False, api_keys=keys, store_path=str(path), **overrides)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "voxgate.sqlite3")


@pytest.fixture
def client(tmp_path: Path, store: SQLiteStore) -> TestClient:
    return TestClient(create_app(settings_for(tmp_path / "voxgate.sqlite3"), store=store))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_FIELDS, body
    assert body["code"] == code and body["request_id"].startswith("req_")
    return body


def weather_tool(**http: Any) -> dict[str, Any]:
    tool: dict[str, Any] = {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    if http:
        tool["http"] = http
    return tool


def create(client: TestClient, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    body = {"name": "support", "system_prompt": "You help.", "voice": {"voice_id": "ivy"}, **fields}
    response = client.post("/v1/agents", json=body, headers=headers or AUTH)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


# ---------------------------------------------------------------- create


def test_create_answers_201_with_the_whole_record(client: TestClient) -> None:
    record = create(
        client,
        greeting="Hello!",
        input={"keyterms": ["Northwind"], "turn_detection": {"min_silence": 600, "max_silence": 1500}},
        output={"volume": 80},
        tools=[weather_tool()],
        pre_connect_requests=[{"sends": {"url": "https://crm.example.com"}, "timeout_ms": 500}],
        transfer_targets=[{"name": "desk", "phone_number": "+15550100"}],
        outbound_trunk_id="trunk_1",
        caller_id="+15550199",
    )
    assert set(record) == RECORD_FIELDS
    assert ID.match(record["id"]) and record["name"] == "support" and record["greeting"] == "Hello!"
    assert record["voice"] == {"voice_id": "ivy"}
    assert record["input"] == {"keyterms": ["Northwind"], "turn_detection": {"min_silence": 600, "max_silence": 1500}}
    assert record["output"] == {"volume": 80.0}
    assert record["pre_connect_requests"][0]["timeout_ms"] == 500
    assert record["transfer_targets"] == [{"name": "desk", "phone_number": "+15550100"}]
    assert record["outbound_trunk_id"] == "trunk_1" and record["caller_id"] == "+15550199"
    assert record["llm"] == [] and record["webhook"] is None
    assert ISO.match(record["created_at"]) and record["created_at"] == record["updated_at"]
    (tool,) = record["tools"]
    assert TOOL_ID.match(tool["id"]) and tool["name"] == "get_weather" and tool["type"] == "function"
    assert tool["execution_mode"] == "interactive" and tool["timeout_seconds"] == 120 and tool["http"] is None
    assert client.get(f"/v1/agents/{record['id']}", headers=AUTH).json() == record


def test_a_bare_voice_string_is_returned_as_an_object(client: TestClient) -> None:
    record = create(client, voice="IVY")
    assert record["voice"] == {"voice_id": "IVY"}


def test_optional_fields_default_to_empty(client: TestClient) -> None:
    record = create(client)
    assert record["greeting"] is None and record["tools"] == [] and record["input"] == {} and record["output"] == {}
    assert record["pre_connect_requests"] == [] and record["transfer_targets"] == []
    assert record["outbound_trunk_id"] is None and record["caller_id"] is None


@pytest.mark.parametrize("missing", ["name", "system_prompt", "voice"])
def test_the_required_fields_are_required(client: TestClient, missing: str) -> None:
    body = {"name": "a", "system_prompt": "p", "voice": "ivy"}
    del body[missing]
    error = assert_error(client.post("/v1/agents", json=body, headers=AUTH), 422, "VALIDATION_ERROR")
    assert error["param"] == missing
    assert error["detail"][0]["loc"] == ["body", missing] and error["detail"][0]["type"] == "missing"


def test_an_unknown_voice_is_422(client: TestClient) -> None:
    for voice in ("nobody-speaks", {"voice_id": "nobody-speaks"}):
        body = {"name": "a", "system_prompt": "p", "voice": voice}
        error = assert_error(client.post("/v1/agents", json=body, headers=AUTH), 422, "VALIDATION_ERROR")
        assert error["param"] == "voice" and "unknown voice" in error["message"]
    assert client.get("/v1/agents", headers=AUTH).json()["agents"] == []  # nothing stored


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"name": "bad name!"}]}, "tools.0.name"),
        ({"tools": [{"name": "t", "timeout_seconds": 301}]}, "tools.0.timeout_seconds"),
        ({"tools": [{"name": "t", "execution_mode": "later"}]}, "tools.0.execution_mode"),
        ({"tools": [{"name": "t"}, {"name": "t"}]}, "tools.1.name"),
        ({"tools": [{"name": "t", "http": {"url": "ftp://x"}}]}, "tools.0.http.url"),
        ({"tools": [{"name": "t", "http": {"url": "https://x", "http_method": "TRACE"}}]}, "tools.0.http.http_method"),
        (
            {"tools": [{"name": "t", "http": {"url": "https://x", "headers": [{"name": "X-K"}]}}]},
            "tools.0.http.headers.0.value",
        ),
        (
            {"tools": [{"name": "t", "http": {"url": "https://x", "headers": [{"name": "bad header"}]}}]},
            "tools.0.http.headers.0.name",
        ),
        ({"llm": [{"base_url": "https://a", "model": "m"}, {"base_url": "https://b", "model": "m"}]}, "llm"),
        ({"llm": [{"base_url": "https://a"}]}, "llm.0.model"),
        ({"pre_connect_requests": [{}, {}, {}]}, "pre_connect_requests"),
        ({"input": {"turn_detection": {"vad_threshold": 2}}}, "input.turn_detection.vad_threshold"),
        ({"input": {"turn_detection": {"min_silence": 900, "max_silence": 500}}}, "input.turn_detection.max_silence"),
        ({"output": {"volume": 101}}, "output.volume"),
        ({"webhook": {"url": "ftp://x", "events": ["session.started"]}}, "webhook.url"),
        ({"webhook": {"url": "https://x", "events": ["session.exploded"]}}, "webhook.events"),
        ({"webhook": {"url": "https://x", "events": ["session.started"], "secret": "short"}}, "webhook.secret"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(client: TestClient, fields: dict[str, Any], param: str) -> None:
    body = {"name": "a", "system_prompt": "p", "voice": "ivy", **fields}
    error = assert_error(client.post("/v1/agents", json=body, headers=AUTH), 422, "VALIDATION_ERROR")
    assert error["param"] == param, error
    assert error["detail"][0]["loc"] == ["body", *[int(p) if p.isdigit() else p for p in param.split(".")]]


def test_tools_take_the_openai_form_and_ignore_a_sent_id(client: TestClient) -> None:
    openai_form = {"type": "function", "id": "tool_mine", "function": {"name": "lookup", "description": "Look up."}}
    (tool,) = create(client, tools=[openai_form])["tools"]
    assert tool["name"] == "lookup" and tool["description"] == "Look up." and tool["id"] != "tool_mine"


# ---------------------------------------------------------------- secrets


def test_header_values_are_write_only(client: TestClient, store: SQLiteStore) -> None:
    http = {
        "url": "https://api.example.com/w",
        "http_method": "get",
        "headers": [{"name": "X-Api-Key", "value": SECRET}],
    }
    record = create(client, tools=[weather_tool(**http)])
    header = record["tools"][0]["http"]["headers"][0]
    assert record["tools"][0]["http"]["http_method"] == "GET" and record["tools"][0]["http"]["url"] == http["url"]
    assert header["name"] == "X-Api-Key" and header["value"] == "***" and ISO.match(header["last_set_at"])
    for response in (client.get(f"/v1/agents/{record['id']}", headers=AUTH), client.get("/v1/agents", headers=AUTH)):
        assert SECRET not in response.text
    full = store.get_agent(Authenticator([KEY]).check_key(KEY).owner, record["id"])
    assert full is not None and full["tools"][0]["http"]["headers"][0]["value"] == SECRET


def test_a_header_is_kept_by_name_rotated_by_value_and_removed(client: TestClient, store: SQLiteStore) -> None:
    owner = Authenticator([KEY]).check_key(KEY).owner
    headers = [
        {"name": "X-Keep", "value": "keep-me"},
        {"name": "X-Rotate", "value": "old"},
        {"name": "X-Drop", "value": "d"},
    ]
    record = create(client, tools=[weather_tool(url="https://api.example.com", headers=headers)])
    before = {h["name"]: h["last_set_at"] for h in record["tools"][0]["http"]["headers"]}
    time.sleep(0.01)
    update = [{"name": "x-keep"}, {"name": "X-Rotate", "value": "new"}, {"name": "X-Drop", "remove": True}]
    response = client.put(
        f"/v1/agents/{record['id']}",
        json={"tools": [weather_tool(url="https://api.example.com", headers=update)]},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    after = {h["name"]: h for h in response.json()["tools"][0]["http"]["headers"]}
    assert set(after) == {"x-keep", "X-Rotate"}
    assert after["x-keep"]["last_set_at"] == before["X-Keep"] and after["X-Rotate"]["last_set_at"] > before["X-Rotate"]
    full = store.get_agent(owner, record["id"])
    assert full is not None
    values = {h["name"]: h["value"] for h in full["tools"][0]["http"]["headers"]}
    assert values == {"x-keep": "keep-me", "X-Rotate": "new"}


def test_a_read_modify_write_keeps_the_masked_values(client: TestClient, store: SQLiteStore) -> None:
    owner = Authenticator([KEY]).check_key(KEY).owner
    record = create(
        client,
        tools=[weather_tool(url="https://a.example.com", headers=[{"name": "X-K", "value": SECRET}])],
        llm=[{"base_url": "https://llm.example.com/v1", "model": "m", "api_key": API_KEY}],
        webhook={"url": "https://hooks.example.com", "events": ["session.completed"], "secret": "x" * 32},
    )
    read = client.get(f"/v1/agents/{record['id']}", headers=AUTH).json()
    body = {k: read[k] for k in ("tools", "llm", "webhook", "name")}
    body["tools"][0]["description"] = "changed"
    assert client.put(f"/v1/agents/{record['id']}", json=body, headers=AUTH).status_code == 200
    full = store.get_agent(owner, record["id"])
    assert full is not None and full["tools"][0]["description"] == "changed"
    assert full["tools"][0]["http"]["headers"][0]["value"] == SECRET
    assert full["llm"][0]["api_key"] == API_KEY and full["webhook"]["secret"] == "x" * 32


def test_an_http_block_without_headers_keeps_them(client: TestClient, store: SQLiteStore) -> None:
    owner = Authenticator([KEY]).check_key(KEY).owner
    record = create(client, tools=[weather_tool(url="https://a.example.com", headers=[{"name": "X-K", "value": "v"}])])
    client.put(f"/v1/agents/{record['id']}", json={"tools": [weather_tool(url="https://b.example.com")]}, headers=AUTH)
    full = store.get_agent(owner, record["id"])
    assert full is not None and full["tools"][0]["http"]["url"] == "https://b.example.com"
    assert full["tools"][0]["http"]["headers"][0]["value"] == "v"


def test_the_llm_api_key_is_never_returned(client: TestClient, store: SQLiteStore) -> None:
    llm = [{"base_url": "https://llm.example.com/v1", "model": "big", "api_key": API_KEY}]
    record = create(client, llm=llm)
    assert record["llm"] == [{"base_url": "https://llm.example.com/v1", "model": "big"}]
    for response in (
        client.get(f"/v1/agents/{record['id']}", headers=AUTH),
        client.put(f"/v1/agents/{record['id']}", json={"greeting": "hi"}, headers=AUTH),
        client.get("/v1/agents", headers=AUTH),
    ):
        assert API_KEY not in response.text
    full = store.get_agent(Authenticator([KEY]).check_key(KEY).owner, record["id"])
    assert full is not None and full["llm"][0]["api_key"] == API_KEY


def test_a_webhook_secret_reads_masked(client: TestClient) -> None:
    hook = {"url": "https://hooks.example.com", "events": ["session.started"], "secret": "y" * 40}
    assert create(client, webhook=hook)["webhook"] == {**hook, "secret": "***"}
    assert create(client, webhook={**hook, "secret": None})["webhook"]["secret"] is None


# ---------------------------------------------------------------- update


def test_put_merges_field_by_field_and_lists_replace(client: TestClient) -> None:
    record = create(
        client,
        greeting="Hi",
        input={"keyterms": ["a", "b"], "turn_detection": {"min_silence": 600, "interrupt_response": False}},
        tools=[weather_tool(), {"name": "other"}],
    )
    time.sleep(0.01)
    response = client.put(
        f"/v1/agents/{record['id']}",
        json={"system_prompt": "New prompt.", "input": {"keyterms": ["c"], "turn_detection": {"min_silence": 800}}},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["system_prompt"] == "New prompt." and updated["greeting"] == "Hi" and updated["name"] == "support"
    assert updated["input"] == {"keyterms": ["c"], "turn_detection": {"min_silence": 800, "interrupt_response": False}}
    assert updated["tools"] == record["tools"]  # not sent: kept
    assert updated["created_at"] == record["created_at"] and updated["updated_at"] > record["updated_at"]
    replaced = client.put(f"/v1/agents/{record['id']}", json={"tools": [{"name": "other"}]}, headers=AUTH).json()
    assert [t["name"] for t in replaced["tools"]] == ["other"]
    assert client.get(f"/v1/agents/{record['id']}", headers=AUTH).json() == replaced


def test_put_null_resets_a_field_and_an_object_key(client: TestClient) -> None:
    record = create(
        client, greeting="Hi", caller_id="+1555", input={"keyterms": ["a"], "language": "es"}, tools=[{"name": "t"}]
    )
    body = {"greeting": None, "caller_id": None, "input": {"language": None}, "tools": None}
    updated = client.put(f"/v1/agents/{record['id']}", json=body, headers=AUTH).json()
    assert updated["greeting"] is None and updated["caller_id"] is None and updated["tools"] == []
    assert updated["input"] == {"keyterms": ["a"]}
    for required in ("name", "system_prompt", "voice"):
        response = client.put(f"/v1/agents/{record['id']}", json={required: None}, headers=AUTH)
        assert assert_error(response, 422, "VALIDATION_ERROR")["param"] == required


def test_put_checks_the_voice_and_changes_nothing_when_refused(client: TestClient) -> None:
    record = create(client)
    response = client.put(f"/v1/agents/{record['id']}", json={"voice": "nobody", "greeting": "x"}, headers=AUTH)
    assert assert_error(response, 422, "VALIDATION_ERROR")["param"] == "voice"
    assert client.get(f"/v1/agents/{record['id']}", headers=AUTH).json() == record
    updated = client.put(f"/v1/agents/{record['id']}", json={"voice": "james"}, headers=AUTH).json()
    assert updated["voice"] == {"voice_id": "james"}


def test_a_tool_keeps_its_id_while_its_name_stays(client: TestClient) -> None:
    record = create(client, tools=[weather_tool(), {"name": "lookup"}])
    ids = {t["name"]: t["id"] for t in record["tools"]}
    assert len(set(ids.values())) == 2
    body = {
        "tools": [{"name": "lookup", "description": "new"}, {"name": "book"}, {**weather_tool(), "timeout_seconds": 5}]
    }
    updated = client.put(f"/v1/agents/{record['id']}", json=body, headers=AUTH).json()
    new_ids = {t["name"]: t["id"] for t in updated["tools"]}
    assert new_ids["lookup"] == ids["lookup"] and new_ids["get_weather"] == ids["get_weather"]
    assert TOOL_ID.match(new_ids["book"]) and new_ids["book"] not in ids.values()
    renamed = client.put(f"/v1/agents/{record['id']}", json={"tools": [{"name": "lookup2"}]}, headers=AUTH).json()
    assert renamed["tools"][0]["id"] not in new_ids.values()
    back = client.put(f"/v1/agents/{record['id']}", json={"tools": [{"name": "lookup"}]}, headers=AUTH).json()
    assert back["tools"][0]["id"] != ids["lookup"]  # the name went away in between: a new tool


def test_put_of_an_unknown_agent_is_404(client: TestClient) -> None:
    assert_error(client.put("/v1/agents/agent_nope", json={"greeting": "x"}, headers=AUTH), 404, "AGENT_NOT_FOUND")


# ---------------------------------------------------------------- get, list, delete


def test_get_by_name_finds_the_newest_of_that_name(client: TestClient) -> None:
    create(client, name="desk")
    newer = create(client, name="desk", greeting="newer")
    got = client.get("/v1/agents/desk", headers=AUTH)
    assert got.status_code == 200 and got.json() == newer
    assert_error(client.get("/v1/agents/nobody", headers=AUTH), 404, "AGENT_NOT_FOUND")


def test_an_unknown_id_is_404_agent_not_found(client: TestClient) -> None:
    error = assert_error(client.get("/v1/agents/agent_0123", headers=AUTH), 404, "AGENT_NOT_FOUND")
    assert error["param"] == "agent_id"


def test_list_pages_newest_first_with_a_cursor(client: TestClient) -> None:
    made = [create(client, name=f"agent-{i}")["id"] for i in range(5)]
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        response = client.get("/v1/agents", params={"limit": 2, "cursor": cursor}, headers=AUTH)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"agents", "has_more", "response_metadata"}
        assert all(set(a) == {"id", "name", "created_at", "updated_at"} for a in page["agents"])
        seen += [a["id"] for a in page["agents"]]
        pages += 1
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] == bool(cursor)
        if not cursor:
            break
    assert pages == 3 and seen == made[::-1]
    everything = client.get("/v1/agents", headers=AUTH).json()
    assert [a["id"] for a in everything["agents"]] == made[::-1]
    assert everything["has_more"] is False and everything["response_metadata"]["next_cursor"] == ""
    exact = client.get("/v1/agents", params={"limit": 5}, headers=AUTH).json()
    assert len(exact["agents"]) == 5 and exact["has_more"] is False


def test_list_limits_and_a_bad_cursor_are_422(client: TestClient) -> None:
    for limit in (0, 201, "x"):
        error = assert_error(client.get("/v1/agents", params={"limit": limit}, headers=AUTH), 422, "VALIDATION_ERROR")
        assert error["param"] == "limit"
    assert client.get("/v1/agents", params={"limit": 200}, headers=AUTH).status_code == 200
    error = assert_error(client.get("/v1/agents", params={"cursor": "garbage!"}, headers=AUTH), 422, "VALIDATION_ERROR")
    assert error["param"] == "cursor"


def test_delete_is_204_then_404(client: TestClient) -> None:
    record = create(client)
    response = client.delete(f"/v1/agents/{record['id']}", headers=AUTH)
    assert response.status_code == 204 and response.content == b""
    assert_error(client.get(f"/v1/agents/{record['id']}", headers=AUTH), 404, "AGENT_NOT_FOUND")
    assert_error(client.delete(f"/v1/agents/{record['id']}", headers=AUTH), 404, "AGENT_NOT_FOUND")
    assert client.get("/v1/agents", headers=AUTH).json()["agents"] == []


# ---------------------------------------------------------------- owners and credentials


def test_another_keys_agents_are_invisible(client: TestClient) -> None:
    mine = create(client)
    theirs = create(client, headers=OTHER, name="theirs")
    assert_error(client.get(f"/v1/agents/{mine['id']}", headers=OTHER), 404, "AGENT_NOT_FOUND")
    assert_error(client.get("/v1/agents/support", headers=OTHER), 404, "AGENT_NOT_FOUND")  # by name too
    assert_error(client.put(f"/v1/agents/{mine['id']}", json={"greeting": "x"}, headers=OTHER), 404, "AGENT_NOT_FOUND")
    assert_error(client.delete(f"/v1/agents/{mine['id']}", headers=OTHER), 404, "AGENT_NOT_FOUND")
    assert [a["id"] for a in client.get("/v1/agents", headers=OTHER).json()["agents"]] == [theirs["id"]]
    assert [a["id"] for a in client.get("/v1/agents", headers=AUTH).json()["agents"]] == [mine["id"]]
    assert client.get(f"/v1/agents/{mine['id']}", headers=AUTH).json()["greeting"] is None


def test_credentials(client: TestClient) -> None:
    assert_error(client.get("/v1/agents"), 401, "MISSING_AUTHORIZATION")
    assert_error(client.post("/v1/agents", json={}), 401, "MISSING_AUTHORIZATION")  # before the body's 422
    assert_error(client.get("/v1/agents", headers={"Authorization": "wrong"}), 401, "UNAUTHORIZED")
    assert client.get("/v1/agents", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    token = client.get("/v1/token", headers=AUTH).json()["token"]
    for method in ("get", "post"):
        response = getattr(client, method)("/v1/agents", headers={"Authorization": f"Bearer {token}"})
        assert_error(response, 403, "FORBIDDEN")
    assert_error(client.get("/v1/agents", headers={"Authorization": SESSIONS_KEY}), 403, "FORBIDDEN")
    assert_error(client.get("/v1/agents", headers={"Authorization": TOKENS_KEY}), 403, "FORBIDDEN")


def test_an_open_server_keeps_agents_for_anonymous(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "open.sqlite3")
    open_client = TestClient(create_app(Settings(preload=False, store_path=str(tmp_path / "x")), store=store))
    record = create(open_client, headers={})
    assert store.get_agent("anonymous", record["id"]) is not None
    assert open_client.get(f"/v1/agents/{record['id']}", headers={"Authorization": "any"}).status_code == 200


def test_the_app_builds_its_store_from_the_settings_and_it_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "data" / "records.sqlite3"
    with TestClient(create_app(settings_for(path))) as first:
        record = create(first)
    assert path.is_file()
    with TestClient(create_app(settings_for(path))) as second:
        assert second.get(f"/v1/agents/{record['id']}", headers=AUTH).json() == record
    data_dir = tmp_path / "dir"
    settings = settings_for(path).model_copy(update={"store_path": None, "data_dir": str(data_dir)})
    with TestClient(create_app(settings)) as third:
        create(third)
    assert (data_dir / "voxgate.sqlite3").is_file()


# ---------------------------------------------------------------- binding


async def test_a_stored_agent_binds_as_a_session_update(store: SQLiteStore, client: TestClient) -> None:
    owner = Authenticator([KEY]).check_key(KEY).owner
    http = {"url": "https://a.example.com", "http_method": "PATCH", "headers": [{"name": "X-K", "value": SECRET}]}
    record = create(
        client,
        greeting="Hi",
        tools=[weather_tool(**http)],
        llm=[{"base_url": "https://llm.example.com/v1", "model": "m", "api_key": API_KEY}],
        output={"volume": 50},
    )
    lookup = agent_lookup(store)
    found = await lookup(owner, "support")
    assert found is not None
    agent_id, session = found
    assert agent_id == record["id"] and isinstance(session, SessionConfig)
    assert session.output is not None and session.output.voice == "ivy" and session.output.volume == 50
    assert session.greeting == "Hi" and session.tools is not None
    assert session.tools[0].http == {
        "url": "https://a.example.com",
        "http_method": "PATCH",
        "headers": [{"name": "X-K", "value": SECRET}],
    }
    assert session.llm is not None and session.llm[0].api_key == API_KEY
    assert await lookup("key_someone_else", record["id"]) is None


# ---------------------------------------------------------------- voxgate agents import


def test_cli_import_of_the_examples_twice_updates_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("VOXGATE_STORE_PATH", str(path))
    files = sorted((ROOT / "examples" / "agents").glob("*.yaml"))
    assert len(files) == 3

    def run(*extra: str) -> dict[str, str]:
        assert cli.main(["agents", "import", *extra, *map(str, files)]) == 0
        rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
        return {name: agent_id for agent_id, name, _ in rows}

    first = run("--key", KEY)
    assert set(first) == {"dental", "reminder", "support"} and all(ID.match(i) for i in first.values())
    store = SQLiteStore(path)
    owner = Authenticator([KEY]).check_key(KEY).owner
    dental = store.get_agent(owner, first["dental"])
    assert dental is not None and dental["voice"] == {"voice_id": "ivy"}
    tool = dental["tools"][0]
    assert tool["name"] == "check_slots" and tool["timeout_seconds"] == 8
    assert tool["http"]["url"] == "https://schedule.example.com/voxgate/check_slots" and tool["http"]["headers"] == []
    assert dental["input"]["turn_detection"] == {"min_silence": 700, "max_silence": 1800, "interrupt_response": True}
    assert "Invisalign" in dental["input"]["keyterms"]
    reminder = store.get_agent(owner, "reminder")
    assert (
        reminder is not None
        and "{clinic}" not in reminder["greeting"]
        and "Lakeside Family Clinic" in reminder["greeting"]
    )
    tool_id = tool["id"]
    store.close()

    second = run("--key", KEY)
    assert second == first
    store = SQLiteStore(path)
    page = store.list_agents(owner, limit=10)
    assert len(page.items) == 3  # updated, not duplicated
    again = store.get_agent(owner, "dental")
    assert again is not None and again["tools"][0]["id"] == tool_id and again["updated_at"] > dental["updated_at"]
    assert again["created_at"] == dental["created_at"]
    assert store.list_agents("anonymous", limit=10).items == []  # the key's owner, not anonymous
    store.close()
    anonymous = run()
    assert set(anonymous) == set(first) and set(anonymous.values()).isdisjoint(first.values())


def test_cli_import_reports_a_bad_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXGATE_STORE_PATH", str(tmp_path / "cli.sqlite3"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsystem_prompt: hi\nvoice: nobody-at-all\n")
    assert cli.main(["agents", "import", str(bad)]) == 1
    assert SQLiteStore(tmp_path / "cli.sqlite3").list_agents("anonymous", limit=5).items == []
