"""Echo guard: remove the agent's own voice from the microphone before anything listens to it.

Terminal and phone clients without echo cancellation send the agent's reply back, delayed,
attenuated and noisy. The server knows exactly what it sent and when the client plays it (the
playback clock), so it can run a real acoustic echo canceller: WebRTC's AEC3, through the
`livekit` package's AudioProcessingModule (a maintained binding; we do not write an AEC). The
reference fed to it is the reply audio placed on the wall-clock timeline of playback; AEC3 estimates
the rest of the echo path delay itself.

Outside the agent's playback (plus a tail for the room's echo) the microphone passes untouched, so
ordinary turns are transcribed from the raw audio. During playback, the canceller's output is used
only while echo is actually present (the mic correlates with what is playing): clients that already
cancel echo (browsers, phones) send a clean mic, and AEC3 would otherwise suppress the very user who
is trying to barge in. Once the mic is known to be clean, it is not run through the canceller at all (its
output would not be used), and is looked at again every ABSENT_DECIDE_EVERY_S.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

import numpy as np
from livekit import rtc

from voxgate.audio.types import ANALYSIS_RATE, Audio

log = logging.getLogger("voxgate.echo")

FRAME = ANALYSIS_RATE // 100  # AEC3 works on 10 ms frames
TAIL_S = 1.0  # keep cancelling this long after the last reply audio was played
MAX_DELAY_S = 1.0  # echo path delays (plus network lateness) searched when deciding whether echo is present
REANCHOR_S = 0.5  # mic audio this much later than its place on the clock starts a new stretch
WINDOW_S = 0.8  # mic audio compared with the reference
MIN_WINDOW_S = 0.3  # the least mic audio worth a decision
ECHO_CORRELATION = 0.4  # normalized cross-correlation (whitened) above which the mic carries the agent's voice
ECHO_KEEP_CORRELATION = 0.25  # once present, echo under the user's own voice (double talk) still counts
# The mic holds the agent's echo and nothing else: voice left in the cancelled audio is residual echo, not
# the user. A user adds a voice the reference lacks, which lowers the mic's correlation with it (the
# normalized cross-correlation double-talk detector). Real voices: echo alone 0.98; echo with the user
# talking at most 0.86, with the echo as loud as the user's voice (tests/unit/test_echo_guard.py).
ECHO_ONLY_CORRELATION = 0.92
ECHO_ONLY_WINDOW_S = 0.3
# A peak staying at one delay from decision to decision is no extra proof of echo: the windows overlap,
# so a chance peak between the user's voice and the agent's stays put too (seen at 0.23 then 0.22).
ECHO_HOLD_S = 1.0  # once seen, treat echo as present this long
PRE_EMPHASIS = 0.95  # whitening: speech is mostly low-frequency energy, which correlates by chance
# The correlation is one FFT product of 2.6 s of audio (~3 ms): done for every 50 ms chunk it cost a
# session ~60 millicores while the agent spoke, the largest share of a session's CPU with remote models.
DECIDE_EVERY_S = 0.2
# A mic known to be clean (the client cancels echo: browsers, phones) is not run through AEC3, whose
# output would not be used, and is looked at less often: echo that appears later is found within this.
ABSENT_DECIDE_EVERY_S = 0.6

EchoState = Literal["none", "unknown", "present", "absent"]


class EchoGuard:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
        self._now = now
        self._far: deque[tuple[float, Audio]] = deque()  # (play start time, 16 kHz audio), by start time
        self._longest_s = 0.0  # the longest chunk in `_far`: how far back a chunk can still be playing
        self._far_end_until = 0.0
        self._far_start = 0.0  # when the current stretch of playback began
        self._pending = np.zeros(0, dtype=np.float32)
        self._mic_clock: float | None = None  # wall time of the next mic sample to process
        self._recent_mic: Audio = np.zeros(0, dtype=np.float32)
        self._echo_seen_at = -1e9
        self._decided_at = -1e9
        self._absent_since: float | None = None
        self._state: EchoState = "none"
        self.last_correlation = 0.0

    def played(self, audio: Audio, at: float) -> None:
        """Reply audio (16 kHz) that the client starts playing at wall time `at`."""
        if not self.active:
            self._far_start = at
        chunk = (at, audio.astype(np.float32, copy=False))
        if self._far and at < self._far[-1][0]:
            bisect.insort(self._far, chunk, key=_start)  # kept in order: `_far_end` looks chunks up by start
        else:
            self._far.append(chunk)
        self._longest_s = max(self._longest_s, len(audio) / ANALYSIS_RATE)
        self._far_end_until = max(self._far_end_until, at + len(audio) / ANALYSIS_RATE)

    def flush_far_end(self) -> None:
        """Barge-in: the client dropped what it had buffered; nothing more will be played."""
        now = self._now()
        kept: deque[tuple[float, Audio]] = deque()
        for start, audio in self._far:
            if start < now:
                kept.append((start, audio[: int((now - start) * ANALYSIS_RATE)]))
        self._far = kept
        self._far_end_until = min(self._far_end_until, now)

    @property
    def active(self) -> bool:
        return self._now() < self._far_end_until + TAIL_S

    @property
    def state(self) -> EchoState:
        """What the guard knows about echo in the mic now.

        "none": nothing is playing, the mic passes untouched; "unknown": playback is on but there is
        not yet enough mic audio to tell; "present": the mic carries the agent's voice and the
        canceller's output is used; "absent": a clean mic (the client cancels echo itself).
        """
        return self._state if self.active else "none"

    def process(self, mic: Audio) -> Audio:
        """Mic audio (16 kHz) as it arrives → the same audio with the agent's echo removed.

        While the echo is unknown the raw mic is returned: the canceller has not converged and would
        suppress a user who talks at once; the session waits for a decision before it lets speech
        over the agent interrupt it.
        """
        now = self._now()
        if not self.active:
            self._mic_clock = None
            self._pending = np.zeros(0, dtype=np.float32)
            self._recent_mic = np.zeros(0, dtype=np.float32)
            self._absent_since = None
            self._state = "none"
            self._decided_at = -1e9  # the next playback's first chunk is decided at once
            return mic
        data = np.concatenate([self._pending, mic]) if len(self._pending) else mic
        n = len(data) // FRAME * FRAME
        self._pending = data[n:].copy()
        # Place the mic stream on the wall clock. A chunk can only arrive late, never early, so the
        # earliest arrival seen is the best estimate of when its audio was captured; a stream that
        # falls far behind it had a gap (the client stopped sending) and is placed anew.
        arrived = now - n / ANALYSIS_RATE
        if self._mic_clock is None or arrived - self._mic_clock > REANCHOR_S:
            self._mic_clock = arrived
            self._recent_mic = np.zeros(0, dtype=np.float32)  # a gap in the mic: older audio is not adjacent
        elif arrived < self._mic_clock:
            self._mic_clock = arrived
        mic_start = self._mic_clock
        out = data[:n] if self._state == "absent" else self._cancel(data[:n], mic_start)
        self._mic_clock += n / ANALYSIS_RATE
        self._drop_played(self._mic_clock - 2.0 - MAX_DELAY_S)
        if n:
            self._recent_mic = np.concatenate([self._recent_mic, data[:n]])[-int(WINDOW_S * ANALYSIS_RATE) :]
        every = ABSENT_DECIDE_EVERY_S if self._state == "absent" else DECIDE_EVERY_S
        if n and now - self._decided_at >= every:
            self._decided_at = now
            state = self._decide(now)
            if state != self._state:
                log.debug("echo %s (correlation %.2f)", state, self.last_correlation)
            self._state = state
        return out if self._state == "present" else data[:n]

    def echo_only(self) -> bool:
        """Is the mic's latest audio the agent's echo and nothing else?

        AEC3 takes about a second to follow a jump in the echo path's delay, and until then leaves
        residual echo that a VAD reads as voice. Such jumps are common: a client's playback stalls on a
        late packet, or starts again late after its buffer ran dry (50 ms was enough to leave 0.4 s of
        voice on real speech). The session asks this before it lets voice over the agent stop it: one
        correlation over ECHO_ONLY_WINDOW_S, only when voice is about to be confirmed.
        """
        if self.state != "present" or self._mic_clock is None:
            return False
        m = self._recent_mic[-int(ECHO_ONLY_WINDOW_S * ANALYSIS_RATE) :]
        if len(m) < int(ECHO_ONLY_WINDOW_S * ANALYSIS_RATE):
            return False
        correlation = self._playback_correlation(m)
        return correlation is not None and correlation >= ECHO_ONLY_CORRELATION

    def _playback_correlation(self, m: Audio) -> float | None:
        """How strongly the mic's latest audio `m` carries what the client played, at some delay up to
        MAX_DELAY_S (whitened normalized cross-correlation); None when nothing played over that span."""
        assert self._mic_clock is not None
        m_start = self._mic_clock - len(m) / ANALYSIS_RATE
        r = self._far_end(m_start - MAX_DELAY_S, len(m) + int(MAX_DELAY_S * ANALYSIS_RATE))
        if not np.any(r):
            return None
        return _max_correlation(_whiten(m), _whiten(r))

    def _cancel(self, mic: Audio, start: float) -> Audio:
        """AEC3 over `mic` (whole 10 ms frames), fed the reference as the client plays it from `start`.

        The reference and the mic are placed and converted once for the whole chunk, then cut into
        frames: per frame, looking the reference up among the playing chunks cost more than AEC3."""
        reference = _pcm16(self._far_end(start, len(mic)))
        pcm = _pcm16(mic)
        out = np.empty(len(mic), dtype=np.float32)
        for i in range(0, len(mic), FRAME):
            self._apm.process_reverse_stream(
                rtc.AudioFrame(reference[i : i + FRAME].tobytes(), ANALYSIS_RATE, 1, FRAME)
            )
            frame = rtc.AudioFrame(pcm[i : i + FRAME].tobytes(), ANALYSIS_RATE, 1, FRAME)
            self._apm.process_stream(frame)
            out[i : i + FRAME] = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
        return out

    def _decide(self, now: float) -> EchoState:
        """Does the mic carry the reference, at some delay up to MAX_DELAY_S? (FFT cross-correlation)

        "present" is decided as soon as the correlation shows it; "absent" only once the reference
        was playing over the whole range of delays searched, so the echo's own delay cannot hide it.
        """
        assert self._mic_clock is not None
        m = self._recent_mic
        m_start = self._mic_clock - len(m) / ANALYSIS_RATE
        correlation = self._playback_correlation(m) if len(m) >= MIN_WINDOW_S * ANALYSIS_RATE else None
        if correlation is None:
            return "present" if now - self._echo_seen_at < ECHO_HOLD_S else self._undecided()
        self.last_correlation = correlation
        present = now - self._echo_seen_at < ECHO_HOLD_S
        if self.last_correlation > (ECHO_KEEP_CORRELATION if present else ECHO_CORRELATION):
            self._echo_seen_at = now
        if now - self._echo_seen_at < ECHO_HOLD_S:
            return "present"
        if m_start - MAX_DELAY_S < self._far_start:
            return self._undecided()
        return "absent"

    def _undecided(self) -> EchoState:
        return "absent" if self._state == "absent" else "unknown"

    def _far_end(self, t: float, samples: int) -> Audio:
        """The reply audio the client's speaker plays from wall time t, `samples` long.

        Only the chunks that can overlap it are visited (by start time): the deque holds every chunk
        sent ahead of playback and the last seconds played, a few hundred in a long reply."""
        out = np.zeros(samples, dtype=np.float32)
        far = self._far
        last = bisect.bisect_left(far, t + samples / ANALYSIS_RATE, key=_start)  # chunks starting before the end
        first = bisect.bisect_left(far, t - self._longest_s, key=_start)  # and late enough to be still playing
        for j in range(first, last):
            start, audio = far[j]
            offset = round((t - start) * ANALYSIS_RATE)
            if offset >= len(audio) or offset + samples <= 0:
                continue
            lo, hi = max(offset, 0), min(offset + samples, len(audio))
            out[lo - offset : hi - offset] += audio[lo:hi]
        return out

    def _drop_played(self, before: float) -> None:
        while self._far and self._far[0][0] + len(self._far[0][1]) / ANALYSIS_RATE < before:
            self._far.popleft()


def _start(chunk: tuple[float, Audio]) -> float:
    return chunk[0]


def _pcm16(audio: Audio) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def _fast_len(n: int) -> int:
    """The least 2^a 3^b 5^c >= n: pocketfft's fast sizes, up to ~35% smaller than the next power of two."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35 << max(0, (-(-n // p35) - 1).bit_length())  # the least p35 * 2^a >= n
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def _whiten(x: Audio) -> Audio:
    return np.concatenate([x[:1], x[1:] - PRE_EMPHASIS * x[:-1]])


def _max_correlation(m: Audio, r: Audio) -> float:
    """max over lags k of |sum_j m[j] r[j + k]| / (|m| |r[k : k + len(m)]|), via one FFT product."""
    size = _fast_len(len(m) + len(r))
    m32, r32 = m.astype(np.float32, copy=False), r.astype(np.float32, copy=False)
    corr = np.fft.irfft(np.fft.rfft(m32[::-1], size) * np.fft.rfft(r32, size), size)
    lags = corr[len(m) - 1 : len(r)]
    cumulative = np.concatenate([[0.0], np.cumsum(r.astype(np.float64) ** 2)])
    window_energy = cumulative[len(m) :] - cumulative[: -len(m)]
    mic_energy = float(np.dot(m, m))
    if mic_energy <= 0.0 or not np.any(window_energy > 0):
        return 0.0
    # Lags where the reference is nearly silent would divide by almost nothing: floor their energy.
    window_energy = np.maximum(window_energy, 0.1 * float(np.max(window_energy)))
    return float(np.max(np.abs(lags) / np.sqrt(window_energy * mic_energy)))
