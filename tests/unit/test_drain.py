"""Graceful drain (server/drain.py): while a replica drains, a new socket is refused with 503 at the
handshake (clients retry, balancers move on), and `drain` closes every held socket with 1012 and waits,
at most its drain time, until each session was released."""

from __future__ import annotations

import asyncio

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from voxgate.app import create_app
from voxgate.backends.registry import Models
from voxgate.config import Settings
from voxgate.server.drain import drain
from voxgate.server.sessions import SERVICE_RESTART, SessionRegistry


def registry() -> SessionRegistry:
    return SessionRegistry(Models(Settings(preload=False, store_path=":memory:")))


class Holder:
    """A socket that lets its session go `after_s` after it is closed (never, with None)."""

    def __init__(self, sessions: SessionRegistry, session_id: str, after_s: float | None) -> None:
        self.sessions, self.session_id, self.after_s = sessions, session_id, after_s
        self.closed: tuple[int, str] | None = None
        sessions._owners[session_id] = self

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)
        if self.after_s is not None:
            asyncio.get_running_loop().call_later(self.after_s, self.sessions._owners.pop, self.session_id, None)


def test_a_draining_server_refuses_new_sockets_with_503() -> None:
    app = create_app(Settings(preload=False, store_path=":memory:"))
    with TestClient(app) as client:
        with client.websocket_connect("/v1/ws") as ws:  # before: taken
            ws.close()
        app.state.sessions.draining = True
        with pytest.raises(WebSocketDenialResponse) as refused:
            with client.websocket_connect("/v1/ws"):
                pass
        assert refused.value.status_code == 503 and "draining" in refused.value.text
        assert client.get("/health").status_code == 200  # liveness is not readiness: the process is fine


async def test_drain_closes_every_socket_with_1012_and_waits_for_their_release() -> None:
    sessions = registry()
    holders = [Holder(sessions, f"sess_{i}", after_s=0.1 * (i + 1)) for i in range(3)]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await drain(sessions, timeout_s=5.0)
    assert sessions.draining and not sessions.holders()
    assert all(h.closed is not None and h.closed[0] == SERVICE_RESTART for h in holders)
    assert 0.25 <= loop.time() - t0 < 1.0  # until the last release (0.3 s), not the whole drain time
    assert sessions.open("o", Holder(sessions, "sess_x", None)) is None  # no new session while draining


async def test_drain_is_bounded_by_its_time() -> None:
    sessions = registry()
    stuck = Holder(sessions, "sess_stuck", after_s=None)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await drain(sessions, timeout_s=0.5)
    assert 0.45 <= loop.time() - t0 < 1.0
    assert stuck.closed is not None and sessions.holders() == [stuck]  # left to the shutdown's hand-over
