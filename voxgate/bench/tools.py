"""`voxgate bench tools`: tool calls through the real server, spoken, scored.

Every case of bench/tool_cases.py is a fresh WebSocket session with its tool set: the context is
added as text, then the request is streamed like a microphone (the project's Piper voice, made once
and cached), and the first reply's `tool.call` events, `transcript.agent` and first `reply.audio`
are recorded. A case with a `result` answers the call and records the reply that follows.

Printed: call/no-call decisions right, arguments exactly right (of the calls to the right tool), the
agent's transcripts that hold markup (tags, brackets, JSON, code, snake_case names), and the first
audio of turns that call nothing. `--compare` runs the same cases twice on servers it starts itself,
with `VOXGATE_TOOL_GUARDS` off then on, so one command prints before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.bench.latency import CHUNK_S, RATE, _pct, _speech, read_events
from voxgate.bench.tool_cases import CASES, TOOL_SETS, ToolCase

SYSTEM_PROMPT = "You are a helpful voice assistant for a small business. Keep answers short."
_MARKUP = re.compile(r"[<>{}\[\]`]|tool_call|\b[a-z]+_[a-z_]+\b|\"\w+\":")
REPLY_TIMEOUT_S = 90
WARM_UP = "Hello."


@dataclass
class Outcome:
    case: ToolCase
    heard: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # every transcript.agent of the case
    first_audio_s: float | None = None
    then_calls: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def called(self) -> str | None:
        return self.calls[0][0] if self.calls else None

    @property
    def decision_right(self) -> bool:
        return self.called == self.case.expect

    @property
    def arguments_right(self) -> bool:
        return bool(self.calls) and all(_matches(self.calls[0][1].get(k), v) for k, v in self.case.args.items())

    @property
    def markup(self) -> int:
        return sum(1 for text in self.said if _MARKUP.search(text))


def _norm(value: Any) -> str:
    return re.sub(r"[\s.]", "", str(value)).casefold()


def _matches(got: Any, want: Any) -> bool:
    if isinstance(want, tuple):
        return any(_matches(got, w) for w in want)
    if isinstance(want, str) and want.startswith("~"):
        letters = re.sub(r"[^a-z0-9]", "", str(got).casefold())  # "Wi-Fi" has "wifi"
        return got is not None and all(w in letters for w in want[1:].split())
    return _norm(got) == _norm(want)


def _cached_speech(texts: list[str], cache: Path) -> dict[str, np.ndarray]:
    """Each text spoken once with the Piper voice, kept as 24 kHz int16 under `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, np.ndarray] = {}
    missing = []
    for text in dict.fromkeys(texts):
        path = cache / (hashlib.sha256(text.encode()).hexdigest()[:16] + ".npy")
        if path.exists():
            out[text] = np.load(path)
        else:
            missing.append((text, path))
    if missing:
        print(f"synthesizing {len(missing)} requests with the Piper voice ...", flush=True)
        for (text, path), samples in zip(missing, _speech(tuple(t for t, _ in missing)), strict=True):
            np.save(path, samples)
            out[text] = samples
    return out


async def _run_case(url: str, headers: dict[str, str], case: ToolCase, samples: np.ndarray) -> Outcome:
    import websockets

    outcome = Outcome(case)
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        inbox, reading = read_events(ws)
        try:
            session = {"system_prompt": SYSTEM_PROMPT, "tools": TOOL_SETS[case.tools]}
            await ws.send(json.dumps({"type": "session.update", "session": session}))
            while (ready := await asyncio.wait_for(inbox.get(), 120))["type"] != "session.ready":
                if "error" in ready["type"]:
                    raise RuntimeError(f"session not ready: {str(ready)[:300]}")
            for text in case.context:
                await ws.send(json.dumps({"type": "conversation.message", "role": "user", "content": text}))
            end = await _speak(ws, samples)
            done = await _reply(ws, inbox, outcome, end, first=True)
            if done and case.result is not None and outcome.calls:
                await _answer(ws, inbox, outcome, done)
        finally:
            reading.cancel()
    return outcome


async def _speak(ws: Any, samples: np.ndarray) -> float:
    """Stream `samples` in real time; the moment its last sample was sent."""
    step = int(CHUNK_S * RATE)
    start = time.monotonic()
    for i, offset in enumerate(range(0, len(samples), step)):
        chunk = samples[offset : offset + step].astype("<i2").tobytes()
        await ws.send(json.dumps({"type": "input.audio", "audio": base64.b64encode(chunk).decode()}))
        await asyncio.sleep(max(0.0, start + (i + 1) * CHUNK_S - time.monotonic()))
    return time.monotonic()


async def _reply(
    ws: Any, inbox: asyncio.Queue[dict[str, Any]], outcome: Outcome, since: float, *, first: bool
) -> list[str] | None:
    """Silence streamed until a reply is done; its events recorded. The call ids it made, or None on timeout."""
    silence = base64.b64encode(np.zeros(int(CHUNK_S * RATE), dtype="<i2").tobytes()).decode()
    deadline = since + REPLY_TIMEOUT_S
    ids: list[str] = []
    while time.monotonic() < deadline:
        await ws.send(json.dumps({"type": "input.audio", "audio": silence}))
        await asyncio.sleep(CHUNK_S)
        while not inbox.empty():
            event = inbox.get_nowait()
            kind = event["type"]
            if kind == "transcript.user" and first:
                outcome.heard = event["text"]
            elif kind == "reply.audio" and first and outcome.first_audio_s is None:
                outcome.first_audio_s = event["_at"] - since
            elif kind == "transcript.agent":
                outcome.said.append(event["text"])
            elif kind == "tool.call":
                ids.append(event["call_id"])
                if first:
                    outcome.calls.append((event["name"], event.get("arguments") or {}))
                else:
                    outcome.then_calls.append(event["name"])
            elif kind == "reply.done":
                return ids
    outcome.error = "no reply.done in time"
    return None


async def _answer(ws: Any, inbox: asyncio.Queue[dict[str, Any]], outcome: Outcome, ids: list[str]) -> None:
    case = outcome.case
    for call_id in ids:
        message = {"type": "tool.result", "call_id": call_id, "result": case.result, "is_error": case.error}
        await ws.send(json.dumps(message))
    await _reply(ws, inbox, outcome, time.monotonic(), first=False)


async def run(url: str, api_key: str | None, cases: list[ToolCase], cache: Path) -> list[Outcome]:
    """Every case, a tool set's cases together after an unscored turn that reads its prompt once
    (the first turn with a new tool set pays its prefill, ~5-20 s on 2 cores: not what is measured)."""
    speech = _cached_speech([WARM_UP, *(c.say for c in cases)], cache)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    outcomes: list[Outcome] = []
    for tools in sorted({c.tools for c in cases}):
        print(f"-- tool set {tools}: warming its prompt", flush=True)
        await _scored(url, headers, ToolCase(tools, WARM_UP, None), speech[WARM_UP])
        for case in (c for c in cases if c.tools == tools):
            outcomes.append(await _scored(url, headers, case, speech[case.say]))
            _print_case(len(outcomes), outcomes[-1])
    return outcomes


async def _scored(url: str, headers: dict[str, str], case: ToolCase, samples: np.ndarray) -> Outcome:
    try:
        return await _run_case(url, headers, case, samples)
    except Exception as exc:  # one broken case is reported, the rest still run
        return Outcome(case, error=f"{type(exc).__name__}: {exc}")


def _print_case(n: int, o: Outcome) -> None:
    mark = "ok " if o.decision_right and (not o.case.expect or o.arguments_right) else "BAD"
    audio = f"{o.first_audio_s:5.2f}s" if o.first_audio_s is not None else "   -  "
    calls = ", ".join(f"{name}{json.dumps(args)}" for name, args in o.calls) or "no call"
    then = f" then {o.then_calls}" if o.then_calls else ""
    said = " | ".join(o.said)[:90]
    print(f"{n:3d} {mark} [{o.case.tools}] {o.heard or o.case.say!r:.60} -> {calls}{then} | audio {audio} | {said!r}")
    if o.error:
        print(f"    error: {o.error}")


def _share(n: int, of: int) -> str:
    return f"{n}/{of}  ({100 * n / max(1, of):.1f} %)"


def summarize(label: str, outcomes: list[Outcome]) -> dict[str, float]:
    decided = sum(o.decision_right for o in outcomes)
    wanted = sum(1 for o in outcomes if o.case.expect)
    right_tool = [o for o in outcomes if o.case.expect and o.called == o.case.expect]
    args_right = sum(o.arguments_right for o in right_tool)
    quiet = sum(1 for o in outcomes if not o.case.expect and not o.called)
    markup = sum(o.markup for o in outcomes)
    no_tool = [v for o in outcomes if o.case.expect is None and o.called is None and (v := o.first_audio_s) is not None]
    p50, p95 = (_pct(no_tool, 0.5), _pct(no_tool, 0.95)) if no_tool else (float("nan"), float("nan"))
    print(f"\n== {label}: {len(outcomes)} cases")
    print(f"  call/no-call decisions right   {_share(decided, len(outcomes))}")
    print(f"    calls wanted, right tool     {len(right_tool)}/{wanted}")
    print(f"    no call wanted, none made    {quiet}/{len(outcomes) - wanted}")
    print(f"  arguments exactly right        {_share(args_right, len(right_tool))}")
    print(f"  transcripts with markup        {markup}")
    print(f"  first audio, no-tool turns     p50 {p50:.2f} s  p95 {p95:.2f} s  n={len(no_tool)}")
    print(f"  errors                         {sum(1 for o in outcomes if o.error)}")
    return {"decisions": decided / max(1, len(outcomes)), "markup": markup, "p50": p50}


def _with_server(guards: bool, cases: list[ToolCase], cache: Path) -> list[Outcome]:
    """The cases against a server of our own (the soak bench's: open, temperature 0, a fixed seed)."""
    from voxgate.bench.soak import spawn_server

    os.environ["VOXGATE_TOOL_GUARDS"] = str(guards).lower()
    with tempfile.TemporaryDirectory(prefix="voxgate-bench-tools-") as workdir:
        process, url, _log = spawn_server(Path(workdir), resume_window_s=5)
        try:
            return asyncio.run(run(url, None, cases, cache))
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help="a running server (default: start one, guards as the server has them)")
    p.add_argument("--api-key", default=None)
    p.add_argument("--compare", action="store_true", help="start two servers: tool guards off (before), then on")
    p.add_argument("--limit", type=int, default=0, help="only the first N cases (developing)")
    p.add_argument("--only", default=None, help="only the cases of these tool sets (comma-separated)")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "voxgate-bench-tools-speech"))


def main(args: argparse.Namespace) -> int:
    sets = set(args.only.split(",")) if args.only else None
    cases = [c for c in CASES if sets is None or c.tools in sets]
    cases = cases[: args.limit] if args.limit else cases
    cache = Path(args.cache)
    if args.url:
        summarize("this server", asyncio.run(run(args.url, args.api_key, cases, cache)))
        return 0
    runs = (
        [(False, "before: tool guards off"), (True, "after: tool guards on")]
        if args.compare
        else [(True, "tool guards on")]
    )
    figures = {label: summarize(label, _with_server(guards, cases, cache)) for guards, label in runs}
    if args.compare:
        before, after = figures[runs[0][1]], figures[runs[1][1]]
        print(f"\nlatency added on no-tool turns (first audio p50): {after['p50'] - before['p50']:+.2f} s")
    return 0
