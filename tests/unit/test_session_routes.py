"""Session records over REST (§10.1), written through the session code's SessionRecords methods, and
the signed artifact links."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from voxgate.app import create_app
from voxgate.config import Settings
from voxgate.server import session_routes
from voxgate.server.auth import Authenticator
from voxgate.store import SQLiteStore

KEY = "sessions-key"
OTHER_KEY = "sessions-other-key"
SESSIONS_KEY = "sessions-scope-only"
AUTH = {"Authorization": KEY}
OTHER = {"Authorization": OTHER_KEY}
OWNER = Authenticator([KEY]).check_key(KEY).owner
OTHER_OWNER = Authenticator([OTHER_KEY]).check_key(OTHER_KEY).owner
ERROR_FIELDS = {"code", "message", "param", "request_id", "errors", "detail"}
LISTED = {"id", "agent_id", "status", "public_close_reason", "duration_seconds", "created_at", "ended_at"}
T0 = 1_800_000_000.0
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt "


def make_client(store: SQLiteStore, **overrides: Any) -> TestClient:
    keys = [SecretStr(KEY), SecretStr(OTHER_KEY), SecretStr(f"{SESSIONS_KEY}:sessions")]
    settings = Settings(preload=False, api_keys=keys, store_path=store.path, **overrides)
    return TestClient(create_app(settings, store=store))


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "voxgate.sqlite3")


@pytest.fixture
def client(store: SQLiteStore) -> TestClient:
    return make_client(store)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_FIELDS and body["code"] == code, body
    return body


def finished(store: SQLiteStore, session_id: str, *, owner: str = OWNER, agent_id: str | None = "agent_a",
             start: float = T0, audio: bool = False) -> None:  # fmt: skip
    store.start_session(session_id, owner, agent_id, {"system_prompt": "You help.", "tools": []}, start)
    store.finish_session(session_id, "completed", "client_end", start + 42.25)
    store.add_artifact(session_id, "timeline", "application/json", json.dumps([{"role": "user"}]).encode())
    store.add_artifact(session_id, "metadata", "application/json", b'{"session_id": "%s"}' % session_id.encode())
    if audio:
        store.add_artifact(session_id, "audio", "audio/wav", WAV)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# ---------------------------------------------------------------- list


def test_list_shows_the_records_newest_first(client: TestClient, store: SQLiteStore) -> None:
    finished(store, "sess_1", start=T0)
    store.start_session("sess_2", OWNER, None, {}, T0 + 100)
    response = client.get("/v1/sessions", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"sessions", "has_more", "response_metadata"}
    assert body["has_more"] is False and body["response_metadata"] == {"next_cursor": ""}
    live, done = body["sessions"]
    assert set(live) == LISTED and set(done) == LISTED
    assert live == {
        "id": "sess_2",
        "agent_id": None,
        "status": "active",
        "public_close_reason": None,
        "duration_seconds": None,
        "created_at": "2027-01-15T08:01:40Z",
        "ended_at": None,
    }
    assert done["status"] == "completed" and done["public_close_reason"] == "client_end"
    assert done["duration_seconds"] == 42.25 and done["agent_id"] == "agent_a"
    assert done["created_at"] == "2027-01-15T08:00:00Z" and done["ended_at"] == "2027-01-15T08:00:42.250000Z"


def test_status_moves_through_the_session_codes_writes(client: TestClient, store: SQLiteStore) -> None:
    store.start_session("sess_1", OWNER, None, {}, T0)

    def status() -> str:
        value: str = client.get("/v1/sessions/sess_1", headers=AUTH).json()["status"]
        return value

    assert status() == "active"
    store.set_status("sess_1", "disconnected")
    assert status() == "disconnected"
    store.finish_session("sess_1", "failed", "grace_expired", T0 + 30)
    assert status() == "failed"


def test_list_pages_and_filters(client: TestClient, store: SQLiteStore) -> None:
    for i in range(7):
        store.start_session(f"sess_{i}", OWNER, "agent_a" if i % 2 else "agent_b", {}, T0 + i)
        if i < 5:
            store.finish_session(f"sess_{i}", "completed", "client_end", T0 + i + 1)
    store.start_session("sess_theirs", OTHER_OWNER, "agent_a", {}, T0 + 50)

    def walk(**params: Any) -> tuple[list[str], int]:
        ids: list[str] = []
        cursor, pages = "", 0
        while True:
            page = client.get("/v1/sessions", params={**params, "cursor": cursor}, headers=AUTH).json()
            ids += [s["id"] for s in page["sessions"]]
            pages += 1
            cursor = page["response_metadata"]["next_cursor"]
            assert page["has_more"] == bool(cursor)
            if not cursor:
                return ids, pages

    assert walk(limit=3) == ([f"sess_{i}" for i in range(6, -1, -1)], 3)
    assert walk(limit=2, agent_id="agent_a") == (["sess_5", "sess_3", "sess_1"], 2)
    assert walk(status="active") == (["sess_6", "sess_5"], 1)
    assert walk(status="completed", agent_id="agent_b", limit=1) == (["sess_4", "sess_2", "sess_0"], 3)
    assert walk(status="failed") == ([], 1)
    for limit in (0, 201):
        error = assert_error(client.get("/v1/sessions", params={"limit": limit}, headers=AUTH), 422, "VALIDATION_ERROR")
        assert error["param"] == "limit"
    error = assert_error(client.get("/v1/sessions?cursor=%%%", headers=AUTH), 422, "VALIDATION_ERROR")
    assert error["param"] == "cursor"


# ---------------------------------------------------------------- get


def test_get_adds_the_config_and_signed_artifact_links(client: TestClient, store: SQLiteStore) -> None:
    finished(store, "sess_1", audio=True)
    response = client.get("/v1/sessions/sess_1", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == LISTED | {"config", "artifacts"}
    assert body["config"] == {"system_prompt": "You help.", "tools": []}
    assert [(a["type"], a["content_type"]) for a in body["artifacts"]] == [
        ("timeline", "application/json"),
        ("metadata", "application/json"),
        ("audio", "audio/wav"),
    ]
    for artifact in body["artifacts"]:
        url = urlsplit(artifact["url"])
        assert url.scheme == "http" and url.netloc == "testserver"
        assert url.path == f"/v1/sessions/sess_1/artifacts/{artifact['type']}"
        query = parse_qs(url.query)
        assert re.fullmatch(r"[0-9a-f]{64}", query["signature"][0])
        assert 0 < int(query["expires"][0]) - time.time() <= 301


def test_a_session_without_artifacts_lists_none(client: TestClient, store: SQLiteStore) -> None:
    store.start_session("sess_live", OWNER, None, {"greeting": "Hi"}, T0)
    body = client.get("/v1/sessions/sess_live", headers=AUTH).json()
    assert body["artifacts"] == [] and body["config"] == {"greeting": "Hi"} and body["ended_at"] is None


def test_the_public_url_is_the_links_base(store: SQLiteStore) -> None:
    finished(store, "sess_1")
    client = make_client(store, public_url="https://voice.example.com/")
    url = client.get("/v1/sessions/sess_1", headers=AUTH).json()["artifacts"][0]["url"]
    assert url.startswith("https://voice.example.com/v1/sessions/sess_1/artifacts/timeline?expires=")


def test_unknown_and_other_owners_sessions_are_404(client: TestClient, store: SQLiteStore) -> None:
    finished(store, "sess_theirs", owner=OTHER_OWNER)
    for path in ("/v1/sessions/sess_nope", "/v1/sessions/sess_theirs"):
        error = assert_error(client.get(path, headers=AUTH), 404, "SESSION_NOT_FOUND")
        assert error["param"] == "session_id"
        assert_error(client.delete(path, headers=AUTH), 404, "SESSION_NOT_FOUND")
    assert client.get("/v1/sessions", headers=AUTH).json()["sessions"] == []
    assert client.get("/v1/sessions/sess_theirs", headers=OTHER).status_code == 200
    assert store.get_session(OTHER_OWNER, "sess_theirs") is not None  # the refused DELETE left it


# ---------------------------------------------------------------- artifact links


def test_an_artifact_link_works_without_authorization(client: TestClient, store: SQLiteStore) -> None:
    finished(store, "sess_1", audio=True)
    artifacts = {a["type"]: a for a in client.get("/v1/sessions/sess_1", headers=AUTH).json()["artifacts"]}
    timeline = client.get(path_of(artifacts["timeline"]["url"]))
    assert timeline.status_code == 200 and timeline.headers["content-type"].startswith("application/json")
    assert timeline.json() == [{"role": "user"}]
    assert 'filename="sess_1-timeline.json"' in timeline.headers["content-disposition"]
    audio = client.get(path_of(artifacts["audio"]["url"]))
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav" and audio.content == WAV
    metadata = client.get(path_of(artifacts["metadata"]["url"]))
    assert metadata.json() == {"session_id": "sess_1"}


def test_an_expired_link_is_refused(store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    finished(store, "sess_1")
    client = make_client(store, artifact_url_ttl_s=60)
    now = 1_900_000_000.0
    monkeypatch.setattr(session_routes, "now", lambda: now)
    url = client.get("/v1/sessions/sess_1", headers=AUTH).json()["artifacts"][0]["url"]
    assert int(parse_qs(urlsplit(url).query)["expires"][0]) == now + 60
    now += 60
    assert client.get(path_of(url)).status_code == 200
    now += 1
    error = assert_error(client.get(path_of(url)), 403, "FORBIDDEN")
    assert "expired" in error["message"]


def test_a_tampered_link_is_refused(client: TestClient, store: SQLiteStore) -> None:
    finished(store, "sess_1")
    finished(store, "sess_2")
    url = client.get("/v1/sessions/sess_1", headers=AUTH).json()["artifacts"][0]["url"]
    query = parse_qs(urlsplit(url).query)
    expires, signature = query["expires"][0], query["signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    for path in (
        f"/v1/sessions/sess_1/artifacts/timeline?expires={expires}&signature={flipped}",
        f"/v1/sessions/sess_1/artifacts/timeline?expires={int(expires) + 3600}&signature={signature}",
        f"/v1/sessions/sess_2/artifacts/timeline?expires={expires}&signature={signature}",
        f"/v1/sessions/sess_1/artifacts/metadata?expires={expires}&signature={signature}",
        f"/v1/sessions/sess_1/artifacts/timeline?expires={expires}",
        "/v1/sessions/sess_1/artifacts/timeline",
        f"/v1/sessions/sess_1/artifacts/timeline?expires=abc&signature={signature}",
    ):
        assert_error(client.get(path), 403, "FORBIDDEN")
    assert (
        client.get(f"/v1/sessions/sess_1/artifacts/timeline?expires={expires}&signature={signature}").status_code == 200
    )


def test_links_still_work_after_a_restart_of_the_store(tmp_path: Path) -> None:
    path = tmp_path / "restart.sqlite3"
    first_store = SQLiteStore(path)
    finished(first_store, "sess_1")
    url = make_client(first_store).get("/v1/sessions/sess_1", headers=AUTH).json()["artifacts"][0]["url"]
    first_store.close()
    assert make_client(SQLiteStore(path)).get(path_of(url)).status_code == 200


# ---------------------------------------------------------------- delete


def test_delete_removes_the_record_and_its_artifacts_at_once(client: TestClient, store: SQLiteStore) -> None:
    finished(store, "sess_1", audio=True)
    finished(store, "sess_2", start=T0 + 1)
    urls = [a["url"] for a in client.get("/v1/sessions/sess_1", headers=AUTH).json()["artifacts"]]
    response = client.delete("/v1/sessions/sess_1", headers=AUTH)
    assert response.status_code == 204 and response.content == b""
    assert_error(client.get("/v1/sessions/sess_1", headers=AUTH), 404, "SESSION_NOT_FOUND")
    assert [s["id"] for s in client.get("/v1/sessions", headers=AUTH).json()["sessions"]] == ["sess_2"]
    for url in urls:
        assert_error(client.get(path_of(url)), 404, "NOT_FOUND")  # a signed link of a deleted session
    assert store.get_artifact("sess_1", "audio") is None


def test_delete_ends_a_live_session_first(client: TestClient, store: SQLiteStore) -> None:
    store.start_session("sess_live", OWNER, None, {}, T0)
    seen: list[tuple[str, bool]] = []

    async def end_live(session_id: str) -> None:
        # The live session's end writes its record, as the session code will; the DELETE then removes it.
        seen.append((session_id, store.get_session(OWNER, session_id) is not None))
        store.finish_session(session_id, "completed", "client_end", T0 + 5)
        store.add_artifact(session_id, "timeline", "application/json", b"[]")

    client.app.state.end_live_session = end_live  # type: ignore[attr-defined]
    assert client.delete("/v1/sessions/sess_live", headers=AUTH).status_code == 204
    assert seen == [("sess_live", True)]
    assert store.get_session(OWNER, "sess_live") is None and store.get_artifact("sess_live", "timeline") is None
    calls: list[str] = []
    client.app.state.end_live_session = calls.append  # type: ignore[attr-defined]  # a plain function will do
    store.start_session("sess_2", OWNER, None, {}, T0)
    assert client.delete("/v1/sessions/sess_2", headers=AUTH).status_code == 204 and calls == ["sess_2"]
    assert client.delete("/v1/sessions/sess_2", headers=AUTH).status_code == 404 and calls == ["sess_2"]


# ---------------------------------------------------------------- credentials


def test_credentials(client: TestClient, store: SQLiteStore) -> None:
    finished(store, "sess_1")
    for method, path in (("get", "/v1/sessions"), ("get", "/v1/sessions/sess_1"), ("delete", "/v1/sessions/sess_1")):
        assert_error(getattr(client, method)(path), 401, "MISSING_AUTHORIZATION")
        assert_error(getattr(client, method)(path, headers={"Authorization": "wrong"}), 401, "UNAUTHORIZED")
        assert_error(getattr(client, method)(path, headers={"Authorization": SESSIONS_KEY}), 403, "FORBIDDEN")
        token = client.get("/v1/token", headers=AUTH).json()["token"]
        assert_error(getattr(client, method)(path, headers={"Authorization": f"Bearer {token}"}), 403, "FORBIDDEN")
    assert client.get("/v1/sessions", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert store.get_session(OWNER, "sess_1") is not None


def test_retention_purge_removes_what_the_routes_show(client: TestClient, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ret.sqlite3", retention_days=1)
    client = make_client(store)
    finished(store, "sess_old", start=T0 - 3 * 86_400)
    finished(store, "sess_new", start=T0)
    assert store.purge_expired(T0 + 60) == 1
    assert [s["id"] for s in client.get("/v1/sessions", headers=AUTH).json()["sessions"]] == ["sess_new"]
    assert_error(client.get("/v1/sessions/sess_old", headers=AUTH), 404, "SESSION_NOT_FOUND")
