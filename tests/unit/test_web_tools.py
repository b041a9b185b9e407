"""M5: `POST /v1/web/agents/{name}/tools/{tool}` runs a tool only for the page's live session.

The credential is the resume token the page got in `session.ready`; the tool must be one the session
declared and the agent file defines; the body is a JSON object of at most 64 KB, anything else 400.
A live session is put in the registry directly (no models are loaded here).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from voxgate.app import create_app
from voxgate.backends.base import ToolSpec
from voxgate.config import Settings

AGENT = """\
name: shop
system_prompt: You sell things.
tools:
  - name: lookup
    description: Look an order up.
    parameters: {{type: object, properties: {{order: {{type: string}}}}}}
    webhook: http://127.0.0.1:{port}/lookup
    timeout_s: 2
  - name: refund
    description: Refund an order.
    parameters: {{type: object, properties: {{}}}}
    webhook: http://127.0.0.1:{port}/refund
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "shop.yaml").write_text(AGENT.format(port=_closed_port()))
    with TestClient(create_app(Settings(preload=False, agents_dir=str(tmp_path)))) as client:
        yield client
        store = client.app.state.sessions.store  # type: ignore[attr-defined]
        for session_id in [s for s in ("sess_page",) if store.peek(s) is not None]:
            store.remove(session_id)  # the fake is no conversation the shutdown could end


async def live_session(http: TestClient, *tools: str, session_id: str = "sess_page") -> str:
    """A session in the registry that declared `tools`, and the resume token its page holds."""
    app = http.app
    conversation = SimpleNamespace(config=SimpleNamespace(tools=tuple(ToolSpec(t, "", {}) for t in tools)))
    app.state.sessions.store.add(session_id, conversation, "anonymous")  # type: ignore[attr-defined]
    token: str = await app.state.auth.mint_resume_token(session_id, "anonymous", 60)  # type: ignore[attr-defined]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_m5_web_tool_runs_only_for_a_live_session_and_its_own_tools(http: TestClient) -> None:
    assert http.post("/v1/web/agents/shop/tools/lookup", json={}).status_code == 401
    assert http.post("/v1/web/agents/shop/tools/lookup", json={}, headers=bearer("rtok_forged")).status_code == 401
    web_token = http.post("/v1/web/token").json()["token"]  # a temporary token is not a session
    assert http.post("/v1/web/agents/shop/tools/lookup", json={}, headers=bearer(web_token)).status_code == 401

    token = await live_session(http, "lookup")
    # Declared and defined: it runs, and the (unreachable) service is an error sentence for the LLM.
    response = http.post("/v1/web/agents/shop/tools/lookup", json={"order": "A1"}, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "error: the lookup service could not be reached"
    # Defined by the agent but not declared by the session; declared nowhere; another agent's.
    assert http.post("/v1/web/agents/shop/tools/refund", json={}, headers=bearer(token)).status_code == 404
    assert http.post("/v1/web/agents/shop/tools/nothing", json={}, headers=bearer(token)).status_code == 404
    assert http.post("/v1/web/agents/dental/tools/lookup", json={}, headers=bearer(token)).status_code == 404

    # The session is gone (ended or reaped): its token runs nothing.
    http.app.state.sessions.store.remove("sess_page")  # type: ignore[attr-defined]
    assert http.post("/v1/web/agents/shop/tools/lookup", json={}, headers=bearer(token)).status_code == 401


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"[" * 60_000])
async def test_m5_web_tool_body_that_is_not_a_json_object_is_400(http: TestClient, body: bytes) -> None:
    token = await live_session(http, "lookup")
    response = http.post("/v1/web/agents/shop/tools/lookup", content=body, headers=bearer(token))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_REQUEST"


async def test_m5_web_tool_body_is_capped_at_64_kb(http: TestClient) -> None:
    token = await live_session(http, "lookup")
    big = b'{"order": "' + b"x" * (70 << 10) + b'"}'
    response = http.post("/v1/web/agents/shop/tools/lookup", content=big, headers=bearer(token))
    assert response.status_code == 413 and response.json()["code"] == "PAYLOAD_TOO_LARGE"
