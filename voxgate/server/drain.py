"""Graceful drain on SIGTERM: a replica that is stopping hands its sessions over instead of cutting them.

On the first SIGTERM (or Ctrl-C) `voxgate serve` does, before uvicorn's own shutdown:
1. stops taking sessions: a new WebSocket is refused with HTTP 503 at the handshake, which clients
   and the SDK treat as "try again" (a 1008 `server_error` would tell them to give up), and which a
   load balancer routes to another replica; readiness can read `SessionRegistry.draining`;
2. with a fleet, detaches and saves every connected session (with what the user heard of a reply
   in progress), then closes its socket with 1012 (service restart) and no `session.ended`, the
   protocol's "the connection dropped: resume" (shared/protocol.md §6.7, §6.8), so the client's
   `session.resume` on any other replica continues the conversation;
3. waits for those releases and their writes, at most `drain_timeout_s`; then uvicorn stops, and
   the app's shutdown hands over whatever is left (SessionRegistry.shutdown).

A second signal skips what is left of the drain. Alone (no Redis) the same steps run: the sessions
cannot go on elsewhere, so the app's shutdown then ends them as before (`server_shutdown`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn

from voxgate.server.sessions import SERVICE_RESTART, SessionRegistry

log = logging.getLogger("voxgate.drain")

DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def drain(sessions: SessionRegistry, timeout_s: float) -> None:
    """Refuse new sessions, close every socket with 1012 once it is safe to resume elsewhere, and wait
    (at most `timeout_s`) until every session is released and saved."""
    sessions.draining = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:  # with a fleet, each session is saved before its client is told to resume elsewhere
        async with asyncio.timeout(timeout_s):
            await sessions.save_for_handover()
    except TimeoutError:
        log.warning("draining: saving the sessions took the whole drain time")
    holders = sessions.holders()
    log.warning("draining: %d connected sessions told to resume elsewhere (at most %.0f s)", len(holders), timeout_s)
    for holder in holders:
        try:
            await holder.close(SERVICE_RESTART, "server draining: resume the session")
        except Exception:
            log.exception("closing a socket while draining failed")
    while loop.time() < deadline:  # each socket's way out releases its session (and saves it)
        if not sessions.holders():
            break
        await asyncio.sleep(0.05)
    try:
        async with asyncio.timeout(max(0.0, deadline - loop.time())):
            await sessions.settled()
    except TimeoutError:
        pass
    left = len(sessions.holders())
    if left:
        log.warning("drain time over with %d sessions still connected: they are handed over at shutdown", left)
    else:
        log.warning("drained: every session released")


class _DenialNoise(logging.Filter):
    """uvicorn (0.54, websockets-sansio) logs "ASGI callable returned without completing handshake" at
    ERROR after a handshake refused with a denial response, which it sent correctly: while draining
    every retrying client would add one. Only that line, only while draining, is dropped."""

    def __init__(self, sessions: SessionRegistry) -> None:
        super().__init__()
        self._sessions = sessions

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self._sessions.draining and "without completing handshake" in record.getMessage())


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with `drain` run on the first SIGTERM/SIGINT before it shuts down."""

    def __init__(self, config: uvicorn.Config, sessions: SessionRegistry, drain_timeout_s: float) -> None:
        super().__init__(config)
        self._sessions = sessions
        self._drain_timeout_s = drain_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Future[None] | None = None
        self._drain_requested = False
        logging.getLogger("uvicorn.error").addFilter(_DenialNoise(sessions))

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if sig not in DRAIN_SIGNALS or self._drain_requested or loop is None or self.should_exit:
            super().handle_exit(sig, frame)  # a second signal: stop now
            return
        self._drain_requested = True
        self._captured_signals.append(sig)  # uvicorn raises it again once stopped, as it does its own
        loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._draining = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await drain(self._sessions, self._drain_timeout_s)
        except Exception:
            log.exception("draining failed")
        self.should_exit = True
