"""`voxgate.client`: an asyncio client for the Voice Agent API, with the protocol's pitfalls handled.

What it does for you:
- events arrive as the typed models of `voxgate.protocol.events` (one definition for both ends);
- tool handlers run as soon as `tool.call` arrives, but their results are sent only after that
  reply's `reply.done`, and dropped when the reply was interrupted (the protocol's rule);
- a socket that drops is reopened with `session.resume` inside the resume window, and the caller's
  `events()` loop simply goes on;
- errors that end the session (a refused key, a session that cannot be resumed) raise
  `VoxgateError`; the others arrive as `SessionError` events and the session goes on.

    async with VoxgateClient(url, api_key=key) as client:
        @client.tool("get_weather")
        async def weather(args): return {"city": args["city"], "condition": "sunny"}
        await client.configure(system_prompt="...", tools=[...])
        asyncio.create_task(client.stream_audio(microphone_chunks()))
        async for event in client.events():
            ...
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine
from types import TracebackType
from typing import Any

import websockets
from pydantic import TypeAdapter

from voxgate.protocol.events import ReplyDone, ServerEvent, SessionError, SessionReady, ToolCall

log = logging.getLogger("voxgate.client")

ToolHandler = Callable[[dict[str, Any]], Coroutine[Any, Any, Any]]
_server_events: TypeAdapter[ServerEvent] = TypeAdapter(ServerEvent)
_FATAL = {
    "UNAUTHORIZED",
    "FORBIDDEN",
    "session_not_found",
    "session_expired",
    "session_forbidden",
    "concurrency_exceeded",
    "agent_not_found",
    "agent_init_failed",
    "agent_timeout",
    "INTERNAL_ERROR",
}  # (server_error closes only at capacity, which the close code says; mid-session it is one failed message)
_POLICY_VIOLATION = 1008
_INTERNAL = 1011
_END = object()


class VoxgateError(Exception):
    """The session cannot go on: `code` is the protocol's error code (or the close reason)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class VoxgateClient:
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        reconnect: bool = True,
        resume_attempts: int = 5,
    ) -> None:
        self.url, self.api_key, self.token = url, api_key, token
        self.reconnect, self.resume_attempts = reconnect, resume_attempts
        self.session_id: str | None = None
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._tools: dict[str, ToolHandler] = {}
        self._running: dict[str, asyncio.Task[Any]] = {}  # call_id -> handler of the current reply
        self._ready: asyncio.Future[SessionReady] | None = None
        self._closing = False
        self._fatal: VoxgateError | None = None  # once the session cannot go on, every call raises this
        self._senders: set[asyncio.Task[None]] = set()  # results on their way out

    # ------------------------------------------------------------ connection

    async def __aenter__(self) -> VoxgateClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.close()

    async def connect(self) -> None:
        self._ws = await self._open(token=self.token)
        self._reader = asyncio.create_task(self._read())

    async def _open(self, *, token: str | None) -> Any:
        url, headers = self.url, {}
        if token:
            url += ("&" if "?" in url else "?") + f"token={token}"
        elif self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return await websockets.connect(url, additional_headers=headers, max_size=None)

    async def close(self) -> None:
        self._closing = True
        for task in self._running.values():
            task.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._queue.put_nowait(_END)

    # ------------------------------------------------------------ sending

    async def configure(self, **session: Any) -> SessionReady:
        """The first `session.update`; returns `session.ready` (raises VoxgateError if it is refused)."""
        if self._fatal is not None:
            raise self._fatal
        ready = self._ready = asyncio.get_running_loop().create_future()
        try:
            await self._send({"type": "session.update", "session": session})
        except BaseException:
            if ready.done() and not ready.cancelled():
                ready.exception()  # the same error is being raised: mark the future's copy as seen
            ready.cancel()
            raise
        return await ready

    async def update(self, **session: Any) -> None:
        """A later `session.update` (system prompt, tools, turn detection, keyterms); answered by `session.updated`."""
        await self._send({"type": "session.update", "session": session})

    async def send_audio(self, chunk: bytes) -> None:
        """Audio in the session's input format (24 kHz s16le by default); any chunk size."""
        await self._send({"type": "input.audio", "audio": base64.b64encode(chunk).decode()})

    async def stream_audio(self, source: AsyncIterable[bytes]) -> None:
        async for chunk in source:
            await self.send_audio(chunk)

    def tool(self, name: str) -> Callable[[ToolHandler], ToolHandler]:
        """Register an async handler for tool `name`: it gets the arguments and returns the result
        (a string, or anything JSON-serialisable)."""

        def register(handler: ToolHandler) -> ToolHandler:
            self._tools[name] = handler
            return handler

        return register

    async def _send(self, payload: dict[str, Any]) -> None:
        for _ in range(50):  # while a dropped socket is being resumed, wait for the new one
            if self._fatal is not None:
                raise self._fatal
            try:
                await self._ws.send(json.dumps(payload))
                return
            except websockets.ConnectionClosed:
                if self._closing or not self.reconnect:
                    raise
                await asyncio.sleep(0.1)
        raise VoxgateError("connection_lost", "the socket could not be resumed")

    # ------------------------------------------------------------ receiving

    async def events(self) -> AsyncIterator[ServerEvent]:
        """Every server event, typed, across resumes; ends when the client is closed."""
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, VoxgateError):
                raise item
            yield item

    async def _read(self) -> None:
        while True:
            try:
                async for message in self._ws:
                    await self._on_event(_server_events.validate_json(message))
            except websockets.ConnectionClosed:
                pass
            close = getattr(self._ws, "close_code", None)
            if self._closing:
                return
            if close in (_POLICY_VIOLATION, _INTERNAL):  # refused for good: the close reason is the error code
                reason = getattr(self._ws, "close_reason", "") or "refused"
                self._fail(VoxgateError(reason if reason != "refused" else "UNAUTHORIZED", reason))
                return
            if not (self.reconnect and self.session_id and await self._resume()):
                self._fail(VoxgateError("connection_lost", f"the socket closed (code {close})"))
                return

    async def _resume(self) -> bool:
        """Open a new socket and take the session over again; True when `session.ready` came back."""
        for attempt in range(self.resume_attempts):
            try:
                self._ws = await self._open(token=None)
                await self._ws.send(json.dumps({"type": "session.resume", "session_id": self.session_id}))
                reply = _server_events.validate_json(await self._ws.recv())
            except (OSError, websockets.WebSocketException):
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if isinstance(reply, SessionReady):
                log.info("session %s resumed", self.session_id)
                return True
            if isinstance(reply, SessionError):
                self._fail(VoxgateError(reply.code, reply.message))
                return False
        return False

    def _fail(self, error: VoxgateError) -> None:
        self._fatal = self._fatal or error
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(error)
        self._queue.put_nowait(error)

    async def _on_event(self, event: ServerEvent) -> None:
        if isinstance(event, SessionReady):
            self.session_id = event.session_id
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(event)
        elif isinstance(event, SessionError) and event.code in _FATAL:
            self._fail(VoxgateError(event.code, event.message))
        elif isinstance(event, ToolCall) and event.name in self._tools:
            self._running[event.call_id] = asyncio.create_task(self._tools[event.name](event.arguments))
        elif isinstance(event, ReplyDone) and self._running:
            running, self._running = self._running, {}
            if event.status == "interrupted":
                for task in running.values():  # the protocol: results of an interrupted turn are dropped
                    task.cancel()
            else:
                sender = asyncio.create_task(self._send_results(running))
                self._senders.add(sender)
                sender.add_done_callback(self._senders.discard)
        self._queue.put_nowait(event)

    async def _send_results(self, running: dict[str, asyncio.Task[Any]]) -> None:
        for call_id, task in running.items():
            try:
                result = await task
            except Exception as exc:  # a failing handler still answers, so the agent is not left waiting
                log.exception("tool handler failed")
                result = {"error": str(exc)}
            text = result if isinstance(result, str) else json.dumps(result)
            await self._send({"type": "tool.result", "call_id": call_id, "result": text})
