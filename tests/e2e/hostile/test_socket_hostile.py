"""Hostile and unlucky WebSocket clients against a real server (shared/design/reliability-findings.md).

One test per finding, each against its own light server process (server/socket_fixtures.py): a
client that stops reading (H6), resumes past the session cap (M1), an audio flood (M2), deep JSON
(L1), a huge event type (L3), and a socket dropped while its reply was still thinking (M7).
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import time
from typing import Any

import websockets

from tests.e2e.hostile.socket_fixtures import (
    ANSWER,
    TEXT_SESSION,
    FakeLLM,
    StuckClient,
    connected,
    health,
    light_server,
    open_session,
    recv_json,
    rss_kb,
    session_rows,
    until,
)

# A session.update whose echo (session.updated) is ~150 KB: prompt and tool descriptions are echoed whole.
BIG_TOOLS = [
    {
        "type": "function",
        "name": f"tool_{i}",
        "description": "d" * 1900,
        "parameters": {"type": "object", "properties": {f"p{j}": {"type": "string"} for j in range(100)}},
    }
    for i in range(40)
]
BIG_UPDATE = {"type": "session.update", "session": {**TEXT_SESSION, "system_prompt": "x" * 15000, "tools": BIG_TOOLS}}
SEND_TIMEOUT_S = 10.0  # the server's (server/transport.py)


def _stall(client: StuckClient, updates: int = 200) -> int:
    """Configure a session, then ask for echoes until the server stops taking input; the client never reads."""
    assert client.send(BIG_UPDATE)
    sent = 1
    for _ in range(updates):
        if not client.send({"type": "session.update", "session": {}}, timeout=1.0):
            break
        sent += 1
    return sent


def _wait(predicate: Any, timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


async def test_h6_a_client_that_stops_reading_is_dropped_resumably_and_sigterm_is_not_blocked() -> None:
    with light_server("h6", VOXGATE_RESUME_WINDOW_S="120") as server:
        stuck = StuckClient(server)
        _stall(stuck)
        assert _wait(lambda: connected(server) == 1, 10), "the stuck client's session never became ready"
        # Dropped within the send timeout (plus slack), though the client keeps its socket open.
        t0 = time.monotonic()
        assert _wait(lambda: connected(server) == 0, SEND_TIMEOUT_S + 15), "a client that stopped reading held on"
        dropped_after = time.monotonic() - t0
        assert dropped_after < SEND_TIMEOUT_S + 15
        # ... and its session is resumable from a new socket: find its id in the record store.
        rows = session_rows(server)
        assert len(rows) == 1, rows
        session_id = rows[0][0]
        async with websockets.connect(server.url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "session.resume", "session_id": session_id}))
            ready = await until(ws, "session.ready")
            assert ready["session_id"] == session_id
        stuck.close()

        # A second stuck client, then SIGTERM: the server exits within its bounded drain.
        stuck = StuckClient(server)
        _stall(stuck)
        assert _wait(lambda: len(session_rows(server)) == 2, 10)
        t0 = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        finally:
            stuck.close()
        assert time.monotonic() - t0 < 16, "SIGTERM took too long with a client that never reads"
        # Every session is finished in the store, none left active or disconnected.
        rows = session_rows(server)
        assert {status for _, status, _ in rows} == {"completed"}, rows
        assert {reason for _, _, reason in rows} == {"server_shutdown"}, rows


async def test_m1_resume_counts_against_the_session_cap_and_a_takeover_does_not() -> None:
    with light_server("m1", VOXGATE_MAX_SESSIONS="2", VOXGATE_RESUME_WINDOW_S="60") as server:
        a, a_id = await open_session(server)
        b, b_id = await open_session(server)
        await a.close()
        assert _wait(lambda: connected(server) == 1, 5)
        c, _ = await open_session(server)  # the cap is full again: b and c
        async with websockets.connect(server.url) as ws:
            await ws.send(json.dumps({"type": "session.resume", "session_id": a_id}))
            error = await until(ws, "session.error")
            assert error["code"] == "server_error", error
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 1008, ws.close_code
        assert connected(server) == 2
        # A takeover of a session still attached changes no count: it is not refused.
        async with websockets.connect(server.url) as ws:
            await ws.send(json.dumps({"type": "session.resume", "session_id": b_id}))
            ready = await until(ws, "session.ready")
            assert ready["session_id"] == b_id
            await asyncio.wait_for(b.wait_closed(), 5)
            assert b.close_code == 4000
            assert connected(server) == 2
        await c.close()


async def test_m2_an_audio_flood_is_refused_before_it_costs_memory() -> None:
    with light_server("m2") as server:
        ws, _ = await open_session(server, {"input": {"type": "audio"}, "output": {"type": "text"}})
        pid = server.process.pid
        before = rss_kb(pid)
        chunk = base64.b64encode(b"\x01\x00" * (240_000)).decode()  # 10 s of 24 kHz PCM per message
        peak, refused = before, 0
        deadline = time.monotonic() + 15
        sent = 0
        while time.monotonic() < deadline:
            await ws.send(json.dumps({"type": "input.audio", "audio": chunk}))
            sent += 1
            if sent % 10 == 0:
                peak = max(peak, rss_kb(pid))
                while True:  # what the server said so far
                    try:
                        event = json.loads(await asyncio.wait_for(ws.recv(), 0.01))
                    except TimeoutError:
                        break
                    refused += event.get("code") == "audio_rate_violation"
        peak = max(peak, rss_kb(pid))
        assert sent > 100, sent  # ~1000 s of audio offered in 15 s
        assert refused > 0
        assert (peak - before) / 1024 < 120, f"RSS grew {(peak - before) / 1024:.0f} MB under the flood"
        await ws.send(json.dumps({"type": "session.update", "session": {}}))
        assert (await until(ws, "session.updated"))["type"] == "session.updated"
        await ws.close()
        assert health(server)["status"] == "ok"


async def test_l1_deep_json_is_invalid_format_without_a_traceback_flood() -> None:
    with light_server("l1") as server:
        ws, _ = await open_session(server)
        log_before = server.log.stat().st_size
        deep = '{"type": "session.update", "session": {"tools": [' + "[" * 2500 + "]" * 2500 + "]}}"
        deeper = "[" * 5000 + "]" * 5000
        for message in (deep, deeper, '{"a":' * 3000 + "1" + "}" * 3000):
            await ws.send(message)
            event = await recv_json(ws)
            assert event["type"] == "session.error" and event["code"] == "invalid_format", event
        for _ in range(100):  # a flood of them: the log stays small (no traceback each)
            await ws.send(deeper)
        await ws.send(json.dumps({"type": "session.update", "session": {}}))
        assert (await until(ws, "session.updated"))["type"] == "session.updated"
        await ws.close()
        grown = server.log.stat().st_size - log_before
        assert "RecursionError" not in server.log.read_text()[log_before:]
        assert grown < 20_000, f"{grown} bytes of log for 103 deep messages"


async def test_l3_errors_never_echo_a_huge_client_value() -> None:
    with light_server("l3") as server:
        ws, _ = await open_session(server)
        huge = "t" * 100_000
        await ws.send(json.dumps({"type": huge}))
        event = await recv_json(ws)
        assert event["code"] == "invalid_format", event
        assert len(json.dumps(event)) < 1000, len(json.dumps(event))
        await ws.send(json.dumps({"type": "session.update", "session": {}}))
        assert (await until(ws, "session.updated"))["type"] == "session.updated"  # still usable
        # A value named in the session's own errors: an unknown stored agent of 100 000 characters.
        async with websockets.connect(server.url) as fresh:
            await fresh.send(json.dumps({"type": "session.update", "session": {"agent_id": "a" * 100_000}}))
            event = await until(fresh, "session.error")
            assert event["code"] == "agent_not_found", event
            assert len(json.dumps(event)) < 1000, len(json.dumps(event))
        await ws.close()


async def test_m7_a_turn_in_flight_at_a_socket_drop_is_answered_after_resume() -> None:
    llm = FakeLLM()
    try:
        with light_server("m7", llm_url=llm.url, VOXGATE_RESUME_WINDOW_S="60") as server:
            ws, session_id = await open_session(server)
            llm.hold_next = True  # the reply will still be thinking when the socket drops
            llm.arrived.clear()
            await ws.send(json.dumps({"type": "conversation.message", "role": "user", "content": "Hi, who are you?"}))
            await until(ws, "transcript.user")
            assert await asyncio.to_thread(llm.arrived.wait, 10), "the LLM was never asked"
            ws.transport.abort()  # the socket drops: no close handshake
            await asyncio.sleep(0.1)  # (the abort takes effect on the client's next loop iteration)
            assert _wait(lambda: connected(server) == 0, 10)
            llm.release()
            async with websockets.connect(server.url) as again:
                await again.send(json.dumps({"type": "session.resume", "session_id": session_id}))
                await until(again, "session.ready")
                transcript = await until(again, "transcript.agent", timeout=20)
                assert transcript["text"] == ANSWER, transcript
                done = await until(again, "reply.done")
                assert done["status"] == "completed", done
    finally:
        llm.close()
