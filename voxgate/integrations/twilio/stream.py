"""Twilio Media Streams: a phone call is a conversation, with no Voxgate client in between.

The voice webhook (webhook.py) connects the call to `WS /v1/twilio/stream`, a bidirectional
`<Connect><Stream>`, which runs on the socket loop the /v1/ws connection runs on too
(server/transport.py). On it Twilio's messages (`connected`, `start`, `media`, `mark`, `dtmf`,
`stop`) drive a Conversation configured from an agent file, with μ-law at 8 kHz in and out, so the
caller's bytes pass straight through the codec path.

The agent's audio goes back as Twilio `media` messages, each followed by a `mark`. Twilio echoes a
mark when the audio before it has been played to the caller, so the transcript of an interrupted
reply keeps only what Twilio acknowledged, not what was merely sent. A barge-in sends `clear`, which
empties Twilio's playback buffer; the marks it flushes come back too, and are not counted as heard.
Tools run through the agent file's webhooks, since no client is there to answer `tool.call`.

Twilio cannot send an `Authorization` header: the stream authenticates with a `token` custom
parameter (or `?token=`), and only with a single-use token (the voice webhook's, or one minted with
`GET /v1/token`): an API key there would sit in TwiML, in Twilio's logs and in proxies' URL logs.
A server with no API keys is open. Every call's session has an owner of its own (the webhook's
token is minted per call; an open server names one per call), so no other client — nor another
call — can resume a caller's conversation; a token minted with a key keeps that key as the owner.

What Twilio sends is untrusted until `start` authenticates it, and a socket can be opened by
anyone: a message that is not a Twilio event (junk, or JSON nested past the parser's depth) is
skipped with a rate-limited WARNING; a `start` whose parts are not objects closes the stream
(1008) with one WARNING; silence filled in for lost frames is capped per frame and in total (it
never runs the caller's audio ahead of the wall clock), so timestamps cannot amplify the input.
Caller audio's words, DTMF digits and tool arguments and results are logged at DEBUG only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Request, WebSocket
from fastapi.responses import JSONResponse

from voxgate.agents import AgentConfig, AgentError, WebhookTools, load_agent
from voxgate.audio.input import InputDecoder
from voxgate.integrations.twilio.webhook import STREAM_PATH, call_owner
from voxgate.protocol.events import (
    AgentTranscript,
    AudioEncoding,
    ReplyAudio,
    ReplyDone,
    ReplyStarted,
    ServerEvent,
    SessionError,
    ToolCall,
    UserTranscript,
)
from voxgate.server.agent_routes import manager_principal
from voxgate.server.auth import TOKEN_PREFIX, Authenticator, AuthError, Principal, Scope
from voxgate.server.responses import http_error
from voxgate.server.transport import SocketLoop
from voxgate.session.config import ConfigError

if TYPE_CHECKING:
    from voxgate.config import Settings
    from voxgate.server.sessions import SessionRegistry
    from voxgate.session.conversation import Conversation

log = logging.getLogger("voxgate.twilio")

router = APIRouter()

ENCODING: AudioEncoding = "audio/pcmu"  # Twilio's audio/x-mulaw at 8 kHz, mono
RATE = 8000
ULAW_SILENCE = b"\xff"
START_TIMEOUT_S = 15.0  # Twilio sends `start` right after `connected`
MAX_AUDIO_BACKLOG = 1000  # 20 ms frames waiting for the worker (~20 s) before frames are dropped
MAX_GAP_FILL_S = 2.0  # silence inserted for media frames Twilio lost (by their timestamps), per frame
GAP_FILL_AHEAD_S = 2.0  # caller audio, filled silence included, never runs further ahead of the wall clock
JUNK_LOG_EVERY = 100  # a flood of junk messages is one WARNING line per this many
RESERVED_PARAMETERS = frozenset({"token", "agent"})
POLICY_VIOLATION, TRY_AGAIN_LATER, INTERNAL_ERROR = 1008, 1013, 1011


# ---------------------------------------------------------------- what Twilio played


@dataclass(frozen=True)
class SentMark:
    name: str
    reply_id: str | None
    reply_end_s: float  # where in its reply the audio before this mark ends
    duration_s: float  # the audio of the media message this mark follows


class Playout:
    """Audio handed to Twilio, and what Twilio confirmed it played (by echoing our marks in order)."""

    def __init__(self) -> None:
        self._counter = 0
        self._pending: dict[str, SentMark] = {}  # in sending order
        self._flushed: set[str] = set()
        self.sent_s = 0.0
        self.acknowledged_s = 0.0
        self.marks_acknowledged = 0
        self.marks_flushed = 0
        self.clears = 0

    @property
    def playing(self) -> bool:
        """Twilio may still be playing: some audio sent has not been acknowledged."""
        return bool(self._pending)

    @property
    def unplayed_s(self) -> float:
        return sum(m.duration_s for m in self._pending.values())

    def sent(self, reply_id: str | None, reply_end_s: float, duration_s: float) -> SentMark:
        self._counter += 1
        mark = SentMark(str(self._counter), reply_id, reply_end_s, duration_s)
        self._pending[mark.name] = mark
        self.sent_s += duration_s
        return mark

    def echoed(self, name: str) -> SentMark | None:
        """Twilio echoed mark `name`: the mark, if it means audio was played (None if flushed or unknown)."""
        if name in self._flushed:
            self._flushed.discard(name)
            self.marks_flushed += 1
            return None
        if name not in self._pending:
            return None
        while self._pending:  # Twilio plays in order: every earlier mark has been played as well
            first, mark = next(iter(self._pending.items()))
            del self._pending[first]
            self.acknowledged_s += mark.duration_s
            self.marks_acknowledged += 1
            if first == name:
                return mark
        return None  # unreachable: `name` was pending

    def cleared(self) -> int:
        """A `clear` was sent: the pending marks will come back flushed, not played."""
        self.clears += 1
        self._flushed.update(self._pending)
        count = len(self._pending)
        self._pending.clear()
        return count


# ---------------------------------------------------------------- one call


class TwilioCall:
    def __init__(
        self, ws: WebSocket, sessions: SessionRegistry, settings: Settings, auth: Authenticator, query_token: str | None
    ) -> None:
        self.settings = settings
        self.playback = self  # Twilio plays what it is sent: `clear` empties its buffer, marks say what played
        self.socket = SocketLoop(
            ws, sessions, self, name="twilio", audio_backlog=MAX_AUDIO_BACKLOG, on_audio_error=self._audio_failed
        )
        self._input = InputDecoder(ENCODING)
        self.auth = auth
        self.query_token = query_token
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.agent: AgentConfig | None = None
        self.playout = Playout()
        self.started_at = time.time()
        self.media_frames = 0
        self.inbound_s = 0.0
        self.sequence_gaps = 0
        self.dtmf_digits = ""
        self._last_sequence = 0
        self._next_timestamp_ms: int | None = None
        self._reply_id: str | None = None
        self._reply_s = 0.0
        self._tools: WebhookTools | None = None
        self._dropped_frames = 0
        self._junk_messages = 0
        self._first_media_at: float | None = None
        self.gap_fill_s = 0.0

    @property
    def conversation(self) -> Conversation | None:
        return self.socket.conversation

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.socket.close(code, reason)

    async def _receive(self) -> dict[str, Any] | None:
        """The next Twilio message; None when the socket is gone. Anything but a JSON object is skipped."""
        while (text := await self.socket.receive()) is not None:
            try:
                data = json.loads(text) if isinstance(text, str) else None
            except (json.JSONDecodeError, RecursionError):  # RecursionError: nested past the parser's depth
                data = None
            if isinstance(data, dict) and isinstance(data.get("event"), str):
                return data
            self._junk_messages += 1
            if self._junk_messages % JUNK_LOG_EVERY == 1:
                log.warning(
                    "twilio stream %s: ignoring a message that is not a Twilio event (%d so far)",
                    self.call_sid or "(not started)",
                    self._junk_messages,
                )
        return None

    # ------------------------------------------------------------ main loop

    async def run(self) -> None:
        try:
            async with self.socket.running():
                if await self._begin():
                    await self._serve()
        finally:
            if self._tools is not None:
                await self._tools.aclose()
            if self.conversation is not None:
                p = self.playout
                log.info(
                    "call %s ended: agent audio %.1f s sent, %.1f s acknowledged by %d marks (%d flushed by %d "
                    "clears); caller audio %.1f s in %d frames, %d sequence gaps",
                    self.call_sid,
                    p.sent_s,
                    p.acknowledged_s,
                    p.marks_acknowledged,
                    p.marks_flushed,
                    p.clears,
                    self.inbound_s,
                    self.media_frames,
                    self.sequence_gaps,
                )

    async def _serve(self) -> None:
        """After `start`: the call's media, marks and DTMF, until `stop` or the socket is gone."""
        while not self.socket.closed:
            message = await self._receive()
            if message is None:
                log.info("call %s: Twilio closed the stream", self.call_sid)
                return
            event = message["event"]
            self._check_sequence(message)
            if event == "media":
                await self._on_media(message)
            elif event == "mark":
                self._on_mark(message)
            elif event == "dtmf":
                digit = str(_object(message, "dtmf").get("digit", ""))[:1]
                self.dtmf_digits = (self.dtmf_digits + digit)[-64:]
                log.debug("call %s: DTMF %r ignored (the agent listens to speech only)", self.call_sid, digit)
            elif event == "stop":
                log.info("call %s: stop received", self.call_sid)
                await self.close(1000, "call ended")
                return
            else:
                log.debug("call %s: ignoring Twilio event %r", self.call_sid, event)

    async def _begin(self) -> bool:
        """`connected`, then `start`: authenticate, pick the agent, open and configure the conversation."""
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    message = await self._receive()
                    if message is None:
                        return False
                    if message["event"] == "connected":
                        log.debug(
                            "twilio stream connected: protocol %s %s", message.get("protocol"), message.get("version")
                        )
                    elif message["event"] == "start":
                        break
                    else:
                        log.debug("twilio stream: %r before start ignored", message["event"])
        except TimeoutError:
            log.warning("twilio stream: no start message within %.0f s", START_TIMEOUT_S)
            await self.close(POLICY_VIOLATION, "no start message")
            return False
        self._check_sequence(message)
        start = message.get("start")
        fmt = start.get("mediaFormat") if isinstance(start, dict) else None
        if not isinstance(start, dict) or not isinstance(fmt, dict):
            log.warning("twilio stream: a start message whose start or mediaFormat is not an object; closed")
            await self.close(POLICY_VIOLATION, "malformed start message")
            return False
        self.stream_sid = str(start.get("streamSid") or message.get("streamSid") or "")[:64]  # echoed in every message
        self.call_sid = str(start.get("callSid") or "")[:64]
        if not self.stream_sid:
            log.warning("twilio stream: start without a streamSid")
            await self.close(POLICY_VIOLATION, "start without streamSid")
            return False
        if (fmt.get("encoding"), str(fmt.get("sampleRate", RATE)), str(fmt.get("channels", 1))) != (
            "audio/x-mulaw",
            str(RATE),
            "1",
        ):
            log.warning("call %s: unsupported media format %s", self.call_sid, str(fmt)[:200])
            await self.close(POLICY_VIOLATION, "media format must be audio/x-mulaw 8000 mono")
            return False
        raw_params = start.get("customParameters") or {}
        params = {str(k): str(v) for k, v in raw_params.items()} if isinstance(raw_params, dict) else {}
        try:
            principal = await self._authenticate(self.query_token or params.get("token"))
        except AuthError as exc:
            log.warning("call %s: stream refused: %s (%s)", self.call_sid, exc.code, exc.message)
            await self.close(POLICY_VIOLATION, exc.code)
            return False
        try:
            self.agent = self._agent(params.get("agent"))
        except AgentError as exc:
            log.warning("call %s: stream refused: %s", self.call_sid, exc)
            await self.close(POLICY_VIOLATION, "unknown agent")
            return False
        log.info(
            "call %s: stream %s started (agent %s, tracks %s)",
            self.call_sid,
            self.stream_sid,
            self.agent.name,
            start.get("tracks"),
        )
        return await self._open_conversation(
            principal, {k: v for k, v in params.items() if k not in RESERVED_PARAMETERS}
        )

    async def _authenticate(self, credential: str | None) -> Principal:
        """The call's principal: on an open server one of its own; else the single-use token's (spent here)."""
        if self.auth.open:
            return replace(self.auth.check_key(None), owner=call_owner(self.call_sid))
        if not credential:
            raise AuthError("UNAUTHORIZED", "missing credential: pass a 'token' custom parameter")
        if not credential.startswith(TOKEN_PREFIX):
            raise AuthError("UNAUTHORIZED", "the stream takes a single-use token (GET /v1/token), not an API key")
        principal = await self.auth.redeem_token(credential)
        if Scope.SESSIONS not in principal.scopes:
            raise AuthError("FORBIDDEN", "this credential may not open sessions")
        return principal

    def _agent(self, name: str | None) -> AgentConfig:
        if name:
            return load_agent(name, self.settings.agents_dir)
        return AgentConfig(name="default", system_prompt=self.settings.system_prompt)

    async def _open_conversation(self, principal: Principal, variables: dict[str, str]) -> bool:
        assert self.agent is not None
        conversation = self.socket.open(principal.owner)
        if conversation is None:
            log.warning("call %s: server at capacity, stream refused", self.call_sid)
            await self.close(TRY_AGAIN_LATER, "at capacity")
            return False
        self._tools = WebhookTools(self.agent)
        session, fields = self.agent.session_config(ENCODING, variables)
        try:
            await conversation.update(session, fields)
        except ConfigError as exc:
            log.error("call %s: agent %s cannot start: %s", self.call_sid, self.agent.name, exc.message)
            await self.close(INTERNAL_ERROR, "agent configuration failed")
            return False
        self.socket.sessions.started(conversation)
        await conversation.greet()
        return True

    # ------------------------------------------------------------ from Twilio

    def _check_sequence(self, message: dict[str, Any]) -> None:
        try:
            number = int(message.get("sequenceNumber", 0))
        except (TypeError, ValueError, OverflowError):
            return
        if number <= 0:
            return
        if self._last_sequence and number != self._last_sequence + 1:
            self.sequence_gaps += 1
            log.debug("call %s: sequence %d after %d", self.call_sid, number, self._last_sequence)
        self._last_sequence = max(self._last_sequence, number)

    async def _on_media(self, message: dict[str, Any]) -> None:
        media = _object(message, "media")
        if media.get("track", "inbound") != "inbound" or self.conversation is None:
            return
        try:
            payload = base64.b64decode(str(media.get("payload", "")), validate=True)
        except (binascii.Error, ValueError):
            log.warning("call %s: media payload is not base64; frame skipped", self.call_sid)
            return
        payload = self._fill_gap(media.get("timestamp"), len(payload)) + payload
        self.media_frames += 1
        self.inbound_s += len(payload) / RATE
        if not self.socket.queue_audio(self._input.decode(payload)):
            self._dropped_frames += 1
            if self._dropped_frames % 50 == 1:
                log.warning(
                    "call %s: audio processing is behind; %d frames dropped", self.call_sid, self._dropped_frames
                )

    def _fill_gap(self, timestamp: Any, length: int) -> bytes:
        """Silence for frames Twilio lost, so that turn timing stays true to the call's clock.

        At most MAX_GAP_FILL_S a frame, and never so much that the caller's audio (filled silence
        included) runs more than GAP_FILL_AHEAD_S ahead of the time since the first frame: frames
        Twilio lost took real time, so a jump the clock does not bear out is a sender's lie, and
        without the bound every frame could add 2 s of audio to a 1000-frame queue (100x)."""
        now = time.monotonic()
        if self._first_media_at is None:
            self._first_media_at = now
        try:
            ts = int(timestamp)
        except (TypeError, ValueError, OverflowError):
            return b""
        expected, self._next_timestamp_ms = self._next_timestamp_ms, ts + length * 1000 // RATE
        if expected is None or ts - expected < 20:
            return b""
        room_s = (now - self._first_media_at) + GAP_FILL_AHEAD_S - self.inbound_s - length / RATE
        missing_ms = int(min(ts - expected, MAX_GAP_FILL_S * 1000, max(0.0, room_s) * 1000))
        if missing_ms <= 0:
            return b""
        self.gap_fill_s += missing_ms / 1000
        log.debug("call %s: %d ms of caller audio missing; filled with silence", self.call_sid, missing_ms)
        return ULAW_SILENCE * (missing_ms * RATE // 1000)

    def _on_mark(self, message: dict[str, Any]) -> None:
        name = str(_object(message, "mark").get("name", ""))
        mark = self.playout.echoed(name)
        if mark is None:  # flushed by a clear (counted in the playout), or not one of ours
            return
        if mark.reply_id is not None and self.conversation is not None:
            self.conversation.acknowledge_playback(mark.reply_id, mark.reply_end_s)

    async def _audio_failed(self, exc: Exception) -> None:
        log.error("call %s: audio processing failed", self.call_sid, exc_info=exc)

    # ------------------------------------------------------------ from the conversation

    async def send(self, event: ServerEvent) -> None:
        """The session's events, as Twilio messages where the caller should hear them."""
        if isinstance(event, ReplyAudio):
            await self._play(event.data)
        elif isinstance(event, ReplyStarted):
            self._reply_id, self._reply_s = event.reply_id, 0.0
        elif isinstance(event, ReplyDone):
            self._reply_id = None
        elif isinstance(event, ToolCall):
            self.socket.spawn(self._run_tool(event), f"tool {event.name}")
        elif isinstance(event, UserTranscript):  # what people say on a call is theirs: DEBUG only
            log.debug("call %s: caller: %s", self.call_sid, event.text)
        elif isinstance(event, AgentTranscript):
            heard = f" (interrupted; {self.playout.acknowledged_s:.1f} s acknowledged)" if event.interrupted else ""
            log.debug("call %s: agent%s: %s", self.call_sid, heard, event.text)
        elif isinstance(event, SessionError):
            log.warning("call %s: %s: %s", self.call_sid, event.code, event.message)

    async def _play(self, data: str) -> None:
        size = len(data) * 3 // 4 - data[-2:].count("=")  # base64 μ-law: one byte a sample
        duration = size / RATE
        self._reply_s += duration
        mark = self.playout.sent(self._reply_id, self._reply_s, duration)
        await self.socket.send({"event": "media", "streamSid": self.stream_sid, "media": {"payload": data}})
        await self.socket.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": mark.name}})

    acknowledges_playback = True  # the session keeps as heard only what Twilio's marks confirmed

    async def flush(self) -> None:
        await self._clear("the agent stopped")

    def rewound(self, reply_id: str, at_s: float) -> None:
        """A paused reply is sent again from `at_s`: its marks count reply time from there."""
        if reply_id == self._reply_id:
            self._reply_s = at_s

    async def _clear(self, why: str) -> None:
        if not self.playout.playing:
            return  # nothing sent is still unplayed: there is nothing to clear
        flushed = self.playout.cleared()
        log.info("call %s: %s: clear (%d unplayed marks)", self.call_sid, why, flushed)
        await self.socket.send({"event": "clear", "streamSid": self.stream_sid})

    async def _run_tool(self, call: ToolCall) -> None:
        assert self._tools is not None
        log.info("call %s: tool %s", self.call_sid, call.name)  # its arguments and result are the caller's data
        log.debug("call %s: tool %s(%s)", self.call_sid, call.name, json.dumps(call.arguments)[:500])
        result = await self._tools.run(call.name, call.arguments)
        log.debug("call %s: tool %s -> %s", self.call_sid, call.name, result[:200])
        if self.conversation is not None and not self.socket.closed:
            await self.conversation.on_tool_result(call.call_id, result)

    def status(self) -> dict[str, object]:
        p = self.playout
        return {
            "call_sid": self.call_sid,
            "stream_sid": self.stream_sid,
            "agent": self.agent.name if self.agent else None,
            "session_id": self.conversation.session_id if self.conversation else None,
            "started_at": self.started_at,
            "agent_audio_sent_s": round(p.sent_s, 3),
            "agent_audio_acknowledged_s": round(p.acknowledged_s, 3),
            "marks_acknowledged": p.marks_acknowledged,
            "marks_flushed": p.marks_flushed,
            "clears": p.clears,
            "caller_audio_s": round(self.inbound_s, 3),
            "media_frames": self.media_frames,
            "sequence_gaps": self.sequence_gaps,
            "gap_fill_s": round(self.gap_fill_s, 3),
        }


def _object(message: dict[str, Any], key: str) -> dict[str, Any]:
    """`message[key]` when it is an object, else {}: a field of the wrong type is a field not sent."""
    value = message.get(key)
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------- routes


def _calls(app: Any) -> dict[int, TwilioCall]:
    calls: dict[int, TwilioCall] | None = getattr(app.state, "twilio_calls", None)
    if calls is None:
        calls = app.state.twilio_calls = {}
    return calls


@router.websocket(STREAM_PATH)
async def twilio_stream(ws: WebSocket, token: str | None = None) -> None:
    await ws.accept()  # Twilio's credential arrives in `start`, after the socket is open
    call = TwilioCall(ws, ws.app.state.sessions, ws.app.state.models.settings, ws.app.state.auth, token)
    calls = _calls(ws.app)
    calls[id(call)] = call
    try:
        await call.run()
    finally:
        calls.pop(id(call), None)


@router.get("/v1/twilio/calls")
async def twilio_calls(request: Request, authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
    """The calls in progress and how much of the agent's audio Twilio has acknowledged playing.

    Every call of every tenant, with its session id: only a key with every scope (the one that
    manages records, server/agent_routes.py) may list them, not a `:tokens` or `:sessions` key."""
    auth: Authenticator = request.app.state.auth
    try:
        manager_principal(await auth.authenticate_rest(authorization))
    except AuthError as exc:
        return http_error(exc.status, exc.code, exc.message)
    return JSONResponse({"calls": [call.status() for call in _calls(request.app).values()]})
