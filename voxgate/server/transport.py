"""The socket loop both transports run on: the /v1/ws connection and a Twilio media stream.

A transport speaks its own wire (the Voice Agent API's events, Twilio's messages); what is left is
the same for both, and lives here once: one send path (a lock, JSON text, and a socket that fails
a send counts as closed), close, the receiving of messages, the session this socket holds (opened,
resumed and, on the way out, released through the registry), and the audio backlog. Decoded audio
waits in a bounded queue for one worker task, so a slow end-of-turn check never blocks the reading
of the next message; a chunk the session fails on costs that chunk, and the transport is told.
Every task of the socket, the worker and whatever the transport spawns, is cancelled when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voxgate.aio import TaskScope
from voxgate.backends.base import Audio
from voxgate.server.sessions import Holder
from voxgate.session.ports import Transport

if TYPE_CHECKING:
    from voxgate.server.sessions import SessionRegistry
    from voxgate.session.conversation import Conversation


class SocketTransport(Transport, Holder, Protocol):
    """A transport on a socket: the session sends through it, and the registry closes it on a resume."""


class SocketLoop:
    def __init__(
        self,
        ws: WebSocket,
        sessions: SessionRegistry,
        transport: SocketTransport,
        *,
        name: str,
        audio_backlog: int,
        on_audio_error: Callable[[Exception], Awaitable[None]],
    ) -> None:
        """`transport`: what the session is attached to, and the holder the registry knows this socket by.
        `on_audio_error`: told when the session failed on a chunk of audio (the chunk is lost, not the socket)."""
        self.ws = ws
        self.sessions = sessions
        self.transport = transport
        self.conversation: Conversation | None = None
        self._tasks = TaskScope(name)
        self.closed = False
        self._on_audio_error = on_audio_error
        self._send_lock = asyncio.Lock()
        self._audio: asyncio.Queue[Audio] = asyncio.Queue(maxsize=audio_backlog)

    # ------------------------------------------------------------ the socket

    async def send(self, message: dict[str, Any]) -> None:
        """One JSON text message; a socket that cannot take it is closed, and later sends are dropped."""
        if self.closed:
            return
        try:
            async with self._send_lock:
                await self.ws.send_text(json.dumps(message))
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            self.closed = True

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            if self.ws.application_state != WebSocketState.DISCONNECTED:
                await self.ws.close(code=code, reason=reason)

    async def receive(self) -> str | bytes | None:
        """The next message: text as `str`, a binary frame as `bytes`; None when the socket is gone."""
        try:
            message = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError):
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

    # ------------------------------------------------------------ audio and tasks

    def queue_audio(self, audio: Audio) -> bool:
        """Hand decoded audio to the worker; False when the backlog is full and the chunk is dropped."""
        try:
            self._audio.put_nowait(audio)
        except asyncio.QueueFull:
            return False
        return True

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Work of this socket's (a webhook tool, say): cancelled when the socket ends."""
        self._tasks.spawn(coro, name)

    async def _feed(self) -> None:
        while True:
            audio = await self._audio.get()
            conversation = self.conversation
            if conversation is None:
                continue
            try:
                await conversation.on_audio(audio)
            except Exception as exc:  # a bug must cost one chunk, not the session
                await self._on_audio_error(exc)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The socket's lifetime: the audio worker runs inside; on the way out every task of the socket is
        cancelled, the socket counts as closed, and the session it held stays resumable (the registry's release)."""
        self._tasks.spawn(self._feed(), "audio")
        try:
            yield
        finally:
            self.closed = True
            try:
                await self._tasks.close()
            finally:  # even when the socket's own task is cancelled (the tasks are by then), the session is let go
                if self.conversation is not None:
                    await self.sessions.release(self.conversation, self.transport)
