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
is trying to barge in.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import numpy as np
from livekit import rtc

from voxgate.backends.base import ANALYSIS_RATE, Audio

log = logging.getLogger("voxgate.echo")

FRAME = ANALYSIS_RATE // 100  # AEC3 works on 10 ms frames
TAIL_S = 1.0  # keep cancelling this long after the last reply audio was played
MAX_DELAY_S = 0.6  # echo path delays searched for when deciding whether echo is present
WINDOW_S = 0.8  # mic audio compared with the reference
ECHO_CORRELATION = 0.2  # normalized cross-correlation above which the mic carries the agent's voice
ECHO_HOLD_S = 1.0  # once seen, treat echo as present this long


class EchoGuard:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
        self._now = now
        self._far: deque[tuple[float, Audio]] = deque()  # (play start time, 16 kHz audio)
        self._far_end_until = 0.0
        self._pending = np.zeros(0, dtype=np.float32)
        self._mic_clock: float | None = None  # wall time of the next mic sample to process
        self._recent_mic: Audio = np.zeros(0, dtype=np.float32)
        self._recent_ref: Audio = np.zeros(0, dtype=np.float32)
        self._echo_seen_at = -1e9
        self._echo_known_absent_at = -1e9
        self._playback_started_at = 0.0
        self.last_correlation = 0.0

    def played(self, audio: Audio, at: float) -> None:
        """Reply audio (16 kHz) that the client starts playing at wall time `at`."""
        self._far.append((at, audio.astype(np.float32, copy=False)))
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

    def process(self, mic: Audio) -> Audio:
        """Mic audio (16 kHz) as it arrives → the same audio with the agent's echo removed."""
        now = self._now()
        if not self.active:
            self._mic_clock = None
            self._pending = np.zeros(0, dtype=np.float32)
            self._recent_mic = self._recent_ref = np.zeros(0, dtype=np.float32)
            self._playback_started_at = now
            return mic
        data = np.concatenate([self._pending, mic]) if len(self._pending) else mic
        n = len(data) // FRAME * FRAME
        self._pending = data[n:].copy()
        if self._mic_clock is None or abs(self._mic_clock - (now - n / ANALYSIS_RATE)) > 0.5:
            self._mic_clock = now - n / ANALYSIS_RATE  # (re)anchor the mic stream on the wall clock
        out = np.empty(n, dtype=np.float32)
        references = []
        for i in range(0, n, FRAME):
            t = self._mic_clock + i / ANALYSIS_RATE
            reference = self._far_end(t)
            references.append(reference)
            self._apm.process_reverse_stream(self._frame(reference))
            frame = self._frame(data[i : i + FRAME])
            self._apm.process_stream(frame)
            out[i : i + FRAME] = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32) / 32768.0
        self._mic_clock += n / ANALYSIS_RATE
        self._drop_played(self._mic_clock - 2.0)
        if n and self._echo_present(data[:n], np.concatenate(references)):
            return out
        return data[:n]

    def _echo_present(self, mic: Audio, reference: Audio) -> bool:
        """Does the mic carry the reference, at some delay up to MAX_DELAY_S? (FFT cross-correlation)"""
        keep_mic = int(WINDOW_S * ANALYSIS_RATE)
        keep_ref = keep_mic + int(MAX_DELAY_S * ANALYSIS_RATE)
        self._recent_mic = np.concatenate([self._recent_mic, mic])[-keep_mic:]
        self._recent_ref = np.concatenate([self._recent_ref, reference])[-keep_ref:]
        now = self._now()
        m, r = self._recent_mic, self._recent_ref
        if len(m) < keep_mic or len(r) < keep_ref or not np.any(r[-keep_mic:]):
            return self._echo_known_absent_at < self._playback_started_at  # unknown yet: assume echo
        size = 1 << int(np.ceil(np.log2(len(m) + len(r))))
        corr = np.fft.irfft(np.fft.rfft(m[::-1], size) * np.fft.rfft(r, size), size)
        lags = corr[len(m) - 1 : len(r)]  # lags[k] = sum_j m[j] * r[j + k]
        cumulative = np.concatenate([[0.0], np.cumsum(r.astype(np.float64) ** 2)])
        window_energy = cumulative[len(m) :] - cumulative[: -len(m)]
        norm = np.sqrt(np.maximum(window_energy, 0.0) * float(np.dot(m, m))) + 1e-9
        self.last_correlation = float(np.max(np.abs(lags) / norm))
        if self.last_correlation > ECHO_CORRELATION:
            self._echo_seen_at = now
        else:
            self._echo_known_absent_at = now
        return now - self._echo_seen_at < ECHO_HOLD_S

    @staticmethod
    def _frame(audio: Audio) -> rtc.AudioFrame:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
        return rtc.AudioFrame(pcm.tobytes(), ANALYSIS_RATE, 1, FRAME)

    def _far_end(self, t: float) -> Audio:
        """The 10 ms of reply audio the client's speaker plays from wall time t."""
        out = np.zeros(FRAME, dtype=np.float32)
        for start, audio in self._far:
            offset = round((t - start) * ANALYSIS_RATE)
            if offset >= len(audio) or offset + FRAME <= 0:
                continue
            lo, hi = max(offset, 0), min(offset + FRAME, len(audio))
            out[lo - offset : hi - offset] += audio[lo:hi]
        return out

    def _drop_played(self, before: float) -> None:
        while self._far and self._far[0][0] + len(self._far[0][1]) / ANALYSIS_RATE < before:
            self._far.popleft()
