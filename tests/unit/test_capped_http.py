"""A tool endpoint's answer is read only as far as it is used (voxgate/capped_http.py).

Before, `response.text` read the whole body: an endpoint answering hundreds of megabytes was held in
memory whole. Here the endpoint would send 200 MB; the test counts how much of it was pulled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from voxgate.agents import AgentTool, run_webhook
from voxgate.protocol.events import Tool
from voxgate.session import server_tools

CHUNK = 64 * 1024
HUGE = 200 * 1024 * 1024


class Endless(httpx.AsyncByteStream):
    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < HUGE:
            self.sent += CHUNK
            yield b"x" * CHUNK

    async def aclose(self) -> None:
        return None


REAL_CLIENT = httpx.AsyncClient


def _client(body: Endless) -> httpx.AsyncClient:
    return REAL_CLIENT(transport=httpx.MockTransport(lambda _: httpx.Response(200, stream=body)))


async def test_a_server_run_http_tool_reads_at_most_its_result_limit(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    body = Endless()
    monkeypatch.setattr(server_tools.httpx, "AsyncClient", lambda **_: _client(body))
    tool = Tool(name="lookup", http={"url": "http://tools.internal/lookup", "method": "POST"})
    result, is_error = await server_tools.run_server_tool(tool, {"id": "1"})
    assert not is_error
    assert len(result) == server_tools.MAX_RESULT_CHARS
    assert body.sent <= server_tools.MAX_RESULT_CHARS + 2 * CHUNK


async def test_an_agent_files_webhook_reads_at_most_a_few_times_its_result_limit() -> None:
    body = Endless()
    tool = AgentTool(name="lookup", description="", webhook="http://tools.internal/lookup")
    async with _client(body) as client:
        result = await run_webhook(tool, {}, client)
    assert result.endswith("...(truncated)")
    assert body.sent <= 8 * CHUNK + 4 * 2000
