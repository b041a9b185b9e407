"""The browser assistant: the page at `/` (and `/demo`), and the single-use tokens it connects with.

The page never sees an API key. On an open (loopback, keyless) server it gets tokens as the
anonymous user; on a server with keys, only when the operator names the key its tokens are minted
under (`VOXGATE_WEB_TOKEN_KEY`). That makes the page — and anyone who can reach it — able to open
sessions under that key, like any public demo; leave it unset to keep the page off.
"""

from __future__ import annotations

import json
import logging
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from voxgate.agents import AgentError, WebhookTools, list_agents, load_agent
from voxgate.server.auth import Authenticator, AuthError, credential
from voxgate.server.responses import http_error

log = logging.getLogger("voxgate.web")

router = APIRouter()
WEB_TOKEN_TTL_S = 60
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def _asset(name: str) -> bytes:
    return resources.files("voxgate.web").joinpath(name).read_bytes()


@router.get("/", include_in_schema=False)
@router.get("/demo", include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(_asset("index.html"))


@router.get("/web/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in _TYPES or "/" in name or name.startswith("."):
        return Response(status_code=404)
    try:
        return Response(_asset(name), media_type=_TYPES[suffix])
    except FileNotFoundError:
        return Response(status_code=404)


def _page_off(request: Request) -> JSONResponse | None:
    auth: Authenticator = request.app.state.auth
    if not auth.open and request.app.state.models.settings.web_token_key is None:
        return http_error(403, "FORBIDDEN", "the browser page is off: set VOXGATE_WEB_TOKEN_KEY to enable it")
    return None


@router.get("/v1/web/agents")
async def agents(request: Request) -> JSONResponse:
    """The agent files the page can start: name and the session.update each amounts to."""
    if (off := _page_off(request)) is not None:
        return off
    folder = request.app.state.models.settings.agents_dir
    out = []
    for name in list_agents(folder):
        try:
            session, _ = load_agent(name, folder).session_config(encoding="audio/pcm")
        except AgentError:
            continue  # a broken file is reported when it is used, not here
        out.append({"name": name, "session": session.model_dump(exclude_none=True)})
    return JSONResponse({"agents": out})


@router.post("/v1/web/agents/{name}/tools/{tool}")
async def run_tool(request: Request, name: str, tool: str) -> JSONResponse:
    """Run an agent file's tool through its webhook for the page (a browser cannot reach the webhook itself).

    Only for a page in a live session: `Authorization: Bearer <resume token>` (the page's
    `session.ready` carries it), and only a tool that session declared and the agent file defines.
    Without that, anyone who reached the page could POST any arguments to any agent's webhooks (the
    support agent's account lookup, say) with no session at all. The body (at most 64 KB, counted
    while read: server/body_limits.py) must be a JSON object: anything else is 400.
    """
    if (off := _page_off(request)) is not None:
        return off
    try:
        session_tools = await _live_session_tools(request)
    except AuthError as exc:
        return http_error(exc.status, exc.code, exc.message)
    try:
        agent = load_agent(name, request.app.state.models.settings.agents_dir)
    except AgentError as exc:
        return http_error(404, "NOT_FOUND", str(exc))
    if agent.tool(tool) is None or tool not in session_tools:
        return http_error(404, "NOT_FOUND", f"this session has no {name} tool named {tool[:100]!r}", param="tool")
    try:
        arguments = json.loads(await request.body())
    except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        return http_error(400, "INVALID_REQUEST", "the body must be a JSON object of the tool's arguments")
    if not isinstance(arguments, dict):
        return http_error(400, "INVALID_REQUEST", "the body must be a JSON object of the tool's arguments")
    log.debug("web tool %s.%s(%s)", name, tool, json.dumps(arguments)[:500])
    tools = WebhookTools(agent)
    try:
        result = await tools.run(tool, arguments)
    finally:
        await tools.aclose()
    return JSONResponse({"result": result})


async def _live_session_tools(request: Request) -> frozenset[str]:
    """The tool names of the live session whose resume token the request carries; AuthError otherwise."""
    auth: Authenticator = request.app.state.auth
    presented = credential(request.headers.get("authorization"))
    if not presented:
        raise AuthError("UNAUTHORIZED", "send the session's resume token: 'Authorization: Bearer <resume_token>'")
    principal = await auth.check_resume_token(presented)
    conversation = request.app.state.sessions.store.peek(principal.resume_of or "")
    if conversation is None:
        raise AuthError("UNAUTHORIZED", "the session of this token is not live")
    return frozenset(spec.name for spec in conversation.config.tools)


@router.post("/v1/web/token")
async def web_token(request: Request) -> JSONResponse:
    """A single-use session token for the page, minted under the operator's chosen key."""
    auth: Authenticator = request.app.state.auth
    key = request.app.state.models.settings.web_token_key
    if (off := _page_off(request)) is not None:
        return off
    try:
        principal = auth.check_key(key.get_secret_value() if key is not None else None)
        token = await auth.mint_token(principal, WEB_TOKEN_TTL_S)
    except AuthError as exc:
        return http_error(exc.status if exc.code == "RATE_LIMITED" else 403, exc.code, exc.message)
    return JSONResponse({"token": token, "expires_in_seconds": WEB_TOKEN_TTL_S})
