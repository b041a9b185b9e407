"""Real server processes and real speech for the end-to-end tests.

The main server runs the embedded default models; its output goes to test-artifacts/ for post-mortems.
Speech comes from Debian's pocketsphinx-testdata (real recordings) and from the project's own voices
through `voxgate say` (synthetic; always named as such).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.wsclient import close_all

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
VOXGATE = [str(ROOT / ".venv" / "bin" / "voxgate")]
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")

API_KEY = "test-key-full"
OTHER_KEY = "test-key-other"
TOKENS_ONLY_KEY = "test-key-tokens"
SESSIONS_ONLY_KEY = "test-key-sessions"


@dataclass
class Server:
    url: str
    http: str
    process: subprocess.Popen[bytes]
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(name: str, env: dict[str, str], timeout: float = 600) -> Server:
    ARTIFACTS.mkdir(exist_ok=True)
    port = _free_port()
    log = ARTIFACTS / f"server-{name}.log"
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **env}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*VOXGATE, "serve", "--port", str(port)], env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    http = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server {name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{http}/health", timeout=1).status_code == 200:
                return Server(f"ws://127.0.0.1:{port}/v1/ws", http, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"server {name} did not become healthy:\n{log.read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()


MAIN_ENV = {
    "VOXGATE_API_KEYS": f"{API_KEY},{OTHER_KEY},{TOKENS_ONLY_KEY}:tokens,{SESSIONS_ONLY_KEY}:sessions",
    "VOXGATE_RESUME_WINDOW_S": "5",
    "VOXGATE_LLM_TEMPERATURE": "0",
    "VOXGATE_LLM_SEED": "7",
    "VOXGATE_MAX_SESSIONS": "4",
    "VOXGATE_LOG_LEVEL": "debug",
    "VOXGATE_LLM_ALLOWED_MODELS": "smollm2-135m",
    "VOXGATE_WEB_TOKEN_KEY": API_KEY,
    "VOXGATE_DATA_DIR": str(ARTIFACTS / "data-main"),  # stored agents and session records, not the user's own
    "VOXGATE_RECORDING": "true",
    # The suite checks what happens, not how fast: a first token slow on a busy 2-core CI machine (a
    # fresh prompt with tools, ~10 s idle) is not a failure here. Latency is the benches' business.
    "VOXGATE_LLM_FIRST_TOKEN_TIMEOUT_S": "90",
}


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    srv = start_server("main", MAIN_ENV)
    yield srv
    stop_server(srv)


async def connected_sessions(server: Server) -> int:
    """Sessions held by a socket right now (`GET /health`; those waiting in the resume window are not counted)."""
    async with httpx.AsyncClient() as http:
        return int((await http.get(f"{server.http}/health", timeout=5)).json()["connected"])


@pytest.fixture(autouse=True)
async def sockets_closed_and_sessions_released(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every socket a test opened is closed after it, passed or failed; then no session may stay attached.

    A session whose socket has closed is detached at once (it waits in the resume window, not counted
    as connected). One that is still counted after every socket closed is a server leak, and with four
    session slots it would refuse the next tests with `server_error`."""
    server: Server | None = request.getfixturevalue("server") if "server" in request.fixturenames else None
    before = await connected_sessions(server) if server is not None else 0
    yield
    await close_all()
    if server is None or server.process.poll() is not None:
        return
    for _ in range(50):  # 10 s
        if (now := await connected_sessions(server)) <= before:
            break
        await asyncio.sleep(0.2)
    assert now <= before, f"{now - before} session(s) still attached 10 s after every socket of the test closed"


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


def synthesize(speech_dir: Path, text: str, *, voice: str = "joe", rate: int = 24_000) -> Path:
    """Speech made with the project's own voice, cached per text; seeded, so every machine hears the same take."""
    name = "".join(c if c.isalnum() else "_" for c in text.lower())[:60] + f"_{voice}_{rate}.wav"
    path = speech_dir / name
    if not path.exists():
        subprocess.run(
            [*VOXGATE, "say", text, "-o", str(path), "--voice", voice, "--rate", str(rate), "--seed", "1"],
            check=True,
            capture_output=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    return path


def librivox(n: int) -> Path:
    return sorted(LIBRIVOX.glob("*.wav"))[n]


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
