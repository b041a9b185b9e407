"""Stored agents over REST (§9): `POST/GET /v1/agents`, `GET/PUT/DELETE /v1/agents/{agent_id}`.

An agent belongs to the owner of the key that created it (`Principal.owner`; "anonymous" on an open
server): another key's agents are not found. Only a key with every scope manages agents; a
`KEY:sessions` or `KEY:tokens` key, and any temporary or resume token, is FORBIDDEN.
**[Voxgate]** `GET /v1/agents/{agent_id}` also takes an agent's name (the owner's newest agent of
that name), as `agent_id` does on the socket; PUT and DELETE take only the id.

The validation and merge rules are voxgate/store/agents.py's; the JSON shapes are records.py's.
Routes are plain functions, so FastAPI runs them in its thread pool and the store's calls do not
hold the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from voxgate.server.auth import ALL_SCOPES, AuthError, Principal, Scope
from voxgate.server.responses import http_error
from voxgate.server.rest_routes import KeyPrincipal
from voxgate.store.agents import AgentCreate, AgentInvalid, AgentUpdate, build_agent
from voxgate.store.base import InvalidCursor, Page, Store
from voxgate.store.records import agent_json, agent_summary, page_json

MAX_LIMIT = 200
DEFAULT_LIMIT = 20


def manager_principal(principal: KeyPrincipal) -> Principal:
    """A key that may manage records: one with every scope."""
    if principal.scopes != ALL_SCOPES:
        only = "open sessions" if Scope.SESSIONS in principal.scopes else "mint tokens"
        raise AuthError("FORBIDDEN", f"this API key may only {only}")
    return principal


Manager = Annotated[Principal, Depends(manager_principal)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def page_or_422(read: Callable[[], Page]) -> Page:
    """A store's page, or FastAPI's 422 for a cursor it did not hand out."""
    try:
        return read()
    except InvalidCursor as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "cursor"), "msg": str(exc)}]) from None


def voice_checker(request: Request) -> Callable[[str], object]:
    """The app's voice catalog: building it reads the voices' descriptions, never a model."""
    check: Callable[[str], object] = request.app.state.models.voices.resolve
    return check


def _invalid(exc: AgentInvalid) -> RequestValidationError:
    return RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors])


def agent_not_found(agent_id: str) -> Response:
    return http_error(404, "AGENT_NOT_FOUND", f"no agent {agent_id!r}", param="agent_id")


def router() -> APIRouter:
    api = APIRouter()

    @api.post("/v1/agents", status_code=201)
    def create_agent(request: Request, principal: Manager, body: AgentCreate) -> dict[str, Any]:
        try:
            agent = build_agent(principal.owner, body, now=time.time(), check_voice=voice_checker(request))
        except AgentInvalid as exc:
            raise _invalid(exc) from None
        store_of(request).create_agent(agent)
        return agent_json(agent)

    @api.get("/v1/agents")
    def list_agents(
        request: Request, principal: Manager, limit: Limit = DEFAULT_LIMIT, cursor: str = ""
    ) -> dict[str, Any]:
        store = store_of(request)
        page = page_or_422(lambda: store.list_agents(principal.owner, limit=limit, cursor=cursor))
        return page_json("agents", page, agent_summary)

    @api.get("/v1/agents/{agent_id}", response_model=None)
    def get_agent(request: Request, principal: Manager, agent_id: str) -> dict[str, Any] | Response:
        agent = store_of(request).get_agent(principal.owner, agent_id)
        return agent_json(agent) if agent is not None else agent_not_found(agent_id)

    @api.put("/v1/agents/{agent_id}", response_model=None)
    def update_agent(
        request: Request, principal: Manager, agent_id: str, body: AgentUpdate
    ) -> dict[str, Any] | Response:
        check_voice = voice_checker(request)

        def change(current: dict[str, Any]) -> dict[str, Any]:
            return build_agent(principal.owner, body, now=time.time(), check_voice=check_voice, current=current)

        try:
            agent = store_of(request).update_agent(principal.owner, agent_id, change)
        except AgentInvalid as exc:
            raise _invalid(exc) from None
        return agent_json(agent) if agent is not None else agent_not_found(agent_id)

    @api.delete("/v1/agents/{agent_id}", status_code=204, response_model=None)
    def delete_agent(request: Request, principal: Manager, agent_id: str) -> Response:
        if not store_of(request).delete_agent(principal.owner, agent_id):
            return agent_not_found(agent_id)
        return Response(status_code=204)

    return api
