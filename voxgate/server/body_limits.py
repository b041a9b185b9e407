"""Request body limits, enforced while the body is read: before any route authenticates or parses it.

A route that calls `await request.body()` or `request.json()` holds the whole body in memory, and
the framework and uvicorn accept any length, so one unauthenticated 64 MB POST to the Twilio
webhook cost the process +297 MB. This pure-ASGI middleware sits in front of every HTTP route:

- a `Content-Length` over the route's limit is answered 413 at once, without reading a byte of it;
- a body without one (chunked) is counted as its `http.request` messages arrive, and the moment the
  count passes the limit the client gets 413 and the route sees a disconnect (so it stops reading);
  whatever the route then tries to answer is dropped, and the exception it may raise is not a
  traceback in the log.

The answer closes the connection (`Connection: close`): uvicorn then discards the rest of the body
instead of reading it for the next request. WebSocket traffic is not touched: its frames have their
own limit (uvicorn's `ws_max_size`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxgate.server.rest_errors import error_response

log = logging.getLogger("voxgate.server.limits")

KIB = 1 << 10
MIB = 1 << 20

#: What Twilio posts to a voice webhook is a form of a few dozen short fields (about 1-2 KB).
TWILIO_WEBHOOK_BYTES = 64 * KIB
#: OpenAI's own limit on an audio file uploaded for transcription.
UPLOAD_FILE_BYTES = 25 * MIB
#: The whole multipart body of a transcription: the file, its envelope and the short text fields.
TRANSCRIPTION_UPLOAD_BYTES = UPLOAD_FILE_BYTES + 64 * KIB
#: A browser page's tool call: the few arguments an LLM filled in.
WEB_TOOL_BYTES = 64 * KIB
#: Everything else takes a JSON body (or none): agents, tokens, tools, chat completions, speech.
DEFAULT_BODY_BYTES = 1 * MIB


@dataclass(frozen=True)
class RouteLimit:
    """The largest body `prefix` (a path, or a path and everything under it) takes, in bytes."""

    prefix: str
    max_bytes: int

    def matches(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix.rstrip("/") + "/")


def default_limits(default_bytes: int = DEFAULT_BODY_BYTES) -> tuple[RouteLimit, ...]:
    """The per-route limits of the server; a path that matches none gets `default_bytes`."""
    return (
        RouteLimit("/v1/twilio/voice", TWILIO_WEBHOOK_BYTES),
        RouteLimit("/v1/web/agents", WEB_TOOL_BYTES),
        RouteLimit("/v1/audio/transcriptions", TRANSCRIPTION_UPLOAD_BYTES),
        RouteLimit("/", default_bytes),
    )


class BodyTooLarge(Exception):
    """Raised inside a route's `receive` if it keeps reading after its body was refused (never normally)."""


class BodyLimitMiddleware:
    """Answers 413 to a request whose body is, or grows, larger than its route's limit."""

    def __init__(self, app: ASGIApp, limits: Sequence[RouteLimit] | None = None) -> None:
        self.app = app
        self.limits = tuple(limits) if limits is not None else default_limits()

    def limit_for(self, path: str) -> int:
        for limit in self.limits:
            if limit.matches(path):
                return limit.max_bytes
        return DEFAULT_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        max_bytes = self.limit_for(path)
        declared = _content_length(scope)
        if declared == -1:
            await error_response(path, 400, "INVALID_REQUEST", "invalid Content-Length header", close=True)(
                scope, receive, send
            )
            return
        if declared is not None and declared > max_bytes:
            log.warning("refused a %d-byte body for %s (limit %d) before reading it", declared, path, max_bytes)
            await _too_large(path, max_bytes)(scope, receive, send)
            return
        await _LimitedRequest(self.app, scope, receive, send, path, max_bytes).run()


class _LimitedRequest:
    """One request whose body is counted as it is read."""

    def __init__(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, path: str, max_bytes: int) -> None:
        self.app, self.scope, self._receive, self._send = app, scope, receive, send
        self.path, self.max_bytes = path, max_bytes
        self.received = 0
        self.refused = False
        self.response_started = False

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception:
            if not self.refused:
                raise
            # The route failed reading a body we cut off (a disconnect, to it): the client has its 413.
            log.debug("a route failed after its body was refused", exc_info=True)

    async def receive(self) -> Message:
        if self.refused:
            raise BodyTooLarge(f"the body is larger than {self.max_bytes} bytes")
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        self.received += len(message.get("body", b""))
        if self.received <= self.max_bytes:
            return message
        self.refused = True
        log.warning("refused a body for %s past %d bytes while reading it", self.path, self.max_bytes)
        if not self.response_started:
            self.response_started = True
            await _too_large(self.path, self.max_bytes)(self.scope, _nothing, self._send)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the client already has its 413; the route's own answer is dropped
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def _too_large(path: str, max_bytes: int) -> JSONResponse:
    size = f"{max_bytes // MIB} MB" if max_bytes >= MIB else f"{max_bytes // KIB} KB"
    return error_response(path, 413, "PAYLOAD_TOO_LARGE", f"the request body is larger than {size}", close=True)


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when there is none, -1 when it is not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None
