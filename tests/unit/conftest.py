"""Unit-test settings shared by every test here.

Starlette's TestClient sends `Host: testserver`. A keyless (open) server serves only loopback names
and the hosts it is told about (voxgate/server/origin_guard.py, against DNS rebinding), so the
in-process apps of these tests are told about that one, as Django's test runner does for its own.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def serve_the_test_clients_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXGATE_ALLOWED_HOSTS", "testserver")
