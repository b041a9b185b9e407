"""One WebSocket: parse client events, route them to the conversation, survive bad input.

Nothing a client sends can take the server down: every message is parsed into the protocol models,
and anything that does not fit becomes a `session.error` with the protocol's code (and the field, as
`param`) while the socket stays open. Errors are rate-limited so a flood of garbage cannot turn into
a flood of replies. Audio is decoded here and handed to the socket loop's worker
(server/transport.py), so a slow end-of-turn check never blocks the reading of `tool.result` or the
next message; the backlog is bounded in seconds of audio and checked before a chunk is decoded.
Errors are offered to the socket's outgoing queue, never awaited, so a client that stops reading
cannot stall the reading of its messages (server/transport.py drops it). Nothing a client sent comes
back unbounded: values an error names are clipped to MAX_ECHO_CHARS. The session's lifetime events
live here too: `session.ready` with its resume token and expiry, `session.end`, and the duration cap
(shared/protocol.md §6.7–6.9).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError
from starlette.websockets import WebSocket

from voxgate.audio.codecs import WIRE_RATES
from voxgate.audio.input import InputDecoder, decoder_for
from voxgate.protocol.events import (
    CLIENT_EVENT_TYPES,
    ConversationMessage,
    ErrorCode,
    InputAudio,
    ReplyCancel,
    ReplyCreate,
    ServerEvent,
    SessionEnd,
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
MAX_AUDIO_BACKLOG_S = 20.0  # decoded audio waiting for the worker before more is refused (M2: seconds, not chunks)
MAX_JSON_DEPTH = 64  # deeper messages are invalid_format (json.loads itself fails past ~1000 with RecursionError)
MAX_ECHO_CHARS = 64  # a client's value named in an error is clipped to this
MAX_ERROR_CHARS = 512  # and a whole error message to this
TRACEBACKS_PER_MINUTE = 10  # unexpected errors logged with their traceback; past this, counted and summarized
AUDIO_AHEAD_S = 20.0  # audio beyond this far ahead of the wall clock is dropped (audio_rate_violation)
ERRORS_PER_SECOND = 10
ERROR_BURST = 30
POLICY_VIOLATION = 1008
INTERNAL = 1011
# Before the first session.update only these are accepted (input.audio is dropped silently).
BEFORE_SESSION = frozenset({"session.update", "session.resume", "input.audio"})
# Codes after which the socket closes (shared/protocol.md §7.1).
CLOSING = {
    ErrorCode.AGENT_NOT_FOUND: POLICY_VIOLATION,
    ErrorCode.AGENT_INIT_FAILED: INTERNAL,
    ErrorCode.AGENT_TIMEOUT: INTERNAL,
}


class ResumeTokens(Protocol):
    """Where resume tokens come from (server/auth.py's Authenticator)."""

    async def mint_resume_token(self, session_id: str, owner: str, ttl_s: float) -> str: ...

    async def revoke_resume_tokens(self, session_id: str) -> None: ...


class _AudioPace:
    """How far the client's audio runs ahead of the wall clock, from its first chunk."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.received_s = 0.0

    def admit(self, seconds: float) -> bool:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        if self.received_s + seconds - (now - self.first) > AUDIO_AHEAD_S:
            return False
        self.received_s += seconds
        return True


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


class _TracebackBudget:
    """Process-wide limit on tracebacks of unexpected errors: a client that triggers one per message must
    not turn each of its messages into a screenful of log. Past the budget they are counted, and the
    count is logged with the next traceback allowed."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.window_start = time.monotonic()
        self.logged = 0
        self.suppressed = 0

    def log(self, message: str) -> None:
        """`log.exception(message)` within the budget (call from an `except` block)."""
        now = time.monotonic()
        if now - self.window_start >= 60.0:
            self.window_start, self.logged = now, 0
        if self.logged >= self.per_minute:
            self.suppressed += 1
            return
        self.logged += 1
        if self.suppressed:
            message = f"{message} ({self.suppressed} similar errors not logged)"
            self.suppressed = 0
        log.exception(message)


_tracebacks = _TracebackBudget(TRACEBACKS_PER_MINUTE)


def clip(value: object, limit: int = MAX_ECHO_CHARS) -> str:
    """A client's value for an error message: its repr, cut to `limit` characters with its length said."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else text
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests deeper than `limit` (iterative: a deep value must not recurse here either)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class ClientPlayback:
    """A WebSocket client flushes its own playback on `input.speech.started`, and reports nothing played."""

    acknowledges_playback = False

    async def flush(self) -> None:
        return None

    def rewound(self, reply_id: str, at_s: float) -> None:
        return None


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        sessions: SessionRegistry,
        principal: Principal,
        tokens: ResumeTokens | None = None,
    ) -> None:
        self.principal = principal
        self.tokens = tokens
        self._pace = _AudioPace()
        self._capped = False
        self.playback = ClientPlayback()
        self.socket = SocketLoop(
            websocket,
            sessions,
            self,
            name="connection",
            audio_backlog_s=MAX_AUDIO_BACKLOG_S,
            on_audio_error=self._audio_failed,
        )
        self._input: InputDecoder | None = None
        self._errors = _ErrorBudget(ERRORS_PER_SECOND, ERROR_BURST)

    @property
    def conversation(self) -> Conversation | None:
        return self.socket.conversation

    # ------------------------------------------------------------ sending

    async def send(self, event: ServerEvent) -> None:
        if isinstance(event, SessionError):  # the session's errors too (an unknown call_id, an agent_id)
            event = _bounded(event)
        await self.socket.send(to_wire(event))

    async def error(self, code: ErrorCode, message: str, param: str | None = None) -> None:
        """Offered, not awaited: with the outgoing queue full (a client that stopped reading) it is dropped,
        and the receive loop goes on to notice the socket is gone."""
        if self.socket.telemetry is not None:  # counted if sent or not (the session's own go through its emit)
            self.socket.telemetry.error("session.error", code)
        if self._errors.take():
            session_id = self.conversation.session_id if self.conversation is not None else None
            event = _bounded(SessionError(code=code, message=message, param=param, session_id=session_id))
            self.socket.send_nowait(to_wire(event))

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
                    await self.error(exc.code, exc.message, exc.param)
                    if exc.code in CLOSING:
                        await self.close(CLOSING[exc.code], exc.code)
                except Exception as exc:  # a bug must cost one message, not the session
                    _tracebacks.log("error handling a client message")
                    if self.conversation is None or not self.conversation.ready:  # no session to keep: close
                        await self.error(ErrorCode.INTERNAL_ERROR, f"internal error: {type(exc).__name__}")
                        await self.close(INTERNAL, ErrorCode.INTERNAL_ERROR)
                    else:
                        await self.error(ErrorCode.SERVER_ERROR, f"internal error: {type(exc).__name__}")

    async def _on_text(self, text: str) -> None:
        try:
            raw: Any = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            await self.error(ErrorCode.INVALID_FORMAT, "message is not valid JSON")
            return
        except RecursionError:  # nested past the parser's own limit (L1)
            await self.error(ErrorCode.INVALID_FORMAT, f"message nests deeper than {MAX_JSON_DEPTH} levels")
            return
        if _depth_exceeds(raw, MAX_JSON_DEPTH):  # it would fail later, in validation or in the config's echo
            await self.error(ErrorCode.INVALID_FORMAT, f"message nests deeper than {MAX_JSON_DEPTH} levels")
            return
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            await self.error(ErrorCode.INVALID_FORMAT, "message must be a JSON object with a string 'type'")
            return
        kind = raw["type"]
        if kind not in CLIENT_EVENT_TYPES:
            await self.error(ErrorCode.INVALID_FORMAT, f"unknown event type {clip(kind)}")
            return
        conversation = self.conversation
        ready = conversation is not None and conversation.ready
        if self.principal.resume_of is not None and conversation is None and kind != "session.resume":
            await self._refuse(ErrorCode.FORBIDDEN, "a resume token opens only session.resume of its session")
            return
        if not ready and kind == "input.audio":
            return  # audio before session.ready is dropped silently (shared/protocol.md §3)
        if not ready and kind not in BEFORE_SESSION:
            await self.error(ErrorCode.INVALID_FORMAT, f"{kind} before session.update: configure the session first")
            return
        try:
            event = client_event_adapter.validate_python(raw)
        except ValidationError as exc:
            # A size limit is a value out of range whatever the event (docs/security.md): the field is named.
            over_limit = any(err["type"] in ("string_too_long", "too_long") for err in exc.errors())
            code = ErrorCode.INVALID_VALUE if kind == "session.update" or over_limit else ErrorCode.INVALID_FORMAT
            if kind == "input.audio":
                code = ErrorCode.INVALID_AUDIO
            named = kind == "session.update" or over_limit
            await self.error(code, f"{kind}: {_summarize(exc)}", _param(exc) if named else None)
            return

        if isinstance(event, SessionResume):
            await self._on_resume(event)
        elif isinstance(event, SessionUpdate):
            await self._on_update(event)
        elif conversation is None:
            return
        elif isinstance(event, InputAudio):
            await self._on_audio(event)
        elif isinstance(event, ToolResult):
            await conversation.on_tool_result(event.call_id, event.result, event.is_error)
        elif isinstance(event, ReplyCreate):
            await conversation.reply_now(event.instructions)
        elif isinstance(event, ReplyCancel):
            await conversation.cancel_reply(event.reply_id)
        elif isinstance(event, ConversationMessage):
            await conversation.add_message(event.role, event.content)
        elif isinstance(event, SessionEnd):
            await self._end(conversation, None)

    async def _refuse(self, code: ErrorCode, message: str) -> None:
        await self.error(code, message)
        await self.close(POLICY_VIOLATION, code)

    async def _on_update(self, event: SessionUpdate) -> None:
        conversation = self.conversation
        if conversation is None:
            if self.socket.sessions.owner_at_limit(self.principal.owner):
                await self._refuse(ErrorCode.CONCURRENCY_EXCEEDED, "too many concurrent sessions for this key")
                return
            conversation = self.socket.open(self.principal.owner)
            if conversation is None:
                await self._refuse(ErrorCode.SERVER_ERROR, "server at capacity: retry with exponential backoff")
                return
            if not await self.socket.sessions.admit(conversation):  # the key's limit across the fleet
                self.socket.sessions.discard(conversation)
                self.socket.conversation = None
                await self._refuse(ErrorCode.CONCURRENCY_EXCEEDED, "too many concurrent sessions for this key")
                return
            conversation.max_session_s = self.principal.max_session_s
        first = await conversation.update(event.session)
        await self.send(SessionUpdated(config=conversation.resolved_config()))
        if first:
            await self._ready(conversation)
            self.socket.sessions.started(conversation)
            await conversation.greet()

    async def _ready(self, conversation: Conversation) -> None:
        """`session.ready`, with a fresh resume token; the duration cap starts counting on this socket."""
        token = None
        if self.tokens is not None:
            ttl = max(1.0, conversation.expires_at - time.time())
            token = await self.tokens.mint_resume_token(conversation.session_id, conversation.owner, ttl)
        await self.send(
            SessionReady(
                session_id=conversation.session_id,
                config=conversation.resolved_config(),
                expires_at=int(conversation.expires_at),
                resume_token=token,
            )
        )
        if not self._capped:
            self._capped = True
            self.socket.spawn(self._expire_at_cap(conversation), "duration-cap")

    async def _expire_at_cap(self, conversation: Conversation) -> None:
        await asyncio.sleep(max(0.0, conversation.expires_at - time.time()))
        if self.socket.sessions.holds(conversation, self):
            await self._end(conversation, ErrorCode.SESSION_EXPIRED)

    async def _end(self, conversation: Conversation, why: ErrorCode | None) -> None:
        """`session.end` (why None) or the cap: `session.ended` and close; the session cannot be resumed."""
        if why is not None:
            await self.error(why, "the session reached its maximum duration")
        await self.socket.sessions.end(conversation, "client_end" if why is None else "duration_cap")
        if self.tokens is not None:
            await self.tokens.revoke_resume_tokens(conversation.session_id)
        await self.send(conversation.ended_event())
        await self.close(1000 if why is None else POLICY_VIOLATION, "session ended" if why is None else why)

    async def _on_resume(self, event: SessionResume) -> None:
        if self.conversation is not None:
            await self.error(ErrorCode.INVALID_FORMAT, "session.resume must be the first message on a socket")
            return
        if self.principal.resume_of is not None and self.principal.resume_of != event.session_id:
            await self._refuse(ErrorCode.FORBIDDEN, "this resume token is for another session")
            return
        try:
            conversation = await self.socket.resume(event.session_id, self.principal.owner)
        except ResumeError as exc:
            await self._refuse(exc.code, exc.message)
            return
        self._input = None  # a new socket: its audio stream starts afresh
        await self._ready(conversation)
        await conversation.answer_owed()  # a reply the dropped socket never got is given now (M7)

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
        encoding = self.conversation.config.input_encoding
        bytes_per_sample = 2 if encoding == "audio/pcm" else 1
        seconds = len(payload) / bytes_per_sample / WIRE_RATES[encoding]
        if not self.socket.audio_room(seconds):  # refused before decoding and resampling (M2)
            await self.error(ErrorCode.AUDIO_RATE_VIOLATION, "audio arrives faster than real time; chunk dropped")
            return
        if not self._pace.admit(seconds):
            await self.error(
                ErrorCode.AUDIO_RATE_VIOLATION,
                f"audio arrives more than {AUDIO_AHEAD_S:.0f} s ahead of real time; chunk dropped",
            )
            return
        try:
            self._input = decoder_for(self._input, encoding)
            audio = self._input.decode(payload)
        except Exception as exc:
            await self.error(ErrorCode.INVALID_AUDIO, f"could not convert audio: {exc}")
            return
        if not self.socket.queue_audio(audio):
            await self.error(ErrorCode.AUDIO_RATE_VIOLATION, "audio arrives faster than real time; chunk dropped")

    async def _audio_failed(self, exc: Exception) -> None:
        log.error("audio processing failed", exc_info=exc)
        await self.error(ErrorCode.SERVER_ERROR, "internal error while processing audio")


def _bounded(event: SessionError) -> SessionError:
    """The error as sent: its message and `param` clipped (both may carry what the client sent)."""
    message, param = event.message, event.param
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS] + "..."
    if param is not None and len(param) > MAX_ERROR_CHARS:
        param = param[:MAX_ERROR_CHARS] + "..."
    if message is event.message and param is event.param:
        return event
    return event.model_copy(update={"message": message, "param": param})


def _param(exc: ValidationError) -> str | None:
    """The field a refused event names: `input.turn_detection.vad_threshold`, `tools.0.name`, `result`."""
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-after", "function-before"))]
        if loc and loc[0] in CLIENT_EVENT_TYPES:  # the event's tag, as the discriminated union names it
            loc = loc[1:]
        if loc and loc[0] == "session":
            loc = loc[1:]
        if loc:
            return ".".join(_clip_key(p) for p in loc)
    return None


def _clip_key(part: str) -> str:
    """One step of a field path; a client's own dict key in it is clipped (L3)."""
    return part if len(part) <= MAX_ECHO_CHARS else part[:MAX_ECHO_CHARS] + "..."


def _summarize(exc: ValidationError) -> str:
    """What was wrong, in at most three errors; the paths may hold the client's keys, so they are clipped."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:3]:
        where = ".".join(_clip_key(str(p)) for p in err["loc"] if not str(p).startswith("function-after"))
        msg = err["msg"] if len(err["msg"]) <= 2 * MAX_ECHO_CHARS else err["msg"][: 2 * MAX_ECHO_CHARS] + "..."
        parts.append(f"{where or 'value'}: {msg}")
    return "; ".join(parts)
