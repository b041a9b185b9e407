"""The echo guard on real voices with a virtual clock: echo removed, the user kept, clean mics untouched."""

import numpy as np
import pytest

from voxgate.audio.echo import EchoGuard
from voxgate.audio.resample import resample
from voxgate.session.listener import ECHO_CONFIRM_VOICED_S

pytestmark = pytest.mark.slow
RATE = 16_000


@pytest.fixture(scope="module")
def voices():
    import onnxruntime

    from voxgate.backends.tts.kokoro_voice import KokoroTTS
    from voxgate.backends.tts.piper_voice import PiperTTS
    from voxgate.backends.vad.silero import SileroVAD

    # The voices sample noise in their graphs: the same take every run, as `voxgate say --seed` gives.
    onnxruntime.set_seed(1)
    piper, kokoro = PiperTTS(), KokoroTTS()
    agent = piper.synthesize(
        "Once upon a time, in a land far away, there lived a brave knight who was known for his courage, "
        "and a terrible dragon who lived in the mountains.",
        voice="joe",
    )
    user = kokoro.synthesize("Wait, stop. What time is it?", voice="jf_alpha")
    return resample(agent, piper.sample_rate, RATE), resample(user, kokoro.sample_rate, RATE), SileroVAD()


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def run(voices, *, gain: float, user_at: float | None, delay: float = 0.25) -> tuple[float, float, float]:
    """(voiced share of the echo-only stretch once the guard has decided, of the user's speech, decision time).

    Until the guard decides, the raw mic passes by design (the session defers barge-in meanwhile), so
    the echo-only share is counted from the decision on, and the decision time is returned to be bounded.
    """
    agent, user, vad = voices
    clock = Clock()
    guard = EchoGuard(now=clock)
    for i in range(0, len(agent), 1600):
        guard.played(agent[i : i + 1600], 100.0 + i / RATE)
    n = 7 * RATE
    mic = np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.003
    d = int(delay * RATE)
    mic[d : d + len(agent)] += gain * agent[: n - d]
    if user_at is not None:
        mic[int(user_at * RATE) : int(user_at * RATE) + len(user)] += user
    out, decided = [], None
    for i in range(0, n, 800):
        clock.t = 100.0 + (i + 800) / RATE
        out.append(guard.process(mic[i : i + 800]))
        if decided is None and guard.state != "unknown":
            decided = (i + 800) / RATE
    assert decided is not None
    processed = np.concatenate(out)
    stream = vad.new_stream()
    voiced = np.array([stream.probability(processed[i : i + 512]) > 0.5 for i in range(0, n - 512, 512)])
    start = int((user_at or 2.5) * RATE / 512)
    end = start + len(user) // 512
    return float(voiced[int(decided * RATE / 512) + 1 : start].mean()), float(voiced[start:end].mean()), decided


@pytest.mark.parametrize("gain", [0.05, 0.1, 0.3, 0.6])
def test_echo_alone_is_not_speech(voices, gain: float) -> None:
    echo_voiced, _, decided = run(voices, gain=gain, user_at=None)
    assert echo_voiced < 0.03 and decided < 0.25 + 0.5  # known as echo within 0.5 s of reaching the mic


@pytest.mark.parametrize("gain", [0.0, 0.3, 0.6])
def test_the_user_is_heard_over_the_echo_and_on_a_clean_mic(voices, gain: float) -> None:
    echo_voiced, user_voiced, _ = run(voices, gain=gain, user_at=2.5)
    assert echo_voiced < 0.03 and user_voiced > 0.4


def test_no_playback_means_the_mic_passes_untouched() -> None:
    guard = EchoGuard()
    mic = np.random.default_rng(1).standard_normal(1600).astype(np.float32) * 0.1
    assert guard.process(mic) is mic


def confirmations(
    voices, *, gain: float, restart_late_s: float, user_at: float | None = None
) -> list[tuple[float, bool]]:
    """The agent's reply plays in two parts with a 0.5 s gap; the client starts the second part
    `restart_late_s` later than the server places it (its buffer ran dry and took that long to refill).
    The mic is streamed through the guard and Silero as the session does. Returned: each time
    ECHO_CONFIRM_VOICED_S of voice, counted afresh, would have confirmed a barge-in, and whether the guard
    then called the mic echo only."""
    agent, user, vad = voices
    first, rest = agent[: int(1.2 * RATE)], agent[int(1.2 * RATE) :]
    clock = Clock()
    guard = EchoGuard(now=clock)
    resumes_at = 1.2 + 0.5
    for part, at in ((first, 0.0), (rest, resumes_at)):
        for i in range(0, len(part), 1600):
            guard.played(part[i : i + 1600], 100.0 + at + i / RATE)
    n = 7 * RATE
    rng = np.random.default_rng(0)
    mic = rng.standard_normal(n).astype(np.float32) * 0.003
    d = int(0.25 * RATE)
    mic[d : d + len(first)] += gain * first
    late = d + int((resumes_at + restart_late_s) * RATE)
    mic[late : late + len(rest)] += gain * rest[: n - late]
    if user_at is not None:
        mic[int(user_at * RATE) : int(user_at * RATE) + len(user)] += user
    stream, pending, voiced, found = vad.new_stream(), np.zeros(0, np.float32), 0, []
    for i in range(0, n, 800):
        clock.t = 100.0 + (i + 800) / RATE
        pending = np.concatenate([pending, guard.process(mic[i : i + 800])])
        while len(pending) >= 512:
            voiced += stream.probability(pending[:512]) > 0.5
            pending = pending[512:]
            if voiced * 512 / RATE >= ECHO_CONFIRM_VOICED_S:
                found.append(((i + 800) / RATE, guard.echo_only()))
                voiced = 0
    return found


@pytest.mark.parametrize("restart_late_s", [0.1, 0.2])
def test_residual_echo_after_a_late_playback_restart_is_known_as_echo_only(voices, restart_late_s: float) -> None:
    # AEC3 takes about a second to follow the jump in delay: what it leaves is read as voice ...
    found = [(t, only) for t, only in confirmations(voices, gain=0.5, restart_late_s=restart_late_s) if t > 1.0]
    assert found, "the late restart left no residual echo that looks like voice: the test shows nothing"
    # ... and each time it would have confirmed a barge-in, the mic holds nothing but the agent.
    assert all(only for _, only in found), found


@pytest.mark.parametrize("restart_late_s", [0.0, 0.1])
@pytest.mark.parametrize("gain", [0.3, 0.6, 1.0])
def test_the_user_talking_over_the_echo_is_not_called_echo_only(voices, gain: float, restart_late_s: float) -> None:
    found = confirmations(voices, gain=gain, restart_late_s=restart_late_s, user_at=2.0)
    users = [only for t, only in found if 2.0 < t < 2.0 + len(voices[1]) / RATE]
    assert users and not users[0], found
