"""What the echo guard spends per chunk: with remote models it was the largest share of a session's CPU
(an FFT correlation of 2.6 s of audio for every 50 ms chunk, and AEC3 on a mic that needed none)."""

from __future__ import annotations

from typing import Any

import numpy as np

from voxgate.audio import echo
from voxgate.audio.echo import ABSENT_DECIDE_EVERY_S, DECIDE_EVERY_S, EchoGuard

RATE = 16_000
CHUNK = 800  # 50 ms


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def counted(guard: EchoGuard, monkeypatch: Any) -> dict[str, int]:
    counts = {"decide": 0, "aec": 0}
    decide, cancel = guard._decide, guard._cancel

    def count_decide(now: float) -> echo.EchoState:
        counts["decide"] += 1
        return decide(now)

    def count_cancel(mic: np.ndarray, start: float) -> np.ndarray:
        counts["aec"] += 1
        return cancel(mic, start)

    monkeypatch.setattr(guard, "_decide", count_decide)
    monkeypatch.setattr(guard, "_cancel", count_cancel)
    return counts


def play_and_listen(guard: EchoGuard, clock: Clock, mic: np.ndarray) -> None:
    for i in range(0, len(mic), CHUNK):
        clock.t = 100.0 + (i + CHUNK) / RATE
        guard.process(mic[i : i + CHUNK])


def agent_voice(seconds: float) -> np.ndarray:
    return (np.random.default_rng(3).standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32)


def test_the_correlation_is_not_computed_for_every_chunk(monkeypatch: Any) -> None:
    clock, agent = Clock(), agent_voice(6.0)
    guard = EchoGuard(now=clock)
    guard.played(agent, 100.0)
    counts = counted(guard, monkeypatch)
    mic = np.zeros(4 * RATE, dtype=np.float32)
    mic[4000:] += 0.3 * agent[: len(mic) - 4000]  # the agent's voice back, 0.25 s late
    play_and_listen(guard, clock, mic)
    assert guard.state == "present"
    assert counts["decide"] <= 4.0 / DECIDE_EVERY_S + 1  # was 80: one per chunk
    assert counts["aec"] == 4 * RATE // CHUNK  # echo present: every chunk is cancelled


def test_a_clean_mic_skips_the_canceller_once_known(monkeypatch: Any) -> None:
    clock, agent = Clock(), agent_voice(8.0)
    guard = EchoGuard(now=clock)
    guard.played(agent, 100.0)
    counts = counted(guard, monkeypatch)
    mic = (np.random.default_rng(4).standard_normal(6 * RATE) * 0.003).astype(np.float32)  # a client's own AEC
    play_and_listen(guard, clock, mic)
    assert guard.state == "absent"
    chunks = 6 * RATE // CHUNK
    assert counts["aec"] < chunks / 2  # was every chunk: AEC3 whose output was never used
    assert counts["decide"] <= 2.0 / DECIDE_EVERY_S + 4.0 / ABSENT_DECIDE_EVERY_S + 2


def _far_end_by_hand(chunks: list[tuple[float, np.ndarray]], t: float, samples: int) -> np.ndarray:
    out = np.zeros(samples, dtype=np.float32)
    for start, audio in chunks:
        offset = round((t - start) * RATE)
        lo, hi = max(offset, 0), min(offset + samples, len(audio))
        if lo < hi:
            out[lo - offset : hi - offset] += audio[lo:hi]
    return out


def test_the_reference_is_looked_up_among_the_chunks_that_overlap_it() -> None:
    """`_far_end` visits only the chunks that can overlap (by start time); it must still find every one,
    chunks of any length, one played out of order, one overlapping another."""
    clock = Clock()
    guard = EchoGuard(now=clock)
    rng = np.random.default_rng(3)
    chunks: list[tuple[float, np.ndarray]] = []
    at = clock.t
    for n in [640, 320, 4000, 640, 160, 640, 2400, 640]:
        audio = rng.standard_normal(n).astype(np.float32)
        chunks.append((at, audio))
        at += n / RATE
    late = (chunks[2][0] + 0.05, rng.standard_normal(800).astype(np.float32))  # overlaps the long chunk
    for chunk in [*chunks[:5], *chunks[6:], chunks[5], late]:  # chunk 5 arrives after later ones
        guard.played(chunk[1], chunk[0])
    everything = [*chunks, late]
    for t in np.linspace(clock.t - 0.2, at + 0.2, 97):
        for samples in (160, 800, 13_000):
            assert np.array_equal(guard._far_end(float(t), samples), _far_end_by_hand(everything, float(t), samples))


def test_fast_fft_sizes_are_the_least_5_smooth_numbers_at_or_above() -> None:
    def smooth(x: int) -> bool:
        for p in (2, 3, 5):
            while x % p == 0:
                x //= p
        return x == 1

    for n in [*range(1, 3000), 41_600, 65_537]:
        size = echo._fast_len(n)
        assert size >= n and smooth(size) and not any(smooth(k) for k in range(n, size)), n
