"""One WebSocket: parse client events, route them to the conversation, survive bad input.

Nothing a client sends can take the server down: every message is parsed into the protocol models,
and anything that does not fit becomes a `session.error` with the protocol's code while the socket
stays open. Errors are rate-limited so a flood of garbage cannot turn into a flood of replies.
Audio is decoded here and handed to the socket loop's worker (server/transport.py), so a slow
end-of-turn check never blocks the reading of `tool.result` or the next message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.websockets import WebSocket

from voxgate.audio.input import InputDecoder, decoder_for
from voxgate.protocol.events import (
    CLIENT_EVENT_TYPES,
    ErrorCode,
    InputAudio,
    ServerEvent,
    SessionError,
    SessionReady,
    SessionResume,
    SessionUpdate,
    SessionUpdated,
    ToolResult,
    client_event_adapter,
    to_wire,
)
from voxgate.server.transport import SocketLoop
from voxgate.session.config import ConfigError
from voxgate.session.store import ResumeError

if TYPE_CHECKING:
    from voxgate.server.auth import Principal
    from voxgate.server.sessions import SessionRegistry
    from voxgate.session.conversation import Conversation

log = logging.getLogger("voxgate.connection")

MAX_AUDIO_BYTES_PER_MESSAGE = 1 << 20  # ~22 s of 24 kHz PCM; larger chunks are a client bug
MAX_AUDIO_BACKLOG = 400  # chunks waiting for the worker (~20 s at 50 ms) before we refuse more
ERRORS_PER_SECOND = 10
ERROR_BURST = 30


class _ErrorBudget:
    """Token bucket for error events: a flood of bad messages gets a bounded number of replies."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, burst, time.monotonic()
        self.dropped = 0

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.dropped += 1
        return False


class ClientPlayback:
    """A WebSocket client flushes its own playback on `input.speech.started`, and reports nothing played."""

    acknowledges_playback = False

    async def flush(self) -> None:
        return None

    def rewound(self, reply_id: str, at_s: float) -> None:
        return None


class Connection:
    def __init__(self, websocket: WebSocket, sessions: SessionRegistry, principal: Principal) -> None:
        self.principal = principal
        self.playback = ClientPlayback()
        self.socket = SocketLoop(
            websocket,
            sessions,
            self,
            name="connection",
            audio_backlog=MAX_AUDIO_BACKLOG,
            on_audio_error=self._audio_failed,
        )
        self._input: InputDecoder | None = None
        self._errors = _ErrorBudget(ERRORS_PER_SECOND, ERROR_BURST)

    @property
    def conversation(self) -> Conversation | None:
        return self.socket.conversation

    # ------------------------------------------------------------ sending

    async def send(self, event: ServerEvent) -> None:
        await self.socket.send(to_wire(event))

    async def error(self, code: ErrorCode, message: str) -> None:
        if self._errors.take():
            await self.send(SessionError(code=code, message=message))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.socket.close(code, reason)

    # ------------------------------------------------------------ main loop

    async def run(self) -> None:
        async with self.socket.running(), contextlib.aclosing(self.socket.messages()) as messages:
            async for message in messages:
                if isinstance(message, bytes):
                    await self.error(ErrorCode.INVALID_FORMAT, "send JSON text frames, not binary")
                    continue
                try:
                    await self._on_text(message)
                except ConfigError as exc:
                    await self.error(exc.code, exc.message)
                except Exception as exc:  # a bug must cost one message, not the session
                    log.exception("error handling a client message")
                    await self.error(ErrorCode.SERVER_ERROR, f"internal error: {type(exc).__name__}")

    async def _on_text(self, text: str) -> None:
        try:
            raw: Any = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            await self.error(ErrorCode.INVALID_FORMAT, "message is not valid JSON")
            return
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            await self.error(ErrorCode.INVALID_FORMAT, "message must be a JSON object with a string 'type'")
            return
        kind = raw["type"]
        if kind not in CLIENT_EVENT_TYPES:
            await self.error(ErrorCode.INVALID_FORMAT, f"unknown event type {kind!r}")
            return
        try:
            event = client_event_adapter.validate_python(raw)
        except ValidationError as exc:
            code = ErrorCode.INVALID_VALUE if kind == "session.update" else ErrorCode.INVALID_FORMAT
            if kind == "input.audio":
                code = ErrorCode.INVALID_AUDIO
            await self.error(code, f"{kind}: {_summarize(exc)}")
            return

        if isinstance(event, SessionResume):
            await self._on_resume(event)
        elif isinstance(event, SessionUpdate):
            fields = set(raw.get("session", {}) or {}) if isinstance(raw.get("session"), dict) else set()
            await self._on_update(event, fields)
        elif self.conversation is None or not self.conversation.ready:
            await self.error(ErrorCode.INVALID_FORMAT, f"{kind} before session.update: configure the session first")
        elif isinstance(event, InputAudio):
            await self._on_audio(event)
        elif isinstance(event, ToolResult):
            await self.conversation.on_tool_result(event.call_id, event.result)

    async def _on_update(self, event: SessionUpdate, fields: set[str]) -> None:
        conversation = self.conversation
        if conversation is None:
            conversation = self.socket.open(self.principal.owner)
            if conversation is None:
                await self.error(ErrorCode.SERVER_ERROR, "server at capacity: retry with exponential backoff")
                await self.close(1013, "at capacity")
                return
        first = await conversation.update(event.session, fields)
        if first:
            await self.send(SessionReady(session_id=conversation.session_id))
            await conversation.greet()
        else:
            await self.send(SessionUpdated())

    async def _on_resume(self, event: SessionResume) -> None:
        if self.conversation is not None:
            await self.error(ErrorCode.INVALID_FORMAT, "session.resume must be the first message on a socket")
            return
        try:
            conversation = await self.socket.resume(event.session_id, self.principal.owner)
        except ResumeError as exc:
            await self.error(exc.code, exc.message)
            return
        self._input = None  # a new socket: its audio stream starts afresh
        await self.send(SessionReady(session_id=conversation.session_id))

    async def _on_audio(self, event: InputAudio) -> None:
        assert self.conversation is not None
        try:
            payload = base64.b64decode(event.audio, validate=True)
        except (binascii.Error, ValueError):
            await self.error(ErrorCode.INVALID_AUDIO, "audio is not valid base64")
            return
        if len(payload) > MAX_AUDIO_BYTES_PER_MESSAGE:
            await self.error(ErrorCode.INVALID_AUDIO, "audio chunk too large: send ~50 ms chunks")
            return
        try:
            self._input = decoder_for(self._input, self.conversation.config.input_encoding)
            audio = self._input.decode(payload)
        except Exception as exc:
            await self.error(ErrorCode.INVALID_AUDIO, f"could not convert audio: {exc}")
            return
        if not self.socket.queue_audio(audio):
            await self.error(ErrorCode.SERVER_ERROR, "audio arrives faster than real time; chunk dropped")

    async def _audio_failed(self, exc: Exception) -> None:
        log.error("audio processing failed", exc_info=exc)
        await self.error(ErrorCode.SERVER_ERROR, "internal error while processing audio")


def _summarize(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        parts.append(f"{where or 'value'}: {err['msg']}")
    return "; ".join(parts)
