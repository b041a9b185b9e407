"""The soak bench's figures, without a server: a wrong growth, drift or failure rule would make its
PASS/MISS lines say the opposite of what the run showed."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from voxgate.bench.soak import (
    SCRIPT,
    ChurnStats,
    Sample,
    SoakResult,
    Turn,
    classify,
    latency_drift,
    memory_growth,
    phase_growths,
    report,
    targets,
    timeline,
)


def _samples(rss: list[float], step_s: float = 60.0) -> list[Sample]:
    return [Sample(i * step_s, r, turns=i) for i, r in enumerate(rss)]


def test_growth_is_from_the_peak_of_warm_up_to_the_peak_of_the_last_quarter() -> None:
    # 20 minutes: warm-up is max(10 %, 2 min) = 2 min; the last quarter starts at 15 min.
    rss = [500.0, 1010.0, 1000.0] + [1000.0] * 12 + [1010.0, 1040.0, 1020.0, 1000.0, 1000.0, 1000.0]
    g = memory_growth(_samples(rss), 0.0, 20 * 60.0)
    assert g is not None
    assert g.warmup_s == 120.0
    assert g.rss_warm_mb == 1010.0  # a peak against a peak; the model loading before it does not count
    assert g.peak_last_quarter_mb == 1040.0
    assert g.growth == pytest.approx(30 / 1010)


def test_a_short_run_keeps_a_warm_up_of_at_most_a_quarter() -> None:
    g = memory_growth(_samples([100.0, 100.0, 100.0, 110.0], step_s=20.0), 0.0, 80.0)
    assert g is not None and g.warmup_s == 20.0 and g.growth == pytest.approx(0.10)


def test_no_growth_without_readings() -> None:
    assert memory_growth([Sample(0.0, None, 0), Sample(5.0, None, 1)], 0.0, 10.0) is None


def test_each_phase_grows_against_its_own_warm_up() -> None:
    """More sessions at once hold more memory: the churn phase's N sessions are not the long phase's growth,
    and growth inside either phase is still caught."""
    long = [1000.0] * 20  # 0..19 min, flat
    churn = [1100.0] * 10 + [1100.0] * 5 + [1160.0] * 5  # 20..39 min at N sessions, then +5.5 %
    result = SoakResult("both", "joe", 1.0, "", 40 * 60.0, 300, 1200.0, samples=_samples(long + churn))
    result.phase_spans = {"long": (0.0, 19 * 60.0), "churn": (20 * 60.0, 39 * 60.0)}
    by_phase = {g.phase: g for g in phase_growths(result)}
    assert by_phase["long"].growth == pytest.approx(0.0)
    assert by_phase["churn"].rss_warm_mb == 1100.0 and by_phase["churn"].growth == pytest.approx(60 / 1100)
    met = {t.name: t.met for t in targets(result) if "RSS" in t.name}
    assert met == {"server RSS growth after warm-up (long)": True, "server RSS growth after warm-up (churn)": False}


def test_drift_compares_the_medians_of_the_first_and_last_window() -> None:
    first_audio = [1.0] * 50 + [5.0] * 200 + [1.2] * 49 + [None]
    d = latency_drift(first_audio)
    assert d is not None and d.window == 50
    assert d.p50_first_s == 1.0
    assert d.p50_last_s == 1.2  # the unmeasured (failed) turn is left out, so the window reaches back one
    assert d.drift == pytest.approx(0.2)


def test_drift_window_shrinks_on_a_short_run() -> None:
    d = latency_drift([1.0, 1.0, 1.1, 0.9, 1.0, 1.0])
    assert d is not None and d.window == 3 and d.drift == pytest.approx(0.0)
    assert latency_drift([1.0]) is None


def _ok(reply: str = "resp_1") -> list[dict[str, object]]:
    return [
        {"type": "transcript.user", "text": "What is two plus two?"},
        {"type": "reply.started", "reply_id": reply},
        {"type": "reply.done", "reply_id": reply, "status": "completed"},
    ]


def test_a_completed_turn_has_no_failure() -> None:
    assert classify(_ok()) == []


def test_failures_are_named() -> None:
    assert classify([], timed_out=True) == ["timeout", "no transcript"]
    assert classify(_ok(), closed=True) == ["socket closed"]
    assert classify([{"type": "transcript.user", "text": "  "}]) == ["no transcript"]
    interrupted = [*_ok()[:2], {"type": "reply.done", "reply_id": "resp_1", "status": "interrupted"}]
    assert classify(interrupted) == ["reply.done interrupted"]
    assert classify([*_ok(), {"type": "session.error", "code": "audio_rate_violation"}]) == [
        "session.error audio_rate_violation"
    ]


def test_a_reply_error_counts_once_not_again_for_its_own_interrupted_ending() -> None:
    events = [
        {"type": "transcript.user", "text": "hello"},
        {"type": "reply.started", "reply_id": "resp_1"},
        {"type": "reply.error", "reply_id": "resp_1", "code": "llm_timeout"},
        {"type": "reply.done", "reply_id": "resp_1", "status": "interrupted"},
        {"type": "reply.started", "reply_id": "resp_2"},  # the server's apology
        {"type": "reply.done", "reply_id": "resp_2", "status": "completed"},
    ]
    assert classify(events) == ["reply.error llm_timeout"]


def _result(first_audio: list[float], failures: int = 0, rss: list[float] | None = None) -> SoakResult:
    rss = rss or [1000.0, 1000.0, 1000.0, 1000.0, 1010.0]
    turns = [Turn("long", i + 1, SCRIPT[i % len(SCRIPT)], first_audio_s=v) for i, v in enumerate(first_audio)]
    for t in turns[:failures]:
        t.failures = ["timeout"]
    churn = ChurnStats(sessions=3, drops=Counter(end=2, resume=1), left_connected=0, left_sessions=0)
    return SoakResult(
        "both",
        "joe",
        1.0,
        "pid 1",
        60.0 * (len(rss) - 1),
        300,
        600.0,
        samples=_samples(rss),
        long_turns=turns,
        churn=churn,
    )


def test_targets_pass_on_a_flat_run() -> None:
    result = _result([1.0] * 100 + [1.05] * 100)
    assert [t.met for t in targets(result)] == [True, True, True, True]
    text = "\n".join(report(result))
    assert text.count("PASS") == 4 and "MISS" not in text
    assert "synthetic" in text and "short run" not in text


def test_targets_miss_on_growth_failures_drift_and_leftovers() -> None:
    result = _result([1.0] * 100 + [1.5] * 100, failures=1, rss=[1000.0, 1000.0, 1000.0, 1000.0, 1200.0])
    assert result.churn is not None
    result.churn.errors["resume: session.error session_not_found"] += 1
    result.churn.left_connected = 1
    met = [t.met for t in targets(result)]
    assert met == [False, False, False, False]
    text = "\n".join(report(result))
    assert text.count("MISS") == 4
    assert "FAILED long turn 1" in text and "session_not_found" in text


def test_unmeasured_targets_are_not_passed() -> None:
    result = SoakResult("churn", "joe", 1.0, "nothing", 30.0, 12, 40.0, samples=[Sample(0.0, None, 0)])
    assert [t.met for t in targets(result)] == [None, None, None]
    assert "short run" in "\n".join(report(result))


def test_timeline_has_a_line_a_minute_and_the_last_reading() -> None:
    samples = [Sample(t, 100.0, 0) for t in range(0, 200, 5)]
    lines = timeline(samples)
    assert [line.split()[0] for line in lines] == ["0:00", "1:00", "2:00", "3:00", "3:15"]


def test_the_script_repeats_evenly_inside_the_drift_windows() -> None:
    assert 50 % len(SCRIPT) == 0 and 300 % len(SCRIPT) == 0


def test_churn_counts_reach_the_json_as_plain_counts() -> None:
    import json

    from voxgate.bench.soak import _churn_json

    stats = ChurnStats(drops=Counter(end=2, resume=1), errors=Counter({"session.end: closed 1006": 1}))
    assert json.loads(json.dumps(_churn_json(stats)))["drops"] == {"end": 2, "resume": 1}


def test_sigterm_runs_the_finally_that_stops_the_spawned_server(tmp_path: Path) -> None:
    """Killed with SIGTERM, the bench used to exit at once and leave its server running (2.8 GB each)."""
    marker = tmp_path / "stopped"
    script = f"""
import time
from voxgate.bench.soak import exit_on_sigterm
exit_on_sigterm()
try:
    print("ready", flush=True)
    time.sleep(60)
finally:
    open({str(marker)!r}, "w").write("server stopped")
"""
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 143
    assert marker.read_text() == "server stopped"
