"""`voxgate bench soak`: hours of use in minutes: one long conversation, then sessions that come and go.

Two phases against one server process, whose resident memory is sampled all along:

- **long**: one session of `--turns` spoken turns (default 300) cycling through a fixed script of
  questions, small talk and requests that make the agent call the client-side tools `get_weather`
  and `remember` (answered with `tool.result`). Per turn: first-audio latency (end of speech → the
  first `reply.audio`), the tools called, and whether the turn failed. The script has 25 lines, so
  the first 50 and the last 50 of 300 turns say exactly the same things: a difference in their
  first-audio p50 is drift (a history that grows into the prompt), not a different mix of questions.
- **churn**: `--churn-sessions` clients, each looping for `--churn-s`: connect, configure, speak one
  or two turns, then go in one of four ways — `session.end`, a TCP abort between turns, a TCP abort
  while the agent speaks, or an abort followed by `session.resume` on a new socket with the resume
  token. Anything unexpected is an error. At the end `/health` must show no session left.

The server is spawned here (`voxgate serve` on a free port, the embedded models, temperature 0) so
its RSS can be read from `/proc/<pid>/status`; `--url` with `--pid` measures a running one instead.
Speech is the project's own Piper voice (synthetic: say so when reporting), streamed in 50 ms
chunks like a microphone: the utterance (at `--speed` × real time), then silence in real time until
the reply's first audio, so the end-of-turn wait is timed as a user would live it. While the agent
speaks, silence is sent only to keep up with the wall clock, so a faster-than-real-time utterance
never piles up against the server's 20 s allowance. The next turn starts only after `reply.done`:
for a WebSocket client the server's playback clock ends the reply when its audio would have played
out, so speech after `reply.done` is a new turn, not a barge-in.

Targets (issue 15): server RSS growth ≤ 5 % after warm-up (within each phase, at its own load: see
`memory_growth`), no failed turn, first-audio p50 of the last 50 turns no more than 10 % above that
of the first 50.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.bench.latency import CHUNK_S, RATE, _pct, _speech

SCRIPT = (
    "Hello, how are you today?",
    "What is the capital city of France?",
    "What is the weather like in Paris right now?",
    "Can you tell me a fun fact about the ocean?",
    "Please remember that my sister's birthday is on the fourth of May.",
    "How many days are there in a leap year?",
    "What should I cook for dinner tonight?",
    "Will it rain in London tomorrow?",
    "Who wrote the play Romeo and Juliet?",
    "What is two plus two?",
    "Remember that I parked the car on level three.",
    "Give me one tip for sleeping better.",
    "What colour is the sky on a clear day?",
    "Is it cold in Berlin today?",
    "Thanks, that is really helpful.",
    "What is a good name for a small dog?",
    "Please remember that my dentist appointment is on Friday.",
    "How far away is the moon?",
    "What is the weather in Tokyo this afternoon?",
    "Tell me a short joke.",
    "What do you call a baby cat?",
    "Remember that I like my coffee without sugar.",
    "How many legs does a spider have?",
    "Should I bring an umbrella in Madrid today?",
    "Can you recommend a good book to read?",
)
SYSTEM_PROMPT = (
    "You are a helpful voice assistant. Answer in one short sentence. You do not know the weather: for any "
    "question about the weather, always call get_weather with the city. When the user asks you to remember "
    "something, always call remember with the fact."
)
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
    {
        "type": "function",
        "name": "remember",
        "description": "Save a fact the user asked you to remember.",
        "parameters": {"type": "object", "properties": {"fact": {"type": "string"}}, "required": ["fact"]},
    },
]
KEYTERMS = ("Paris", "London", "Berlin", "Tokyo", "Madrid", "Romeo and Juliet")  # as a real client lists names
DROPS = ("resume", "abort_mid_reply", "end", "abort")
TURN_LIMIT_S = 120.0  # from end of speech to the turn's last reply.done; generous: 2 cores, shared models
READY_LIMIT_S = 60.0
APOLOGY_WAIT_S = 10.0  # after a reply.error the server speaks an apology of its own: wait this long for it
GAP_S = 0.3  # silence between the agent's reply.done and the user's next utterance: a person takes a beat
AHEAD_LIMIT_S = 15.0  # stay well inside the server's 20 s allowance for audio ahead of real time
DRIFT_WINDOW = 50
KEPT_EVENTS = frozenset(
    {
        "transcript.user",
        "reply.started",
        "reply.done",
        "reply.error",
        "session.error",
        "tool.call",
        "input.speech.started",
        "input.speech.stopped",
    }
)


class SoakError(Exception):
    """A session could not be opened or resumed: counted as an error, never a crash of the bench."""


# ------------------------------------------------------------------ figures (pure: unit-tested)


@dataclass
class Turn:
    phase: str
    n: int
    text: str
    at_s: float = 0.0  # when it started, seconds into the run
    first_audio_s: float | None = None
    transcript: str = ""
    said: str = ""  # the agent's transcript.agent texts, " / " between replies
    tools: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # [Voxgate] `voxgate.turn.latency`, when the socket asked for it: each stage's own milliseconds
    stages_ms: dict[str, int] = field(default_factory=dict)


@dataclass
class Sample:
    t_s: float
    rss_mb: float | None
    turns: int
    connected: int | None = None
    sessions: int | None = None
    tasks: int | None = None


@dataclass
class Growth:
    phase: str
    warmup_s: float  # from the phase's start
    rss_warm_mb: float  # the peak of the warm-up
    peak_last_quarter_mb: float
    growth: float


@dataclass
class Drift:
    window: int
    p50_first_s: float
    p50_last_s: float
    drift: float


@dataclass
class Target:
    name: str
    value: str
    goal: str
    met: bool | None  # None: not measured in this run


@dataclass
class ChurnStats:
    sessions: int = 0
    turns: list[Turn] = field(default_factory=list)
    drops: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    left_connected: int | None = None
    left_sessions: int | None = None


@dataclass
class SoakResult:
    phase: str
    voice: str
    speed: float
    rss_of: str
    duration_s: float
    turns_asked: int
    churn_s_asked: float
    samples: list[Sample] = field(default_factory=list)
    long_turns: list[Turn] = field(default_factory=list)
    churn: ChurnStats | None = None
    phase_spans: dict[str, tuple[float, float]] = field(default_factory=dict)  # phase → (start, end) in run seconds


def classify(events: Sequence[dict[str, Any]], *, timed_out: bool = False, closed: bool = False) -> list[str]:
    """Why a turn failed, from the events it saw (empty: it did not). A reply's own `reply.done
    {interrupted}` after its `reply.error` is the error's ending, not a second failure."""
    failures: list[str] = []
    if timed_out:
        failures.append("timeout")
    if closed:
        failures.append("socket closed")
    if not any(e["type"] == "transcript.user" and str(e.get("text", "")).strip() for e in events):
        failures.append("no transcript")
    errored = {e.get("reply_id") for e in events if e["type"] == "reply.error"}
    for e in events:
        if e["type"] == "reply.error":
            failures.append(f"reply.error {e.get('code')}")
        elif e["type"] == "session.error":
            failures.append(f"session.error {e.get('code')}")
        elif e["type"] == "reply.done" and e.get("status") != "completed" and e.get("reply_id") not in errored:
            failures.append(f"reply.done {e.get('status')}")
    return failures


def memory_growth(
    samples: Sequence[Sample], start_s: float, end_s: float, *, phase: str = "", warmup_share: float = 0.1
) -> Growth | None:
    """(peak RSS in the phase's last quarter − peak RSS of its warm-up) / the warm-up's peak.

    Growth is measured within one phase, at the load it runs: one session, or N at a time (N sessions
    hold more than one, and that is not growth). Peak against peak, because RSS swings by tens of MB
    within a turn (audio buffers, a reply's synthesis): a single reading at the end of warm-up would
    compare a trough with a peak. Warm-up is `warmup_share` of the phase, at least 2 minutes (models
    map their weights and fill their caches on first use; N sessions ramp up), never more than a
    quarter of a short phase. None: fewer than two readings in the phase."""
    duration_s = end_s - start_s
    readings = [(s.t_s - start_s, s.rss_mb) for s in samples if s.rss_mb is not None and start_s <= s.t_s <= end_s]
    if len(readings) < 2 or duration_s <= 0:
        return None
    warmup_s = min(max(warmup_share * duration_s, 120.0), 0.25 * duration_s)
    warm = max([rss for t, rss in readings if t <= warmup_s] or [readings[0][1]])
    last_quarter = [rss for t, rss in readings if t >= 0.75 * duration_s] or [readings[-1][1]]
    peak = max(last_quarter)
    return Growth(phase, warmup_s, warm, peak, (peak - warm) / warm)


def phase_growths(result: SoakResult) -> list[Growth]:
    """Each phase's growth; a run without recorded spans (an old JSON) is one phase."""
    spans = result.phase_spans or {"run": (0.0, result.duration_s)}
    shares = {"churn": 0.25}  # N sessions ramp up and reach their working set within a quarter
    out = []
    for phase, (start, end) in spans.items():
        g = memory_growth(result.samples, start, end, phase=phase, warmup_share=shares.get(phase, 0.1))
        if g is not None:
            out.append(g)
    return out


def latency_drift(first_audio: Sequence[float | None], window: int = DRIFT_WINDOW) -> Drift | None:
    """First-audio p50 of the last `window` measured turns against the first `window` (fewer when the
    run is short: half of what was measured each). None: under two measured turns."""
    values = [v for v in first_audio if v is not None]
    w = min(window, len(values) // 2)
    if w == 0:
        return None
    first, last = statistics.median(values[:w]), statistics.median(values[-w:])
    return Drift(w, first, last, (last - first) / first if first > 0 else 0.0)


def long_drift(turns: Sequence[Turn]) -> Drift | None:
    """Drift over the turns that did not fail: a failed turn's first audio may be the server's apology."""
    return latency_drift([t.first_audio_s for t in turns if not t.failures])


def targets(result: SoakResult) -> list[Target]:
    """The issue's targets, each measured or marked not measured (never passed by default)."""
    out: list[Target] = []
    growths = phase_growths(result)
    if not growths:
        out.append(Target("server RSS growth after warm-up", "not sampled", "≤ +5%", None))
    for g in growths:
        out.append(
            Target(
                f"server RSS growth after warm-up ({g.phase})",
                f"{g.growth:+.1%} (peak {g.rss_warm_mb:.0f} → {g.peak_last_quarter_mb:.0f} MB)",
                "≤ +5%",
                g.growth <= 0.05,
            )
        )
    churn_turns = result.churn.turns if result.churn is not None else []
    every = result.long_turns + churn_turns
    failed = sum(bool(t.failures) for t in every)
    out.append(Target("failed turns (long + churn)", f"{failed}/{len(every)}", "0", None if not every else failed == 0))
    drift = long_drift(result.long_turns)
    out.append(
        Target(
            "first-audio p50, last vs first turns"
            if drift is None
            else f"first-audio p50, last {drift.window} vs first {drift.window}",
            "not measured"
            if drift is None
            else f"{drift.p50_last_s:.2f} vs {drift.p50_first_s:.2f} s ({drift.drift:+.1%})",
            "≤ +10%",
            None if drift is None else drift.drift <= 0.10,
        )
    )
    if result.churn is not None:
        c = result.churn
        errors = sum(c.errors.values())
        left = "?" if c.left_connected is None else str(c.left_connected)
        out.append(
            Target(
                "churn: unexpected errors; sessions left attached",
                f"{errors}; {left}",
                "0; 0",
                errors == 0 and c.left_connected == 0,
            )
        )
    return out


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60:3d}:{int(seconds) % 60:02d}"


def timeline(samples: Sequence[Sample], every_s: float = 60.0) -> list[str]:
    """One line a minute (the first reading at or after each mark, and the last reading)."""
    lines, mark = [], 0.0
    for i, s in enumerate(samples):
        if s.t_s >= mark or i == len(samples) - 1:
            lines.append(sample_line(s))
            while mark <= s.t_s:
                mark += every_s
    return lines


def sample_line(s: Sample) -> str:
    rss = "    ?   " if s.rss_mb is None else f"{s.rss_mb:8.1f}"
    live = "?" if s.connected is None else str(s.connected)
    held = "?" if s.sessions is None else str(s.sessions)
    tasks = "?" if s.tasks is None else str(s.tasks)
    return (
        f"  {_clock(s.t_s)}  rss {rss} MB  turns {s.turns:4d}  connected {live:>2}  sessions {held:>2}  tasks {tasks}"
    )


def report(result: SoakResult) -> list[str]:
    """The final summary: the RSS timeline, latency over the long session, churn counts, the targets."""
    lines = [
        f"\nsoak: phase {result.phase}, {_clock(result.duration_s).strip()} (m:ss), agent voice {result.voice}; "
        f"user speech is synthetic (the project's Piper voice 'joe'), streamed at {result.speed:g}× real time",
        f"RSS of {result.rss_of}",
    ]
    if result.turns_asked < 300 or result.churn_s_asked < 600:
        lines.append("NOTE: a short run (the issue asks ≥ 300 turns and ≥ 10 min of churn): figures are indicative")
    lines.append("\nRSS timeline (elapsed, server RSS, turns done, sockets attached, sessions held, asyncio tasks)")
    lines += timeline(result.samples)
    if result.long_turns:
        measured = [t.first_audio_s for t in result.long_turns if t.first_audio_s is not None]
        tools = Counter(name for t in result.long_turns for name in t.tools)
        lines.append(f"\nlong session: {len(result.long_turns)} turns, tool calls {dict(tools) or 'none'}")
        if measured:
            lines.append(
                f"  first audio p50 {statistics.median(measured):.2f} s  p95 {_pct(measured, 0.95):.2f} s  "
                f"max {max(measured):.2f} s  (n={len(measured)})"
            )
        step = max(1, len(result.long_turns) // 6)
        for start in range(0, len(result.long_turns), step):
            block = [t.first_audio_s for t in result.long_turns[start : start + step] if t.first_audio_s is not None]
            if block:
                lines.append(
                    f"  turns {start + 1:3d}-{min(start + step, len(result.long_turns)):3d}: first audio p50 "
                    f"{statistics.median(block):.2f} s"
                )
    failed = [t for t in result.long_turns + (result.churn.turns if result.churn else []) if t.failures]
    for t in failed[:20]:
        lines.append(f"  FAILED {t.phase} turn {t.n} at {_clock(t.at_s).strip()}: {', '.join(t.failures)} ({t.text!r})")
    if len(failed) > 20:
        lines.append(f"  ... and {len(failed) - 20} more failed turns")
    if result.churn is not None:
        c = result.churn
        lines.append(
            f"\nchurn: {c.sessions} sessions, {len(c.turns)} turns, drops {dict(c.drops)}; "
            f"left after the resume window: {c.left_connected} attached, {c.left_sessions} held"
        )
        for what, n in c.errors.most_common():
            lines.append(f"  error ×{n}: {what}")
    lines.append(f"\n  {'target':<50} {'value':<34} {'goal':<8} result")
    for target in targets(result):
        verdict = "n/a" if target.met is None else ("PASS" if target.met else "MISS")
        lines.append(f"  {target.name:<50} {target.value:<34} {target.goal:<8} {verdict}")
    return lines


# ------------------------------------------------------------------ the client


class _Socket:
    """One WebSocket and its reader: events are stamped and queued, `reply.audio` without its data."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed = False
        self.sent_s = 0.0
        self.first_send: float | None = None
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                event = json.loads(message)
                event["_at"] = time.monotonic()
                event.pop("data", None)
                self.inbox.put_nowait(event)
        except Exception:  # a drop of any kind ends reading; the turn in progress sees `closed`
            pass
        finally:
            self.closed = True

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def audio(self, pcm: np.ndarray) -> None:
        if self.first_send is None:
            self.first_send = time.monotonic()
        self.sent_s += len(pcm) / RATE
        await self.send({"type": "input.audio", "audio": base64.b64encode(pcm.astype("<i2").tobytes()).decode()})

    def ahead_s(self) -> float:
        """Audio sent beyond the wall clock since the first chunk: what the server's allowance counts."""
        return 0.0 if self.first_send is None else self.sent_s - (time.monotonic() - self.first_send)

    async def next_of(self, kinds: set[str], limit_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + limit_s
        while True:
            try:
                event = await asyncio.wait_for(self.inbox.get(), max(0.05, min(0.5, deadline - time.monotonic())))
            except TimeoutError:
                if self.closed and self.inbox.empty():
                    raise SoakError(f"socket closed waiting for {'/'.join(sorted(kinds))}") from None
                if time.monotonic() > deadline:
                    raise SoakError(f"no {'/'.join(sorted(kinds))} in {limit_s:.0f} s") from None
                continue
            if event["type"] in kinds:
                return event

    def abort(self) -> None:
        """Drop the TCP connection with no close frame, as a lost network does."""
        transport = getattr(self.ws, "transport", None)
        if transport is not None:
            transport.abort()
        self.reader.cancel()

    async def end(self) -> str | None:
        """`session.end`, then `session.ended` and a 1000 close; the error, if it went otherwise."""
        try:
            await self.send({"type": "session.end"})
            await self.next_of({"session.ended"}, 15)
            await asyncio.wait_for(self.ws.wait_closed(), 10)
        except (SoakError, TimeoutError) as exc:
            self.abort()
            return f"session.end: {exc or 'no close'}"
        except Exception as exc:
            self.abort()
            return f"session.end: {type(exc).__name__}"
        code = self.ws.close_code
        return None if code == 1000 else f"session.end: closed {code}"


def _session_config(voice: str) -> dict[str, Any]:
    return {
        "system_prompt": SYSTEM_PROMPT,
        "tools": TOOLS,
        "input": {"keyterms": list(KEYTERMS)},
        "output": {"voice": voice},
    }


async def _open(
    url: str, key: str | None, voice: str, resume: tuple[str, str] | None = None
) -> tuple[_Socket, dict[str, Any]]:
    """A ready session: configured fresh, or `resume` = (session_id, resume_token) taken over (§6.8)."""
    import websockets

    credential = resume[1] if resume is not None else key
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    try:
        ws = await websockets.connect(url, additional_headers=headers, max_size=None)
    except Exception as exc:
        raise SoakError(f"connect: {type(exc).__name__}: {exc}") from exc
    sock = _Socket(ws)
    if resume is not None:
        await sock.send({"type": "session.resume", "session_id": resume[0]})
    else:
        await sock.send({"type": "session.update", "session": _session_config(voice)})
    try:
        event = await sock.next_of({"session.ready", "session.error"}, READY_LIMIT_S)
    except SoakError:
        sock.abort()
        raise
    if event["type"] != "session.ready":
        sock.abort()
        raise SoakError(f"{'resume' if resume else 'open'}: session.error {event.get('code')}")
    return sock, event


def _tool_result(name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
    """What the client-side tools answer: fixed, so every run feeds the model the same results."""
    if name == "get_weather":
        return json.dumps({"city": arguments.get("city", ""), "forecast": "sunny", "temperature_c": 21}), False
    if name == "remember":
        return json.dumps({"saved": True}), False
    return json.dumps({"error": f"no tool named {name}"}), True


async def speak_turn(
    sock: _Socket, samples: np.ndarray, turn: Turn, speed: float, *, drop_at_audio: bool = False
) -> None:
    """One user turn, until its last `reply.done` (a tool's follow-up reply and an error's apology
    included); with `drop_at_audio`, only until the reply's first audio (the caller then drops the socket)."""
    step = int(CHUNK_S * RATE)
    silence = np.zeros(step, np.int16)
    events: list[dict[str, Any]] = []
    timed_out = closed = False
    client_error: str | None = None
    try:
        await asyncio.sleep(max(0.0, sock.ahead_s() - AHEAD_LIMIT_S))  # back inside the server's allowance
        start = time.monotonic()
        for i, offset in enumerate(range(0, len(samples), step)):
            await sock.audio(samples[offset : offset + step])
            await asyncio.sleep(max(0.0, start + (i + 1) * CHUNK_S / speed - time.monotonic()))
        end_of_speech = time.monotonic()
        deadline = end_of_speech + TURN_LIMIT_S
        pending: list[dict[str, Any]] = []
        awaiting_apology, apology_by, finished = False, None, False
        while not finished:
            if time.monotonic() > deadline:
                timed_out = True
                break
            if sock.closed and sock.inbox.empty():
                closed = True
                break
            if apology_by is not None and time.monotonic() > apology_by:
                break  # no apology came after the failed reply: the failure is recorded, the turn is over
            if turn.first_audio_s is None or sock.ahead_s() <= 0:
                await sock.audio(silence)
            await asyncio.sleep(CHUNK_S)
            while not sock.inbox.empty() and not finished:
                event = sock.inbox.get_nowait()
                kind = event["type"]
                if kind in KEPT_EVENTS:
                    events.append(event)
                if kind == "transcript.user":
                    turn.transcript = (turn.transcript + " " + str(event.get("text", ""))).strip()
                elif kind == "transcript.agent":
                    turn.said = " / ".join(x for x in (turn.said, str(event.get("text", ""))) if x)
                elif kind == "reply.audio" and turn.first_audio_s is None:
                    turn.first_audio_s = event["_at"] - end_of_speech
                    finished = drop_at_audio
                elif kind == "voxgate.turn.latency" and not turn.stages_ms:
                    turn.stages_ms = stage_durations_ms(event)
                elif kind == "reply.started":
                    apology_by = None
                elif kind == "tool.call":
                    pending.append(event)
                    turn.tools.append(str(event.get("name")))
                elif kind == "reply.error":
                    awaiting_apology = True
                elif kind == "reply.done":
                    if pending and event.get("status") == "completed":
                        await _answer_tools(sock, pending)  # a follow-up reply comes: wait for its reply.done
                    elif awaiting_apology:
                        awaiting_apology, apology_by = False, time.monotonic() + APOLOGY_WAIT_S
                    else:
                        finished = True
                    pending = []
        if not drop_at_audio and not closed:
            for _ in range(round(GAP_S / CHUNK_S)):
                await sock.audio(silence)
                await asyncio.sleep(CHUNK_S)
    except Exception as exc:  # the socket went while sending: the turn failed, the bench goes on
        closed, client_error = True, f"client {type(exc).__name__}"
    turn.failures = classify(events, timed_out=timed_out, closed=closed)
    if client_error is not None:
        turn.failures.append(client_error)


def stage_durations_ms(event: dict[str, Any]) -> dict[str, int]:
    """A `voxgate.turn.latency` event's stages as each one's own length (the event gives start and end)."""
    out: dict[str, int] = {}
    for stage in event.get("stages") or []:
        try:
            out[str(stage["name"])] = int(stage["end_ms"]) - int(stage["start_ms"])
        except (KeyError, TypeError, ValueError):
            continue  # a stage the bench cannot read is left out, not guessed
    return out


async def _answer_tools(sock: _Socket, calls: list[dict[str, Any]]) -> None:
    """`tool.result` for each call, sent on the reply's `reply.done` (the client's rule, §6.4)."""
    for call in calls:
        result, is_error = _tool_result(str(call.get("name")), call.get("arguments") or {})
        await sock.send({"type": "tool.result", "call_id": call["call_id"], "result": result, "is_error": is_error})


# ------------------------------------------------------------------ phases


@dataclass
class _Run:
    """What the phases share: the speech, the progress the sampler prints, where the run started."""

    url: str
    key: str | None
    voice: str
    speed: float
    speech: dict[str, np.ndarray]
    t0: float = field(default_factory=time.monotonic)
    turns_done: int = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.t0


def _turn_line(t: Turn, total: int | str) -> str:
    first = "  -  " if t.first_audio_s is None else f"{t.first_audio_s:5.2f}"
    tools = f" tools {','.join(t.tools)}" if t.tools else ""
    verdict = "ok" if not t.failures else "FAILED " + ", ".join(t.failures)
    return (
        f"{t.phase} turn {t.n}/{total} @{_clock(t.at_s).strip()}: first audio {first} s {verdict}{tools}"
        f" | heard {t.transcript[:50]!r} | said {t.said[:70]!r}"
    )


async def long_phase(run: _Run, turns: int) -> list[Turn]:
    """One session, `turns` turns of the script; a dropped socket is resumed once, then the phase stops."""
    done: list[Turn] = []
    try:
        sock, ready = await _open(run.url, run.key, run.voice)
    except SoakError as exc:
        print(f"long session: could not open ({exc})", flush=True)
        return [Turn("long", 1, SCRIPT[0], failures=[str(exc)])]
    for n in range(1, turns + 1):
        text = SCRIPT[(n - 1) % len(SCRIPT)]
        turn = Turn("long", n, text, at_s=run.elapsed())
        await speak_turn(sock, run.speech[text], turn, run.speed)
        done.append(turn)
        run.turns_done += 1
        print(_turn_line(turn, turns), flush=True)
        if sock.closed:
            try:
                sock, ready = await _open(run.url, run.key, run.voice, (ready["session_id"], ready["resume_token"]))
                print("long session: socket dropped, resumed", flush=True)
            except SoakError as exc:
                print(f"long session: socket dropped and not resumed ({exc}); phase stopped", flush=True)
                return done
    if (why := await sock.end()) is not None:
        print(f"long session: {why}", flush=True)
    return done


async def _churn_client(run: _Run, w: int, deadline: float, stats: ChurnStats) -> None:
    """Sessions one after another until `deadline`, each with one or two turns and a varied way out."""
    k = 0
    while time.monotonic() < deadline:
        drop, n_turns, k = DROPS[(w + k) % len(DROPS)], 1 + (w + k // len(DROPS)) % 2, k + 1
        try:
            sock, ready = await _open(run.url, run.key, run.voice)
        except SoakError as exc:
            stats.errors[str(exc)] += 1
            await asyncio.sleep(2.0)
            continue
        turns: list[Turn] = []
        error: str | None = None
        try:
            for j in range(n_turns):
                text = SCRIPT[(7 * w + 3 * k + j) % len(SCRIPT)]
                turn = Turn(f"churn{w}", len(stats.turns) + len(turns) + 1, text, at_s=run.elapsed())
                last = j == n_turns - 1
                await speak_turn(
                    sock, run.speech[text], turn, run.speed, drop_at_audio=last and drop == "abort_mid_reply"
                )
                turns.append(turn)
            if drop == "end":
                error = await sock.end()
            elif drop in ("abort", "abort_mid_reply"):
                sock.abort()
            else:
                sock.abort()
                await asyncio.sleep(0.5)
                sock, again = await _open(run.url, run.key, run.voice, (ready["session_id"], ready["resume_token"]))
                if again.get("session_id") != ready["session_id"]:
                    error = "resume: another session_id"
                text = SCRIPT[(7 * w + 3 * k + n_turns) % len(SCRIPT)]
                turn = Turn(f"churn{w}", len(stats.turns) + len(turns) + 1, text, at_s=run.elapsed())
                await speak_turn(sock, run.speech[text], turn, run.speed)
                turns.append(turn)
                error = error or await sock.end()
        except SoakError as exc:
            error = str(exc)
            sock.abort()
        stats.turns += turns
        stats.sessions += 1
        stats.drops[drop] += 1
        run.turns_done += len(turns)
        if error:
            stats.errors[error] += 1
        for turn in turns:
            if turn.failures:
                print(_turn_line(turn, "-"), flush=True)
        ok = "ok" if not error and not any(t.failures for t in turns) else f"ERROR {error or 'failed turn'}"
        firsts = " ".join("-" if t.first_audio_s is None else f"{t.first_audio_s:.2f}" for t in turns)
        print(f"churn client {w}: session {stats.sessions} ({drop}, first audio {firsts} s) {ok}", flush=True)


async def churn_phase(run: _Run, clients: int, seconds: float, health: str, resume_window_s: float) -> ChurnStats:
    """`clients` concurrent loops of sessions for `seconds`; then `/health` after the resume window."""
    stats = ChurnStats()
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(_churn_client(run, w, deadline, stats) for w in range(clients)))
    print(f"churn: waiting up to {resume_window_s + 5:.0f} s for dropped sessions to expire ...", flush=True)
    until = time.monotonic() + resume_window_s + 5
    while True:
        state = await _health(health)
        stats.left_connected, stats.left_sessions = state.get("connected"), state.get("sessions")
        if (stats.left_connected == 0 and stats.left_sessions == 0) or time.monotonic() > until:
            break
        await asyncio.sleep(1.0)
    return stats


# ------------------------------------------------------------------ the server and its memory


def rss_mb(pid: int) -> float | None:
    """VmRSS of `pid` in MB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


async def _health(url: str) -> dict[str, Any]:
    import httpx

    try:
        async with httpx.AsyncClient() as http:
            body = (await http.get(url, timeout=5)).json()
            return body if isinstance(body, dict) else {}
    except (httpx.HTTPError, ValueError):
        return {}


async def _sample(run: _Run, pid: int | None, health: str, every_s: float, samples: list[Sample]) -> None:
    """Reads the server's RSS and `/health` every `every_s`; prints a line a minute (progress)."""
    printed = -60.0
    while True:
        state = await _health(health)
        s = Sample(
            run.elapsed(),
            rss_mb(pid) if pid is not None else None,
            run.turns_done,
            state.get("connected"),
            state.get("sessions"),
            state.get("tasks"),
        )
        samples.append(s)
        if s.t_s - printed >= 60.0:
            print(f"[rss]{sample_line(s)}", flush=True)
            printed = s.t_s
        await asyncio.sleep(every_s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn_server(workdir: Path, resume_window_s: float) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`voxgate serve` on a free loopback port with the embedded models, open (no keys), repeatable
    replies (temperature 0, a fixed seed) and its records in `workdir`; waits until it is healthy."""
    port = _free_port()
    log = workdir / "server.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "VOXGATE_LLM_TEMPERATURE": "0",
        "VOXGATE_LLM_SEED": "7",
        "VOXGATE_RESUME_WINDOW_S": f"{resume_window_s:g}",
        "VOXGATE_DATA_DIR": str(workdir / "data"),
    }
    env.pop("VOXGATE_API_KEYS", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "voxgate.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_healthy(process, f"http://127.0.0.1:{port}/health", log, 600.0)
    return process, f"ws://127.0.0.1:{port}/v1/ws", log


def wait_healthy(process: subprocess.Popen[bytes], health: str, log: Path, limit_s: float) -> None:
    """Until `health` answers 200; the log's tail in the error if the server exits or never answers
    (loading the models takes most of a minute on 2 cores, longer on a first start)."""
    import httpx

    deadline = time.monotonic() + limit_s
    while process.poll() is None:
        try:
            if httpx.get(health, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not become healthy:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")


def _health_url(ws_url: str) -> str:
    scheme, rest = ws_url.split("://", 1)
    return f"{'https' if scheme == 'wss' else 'http'}://{rest.split('/', 1)[0]}/health"


async def _soak(args: argparse.Namespace, url: str, pid: int | None, rss_of: str) -> SoakResult:
    print(f"synthesizing {len(SCRIPT)} utterances with the Piper voice (synthetic speech) ...", flush=True)
    speech = dict(zip(SCRIPT, _speech(SCRIPT), strict=True))
    run = _Run(url, args.api_key, args.voice, args.speed, speech)
    health = _health_url(url)
    result = SoakResult(args.phase, args.voice, args.speed, rss_of, 0.0, args.turns, args.churn_s)
    sampler = asyncio.create_task(_sample(run, pid, health, args.sample_s, result.samples))
    try:
        if args.phase in ("long", "both"):
            print(f"long session: {args.turns} turns ...", flush=True)
            start = run.elapsed()
            result.long_turns = await long_phase(run, args.turns)
            result.phase_spans["long"] = (start, run.elapsed())
        if args.phase in ("churn", "both"):
            print(f"churn: {args.churn_sessions} clients for {args.churn_s:g} s ...", flush=True)
            start = run.elapsed()
            result.churn = await churn_phase(run, args.churn_sessions, args.churn_s, health, args.resume_window_s)
            result.phase_spans["churn"] = (start, run.elapsed())
    finally:
        result.duration_s = run.elapsed()
        sampler.cancel()
        if pid is not None:
            result.samples.append(Sample(result.duration_s, rss_mb(pid), run.turns_done))
    return result


def exit_on_sigterm() -> None:
    """SIGTERM (`kill`, a CI timeout) ends the bench through its `finally`, which stops the server it
    spawned: Python's default would exit at once and leave that server running, holding the models' memory."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main(args: argparse.Namespace) -> int:
    process: subprocess.Popen[bytes] | None = None
    exit_on_sigterm()
    if args.resume_window_s is None:
        args.resume_window_s = 10.0 if args.url is None else 30.0
    if args.url is None:
        workdir = Path(tempfile.mkdtemp(prefix="voxgate-soak-"))
        print(f"starting a server with the embedded models (log: {workdir / 'server.log'}) ...", flush=True)
        try:
            process, url, _ = spawn_server(workdir, args.resume_window_s)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        pid: int | None = process.pid
        rss_of = f"the spawned server, pid {pid} (log {workdir / 'server.log'})"
    else:
        url, pid = args.url, args.pid
        rss_of = f"pid {pid}" if pid is not None else "nothing: give --pid to sample the server's RSS"
    try:
        result = asyncio.run(_soak(args, url, pid, rss_of))
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    print("\n".join(report(result)), flush=True)
    if args.json:
        figures = {
            **asdict(result),
            "churn": None if result.churn is None else _churn_json(result.churn),
            "targets": [asdict(t) for t in targets(result)],
            "growth": [asdict(g) for g in phase_growths(result)],
            "drift": asdict(d) if (d := long_drift(result.long_turns)) else None,
        }
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))
        print(f"figures written to {args.json}")
    return 0 if all(t.met is not False for t in targets(result)) else 1


def _churn_json(c: ChurnStats) -> dict[str, Any]:
    """`asdict` would rebuild a Counter from (key, count) pairs, counting the pairs: give plain dicts."""
    return {**asdict(c), "drops": dict(c.drops), "errors": dict(c.errors)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="a running server (default: spawn one with the embedded models)")
    parser.add_argument("--pid", type=int, default=None, help="with --url: the server process whose RSS to sample")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--phase", choices=("long", "churn", "both"), default="both")
    parser.add_argument("--turns", type=int, default=300, help="turns of the long session")
    parser.add_argument("--churn-s", type=float, default=600.0, help="seconds of the churn phase")
    parser.add_argument(
        "--churn-sessions",
        type=int,
        default=2,
        help="concurrent churn clients (default 2: what the embedded models serve at once on 2 cores, issue 18's "
        "figure; more measure capacity, and their turns queue for the one model past the first-token timeout)",
    )
    parser.add_argument("--voice", default="joe", help="the agent's voice (GET /v1/voices; Piper joe is fast)")
    parser.add_argument("--speed", type=float, default=1.0, help="utterances streamed at this × real time")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS readings")
    parser.add_argument(
        "--resume-window-s",
        type=float,
        default=None,
        help="the spawned server's resume window, default 10 (with --url: the server's, default 30), "
        "for the end-of-churn check",
    )
    parser.add_argument("--json", default=None, help="write every figure to this file")
