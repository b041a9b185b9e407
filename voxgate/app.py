"""The HTTP surface: WebSocket sessions, the REST routes (tokens, built-in tools, stored agents, session
records), the voice catalog, health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse

from voxgate import __version__, allocator
from voxgate.aio import dump_tasks
from voxgate.backends.registry import Models
from voxgate.config import Settings
from voxgate.integrations.twilio import stream, webhook
from voxgate.protocol.events import ErrorCode, SessionError, to_wire
from voxgate.server import agent_routes, readiness, rest_routes, session_routes, shared_state
from voxgate.server.auth import Authenticator, AuthError
from voxgate.server.body_limits import BodyLimitMiddleware, default_limits
from voxgate.server.connection import Connection
from voxgate.server.metrics_route import router as metrics_router
from voxgate.server.openai_routes import router as openai_router
from voxgate.server.origin_guard import OriginGuardMiddleware, policy_for
from voxgate.server.rest_errors import install_error_handlers
from voxgate.server.sessions import SessionRegistry
from voxgate.server.web import router as web_router
from voxgate.store import Store, open_store
from voxgate.telemetry import telemetry_for

POLICY_VIOLATION = 1008


def create_app(
    settings: Settings | None = None,
    models: Models | None = None,
    sessions: SessionRegistry | None = None,
    store: Store | None = None,
) -> FastAPI:
    """`models`, `sessions`, `store`: built elsewhere (preloaded by `voxgate serve`, or fakes in tests).

    Without `store`, the configured one (voxgate.store.open_store), closed when the app stops.
    """
    settings = settings or Settings()
    own_store = store is None
    store = store if store is not None else open_store(settings)
    models = models if models is not None else Models(settings)
    sessions = sessions if sessions is not None else SessionRegistry(models)  # (an empty registry is falsy)
    telemetry = telemetry_for(settings, sessions=sessions, models=models)  # GET /metrics, traces
    shared = shared_state.connect(settings)  # tokens and sessions fleet-wide in Redis; None when alone
    if shared is not None:
        sessions.fleet = shared.fleet
    auth = Authenticator(
        [k.get_secret_value() for k in settings.api_keys],
        max_token_ttl_s=settings.max_token_ttl_s,
        max_live_tokens=settings.max_live_tokens,
        ledger=shared.ledger if shared is not None else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        reaper = asyncio.create_task(sessions.reap_forever())
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows, not off the main thread
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
        retention = asyncio.create_task(_purge_forever(store))
        trimmer = asyncio.create_task(_trim_forever(sessions))
        yield
        reaper.cancel()
        retention.cancel()
        trimmer.cancel()
        try:  # sessions still live end now: recorded `server_shutdown`, their webhooks sent, sockets 1012
            await sessions.shutdown()
        except Exception:
            logging.getLogger("voxgate.sessions").exception("ending the live sessions at shutdown failed")
        await sessions.webhooks.close()
        await sessions.records.close()
        if shared is not None:
            await shared.close()
        telemetry.close()
        if own_store:
            store.close()

    app = FastAPI(title="Voxgate", version=__version__, lifespan=lifespan)
    app.state.models = models
    app.state.sessions = sessions
    app.state.auth = auth
    app.state.telemetry = telemetry  # the socket loops of this app report to it (server/transport.py)
    app.state.store = store
    # DELETE /v1/sessions/{id} calls it (sync or async) to end a live session before its record goes.
    app.state.end_live_session = sessions.end_by_id
    sessions.records.store = store
    # GET /ready (503 while loading, draining, full or with the shared store unreachable); /health is liveness.
    readiness.install(app, models, sessions, store)

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

    @app.websocket("/v1/ws")
    async def websocket(ws: WebSocket, token: str | None = None) -> None:
        if sessions.draining:  # 503: the client retries, the balancer picks another replica (server/drain.py)
            await _refuse_draining(ws)
            return
        try:
            principal = await auth.authenticate_ws(ws.headers.get("authorization"), token)
        except AuthError as exc:
            # Accepted first so the client reads why (§2); a refused handshake only shows a browser 1006.
            await ws.accept()
            event = SessionError(code=ErrorCode(exc.code), message=exc.message)
            telemetry.error(event.type, event.code)
            await ws.send_text(json.dumps(to_wire(event)))
            await ws.close(code=POLICY_VIOLATION, reason=exc.code)
            return
        await ws.accept()
        await Connection(ws, sessions, principal, auth).run()

    install_error_handlers(app)
    # Outermost last: a foreign page or Host is refused before a body is read, and no body is read past its limit.
    app.add_middleware(BodyLimitMiddleware, limits=default_limits(settings.max_body_bytes))
    origins = policy_for(
        origins=settings.allowed_origins,
        hosts=settings.allowed_hosts,
        listen_host=settings.host,
        public_url=settings.public_url,
    )
    app.add_middleware(OriginGuardMiddleware, policy=origins, enabled=auth.open)
    app.include_router(rest_routes.router(settings))
    app.include_router(agent_routes.router())
    app.include_router(session_routes.router(settings))
    app.include_router(webhook.router)
    app.include_router(stream.router)
    app.include_router(openai_router)
    app.include_router(web_router)
    app.include_router(metrics_router(settings))
    return app


async def _refuse_draining(ws: WebSocket) -> None:
    """The handshake refused with 503 (the denial-response extension), else closed before it is accepted."""
    try:
        await ws.send_denial_response(PlainTextResponse("draining: resume on another replica", status_code=503))
    except RuntimeError:  # a server without the extension: the client sees 403, and retries all the same
        await ws.close(code=1013)


async def _trim_forever(sessions: SessionRegistry, every_s: float = 30.0) -> None:
    """After sessions went away, what their buffers freed goes back to the system (voxgate/allocator.py)."""
    held = len(sessions)
    while True:
        await asyncio.sleep(every_s)
        now = len(sessions)
        if now < held:
            await asyncio.to_thread(allocator.trim)
        held = now


async def _purge_forever(store: Store) -> None:
    """Session records past their retention go at start-up and then every hour."""
    while True:
        try:
            await asyncio.to_thread(store.purge_expired, time.time())
        except Exception:
            logging.getLogger("voxgate.store").exception("purging old session records failed")
        await asyncio.sleep(3600)
