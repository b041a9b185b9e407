"""Access, tokens, resumption and every error code, from a plain client's point of view."""

from __future__ import annotations

import asyncio
import base64
import json
from types import EllipsisType

import httpx
import pytest

from tests.e2e.conftest import (
    API_KEY,
    OTHER_KEY,
    SESSIONS_ONLY_KEY,
    TOKENS_ONLY_KEY,
    Server,
    start_server,
    stop_server,
    synthesize,
)
from tests.e2e.test_conversation import SYSTEM_PROMPT, say, words
from tests.e2e.wsclient import Client, silence

pytestmark = [pytest.mark.asyncio(loop_scope="session")]


async def expect_error(
    client: Client, code: str, *, param: str | None = None, session_id: str | EllipsisType | None = None
) -> dict:
    """The next `session.error` has `code`, a message, and `param` and `session_id` as given (§5, §7.1):
    `param` names the field of a validation error, `session_id` is null until there is a session
    (`...`: not checked)."""
    event = await client.next("session.error", timeout=30)
    assert event.data["code"] == code, event.data
    assert event.data["message"] and isinstance(event.data["timestamp"], int | float)
    assert event.data.get("param") == param, event.data
    if session_id is not ...:
        assert event.data.get("session_id") == session_id, event.data
    return event.data


async def still_alive(client: Client) -> None:
    """The session survived: a later update is still answered."""
    await client.send({"type": "session.update", "session": {"system_prompt": SYSTEM_PROMPT}})
    await client.next("session.updated", timeout=10)


def mint(server: Server, key: str, seconds: int = 60) -> httpx.Response:
    return httpx.get(
        f"{server.http}/v1/token",
        params={"expires_in_seconds": seconds},
        headers={"Authorization": f"Bearer {key}"},
    )


# ------------------------------------------------------------------ access


async def test_health_and_voice_catalog(server: Server) -> None:
    assert httpx.get(f"{server.http}/health").json()["status"] == "ok"
    catalog = httpx.get(f"{server.http}/v1/voices").json()
    ids = {v["id"] for v in catalog["voices"]}
    assert {"joe", "jf_alpha", "jm_kumo", "ivy", "james", "sophie"} <= ids


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key"}])
async def test_bad_or_missing_key_is_unauthorized(server: Server, headers: dict) -> None:
    key = headers.get("Authorization", "").removeprefix("Bearer ") or None
    client = await Client.connect(server.url, key)
    await expect_error(client, "UNAUTHORIZED")
    assert await client.wait_closed(5) == 1008


async def test_token_opens_one_socket_once(server: Server) -> None:
    response = mint(server, API_KEY)
    assert response.status_code == 200
    token = response.json()["token"]
    first = await Client.connect(server.url, token=token)
    ready = await first.configure(system_prompt=SYSTEM_PROMPT)
    assert ready["type"] == "session.ready", ready
    second = await Client.connect(server.url, token=token)
    await expect_error(second, "UNAUTHORIZED")
    assert await second.wait_closed(5) == 1008
    await first.close()


async def test_expired_token_is_unauthorized(server: Server) -> None:
    token = mint(server, API_KEY, seconds=1).json()["token"]
    await asyncio.sleep(1.5)
    client = await Client.connect(server.url, token=token)
    await expect_error(client, "UNAUTHORIZED")
    assert await client.wait_closed(5) == 1008


async def test_token_request_validation(server: Server) -> None:
    for seconds in (0, 601):
        refused = mint(server, API_KEY, seconds=seconds)
        assert refused.status_code == 422, refused.text
        body = refused.json()  # both the contract's error body and FastAPI's detail list (§7.3, §8)
        assert body["code"] == "VALIDATION_ERROR" and body["message"] and "request_id" in body, body
        assert body["detail"][0]["loc"] == ["query", "expires_in_seconds"], body
    unauthorized = mint(server, "nope")
    assert unauthorized.status_code == 401 and unauthorized.json()["code"] == "UNAUTHORIZED"
    assert "error" not in unauthorized.json()  # the contract's body, not the old {"error": {...}}
    assert mint(server, TOKENS_ONLY_KEY).status_code == 200
    forbidden = mint(server, SESSIONS_ONLY_KEY)
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "FORBIDDEN"
    token = mint(server, API_KEY).json()["token"]
    assert mint(server, token).json()["code"] == "FORBIDDEN"  # a token cannot mint tokens


async def test_key_without_session_permission_is_forbidden(server: Server) -> None:
    client = await Client.connect(server.url, TOKENS_ONLY_KEY)
    await expect_error(client, "FORBIDDEN")
    assert await client.wait_closed(5) == 1008


# ------------------------------------------------------------------ bad input never kills a session


async def test_bad_input_gets_errors_and_the_session_survives(server: Server) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.send({"type": "input.audio", "audio": "AAAA"})  # before session.ready: dropped silently (§3)
    await client.send({"type": "reply.create"})
    await expect_error(client, "invalid_format")  # not allowed before session.update (§4); no session yet
    assert client.types_since() == ["session.error"]  # nothing for the audio
    ready = await client.configure(system_prompt=SYSTEM_PROMPT)
    sid = ready["session_id"]

    await client.send("{not json")
    await expect_error(client, "invalid_format", session_id=sid)
    await client.send(json.dumps([1, 2, 3]))
    await expect_error(client, "invalid_format", session_id=sid)
    await client.send({"type": "response.create"})
    await expect_error(client, "invalid_format", session_id=sid)
    await client.send(b"\x00\x01binary")
    await expect_error(client, "invalid_format", session_id=sid)
    await client.send({"type": "input.audio", "audio": "***not base64***"})
    await expect_error(client, "invalid_audio", session_id=sid)
    await client.send({"type": "input.audio", "audio": 42})
    await expect_error(client, "invalid_audio", session_id=sid)
    # output.voice is fixed after the first update (§4.1)
    await client.send({"type": "session.update", "session": {"output": {"voice": "no-such-voice"}}})
    await expect_error(client, "immutable_field", param="output.voice", session_id=sid)
    await client.send({"type": "session.update", "session": {"input": {"turn_detection": {"vad_threshold": "high"}}}})
    await expect_error(client, "invalid_value", param="input.turn_detection.vad_threshold", session_id=sid)
    await client.send({"type": "session.update", "session": {"input": {"turn_detection": {"min_silence": -5}}}})
    await expect_error(client, "invalid_value", param="input.turn_detection.min_silence", session_id=sid)
    await client.send({"type": "session.update", "session": {"greeting": "A different greeting"}})
    await expect_error(client, "immutable_field", param="greeting", session_id=sid)
    await client.send({"type": "tool.result", "call_id": "call_unknown", "result": "{}"})
    await expect_error(client, "invalid_value", param="call_id", session_id=sid)
    await client.send({"type": "session.resume", "session_id": "sess_x"})
    await expect_error(client, "invalid_format", session_id=sid)  # resume only as the first message
    # Odd-sized PCM chunks are buffered, never an error.
    await client.send({"type": "input.audio", "audio": base64.b64encode(b"\x00" * 333).decode()})
    await client.send({"type": "input.audio", "audio": base64.b64encode(b"\x00" * 1001).decode()})
    await still_alive(client)
    assert sum(e.type == "session.error" for e in client.events) == 13
    await client.close()


async def test_unknown_voice_on_first_update_is_invalid_value(server: Server) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.send({"type": "session.update", "session": {"output": {"voice": "no-such-voice"}}})
    error = await client.next("session.error", timeout=30)
    assert error.data["code"] == "invalid_value" and error.data["param"] == "output.voice", error.data  # §11
    assert "session.ready" not in client.types_since()
    ready = await client.configure(output={"voice": "ivy"})  # the session is still there to configure
    assert ready["type"] == "session.ready", ready
    assert ready["config"]["output"]["voice"] == "ivy"
    await client.close()


async def test_error_flood_is_rate_limited_and_harmless(server: Server) -> None:
    client = await Client.connect(server.url, API_KEY)
    await client.configure(system_prompt=SYSTEM_PROMPT)
    other = await Client.connect(server.url, API_KEY)
    await other.configure(system_prompt=SYSTEM_PROMPT)
    for _ in range(500):
        await client.send("garbage")
    await still_alive(client)
    errors = sum(e.type == "session.error" for e in client.events)
    assert 1 <= errors <= 80, errors
    await still_alive(other)  # another session is untouched
    assert not any(e.type == "session.error" for e in other.events)
    await client.close()
    await other.close()


async def test_at_capacity_is_server_error(server: Server) -> None:
    clients = []
    for _ in range(4):  # the test server allows four
        c = await Client.connect(server.url, API_KEY)
        await c.configure(system_prompt=SYSTEM_PROMPT)
        clients.append(c)
    extra = await Client.connect(server.url, API_KEY)
    await extra.send({"type": "session.update", "session": {}})
    await expect_error(extra, "server_error")
    assert await extra.wait_closed(5) == 1008  # the hosted API's close at capacity (was 1013)
    for c in clients:
        await c.close()
    await asyncio.sleep(0.3)
    again = await Client.connect(server.url, API_KEY)
    assert (await again.configure())["type"] == "session.ready"  # capacity frees when sockets close
    await again.close()


# ------------------------------------------------------------------ resumption


@pytest.mark.slow
async def test_resume_keeps_the_conversation_and_expires_after_the_window(server: Server, speech_dir) -> None:
    client = await Client.connect(server.url, API_KEY)
    ready = await client.configure(system_prompt=SYSTEM_PROMPT)
    session_id = ready["session_id"]
    await say(client, synthesize(speech_dir, "Hi! My name is Alice. Please remember it."))
    await client.next("reply.done", timeout=120)
    await client.ws.close()  # the connection drops

    resumed = await Client.connect(server.url, API_KEY)
    await resumed.send({"type": "session.resume", "session_id": session_id})
    again = await resumed.next("session.ready", "session.error", timeout=10)
    # The same session, its current config and a new resume token (§6.8); no greeting again.
    assert again.type == "session.ready" and again.data["session_id"] == session_id, again.data
    assert again.data["resume_token"] and again.data["resume_token"] != ready["resume_token"]
    assert again.data["config"]["system_prompt"] == SYSTEM_PROMPT
    assert again.data["expires_at"] == ready["expires_at"]
    assert resumed.types_since() == ["session.ready"]  # no session.updated, no greeting
    await say(resumed, synthesize(speech_dir, "What is my name?"))
    await resumed.next("reply.done", timeout=120)
    agent = [e for e in resumed.events if e.type == "transcript.agent"][-1]
    assert "alice" in words(agent.data["text"]), agent.data

    other = await Client.connect(server.url, OTHER_KEY)
    await resumed.ws.close()
    await other.send({"type": "session.resume", "session_id": session_id})
    await expect_error(other, "session_forbidden")
    assert await other.wait_closed(5) == 1008  # a failed resume closes; the client starts fresh (§6.8)

    unknown = await Client.connect(server.url, API_KEY)
    await unknown.send({"type": "session.resume", "session_id": "sess_doesnotexist"})
    await expect_error(unknown, "session_not_found")
    assert await unknown.wait_closed(5) == 1008

    await asyncio.sleep(6)  # the test server's window is 5 s
    late = await Client.connect(server.url, API_KEY)
    await late.send({"type": "session.resume", "session_id": session_id})
    await expect_error(late, "session_not_found")  # past the window, as the hosted API says (not session_expired)
    assert await late.wait_closed(5) == 1008
    fresh = await Client.connect(server.url, API_KEY)  # the client starts fresh on a new socket
    assert (await fresh.configure(system_prompt=SYSTEM_PROMPT))["type"] == "session.ready"
    await fresh.close()


@pytest.mark.slow
async def test_a_resume_racing_the_old_sockets_release_keeps_the_session_live_and_listening(
    server: Server, speech_dir
) -> None:
    """H2: the old socket drops while the agent speaks and the new socket resumes at the same instant.
    Before, the old socket's detach finished after the resume: the session went deaf and was counted as
    detached. Now release and resume take turns, and the resumed session still hears the user."""
    client = await Client.connect(server.url, API_KEY)
    ready = await client.configure(system_prompt=SYSTEM_PROMPT, greeting="Hello! " + "I am here to help you. " * 6)
    session_id = ready["session_id"]
    await client.next("reply.audio", timeout=60)  # the agent is speaking
    connected = httpx.get(f"{server.http}/health").json()["connected"]  # this session and any other test's
    resumed = await Client.connect(server.url, API_KEY)
    client.ws.transport.abort()  # the drop, with no close handshake
    await resumed.send({"type": "session.resume", "session_id": session_id})
    again = await resumed.next("session.ready", "session.error", timeout=10)
    assert again.type == "session.ready" and again.data["session_id"] == session_id, again.data
    await asyncio.sleep(0.5)  # the old socket's release has run by now
    assert httpx.get(f"{server.http}/health").json()["connected"] == connected  # still counted as attached
    mark = len(resumed.events)
    await say(resumed, synthesize(speech_dir, "What is the capital city of France?"))
    await resumed.next("transcript.user", timeout=60)  # not deaf
    await resumed.next("reply.done", timeout=120)
    assert "input.speech.started" in resumed.types_since(mark)
    await resumed.close()


@pytest.mark.slow
async def test_two_sockets_resuming_at_once_leave_exactly_one_holding_the_session(server: Server) -> None:
    """H2: two resumes of one session at the same instant. Before, both got session.ready and stayed
    open, the loser feeding audio into the shared session. Now the later one takes it over and the
    other is closed with 4000."""
    client = await Client.connect(server.url, API_KEY)
    ready = await client.configure(system_prompt=SYSTEM_PROMPT, greeting="Hello! " + "I am here to help you. " * 6)
    session_id = ready["session_id"]
    await client.next("reply.audio", timeout=60)  # the agent is speaking: releasing it takes a moment
    connected = httpx.get(f"{server.http}/health").json()["connected"]
    # The socket holding the session has not noticed any drop: both resumes must take it from it.
    first, second = await Client.connect(server.url, API_KEY), await Client.connect(server.url, API_KEY)
    resume = {"type": "session.resume", "session_id": session_id}
    await asyncio.gather(first.send(resume), second.send(resume))
    await asyncio.sleep(2.0)
    open_ones = [c for c in (client, first, second) if not c.closed.is_set()]
    assert len(open_ones) == 1, [c.close_code for c in (client, first, second)]
    assert open_ones[0] is not client and client.close_code == 4000
    loser = second if open_ones[0] is first else first
    assert loser.close_code == 4000
    assert "session.ready" in open_ones[0].types_since()
    assert httpx.get(f"{server.http}/health").json()["connected"] == connected
    await still_alive(open_ones[0])
    await open_ones[0].close()


# ------------------------------------------------------------------ worker faults


async def assert_failed_reply(client: Client, started, code: str, *, retryable: bool) -> None:
    """After `started`: reply.error → transcript.agent {interrupted} → reply.done {interrupted}, then a
    separate apology reply: reply.started → … → transcript.agent ("sorry") → reply.done {completed} (§7.2)."""
    reply_id = started.data["reply_id"]
    error = await client.next("reply.error", timeout=60)
    assert error.data["reply_id"] == reply_id and error.data["code"] == code, error.data
    assert error.data["message"] and error.data["retryable"] is retryable, error.data
    for key in ("provider_code", "provider_param", "status_code"):  # a local model: null
        assert key in error.data and error.data[key] is None, error.data
    cut = await client.next("transcript.agent", timeout=10)
    assert cut.data["reply_id"] == reply_id and cut.data["interrupted"] is True, cut.data
    done = await client.next("reply.done", timeout=10)
    assert done.data == {**done.data, "reply_id": reply_id, "status": "interrupted"}, done.data
    i_started = next(i for i, e in enumerate(client.events) if e is started)
    i_done = next(i for i, e in enumerate(client.events) if e is done)
    assert [e.type for e in client.events[i_started : i_done + 1] if e.type != "reply.audio"][-3:] == [
        "reply.error",
        "transcript.agent",
        "reply.done",
    ]
    apology = await client.next("reply.started", timeout=30)
    assert apology.data["reply_id"] != reply_id
    apology_done = await client.next("reply.done", timeout=60)
    assert apology_done.data["reply_id"] == apology.data["reply_id"] and apology_done.data["status"] == "completed"
    agent = [e for e in client.events if e.type == "transcript.agent"][-1]
    assert agent.data["reply_id"] == apology.data["reply_id"] and "sorry" in words(agent.data["text"]), agent.data
    assert client.reply_audio(i_done + 1)  # the user hears it


@pytest.mark.slow
async def test_model_faults_are_reported(speech_dir) -> None:
    broken = start_server(
        "broken-stt",
        {"VOXGATE_API_KEYS": API_KEY, "VOXGATE_PRELOAD": "false", "VOXGATE_STT_MODEL": "/nonexistent/model"},
    )
    try:
        client = await Client.connect(broken.url, API_KEY)
        await client.send({"type": "session.update", "session": {}})
        await expect_error(client, "agent_init_failed", session_id=...)
        assert await client.wait_closed(10) == 1011  # before ready → 1011 (§7.1)
    finally:
        stop_server(broken)

    slow = start_server(
        "slow-llm",
        {
            "VOXGATE_API_KEYS": API_KEY,
            "VOXGATE_PRELOAD": "false",
            "VOXGATE_STT_MODEL": "tiny.en",
            "VOXGATE_LLM_MODEL": "smollm2-135m",
            "VOXGATE_LLM_FIRST_TOKEN_TIMEOUT_S": "0.001",
        },
    )
    try:
        client = await Client.connect(slow.url, API_KEY)
        await client.configure(system_prompt=SYSTEM_PROMPT)
        await say(client, synthesize(speech_dir, "What is the capital city of France?"))
        # A model failure mid-session is the reply's, not the session's (§7.2): reply.error, the reply
        # ends interrupted, then a separate apology reply.
        started = await client.next("reply.started", timeout=60)
        await assert_failed_reply(client, started, "llm_timeout", retryable=True)
        await client.send_audio(silence(0.2))
        await still_alive(client)
        assert "session.error" not in client.types_since()
    finally:
        stop_server(slow)


async def test_non_loopback_without_keys_is_refused(python: str) -> None:
    import subprocess

    from tests.e2e.conftest import VOXGATE

    result = subprocess.run(
        [*VOXGATE, "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "VOXGATE_PRELOAD": "false"},
    )
    assert result.returncode == 2 and "VOXGATE_API_KEYS" in result.stderr
