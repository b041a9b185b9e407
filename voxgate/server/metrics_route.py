"""`GET /metrics`: the app's Prometheus metrics in the text exposition format.

Who may read it: with API keys configured, a key with every scope (the same as the admin routes:
the metrics say how busy the fleet is and which errors its clients see, which is the operator's
business), unless `metrics_open` lets any scraper in, for a private network where the port is not
reachable from outside. An open server (no keys, loopback only) serves it to whoever reaches it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from voxgate.config import Settings
from voxgate.server.agent_routes import manager_principal
from voxgate.server.rest_routes import key_principal
from voxgate.telemetry import Telemetry


def router(settings: Settings) -> APIRouter:
    api = APIRouter()

    @api.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not settings.metrics_open:
            manager_principal(await key_principal(request))  # AuthError: the REST error body, 401 or 403
        telemetry: Telemetry = request.app.state.telemetry
        return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)

    return api
