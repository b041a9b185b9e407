"""What the WebSocket hostile tests share: a light real server, a fake LLM, plain clients.

The light server is a real `voxgate serve` process whose recognizer, LLM and voices are remote
(OpenAI-compatible) backends, so a session is ready in about a second without loading the embedded
models: these tests are about protocol handling, slow clients and shutdown, not about speech. Its LLM
is a fake on 127.0.0.1 that streams a fixed answer and can be told to hold a request (a reply that is
still thinking). The clients are `websockets` and, for a client that never reads, a raw TCP socket
with a tiny receive buffer that does the WebSocket handshake by hand.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.e2e.conftest import ARTIFACTS, Server, start_server

ANSWER = "Hello there, how can I help?"


class FakeLLM:
    """An OpenAI-compatible chat endpoint streaming ANSWER; `hold_next` makes the next request wait
    (until `release` or HOLD_S), so a test can drop a socket while its reply is still thinking."""

    HOLD_S = 20.0

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.arrived = threading.Event()  # a request came in (set on every request)
        self.hold_next = False
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                fake.requests.append(body)
                hold, fake.hold_next = fake.hold_next, False
                fake.arrived.set()
                if hold:
                    fake._release.wait(FakeLLM.HOLD_S)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                with contextlib.suppress(OSError):
                    for piece in (ANSWER, None):
                        delta = {"content": piece} if piece else {}
                        chunk = {
                            "id": "chatcmpl-fake",
                            "object": "chat.completion.chunk",
                            "created": 0,
                            "model": "fake",
                            "choices": [{"index": 0, "delta": delta, "finish_reason": None if piece else "stop"}],
                        }
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


def light_env(name: str, llm_url: str = "http://127.0.0.1:9/v1", **extra: str) -> dict[str, str]:
    """Settings of a light server: remote backends (nothing embedded to load), no smart turn, open."""
    data = ARTIFACTS / f"data-hostile-{name}"
    if data.exists():
        for f in data.glob("*"):
            f.unlink()
    return {
        "VOXGATE_PRELOAD": "false",
        "VOXGATE_SMART_TURN": "false",
        "VOXGATE_ECHO_GUARD": "false",
        "VOXGATE_LLM_PREFETCH": "false",
        "VOXGATE_STT_BACKEND": "openai",
        "VOXGATE_STT_BASE_URL": "http://127.0.0.1:9/v1",
        "VOXGATE_LLM_BACKEND": "openai",
        "VOXGATE_LLM_BASE_URL": llm_url,
        "VOXGATE_LLM_MAX_RETRIES": "0",
        "VOXGATE_TTS_BACKEND": "openai",
        "VOXGATE_TTS_BASE_URL": "http://127.0.0.1:9/v1",
        "VOXGATE_DATA_DIR": str(data),
        "VOXGATE_LOG_LEVEL": "info",
        **extra,
    }


@contextlib.contextmanager
def light_server(name: str, llm_url: str = "http://127.0.0.1:9/v1", **extra: str) -> Iterator[Server]:
    """A light server for one test; killed after it if it is still running."""
    server = start_server(f"hostile-{name}", light_env(name, llm_url, **extra), timeout=120)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(10)


def health(server: Server) -> dict[str, Any]:
    return dict(httpx.get(f"{server.http}/health", timeout=5).json())


def connected(server: Server) -> int:
    return int(health(server)["connected"])


def rss_kb(pid: int) -> int:
    """The process's resident memory (VmRSS in /proc/<pid>/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def session_rows(server: Server) -> list[tuple[str, str, str | None]]:
    """(id, status, close_reason) of every session record in the server's store."""
    path = Path(light_data_dir(server)) / "voxgate.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [(str(i), str(status), reason) for i, status, reason in db.execute(SESSION_ROWS)]


SESSION_ROWS = "SELECT id, status, close_reason FROM sessions"


def light_data_dir(server: Server) -> str:
    name = server.log.stem.removeprefix("server-hostile-")
    return str(ARTIFACTS / f"data-hostile-{name}")


async def recv_json(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    import asyncio

    return dict(json.loads(await asyncio.wait_for(ws.recv(), timeout)))


async def until(ws: Any, kind: str, timeout: float = 15.0) -> dict[str, Any]:
    """The next event of type `kind` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind} within {timeout} s")
        event = await recv_json(ws, left)
        if event.get("type") == kind:
            return event


async def open_session(server: Server, session: dict[str, Any] | None = None) -> tuple[Any, str]:
    """A ready text session on a `websockets` client: (socket, session_id)."""
    ws = await websockets.connect(server.url, max_size=None)
    await ws.send(json.dumps({"type": "session.update", "session": session or TEXT_SESSION}))
    ready = await until(ws, "session.ready")
    return ws, str(ready["session_id"])


TEXT_SESSION: dict[str, Any] = {"input": {"type": "text"}, "output": {"type": "text"}}


class StuckClient:
    """A raw WebSocket client that never reads: a 4 KiB receive buffer and no recv() after the handshake."""

    def __init__(self, server: Server) -> None:
        host, port = server.http.removeprefix("http://").split(":")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /v1/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)  # byte by byte: nothing past the handshake is read
            assert chunk, "the server closed during the handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, message: dict[str, Any] | str, timeout: float = 2.0) -> bool:
        """One masked text frame; False when the server stopped taking data within `timeout`."""
        payload = (message if isinstance(message, str) else json.dumps(message)).encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else _mask(payload, mask)
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(header + mask + masked)
        except OSError:
            return False
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _mask(payload: bytes, mask: bytes) -> bytes:
    import numpy as np

    data = np.frombuffer(payload, dtype=np.uint8)
    key = np.resize(np.frombuffer(mask, dtype=np.uint8), len(data))
    return bytes(data ^ key)
