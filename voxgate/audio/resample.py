"""Streaming sample-rate conversion with soxr, keeping filter state across chunks."""

from __future__ import annotations

import numpy as np
import soxr

from voxgate.audio.types import Audio


class StreamResampler:
    """Converts a stream of chunks; identity when the rates match (μ-law 8 kHz out stays untouched)."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate, self.out_rate = in_rate, out_rate
        self._stream = (
            None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, chunk: Audio, *, last: bool = False) -> Audio:
        if self._stream is None:
            return chunk.astype(np.float32, copy=False)
        return self._stream.resample_chunk(chunk.astype(np.float32, copy=False), last=last)


def resample(audio: Audio, in_rate: int, out_rate: int) -> Audio:
    """One-shot conversion of a whole clip (TTS output of one clause)."""
    if in_rate == out_rate:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio.astype(np.float32, copy=False), in_rate, out_rate, quality="HQ").astype(np.float32)
