"""Session records over REST (§10.1): `GET /v1/sessions`, `GET/DELETE /v1/sessions/{session_id}`, and
the signed artifact links `GET /v1/sessions/{session_id}/artifacts/{type}?expires=&signature=`.

Records are the owner's, as agents are (agent_routes.py). `GET /v1/sessions/{id}` signs a fresh link
per artifact, valid `artifact_url_ttl_s`; the link needs no `Authorization`, and a bad or expired
one is FORBIDDEN. DELETE ends the session first when it is live: through the callable the app keeps
as `app.state.end_live_session(session_id)` (it may return an awaitable; None: nothing to end), then
the record and its artifacts are gone at once.
"""

from __future__ import annotations

import inspect
import re
import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from voxgate.config import Settings
from voxgate.server.agent_routes import DEFAULT_LIMIT, Limit, Manager, page_or_422, store_of
from voxgate.server.responses import http_error
from voxgate.store import links
from voxgate.store.records import page_json, session_detail_json, session_json

_EXTENSIONS = {"application/json": ".json", "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/ogg": ".ogg"}


def now() -> float:
    """The clock of artifact links (tests move it)."""
    return time.time()


def session_not_found(session_id: str) -> Response:
    return http_error(404, "SESSION_NOT_FOUND", f"no session {session_id!r}", param="session_id")


def router(settings: Settings) -> APIRouter:
    api = APIRouter()
    ttl_s = settings.artifact_url_ttl_s

    def artifact_url(request: Request, session_id: str, kind: str) -> str:
        expires = int(now()) + ttl_s
        signature = links.sign(store_of(request).artifact_secret(), session_id, kind, expires)
        base = (settings.public_url or str(request.base_url)).rstrip("/")
        path = f"/v1/sessions/{quote(session_id, safe='')}/artifacts/{quote(kind, safe='')}"
        return f"{base}{path}?expires={expires}&signature={signature}"

    @api.get("/v1/sessions")
    def list_sessions(
        request: Request,
        principal: Manager,
        limit: Limit = DEFAULT_LIMIT,
        cursor: str = "",
        status: str | None = None,
        agent_id: str | None = None,
    ) -> dict[str, Any]:
        store = store_of(request)
        page = page_or_422(
            lambda: store.list_sessions(principal.owner, limit=limit, cursor=cursor, status=status, agent_id=agent_id)
        )
        return page_json("sessions", page, session_json)

    @api.get("/v1/sessions/{session_id}", response_model=None)
    def get_session(request: Request, principal: Manager, session_id: str) -> dict[str, Any] | Response:
        session = store_of(request).get_session(principal.owner, session_id)
        if session is None:
            return session_not_found(session_id)
        return session_detail_json(session, lambda kind: artifact_url(request, session_id, kind))

    @api.delete("/v1/sessions/{session_id}", status_code=204, response_model=None)
    async def delete_session(request: Request, principal: Manager, session_id: str) -> Response:
        store = store_of(request)
        if await run_in_threadpool(store.get_session, principal.owner, session_id) is None:
            return session_not_found(session_id)
        end_live = getattr(request.app.state, "end_live_session", None)
        if end_live is not None:
            ended = end_live(session_id)
            if inspect.isawaitable(ended):
                await ended
        await run_in_threadpool(store.delete_session, principal.owner, session_id)
        return Response(status_code=204)

    @api.get("/v1/sessions/{session_id}/artifacts/{kind}", response_model=None)
    def get_artifact(
        request: Request, session_id: str, kind: str, expires: str | None = None, signature: str | None = None
    ) -> Response:
        store = store_of(request)
        refused = links.check(store.artifact_secret(), session_id, kind, expires, signature, now())
        if refused:
            message = "this artifact link has expired: fetch the session again for a fresh one"
            if refused == "invalid":
                message = "invalid artifact link: fetch the session for a signed one"
            return http_error(403, "FORBIDDEN", message, param="signature")
        artifact = store.get_artifact(session_id, kind)
        if artifact is None:
            return http_error(404, "NOT_FOUND", f"session {session_id!r} has no {kind!r} artifact")
        filename = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{session_id}-{kind}") + _EXTENSIONS.get(artifact.content_type, "")
        headers = {"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "private, no-store"}
        return Response(artifact.data, media_type=artifact.content_type, headers=headers)

    return api
