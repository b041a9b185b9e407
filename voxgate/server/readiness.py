"""`GET /ready`: whether this replica should be given new calls, for load balancers and Kubernetes.

Liveness and readiness are different questions. `/health` (liveness) answers 200 as long as the
process serves HTTP at all: a probe that fails it means "restart me". `/ready` answers 200 only when
a new session would be served well here, and 503 otherwise, so a balancer sends new calls elsewhere
while live calls carry on:

- `models`: the models were loaded at start-up (`preload`), or are loaded on first use (`preload` off);
- `draining`: the replica is not shutting down (`Readiness.start_draining`, or a registry's `draining`);
- `capacity`: fewer sessions are attached than `max_sessions` (a full replica refuses new ones);
- any check added with `Readiness.add_check` (the shared store's reachability, for one).

Each check answers None when fine or a short reason; one that raises or takes longer than
CHECK_TIMEOUT_S fails with its reason. The body lists every check, so an operator reading a 503 sees why.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

log = logging.getLogger("voxgate.readiness")

#: What one check may take: a probe that hangs on an unreachable store must still answer in time
#: (Kubernetes' default probe timeout is 1 s; balancers' are a few seconds).
CHECK_TIMEOUT_S = 0.8

Check = Callable[[], "str | Awaitable[str | None] | None"]


class Readiness:
    """The checks behind `/ready`, and the draining flag a shutdown sets first."""

    def __init__(self, draining: Callable[[], bool] | None = None) -> None:
        """`draining`: another place that knows the replica is going (the session registry's drain)."""
        self.draining = False
        self._draining_source = draining
        self._checks: dict[str, Check] = {}

    def start_draining(self) -> None:
        """From now on `/ready` is 503 (`draining`): balancers stop sending new calls before the drain."""
        self.draining = True

    def add_check(self, name: str, check: Check) -> None:
        """`check()` (sync or async) returns None when fine, else why not; a name given again replaces it."""
        self._checks[name] = check

    async def evaluate(self) -> tuple[bool, dict[str, str]]:
        """(ready, every check's "ok" or reason)."""
        draining = self.draining or (self._draining_source is not None and self._draining_source())
        results: dict[str, str] = {"draining": "draining" if draining else "ok"}
        for name, check in self._checks.items():
            results[name] = await _run(name, check)
        return all(v == "ok" for v in results.values()), results


async def _run(name: str, check: Check) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            outcome = check()
            if inspect.isawaitable(outcome):
                outcome = await outcome
    except TimeoutError:
        return f"no answer in {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:  # a broken check says so; it never turns the probe into a 500
        log.warning("readiness check %s failed: %s", name, exc)
        return f"failed: {type(exc).__name__}"
    return "ok" if outcome is None else str(outcome)


def models_check(models: Any) -> Check:
    """Ready once `Models.load` finished, or at once when models load on first use (`preload` off)."""

    def check() -> str | None:
        if not models.settings.preload or getattr(models, "loaded", False):
            return None
        return "loading"

    return check


def capacity_check(sessions: Any) -> Check:
    """A replica holding `max_sessions` attached sessions refuses the next one: not ready for it."""

    def check() -> str | None:
        attached, cap = sessions.attached_count, sessions.max_sessions
        return None if attached < cap else f"full ({attached}/{cap} sessions)"

    return check


def store_check(store: Any) -> Check | None:
    """A store with `ping()` (a shared one, such as Redis) must answer it; the SQLite file has none."""
    ping = getattr(store, "ping", None)
    if not callable(ping):
        return None

    async def check() -> str | None:
        # A blocking client's ping runs in a thread: a store that hangs must not stall the event loop.
        outcome = await ping() if inspect.iscoroutinefunction(ping) else await asyncio.to_thread(ping)
        return None if outcome is None or outcome is True else "unreachable"

    return check


def install(app: FastAPI, models: Any, sessions: Any, store: Any) -> Readiness:
    """`/ready` on `app` with the standard checks; the Readiness is returned (kept on `app.state.readiness`)
    so the shutdown path can `start_draining()` and other parts can `add_check`."""
    readiness = Readiness(draining=lambda: bool(getattr(sessions, "draining", False)))
    readiness.add_check("models", models_check(models))
    readiness.add_check("capacity", capacity_check(sessions))
    if (check := store_check(store)) is not None:
        readiness.add_check("store", check)
    app.state.readiness = readiness
    app.include_router(router(readiness))
    return readiness


def router(readiness: Readiness) -> APIRouter:
    routes = APIRouter()

    @routes.get("/ready", responses={503: {"description": "not ready: the body's checks say why"}})
    async def ready() -> JSONResponse:
        ok, checks = await readiness.evaluate()
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503
        )

    return routes
