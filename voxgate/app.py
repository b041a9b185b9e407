"""The HTTP surface: WebSocket sessions, temporary tokens, the voice catalog, health."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import FastAPI, Header, Query, Request, WebSocket
from fastapi.responses import JSONResponse

from voxgate import __version__
from voxgate.backends.registry import Models
from voxgate.config import Settings
from voxgate.integrations.twilio import stream, webhook
from voxgate.protocol.events import ErrorCode, SessionError, to_wire
from voxgate.server.auth import Authenticator, AuthError, Principal, Scope, bearer
from voxgate.server.connection import Connection
from voxgate.server.openai_routes import router as openai_router
from voxgate.server.responses import http_error
from voxgate.server.sessions import SessionRegistry
from voxgate.server.web import router as web_router

POLICY_VIOLATION = 1008


def create_app(
    settings: Settings | None = None, models: Models | None = None, sessions: SessionRegistry | None = None
) -> FastAPI:
    """`models`, `sessions`: built elsewhere (preloaded by `voxgate serve`, or fakes in tests)."""
    settings = settings or Settings()
    models = models if models is not None else Models(settings)
    sessions = sessions if sessions is not None else SessionRegistry(models)  # (an empty registry is falsy)
    auth = Authenticator([k.get_secret_value() for k in settings.api_keys], max_token_ttl_s=settings.max_token_ttl_s)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        reaper = asyncio.create_task(sessions.reap_forever())
        yield
        reaper.cancel()

    app = FastAPI(title="Voxgate", version=__version__, lifespan=lifespan)
    app.state.models = models
    app.state.sessions = sessions
    app.state.auth = auth

    @app.get("/health")
    async def health() -> dict[str, object]:
        return {
            "status": "ok",
            "version": __version__,
            "sessions": len(sessions),
            "connected": sessions.attached_count,
            "tasks": len(asyncio.all_tasks()),  # lets tests and operators see leaks
        }

    @app.get("/v1/voices")
    async def voices() -> dict[str, object]:
        return {"default": settings.default_voice, "voices": models.voices.catalog_json()}

    @app.get("/v1/token")
    async def token(
        request: Request,
        expires_in_seconds: Annotated[int | None, Query()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        try:
            principal = _principal_from_key(auth, authorization)
        except AuthError as exc:
            return http_error(401 if exc.code == "UNAUTHORIZED" else 403, exc.code, exc.message)
        ttl = 60 if expires_in_seconds is None else expires_in_seconds
        if not 1 <= ttl <= settings.max_token_ttl_s:
            return http_error(400, "invalid_value", f"expires_in_seconds must be 1..{settings.max_token_ttl_s}")
        try:
            minted = auth.mint_token(principal, ttl)
        except AuthError as exc:
            return http_error(403, exc.code, exc.message)
        return JSONResponse({"token": minted, "expires_in_seconds": ttl})

    @app.websocket("/v1/ws")
    async def websocket(ws: WebSocket, token: str | None = None) -> None:
        try:
            if token is not None:
                principal = auth.redeem_token(token)
            else:
                principal = auth.check_key(bearer(ws.headers.get("authorization")))
            if Scope.SESSIONS not in principal.scopes:
                raise AuthError("FORBIDDEN", "this credential may not open sessions")
        except AuthError as exc:
            await ws.accept()
            event = SessionError(code=ErrorCode(exc.code), message=exc.message)
            await ws.send_text(json.dumps(to_wire(event)))
            await ws.close(code=POLICY_VIOLATION, reason=exc.code)
            return
        await ws.accept()
        await Connection(ws, sessions, principal).run()

    app.include_router(webhook.router)
    app.include_router(stream.router)
    app.include_router(openai_router)
    app.include_router(web_router)
    return app


def _principal_from_key(auth: Authenticator, authorization: str | None) -> Principal:
    presented = bearer(authorization)
    if presented is not None and presented.startswith("tok_"):
        raise AuthError("FORBIDDEN", "a temporary token cannot mint tokens; use an API key")
    return auth.check_key(presented)
