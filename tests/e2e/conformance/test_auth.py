"""§2 Authentication: keys, key scopes, temporary tokens and resume tokens on the WebSocket."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conformance.raw import SESS_ID, Conn, assert_rest_error, connect, finish, rest, session
from tests.e2e.conftest import API_KEY, OTHER_KEY, SESSIONS_ONLY_KEY, TOKENS_ONLY_KEY, Server

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


def mint(server: Server, key: str = API_KEY, **params: int) -> str:
    response = rest(server.http, "GET", "/v1/token", authorization=f"Bearer {key}", params=params or None)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def refused(conn: Conn, code: str) -> None:
    """A WS auth failure: session.error with `code`, then close 1008 with the code as the reason (§2, §7.1)."""
    await conn.send_quiet({"type": "session.update", "session": {}})
    error = await conn.error(code)
    assert error["code"] == code
    close_code, reason = await conn.wait_closed()
    assert close_code == 1008, (close_code, reason)
    assert reason == code, reason
    assert not conn.of("session.ready")


@pytest.mark.parametrize(
    "header",
    [API_KEY, f"Bearer {API_KEY}", f"bearer {API_KEY}", f"  BEARER   {API_KEY}  "],
    ids=["raw-key", "bearer", "bearer-lowercase", "bearer-uppercase-whitespace"],
)
async def test_api_key_raw_or_bearer_opens_a_session(server: Server, header: str) -> None:
    conn = await connect(server.url, authorization=header)
    ready = await conn.start()
    assert SESS_ID.match(ready["session_id"]), ready
    await conn.close()


@pytest.mark.parametrize(
    "header", [None, "wrong-key", "Bearer wrong-key", "Bearer "], ids=["missing", "wrong-raw", "wrong-bearer", "empty"]
)
async def test_missing_or_wrong_key_is_unauthorized_then_close_1008(server: Server, header: str | None) -> None:
    conn = await connect(server.url, authorization=header)
    await refused(conn, "UNAUTHORIZED")


async def test_tokens_only_key_cannot_open_a_session_forbidden(server: Server) -> None:
    conn = await connect(server.url, authorization=f"Bearer {TOKENS_ONLY_KEY}")
    await refused(conn, "FORBIDDEN")


async def test_sessions_only_key_opens_a_session(server: Server) -> None:
    conn, ready = await session(server.url, SESSIONS_ONLY_KEY)
    assert SESS_ID.match(ready["session_id"])
    await conn.close()


async def test_sessions_only_key_cannot_mint_tokens_forbidden(server: Server) -> None:
    response = rest(server.http, "GET", "/v1/token", authorization=f"Bearer {SESSIONS_ONLY_KEY}")
    assert_rest_error(response, 403, "FORBIDDEN")
    response = rest(server.http, "POST", "/v1/tokens", authorization=SESSIONS_ONLY_KEY, body={})
    assert_rest_error(response, 403, "FORBIDDEN")


async def test_tokens_only_key_mints_tokens_and_the_token_opens_a_session(server: Server) -> None:
    token = mint(server, TOKENS_ONLY_KEY)
    conn = await connect(server.url, token=token)
    ready = await conn.start()
    assert SESS_ID.match(ready["session_id"])
    await conn.close()


async def test_rest_without_authorization_is_401_missing_authorization(server: Server) -> None:
    assert_rest_error(rest(server.http, "GET", "/v1/token"), 401, "MISSING_AUTHORIZATION")


async def test_rest_with_a_wrong_key_is_401_unauthorized(server: Server) -> None:
    assert_rest_error(rest(server.http, "GET", "/v1/token", authorization="Bearer nope"), 401, "UNAUTHORIZED")
    assert_rest_error(rest(server.http, "GET", "/v1/builtin_tools", authorization="nope"), 401, "UNAUTHORIZED")


async def test_temporary_token_in_query_opens_a_session(server: Server) -> None:
    conn = await connect(server.url, token=mint(server))
    ready = await conn.start()
    assert SESS_ID.match(ready["session_id"])
    await conn.close()


async def test_temporary_token_as_bearer_opens_a_session(server: Server) -> None:
    conn = await connect(server.url, authorization=f"Bearer {mint(server)}")
    ready = await conn.start()
    assert SESS_ID.match(ready["session_id"])
    await conn.close()


async def test_temporary_token_is_single_use(server: Server) -> None:
    token = mint(server)
    first = await connect(server.url, token=token)
    await first.start()
    second = await connect(server.url, token=token)
    await refused(second, "UNAUTHORIZED")
    await first.close()
    third = await connect(server.url, authorization=f"Bearer {token}")  # used, whichever way it is sent
    await refused(third, "UNAUTHORIZED")


async def test_expired_temporary_token_is_unauthorized(server: Server) -> None:
    token = mint(server, expires_in_seconds=1)
    await asyncio.sleep(2.2)
    conn = await connect(server.url, token=token)
    await refused(conn, "UNAUTHORIZED")


async def test_token_expiry_stops_mattering_once_session_ready_arrived(server: Server) -> None:
    conn = await connect(server.url, token=mint(server, expires_in_seconds=1))
    await conn.start()
    await asyncio.sleep(2.2)
    await conn.alive()
    await conn.close()


async def test_temporary_token_cannot_mint_tokens_or_call_rest_forbidden(server: Server) -> None:
    token = mint(server)
    assert_rest_error(rest(server.http, "GET", "/v1/token", authorization=f"Bearer {token}"), 403, "FORBIDDEN")
    assert_rest_error(rest(server.http, "POST", "/v1/tokens", authorization=token, body={}), 403, "FORBIDDEN")
    response = rest(server.http, "GET", "/v1/builtin_tools", authorization=f"Bearer {token}")
    assert_rest_error(response, 403, "FORBIDDEN")


async def test_resume_token_as_bearer_resumes_its_session(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY)
    resume_token = ready["resume_token"]
    assert isinstance(resume_token, str) and resume_token
    await conn.drop()  # a drop: no session.end

    again = await connect(server.url, authorization=f"Bearer {resume_token}")
    await again.send({"type": "session.resume", "session_id": ready["session_id"]})
    resumed = (await again.next("session.ready", "session.error")).data
    assert resumed["type"] == "session.ready", resumed
    assert resumed["session_id"] == ready["session_id"]
    assert isinstance(resumed["resume_token"], str) and resumed["resume_token"] != resume_token
    await again.alive()
    await again.send({"type": "session.end"})
    await again.next("session.ended")


async def test_resume_token_in_query_resumes_its_session(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY)
    await conn.drop()
    again = await connect(server.url, token=ready["resume_token"])
    await again.send({"type": "session.resume", "session_id": ready["session_id"]})
    resumed = (await again.next("session.ready", "session.error")).data
    assert resumed.get("session_id") == ready["session_id"], resumed
    await again.close()


@pytest.mark.parametrize("first", ["session.update", "session.resume-other", "reply.create"])
async def test_resume_token_with_another_first_message_is_forbidden_close_1008(server: Server, first: str) -> None:
    conn, ready = await session(server.url, API_KEY)
    other, other_ready = await session(server.url, API_KEY)
    await conn.drop()
    misused = await connect(server.url, authorization=f"Bearer {ready['resume_token']}")
    if first == "session.update":
        await misused.send_quiet({"type": "session.update", "session": {}})
    elif first == "session.resume-other":
        await misused.send_quiet({"type": "session.resume", "session_id": other_ready["session_id"]})
    else:
        await misused.send_quiet({"type": "reply.create"})
    await misused.error("FORBIDDEN")
    close_code, reason = await misused.wait_closed()
    assert (close_code, reason) == (1008, "FORBIDDEN")
    assert not misused.of("session.ready")
    await other.close()
    await finish(server.url, API_KEY, ready["session_id"])


async def test_resume_of_another_keys_session_is_session_forbidden_close_1008(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY)
    await conn.drop()
    thief = await connect(server.url, authorization=f"Bearer {OTHER_KEY}")
    await thief.send({"type": "session.resume", "session_id": ready["session_id"]})
    await thief.error("session_forbidden")
    assert await thief.wait_closed() == (1008, "session_forbidden")
    await finish(server.url, API_KEY, ready["session_id"])
