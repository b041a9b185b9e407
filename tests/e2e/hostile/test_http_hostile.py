"""The HTTP side of issue 15, tried as an attacker would: a real server process, a plain client on
127.0.0.1 (raw sockets, httpx, websockets), bounded loops, one test per finding
(/work/shared/design/reliability-findings.md). No models are loaded: the servers run with preload off.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import websockets
from twilio.request_validator import RequestValidator

from tests.e2e.conftest import Server
from tests.e2e.hostile.conftest import (
    BACKEND_SECRET,
    FULL_KEY,
    MAX_LIVE_TOKENS,
    SESSIONS_KEY,
    TOKENS_KEY,
    TWILIO_AUTH_TOKEN,
    log_since,
    rss_peak_kb,
)

MIB = 1 << 20
CALLER = "+15557654321"


def _port(server: Server) -> int:
    return int(urlsplit(server.http).port or 0)


def _stream_url(server: Server) -> str:
    return f"ws://127.0.0.1:{_port(server)}/v1/twilio/stream"


def _signed_webhook(server: Server, call_sid: str) -> httpx.Response:
    url = f"{server.http}/v1/twilio/voice"
    form = {"CallSid": call_sid, "AccountSid": "AC1", "From": CALLER, "To": "+15550001111", "CallStatus": "ringing"}
    signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(url, form)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return httpx.post(url, content=urlencode(form), headers=headers, timeout=10)


async def _stream_post(server: Server, path: str, total: int, *, chunked: bool) -> tuple[int, int]:
    """POST `total` bytes as fast as the server takes them; (the answer's status, bytes sent before it came)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{_port(server)}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: forged\r\n{framing}\r\n\r\n".encode()
    )
    status_line = asyncio.create_task(reader.readline())  # read while writing: the answer may come early
    piece = b"CallSid=CA" + b"x" * (MIB - 10)
    sent = 0
    try:
        while sent < total and not status_line.done():
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            await asyncio.wait_for(writer.drain(), 20)
            sent += len(piece)
        if chunked and not status_line.done():
            writer.write(b"0\r\n\r\n")
    except (ConnectionError, TimeoutError):
        pass  # the server answered and closed: the rest of the body is not wanted
    line = await asyncio.wait_for(status_line, 60)
    writer.close()
    return int(line.split()[1]), sent


def _reset_rss_peak(server: Server) -> None:
    with open(f"/proc/{server.process.pid}/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS


async def test_h1_twilio_webhook_body_is_capped_before_reading(keyed_server: Server) -> None:
    for chunked in (True, False):  # streamed with no length, and declaring 64 MB up front
        _reset_rss_peak(keyed_server)
        before = rss_peak_kb(keyed_server)
        started = time.monotonic()
        status, sent = await _stream_post(keyed_server, "/v1/twilio/voice", 64 * MIB, chunked=chunked)
        growth_mb = (rss_peak_kb(keyed_server) - before) / 1024
        assert status == 413, (chunked, status)
        assert growth_mb < 30, f"server RSS peaked {growth_mb:.0f} MB higher for a 64 MB body (chunked={chunked})"
        assert sent < 32 * MIB and time.monotonic() - started < 20, (sent, chunked)
    assert httpx.get(f"{keyed_server.http}/health", timeout=5).status_code == 200


def test_m4_tokens_only_key_cannot_list_twilio_calls(keyed_server: Server) -> None:
    url = f"{keyed_server.http}/v1/twilio/calls"
    for key in (TOKENS_KEY, SESSIONS_KEY):
        response = httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5)
        assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN", key
    assert httpx.get(url, headers={"Authorization": f"Bearer {FULL_KEY}"}, timeout=5).status_code == 200


async def test_m4_open_mode_refuses_cross_site_websockets_and_rebound_hosts(open_server: Server) -> None:
    ws_url = f"ws://127.0.0.1:{_port(open_server)}"
    for path in ("/v1/ws", "/v1/twilio/stream"):  # a page on another site driving the keyless server
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url + path, origin="https://evil.example", open_timeout=5):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403, path
    # DNS rebinding: the browser talks to 127.0.0.1 but names the attacker's host.
    for path in ("/health", "/v1/twilio/calls", "/v1/sessions"):
        response = httpx.get(f"{open_server.http}{path}", headers={"Host": f"rebind.evil.example:{_port(open_server)}"})
        assert response.status_code == 403, (path, response.status_code)
    cross_site_post = httpx.post(f"{open_server.http}/v1/web/token", headers={"Origin": "https://evil.example"})
    assert cross_site_post.status_code == 403
    # The server's own page, loopback pages and non-browser clients still work.
    own = httpx.post(f"{open_server.http}/v1/web/token", headers={"Origin": open_server.http})
    assert own.status_code == 200 and httpx.get(f"{open_server.http}/health").status_code == 200
    async with websockets.connect(ws_url + "/v1/ws", origin=open_server.http, open_timeout=5) as ws:  # type: ignore[arg-type]
        await ws.close()


def test_m5_web_tool_needs_a_live_session(keyed_server: Server) -> None:
    url = f"{keyed_server.http}/v1/web/agents/support/tools/lookup_account"
    anonymous = httpx.post(url, json={"account": "1001"}, timeout=10)
    assert anonymous.status_code == 401, anonymous.text  # before: the webhook ran for anyone
    web_token = httpx.post(f"{keyed_server.http}/v1/web/token", timeout=5).json()["token"]
    with_token = httpx.post(url, json={"account": "1001"}, headers={"Authorization": f"Bearer {web_token}"})
    assert with_token.status_code == 401  # a page token that opened no session runs nothing
    garbage = httpx.post(url, content=b"{not json", headers={"Authorization": "Bearer rtok_guess"})
    assert garbage.status_code == 401 and garbage.json()["code"] == "UNAUTHORIZED"  # never a 500
    huge = httpx.post(url, content=b"[" * (128 << 10))
    assert huge.status_code == 413


def test_m6_backend_credentials_reach_no_client_and_no_log(keyed_server: Server) -> None:
    offset = keyed_server.log.stat().st_size
    voices = httpx.get(f"{keyed_server.http}/v1/voices", timeout=30)  # unauthenticated
    assert voices.status_code == 200 and "nova" in voices.text
    assert BACKEND_SECRET not in voices.text and "127.0.0.1:9" not in voices.text
    chat = httpx.post(
        f"{keyed_server.http}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {FULL_KEY}"},
        timeout=30,
    )
    assert chat.status_code == 502, chat.text  # the remote LLM is down
    assert BACKEND_SECRET not in chat.text and "voxuser" not in chat.text, chat.text
    time.sleep(0.3)
    log = log_since(keyed_server, offset)
    assert "language model" in log and BACKEND_SECRET not in log, log[-2000:]


def test_l2_token_store_is_bounded(keyed_server: Server) -> None:
    headers = {"Authorization": f"Bearer {FULL_KEY}"}
    statuses = []
    with httpx.Client(base_url=keyed_server.http, headers=headers, timeout=5) as http:
        for _ in range(MAX_LIVE_TOKENS + 5):  # bounded: the cap plus a few
            response = http.get("/v1/token?expires_in_seconds=8")
            statuses.append(response.status_code)
            if response.status_code != 200:
                break
        assert statuses[-1] == 429 and len(statuses) <= MAX_LIVE_TOKENS + 1, statuses
        assert response.json()["code"] == "RATE_LIMITED"
        for _ in range(40):  # they expire, and so make room again (the other tests need tokens too)
            time.sleep(0.25)
            if http.get("/v1/token").status_code == 200:
                break
        else:
            raise AssertionError("the token store did not free up after its tokens expired")


def test_l4_caller_number_is_not_in_info_logs(keyed_server: Server) -> None:
    offset = keyed_server.log.stat().st_size
    assert _signed_webhook(keyed_server, "CA" + "4" * 32).status_code == 200
    time.sleep(0.3)
    log = log_since(keyed_server, offset)
    assert "CA" + "4" * 32 in log  # the call is logged ...
    assert CALLER not in log and CALLER.lstrip("+") not in log, log  # ... but not who called


async def test_l5_replayed_twilio_webhook_and_api_key_stream_are_refused(keyed_server: Server) -> None:
    call_sid = "CA" + "5" * 32
    first = _signed_webhook(keyed_server, call_sid)
    assert first.status_code == 200 and "tok_" in first.text
    for _ in range(3):  # a captured signed request, replayed: no more stream tokens
        replay = _signed_webhook(keyed_server, call_sid)
        assert replay.status_code == 409 and "tok_" not in replay.text
    # The stream takes single-use tokens only: an API key in the TwiML or the URL is refused.
    for url, params in (
        (_stream_url(keyed_server), {"token": FULL_KEY}),
        (f"{_stream_url(keyed_server)}?token={FULL_KEY}", {}),
    ):
        async with websockets.connect(url, open_timeout=5) as ws:
            await ws.send(json.dumps(_start(params)))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def _start(params: dict[str, str], **start: Any) -> dict[str, Any]:
    body = {
        "streamSid": "MZ" + "1" * 32,
        "callSid": "CA" + "1" * 32,
        "tracks": ["inbound"],
        "customParameters": params,
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    return {"event": "start", "sequenceNumber": "1", "streamSid": body["streamSid"], "start": {**body, **start}}


async def test_l6_twilio_gap_fill_cannot_amplify_input(open_server: Server) -> None:
    frames = 150
    async with websockets.connect(_stream_url(open_server), open_timeout=5) as ws:
        await ws.send(json.dumps(_start({}, callSid="CA" + "6" * 32)))
        started = time.monotonic()
        payload = base64.b64encode(b"\xff" * 160).decode()
        for i in range(frames):  # every frame claims 10 s went by since the last one
            media = {"track": "inbound", "chunk": str(i), "timestamp": str(i * 10_000), "payload": payload}
            await ws.send(json.dumps({"event": "media", "sequenceNumber": str(i + 2), "media": media}))
        status: dict[str, Any] = {}
        for _ in range(100):  # up to 10 s for the server to have read every frame
            calls = httpx.get(f"{open_server.http}/v1/twilio/calls", timeout=5).json()["calls"]
            status = next((c for c in calls if c["call_sid"] == "CA" + "6" * 32), {})
            if status.get("media_frames") == frames:
                break
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        await ws.close()
    assert status.get("media_frames") == frames, status
    # Before: 150 frames x (2 s of silence + 20 ms) = 303 s of audio in well under a second.
    assert status["caller_audio_s"] <= elapsed + 2.0 + frames * 0.02 + 0.5, (status, elapsed)


async def test_l1_twilio_malformed_start_and_deep_json_close_cleanly(open_server: Server) -> None:
    offset = open_server.log.stat().st_size
    breakages: list[dict[str, Any]] = [
        {**_start({}), "start": ["not", "an", "object"]},
        {**_start({}), "start": "start"},
        _start({}, mediaFormat="audio/x-mulaw"),
        _start({}, mediaFormat=[8000]),
    ]
    for message in breakages:
        async with websockets.connect(_stream_url(open_server), open_timeout=5) as ws:
            for _ in range(20):
                await ws.send("[" * 200_000)  # past the JSON parser's depth, before any credential
            await ws.send(json.dumps(message))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, message
    await asyncio.sleep(0.3)
    log = log_since(open_server, offset)
    assert not re.search(r"Traceback|ERROR|Exception in ASGI", log), log[-3000:]
    assert log.count("not a Twilio event") <= len(breakages), log[-3000:]  # 20 junk messages: one line a socket
