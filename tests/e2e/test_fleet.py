"""Two real Voxgate replicas, A and B, sharing a real redis-server: what a fleet behind a load balancer
needs (issue 18). The replicas are light (nothing embedded is loaded): text in and out, and an
OpenAI-compatible stub LLM that records every request, so "the agent still knows what was said" is
checked on the history B's request carries, not on what a model happens to say.

- a temporary token minted on A opens one socket, once, across A and B;
- a session started on A, dropped, resumes on B with its context and its pending tool call;
- A killed with SIGKILL with a tool call pending: the session resumes on B all the same;
- SIGTERM on A: its client is closed with 1012 (no session.ended), resumes on B, and A exits promptly;
- stored agents and session records written on one replica are read on the other;
- the per-key session cap holds across the fleet, and a dead replica's places lapse.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.conftest import Server, start_server
from tests.e2e.hostile.socket_fixtures import StuckClient, light_env, recv_json, until
from tests.redis_server import RedisServer, redis_server

# Real server processes (on stub backends): not for `--fast`, which is the tests that start no server.
pytestmark = pytest.mark.slow

KEY = "fleet-key"
AUTH = {"Authorization": KEY}
SYSTEM_PROMPT = "You are a concise assistant."
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
SESSION = {
    "system_prompt": SYSTEM_PROMPT,
    "input": {"type": "text"},
    "output": {"type": "text"},
    "tools": [WEATHER_TOOL],
}
NOTED = "Noted, thank you."
SUNNY = "It is sunny in Paris, Ada."
LEASE_S = 15.0


class StubLLM:
    """An OpenAI-compatible chat endpoint: a question about the weather gets a `get_weather` call, a
    tool result gets SUNNY, anything else NOTED. Every request body is kept."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                with stub._lock:
                    stub.requests.append(body)
                last = (body.get("messages") or [{}])[-1]
                if last.get("role") == "tool":
                    deltas: list[dict[str, Any]] = [{"content": SUNNY}]
                    finish = "stop"
                elif "weather" in str(last.get("content", "")).lower():
                    call = {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}
                    deltas = [{"tool_calls": [{"index": 0, "id": f"call_{uuid.uuid4().hex[:8]}", "function": call}]}]
                    finish = "tool_calls"
                else:
                    deltas = [{"content": NOTED}]
                    finish = "stop"
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                with contextlib.suppress(OSError):
                    for delta, reason in [*((d, None) for d in deltas), ({}, finish)]:
                        chunk = {
                            "id": "chatcmpl-stub",
                            "object": "chat.completion.chunk",
                            "created": 0,
                            "model": "stub",
                            "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
                        }
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last_messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests[-1]["messages"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


@pytest.fixture(scope="module")
def llm() -> Iterator[StubLLM]:
    stub = StubLLM()
    yield stub
    stub.close()


def replica(name: str, redis: RedisServer, llm: StubLLM, prefix: str, **extra: str) -> Server:
    env = light_env(
        f"fleet-{name}",
        llm.url,
        VOXGATE_REDIS_URL=redis.url,
        VOXGATE_REDIS_PREFIX=prefix,
        VOXGATE_API_KEYS=KEY,
        VOXGATE_DRAIN_TIMEOUT_S="5",
        **extra,
    )
    return start_server(f"fleet-{name}", env, timeout=120)


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait(10)


@contextlib.contextmanager
def fleet(redis: RedisServer, llm: StubLLM, **extra: str) -> Iterator[tuple[Server, Server]]:
    """Replicas A and B on their own key prefix (so tests do not share state), killed after the test."""
    prefix = f"fleet{uuid.uuid4().hex[:8]}:"
    a = replica("a", redis, llm, prefix, **extra)
    try:
        b = replica("b", redis, llm, prefix, **extra)
        try:
            yield a, b
        finally:
            stop(b)
    finally:
        stop(a)


@contextlib.asynccontextmanager
async def connect(server: Server, *, credential: str = KEY, token: str | None = None) -> AsyncIterator[Any]:
    url = server.url + (f"?token={token}" if token else "")
    headers = {} if token else {"Authorization": f"Bearer {credential}"}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        yield ws


async def say(ws: Any, text: str) -> list[dict[str, Any]]:
    """A user turn (text input): every event up to its reply's `reply.done`."""
    await ws.send(json.dumps({"type": "conversation.message", "role": "user", "content": text}))
    return await events_until(ws, "reply.done")


async def events_until(ws: Any, kind: str, timeout: float = 20.0) -> list[dict[str, Any]]:
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        event = await recv_json(ws, max(0.1, deadline - time.monotonic()))
        seen.append(event)
        if event["type"] == kind:
            return seen
        assert event["type"] not in ("session.error", "reply.error"), event


async def start_session(ws: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "session.update", "session": SESSION}))
    return await until(ws, "session.ready")


async def a_pending_tool_call(ws: Any) -> tuple[dict[str, Any], str]:
    """A session with something said and a `get_weather` call waiting for its result: (ready, call_id)."""
    ready = await start_session(ws)
    events = await say(ws, "My name is Ada and my favourite colour is teal.")
    assert any(e["type"] == "transcript.agent" and e["text"] == NOTED for e in events), events
    events = await say(ws, "What is the weather in Paris?")
    calls = [e for e in events if e["type"] == "tool.call"]
    assert calls and calls[0]["name"] == "get_weather" and calls[0]["arguments"] == {"city": "Paris"}, events
    return ready, str(calls[0]["call_id"])


async def resume_and_answer(server: Server, ready: dict[str, Any], call_id: str, llm: StubLLM) -> None:
    """`session.resume` on `server` with the resume token, then the pending call's result: the reply comes
    from a request that carries everything said before the drop."""
    async with connect(server, credential=ready["resume_token"]) as ws:
        await ws.send(json.dumps({"type": "session.resume", "session_id": ready["session_id"]}))
        again = await until(ws, "session.ready")
        assert again["session_id"] == ready["session_id"] and again["expires_at"] == ready["expires_at"]
        assert again["config"]["tools"][0]["name"] == "get_weather"  # the live configuration came along
        before = len(llm.requests)
        result = {"type": "tool.result", "call_id": call_id, "result": json.dumps({"condition": "sunny"})}
        await ws.send(json.dumps(result))
        events = await events_until(ws, "reply.done")
        assert any(e["type"] == "transcript.agent" and e["text"] == SUNNY for e in events), events
        assert len(llm.requests) > before
        messages = llm.last_messages()
        said = [m.get("content") for m in messages if m["role"] == "user"]
        assert "My name is Ada and my favourite colour is teal." in said, messages
        assert "What is the weather in Paris?" in said, messages
        assert any(m["role"] == "assistant" and m.get("content") == NOTED for m in messages), messages
        calls = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or ()]
        assert [c["id"] for c in calls] == [call_id], messages
        tool = [m for m in messages if m["role"] == "tool"]
        assert tool and tool[-1]["tool_call_id"] == call_id and "sunny" in tool[-1]["content"], messages
        await ws.send(json.dumps({"type": "session.end"}))
        await until(ws, "session.ended")


def record(server: Server, session_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.http}/v1/sessions/{session_id}", headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


# ---------------------------------------------------------------- the tests


async def test_a_token_minted_on_a_opens_one_socket_once_across_the_fleet(redis: RedisServer, llm: StubLLM) -> None:
    with fleet(redis, llm) as (a, b):
        for _ in range(3):
            token = httpx.get(f"{a.http}/v1/token", headers=AUTH, timeout=5).json()["token"]

            async def first_event(server: Server, token: str = token) -> dict[str, Any]:
                """A refused token is told at once (session.error, close 1008); the one accepted socket
                hears nothing until it configures its session."""
                async with connect(server, token=token) as ws:
                    try:
                        event = await recv_json(ws, timeout=2.0)
                    except TimeoutError:
                        await ws.send(json.dumps({"type": "session.update", "session": SESSION}))
                        return await until(ws, "session.ready")
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await ws.recv()
                    assert ws.close_code == 1008, ws.close_code
                    return event

            events = await asyncio.gather(*(first_event(s) for s in (a, b, a, b)))
            opened = [e for e in events if e["type"] != "session.error"]
            refused = [e for e in events if e["type"] == "session.error"]
            assert len(opened) == 1 and len(refused) == 3, events
            assert {e["code"] for e in refused} == {"UNAUTHORIZED"}


async def test_a_dropped_session_resumes_on_the_other_replica_with_its_context_and_tool_call(
    redis: RedisServer, llm: StubLLM
) -> None:
    with fleet(redis, llm) as (a, b):
        async with connect(a) as ws:
            ready, call_id = await a_pending_tool_call(ws)
        # The socket to A is gone (no session.end): the session waits, resumable anywhere.
        await resume_and_answer(b, ready, call_id, llm)
        assert wait_for(lambda: record(a, ready["session_id"])["status"] == "completed", 10)
        detail = record(a, ready["session_id"])  # finished on B, read on A: one record for the fleet
        assert detail["public_close_reason"] == "client_end"
        timeline = httpx.get(next(x["url"] for x in detail["artifacts"] if x["type"] == "timeline"), timeout=5)
        turns = timeline.json()["turns"]  # both replicas' turns, in order
        assert [t["text"] for t in turns if t["role"] == "user"][:2] == [
            "My name is Ada and my favourite colour is teal.",
            "What is the weather in Paris?",
        ], turns
        assert turns[-1]["text"] == SUNNY
        async with connect(a) as ws:  # and A let its copy go: resuming the ended session fails everywhere
            await ws.send(json.dumps({"type": "session.resume", "session_id": ready["session_id"]}))
            assert (await recv_json(ws))["code"] == "session_not_found"


async def test_a_replica_killed_mid_call_leaves_the_session_resumable_on_another(
    redis: RedisServer, llm: StubLLM
) -> None:
    with fleet(redis, llm) as (a, b):
        async with connect(a) as ws:
            ready, call_id = await a_pending_tool_call(ws)
            await asyncio.sleep(0.5)  # the turn's end was saved in the background
            a.process.send_signal(signal.SIGKILL)
            a.process.wait(10)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
        await resume_and_answer(b, ready, call_id, llm)


async def test_sigterm_drains_sessions_to_the_other_replica(redis: RedisServer, llm: StubLLM) -> None:
    with fleet(redis, llm) as (a, b):
        async with connect(a) as ws:
            ready, call_id = await a_pending_tool_call(ws)
            t0 = time.monotonic()
            a.process.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:  # the protocol's "resume": a close with no session.ended before it
                    event = await asyncio.wait_for(ws.recv(), 10)
                    assert json.loads(event)["type"] != "session.ended", event
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012, closed.value
        # At once, as a client does (A may still be stopping): the session was saved before the close.
        await resume_and_answer(b, ready, call_id, llm)
        a.process.wait(15)
        assert time.monotonic() - t0 < 10, "the drain of one session took too long"
        log = a.log.read_text()
        assert "draining: 1 connected sessions" in log and "drained: every session released" in log, log[-2000:]
        assert wait_for(lambda: record(b, ready["session_id"])["status"] == "completed", 10)
        assert record(b, ready["session_id"])["public_close_reason"] == "client_end"  # A never ended it


def stuck_session(server: Server) -> StuckClient:
    """A session held by a raw client that never reads (so A's drain waits for it, up to 5 s)."""
    host, port = server.http.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /v1/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: {KEY}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    client = StuckClient.__new__(StuckClient)
    client.sock = sock
    assert client.send({"type": "session.update", "session": SESSION})
    return client


async def test_a_new_socket_to_a_draining_replica_is_told_503(redis: RedisServer, llm: StubLLM) -> None:
    with fleet(redis, llm) as (a, _):
        stuck = stuck_session(a)
        try:
            assert wait_for(lambda: httpx.get(f"{a.http}/health", timeout=5).json()["connected"] == 1, 10)
            a.process.send_signal(signal.SIGTERM)
            statuses = []
            for _ in range(40):  # while A drains, before it stops listening
                try:
                    async with connect(a):
                        pass
                except websockets.InvalidStatus as refused:
                    statuses.append(refused.response.status_code)
                    break
                except OSError:
                    break  # A stopped listening already
                await asyncio.sleep(0.05)
            assert statuses == [503], statuses
        finally:
            stuck.close()


async def test_stored_agents_and_records_are_the_fleets(redis: RedisServer, llm: StubLLM) -> None:
    with fleet(redis, llm) as (a, b):
        body = {"name": "desk", "system_prompt": "You run the front desk.", "voice": {"voice_id": "ivy"}}
        created = httpx.post(f"{a.http}/v1/agents", json=body, headers=AUTH, timeout=5)
        assert created.status_code == 201, created.text
        agent_id = created.json()["id"]
        got = httpx.get(f"{b.http}/v1/agents/{agent_id}", headers=AUTH, timeout=5)
        assert got.status_code == 200 and got.json()["system_prompt"] == "You run the front desk."
        listed = httpx.get(f"{b.http}/v1/agents", headers=AUTH, timeout=5).json()
        assert [x["id"] for x in listed["agents"]] == [agent_id]
        async with connect(b) as ws:  # a session on B binds the agent stored through A
            await ws.send(json.dumps({"type": "session.update", "session": {"agent_id": agent_id}}))
            ready = await until(ws, "session.ready")
            assert ready["config"]["system_prompt"] == "You run the front desk."
            await ws.send(json.dumps({"type": "session.end"}))
            await until(ws, "session.ended")
        assert wait_for(lambda: record(a, ready["session_id"])["agent_id"] == agent_id, 10)
        assert httpx.delete(f"{b.http}/v1/agents/{agent_id}", headers=AUTH, timeout=5).status_code in (200, 204)
        assert httpx.get(f"{a.http}/v1/agents/{agent_id}", headers=AUTH, timeout=5).status_code == 404


async def test_the_per_key_session_cap_is_the_fleets(redis: RedisServer, llm: StubLLM) -> None:
    with fleet(redis, llm, VOXGATE_MAX_SESSIONS_PER_KEY="1") as (a, b):
        async with connect(a) as held:
            await start_session(held)
            async with connect(b) as ws:  # one place for the key in the whole fleet, taken on A
                await ws.send(json.dumps({"type": "session.update", "session": SESSION}))
                refused = await recv_json(ws)
                assert refused["type"] == "session.error" and refused["code"] == "concurrency_exceeded", refused
            await held.send(json.dumps({"type": "session.end"}))
            await until(held, "session.ended")
        async with connect(b) as ws:  # the place is free again, on the other replica
            await start_session(ws)
            await ws.send(json.dumps({"type": "session.end"}))
            await until(ws, "session.ended")
        async with connect(a) as ws:  # A dies holding the place: its lease lapses, B takes new sessions again
            await start_session(ws)
            a.process.send_signal(signal.SIGKILL)
            a.process.wait(10)
        t0 = time.monotonic()
        while True:
            async with connect(b) as ws:
                await ws.send(json.dumps({"type": "session.update", "session": SESSION}))
                event = await recv_json(ws)
            if event["type"] == "session.updated":
                break
            assert event["code"] == "concurrency_exceeded", event
            assert time.monotonic() - t0 < LEASE_S + 10, "a dead replica's lease did not lapse"
            await asyncio.sleep(1.0)
        assert time.monotonic() - t0 > 2, "the dead replica's session was not counted at all"
