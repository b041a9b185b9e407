"""The load bench's figures and step rules, without a server: a wrong percentile, capacity rule or
stall count would make its "largest N" and PASS/MISS lines say the opposite of what the run showed."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import pytest

from voxgate.bench.load import (
    SETUPS,
    STALL_TOLERANCE_S,
    Step,
    base_p95,
    cpu_seconds,
    figures,
    finite,
    largest_real_time,
    largest_within,
    parse_setting,
    parse_steps,
    percentile,
    playback_stall,
    report,
    rss_per_extra_session,
    should_stop,
    stage_lines,
    targets,
)
from voxgate.bench.soak import Turn, stage_durations_ms


def _step(n: int, firsts: list[float | None], *, rss: float | None = None, stalls: list[float] | None = None) -> Step:
    turns = [Turn("t", i + 1, "q", first_audio_s=f) for i, f in enumerate(firsts)]
    return Step("c", n, turns=turns, rss_peak_mb=rss, stalls_s=stalls or [0.0] * len(firsts))


def test_percentiles_are_nearest_rank_and_a_failed_turn_counts_as_infinitely_late() -> None:
    values = [0.1 * i for i in range(1, 21)]  # 0.1 .. 2.0
    assert percentile(values, 0.5) == pytest.approx(1.1)  # round(0.5 * 19) = 10 → the 11th value
    assert percentile(values, 0.95) == pytest.approx(1.9)
    assert percentile([], 0.95) is None
    step = _step(1, [0.5] * 18 + [None, None])
    assert step.failed == 2
    assert figures(step).p95_s == float("inf")  # two silent turns in twenty make the p95, never dropped
    assert figures(_step(1, [0.5] * 19 + [None])).p95_s == 0.5  # one in twenty is only the maximum
    failed = _step(1, [0.5, 0.6])
    failed.turns[1].failures = ["reply.error agent_timeout"]
    assert figures(failed).p95_s == float("inf") and failed.failed == 1


def test_largest_within_stops_at_the_first_step_that_misses() -> None:
    steps = [
        _step(1, [0.50, 0.55]),
        _step(2, [0.52, 0.80]),  # p95 0.80: within 0.3 s of 0.55
        _step(4, [0.60, 0.90]),  # 0.90 > 0.85: the first miss
        _step(8, [0.50, 0.55]),  # a pass after a miss is luck, not capacity
    ]
    assert base_p95(steps) == pytest.approx(0.55)
    assert largest_within(steps, 0.3) == 2
    assert largest_within(steps, 0.05) == 1
    assert largest_within(list(reversed(steps)), 0.3) == 2  # order of the list does not matter


def test_a_failed_turn_or_session_error_ends_the_run_of_passes() -> None:
    ok, bad = _step(1, [0.5, 0.5]), _step(2, [0.5, 0.5])
    bad.errors["connect: OSError"] += 1
    assert largest_within([ok, bad], 0.3) == 1
    assert largest_within([_step(1, [None])], 0.3) is None  # the single session itself failed


def test_playback_stall_counts_the_seconds_the_speaker_ran_dry() -> None:
    # 0.5 s chunks arriving every 0.5 s from t=0: never dry.
    assert playback_stall([(0.5 * i, 0.5) for i in range(6)]) == 0.0
    # Audio ahead of time (the server's lead): never dry either.
    assert playback_stall([(0.0, 1.0), (0.1, 1.0), (0.2, 1.0)]) == 0.0
    # The third chunk is 0.7 s late: the speaker waited 0.7 s.
    assert playback_stall([(0.0, 0.5), (0.5, 0.5), (1.7, 0.5)]) == pytest.approx(0.7)
    # Jitter under the tolerance is not a stall.
    assert playback_stall([(0.0, 0.5), (0.5 + STALL_TOLERANCE_S / 2, 0.5)]) == 0.0
    assert playback_stall([]) == 0.0


def test_real_time_capacity_needs_no_stall_and_no_failure() -> None:
    steps = [_step(1, [1.0]), _step(2, [1.5], stalls=[0.0]), _step(3, [2.0], stalls=[0.4])]
    assert largest_real_time(steps) == 2
    assert steps[2].stalled == 1


def test_rss_per_extra_session_is_from_the_smallest_to_the_largest_step() -> None:
    steps = [_step(1, [0.5], rss=800.0), _step(4, [0.5], rss=830.0), _step(10, [0.5], rss=872.0)]
    assert rss_per_extra_session(steps) == pytest.approx(8.0)  # (872 - 800) / 9
    assert rss_per_extra_session(steps[:1]) is None
    assert rss_per_extra_session([_step(1, [0.5]), _step(2, [0.5])]) is None  # not sampled


def test_cpu_and_sessions_per_core_come_from_the_step_figures() -> None:
    step = _step(10, [0.5] * 10)
    step.duration_s, step.server_cpu_s, step.mean_live = 20.0, 10.0, 8.0
    f = figures(step)
    assert f.server_cores == pytest.approx(0.5)
    assert f.cores_per_session == pytest.approx(0.5 / 8)  # per session live on average, not per N


def test_a_setup_stops_when_a_step_fails_half_its_turns_or_is_far_too_slow() -> None:
    base = _step(1, [0.5, 0.5])
    assert not should_stop([base])
    assert not should_stop([base, _step(10, [0.6, 1.0])])
    assert should_stop([base, _step(25, [6.0, 8.0])])
    assert should_stop([base, _step(25, [0.5, None])])


def test_targets_per_setup() -> None:
    remote = [_step(1, [0.50], rss=250.0)] + [_step(n, [0.52], rss=250.0 + n) for n in (50, 100)]
    c = {t.name: t for t in targets("c", remote, cores=2)}
    assert c["sessions within +50 ms of 1-session p95"].met is True
    assert c["RSS per extra session"].met is True
    assert {t.name: t for t in targets("c", remote, cores=4)}["sessions within +50 ms of 1-session p95"].met is False
    b = targets("b", [_step(1, [0.9]), _step(2, [1.0]), _step(4, [1.5])], cores=2)
    assert b[0].value == "2" and b[0].met is False
    a = targets("a", [_step(1, [1.0]), _step(2, [1.8])], cores=2)
    assert a[0].met is True  # embedded: real time, not the 0.3 s margin
    assert all(t.met is None for t in targets("b", [], cores=2))  # nothing measured: never passed


def test_report_lines_and_json_figures(tmp_path: Path) -> None:
    steps = [_step(1, [0.5, None], rss=250.0), _step(2, [0.5, 0.6], rss=252.0)]
    steps[0].errors = Counter({"open: session.error server_error": 1})
    text = "\n".join(report({"c": steps}, cores=2, margin_s=0.3))
    assert "setup c" in text and "inf" in text and "error ×1: open: session.error server_error" in text
    assert "largest N within +0.3 s of the single-session p95 (inf s): none" in text
    out = tmp_path / "f.json"
    out.write_text(json.dumps(finite({"p95": float("inf"), "steps": [{"x": 1.0}]}), allow_nan=False))
    assert json.loads(out.read_text()) == {"p95": "inf", "steps": [{"x": 1.0}]}


def test_steps_and_settings_arguments() -> None:
    assert parse_steps("4, 1,2,2") == (1, 2, 4)
    for bad in ("", "0,1", "a,b"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_steps(bad)
    assert parse_setting("VOXGATE_ECHO_GUARD=false") == ("VOXGATE_ECHO_GUARD", "false")
    for bad in ("ECHO_GUARD=false", "VOXGATE_X"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_setting(bad)


def test_the_setups_configure_what_they_say(tmp_path: Path) -> None:
    a = SETUPS["a"].server_env(None, 7, tmp_path)
    assert a["VOXGATE_MAX_SESSIONS"] == "7" and "VOXGATE_LLM_BACKEND" not in a and SETUPS["a"].voice == "joe"
    b = SETUPS["b"].server_env("http://stub/v1", 12, tmp_path)
    assert b["VOXGATE_LLM_BASE_URL"] == b["VOXGATE_TTS_BASE_URL"] == "http://stub/v1"
    assert "VOXGATE_STT_BACKEND" not in b and SETUPS["b"].voice == "alloy"
    c = SETUPS["c"].server_env("http://stub/v1", 12, tmp_path)
    assert c["VOXGATE_STT_BACKEND"] == "openai" and c["VOXGATE_PRELOAD"] == "false"


def test_cpu_seconds_of_this_process_grow_with_work() -> None:
    import os

    before = cpu_seconds(os.getpid())
    assert before is not None
    sum(i * i for i in range(2_000_000))
    after = cpu_seconds(os.getpid())
    assert after is not None and after > before
    assert cpu_seconds(2**22 + 12345) is None  # no such process


def test_stage_figures_come_from_the_servers_latency_events() -> None:
    """Where the time went: each stage's own length from the event, percentiles over the turns that have it."""
    event = {
        "type": "voxgate.turn.latency",
        "stages": [
            {"name": "end_of_turn", "start_ms": 0, "end_ms": 700},
            {"name": "transcript", "start_ms": 700, "end_ms": 710},
            {"name": "llm_first_token", "start_ms": "x", "end_ms": 800},  # unreadable: left out
        ],
    }
    assert stage_durations_ms(event) == {"end_of_turn": 700, "transcript": 10}
    turns = [Turn("t", i + 1, "q", first_audio_s=1.0, stages_ms={"end_of_turn": ms}) for i, ms in enumerate([600, 900])]
    turns.append(Turn("t", 3, "q", first_audio_s=1.0))  # a turn the server did not time
    step = Step("b", 4, turns=turns)
    f = figures(step)
    assert f.stages_p50_ms == {"end_of_turn": 600.0} and f.stages_p95_ms == {"end_of_turn": 900.0}
    assert stage_lines([step])[1].split() == ["4", "end_of_turn", "600/900"]
    assert stage_lines([Step("b", 1, turns=[Turn("t", 1, "q", first_audio_s=1.0)])]) == []  # nothing timed
