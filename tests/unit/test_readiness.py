"""`/ready` for balancers and Kubernetes, on the real app: 200 only when a new call would be served
here, 503 with the reason otherwise; `/health` (liveness) keeps its shape whatever readiness says."""

from __future__ import annotations

import asyncio
import time

from fastapi.testclient import TestClient

from voxgate.app import create_app
from voxgate.backends.registry import Models
from voxgate.config import Settings
from voxgate.server import readiness as readiness_module
from voxgate.server.readiness import Readiness

HEALTH_KEYS = {"status", "version", "sessions", "connected", "tasks"}


class _Holder:
    async def close(self, code: int = 1000, reason: str = "") -> None:
        return None


def test_a_fresh_lazy_server_is_ready_and_health_keeps_its_shape() -> None:
    with TestClient(create_app(Settings(preload=False))) as http:
        ready = http.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"draining": "ok", "models": "ok", "capacity": "ok"}}
        health = http.get("/health").json()
        assert set(health) == HEALTH_KEYS and health["status"] == "ok"


def test_models_not_loaded_yet_is_503_loading_until_load_finishes() -> None:
    models = Models(Settings(preload=True))
    app = create_app(models.settings, models)
    with TestClient(app) as http:
        response = http.get("/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "not_ready" and response.json()["checks"]["models"] == "loading"
        assert http.get("/health").status_code == 200  # alive while loading: a restart would not help
        models.loaded = True  # what the end of Models.load() sets
        assert http.get("/ready").status_code == 200


def test_draining_is_503_on_ready_but_health_stays_200() -> None:
    app = create_app(Settings(preload=False))
    with TestClient(app) as http:
        app.state.readiness.start_draining()
        response = http.get("/ready")
        assert response.status_code == 503 and response.json()["checks"]["draining"] == "draining"
        assert http.get("/health").json()["status"] == "ok"


def test_a_registry_that_drains_makes_the_replica_not_ready() -> None:
    app = create_app(Settings(preload=False))
    with TestClient(app) as http:
        app.state.sessions.draining = True  # how the shutdown path of the session registry says it
        assert http.get("/ready").json()["checks"]["draining"] == "draining"


def test_a_full_replica_is_not_ready_for_the_next_call() -> None:
    app = create_app(Settings(preload=False, max_sessions=1, smart_turn=False))
    with TestClient(app) as http:
        assert http.get("/ready").status_code == 200
        conversation = app.state.sessions.open("anonymous", _Holder())
        assert conversation is not None
        response = http.get("/ready")
        assert response.status_code == 503 and response.json()["checks"]["capacity"] == "full (1/1 sessions)"


def test_a_store_that_answers_its_ping_is_ready_one_that_fails_or_hangs_is_not() -> None:
    class Store:
        def __init__(self) -> None:
            self.mode = "ok"

        def ping(self) -> bool:
            if self.mode == "down":
                raise ConnectionError("connection refused")
            if self.mode == "hang":
                time.sleep(readiness_module.CHECK_TIMEOUT_S + 0.5)
            return True

    store = Store()
    check = readiness_module.store_check(store)
    assert check is not None
    readiness = Readiness()
    readiness.add_check("store", check)
    assert asyncio.run(readiness.evaluate()) == (True, {"draining": "ok", "store": "ok"})
    store.mode = "down"
    ok, checks = asyncio.run(readiness.evaluate())
    assert not ok and checks["store"] == "failed: ConnectionError"
    store.mode = "hang"

    async def timed() -> tuple[bool, dict[str, str], float]:
        started = time.monotonic()
        ok, checks = await readiness.evaluate()
        return ok, checks, time.monotonic() - started

    ok, checks, took = asyncio.run(timed())
    assert not ok and checks["store"].startswith("no answer in")
    assert took < readiness_module.CHECK_TIMEOUT_S + 0.4  # the probe answers in time, the ping hangs on


def test_the_sqlite_store_has_no_ping_and_adds_no_check() -> None:
    app = create_app(Settings(preload=False, store_path=":memory:"))
    assert readiness_module.store_check(app.state.store) is None


def test_an_async_check_and_a_reason_string() -> None:
    readiness = Readiness()

    async def warming() -> str | None:
        await asyncio.sleep(0)
        return "warming up"

    readiness.add_check("cache", warming)
    assert asyncio.run(readiness.evaluate()) == (False, {"draining": "ok", "cache": "warming up"})
