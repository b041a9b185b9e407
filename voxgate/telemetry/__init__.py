"""What a running server tells its operator: Prometheus metrics (`GET /metrics`) and OpenTelemetry traces.

`telemetry_for(settings, ...)` builds an app's; docs/observability.md lists what is measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from voxgate.telemetry.metrics import LiveSessions, LoadedModels, Telemetry

if TYPE_CHECKING:
    from voxgate.config import Settings


def telemetry_for(
    settings: Settings, *, sessions: LiveSessions | None = None, models: LoadedModels | None = None
) -> Telemetry:
    """An app's telemetry: metrics always; traces when `otel_endpoint` is set (OpenTelemetry is imported then)."""
    tracer = None
    if settings.otel_endpoint:
        from voxgate.telemetry.tracing import TurnTracer

        tracer = TurnTracer.otlp(settings.otel_endpoint, service_name=settings.otel_service_name)
    return Telemetry(sessions=sessions, models=models, tracer=tracer)


__all__ = ["Telemetry", "telemetry_for"]
