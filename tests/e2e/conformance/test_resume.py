"""§6.8 Resume: within the window the session comes back with a new resume token and no greeting;
after the window, or for an unknown id, it is session_not_found and close 1008."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conformance.raw import connect, rest, session
from tests.e2e.conftest import API_KEY, Server

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

WINDOW_S = 5  # VOXGATE_RESUME_WINDOW_S of the test server


async def test_resume_within_the_window_gives_the_same_session_a_new_resume_token_and_no_greeting(
    server: Server,
) -> None:
    conn, ready = await session(server.url, API_KEY, {"greeting": "Hi.", "system_prompt": "Be brief."})
    greeting = await conn.next("reply.started", timeout=60)
    await conn.next("reply.done", timeout=60, where=lambda d: d.get("reply_id") == greeting.data["reply_id"])
    await conn.drop()  # the socket drops, with no session.end

    again = await connect(server.url, authorization=f"Bearer {API_KEY}")
    await again.send({"type": "session.resume", "session_id": ready["session_id"]})
    resumed = await again.next("session.ready", "session.error", timeout=15)
    assert resumed.type == "session.ready", resumed.data
    assert resumed.data["session_id"] == ready["session_id"]
    assert isinstance(resumed.data["resume_token"], str) and resumed.data["resume_token"] != ready["resume_token"]
    config = resumed.data["config"]
    assert config["greeting"] == "Hi." and config["system_prompt"] == "Be brief.", config
    assert isinstance(resumed.data["expires_at"], int)
    await again.none_of("reply.started", "reply.audio", seconds=3.0, start=0)  # no greeting again
    await again.alive()
    await again.send({"type": "session.end"})
    await again.next("session.ended", timeout=15)


async def test_resume_after_the_window_is_session_not_found_close_1008(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY)
    await conn.drop()
    await asyncio.sleep(WINDOW_S + 1.5)
    late = await connect(server.url, authorization=API_KEY)
    await late.send({"type": "session.resume", "session_id": ready["session_id"]})
    await late.error("session_not_found")
    assert await late.wait_closed() == (1008, "session_not_found")


async def test_resume_of_an_unknown_session_is_session_not_found_close_1008(server: Server) -> None:
    conn = await connect(server.url, authorization=API_KEY)
    await conn.send({"type": "session.resume", "session_id": "sess_" + "0" * 32})
    await conn.error("session_not_found")
    assert await conn.wait_closed() == (1008, "session_not_found")


async def test_resume_with_a_fresh_temporary_token(server: Server) -> None:
    conn, ready = await session(server.url, API_KEY)
    await conn.drop()
    token = server_token(server)
    again = await connect(server.url, token=token)
    await again.send({"type": "session.resume", "session_id": ready["session_id"]})
    resumed = await again.next("session.ready", "session.error", timeout=15)
    assert resumed.data.get("session_id") == ready["session_id"], resumed.data
    await again.close()


def server_token(server: Server) -> str:
    response = rest(
        server.http, "GET", "/v1/token", authorization=f"Bearer {API_KEY}", params={"expires_in_seconds": 60}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])
