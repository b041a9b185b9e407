"""A session's stereo recording: the user on the left, the agent on the right, as the user heard it.

The user's audio is written as it arrives; the agent's at the moment its playback starts (from the
reply's playback clock), so a barge-in sounds in the recording as it did on the call: what was
flushed unplayed is overwritten by what came next or stays silent. Both channels go to temporary
files on disk, written at their sample offsets, so an hour-long call costs no memory until the WAV
is made once, at the end. Recording stops at `max_s`.
"""

from __future__ import annotations

import io
import tempfile
import wave

import numpy as np

from voxgate.audio.resample import resample
from voxgate.backends.base import Audio

RATE = 16_000
BLOCK = 1 << 16  # samples per block when the channels are interleaved at the end


class Recorder:
    def __init__(self, started_at: float, *, max_s: float = 3600.0) -> None:
        """`started_at`: the session clock's time of sample 0 (the clock `user()` and `agent()` are given)."""
        self._t0 = started_at
        self._limit = int(max_s * RATE)
        self._channels = (tempfile.TemporaryFile(), tempfile.TemporaryFile())  # closed in close()
        self._user_end = 0
        self._length = 0

    def user(self, audio: Audio, at: float) -> None:
        """User audio (16 kHz) as received; it is sequential, so it is written after what came before."""
        start = max(self._user_end, int((at - self._t0) * RATE))
        self._user_end = self._write(0, start, audio)

    def agent(self, audio: Audio, rate: int, at: float) -> None:
        """Agent audio (`rate` Hz) that starts playing at `at`."""
        self._write(1, int((at - self._t0) * RATE), resample(audio, rate, RATE))

    def _write(self, channel: int, start: int, audio: Audio) -> int:
        if start >= self._limit or len(audio) == 0:
            return start
        samples = np.clip(np.asarray(audio[: self._limit - start], dtype=np.float32), -1.0, 1.0)
        data = (samples * 32767).astype("<i2").tobytes()
        f = self._channels[channel]
        f.seek(start * 2)
        f.write(data)
        end = start + len(samples)
        self._length = max(self._length, end)
        return end

    def wav(self) -> bytes:
        """The recording as a 16-bit stereo WAV."""
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(RATE)
            for start in range(0, self._length, BLOCK):
                n = min(BLOCK, self._length - start)
                block = np.zeros((n, 2), dtype="<i2")
                for index, f in enumerate(self._channels):
                    f.seek(start * 2)
                    raw = f.read(n * 2)
                    block[: len(raw) // 2, index] = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")
                w.writeframes(block.tobytes())
        return out.getvalue()

    @property
    def seconds(self) -> float:
        return self._length / RATE

    def close(self) -> None:
        for f in self._channels:
            f.close()
