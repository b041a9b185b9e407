"""`voxgate bench turns`: the turn-taking set through a running server, over WebSocket, in real time.

User-turn cases are streamed like a microphone (then silence) and timed against where their speech
really ends. Agent-speaking cases start a session whose greeting is long, then play the case into
the mic while the greeting is heard; the simulated client plays `reply.audio` on a speaker that
stalls when its buffer runs dry, and for echo cases its mic hears that speaker back.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.bench.turn_set import DEFAULT_DIR, Case, load

WIRE_RATE = 24_000
TICK_S = 0.05
TICK = int(WIRE_RATE * TICK_S)
GREETING = (
    "Hello and welcome to the city library help line. Today I can tell you about our opening hours, "
    "how to renew the books you have borrowed, how to reserve a study room, and which events are "
    "coming up this month, including the children's reading club and the evening lectures."
)
USER_KINDS = ("complete", "pause", "thinking", "phone", "email", "id")


@dataclass
class Result:
    case: Case
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    cut_off: bool = False
    waited_s: float | None = None  # end of speech → input.speech.stopped
    first_audio_s: float | None = None  # end of speech → first reply.audio
    transcript: str = ""
    barged_in: bool = False  # the reply was cut: reply.done {interrupted}
    paused: bool = False  # input.speech.started (the client stopped playback), then the reply went on
    pause_s: float | None = None  # input.speech.started → the reply's next audio
    reaction_s: float | None = None  # speech onset → input.speech.started
    interrupted_s: float | None = None  # speech onset → reply.done {interrupted}


def _wav24k(path: Path) -> np.ndarray:
    from voxgate.audio.resample import resample

    with wave.open(str(path)) as w:
        audio = (np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768).astype(np.float32)
        rate = w.getframerate()
    return resample(audio, rate, WIRE_RATE)


class _Session:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            self.events.append((time.monotonic(), json.loads(message)))

    def first(self, kind: str, after: float = 0.0, **match: Any) -> float | None:
        for at, event in self.events:
            if at >= after and event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                return at
        return None

    async def wait_for(self, kind: str, limit_s: float) -> float:
        deadline = time.monotonic() + limit_s
        while (at := self.first(kind)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(kind)
            await asyncio.sleep(0.02)
        return at

    async def send_pcm(self, samples: np.ndarray) -> None:
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        await self.ws.send(json.dumps({"type": "input.audio", "audio": base64.b64encode(pcm).decode()}))


class _Speaker:
    """The client's loudspeaker, as the protocol asks a client to run it: it plays `reply.audio` as it
    comes (stalling when its buffer runs dry), drops what it buffered on `input.speech.started`, and
    plays on when the server sends more (a paused reply resumed)."""

    def __init__(self, session: _Session) -> None:
        self.session = session
        self.seen = 0
        self.buffer = np.zeros(0, np.float32)

    def tick(self) -> np.ndarray:
        events = self.session.events
        for _, event in events[self.seen :]:
            if event["type"] == "reply.audio":
                pcm = np.frombuffer(base64.b64decode(event["data"]), "<i2").astype(np.float32) / 32768
                self.buffer = np.concatenate([self.buffer, pcm])
            elif event["type"] == "input.speech.started":
                self.buffer = self.buffer[:0]
        self.seen = len(events)
        out = np.zeros(TICK, np.float32)
        take, self.buffer = self.buffer[:TICK], self.buffer[TICK:]
        out[: len(take)] = take
        return out


async def _open(url: str, key: str | None, **session: Any) -> _Session:
    import websockets

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    ws = await websockets.connect(url, additional_headers=headers, max_size=None)
    s = _Session(ws)
    await ws.send(
        json.dumps(
            {
                "type": "session.update",
                "session": {
                    "system_prompt": "You are a helpful voice assistant. Answer in one short sentence.",
                    **session,
                },
            }
        )
    )
    await s.wait_for("session.ready", 60)
    return s


async def run_user_turn(url: str, key: str | None, case: Case, audio: np.ndarray) -> Result:
    s = await _open(url, key)
    result = Result(case)
    start = time.monotonic()
    speech_end = start + case.speech_end_s
    silence = np.zeros(TICK, np.float32)
    for i in range(int((len(audio) / WIRE_RATE + 8.0) / TICK_S)):
        chunk = audio[i * TICK : (i + 1) * TICK]
        await s.send_pcm(chunk if len(chunk) else silence)
        await asyncio.sleep(max(0.0, start + (i + 1) * TICK_S - time.monotonic()))
        if s.first("reply.audio", speech_end) is not None:
            break
    stops = [at for at, e in s.events if e["type"] in ("input.speech.stopped", "transcript.user")]
    result.cut_off = any(at < speech_end - 0.05 for at in stops)
    stopped = s.first("input.speech.stopped", speech_end - 0.05)
    result.waited_s = None if stopped is None else stopped - speech_end
    first_audio = s.first("reply.audio", speech_end)
    result.first_audio_s = None if first_audio is None else first_audio - speech_end
    result.transcript = " | ".join(e["text"] for _, e in s.events if e["type"] == "transcript.user")
    result.events = s.events
    await s.ws.close()
    return result


async def run_agent_case(url: str, key: str | None, case: Case, audio: np.ndarray, inject_at_s: float = 1.5) -> Result:
    s = await _open(url, key, greeting=GREETING)
    result = Result(case)
    await s.wait_for("reply.audio", 60)
    rng = np.random.default_rng(7)
    loudspeaker = _Speaker(s)
    speaker: list[np.ndarray] = []
    delay_ticks = round(case.echo_delay_s / TICK_S)
    start = time.monotonic()
    onset = start + inject_at_s + case.speech_start_s
    for i in range(int((inject_at_s + len(audio) / WIRE_RATE + 3.0) / TICK_S)):
        now = start + i * TICK_S
        speaker.append(loudspeaker.tick())
        mic = rng.standard_normal(TICK).astype(np.float32) * 0.003
        if case.echo_gain and len(speaker) > delay_ticks:
            mic += case.echo_gain * speaker[-1 - delay_ticks]
        offset = int((now - start - inject_at_s) * WIRE_RATE)
        if 0 <= offset < len(audio):
            piece = audio[offset : offset + TICK]
            mic[: len(piece)] += piece
        await s.send_pcm(mic)
        await asyncio.sleep(max(0.0, start + (i + 1) * TICK_S - time.monotonic()))
    started = s.first("input.speech.started", start)
    interrupted = s.first("reply.done", start, status="interrupted")
    result.barged_in = interrupted is not None
    if started is not None and interrupted is None:
        result.paused = True
        resumed = s.first("reply.audio", started)
        result.pause_s = None if resumed is None else resumed - started
    result.reaction_s = None if started is None else started - onset
    result.interrupted_s = None if interrupted is None else interrupted - onset
    result.events = s.events
    await s.ws.close()
    return result


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stat(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "     -       -   n=0"
    return f"{_pct(vals, 0.5):6.2f}  {_pct(vals, 0.95):6.2f}   n={len(vals)}"


def report(results: list[Result]) -> None:
    users = [r for r in results if r.case.kind in USER_KINDS]
    print("\nper case")
    for r in results:
        c = r.case
        if c.kind in USER_KINDS:
            print(
                f"  {c.id:<26} {c.source:<8} cut-off={'YES' if r.cut_off else 'no ':<3} waited={r.waited_s}"
                f" first_audio={r.first_audio_s} heard={r.transcript!r}"
            )
        else:
            print(
                f"  {c.id:<26} {c.source:<8} barge-in={'YES' if r.barged_in else 'no ':<3}"
                f" paused={'yes' if r.paused else 'no ':<3} pause={r.pause_s}"
                f" reaction={r.reaction_s} interrupted_after={r.interrupted_s}"
            )
    print("\nturn-taking summary                                   value      target")
    dictation = [r for r in users if r.case.kind in ("phone", "email", "id")]
    cut = sum(r.cut_off for r in users)
    print(
        f"  false cut-offs (all user turns)                     {cut}/{len(users)} = {cut / max(len(users), 1):.0%}"
        f"      <= 5%"
    )
    print(
        f"  cut-offs inside a number / e-mail / ID              {sum(r.cut_off for r in dictation)}/{len(dictation)}"
        f"          0"
    )
    for label, group in (
        ("real speech", [r for r in users if r.case.source == "real"]),
        ("synthetic speech", [r for r in users if r.case.source != "real"]),
    ):
        print(f"  silence the user waits, {label:<17} p50/p95 {_stat([r.waited_s for r in group])}")
    print(
        f"  end of speech → first reply.audio         p50/p95 {_stat([r.first_audio_s for r in users])}  p50 <= 1.2 s"
    )
    for kinds, label in ((("backchannel", "noise"), "backchannels + noise"), (("echo",), "echo only")):
        group = [r for r in results if r.case.kind in kinds]
        n = sum(r.barged_in for r in group)
        print(f"  false barge-in, {label:<22}              {n}/{len(group)} = {n / max(len(group), 1):.0%}      <= 5%")
        paused = [r for r in group if r.paused]
        print(
            f"    ...paused, then went on                {len(paused)}/{len(group)}; pause p50/p95"
            f" {_stat([r.pause_s for r in paused])}"
        )
    real = [r for r in results if r.case.kind in ("interrupt", "echo_user")]
    missed = sum(not r.barged_in for r in real)
    print(f"  real interruptions missed                           {missed}/{len(real)}")
    print(f"  barge-in reaction (onset → input.speech.started) p50/p95 {_stat([r.reaction_s for r in real])}  <= 0.3 s")
    print(f"  onset → reply.done interrupted                 p50/p95 {_stat([r.interrupted_s for r in real])}")
    if users:
        print(f"  mean first audio {statistics.mean(r.first_audio_s or 0 for r in users):.2f} s")


async def run_all(args: argparse.Namespace) -> list[Result]:
    directory = Path(args.set)
    cases = [c for c in load(directory) if not args.only or any(k in c.id for k in args.only.split(","))]
    results = []
    for case in cases:
        audio = _wav24k(directory / case.file)
        if case.kind in USER_KINDS:
            result = await run_user_turn(args.url, args.api_key, case, audio)
        else:
            result = await run_agent_case(args.url, args.api_key, case, audio)
        results.append(result)
        print(f"{case.id}: done", flush=True)
    return results


def main(args: argparse.Namespace) -> int:
    results = asyncio.run(run_all(args))
    report(results)
    return 0


def make_set(args: argparse.Namespace) -> int:
    from voxgate.bench.turn_set import render

    render(Path(args.set), missing_only=args.missing_only)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="ws://127.0.0.1:8000/v1/ws")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--set", default=str(DEFAULT_DIR))
    parser.add_argument("--only", default="", help="comma-separated substrings of case ids")
