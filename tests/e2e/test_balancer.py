"""deploy/haproxy.cfg in front of two real Voxgate processes, HAProxy as a plain process.

The shipped configuration is used as it is, except where containers differ from this machine: the
replicas are two loopback ports instead of the `voxgate` service's DNS names, the frontend binds a
free loopback port, and a stats socket lets the test read what HAProxy thinks of each replica.
What is checked: WebSocket sessions pass through the balancer (the upgrade and the session's
events), and a replica whose `/ready` says 503 (here: full, `max_sessions` 1) is taken out of
rotation, so the next calls go to the other replica instead of being refused; once it has room
again it is put back. The replicas are light (remote backends, nothing loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.conftest import ARTIFACTS, ROOT, Server, _free_port, start_server, stop_server
from tests.e2e.hostile.socket_fixtures import light_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (VOXGATE_EXTRA_APT)"),
]

SHIPPED = ROOT / "deploy" / "haproxy.cfg"


def local_config(shipped: str, port: int, replicas: dict[str, int], stats: Path) -> str:
    """The shipped configuration with loopback replicas, a loopback frontend and a stats socket."""
    template = re.search(r"^\s*server-template voxgate \d+ voxgate:8000 (.*)$", shipped, re.M)
    assert template is not None, "deploy/haproxy.cfg has no server-template line"
    check = re.sub(r"\s*(resolvers \S+|init-addr \S+)", "", template.group(1)).strip()
    servers = "\n".join(f"    server {name} 127.0.0.1:{p} {check}" for name, p in replicas.items())
    text = shipped.replace(template.group(0), servers)
    text = re.sub(r"^resolvers docker\n(?:    .*\n)+", "", text, flags=re.M)  # no Docker DNS here
    text = re.sub(r"^(\s*)bind :8000$", rf"\1bind 127.0.0.1:{port}", text, flags=re.M)
    return text.replace("global\n", f"global\n    stats socket {stats} level admin\n", 1)


def server_states(stats: Path) -> dict[str, str]:
    """{replica: "UP" | "DOWN" | ...} from HAProxy's `show stat`."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(stats))
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {
        r["svname"]: r["status"] for r in rows if r.get("pxname") == "voxgate_replicas" and r["svname"] != "BACKEND"
    }


def wait_state(stats: Path, replica: str, want: str, limit_s: float = 15.0) -> None:
    deadline = time.monotonic() + limit_s
    while (state := server_states(stats).get(replica)) != want:
        assert time.monotonic() < deadline, f"{replica} stayed {state}, not {want}"
        time.sleep(0.2)


@contextlib.contextmanager
def balancer(replicas: dict[str, int]) -> Iterator[tuple[str, Path]]:
    ARTIFACTS.mkdir(exist_ok=True)
    port = _free_port()
    stats = ARTIFACTS / f"haproxy-{port}.sock"
    config = ARTIFACTS / "haproxy-test.cfg"
    config.write_text(local_config(SHIPPED.read_text(), port, replicas, stats))
    checked = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log = (ARTIFACTS / "haproxy-test.log").open("wb")
    process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not stats.exists():
            assert process.poll() is None and time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.1)
        for name in replicas:
            wait_state(stats, name, "UP")
        yield f"ws://127.0.0.1:{port}/v1/ws", stats
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        stats.unlink(missing_ok=True)


def connected(server: Server) -> int:
    return int(httpx.get(f"{server.http}/health", timeout=5).json()["connected"])


async def open_session(url: str) -> tuple[Any, dict[str, Any]]:
    ws = await websockets.connect(url, open_timeout=20)
    await ws.send(json.dumps({"type": "session.update", "session": {"system_prompt": "Be brief."}}))
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if event["type"] in ("session.ready", "session.error"):
            return ws, event


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[Server, Server]]:
    a = start_server("balancer-a", light_env("balancer-a", VOXGATE_MAX_SESSIONS="1"), timeout=120)
    try:
        b = start_server("balancer-b", light_env("balancer-b", VOXGATE_MAX_SESSIONS="8"), timeout=120)
    except Exception:
        stop_server(a)
        raise
    yield a, b
    stop_server(a)
    stop_server(b)


async def test_sessions_pass_through_and_a_full_replica_is_taken_out_of_rotation(
    replicas: tuple[Server, Server],
) -> None:
    a, b = replicas
    ports = {name: int(s.http.rsplit(":", 1)[1]) for name, s in (("a", a), ("b", b))}
    with balancer(ports) as (url, stats):
        sockets: list[Any] = []
        try:
            # leastconn spreads the first calls; open until replica a holds its one session.
            for _ in range(4):
                ws, event = await open_session(url)
                sockets.append(ws)
                assert event["type"] == "session.ready", event  # the upgrade and the session went through
                if connected(a) == 1:
                    break
            assert connected(a) == 1
            ready = httpx.get(f"{a.http}/ready", timeout=5)
            assert ready.status_code == 503 and ready.json()["checks"]["capacity"] == "full (1/1 sessions)"
            wait_state(stats, "a", "DOWN")  # /ready said 503 twice: out of rotation
            on_b = connected(b)
            for _ in range(3):  # without the check, leastconn would send these to a, which refuses them
                ws, event = await open_session(url)
                sockets.append(ws)
                assert event["type"] == "session.ready", event
            assert connected(a) == 1 and connected(b) == on_b + 3
            # Room again on a: /ready is 200 and HAProxy puts it back.
            for ws in sockets:
                await ws.send(json.dumps({"type": "session.end"}))
            deadline = time.monotonic() + 15
            while connected(a) != 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            assert httpx.get(f"{a.http}/ready", timeout=5).status_code == 200
            wait_state(stats, "a", "UP")
        finally:
            for ws in sockets:
                with contextlib.suppress(Exception):
                    await ws.close()
