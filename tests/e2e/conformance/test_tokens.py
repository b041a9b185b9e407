"""§8 Temporary tokens (GET /v1/token, POST /v1/tokens) and §6.9 the token's duration cap."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.conformance.raw import assert_rest_error, connect, rest
from tests.e2e.conftest import API_KEY, Server

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


def get_token(server: Server, params: dict[str, Any] | None = None, key: str = f"Bearer {API_KEY}") -> Any:
    return rest(server.http, "GET", "/v1/token", authorization=key, params=params)


async def test_get_token_returns_token_and_expires_in_seconds(server: Server) -> None:
    response = get_token(server, {"expires_in_seconds": 120})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["token"], str) and body["token"]
    assert body["expires_in_seconds"] == 120


async def test_get_token_accepts_the_raw_key(server: Server) -> None:
    response = get_token(server, {"expires_in_seconds": 60}, key=API_KEY)
    assert response.status_code == 200, response.text


async def test_get_token_without_expires_in_seconds_defaults_to_60(server: Server) -> None:
    response = get_token(server)
    assert response.status_code == 200, response.text
    assert response.json()["expires_in_seconds"] == 60


@pytest.mark.parametrize(
    "params",
    [
        {"expires_in_seconds": 1},
        {"expires_in_seconds": 600},
        {"expires_in_seconds": 60, "max_session_duration_seconds": 60},
        {"expires_in_seconds": 60, "max_session_duration_seconds": 10_800},
    ],
    ids=["expires-1", "expires-600", "max-60", "max-10800"],
)
async def test_get_token_accepts_the_edges_of_each_range(server: Server, params: dict[str, int]) -> None:
    response = get_token(server, params)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("expires_in_seconds", "0"),
        ("expires_in_seconds", "601"),
        ("expires_in_seconds", "soon"),
        ("max_session_duration_seconds", "59"),
        ("max_session_duration_seconds", "10801"),
        ("max_session_duration_seconds", "1.5"),
    ],
)
async def test_get_token_out_of_range_is_422_validation_error_with_query_loc(
    server: Server, name: str, value: str
) -> None:
    params = {"expires_in_seconds": "60", name: value}
    body = assert_rest_error(get_token(server, params), 422, "VALIDATION_ERROR")
    detail = body["detail"]
    assert isinstance(detail, list) and detail, body
    entry = next((d for d in detail if d.get("loc") == ["query", name]), None)
    assert entry is not None, detail
    assert isinstance(entry.get("type"), str) and isinstance(entry.get("msg"), str), entry


async def test_post_tokens_returns_token_and_iso_8601_expires_at(server: Server) -> None:
    before = time.time()
    response = rest(
        server.http, "POST", "/v1/tokens", authorization=f"Bearer {API_KEY}", body={"expires_in_seconds": 120}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["token"], str) and body["token"]
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires_at.utcoffset() is not None and expires_at.utcoffset() == UTC.utcoffset(None), body
    assert before + 110 < expires_at.timestamp() < time.time() + 130, body
    conn = await connect(server.url, token=body["token"])  # a working token
    await conn.start()
    await conn.close()


async def test_post_tokens_defaults_to_60_seconds(server: Server) -> None:
    before = time.time()
    response = rest(server.http, "POST", "/v1/tokens", authorization=API_KEY, body={})
    assert response.status_code == 200, response.text
    expires_at = datetime.fromisoformat(response.json()["expires_at"].replace("Z", "+00:00")).timestamp()
    assert before + 50 < expires_at < time.time() + 70


async def test_post_tokens_out_of_range_is_422_validation_error(server: Server) -> None:
    response = rest(server.http, "POST", "/v1/tokens", authorization=API_KEY, body={"expires_in_seconds": 601})
    assert_rest_error(response, 422, "VALIDATION_ERROR")


async def test_session_opened_with_a_key_gets_the_10800_s_cap_in_expires_at(server: Server) -> None:
    conn = await connect(server.url, authorization=API_KEY)
    connected = time.time()
    ready = await conn.start()
    assert isinstance(ready["expires_at"], int), ready
    assert abs(ready["expires_at"] - (connected + 10_800)) < 30, (ready["expires_at"], connected)
    await conn.close()


async def test_session_ends_at_the_tokens_max_session_duration(server: Server) -> None:
    """§6.9: at the cap, session.error session_expired → session.ended → close 1008, with no warning."""
    token = get_token(server, {"expires_in_seconds": 60, "max_session_duration_seconds": 60}).json()["token"]
    conn = await connect(server.url, token=token)
    connected = time.time()
    ready = await conn.start()
    assert isinstance(ready["expires_at"], int) and abs(ready["expires_at"] - (connected + 60)) < 5, ready
    await asyncio.sleep(50)
    await conn.alive()  # still open 50 s in
    mark = conn.mark()
    expired = await conn.next("session.error", timeout=25)
    assert expired.data["code"] == "session_expired", expired.data
    assert time.time() - connected > 57, time.time() - connected
    ended = await conn.next("session.ended", timeout=10)
    assert ended.index > expired.index
    assert await conn.wait_closed() == (1008, "session_expired")
    assert conn.types(mark)[-2:] == ["session.error", "session.ended"], conn.describe(mark)
