"""§7.3 REST error bodies, §1 the hosted telephony routes Voxgate does not implement, §4.5 GET /v1/builtin_tools."""

from __future__ import annotations

import pytest

from tests.e2e.conformance.raw import assert_rest_error, rest
from tests.e2e.conftest import API_KEY, Server

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def test_rest_error_body_has_every_contract_key(server: Server) -> None:
    body = assert_rest_error(rest(server.http, "GET", "/v1/token", authorization="Bearer nope"), 401, "UNAUTHORIZED")
    for item in body["errors"]:
        assert {"message", "param"} <= set(item), body
    body = assert_rest_error(
        rest(server.http, "GET", "/v1/token", authorization=API_KEY, params={"expires_in_seconds": 0}),
        422,
        "VALIDATION_ERROR",
    )
    assert body["errors"] and all({"message", "param"} <= set(item) for item in body["errors"]), body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/phone_numbers"),
        ("POST", "/v1/phone_numbers"),
        ("GET", "/v1/calls"),
        ("POST", "/v1/calls"),
        ("GET", "/v1/transfer_targets"),
        ("GET", "/v1/webhooks"),
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks/deliveries"),
    ],
)
async def test_hosted_telephony_routes_are_404_not_found(server: Server, method: str, path: str) -> None:
    response = rest(server.http, method, path, authorization=f"Bearer {API_KEY}", body={} if method == "POST" else None)
    assert_rest_error(response, 404, "NOT_FOUND")


async def test_wrong_method_on_a_route_is_405_method_not_allowed(server: Server) -> None:
    assert_rest_error(rest(server.http, "DELETE", "/v1/token", authorization=API_KEY), 405, "METHOD_NOT_ALLOWED")


async def test_builtin_tools_lists_the_luhn_check(server: Server) -> None:
    response = rest(server.http, "GET", "/v1/builtin_tools", authorization=f"Bearer {API_KEY}")
    assert response.status_code == 200, response.text
    body = response.json()
    tools = body["builtin_tools"]
    assert isinstance(tools, list), body
    for tool in tools:
        assert {"name", "description", "parameters", "execution_mode"} <= set(tool), tool
        assert tool["execution_mode"] in ("interactive", "hold"), tool
        assert isinstance(tool["parameters"], dict), tool
    assert "aai_credit_card_luhn_check" in {t["name"] for t in tools}, tools


async def test_builtin_tools_accepts_the_raw_key(server: Server) -> None:
    assert rest(server.http, "GET", "/v1/builtin_tools", authorization=API_KEY).status_code == 200


async def test_builtin_tools_without_a_key_is_401(server: Server) -> None:
    assert_rest_error(rest(server.http, "GET", "/v1/builtin_tools"), 401, "MISSING_AUTHORIZATION")
