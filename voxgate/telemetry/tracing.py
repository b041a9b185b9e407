"""OpenTelemetry traces of spoken turns: one span per turn, a child span per stage, sent over OTLP/HTTP.

Off unless `otel_endpoint` is set. A turn's span is written once the turn is timed (its first audio,
or its reply's end), with the start and end times the stages had (session/turn_stages.py), so the
spans cost nothing while the turn is in flight and never hold a reference to a session. Each app has
its own TracerProvider (the global one is left alone: an embedding program may have its own), and
its BatchSpanProcessor sends from a thread of its own; `shutdown` at the app's end sends what is left.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Status, StatusCode

from voxgate import __version__
from voxgate.session.turn_stages import TimedTurn

TRACES_PATH = "/v1/traces"


def traces_url(endpoint: str) -> str:
    """`http://collector:4318` or the full `.../v1/traces`: the URL spans are POSTed to."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


class TurnTracer:
    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("voxgate", __version__)

    @classmethod
    def exporting_to(cls, exporter: SpanExporter, *, service_name: str = "voxgate") -> TurnTracer:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider)

    @classmethod
    def otlp(cls, endpoint: str, *, service_name: str = "voxgate", headers: dict[str, str] | None = None) -> TurnTracer:
        """Spans sent as OTLP protobuf over HTTP to `endpoint`. Headers unset: the exporter reads
        OTEL_EXPORTER_OTLP_HEADERS (a collector's key, say), as every OpenTelemetry SDK does."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return cls.exporting_to(
            OTLPSpanExporter(endpoint=traces_url(endpoint), headers=headers), service_name=service_name
        )

    def record(self, turn: TimedTurn) -> None:
        start = _ns(turn.speech_end_unix)
        end = start + _ns(max((s.end_s for s in turn.stages), default=0.0))
        attributes: dict[str, str | bool | float] = {
            "voxgate.session_id": turn.session_id,
            "voxgate.item_id": turn.item_id,
            "voxgate.outcome": turn.outcome,
            "voxgate.prefetched": turn.prefetched,
        }
        if turn.reply_id is not None:
            attributes["voxgate.reply_id"] = turn.reply_id
        if turn.first_audio_s is not None:
            attributes["voxgate.first_audio_s"] = round(turn.first_audio_s, 4)
        span = self._tracer.start_span("voxgate.turn", start_time=start, attributes=attributes)
        parent = trace.set_span_in_context(span)
        for stage in turn.stages:
            child = self._tracer.start_span(
                f"voxgate.turn.{stage.name}", context=parent, start_time=start + _ns(stage.start_s)
            )
            child.end(end_time=start + _ns(stage.end_s))
        if turn.outcome == "failed":
            span.set_status(Status(StatusCode.ERROR, "a model failed before the first audio"))
        span.end(end_time=end)

    def shutdown(self) -> None:
        self.provider.shutdown()


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)
