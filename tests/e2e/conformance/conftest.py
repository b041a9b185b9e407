"""Conformance suite fixtures.

The suite runs against the e2e `server` fixture (one real server on the embedded models, shared with
the rest of tests/e2e). While developing, VOXGATE_CONFORMANCE_HTTP=http://127.0.0.1:PORT points it at
a server already running with tests.e2e.conftest.MAIN_ENV instead, and VOXGATE_CONFORMANCE_SPEECH=DIR
keeps the synthesized speech between runs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.conformance.raw import close_all
from tests.e2e.conftest import Server


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _end_sessions_left_open() -> AsyncIterator[None]:
    yield
    await close_all()


if os.environ.get("VOXGATE_CONFORMANCE_HTTP"):

    @pytest.fixture(scope="session")
    def server() -> Iterator[Server]:
        http = os.environ["VOXGATE_CONFORMANCE_HTTP"]
        yield Server(http.replace("http", "ws", 1) + "/v1/ws", http, None, Path("/dev/null"))  # type: ignore[arg-type]


if os.environ.get("VOXGATE_CONFORMANCE_SPEECH"):

    @pytest.fixture(scope="session")
    def speech_dir() -> Path:
        keep = Path(os.environ["VOXGATE_CONFORMANCE_SPEECH"])
        keep.mkdir(parents=True, exist_ok=True)
        return keep
