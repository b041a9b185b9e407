"""H1: request bodies are limited while they are read, before any route authenticates or parses them.

The middleware (voxgate/server/body_limits.py) is tried on its own, against a route that records
what it read, and in the app, where every route gets its limit and its own error shape.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.types import Message, Receive, Scope, Send

from voxgate.app import create_app
from voxgate.config import Settings
from voxgate.server.body_limits import (
    KIB,
    MIB,
    TRANSCRIPTION_UPLOAD_BYTES,
    BodyLimitMiddleware,
    RouteLimit,
)


class RecordingRoute:
    """Reads the whole body, as `await request.body()` does, and answers 200 with its length."""

    def __init__(self) -> None:
        self.read = 0
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RuntimeError("client went away")  # what Starlette's ClientDisconnect amounts to
            self.read += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(self.read).encode()})


def chunks(total: int, size: int = 16 * KIB) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"x" * piece


def limited(route: RecordingRoute) -> TestClient:
    return TestClient(BodyLimitMiddleware(route, [RouteLimit("/small", 64 * KIB), RouteLimit("/", MIB)]))


def test_h1_a_declared_length_over_the_limit_is_refused_before_the_route_runs() -> None:
    route = RecordingRoute()
    response = limited(route).post("/small", content=b"x" * (64 * KIB + 1))
    assert response.status_code == 413 and response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert response.headers["connection"] == "close"
    assert route.calls == 0


def test_h1_a_streamed_body_is_cut_off_at_the_limit_and_the_route_reads_no_more() -> None:
    route = RecordingRoute()
    response = limited(route).post("/small", content=chunks(8 * MIB))  # chunked: no Content-Length
    assert response.status_code == 413 and "64 KB" in response.json()["message"]
    assert route.read <= 64 * KIB  # the chunk that crossed the limit never reached the route


def test_h1_bodies_within_the_limit_pass_whole() -> None:
    assert limited(RecordingRoute()).post("/small", content=b"x" * (64 * KIB)).text == str(64 * KIB)
    assert limited(RecordingRoute()).post("/other", content=chunks(MIB)).text == str(MIB)
    assert limited(RecordingRoute()).get("/small").status_code == 200


def test_h1_an_invalid_content_length_is_400() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the route must not run")

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    import asyncio

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": [(b"content-length", b"12abc")]}
    asyncio.run(BodyLimitMiddleware(app)(scope, receive, send))
    assert sent[0]["status"] == 400


@pytest.fixture
def app_client() -> Iterator[TestClient]:
    settings = Settings(preload=False, api_keys=[SecretStr("k")], twilio_auth_token=SecretStr("t"))
    with TestClient(create_app(settings)) as client:
        yield client


def test_h1_every_route_of_the_app_has_its_limit(app_client: TestClient) -> None:
    # The Twilio webhook: 64 KB, unauthenticated, refused before the signature is even looked at.
    twilio = app_client.post("/v1/twilio/voice", content=chunks(MIB), headers={"X-Twilio-Signature": "x"})
    assert twilio.status_code == 413 and twilio.json()["code"] == "PAYLOAD_TOO_LARGE"
    # JSON routes: 1 MB, before the key is checked (no key here), declared or streamed. (A route that
    # never reads its body, such as /v1/web/token, is refused only for a declared length: it holds nothing.)
    for path in ("/v1/tokens", "/v1/agents", "/v1/web/token", "/v1/sessions/x"):
        response = app_client.post(path, content=b"x" * (2 * MIB))
        assert response.status_code == 413, (path, response.text)
    for path in ("/v1/tokens", "/v1/agents"):
        response = app_client.post(path, content=chunks(2 * MIB))
        assert response.status_code == 413, (path, response.text)
    # The OpenAI routes answer in OpenAI's shape.
    chat = app_client.post("/v1/chat/completions", content=b"x" * (2 * MIB))
    assert chat.status_code == 413 and chat.json()["error"]["code"] == "payload_too_large"
    # A transcription upload may be 25 MB, counted as it streams.
    key = {"Authorization": "Bearer k", "Content-Type": "multipart/form-data; boundary=b"}
    upload = app_client.post(
        "/v1/audio/transcriptions", content=chunks(TRANSCRIPTION_UPLOAD_BYTES + 1, MIB), headers=key
    )
    assert upload.status_code == 413 and "25 MB" in upload.json()["error"]["message"]
    below = app_client.post("/v1/audio/transcriptions", content=chunks(2 * MIB, MIB), headers=key)
    assert below.status_code == 400  # under the limit: read, and found not to be a multipart form


def test_h1_the_json_limit_is_a_setting() -> None:
    with TestClient(create_app(Settings(preload=False, max_body_bytes=4096))) as client:
        assert client.post("/v1/tokens", content=b"{" + b" " * 5000 + b"}").status_code == 413
        assert client.post("/v1/twilio/voice", content=b"CallSid=CA1").status_code == 200


def test_h1_deep_json_on_the_openai_routes_is_400_not_500() -> None:
    with TestClient(create_app(Settings(preload=False))) as client:
        response = client.post("/v1/chat/completions", content=b"[" * 600_000 + b"]" * 600_000)
        assert response.status_code == 413  # over 1 MB
        response = client.post("/v1/chat/completions", content=b"[" * 100_000)
        assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]
