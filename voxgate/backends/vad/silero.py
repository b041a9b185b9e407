"""Silero VAD v6 (the ONNX file faster-whisper ships), driven frame by frame.

The model wants 512 new samples at 16 kHz plus the previous 64 as context, and carries an LSTM
state; the session is shared, the state and context live in each stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from voxgate.backends.base import Audio
from voxgate.backends.onnx import open_session
from voxgate.models.assets import package_file

FRAME = 512
CONTEXT = 64


class SileroVadStream:
    frame_samples = FRAME

    def __init__(self, vad: SileroVAD) -> None:
        self._session = vad.session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def probability(self, frame: Audio) -> float:
        window = np.concatenate([self._context, frame.astype(np.float32, copy=False)])[None, :]
        out, self._h, self._c = self._session.run(None, {"input": window, "h": self._h, "c": self._c})
        self._context = frame[-CONTEXT:].astype(np.float32, copy=True)
        return float(np.asarray(out).reshape(-1)[0])

    def probabilities(self, frames: Sequence[Audio]) -> list[float]:
        """Consecutive frames in one call: the file takes a sequence of windows (`input` [seq_len, 576])
        and runs its LSTM over them, the same numbers as one call a frame (checked: equal to the last
        bit), and ONNX Runtime's cost per call is mostly fixed (~25 % less for two frames, ~45 % for five)."""
        if len(frames) <= 1:
            return [self.probability(f) for f in frames]
        body = np.stack([f.astype(np.float32, copy=False) for f in frames])
        windows = np.empty((len(frames), CONTEXT + FRAME), dtype=np.float32)
        windows[:, CONTEXT:] = body
        windows[0, :CONTEXT] = self._context
        windows[1:, :CONTEXT] = body[:-1, -CONTEXT:]
        out, self._h, self._c = self._session.run(None, {"input": windows, "h": self._h, "c": self._c})
        self._context = body[-1, -CONTEXT:].copy()
        return [float(x) for x in np.asarray(out).reshape(-1)]


class SileroVAD:
    frame_samples = FRAME

    def __init__(self) -> None:
        self.session = open_session(package_file("faster_whisper", "assets/silero_vad_v6.onnx"), threads=1)

    def new_stream(self) -> SileroVadStream:
        return SileroVadStream(self)
