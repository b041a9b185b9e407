"""Metrics and per-turn latency on the real server with its embedded models: spoken turns, then a scrape.

One client asks for the [Voxgate] `voxgate.turn.latency` extension and gets one event per turn, right
after the reply's first audio, with stages that agree with what it saw; another never asks and gets
none. `GET /metrics` then shows the stage histograms moved by both turns. `voxgate talk` (which asks
by default) prints the turn as a waterfall line.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import API_KEY, Server, synthesize
from tests.e2e.test_conversation import SYSTEM_PROMPT, say
from tests.e2e.wsclient import Client
from voxgate.session.turn_stages import STAGES

pytestmark = pytest.mark.slow
QUESTION = "What is the capital city of France?"


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{server.http}/metrics", headers={"Authorization": API_KEY}, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def stage_count(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], stage: str) -> float:
    return metrics.get(("voxgate_turn_stage_seconds_count", (("stage", stage),)), 0.0)


async def test_spoken_turns_move_the_histograms_and_only_the_asking_client_gets_latency(
    server: Server, speech_dir
) -> None:
    assert httpx.get(f"{server.http}/metrics", timeout=10).status_code == 401  # a keyed server: not without a key
    before = scrape(server)
    question = synthesize(speech_dir, QUESTION)

    asking = await Client.connect(server.url, API_KEY)
    ready = await asking.configure(system_prompt=SYSTEM_PROMPT, voxgate={"turn_latency": True})
    assert ready["config"]["voxgate"]["turn_latency"] is True
    await say(asking, question)
    latency = await asking.next("voxgate.turn.latency", timeout=120)
    done = await asking.next("reply.done", timeout=120)
    types = asking.types_since()
    first_audio = types.index("reply.audio")
    assert types.index("voxgate.turn.latency") == first_audio + 1  # right after the first audio
    assert types.count("voxgate.turn.latency") == 1
    data = latency.data
    reply = next(e for e in asking.events if e.type == "reply.started")
    user = next(e for e in asking.events if e.type == "transcript.user")
    assert data["reply_id"] == reply.data["reply_id"] == done.data["reply_id"]
    assert data["item_id"] == user.data["item_id"] and data["outcome"] == "answered"
    names = [s["name"] for s in data["stages"]]
    assert names[:2] == ["end_of_turn", "transcript"] and {"first_clause", "first_audio"} <= set(names), names
    assert all(0 <= s["start_ms"] <= s["end_ms"] for s in data["stages"]), data
    assert data["first_audio_ms"] == data["stages"][-1]["end_ms"] and 300 < data["first_audio_ms"] < 30_000
    # what the client saw: from the turn's close (input.speech.stopped) to the first audio, as the event says
    stopped = next(e for e in asking.events if e.type == "input.speech.stopped")
    audio_at = next(e for e in asking.events if e.type == "reply.audio")
    seen_ms = (audio_at.at - stopped.at) * 1000
    closed_ms = data["stages"][0]["end_ms"]
    assert abs((data["first_audio_ms"] - closed_ms) - seen_ms) < 250, (data, seen_ms)
    await asking.close()

    quiet = await Client.connect(server.url, API_KEY)
    ready = await quiet.configure(system_prompt=SYSTEM_PROMPT)
    assert "turn_latency" not in ready["config"].get("voxgate", {})
    await say(quiet, question)
    await quiet.next("reply.done", timeout=120)
    assert "voxgate.turn.latency" not in quiet.types_since()  # a hosted-API client gets no new events
    await quiet.close()

    after = scrape(server)
    for stage in ("end_of_turn", "transcript", "first_clause", "first_audio"):
        assert stage_count(after, stage) - stage_count(before, stage) >= 2, stage
    staged = {dict(labels)["stage"] for metric, labels in after if metric.startswith("voxgate_turn_stage_seconds")}
    assert staged <= set(STAGES) and {"end_of_turn", "first_audio"} <= staged, staged
    answered = ("voxgate_turns_total", (("outcome", "answered"),))
    assert after[answered] - before.get(answered, 0.0) >= 2
    assert after[("voxgate_sessions_total", ())] - before.get(("voxgate_sessions_total", ()), 0.0) >= 2
    first_audio_sum = ("voxgate_turn_stage_seconds_sum", (("stage", "first_audio"),))
    assert after[first_audio_sum] > before.get(first_audio_sum, 0.0)
    assert any(metric == "voxgate_llm_queue_depth" for metric, _ in after)  # the embedded LLM's queue


def test_talk_prints_each_turn_as_a_waterfall_line(server: Server, speech_dir, tmp_path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "voxgate.talk", "--url", server.url, "--api-key", API_KEY,
         "--input", str(synthesize(speech_dir, QUESTION)), "--output", str(tmp_path / "reply.wav"),
         "--system-prompt", SYSTEM_PROMPT],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (line,) = [line for line in run.stdout.splitlines() if line.startswith("latency ")]
    assert " s |" in line and "end of turn" in line and "send" in line, line
