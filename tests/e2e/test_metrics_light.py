"""Metrics and per-turn latency on a real server process with every model remote (no model is loaded):
the OpenAI-compatible stub of `voxgate bench load` answers recognition, the LLM and speech at once, and
a real recording is the user's turn. Quick enough for the fast suite; the same on the embedded models is
tests/e2e/test_observability.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import LIBRIVOX, Server, _free_port, librivox, start_server, stop_server
from tests.e2e.wsclient import Client, read_wav, silence, to_rate
from voxgate.session.turn_stages import STAGES

KEY = "metrics-light-key"
pytestmark = [
    pytest.mark.slow,  # a real server process (on stub backends): not for `--fast`
    pytest.mark.skipif(not LIBRIVOX.exists(), reason="pocketsphinx-testdata is not installed"),
    pytest.mark.asyncio(loop_scope="session"),
]


@pytest.fixture(scope="module")
def remote_server() -> Iterator[Server]:
    port = _free_port()
    stub = subprocess.Popen(
        [sys.executable, "-m", "voxgate.bench.openai_stub", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    env = {
        "VOXGATE_PRELOAD": "false",
        "VOXGATE_SMART_TURN": "false",
        "VOXGATE_ECHO_GUARD": "false",
        "VOXGATE_API_KEYS": KEY,
        "VOXGATE_STORE_PATH": ":memory:",
        "VOXGATE_STT_BACKEND": "openai",
        "VOXGATE_STT_BASE_URL": url,
        "VOXGATE_LLM_BACKEND": "openai",
        "VOXGATE_LLM_BASE_URL": url,
        "VOXGATE_LLM_MAX_RETRIES": "0",
        "VOXGATE_TTS_BACKEND": "openai",
        "VOXGATE_TTS_BASE_URL": url,
    }
    try:
        server = start_server("metrics-light", env, timeout=120)
        yield server
        stop_server(server)
    finally:
        stub.terminate()
        stub.wait(10)


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{server.http}/metrics", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def spoken_turn(server: Server, **session: object) -> Client:
    client = await Client.connect(server.url, KEY)
    await client.configure(system_prompt="Be brief.", **session)
    samples, rate = read_wav(librivox(0))
    await client.send_audio(to_rate(samples, rate, 24_000), speed=2.0)
    await client.send_audio(silence(2.0), speed=2.0)
    await client.next("reply.done", timeout=30)
    return client


async def test_a_real_turn_moves_the_histograms_and_only_the_asking_client_gets_latency(remote_server: Server) -> None:
    assert httpx.get(f"{remote_server.http}/metrics", timeout=10).status_code == 401
    before = scrape(remote_server)
    asking, quiet = await asyncio.gather(
        spoken_turn(remote_server, voxgate={"turn_latency": True}), spoken_turn(remote_server)
    )
    types = asking.types_since()
    assert types.count("voxgate.turn.latency") == 1
    assert types.index("voxgate.turn.latency") == types.index("reply.audio") + 1
    latency = next(e.data for e in asking.events if e.type == "voxgate.turn.latency")
    assert [s["name"] for s in latency["stages"]] == list(STAGES), latency
    assert latency["outcome"] == "answered" and latency["first_audio_ms"] == latency["stages"][-1]["end_ms"]
    assert "voxgate.turn.latency" not in quiet.types_since()
    await asking.close()
    await quiet.close()
    after = scrape(remote_server)
    for stage in STAGES:
        key = ("voxgate_turn_stage_seconds_count", (("stage", stage),))
        assert after[key] - before.get(key, 0.0) == 2, stage
    sessions = ("voxgate_sessions_total", ())
    assert after[sessions] - before[sessions] == 2
    assert after[("voxgate_turns_total", (("outcome", "answered"),))] >= 2
    assert after[("voxgate_replies_total", (("status", "completed"), ("trigger", "user_turn")))] >= 2
