"""`voxgate bench load`: how many callers one replica carries, in three setups.

N simulated callers talk at once to one spawned `voxgate serve`, each like a microphone in real
time: a question in the project's own Piper voice (synthetic speech: say so when reporting), then
silence until the agent's reply has played out, three turns a session (`--turns`). The callers'
starts are spread over `--stagger-s`, as real calls do not begin on the same millisecond. N grows
step by step (`--steps`); each step reports first-audio p50/p95 (end of the caller's speech → the
first `reply.audio`), the server's CPU (cores, and per live session) and its peak RSS, and whether
the reply audio kept up with playback (a simulated speaker that runs dry is a stall: the server fell
behind real time). One untimed warm-up session comes before the first step.

The setups:

- **a** embedded: every model in the server (Whisper, the LLM, the local voices), as `voxgate serve`
  runs by default. Two cores take about two sessions.
- **b** local recognition: VAD, end of turn and Whisper in the server; the LLM and the voice remote.
- **c** everything remote: only VAD and end of turn (which have no remote form) stay in the server.

"Remote" is `voxgate.bench.openai_stub`, spawned here: an OpenAI-compatible server that answers every
request at once with fixed text or a fixed tone, so setups b and c measure Voxgate's own cost, not a
model's. The server runs with `max_sessions` raised to the largest step, records in a temporary
directory, and (setup c) `preload` off: nothing embedded but VAD and Smart Turn is needed, and they
load in the warm-up session.

Figures, per setup: the largest N whose p95 stays within `--margin-s` (0.3 s) of the single-session
step, with no failed turn; RSS per extra session (peak RSS of the largest step minus that of the
first, over the extra sessions). Targets (issue 18, per core of this machine): every model remote,
≥ 50 sessions per core within +50 ms of the single-session p95; local recognition, ≥ 4 sessions
within 0.3 s; embedded, ≥ 2 sessions with no stalled reply and no failed turn; RSS per extra session
≤ 30 MB. The bench client and the stub share the machine with the server: their CPU is printed too.

The embedded setups load models: run them under the heavy lock on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.bench.latency import QUESTIONS, RATE, _pct, _speech
from voxgate.bench.soak import (
    SoakError,
    Target,
    Turn,
    _free_port,
    _Socket,
    exit_on_sigterm,
    rss_mb,
    speak_turn,
    wait_healthy,
)
from voxgate.session.turn_stages import STAGES

SYSTEM_PROMPT = "You are a helpful voice assistant. Answer in one short sentence."
REMOTE_VOICE = "alloy"  # one of tts_remote_voices' defaults: the stub speaks it
STALL_TOLERANCE_S = 0.05  # a speaker that runs dry for less than this is jitter, not a stall
STOP_P95_ABOVE_S = 3.0  # a step this far above the single-session p95: larger steps would only be worse
STEP_LIMIT_S = 600.0


@dataclass(frozen=True)
class Setup:
    key: str
    title: str
    steps: tuple[int, ...]  # the default N steps
    remote_llm_tts: bool
    remote_stt: bool

    @property
    def voice(self) -> str:
        return REMOTE_VOICE if self.remote_llm_tts else "joe"

    def server_env(self, stub_url: str | None, max_sessions: int, data_dir: Path) -> dict[str, str]:
        """The spawned server's settings: the setup's backends, a cap above the largest step, repeatable."""
        env = {
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "VOXGATE_LLM_TEMPERATURE": "0",
            "VOXGATE_LLM_SEED": "7",
            "VOXGATE_RESUME_WINDOW_S": "10",
            "VOXGATE_MAX_SESSIONS": str(max_sessions),
            "VOXGATE_DATA_DIR": str(data_dir),
        }
        if self.remote_llm_tts:
            assert stub_url is not None
            env |= {
                "VOXGATE_LLM_BACKEND": "openai",
                "VOXGATE_LLM_BASE_URL": stub_url,
                "VOXGATE_LLM_MODEL": "stub",
                "VOXGATE_TTS_BACKEND": "openai",
                "VOXGATE_TTS_BASE_URL": stub_url,
                "VOXGATE_DEFAULT_VOICE": REMOTE_VOICE,
            }
        if self.remote_stt:
            assert stub_url is not None
            env |= {"VOXGATE_STT_BACKEND": "openai", "VOXGATE_STT_BASE_URL": stub_url, "VOXGATE_PRELOAD": "false"}
        return env


SETUPS: dict[str, Setup] = {
    "a": Setup("a", "embedded everything (Whisper, LLM, local voice in the server)", (1, 2, 3), False, False),
    "b": Setup("b", "local recognition; LLM and TTS remote (stub)", (1, 2, 4, 6, 8), True, False),
    "c": Setup(
        "c", "everything remote (stub): VAD and end of turn in the server", (1, 10, 25, 50, 100, 150), True, True
    ),
}


# ------------------------------------------------------------------ figures (pure: unit-tested)


@dataclass
class Step:
    """One N: every turn of every caller, and what the server used meanwhile."""

    setup: str
    n: int
    turns: list[Turn] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # sessions that could not open or end cleanly
    stalls_s: list[float] = field(default_factory=list)  # per reply: seconds the simulated speaker ran dry
    duration_s: float = 0.0
    server_cpu_s: float | None = None
    mean_live: float = 0.0  # sessions open, averaged over the step's samples
    rss_start_mb: float | None = None
    rss_peak_mb: float | None = None
    client_cpu_s: float = 0.0
    stub_cpu_s: float | None = None

    def first_audio(self) -> list[float]:
        """Every turn's first audio; a turn that failed or never spoke counts as infinitely late."""
        return [t.first_audio_s if t.first_audio_s is not None and not t.failures else float("inf") for t in self.turns]

    @property
    def failed(self) -> int:
        return sum(bool(t.failures) or t.first_audio_s is None for t in self.turns) + sum(self.errors.values())

    @property
    def stalled(self) -> int:
        return sum(s > STALL_TOLERANCE_S for s in self.stalls_s)


@dataclass
class Figures:
    n: int
    turns: int
    failed: int
    p50_s: float | None
    p95_s: float | None
    server_cores: float | None
    cores_per_session: float | None
    rss_peak_mb: float | None
    stalled_replies: int
    replies: int
    client_cores: float | None
    stub_cores: float | None
    # each stage's p50 and p95 over the turns the server timed (`voxgate.turn.latency`): where a slower turn went
    stages_p50_ms: dict[str, float] = field(default_factory=dict)
    stages_p95_ms: dict[str, float] = field(default_factory=dict)


def stage_percentiles_ms(turns: Sequence[Turn], q: float) -> dict[str, float]:
    """Per stage, the nearest-rank percentile of its milliseconds over the turns that reported it."""
    out: dict[str, float] = {}
    for name in STAGES:
        value = percentile([t.stages_ms[name] for t in turns if name in t.stages_ms], q)
        if value is not None:
            out[name] = float(value)
    return out


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile (as the latency bench computes it); None for no values."""
    return _pct(list(values), q) if values else None


def figures(step: Step) -> Figures:
    firsts = step.first_audio()
    wall = step.duration_s if step.duration_s > 0 else None
    cores = step.server_cpu_s / wall if step.server_cpu_s is not None and wall else None
    return Figures(
        n=step.n,
        turns=len(step.turns),
        failed=step.failed,
        p50_s=percentile(firsts, 0.5),
        p95_s=percentile(firsts, 0.95),
        server_cores=cores,
        cores_per_session=cores / step.mean_live if cores is not None and step.mean_live > 0 else None,
        rss_peak_mb=step.rss_peak_mb,
        stalled_replies=step.stalled,
        replies=len(step.stalls_s),
        client_cores=step.client_cpu_s / wall if wall else None,
        stub_cores=step.stub_cpu_s / wall if step.stub_cpu_s is not None and wall else None,
        stages_p50_ms=stage_percentiles_ms(step.turns, 0.5),
        stages_p95_ms=stage_percentiles_ms(step.turns, 0.95),
    )


def _ordered(steps: Sequence[Step]) -> list[Step]:
    return sorted(steps, key=lambda s: s.n)


def base_p95(steps: Sequence[Step]) -> float | None:
    """The single-session figure: the p95 of the smallest step (N = 1 unless `--steps` says otherwise)."""
    ordered = _ordered(steps)
    return figures(ordered[0]).p95_s if ordered else None


def largest_within(steps: Sequence[Step], margin_s: float) -> int | None:
    """The largest N such that it and every smaller step kept p95 within `margin_s` of the smallest
    step's and failed no turn (a step that misses ends the run of passes: a larger N that passes by
    luck after it is not capacity). None: not even the smallest step passed."""
    base = base_p95(steps)
    if base is None or base == float("inf"):
        return None
    best: int | None = None
    for step in _ordered(steps):
        f = figures(step)
        if f.failed or f.p95_s is None or f.p95_s > base + margin_s:
            break
        best = step.n
    return best


def largest_real_time(steps: Sequence[Step]) -> int | None:
    """The largest N such that it and every smaller step had no stalled reply and no failed turn."""
    best: int | None = None
    for step in _ordered(steps):
        if step.failed or step.stalled or not step.turns:
            break
        best = step.n
    return best


def rss_per_extra_session(steps: Sequence[Step]) -> float | None:
    """(peak RSS of the largest step − peak RSS of the smallest) / the sessions between them, in MB."""
    measured = [s for s in _ordered(steps) if s.rss_peak_mb is not None]
    if len(measured) < 2 or measured[-1].n == measured[0].n:
        return None
    first, last = measured[0], measured[-1]
    assert first.rss_peak_mb is not None and last.rss_peak_mb is not None
    return (last.rss_peak_mb - first.rss_peak_mb) / (last.n - first.n)


def should_stop(steps: Sequence[Step]) -> bool:
    """Stop the larger steps of a setup: the last one failed half its turns or was far too slow."""
    if len(steps) < 2:
        return False
    last, base = figures(steps[-1]), base_p95(steps)
    if last.turns and last.failed * 2 >= last.turns:
        return True
    return base is not None and last.p95_s is not None and last.p95_s > base + STOP_P95_ABOVE_S


def playback_stall(chunks: Sequence[tuple[float, float]]) -> float:
    """Seconds a speaker playing the reply ran dry: `chunks` are (arrival, seconds of audio) in order,
    playback starting with the first chunk. Gaps under STALL_TOLERANCE_S are jitter."""
    stalled, end = 0.0, None
    for at, seconds in chunks:
        if end is None:
            end = at
        elif at > end:
            if at - end >= STALL_TOLERANCE_S:
                stalled += at - end
            end = at
        end += seconds
    return stalled


def targets(setup: str, steps: Sequence[Step], cores: int) -> list[Target]:
    """The issue's targets for one setup, each measured or marked not measured."""
    out: list[Target] = []
    if setup == "c":
        goal = 50 * cores
        n = largest_within(steps, 0.05)
        out.append(
            Target(
                "sessions within +50 ms of 1-session p95",
                "none" if n is None else str(n),
                f"≥ {goal}",
                None if not steps else (n or 0) >= goal,
            )
        )
    elif setup == "b":
        n = largest_within(steps, 0.3)
        out.append(
            Target(
                "sessions within +0.3 s of 1-session p95",
                "none" if n is None else str(n),
                "≥ 4",
                None if not steps else (n or 0) >= 4,
            )
        )
    elif setup == "a":
        n = largest_real_time(steps)
        out.append(
            Target(
                "sessions with no stalled reply, no failure",
                "none" if n is None else str(n),
                "≥ 2",
                None if not steps else (n or 0) >= 2,
            )
        )
    rss = rss_per_extra_session(steps)
    out.append(
        Target(
            "RSS per extra session",
            "not measured" if rss is None else f"{rss:.1f} MB",
            "≤ 30 MB",
            None if rss is None else rss <= 30.0,
        )
    )
    return out


def _num(value: float | None, fmt: str) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "inf"
    return format(value, fmt)


def step_line(step: Step) -> str:
    f = figures(step)
    per_session = None if f.cores_per_session is None else 1000 * f.cores_per_session
    return (
        f"  {f.n:4d}  {f.turns:5d} {f.failed:6d}  {_num(f.p50_s, '7.2f'):>7}  {_num(f.p95_s, '7.2f'):>7}  "
        f"{_num(f.server_cores, '6.2f'):>6}  {_num(per_session, '7.1f'):>7}  "
        f"{_num(f.rss_peak_mb, '7.0f'):>7}  {f.stalled_replies:3d}/{f.replies:<4d}  "
        f"{_num(f.client_cores, '5.2f'):>5}  {_num(f.stub_cores, '5.2f'):>5}"
    )


HEADER = (
    "     N  turns failed  p50 (s)  p95 (s)  server  mcore/   RSS MB  stalled   client stub\n"
    "                       first audio       cores  session  (peak)  replies   cores  cores"
)


def stage_lines(steps: Sequence[Step]) -> list[str]:
    """Where each step's turns spent their time, stage by stage (p50/p95 ms): what grew with N."""
    rows = [figures(s) for s in _ordered(steps)]
    if not any(f.stages_p50_ms for f in rows):
        return []
    lines = ["     N  where the time went, p50/p95 ms per stage (the server's voxgate.turn.latency):"]
    for f in rows:
        p50, p95 = f.stages_p50_ms, f.stages_p95_ms
        lines.append(f"  {f.n:4d}  " + "  ".join(f"{k} {p50[k]:.0f}/{p95[k]:.0f}" for k in STAGES if k in p50))
    return lines


def report(results: dict[str, list[Step]], cores: int, margin_s: float) -> list[str]:
    lines = [
        f"\nload: user speech is synthetic (the project's Piper voice 'joe'), streamed in real time; {cores} cores",
    ]
    for key, steps in results.items():
        setup = SETUPS[key]
        lines += [f"\nsetup {key}: {setup.title}", HEADER]
        lines += [step_line(s) for s in _ordered(steps)]
        lines += stage_lines(steps)
        n = largest_within(steps, margin_s)
        base = base_p95(steps)
        lines.append(
            f"  largest N within +{margin_s:g} s of the single-session p95 ({_num(base, '.2f')} s): "
            f"{'none' if n is None else n}"
        )
        rss = rss_per_extra_session(steps)
        lines.append(f"  RSS per extra session: {'not measured' if rss is None else f'{rss:.1f} MB'}")
        for step in _ordered(steps):
            for what, count in step.errors.most_common():
                lines.append(f"  N={step.n}: error ×{count}: {what}")
            failures = Counter(", ".join(t.failures) for t in step.turns if t.failures)
            for what, count in failures.most_common(5):
                lines.append(f"  N={step.n}: failed turn ×{count}: {what}")
        for target in targets(key, steps, cores):
            verdict = "n/a" if target.met is None else ("PASS" if target.met else "MISS")
            lines.append(f"  target: {target.name:<44} {target.value:<12} {target.goal:<8} {verdict}")
    return lines


# ------------------------------------------------------------------ processes: CPU and memory


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of `pid` (every thread) from /proc/<pid>/stat; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces; fields 3.. follow it
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _spawned(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait_http(process: subprocess.Popen[bytes], url: str, log: Path, limit_s: float) -> None:
    wait_healthy(process, url, log, limit_s)


# ------------------------------------------------------------------ the callers


class _LoadSocket(_Socket):
    """The soak bench's socket, also keeping when each `reply.audio` came and how long it plays."""

    def __init__(self, ws: Any) -> None:
        self.audio_in: dict[str, list[tuple[float, float]]] = {}
        super().__init__(ws)

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                event = json.loads(message)
                event["_at"] = time.monotonic()
                data = event.pop("data", None)
                if event.get("type") == "reply.audio" and isinstance(data, str):
                    decoded = len(data) * 3 // 4 - (len(data) - len(data.rstrip("=")))
                    self.audio_in.setdefault(str(event.get("reply_id")), []).append((event["_at"], decoded / 2 / RATE))
                self.inbox.put_nowait(event)
        except Exception:  # a drop of any kind ends reading; the turn in progress sees `closed`
            pass
        finally:
            self.closed = True

    def stalls(self) -> list[float]:
        return [playback_stall(chunks) for chunks in self.audio_in.values()]


async def _open(url: str, voice: str) -> _LoadSocket:
    import websockets

    try:
        ws = await websockets.connect(url, max_size=None, open_timeout=60)
    except Exception as exc:
        raise SoakError(f"connect: {type(exc).__name__}: {exc}") from exc
    sock = _LoadSocket(ws)
    session = {"system_prompt": SYSTEM_PROMPT, "output": {"voice": voice}, "voxgate": {"turn_latency": True}}
    await sock.send({"type": "session.update", "session": session})
    try:
        event = await sock.next_of({"session.ready", "session.error"}, 60)
    except SoakError:
        sock.abort()
        raise
    if event["type"] != "session.ready":
        sock.abort()
        raise SoakError(f"open: session.error {event.get('code')}: {event.get('message')}")
    return sock


@dataclass
class _Live:
    count: int = 0
    turns_done: int = 0


async def _caller(
    url: str, voice: str, speech: dict[str, np.ndarray], i: int, step: Step, turns: int, delay_s: float, live: _Live
) -> None:
    await asyncio.sleep(delay_s)
    try:
        sock = await _open(url, voice)
    except SoakError as exc:
        step.errors[str(exc)] += 1
        return
    live.count += 1
    try:
        for j in range(turns):
            text = QUESTIONS[(i + j) % len(QUESTIONS)]
            turn = Turn(f"{step.setup}{step.n}", j + 1, text)
            await speak_turn(sock, speech[text], turn, 1.0)
            step.turns.append(turn)
            live.turns_done += 1
            if sock.closed:
                step.errors["socket closed mid-session"] += 1
                break
    finally:
        live.count -= 1
        step.stalls_s += sock.stalls()
        if not sock.closed and (why := await sock.end()) is not None:
            step.errors[why] += 1


async def run_step(
    setup: Setup,
    n: int,
    url: str,
    speech: dict[str, np.ndarray],
    *,
    turns: int,
    stagger_s: float,
    server_pid: int,
    stub_pid: int | None,
) -> Step:
    """N callers at once; the server's CPU, RSS and the live sessions sampled every half second."""
    step = Step(setup.key, n)
    live = _Live()
    samples: list[int] = []
    cpu0, stub0, client0 = cpu_seconds(server_pid), _cpu_or_none(stub_pid), time.process_time()
    step.rss_start_mb = step.rss_peak_mb = rss_mb(server_pid)
    t0 = time.monotonic()

    async def sample() -> None:
        printed = t0
        while True:
            await asyncio.sleep(0.5)
            samples.append(live.count)
            rss = rss_mb(server_pid)
            if rss is not None:
                step.rss_peak_mb = max(step.rss_peak_mb or 0.0, rss)
            if time.monotonic() - printed >= 5.0:
                printed = time.monotonic()
                cpu = cpu_seconds(server_pid)
                cores = (cpu - cpu0) / (printed - t0) if cpu is not None and cpu0 is not None else None
                print(
                    f"  [{setup.key} N={n}] {printed - t0:5.0f} s: live {live.count:3d}, turns {live.turns_done}/"
                    f"{n * turns}, server {_num(cores, '.2f')} cores, RSS {_num(rss, '.0f')} MB",
                    flush=True,
                )

    sampler = asyncio.create_task(sample())
    try:
        callers = [_caller(url, setup.voice, speech, i, step, turns, stagger_s * i / n, live) for i in range(n)]
        await asyncio.wait_for(asyncio.gather(*callers), STEP_LIMIT_S)
    except TimeoutError:
        step.errors[f"step over {STEP_LIMIT_S:.0f} s"] += 1
    finally:
        sampler.cancel()
    step.duration_s = time.monotonic() - t0
    cpu1, stub1 = cpu_seconds(server_pid), _cpu_or_none(stub_pid)
    step.server_cpu_s = cpu1 - cpu0 if cpu1 is not None and cpu0 is not None else None
    step.stub_cpu_s = stub1 - stub0 if stub1 is not None and stub0 is not None else None
    step.client_cpu_s = time.process_time() - client0
    step.mean_live = sum(samples) / len(samples) if samples else float(n)
    return step


def _cpu_or_none(pid: int | None) -> float | None:
    return cpu_seconds(pid) if pid is not None else None


async def _warm_up(url: str, voice: str, speech: dict[str, np.ndarray]) -> None:
    """One untimed turn: lazy models load and caches fill before the single-session step is timed."""
    sock = await _open(url, voice)
    turn = Turn("warm-up", 1, QUESTIONS[0])
    await speak_turn(sock, speech[QUESTIONS[0]], turn, 1.0)
    if not sock.closed:
        await sock.end()
    if turn.failures:
        raise SoakError(f"the warm-up turn failed: {', '.join(turn.failures)}")


async def run_setup(
    setup: Setup,
    steps: Sequence[int],
    url: str,
    speech: dict[str, np.ndarray],
    *,
    turns: int,
    stagger_s: float,
    server_pid: int,
    stub_pid: int | None,
    keep_going: bool,
) -> list[Step]:
    print(f"setup {setup.key}: warm-up session ...", flush=True)
    await _warm_up(url, setup.voice, speech)
    done: list[Step] = []
    for n in steps:
        print(f"setup {setup.key}: {n} caller(s), {turns} turns each ...", flush=True)
        step = await run_step(
            setup, n, url, speech, turns=turns, stagger_s=stagger_s, server_pid=server_pid, stub_pid=stub_pid
        )
        done.append(step)
        print(HEADER + "\n" + step_line(step), flush=True)
        if not keep_going and should_stop(done):
            print(f"setup {setup.key}: stopping here (half the turns failed or p95 > +{STOP_P95_ABOVE_S:g} s)")
            break
        await asyncio.sleep(1.0)  # sessions that just ended finish their records before the next step
    return done


# ------------------------------------------------------------------ main


def parse_steps(text: str) -> tuple[int, ...]:
    """ "1,2,4" → (1, 2, 4): ascending, positive, no repeats."""
    try:
        steps = tuple(sorted({int(p) for p in text.split(",") if p.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"steps are comma-separated whole numbers, not {text!r}") from None
    if not steps or steps[0] < 1:
        raise argparse.ArgumentTypeError("steps must be positive numbers of callers")
    return steps


def parse_setting(text: str) -> tuple[str, str]:
    """ "VOXGATE_ECHO_GUARD=false" → ("VOXGATE_ECHO_GUARD", "false"); only Voxgate's own variables."""
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("VOXGATE_"):
        raise argparse.ArgumentTypeError(f"expected VOXGATE_NAME=VALUE, not {text!r}")
    return name, value


def _setups(choice: str) -> list[Setup]:
    return [SETUPS[k] for k in ("c", "b", "a")] if choice == "all" else [SETUPS[choice]]


def _stub_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    _wait_http(process, f"{base}/models", log, 60.0)


def _stats(base: str) -> dict[str, int]:
    import httpx

    try:
        body = httpx.get(base.removesuffix("/v1") + "/stats", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return {str(k): int(v) for k, v in body.items()} if isinstance(body, dict) else {}


def main(args: argparse.Namespace) -> int:
    exit_on_sigterm()  # the servers and the stub it spawns are stopped on the way out
    cores = os.cpu_count() or 1
    setups = _setups(args.setup)
    workdir = Path(tempfile.mkdtemp(prefix="voxgate-load-"))
    print(f"synthesizing {len(QUESTIONS)} questions with the Piper voice (synthetic speech) ...", flush=True)
    speech = dict(zip(QUESTIONS, _speech(QUESTIONS), strict=True))
    results: dict[str, list[Step]] = {}
    stub_counts: dict[str, dict[str, int]] = {}
    with contextlib.ExitStack() as stack:
        stub_url: str | None = None
        stub_pid: int | None = None
        if any(s.remote_llm_tts or s.remote_stt for s in setups):
            port = _free_port()
            log = workdir / "stub.log"
            stub = stack.enter_context(
                _spawned(
                    [sys.executable, "-m", "voxgate.bench.openai_stub", "--port", str(port)],
                    {"PYTHONUNBUFFERED": "1"},
                    log,
                )
            )
            stub_url, stub_pid = f"http://127.0.0.1:{port}/v1", stub.pid
            _stub_ready(stub, stub_url, log)
            print(f"OpenAI-compatible stub at {stub_url} (pid {stub_pid})", flush=True)
        for setup in setups:
            steps = args.steps or setup.steps
            data = workdir / f"data-{setup.key}"
            log = workdir / f"server-{setup.key}.log"
            env = setup.server_env(stub_url, max(steps) + 4, data) | dict(args.server_settings)
            port = _free_port()
            print(f"setup {setup.key}: starting a server ({setup.title}; log {log}) ...", flush=True)
            before = _stats(stub_url) if stub_url else {}
            with _spawned([sys.executable, "-m", "voxgate.cli", "serve", "--port", str(port)], env, log) as server:
                try:
                    _wait_http(server, f"http://127.0.0.1:{port}/health", log, 900.0)
                    results[setup.key] = asyncio.run(
                        run_setup(
                            setup,
                            steps,
                            f"ws://127.0.0.1:{port}/v1/ws",
                            speech,
                            turns=args.turns,
                            stagger_s=args.stagger_s,
                            server_pid=server.pid,
                            stub_pid=stub_pid if setup.remote_llm_tts else None,
                            keep_going=args.keep_going,
                        )
                    )
                except (RuntimeError, SoakError) as exc:
                    print(f"setup {setup.key}: {exc}", flush=True)
                    results[setup.key] = []
            if stub_url:
                after = _stats(stub_url)
                stub_counts[setup.key] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    print("\n".join(report(results, cores, args.margin_s)), flush=True)
    if args.server_settings:
        print("  server settings over the setups': " + ", ".join(f"{k}={v}" for k, v in args.server_settings))
    for key, counts in stub_counts.items():
        if SETUPS[key].remote_llm_tts:
            print(f"  stub requests in setup {key}: {counts}")
    every = [t for key, steps in results.items() for t in targets(key, steps, cores)]
    if args.json:
        figures_json = {
            "cores": cores,
            "margin_s": args.margin_s,
            "turns_per_session": args.turns,
            "speech": "synthetic (Piper voice joe), real time",
            "server_settings": dict(args.server_settings),
            "setups": {
                key: {
                    "title": SETUPS[key].title,
                    "steps": [asdict(figures(s)) | {"errors": dict(s.errors)} for s in _ordered(steps)],
                    "base_p95_s": base_p95(steps),
                    "largest_within_margin": largest_within(steps, args.margin_s),
                    "largest_real_time": largest_real_time(steps),
                    "rss_per_extra_session_mb": rss_per_extra_session(steps),
                    "stub_requests": stub_counts.get(key),
                    "targets": [asdict(t) for t in targets(key, steps, cores)],
                }
                for key, steps in results.items()
            },
        }
        Path(args.json).write_text(json.dumps(finite(figures_json), indent=1, allow_nan=False))
        print(f"figures written to {args.json}")
    return 0 if all(t.met is not False for t in every) and all(results.values()) else 1


def finite(value: Any) -> Any:
    """JSON has no infinity: a failed turn's p95 (inf) is written as the string "inf"."""
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--setup",
        choices=("a", "b", "c", "all"),
        default="all",
        help="a: embedded everything; b: local recognition, LLM and TTS remote; c: everything remote; "
        "all: c, b, then a (a and b load models: use the heavy lock on a shared machine)",
    )
    parser.add_argument(
        "--steps",
        type=parse_steps,
        default=None,
        help="comma-separated numbers of callers (default per setup: a 1,2,3; b 1,2,4,6,8; c 1,10,25,50,100,150)",
    )
    parser.add_argument("--turns", type=int, default=3, help="turns per caller's session")
    parser.add_argument("--stagger-s", type=float, default=3.0, help="callers' starts spread over this many seconds")
    parser.add_argument(
        "--margin-s", type=float, default=0.3, help="p95 allowance over the single-session step for 'largest N'"
    )
    parser.add_argument("--keep-going", action="store_true", help="run every step even after one fails badly")
    parser.add_argument(
        "--set",
        dest="server_settings",
        type=parse_setting,
        action="append",
        default=[],
        metavar="VOXGATE_NAME=VALUE",
        help="a setting of the spawned server, over the setup's (repeatable): what one feature costs, e.g. "
        "VOXGATE_ECHO_GUARD=false",
    )
    parser.add_argument("--json", default=None, help="write every figure to this file")
