"""One server's Prometheus metrics, and the observer its sessions report to.

Each app has its own registry (tests run several apps in one process; a process-wide default registry
would mix their counts). Counts and histograms are updated as sessions report (the `TurnObserver` of
session/turn_stages.py); what is a level now (live sessions, queues) is read when scraped, from the
session registry, the sockets and the loaded LLMs, so nothing has to keep it up to date. The names,
labels and what each stage means are in docs/observability.md.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from voxgate.session.turn_stages import ResumeKind, TimedTurn

if TYPE_CHECKING:
    from voxgate.telemetry.tracing import TurnTracer

log = logging.getLogger("voxgate.telemetry")

# From 50 ms (a prefetched stage) to 10 s (a cold model on a busy machine): first audio is ~1 s here.
STAGE_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
# reply.error codes, by the backend that failed
BACKEND_OF = {"llm_error": "llm", "llm_timeout": "llm", "tts_error": "tts", "stt_timeout": "stt"}


class LiveSessions(Protocol):
    """The session registry, as far as the metrics read it (server/sessions.py)."""

    @property
    def attached_count(self) -> int: ...

    def __len__(self) -> int: ...


class LoadedModels(Protocol):
    def loaded_llms(self) -> Sequence[Any]: ...


class SocketStats(Protocol):
    """A socket loop's queues (server/transport.py)."""

    closed: bool

    @property
    def outbox_bytes(self) -> int: ...

    @property
    def outbox_frames(self) -> int: ...

    @property
    def audio_backlog_s(self) -> float: ...


class Telemetry:
    """Metrics and traces of one app; `observer` of every session a socket of this app holds."""

    def __init__(
        self,
        *,
        sessions: LiveSessions | None = None,
        models: LoadedModels | None = None,
        tracer: TurnTracer | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.tracer = tracer
        r = self.registry
        self.sessions_total = Counter("voxgate_sessions", "Sessions started (session.ready sent).", registry=r)
        self.turns = Counter(
            "voxgate_turns",
            "Spoken user turns, by outcome: answered (first audio sent), interrupted or failed before any audio, "
            "abandoned (the user spoke again before the reply began).",
            ["outcome"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "voxgate_turn_stage_seconds",
            "Seconds from the end of the user's speech to the end of each stage of the turn.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.stage_duration = Histogram(
            "voxgate_turn_stage_duration_seconds",
            "Seconds each stage of a turn took, from its own start (the LLM's from its request).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.replies = Counter(
            "voxgate_replies",
            "Replies ended (reply.done), by what started them and status.",
            ["trigger", "status"],
            registry=r,
        )
        self.errors = Counter(
            "voxgate_errors",
            "Errors sent to clients: session.error and reply.error, by code.",
            ["event", "code"],
            registry=r,
        )
        self.backend_failures = Counter(
            "voxgate_backend_failures",
            "Replies a model failed (reply.error), by backend (llm, tts, stt) and code.",
            ["backend", "code"],
            registry=r,
        )
        self.barge_ins = Counter("voxgate_barge_ins", "Replies cut by the user's voice (barge-ins).", registry=r)
        self.resumes = Counter(
            "voxgate_reply_resumes",
            "False interruptions: a reply paused under voice that went on (paused), or a cut reply's clause said "
            "again because the voice was only a backchannel or a cough (cut).",
            ["kind"],
            registry=r,
        )
        self._sockets: weakref.WeakSet[SocketStats] = weakref.WeakSet()
        self.registry.register(_Levels(self, sessions, models))

    # ------------------------------------------------------------ the sessions' observer

    def session_started(self) -> None:
        self.sessions_total.inc()

    def turn_timed(self, turn: TimedTurn) -> None:
        self.turns.labels(turn.outcome).inc()
        if turn.outcome != "abandoned":
            for stage in turn.stages:
                self.stage_seconds.labels(stage.name).observe(stage.end_s)
                self.stage_duration.labels(stage.name).observe(max(0.0, stage.duration_s))
        if self.tracer is not None:
            try:
                self.tracer.record(turn)
            except Exception:  # a tracing failure must not cost the turn
                log.warning("recording the turn's trace failed", exc_info=True)

    def reply_done(self, trigger: str, status: str) -> None:
        self.replies.labels(trigger, status).inc()

    def error(self, event: str, code: str) -> None:
        self.errors.labels(event, code).inc()
        if event == "reply.error" and code in BACKEND_OF:
            self.backend_failures.labels(BACKEND_OF[code], code).inc()

    def barge_in(self) -> None:
        self.barge_ins.inc()

    def reply_resumed(self, kind: ResumeKind) -> None:
        self.resumes.labels(kind).inc()

    # ------------------------------------------------------------ sockets

    def socket_opened(self, socket: SocketStats) -> None:
        """A socket whose queues are read at each scrape (until it closes or is collected)."""
        self._sockets.add(socket)

    def open_sockets(self) -> list[SocketStats]:
        return [s for s in list(self._sockets) if not s.closed]

    def close(self) -> None:
        """The app stops: spans still queued are sent."""
        if self.tracer is not None:
            self.tracer.shutdown()


class _Levels(Collector):
    """What is a level, read at each scrape: sessions, socket queues, LLM queues."""

    def __init__(self, telemetry: Telemetry, sessions: LiveSessions | None, models: LoadedModels | None) -> None:
        self._telemetry = telemetry
        self._sessions = sessions
        self._models = models

    def describe(self) -> Iterable[Metric]:
        return ()  # collected fresh each time; nothing to check names against at registration

    def collect(self) -> Iterator[Metric]:
        if self._sessions is not None:
            live = GaugeMetricFamily(
                "voxgate_sessions_live",
                "Sessions in this process: connected (a socket holds it) or detached (resumable, in the window).",
                labels=["state"],
            )
            connected = self._sessions.attached_count
            live.add_metric(["connected"], connected)
            live.add_metric(["detached"], max(0, len(self._sessions) - connected))
            yield live
        sockets = self._telemetry.open_sockets()
        count = GaugeMetricFamily("voxgate_sockets_open", "Client sockets open (WebSocket and Twilio streams).")
        count.add_metric([], len(sockets))
        yield count
        outbox = [s.outbox_bytes for s in sockets]
        yield _gauge("voxgate_socket_outbox_bytes", "Bytes queued for clients, all sockets.", sum(outbox))
        yield _gauge(
            "voxgate_socket_outbox_max_bytes", "Bytes queued for the most backed-up socket.", max(outbox, default=0)
        )
        frames = sum(s.outbox_frames for s in sockets)
        yield _gauge("voxgate_socket_outbox_frames", "Messages queued for clients, all sockets.", frames)
        backlog = [s.audio_backlog_s for s in sockets]
        yield _gauge(
            "voxgate_audio_backlog_seconds", "Client audio received and not yet processed, all sockets.", sum(backlog)
        )
        yield _gauge(
            "voxgate_audio_backlog_max_seconds",
            "Client audio not yet processed on the most backed-up socket.",
            max(backlog, default=0.0),
        )
        if self._models is not None:
            yield from _llm_levels(self._models.loaded_llms())


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge


def _llm_levels(llms: Sequence[Any]) -> Iterator[Metric]:
    """Queue depth and counts of every built LLM, the fallback pair's two models apart."""
    waiting = GaugeMetricFamily(
        "voxgate_llm_queue_depth", "Requests waiting for an embedded LLM behind the one it runs.", labels=["model"]
    )
    busy = GaugeMetricFamily("voxgate_llm_busy", "1 while an embedded LLM runs a request.", labels=["model"])
    requests = CounterMetricFamily("voxgate_llm_requests", "Requests an embedded LLM started.", labels=["model"])
    fallbacks = CounterMetricFamily(
        "voxgate_llm_fallbacks", "Replies the fallback LLM answered because the primary failed.", labels=["model"]
    )
    seen: set[int] = set()
    for llm in _flattened(llms):
        if id(llm) in seen:
            continue
        seen.add(id(llm))
        name = str(getattr(llm, "name", type(llm).__name__))
        if isinstance(getattr(llm, "waiting", None), int):
            waiting.add_metric([name], llm.waiting)
            busy.add_metric([name], 1 if getattr(llm, "busy", False) else 0)
        if isinstance(getattr(llm, "requests", None), int):
            requests.add_metric([name], llm.requests)
        if isinstance(getattr(llm, "fallbacks", None), int):
            fallbacks.add_metric([name], llm.fallbacks)
    yield from (waiting, busy, requests, fallbacks)


def _flattened(llms: Sequence[Any]) -> Iterator[Any]:
    for llm in llms:
        yield llm
        for part in ("primary", "fallback"):  # backends/llm/fallback.py
            inner = getattr(llm, part, None)
            if inner is not None and inner is not llm:
                yield from _flattened([inner])
