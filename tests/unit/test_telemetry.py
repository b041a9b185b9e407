"""Metrics and traces (voxgate/telemetry): a scripted conversation reporting to a real Telemetry, the
exposition it scrapes to, `GET /metrics` and who may read it, and the OpenTelemetry spans: in the
SDK's in-memory exporter, and over OTLP/HTTP to a receiver on 127.0.0.1 that decodes what arrives."""

from __future__ import annotations

import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from tests.fakes import SCRIPT_POLICY, ScriptedLLM, open_session
from tests.virtual_time import virtual
from voxgate.app import create_app
from voxgate.config import Settings
from voxgate.session.turn_stages import STAGES, Stage, TimedTurn
from voxgate.telemetry import Telemetry
from voxgate.telemetry.tracing import TurnTracer, traces_url

KEY, SESSIONS_KEY = "metrics-full-key", "metrics-sessions-key"


def samples(telemetry: Telemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, parsed back as Prometheus reads it: (name, labels) -> value."""
    text = generate_latest(telemetry.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@virtual
async def test_a_scripted_turn_moves_the_stage_histograms_and_the_counters() -> None:
    telemetry = Telemetry()
    s = await open_session(llm=ScriptedLLM(["It is noon."], [RuntimeError("boom")]))
    s.conversation.stages.observer = telemetry
    await s.user.say("What time is it?", 1.0, then=1.5)
    await s.idle()
    got = samples(telemetry)
    for stage in STAGES:
        assert got[("voxgate_turn_stage_seconds_count", (("stage", stage),))] == 1, stage
        assert got[("voxgate_turn_stage_duration_seconds_count", (("stage", stage),))] == 1, stage
    first_audio = got[("voxgate_turn_stage_seconds_sum", (("stage", "first_audio"),))]
    assert 0.5 < first_audio < 1.2  # the adaptive silence and nothing much else: the LLM ran at the pause
    assert got[("voxgate_turns_total", (("outcome", "answered"),))] == 1
    assert got[("voxgate_replies_total", (("status", "completed"), ("trigger", "user_turn")))] == 1
    await s.user.say("And now?", 0.8, then=2.0)  # the LLM fails: reply.error, an apology
    await s.idle()
    got = samples(telemetry)
    assert got[("voxgate_turns_total", (("outcome", "failed"),))] == 1
    assert got[("voxgate_errors_total", (("code", "llm_error"), ("event", "reply.error")))] == 1
    assert got[("voxgate_backend_failures_total", (("backend", "llm"), ("code", "llm_error")))] == 1
    assert got[("voxgate_replies_total", (("status", "completed"), ("trigger", "apology")))] == 1


@virtual
async def test_barge_ins_and_false_interruptions_are_counted() -> None:
    telemetry = Telemetry()
    plans = ["The basic plan costs ten dollars a month. ", "The premium plan costs twenty."]
    s = await open_session(llm=ScriptedLLM(plans), policy=replace(SCRIPT_POLICY, backchannel_words=False))
    s.conversation.stages.observer = telemetry
    await s.user.say("Tell me about the plans.", 1.0)
    await s.until(lambda: s.transport.audio_s() > 0)
    await s.user.pause(1.5)
    await s.user.say("Mm-hmm.", 0.4, then=1.0)
    await s.idle()
    got = samples(telemetry)
    assert got[("voxgate_barge_ins_total", ())] == 1
    assert got[("voxgate_reply_resumes_total", (("kind", "cut"),))] == 1


class _Sessions:
    attached_count = 2

    def __len__(self) -> int:
        return 3


class _Llm:
    def __init__(self, name: str, waiting: int, requests: int) -> None:
        self.name, self.waiting, self.busy, self.requests = name, waiting, waiting > 0, requests


class _Fallback:
    name = "remote (fallback local)"

    def __init__(self) -> None:
        self.primary = object()
        self.fallback = _Llm("local", 2, 7)
        self.fallbacks = 4


class _Models:
    def loaded_llms(self) -> list[Any]:
        return [_Fallback()]


class _Socket:
    def __init__(self, outbox: int, frames: int, backlog: float, closed: bool = False) -> None:
        self.outbox_bytes, self.outbox_frames, self.audio_backlog_s, self.closed = outbox, frames, backlog, closed


def test_levels_are_read_at_each_scrape_from_sessions_sockets_and_llms() -> None:
    telemetry = Telemetry(sessions=_Sessions(), models=_Models())
    sockets = [_Socket(1000, 3, 0.5), _Socket(250, 1, 2.0), _Socket(9999, 9, 9.0, closed=True)]
    for socket in sockets:
        telemetry.socket_opened(socket)
    got = samples(telemetry)
    assert got[("voxgate_sessions_live", (("state", "connected"),))] == 2
    assert got[("voxgate_sessions_live", (("state", "detached"),))] == 1
    assert got[("voxgate_sockets_open", ())] == 2  # the closed one is not counted
    assert got[("voxgate_socket_outbox_bytes", ())] == 1250 and got[("voxgate_socket_outbox_max_bytes", ())] == 1000
    assert got[("voxgate_socket_outbox_frames", ())] == 4
    assert got[("voxgate_audio_backlog_seconds", ())] == 2.5 and got[("voxgate_audio_backlog_max_seconds", ())] == 2.0
    assert got[("voxgate_llm_queue_depth", (("model", "local"),))] == 2
    assert got[("voxgate_llm_busy", (("model", "local"),))] == 1
    assert got[("voxgate_llm_requests_total", (("model", "local"),))] == 7
    assert got[("voxgate_llm_fallbacks_total", (("model", "remote (fallback local)"),))] == 4
    sockets[0].outbox_bytes = 0
    assert samples(telemetry)[("voxgate_socket_outbox_bytes", ())] == 250  # a level, read fresh


def test_two_apps_in_one_process_count_apart() -> None:
    a, b = Telemetry(), Telemetry()
    a.barge_in()
    assert samples(a)[("voxgate_barge_ins_total", ())] == 1 and samples(b)[("voxgate_barge_ins_total", ())] == 0


def _client(**overrides: Any) -> TestClient:
    keys = [SecretStr(KEY), SecretStr(f"{SESSIONS_KEY}:sessions")]
    return TestClient(create_app(Settings(preload=False, api_keys=keys, **overrides)))  # type: ignore[arg-type]


def test_metrics_need_a_full_key_on_a_keyed_server() -> None:
    with _client() as client:
        assert client.get("/metrics").status_code == 401
        refused = client.get("/metrics", headers={"Authorization": f"Bearer {SESSIONS_KEY}"})
        assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
        with client.websocket_connect("/v1/ws", headers={"Authorization": "wrong"}) as ws:
            assert ws.receive_json()["code"] == "UNAUTHORIZED"  # counted as an error sent
        ok = client.get("/metrics", headers={"Authorization": KEY})
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain; version=")
        assert 'voxgate_errors_total{code="UNAUTHORIZED",event="session.error"} 1.0' in ok.text
        assert 'voxgate_sessions_live{state="connected"} 0.0' in ok.text
        assert "voxgate_turn_stage_seconds" in ok.text


def test_metrics_open_lets_any_scraper_in() -> None:
    with _client(metrics_open=True) as client:
        response = client.get("/metrics")
        assert response.status_code == 200 and "voxgate_sessions_total 0.0" in response.text


def test_an_open_server_serves_metrics_without_a_key() -> None:
    with TestClient(create_app(Settings(preload=False))) as client:
        assert client.get("/metrics").status_code == 200


def _turn(outcome: str = "answered") -> TimedTurn:
    stages = (
        Stage("end_of_turn", 0.0, 0.6),
        Stage("transcript", 0.6, 0.65),
        Stage("llm_first_token", 0.3, 0.62),
        Stage("first_clause", 0.65, 0.7),
        Stage("tts_first_audio", 0.7, 0.8),
        Stage("first_audio", 0.8, 0.81),
    )
    return TimedTurn("sess_x", "msg_x", "resp_x", outcome, stages, 1_800_000_000.0, True)  # type: ignore[arg-type]


def test_a_turn_is_one_span_with_a_child_per_stage_at_the_stages_times() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = Telemetry(tracer=TurnTracer(provider))
    telemetry.turn_timed(_turn())
    telemetry.turn_timed(_turn("failed"))
    spans = exporter.get_finished_spans()
    turns = [s for s in spans if s.name == "voxgate.turn"]
    assert len(turns) == 2 and len(spans) == 2 * (1 + len(STAGES))
    root = turns[0]
    children = [s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id]
    assert [c.name for c in children] == [f"voxgate.turn.{name}" for name in STAGES]
    assert all(c.context.trace_id == root.context.trace_id for c in children)
    start = 1_800_000_000 * 10**9
    assert root.start_time == start and root.end_time == start + 810_000_000
    llm = next(c for c in children if c.name == "voxgate.turn.llm_first_token")
    assert (llm.start_time, llm.end_time) == (start + 300_000_000, start + 620_000_000)
    assert root.attributes is not None and root.attributes["voxgate.session_id"] == "sess_x"
    assert root.attributes["voxgate.prefetched"] is True and root.attributes["voxgate.first_audio_s"] == 0.81
    assert root.status.is_ok and not turns[1].status.is_ok


class _Receiver:
    """An OTLP/HTTP collector stand-in on 127.0.0.1: keeps each POST's path, content type and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.arrived.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_traces_go_to_the_configured_otlp_endpoint() -> None:
    receiver = _Receiver()
    try:
        app = create_app(Settings(preload=False, otel_endpoint=receiver.url, otel_service_name="voxgate-test"))
        with TestClient(app):
            app.state.telemetry.turn_timed(_turn())
        # the app's end flushed the batch: the request is there without waiting for the exporter's timer
        assert receiver.arrived.wait(10)
    finally:
        receiver.close()
    ((path, content_type, body),) = receiver.requests
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    names = sorted(span.name for scope in resource_spans.scope_spans for span in scope.spans)
    assert service == "voxgate-test"
    assert names == sorted(["voxgate.turn", *(f"voxgate.turn.{name}" for name in STAGES)])


def test_no_endpoint_no_tracer() -> None:
    app = create_app(Settings(preload=False))
    assert app.state.telemetry.tracer is None


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://otel.example.com/v1/traces", "https://otel.example.com/v1/traces"),
    ],
)
def test_the_traces_url_takes_a_base_or_the_full_path(endpoint: str, url: str) -> None:
    assert traces_url(endpoint) == url
