"""M4 (open mode): a keyless server refuses foreign Host headers (DNS rebinding) and foreign pages'
WebSockets and writes (cross-site WebSocket hijacking); a server with keys is not affected."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.websockets import WebSocketDisconnect

from voxgate.app import create_app
from voxgate.config import Settings
from voxgate.server.origin_guard import OriginPolicy, is_loopback_host, policy_for


def open_client(**overrides: object) -> TestClient:
    return TestClient(create_app(Settings(preload=False, **overrides)), base_url="http://127.0.0.1:8000")  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.1", "::1", "[::1]", "app.localhost", "LOCALHOST."])
def test_loopback_names(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "10.0.0.1", "0.0.0.0", ""])
def test_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


def test_policy_decisions() -> None:
    policy = policy_for(
        origins=["http://localhost", "https://app.example.com:8443"],
        hosts=[],
        listen_host="127.0.0.1",
        public_url="https://voice.example.com",
    )
    assert policy.host_allowed("127.0.0.1:8000") and policy.host_allowed("voice.example.com")
    assert policy.host_allowed("app.example.com:8443") and policy.host_allowed(None)
    assert not policy.host_allowed("evil.example:8000") and not policy.host_allowed("127.0.0.1:notaport")
    assert policy.origin_allowed("http://localhost:3000", "127.0.0.1:8000")  # no port: any port
    assert policy.origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000")  # the server's own page
    assert policy.origin_allowed("https://app.example.com:8443", "127.0.0.1:8000")
    assert not policy.origin_allowed("https://app.example.com", "127.0.0.1:8000")  # other port (443)
    assert not policy.origin_allowed("http://evil.example", "127.0.0.1:8000")
    assert not policy.origin_allowed("null", "127.0.0.1:8000")
    assert OriginPolicy(origins=["*"], hosts=["*"]).origin_allowed("http://x", "y")


def test_m4_open_mode_refuses_a_rebound_host_on_every_route() -> None:
    with open_client() as http:
        assert http.get("/health").status_code == 200
        for path in ("/health", "/v1/twilio/calls", "/v1/sessions"):
            refused = http.get(path, headers={"Host": "rebind.evil.example:8000"})
            assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN", path


def test_m4_open_mode_refuses_foreign_pages_websockets_and_writes() -> None:
    with open_client() as http:
        evil = {"Origin": "https://evil.example"}
        assert http.post("/v1/web/token", headers=evil).status_code == 403
        assert http.get("/v1/voices", headers=evil).status_code == 200  # a read: the page cannot see it anyway
        assert http.post("/v1/web/token", headers={"Origin": "http://127.0.0.1:8000"}).status_code == 200
        assert http.post("/v1/web/token", headers={"Origin": "http://localhost:5173"}).status_code == 200
        assert http.post("/v1/web/token").status_code == 200  # no Origin: not a page's script
        with pytest.raises(WebSocketDisconnect) as refused, http.websocket_connect("/v1/ws", headers=evil):
            pass
        assert refused.value.code == 1008
        with pytest.raises(WebSocketDisconnect), http.websocket_connect("/v1/twilio/stream", headers=evil):
            pass


def test_m4_allowed_origins_and_hosts_are_settings() -> None:
    with open_client(allowed_origins="https://app.example.com", allowed_hosts="voxgate.lan") as http:
        assert http.post("/v1/web/token", headers={"Origin": "https://app.example.com"}).status_code == 200
        assert http.post("/v1/web/token", headers={"Origin": "http://localhost:3000"}).status_code == 403
        assert http.get("/health", headers={"Host": "voxgate.lan:8000"}).status_code == 200
        assert http.get("/health", headers={"Host": "app.example.com"}).status_code == 200


def test_a_server_with_keys_is_not_checked() -> None:
    settings = Settings(preload=False, api_keys=[SecretStr("k")])
    with TestClient(create_app(settings)) as http:
        assert http.get("/health", headers={"Host": "voice.example.com"}).status_code == 200
        assert http.post("/v1/tokens", headers={"Origin": "https://evil.example"}).status_code == 401
