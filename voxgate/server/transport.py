"""The socket loop both transports run on: the /v1/ws connection and a Twilio media stream.

A transport speaks its own wire (the Voice Agent API's events, Twilio's messages); what is left is
the same for both, and lives here once: one send path, close, the receiving of messages, the session
this socket holds (opened, resumed and, on the way out, released through the registry), and the
audio backlog.

Sending never waits on the peer. Messages go into an outgoing queue bounded in bytes, drained by one
writer task; a write that the peer does not take within SEND_TIMEOUT_S, or a queue that stays full
that long, aborts the socket (its TCP connection is dropped at once, not closed gracefully: a
graceful close waits for a peer that never reads, and held both the session and the server's
shutdown). Errors the receive loop reports are offered, never awaited: with the queue full they are
dropped. However the socket ends, the session it held stays resumable (the registry's release).

Decoded audio waits in a backlog bounded in seconds of audio for one worker task, so a slow
end-of-turn check never blocks the reading of the next message; a chunk the session fails on costs
that chunk, and the transport is told. Every task of the socket, the worker, the writer and whatever
the transport spawns, is cancelled when it ends.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voxgate.aio import TaskScope
from voxgate.backends.base import ANALYSIS_RATE, Audio
from voxgate.server.sessions import Holder
from voxgate.session.ports import Transport
from voxgate.telemetry import Telemetry

if TYPE_CHECKING:
    from voxgate.server.sessions import SessionRegistry
    from voxgate.session.conversation import Conversation

log = logging.getLogger("voxgate.transport")

MAX_OUTBOX_BYTES = 4 << 20  # text queued for a socket and not yet written: past this, senders wait
SEND_TIMEOUT_S = 10.0  # a write (or a full queue) the peer does not take in this long aborts the socket
CLOSE_FLUSH_S = 5.0  # on the way out, how long what is queued (and the close frame) may take to leave


class SocketTransport(Transport, Holder, Protocol):
    """A transport on a socket: the session sends through it, and the registry closes it on a resume."""


@dataclass(frozen=True)
class _Close:
    """The close frame, queued after everything sent before it."""

    code: int
    reason: str


class Outbox:
    """Text frames waiting for the writer, bounded in bytes (a frame is up to 4 MiB, so count means nothing).

    A frame always fits an empty outbox, so one large event is never refused; after that, `offer`
    refuses what does not fit and `put` waits for room. Once `shut`, nothing more is taken, and `get`
    returns what is left, then None."""

    def __init__(self, max_bytes: int = MAX_OUTBOX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: collections.deque[str | _Close] = collections.deque()
        self._changed = asyncio.Event()  # something was queued, taken, or the outbox shut
        self._waiting = 0  # senders waiting for room: an offer must not overtake them
        self.shut_down = False

    def __len__(self) -> int:
        return len(self._items)

    def _fits(self, size: int) -> bool:
        return not self._items or self.bytes + size <= self.max_bytes

    def _add(self, item: str | _Close) -> None:
        self._items.append(item)
        if isinstance(item, str):
            self.bytes += len(item)
        self._changed.set()

    def offer(self, text: str) -> bool:
        """Queue `text` if there is room now; False (dropped) when full or shut."""
        if self.shut_down or self._waiting or not self._fits(len(text)):
            return False
        self._add(text)
        return True

    async def put(self, text: str, timeout_s: float) -> bool:
        """Queue `text`, waiting up to `timeout_s` for room; False when it timed out or the outbox shut."""
        if self.shut_down:
            return False
        if self._fits(len(text)) and not self._waiting:
            self._add(text)
            return True
        self._waiting += 1
        try:
            async with asyncio.timeout(timeout_s):
                while not self.shut_down and not self._fits(len(text)):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        finally:
            self._waiting -= 1
        if self.shut_down:
            return False
        self._add(text)
        return True

    def close(self, code: int, reason: str) -> None:
        """The close frame goes after what is queued; nothing is taken after it."""
        if not self.shut_down:
            self._add(_Close(code, reason))
        self.shut()

    def shut(self) -> None:
        self.shut_down = True
        self._changed.set()

    async def get(self) -> str | _Close | None:
        """The next frame to write; None once shut and empty."""
        while not self._items:
            if self.shut_down:
                return None
            self._changed.clear()
            await self._changed.wait()
        item = self._items.popleft()
        if isinstance(item, str):
            self.bytes -= len(item)
        self._changed.set()  # room for a waiting sender
        return item


class AudioBacklog:
    """Decoded audio waiting for the worker, bounded in seconds of audio (and, for Twilio's fixed frames,
    in chunks). A client's chunk may be anything up to 1 MiB, ~22 s: a bound in chunks let 400 of those
    queue, ~9 hours of audio (+560 MB). Room is checked before the chunk is decoded (`has_room`), so a
    refused chunk costs no resampling."""

    def __init__(self, max_s: float, max_chunks: int = 0) -> None:
        self.max_s = max_s
        self.max_chunks = max_chunks  # 0: no bound in chunks
        self.queued_s = 0.0
        self._queue: asyncio.Queue[Audio] = asyncio.Queue()

    def has_room(self, seconds: float) -> bool:
        """Whether a chunk of `seconds` would be taken now (an empty backlog takes any one chunk)."""
        if self.max_chunks and self._queue.qsize() >= self.max_chunks:
            return False
        return self._queue.empty() or self.queued_s + seconds <= self.max_s

    def put(self, audio: Audio) -> bool:
        seconds = len(audio) / ANALYSIS_RATE
        if not self.has_room(seconds):
            return False
        self._queue.put_nowait(audio)
        self.queued_s += seconds
        return True

    async def get(self) -> Audio:
        audio = await self._queue.get()
        self.queued_s = max(0.0, self.queued_s - len(audio) / ANALYSIS_RATE)
        return audio

    def __len__(self) -> int:
        return self._queue.qsize()


def raw_transport(ws: WebSocket) -> asyncio.Transport | None:
    """The asyncio transport under a Starlette WebSocket, to abort it; None when it cannot be found.

    ASGI has no abort, and a close waits for a peer that never reads. The server's protocol object
    (uvicorn's websockets, websockets-sansio and wsproto implementations alike) holds `.transport`
    and is reached through the ASGI `send` callable: its bound method, possibly wrapped by middleware
    closures (Starlette's exception handling wraps it in one), which are followed a few levels deep."""
    seen: set[int] = set()
    todo: list[Any] = [getattr(ws, "_send", None)]
    for _ in range(32):
        if not todo:
            return None
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        owner = getattr(item, "__self__", None)
        transport = getattr(owner, "transport", None)
        if isinstance(transport, asyncio.Transport):
            return transport
        if isinstance(item, functools.partial):
            todo.append(item.func)
        for cell in getattr(item, "__closure__", None) or ():
            with contextlib.suppress(ValueError):  # an empty cell
                if callable(cell.cell_contents):
                    todo.append(cell.cell_contents)
        for attribute in ("send", "_send"):  # a middleware object keeping the send it wraps
            inner = getattr(owner, attribute, None)
            if callable(inner):
                todo.append(inner)
    return None


def telemetry_of(ws: WebSocket) -> Telemetry | None:
    """The telemetry of the app serving `ws` (app.py keeps it in `app.state`); None outside an app."""
    try:
        telemetry = getattr(ws.app.state, "telemetry", None)
    except (KeyError, AttributeError):  # a socket not served by an app (a test's stand-in)
        return None
    return telemetry if isinstance(telemetry, Telemetry) else None


class SocketLoop:
    def __init__(
        self,
        ws: WebSocket,
        sessions: SessionRegistry,
        transport: SocketTransport,
        *,
        name: str,
        audio_backlog: int = 0,
        audio_backlog_s: float = 20.0,
        on_audio_error: Callable[[Exception], Awaitable[None]],
    ) -> None:
        """`transport`: what the session is attached to, and the holder the registry knows this socket by.
        `audio_backlog_s` (and `audio_backlog` chunks, 0 for no bound in chunks): decoded audio the worker
        may be behind by before more is refused. `on_audio_error`: told when the session failed on a chunk
        of audio (the chunk is lost, not the socket)."""
        self.ws = ws
        self.sessions = sessions
        self.transport = transport
        self.name = name
        self.conversation: Conversation | None = None
        self._tasks = TaskScope(name)
        self.closed = False
        self.aborted = False
        self._on_audio_error = on_audio_error
        self._outbox = Outbox()
        self._gone = asyncio.Event()  # set when the socket counts as closed: the receive loop stops waiting
        self.audio = AudioBacklog(audio_backlog_s, audio_backlog)
        self.telemetry = telemetry_of(ws)  # the app's metrics: its queues are read at each scrape
        if self.telemetry is not None:
            self.telemetry.socket_opened(self)

    # ------------------------------------------------------------ the socket

    @property
    def outbox_bytes(self) -> int:
        return self._outbox.bytes

    @property
    def outbox_frames(self) -> int:
        return len(self._outbox)

    @property
    def audio_backlog_s(self) -> float:
        return self.audio.queued_s

    async def send(self, message: dict[str, Any]) -> None:
        """One JSON text message, queued for the writer; waits (at most SEND_TIMEOUT_S) only while the
        outgoing queue is full, and a queue that stays full aborts the socket. Dropped once closed."""
        if self.closed:
            return
        if not await self._outbox.put(json.dumps(message), SEND_TIMEOUT_S) and not self.closed:
            self.abort(f"{self._outbox.bytes} bytes queued and none taken for {SEND_TIMEOUT_S:.0f} s")

    def send_nowait(self, message: dict[str, Any]) -> bool:
        """Queue a message without waiting (errors the receive loop reports); False when it was dropped."""
        if self.closed:
            return False
        return self._outbox.offer(json.dumps(message))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close after what is already queued (the writer sends the close frame); returns at once."""
        if self.closed:
            return
        self._outbox.close(code, reason)
        self._lost()

    def abort(self, why: str) -> None:
        """Drop the connection now (the peer stopped reading): no close handshake, nothing more sent."""
        if self.aborted:
            return
        self.aborted = True
        log.warning("%s socket aborted: %s", self.name, why)
        self._lost()
        transport = raw_transport(self.ws)
        if transport is not None:
            transport.abort()
        else:
            log.warning("%s socket: no transport to abort; it is let go without it", self.name)

    def _lost(self) -> None:
        self.closed = True
        self._outbox.shut()
        self._gone.set()

    async def _write(self) -> None:
        """The one writer: frames in order, each bounded by SEND_TIMEOUT_S."""
        while (item := await self._outbox.get()) is not None:
            try:
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    if isinstance(item, _Close):
                        if self.ws.application_state != WebSocketState.DISCONNECTED:
                            await self.ws.close(code=item.code, reason=item.reason)
                        return
                    await self.ws.send_text(item)
            except TimeoutError:  # (before OSError: TimeoutError is one)
                self.abort(f"a write waited {SEND_TIMEOUT_S:.0f} s")
                return
            except (WebSocketDisconnect, RuntimeError, OSError):
                self._lost()
                return

    async def _finish_writing(self, writer: asyncio.Task[None]) -> None:
        """On the way out: what is queued, and then the close frame, get CLOSE_FLUSH_S to leave; a peer
        that takes none of it is aborted (a graceful close would wait for it forever)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_FLUSH_S
        await asyncio.wait({writer}, timeout=CLOSE_FLUSH_S)
        if not writer.done():
            self.abort(f"what was queued did not leave within {CLOSE_FLUSH_S:.0f} s of the end")
            return
        transport = raw_transport(self.ws) if not self.aborted else None
        while transport is not None and transport.get_write_buffer_size() > 0:  # (closing or not: a close waits)
            if loop.time() >= deadline:
                self.abort(
                    f"{transport.get_write_buffer_size()} bytes still unread {CLOSE_FLUSH_S:.0f} s after the end"
                )
                return
            await asyncio.sleep(0.05)

    async def receive(self) -> str | bytes | None:
        """The next message: text as `str`, a binary frame as `bytes`; None when the socket is gone
        (or counts as closed: an aborted peer that also sends nothing must not hold the loop)."""
        if self._gone.is_set():
            return None
        receiving = asyncio.ensure_future(self.ws.receive())
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait({receiving, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not receiving.done():
                receiving.cancel()
                with contextlib.suppress(BaseException):
                    await receiving
        if receiving.cancelled():
            return None
        try:
            message = receiving.result()
        except (WebSocketDisconnect, RuntimeError, OSError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    async def messages(self) -> AsyncGenerator[str | bytes, None]:
        """Messages until the socket is gone or closed."""
        while not self.closed:
            message = await self.receive()
            if message is None:
                return
            yield message

    # ------------------------------------------------------------ the session it holds

    def open(self, owner: str) -> Conversation | None:
        """A new session, held by this socket; None when the server is at capacity."""
        conversation = self.sessions.open(owner, self.transport)
        if conversation is not None:
            self._hold(conversation)
        return conversation

    async def resume(self, session_id: str, owner: str) -> Conversation:
        """Take a session over from the socket that held it (which is closed); ResumeError if it cannot be."""
        conversation = await self.sessions.resume(session_id, owner, self.transport)
        self._hold(conversation)
        return conversation

    def _hold(self, conversation: Conversation) -> None:
        self.conversation = conversation
        conversation.attach(self.transport)
        if self.telemetry is not None:
            conversation.stages.observer = self.telemetry

    # ------------------------------------------------------------ audio and tasks

    def audio_room(self, seconds: float) -> bool:
        """Whether `seconds` of audio would be taken now: asked before decoding, so a refusal is cheap."""
        return self.audio.has_room(seconds)

    def queue_audio(self, audio: Audio) -> bool:
        """Hand decoded audio to the worker; False when the backlog is full and the chunk is dropped."""
        return self.audio.put(audio)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Work of this socket's (a webhook tool, say): cancelled when the socket ends."""
        self._tasks.spawn(coro, name)

    async def _feed(self) -> None:
        while True:
            audio = await self.audio.get()
            conversation = self.conversation
            if conversation is None:
                continue
            try:
                await conversation.on_audio(audio)
            except Exception as exc:  # a bug must cost one chunk, not the session
                await self._on_audio_error(exc)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The socket's lifetime: the audio worker and the writer run inside; on the way out what is queued
        gets a bounded time to leave, every task of the socket is cancelled, the socket counts as closed,
        and the session it held stays resumable (the registry's release)."""
        self._tasks.spawn(self._feed(), "audio")
        writer = self._tasks.spawn(self._write(), "writer")
        try:
            yield
        finally:
            self.closed = True
            self._outbox.shut()
            self._gone.set()
            try:
                try:
                    await self._finish_writing(writer)
                finally:
                    await self._tasks.close()
            finally:  # even when the socket's own task is cancelled (the tasks are by then), the session is let go
                if self.conversation is not None:
                    await self.sessions.release(self.conversation, self.transport)
