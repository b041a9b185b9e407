"""The hosted API's small REST routes: temporary tokens (§8) and the built-in tool catalog (§4.5).

Errors are raised (AuthError, FastAPI's validation) and answered by rest_errors.py in the §7.3 body.
The key is checked in a dependency, which FastAPI resolves before it validates the query, so a caller
without a key learns nothing about the parameters.

No `from __future__ import annotations` here: the routes' annotations name values of `router`'s
scope (the configured token lifetime), which FastAPI can only read from live annotations.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field

from voxgate.config import Settings
from voxgate.server.auth import MAX_SESSION_S, Authenticator, AuthError, Principal, Scope
from voxgate.session.builtin_tools import BUILTIN_TOOLS

#: The hosted API's bounds (§8); `VOXGATE_MAX_TOKEN_TTL_S` may only lower the first.
MAX_TOKEN_TTL_S = 600
DEFAULT_TOKEN_TTL_S = 60
MIN_SESSION_S = 60


async def key_principal(request: Request) -> Principal:
    """The principal of an API key (raw or Bearer); temporary and resume tokens are FORBIDDEN."""
    auth: Authenticator = request.app.state.auth
    return await auth.authenticate_rest(request.headers.get("authorization"))


KeyPrincipal = Annotated[Principal, Depends(key_principal)]


def _expires_at(ttl_s: int) -> str:
    """ISO 8601 UTC, truncated to the second: never later than the token really expires."""
    return (datetime.now(UTC) + timedelta(seconds=ttl_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def router(settings: Settings) -> APIRouter:
    ttl_max = max(1, min(MAX_TOKEN_TTL_S, settings.max_token_ttl_s))
    ttl_default = min(DEFAULT_TOKEN_TTL_S, ttl_max)
    api = APIRouter()

    class TokenRequest(BaseModel):
        """POST /v1/tokens (schema); `max_session_duration_seconds` is accepted as GET's is [inferred]."""

        expires_in_seconds: int = Field(default=ttl_default, ge=1, le=ttl_max)
        max_session_duration_seconds: int | None = Field(default=None, ge=MIN_SESSION_S, le=MAX_SESSION_S)

    @api.get("/v1/token")
    async def get_token(
        request: Request,
        principal: KeyPrincipal,
        # Hosted requires it (422 when missing); an official example token server omits it, so 60.
        expires_in_seconds: Annotated[int, Query(ge=1, le=ttl_max)] = ttl_default,
        max_session_duration_seconds: Annotated[int, Query(ge=MIN_SESSION_S, le=MAX_SESSION_S)] = MAX_SESSION_S,
    ) -> dict[str, object]:
        auth: Authenticator = request.app.state.auth
        token = await auth.mint_token(principal, expires_in_seconds, max_session_s=max_session_duration_seconds)
        return {"token": token, "expires_in_seconds": expires_in_seconds}

    @api.post("/v1/tokens")
    async def post_tokens(
        request: Request, principal: KeyPrincipal, body: Annotated[TokenRequest | None, Body()] = None
    ) -> dict[str, object]:
        body = body or TokenRequest()
        auth: Authenticator = request.app.state.auth
        max_session_s = body.max_session_duration_seconds or MAX_SESSION_S
        token = await auth.mint_token(principal, body.expires_in_seconds, max_session_s=max_session_s)
        return {"token": token, "expires_at": _expires_at(body.expires_in_seconds)}

    @api.get("/v1/builtin_tools")
    async def builtin_tools(principal: KeyPrincipal) -> dict[str, object]:
        if Scope.SESSIONS not in principal.scopes:
            raise AuthError("FORBIDDEN", "this API key may only mint tokens")
        return {"builtin_tools": [tool.to_json() for tool in BUILTIN_TOOLS]}

    return api
