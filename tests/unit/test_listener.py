"""The listener's decision rules, driven by a scripted VAD (no model, no clock: audio is the clock)."""

import itertools

import numpy as np
import pytest

from voxgate.protocol.events import TurnDetection
from voxgate.session.listener import (
    CHECK_AHEAD_S,
    CONFIRM_VOICED_S,
    ECHO_CONFIRM_VOICED_S,
    SPECULATE_AFTER_S,
    Listener,
    NoiseEnd,
    PartialDue,
    Pause,
    SpeechConfirmed,
    SpeechStart,
    TurnEnd,
    VoiceResumed,
)
from voxgate.session.turn_timing import TurnTiming

FRAME = 512
FRAME_S = FRAME / 16_000


class ScriptedVad:
    """Frames whose first sample is 1.0 are speech."""

    frame_samples = FRAME

    def probability(self, frame: np.ndarray) -> float:
        return 0.9 if frame[0] > 0.5 else 0.02

    def reset(self) -> None:
        pass


def frames(seconds: float, speech: bool) -> np.ndarray:
    audio = np.zeros(round(seconds / FRAME_S) * FRAME, dtype=np.float32)
    if speech:
        audio[::FRAME] = 1.0
    return audio


async def run(listener: Listener, script: list[tuple[float, bool]]) -> list[tuple[float, object]]:
    events: list[tuple[float, object]] = []
    t = 0.0
    for seconds, speech in script:
        audio = frames(seconds, speech)
        for i in range(0, len(audio), FRAME):
            t += FRAME_S
            for ev in await listener.feed(audio[i : i + FRAME]):
                events.append((round(t, 3), ev))
    return events


def make(check=None, **turn) -> Listener:
    timing = TurnTiming.of(TurnDetection(**turn))
    return Listener(ScriptedVad(), turn_detection=lambda: timing, end_of_turn=check, partial_interval_s=0.5)


async def test_turn_ends_at_min_silence_when_the_model_says_complete() -> None:
    async def complete(audio, silence_s, late):
        return True

    events = await run(make(complete, min_silence=600, max_silence=1500), [(0.5, False), (1.5, True), (2.0, False)])
    kinds = [type(e).__name__ for _, e in events]
    assert kinds[0] == "SpeechStart" and kinds[-1] == "TurnEnd"
    end_t = events[-1][0]
    assert 2.0 + 0.6 - FRAME_S <= end_t <= 2.0 + 0.6 + 2 * FRAME_S
    turn = events[-1][1]
    assert isinstance(turn, TurnEnd) and turn.voiced_s > 1.3
    assert len(turn.audio) / 16_000 < 1.5 + 0.3 + 0.35 + 0.1  # preroll + speech + kept trailing silence


async def test_incomplete_turn_waits_for_max_silence() -> None:
    async def incomplete(audio, silence_s, late):
        return False

    events = await run(make(incomplete, min_silence=600, max_silence=1500), [(1.0, True), (2.0, False)])
    end_t = next(t for t, e in events if isinstance(e, TurnEnd))
    assert 1.0 + 1.5 - FRAME_S <= end_t <= 1.0 + 1.5 + 2 * FRAME_S


async def test_a_second_check_comes_halfway_to_max_silence() -> None:
    checks: list[tuple[float, bool]] = []

    async def whole_words_late(audio, silence_s, late):
        checks.append((silence_s, late))
        return late

    events = await run(make(whole_words_late, min_silence=600, max_silence=1500), [(1.0, True), (2.0, False)])
    end_t = next(t for t, e in events if isinstance(e, TurnEnd))
    assert [late for _, late in checks] == [False, True]
    # The first check is asked ahead of min_silence (its answer is due there), the late one at its time.
    assert abs(checks[0][0] - (0.6 - CHECK_AHEAD_S)) <= FRAME_S and abs(checks[1][0] - 1.05) <= FRAME_S
    assert 1.0 + 1.05 - FRAME_S <= end_t <= 1.0 + 1.05 + 2 * FRAME_S


async def test_a_check_asked_ahead_is_dropped_when_the_user_goes_on() -> None:
    """The check said "complete" for the audio before min_silence, but the user spoke again before
    min_silence: that answer is stale, and the turn goes on until the next silence."""
    asked: list[float] = []

    async def complete(audio, silence_s, late):
        asked.append(silence_s)
        return True

    gap = 0.6 - CHECK_AHEAD_S / 2  # past the point the check is asked, short of min_silence
    events = await run(make(complete, min_silence=600), [(1.0, True), (gap, False), (0.5, True), (1.0, False)])
    ends = [t for t, e in events if isinstance(e, TurnEnd)]
    assert len(ends) == 1 and asked  # (the first check, dropped before it ran, never asked anything)
    assert 1.0 + gap + 0.5 + 0.6 - FRAME_S <= ends[0] <= 1.0 + gap + 0.5 + 0.6 + 2 * FRAME_S


async def test_pause_shorter_than_min_silence_keeps_one_turn() -> None:
    events = await run(make(None, min_silence=600), [(1.0, True), (0.4, False), (1.0, True), (1.0, False)])
    assert sum(isinstance(e, SpeechStart) for _, e in events) == 1
    assert sum(isinstance(e, TurnEnd) for _, e in events) == 1


async def test_short_burst_is_noise_not_a_turn() -> None:
    events = await run(make(None), [(0.13, True), (1.0, False)])
    assert [type(e) for _, e in events if not isinstance(e, Pause)] == [SpeechStart, NoiseEnd]


async def test_speech_is_confirmed_after_confirm_voiced_s_of_voice() -> None:
    events = await run(make(None), [(0.5, False), (0.6, True), (1.0, False)])
    start = next(t for t, e in events if isinstance(e, SpeechStart))
    confirmed = next(t for t, e in events if isinstance(e, SpeechConfirmed))
    assert CONFIRM_VOICED_S - FRAME_S <= confirmed - (start - 3 * FRAME_S) <= CONFIRM_VOICED_S + FRAME_S
    short = await run(make(None), [(0.15, True), (1.0, False)])
    assert not any(isinstance(e, SpeechConfirmed) for _, e in short)


async def test_a_pause_is_announced_once_per_silence() -> None:
    events = await run(make(None, min_silence=800), [(1.0, True), (0.5, False), (1.0, True), (1.0, False)])
    pauses = [(t, e) for t, e in events if isinstance(e, Pause)]
    assert len(pauses) == 2
    assert pauses[0][1].voiced_frames < pauses[1][1].voiced_frames  # the second pause has more speech
    assert abs(pauses[0][0] - (1.0 + SPECULATE_AFTER_S)) <= 2 * FRAME_S


async def test_voice_after_a_pause_is_announced_so_what_was_guessed_there_is_dropped() -> None:
    events = await run(make(None, min_silence=800), [(1.0, True), (0.5, False), (1.0, True), (1.0, False)])
    kinds = [type(e) for _, e in events if not isinstance(e, PartialDue)]
    assert kinds == [SpeechStart, SpeechConfirmed, Pause, VoiceResumed, Pause, TurnEnd]
    resumed = next(t for t, e in events if isinstance(e, VoiceResumed))
    assert abs(resumed - (1.5 + FRAME_S)) <= FRAME_S  # the first voiced frame after the silence
    silent_end = await run(make(None), [(1.0, True), (2.0, False), (0.5, False)])
    assert not any(isinstance(e, VoiceResumed) for _, e in silent_end)  # the turn's end is not a resumption


async def test_partials_are_due_while_speaking() -> None:
    events = await run(make(None), [(2.2, True), (1.0, False)])
    partial_times = [t for t, e in events if isinstance(e, PartialDue)]
    assert len(partial_times) >= 3
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(partial_times))


@pytest.mark.parametrize("threshold", [0.95])
async def test_threshold_above_the_speech_probability_hears_nothing(threshold: float) -> None:
    events = await run(make(None, vad_threshold=threshold), [(2.0, True), (1.0, False)])
    assert events == []


async def test_over_echo_a_barge_in_needs_more_voice() -> None:
    segments = [(0.5, False), (0.3, True), (1.0, False)]
    assert any(isinstance(e, SpeechConfirmed) for _, e in await run(make(None), segments))
    over_echo = make(None)
    over_echo.confirm_voiced_s = ECHO_CONFIRM_VOICED_S
    assert not any(isinstance(e, SpeechConfirmed) for _, e in await run(over_echo, segments))


class ProbabilityVad:
    """Each frame's first sample is its speech probability."""

    frame_samples = FRAME

    def probability(self, frame: np.ndarray) -> float:
        return float(frame[0])

    def reset(self) -> None:
        pass


async def _onset_of(probabilities: list[float]) -> int | None:
    """The frame at which speech started, if it did."""
    timing = TurnTiming.of(TurnDetection())
    listener = Listener(ProbabilityVad(), turn_detection=lambda: timing, end_of_turn=None, partial_interval_s=0.5)
    for i, p in enumerate(probabilities):
        frame = np.zeros(FRAME, dtype=np.float32)
        frame[0] = p
        if any(isinstance(ev, SpeechStart) for ev in await listener.feed(frame)):
            return i
    return None


async def test_weak_frames_between_voiced_ones_continue_the_onset() -> None:
    # A phone line's first words hover around the threshold: 0.6, 0.4, 0.45, 0.8, 0.4, 0.7 is speech.
    started = await _onset_of([0.02] * 12 + [0.6, 0.4, 0.45, 0.8, 0.4, 0.7])
    assert started == 17


async def test_weak_frames_alone_never_start_speech_and_a_long_weak_run_restarts_the_count() -> None:
    assert (await _onset_of([0.02] * 5 + [0.4] * 30)) is None
    assert (await _onset_of([0.02] * 5 + [0.6] + [0.4] * 10 + [0.6, 0.4, 0.6])) is None
    assert (await _onset_of([0.02] * 5 + [0.6, 0.6] + [0.2] + [0.6])) is None  # a clear gap restarts it


def test_turn_timing_is_adaptive_with_both_silences_unset_and_fixed_with_either_set() -> None:
    adaptive = TurnTiming.of(TurnDetection())
    assert (adaptive.min_silence, adaptive.late_check_ms, adaptive.max_silence) == (600, 1000, 3000)
    only_min = TurnTiming.of(TurnDetection(min_silence=800))  # the unset one takes the launch value
    assert (only_min.min_silence, only_min.late_check_ms, only_min.max_silence) == (800, 1150, 1500)
    only_max = TurnTiming.of(TurnDetection(max_silence=2000))
    assert (only_max.min_silence, only_max.late_check_ms, only_max.max_silence) == (600, 1300, 2000)
    raised = TurnTiming.of(TurnDetection(min_silence=2000))  # max_silence is raised to at least min_silence
    assert (raised.min_silence, raised.max_silence) == (2000, 2000)
    exact = TurnTiming.of(TurnDetection(min_silence=1000, max_silence=3000))
    assert (exact.min_silence, exact.max_silence) == (1000, 3000)  # a client's numbers, exactly
    assert TurnTiming.of(TurnDetection(type="server_vad")).silence_only


async def test_adaptive_pacing_checks_at_600_and_1000_ms_and_waits_up_to_3_s() -> None:
    checks: list[tuple[float, bool]] = []

    async def unfinished(audio, silence_s, late):  # a dictated number still going: never complete
        checks.append((silence_s, late))
        return False

    events = await run(make(unfinished), [(1.0, True), (4.0, False)])
    end_t = next(t for t, e in events if isinstance(e, TurnEnd))
    assert [late for _, late in checks] == [False, True]
    assert abs(checks[0][0] - (0.6 - CHECK_AHEAD_S)) <= FRAME_S and abs(checks[1][0] - 1.0) <= FRAME_S
    assert 1.0 + 3.0 - FRAME_S <= end_t <= 1.0 + 3.0 + 2 * FRAME_S

    async def complete_late(audio, silence_s, late):  # words that read as complete by about 1 s
        return late

    events = await run(make(complete_late), [(1.0, True), (4.0, False)])
    end_t = next(t for t, e in events if isinstance(e, TurnEnd))
    assert 1.0 + 1.0 - FRAME_S <= end_t <= 1.0 + 1.0 + 2 * FRAME_S


class StatefulVad:
    """A detector whose answer depends on its state, as Silero's LSTM does: every 7th frame since the last
    reset reads as silence. `probabilities` scores several frames in one call, like SileroVadStream's."""

    frame_samples = FRAME

    def __init__(self) -> None:
        self.since_reset = 0
        self.calls: list[int] = []  # frames per call

    def _score(self, frame: np.ndarray) -> float:
        self.since_reset += 1
        return 0.9 if frame[0] > 0.5 and self.since_reset % 7 != 3 else 0.02

    def probability(self, frame: np.ndarray) -> float:
        self.calls.append(1)
        return self._score(frame)

    def probabilities(self, frames: list[np.ndarray]) -> list[float]:
        self.calls.append(len(frames))
        return [self._score(f) for f in frames]

    def reset(self) -> None:
        self.since_reset = 0


async def _events_fed_by(chunk_frames: int, vad: StatefulVad) -> list[tuple[int, str]]:
    timing = TurnTiming.of(TurnDetection(min_silence=300, max_silence=600))
    listener = Listener(vad, turn_detection=lambda: timing, end_of_turn=None, partial_interval_s=0.5)
    script = [(0.3, False), (0.8, True), (0.7, False), (0.5, True), (0.9, False), (0.6, True), (1.0, False)]
    audio = np.concatenate([frames(seconds, speech) for seconds, speech in script])
    out: list[tuple[int, str]] = []
    step = chunk_frames * FRAME
    for offset in range(0, len(audio), step):
        for event in await listener.feed(audio[offset : offset + step]):
            out.append((offset // FRAME, type(event).__name__))
    return out


async def test_frames_scored_together_give_the_events_of_frames_scored_one_by_one() -> None:
    """A chunk's frames are scored in one call; when an utterance ends inside the chunk (the detector is
    reset), the frames after it are scored again from the reset state, as one call a frame would."""
    one_by_one = await _events_fed_by(1, StatefulVad())
    together = StatefulVad()
    events = [(frame // 5 * 5, kind) for frame, kind in await _events_fed_by(5, together)]
    assert [kind for _, kind in events] == [kind for _, kind in one_by_one]
    assert sum(isinstance(k, str) and k == "TurnEnd" for _, k in one_by_one) == 3
    assert [f for f, _ in events] == [f // 5 * 5 for f, _ in one_by_one]
    assert max(together.calls) == 5  # several frames a call
