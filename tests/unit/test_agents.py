"""Agent files load and validate; a webhook tool runs against a real local HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from voxgate.agents import (
    BUNDLED_DIR,
    AgentConfig,
    AgentError,
    AgentTool,
    WebhookTools,
    list_agents,
    load_agent,
)
from voxgate.backends.registry import Models
from voxgate.config import Settings
from voxgate.session.config import LiveConfig, apply_update

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ("support", "dental", "reminder")


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_agent_loads_and_is_a_valid_session(name: str) -> None:
    agent = load_agent(name)
    assert agent.name == name and agent.system_prompt and agent.greeting
    assert agent.tools and all(t.webhook and t.webhook.startswith("https://") for t in agent.tools)
    session, fields = agent.session_config()
    assert session.input and session.input.format and session.input.format.encoding == "audio/pcmu"
    assert session.output and session.output.format and session.output.format.encoding == "audio/pcmu"
    assert "{" not in (session.greeting or "") + (session.system_prompt or "")  # every placeholder filled
    # The same rules a client's session.update goes through, with the real voice catalog (no model loads).
    voices = Models(Settings(preload=False)).voices
    config = apply_update(LiveConfig(system_prompt="x"), session, fields, voices.resolve)
    assert config.greeting == session.greeting and config.output_encoding == "audio/pcmu"
    assert [t.name for t in config.tools] == [t.name for t in agent.tools]


def test_the_three_examples_are_shipped_and_bundled_alike() -> None:
    assert set(BUNDLED) <= set(list_agents())
    for name in BUNDLED:
        example = ROOT / "examples" / "agents" / f"{name}.yaml"
        assert example.read_text() == (BUNDLED_DIR / f"{name}.yaml").read_text(), f"{example} and bundled differ"


def test_expected_tools_and_the_reminder_disclosure() -> None:
    assert load_agent("support").tool("lookup_account") is not None
    assert load_agent("dental").tool("check_slots") is not None
    reminder = load_agent("reminder")
    greeting = reminder.session_config(variables={"clinic": "Oak Dental", "patient": "Jane"})[0].greeting or ""
    assert greeting.startswith("Hello, this is an automated call from Oak Dental.")
    assert "This call may be recorded." in greeting and "Jane" in greeting


def test_agents_dir_comes_first_and_bad_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "support.yaml").write_text("system_prompt: Local support.\n")
    assert load_agent("support", tmp_path).system_prompt == "Local support."
    assert load_agent("dental", tmp_path).name == "dental"  # falls back to the bundled one
    (tmp_path / "typo.yaml").write_text("system_prompt: x\ngreting: hello\n")
    with pytest.raises(AgentError, match="greting"):
        load_agent("typo", tmp_path)
    (tmp_path / "other.yaml").write_text("name: someone\nsystem_prompt: x\n")
    with pytest.raises(AgentError, match="someone"):
        load_agent("other", tmp_path)
    with pytest.raises(AgentError, match="unknown agent"):
        load_agent("nobody", tmp_path)
    with pytest.raises(AgentError, match="invalid agent name"):
        load_agent("../etc/passwd", tmp_path)


# ---------------------------------------------------------------- webhook tools


class _Handler(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.received.append({"path": self.path, "body": body})
        if self.path == "/slow":
            time.sleep(1.5)
        if self.path == "/broken":
            self._answer(500, "text/plain", b"boom")
        elif self.path == "/text":
            self._answer(200, "text/plain", b"Two slots: 9:00 and 14:30.")
        else:
            reply = {"account": body["arguments"].get("account_number"), "plan": "Fiber 500", "balance": 42.5}
            self._answer(200, "application/json", json.dumps(reply).encode())

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.received.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _agent(base: str) -> AgentConfig:
    def tool(name: str, path: str, timeout: float = 5.0) -> AgentTool:
        return AgentTool(name=name, webhook=f"{base}{path}", timeout_s=timeout)

    return AgentConfig(
        name="t",
        system_prompt="x",
        tools=[
            tool("lookup_account", "/json"),
            tool("check_slots", "/text"),
            tool("slow", "/slow", timeout=0.3),
            tool("broken", "/broken"),
            AgentTool(name="no_hook"),
        ],
    )


@pytest.mark.asyncio
async def test_webhook_tool_posts_name_and_arguments_and_returns_the_answer(webhook_server: str) -> None:
    tools = WebhookTools(_agent(webhook_server))
    try:
        result = await tools.run("lookup_account", {"account_number": "12345"})
        assert json.loads(result) == {"account": "12345", "plan": "Fiber 500", "balance": 42.5}
        assert _Handler.received[0] == {
            "path": "/json",
            "body": {"name": "lookup_account", "arguments": {"account_number": "12345"}},
        }
        assert await tools.run("check_slots", {"date": "Tuesday"}) == "Two slots: 9:00 and 14:30."
    finally:
        await tools.aclose()


@pytest.mark.asyncio
async def test_webhook_failures_become_error_results(webhook_server: str) -> None:
    tools = WebhookTools(_agent(webhook_server))
    try:
        started = time.monotonic()
        assert "did not answer in time" in await tools.run("slow", {})
        assert time.monotonic() - started < 1.2  # the timeout, not the slow answer
        assert (await tools.run("broken", {})).startswith("error:") and "500" in await tools.run("broken", {})
        assert "no webhook" in await tools.run("no_hook", {})
        assert "no tool named" in await tools.run("missing", {})
    finally:
        await tools.aclose()
    unreachable = WebhookTools(
        AgentConfig(name="u", system_prompt="x", tools=[AgentTool(name="t", webhook="http://127.0.0.1:9/")])
    )
    try:
        assert "could not be reached" in await unreachable.run("t", {})
    finally:
        await unreachable.aclose()
