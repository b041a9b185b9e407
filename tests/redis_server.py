"""A real redis-server for the tests: Debian's, started on a free port in a temporary directory, with
no persistence, and stopped (and its directory removed) after.

scripts/test.sh installs `redis-server` (VOXGATE_EXTRA_APT). Where it is absent, `redis_or_skip`
skips the test, saying so; CI has it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@dataclass
class RedisServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def available() -> bool:
    return Path(REDIS_SERVER).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the block; pytest.skip with the reason if it is not installed."""
    if not available():
        pytest.skip("redis-server is not installed (Debian package redis-server; scripts/test.sh installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="voxgate-redis-"))
    port = _free_port()
    log = workdir / "redis.log"
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", ""]
    args += ["--appendonly", "no", "--logfile", str(log), "--daemonize", "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING within 10 s")
            time.sleep(0.05)
        yield RedisServer(f"redis://127.0.0.1:{port}/0", port, process, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)
