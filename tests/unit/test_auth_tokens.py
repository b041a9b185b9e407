"""Credentials as the hosted API takes them (§2), temporary and resume tokens (§8), REST errors (§7.3).

The app is built with settings and no preload, so nothing here loads a model; the WebSocket is only
opened far enough to be refused (a full session is the connection's business, not this module's).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.websockets import WebSocketDisconnect

from voxgate.app import create_app
from voxgate.config import Settings
from voxgate.server.auth import MAX_SESSION_S, Authenticator, AuthError, Principal, Scope, credential
from voxgate.session.builtin_tools import LUHN_CHECK, PRE_CONNECT_CONTEXT, luhn_check, run_builtin_tool

KEY = "unit-key"
TOKENS_KEY = "unit-tokens-only"
SESSIONS_KEY = "unit-sessions-only"
ERROR_FIELDS = {"code", "message", "param", "request_id", "errors", "detail"}


def make_client(**overrides: Any) -> TestClient:
    keys = [SecretStr(KEY), SecretStr(f"{TOKENS_KEY}:tokens"), SecretStr(f"{SESSIONS_KEY}:sessions")]
    settings = Settings(preload=False, api_keys=keys, **overrides)
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def client() -> TestClient:
    return make_client()


def auth_of(client: TestClient) -> Authenticator:
    auth: Authenticator = client.app.state.auth  # type: ignore[attr-defined]
    return auth


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_FIELDS, body
    assert body["code"] == code and body["request_id"].startswith("req_")
    assert body["errors"] and body["errors"][0]["message"]
    return body


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- the Authorization header


@pytest.mark.parametrize(
    "header",
    [KEY, f"Bearer {KEY}", f"bearer {KEY}", f"  BEARER \t {KEY}  ", f"  {KEY} "],
    ids=["raw", "Bearer", "lowercase", "upper-and-whitespace", "raw-with-whitespace"],
)
def test_a_key_is_taken_raw_or_as_bearer(client: TestClient, header: str) -> None:
    response = client.get("/v1/token", headers={"Authorization": header})
    assert response.status_code == 200, response.text
    assert response.json()["token"].startswith("tok_") and response.json()["expires_in_seconds"] == 60


def test_credential_parsing_tells_no_header_from_an_empty_one() -> None:
    assert credential(None) is None and credential("   ") is None
    assert credential("Bearer") == "" and credential("bearer   ") == ""
    assert credential("Bearer abc") == "abc" and credential("abc") == "abc"
    assert credential("Bearerabc") == "Bearerabc"  # not the scheme: a raw key


def test_no_header_is_missing_authorization_and_a_wrong_key_unauthorized(client: TestClient) -> None:
    assert_error(client.get("/v1/token"), 401, "MISSING_AUTHORIZATION")
    assert_error(client.post("/v1/tokens"), 401, "MISSING_AUTHORIZATION")
    assert_error(client.get("/v1/builtin_tools"), 401, "MISSING_AUTHORIZATION")
    assert_error(client.get("/v1/token", headers={"Authorization": "wrong"}), 401, "UNAUTHORIZED")
    assert_error(client.get("/v1/token", headers={"Authorization": "Bearer wrong"}), 401, "UNAUTHORIZED")
    assert_error(client.get("/v1/token", headers={"Authorization": "Bearer"}), 401, "UNAUTHORIZED")


def test_the_key_is_checked_before_the_parameters(client: TestClient) -> None:
    assert_error(client.get("/v1/token?expires_in_seconds=abc"), 401, "MISSING_AUTHORIZATION")


async def test_an_open_server_takes_any_header_or_none() -> None:
    with TestClient(create_app(Settings(preload=False))) as open_client:
        assert open_client.get("/v1/token").status_code == 200
        assert open_client.get("/v1/token", headers={"Authorization": "anything"}).status_code == 200
        assert open_client.get("/v1/builtin_tools").status_code == 200
    auth = Authenticator([])
    assert (await auth.authenticate_ws(None, None)).owner == "anonymous"


# ---------------------------------------------------------------- temporary tokens


async def test_a_temporary_token_opens_one_socket_once(client: TestClient) -> None:
    auth = auth_of(client)
    token = client.get("/v1/token", headers={"Authorization": KEY}).json()["token"]
    principal = await auth.authenticate_ws(None, token)
    assert principal.via_token and principal.scopes == frozenset({Scope.SESSIONS})
    assert principal.owner == auth.check_key(KEY).owner  # so the key can resume what the token opened
    with pytest.raises(AuthError) as spent:
        await auth.authenticate_ws(None, token)
    assert spent.value.code == "UNAUTHORIZED"
    # The SDK's form, Bearer in the header, spends it the same way.
    token = client.get("/v1/token", headers={"Authorization": KEY}).json()["token"]
    assert (await auth.authenticate_ws(f"Bearer {token}", None)).via_token
    with pytest.raises(AuthError, match="already used"):
        await auth.authenticate_ws(f"Bearer {token}", None)


async def test_a_spent_token_is_refused_on_the_socket_with_session_error_and_1008(client: TestClient) -> None:
    token = client.get("/v1/token", headers={"Authorization": KEY}).json()["token"]
    await auth_of(client).redeem_token(token)
    for path, headers in ((f"/v1/ws?token={token}", {}), ("/v1/ws", {"Authorization": f"Bearer {token}"})):
        with client.websocket_connect(path, headers=headers) as ws:
            event = ws.receive_json()
            assert event["type"] == "session.error" and event["code"] == "UNAUTHORIZED"
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
        assert closed.value.code == 1008 and closed.value.reason == "UNAUTHORIZED"


def test_a_key_without_the_sessions_scope_is_forbidden_on_the_socket(client: TestClient) -> None:
    with client.websocket_connect("/v1/ws", headers={"Authorization": TOKENS_KEY}) as ws:
        assert ws.receive_json()["code"] == "FORBIDDEN"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1008 and closed.value.reason == "FORBIDDEN"


async def test_a_token_cannot_mint_tokens_or_call_rest_and_is_not_spent_by_trying(client: TestClient) -> None:
    token = client.get("/v1/token", headers={"Authorization": KEY}).json()["token"]
    for header in (f"Bearer {token}", token):
        assert_error(client.get("/v1/token", headers={"Authorization": header}), 403, "FORBIDDEN")
        assert_error(client.post("/v1/tokens", headers={"Authorization": header}), 403, "FORBIDDEN")
        assert_error(client.get("/v1/builtin_tools", headers={"Authorization": header}), 403, "FORBIDDEN")
    redeemed = await auth_of(client).redeem_token(token)  # still unspent: the REST calls above did not use it
    with pytest.raises(AuthError) as refused:
        await auth_of(client).mint_token(redeemed, 60)
    assert refused.value.code == "FORBIDDEN"
    with pytest.raises(AuthError) as refused:  # even a token principal that claims every scope
        await auth_of(client).mint_token(Principal(owner="key_x", scopes=frozenset(Scope), via_token=True), 60)
    assert refused.value.code == "FORBIDDEN"


def test_key_scopes_hold_on_rest(client: TestClient) -> None:
    assert_error(client.get("/v1/token", headers={"Authorization": SESSIONS_KEY}), 403, "FORBIDDEN")
    assert_error(client.get("/v1/builtin_tools", headers={"Authorization": TOKENS_KEY}), 403, "FORBIDDEN")
    assert client.get("/v1/token", headers={"Authorization": TOKENS_KEY}).status_code == 200


async def test_a_token_expires_and_expired_tokens_are_dropped() -> None:
    clock = Clock()
    auth = Authenticator([KEY], clock=clock)
    key = auth.check_key(KEY)
    tokens = [await auth.mint_token(key, 60) for _ in range(500)]
    late = await auth.mint_token(key, 600)
    resume = await auth.mint_resume_token("sess_1", key.owner, 30)
    await auth.redeem_token(tokens[0])
    assert await auth.held() == {"tokens": 500, "resume_tokens": 1, "expiries": 502}
    clock.now += 60
    with pytest.raises(AuthError):
        await auth.redeem_token(tokens[1])
    with pytest.raises(AuthError):
        await auth.check_resume_token(resume)
    assert await auth.held() == {"tokens": 1, "resume_tokens": 0, "expiries": 1}
    assert (await auth.redeem_token(late)).via_token


# ---------------------------------------------------------------- GET /v1/token and POST /v1/tokens


@pytest.mark.parametrize(
    ("query", "param", "kind"),
    [
        ("expires_in_seconds=abc", "expires_in_seconds", "int_parsing"),
        ("expires_in_seconds=1.5", "expires_in_seconds", "int_parsing"),
        ("expires_in_seconds=0", "expires_in_seconds", "greater_than_equal"),
        ("expires_in_seconds=601", "expires_in_seconds", "less_than_equal"),
        ("max_session_duration_seconds=59", "max_session_duration_seconds", "greater_than_equal"),
        ("max_session_duration_seconds=10801", "max_session_duration_seconds", "less_than_equal"),
    ],
)
def test_get_token_validation_is_422_with_the_fastapi_detail(
    client: TestClient, query: str, param: str, kind: str
) -> None:
    body = assert_error(client.get(f"/v1/token?{query}", headers={"Authorization": KEY}), 422, "VALIDATION_ERROR")
    assert body["param"] == param and body["errors"][0]["param"] == param
    assert body["detail"] == [{"type": kind, "loc": ["query", param], "msg": body["detail"][0]["msg"]}]
    assert body["detail"][0]["msg"]


def test_the_operator_may_lower_the_token_lifetime() -> None:
    with make_client(max_token_ttl_s=30) as short:
        response = short.get("/v1/token?expires_in_seconds=31", headers={"Authorization": KEY})
        assert assert_error(response, 422, "VALIDATION_ERROR")["detail"][0]["type"] == "less_than_equal"
        assert short.get("/v1/token", headers={"Authorization": KEY}).json()["expires_in_seconds"] == 30


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"expires_in_seconds": 0}, "expires_in_seconds"),
        ({"expires_in_seconds": 601}, "expires_in_seconds"),
        ({"expires_in_seconds": "soon"}, "expires_in_seconds"),
        ({"max_session_duration_seconds": 10}, "max_session_duration_seconds"),
    ],
)
def test_post_tokens_validation_is_422_with_body_loc(client: TestClient, body: dict[str, Any], param: str) -> None:
    response = client.post("/v1/tokens", json=body, headers={"Authorization": KEY})
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["param"] == param and error["detail"][0]["loc"] == ["body", param]


def test_post_tokens_answers_an_iso_utc_expiry(client: TestClient) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    response = client.post("/v1/tokens", json={"expires_in_seconds": 120}, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "expires_at"} and body["token"].startswith("tok_")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["expires_at"]), body
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert expires_at.utcoffset() == timedelta(0)
    assert before + timedelta(seconds=120) <= expires_at <= datetime.now(UTC) + timedelta(seconds=120)
    default = client.post("/v1/tokens", headers={"Authorization": KEY}).json()["expires_at"]
    assert datetime.fromisoformat(default) <= datetime.now(UTC) + timedelta(seconds=60)


async def test_max_session_duration_is_carried_to_the_principal(client: TestClient) -> None:
    auth = auth_of(client)
    token = client.get("/v1/token?max_session_duration_seconds=120", headers={"Authorization": KEY}).json()["token"]
    assert (await auth.authenticate_ws(None, token)).max_session_s == 120
    body = {"expires_in_seconds": 30, "max_session_duration_seconds": 300}
    token = client.post("/v1/tokens", json=body, headers={"Authorization": KEY}).json()["token"]
    assert (await auth.authenticate_ws(f"Bearer {token}", None)).max_session_s == 300
    token = client.get("/v1/token", headers={"Authorization": KEY}).json()["token"]
    assert (await auth.authenticate_ws(None, token)).max_session_s == MAX_SESSION_S
    assert (await auth.authenticate_ws(KEY, None)).max_session_s == MAX_SESSION_S == 10_800


# ---------------------------------------------------------------- resume tokens


async def test_a_resume_token_names_its_session_and_is_not_spent() -> None:
    auth = Authenticator([KEY])
    owner = auth.check_key(KEY).owner
    resume = await auth.mint_resume_token("sess_1", owner, 30)
    other = await auth.mint_resume_token("sess_2", owner, 30)
    for _ in range(2):
        principal = await auth.authenticate_ws(f"Bearer {resume}", None)
        assert principal.resume_of == "sess_1" and principal.owner == owner and principal.via_token
        assert (await auth.authenticate_ws(None, resume)).resume_of == "sess_1"
    assert (await auth.authenticate_ws(KEY, None)).resume_of is None
    with pytest.raises(AuthError) as rest:
        await auth.authenticate_rest(f"Bearer {resume}")
    assert rest.value.code == "FORBIDDEN" and rest.value.status == 403
    with pytest.raises(AuthError):
        await auth.mint_token(principal, 60)
    await auth.revoke_resume_tokens("sess_1")
    for header, query in ((f"Bearer {resume}", None), (None, resume)):
        with pytest.raises(AuthError) as revoked:
            await auth.authenticate_ws(header, query)
        assert revoked.value.code == "UNAUTHORIZED"
    assert (await auth.check_resume_token(other)).resume_of == "sess_2"
    assert (await auth.held())["resume_tokens"] == 1


# ---------------------------------------------------------------- built-in tools


def test_builtin_tools_lists_the_platform_tools(client: TestClient) -> None:
    response = client.get("/v1/builtin_tools", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200, response.text
    tools = {tool["name"]: tool for tool in response.json()["builtin_tools"]}
    assert set(tools) == {LUHN_CHECK, PRE_CONNECT_CONTEXT}
    for tool in tools.values():
        assert set(tool) == {"name", "description", "parameters", "execution_mode"}
        assert tool["description"] and tool["parameters"]["type"] == "object"
        assert tool["execution_mode"] == "interactive"
    assert tools[LUHN_CHECK]["parameters"]["required"] == ["card_number"]


def test_the_luhn_check() -> None:
    assert luhn_check("4111 1111 1111 1111") == {"valid": True, "digits": 16, "last4": "1111"}
    assert luhn_check("4111-1111-1111-1112")["valid"] is False
    assert luhn_check("378282246310005")["valid"] is True  # 15-digit Amex test number
    assert luhn_check("79927398713" + "0")["valid"] is False
    assert luhn_check("4111 1111 1111 111x") == {
        "valid": False,
        "reason": "the card number may contain only digits, spaces and dashes",
    }
    assert luhn_check("4111")["valid"] is False and luhn_check("4111")["digits"] == 4
    assert "4111111111111111" not in str(luhn_check("4111111111111111"))  # the number is never echoed
    assert run_builtin_tool(LUHN_CHECK, {"card_number": "4111111111111111"})["valid"] is True
    assert "error" in run_builtin_tool(LUHN_CHECK, {})
    assert "phone" in run_builtin_tool(PRE_CONNECT_CONTEXT, {})["error"]


# ---------------------------------------------------------------- unknown routes, wrong methods


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/phone_numbers"),
        ("POST", "/v1/phone_numbers"),
        ("GET", "/v1/calls"),
        ("POST", "/v1/calls/call_1/hangup"),
        ("GET", "/v1/transfer_targets"),
        ("DELETE", "/v1/transfer_targets/tt_1"),
        ("GET", "/v1/webhooks"),
        ("GET", "/v1/webhooks/deliveries"),
    ],
)
def test_the_hosted_telephony_api_is_not_found(client: TestClient, method: str, path: str) -> None:
    body = assert_error(client.request(method, path, headers={"Authorization": KEY}), 404, "NOT_FOUND")
    assert "telephony" in body["message"]


def test_unknown_routes_and_wrong_methods(client: TestClient) -> None:
    assert "telephony" not in assert_error(client.get("/v1/nothing/here"), 404, "NOT_FOUND")["message"]
    wrong = client.post("/v1/token", headers={"Authorization": KEY})
    assert_error(wrong, 405, "METHOD_NOT_ALLOWED")
    assert wrong.headers["allow"] == "GET"
    assert_error(client.delete("/v1/builtin_tools"), 405, "METHOD_NOT_ALLOWED")
    assert_error(client.get("/v1/tokens"), 405, "METHOD_NOT_ALLOWED")


def test_the_openai_routes_keep_openais_error_shape(client: TestClient) -> None:
    response = client.get("/v1/chat/completions")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert client.get("/v1/models").json()["error"]["code"] == "invalid_api_key"


def test_the_web_page_and_twilio_routes_are_unaffected(client: TestClient) -> None:
    assert client.get("/").status_code == 200 and "html" in client.get("/").headers["content-type"]
    assert client.get("/web/nothing.js").status_code == 404
    assert_error(client.get("/v1/twilio/calls"), 401, "MISSING_AUTHORIZATION")
    assert client.get("/v1/twilio/calls", headers={"Authorization": KEY}).json() == {"calls": []}
