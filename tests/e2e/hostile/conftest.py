"""Real server processes for the hostile-client tests: no models are loaded (VOXGATE_PRELOAD=false),
so each starts in a second or two, and every test talks to it over 127.0.0.1 as an attacker would.

`keyed_server` has API keys (full, `:tokens`, `:sessions`), a Twilio Auth Token, the browser page on,
a small token store, and remote backends whose URLs carry credentials (nothing listens there).
`open_server` has no keys: the loopback, keyless mode. Their logs go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, start_server, stop_server

FULL_KEY = "hostile-key-full"
TOKENS_KEY = "hostile-key-tokens"
SESSIONS_KEY = "hostile-key-sessions"
TWILIO_AUTH_TOKEN = "hostile-twilio-auth-token"
BACKEND_SECRET = "b4ckend-s3cret"
MAX_LIVE_TOKENS = 50
#: Nothing listens on port 9 (discard) here: the remote backends fail at once.
SECRET_URL = f"http://voxuser:{BACKEND_SECRET}@127.0.0.1:9/v1"

BASE_ENV = {
    "VOXGATE_PRELOAD": "false",
    "VOXGATE_LOG_LEVEL": "info",  # what an operator runs with: L4 is about what INFO lines hold
    "VOXGATE_STORE_PATH": ":memory:",
}


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[Server]:
    env = {
        **BASE_ENV,
        "VOXGATE_API_KEYS": f"{FULL_KEY},{TOKENS_KEY}:tokens,{SESSIONS_KEY}:sessions",
        "VOXGATE_TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
        "VOXGATE_WEB_TOKEN_KEY": FULL_KEY,
        "VOXGATE_MAX_LIVE_TOKENS": str(MAX_LIVE_TOKENS),
        "VOXGATE_LLM_BACKEND": "openai",
        "VOXGATE_LLM_BASE_URL": SECRET_URL,
        "VOXGATE_LLM_MAX_RETRIES": "0",
        "VOXGATE_TTS_BACKEND": "openai",
        "VOXGATE_TTS_BASE_URL": SECRET_URL,
        "VOXGATE_TTS_REMOTE_VOICES": "nova",
    }
    server = start_server("hostile-keyed", env, timeout=60)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def open_server() -> Iterator[Server]:
    server = start_server("hostile-open", dict(BASE_ENV), timeout=60)
    yield server
    stop_server(server)


def log_since(server: Server, offset: int) -> str:
    return server.log.read_bytes()[offset:].decode("utf-8", "replace")


def rss_peak_kb(server: Server) -> int:
    """The server's peak resident memory (VmHWM), in KiB."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/<pid>/status")
