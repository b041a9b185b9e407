"""The browser page's server side: the page itself, its tokens, agent files and their tools, and when it is off."""

from fastapi.testclient import TestClient

from voxgate.app import create_app
from voxgate.config import Settings


def client(**overrides: object) -> TestClient:
    return TestClient(create_app(Settings(preload=False, **overrides)))  # type: ignore[arg-type]


def test_an_open_server_serves_the_page_tokens_and_agents() -> None:
    with client() as http:
        assert "Voxgate assistant" in http.get("/").text and http.get("/web/app.js").status_code == 200
        assert http.get("/web/../config.py").status_code == 404
        assert http.post("/v1/web/token").json()["token"].startswith("tok_")
        agents = {a["name"]: a["session"] for a in http.get("/v1/web/agents").json()["agents"]}
        assert {"support", "dental", "reminder"} <= set(agents)
        assert agents["dental"]["tools"][0]["name"] == "check_slots"


def test_an_agent_tool_needs_a_live_session_of_the_page() -> None:
    """M5: no session, no tool (tests/unit/test_web_tools.py runs one through a live session)."""
    with client() as http:
        assert http.post("/v1/web/agents/dental/tools/check_slots", json={"day": "Monday"}).status_code == 401
        assert http.post("/v1/web/agents/nobody/tools/x", json={}).status_code == 401


def test_with_keys_the_page_is_off_until_the_operator_names_its_key() -> None:
    with client(api_keys="k1,k2.web") as http:
        assert http.post("/v1/web/token").status_code == 403
        assert http.get("/v1/web/agents").status_code == 403
    with client(api_keys="k1,k2.web", web_token_key="k2.web") as http:
        token = http.post("/v1/web/token").json()["token"]
        # "." is not in a token's alphabet (URL-safe base64), so only a leak of the key could put it there
        assert token.startswith("tok_") and "k2.web" not in token
