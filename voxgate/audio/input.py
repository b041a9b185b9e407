"""A client's audio as the session hears it: wire bytes in, analysis-rate float audio out.

Transports own one of these per socket (wire decoding is the transport's job), rebuilt when the
session's input encoding changes; the carried half sample and the resampler's state persist across
chunks, so 50 ms chunks decode exactly as one long stream would.
"""

from __future__ import annotations

from voxgate.audio.codecs import WIRE_RATES, WireDecoder
from voxgate.audio.resample import StreamResampler
from voxgate.audio.types import ANALYSIS_RATE, Audio


class InputDecoder:
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._wire = WireDecoder(encoding)
        self._resampler = StreamResampler(WIRE_RATES[encoding], ANALYSIS_RATE)

    def decode(self, payload: bytes) -> Audio:
        return self._resampler.process(self._wire.decode(payload))


def decoder_for(current: InputDecoder | None, encoding: str) -> InputDecoder:
    """The decoder for `encoding`: the current one while the encoding stays the same."""
    if current is not None and current.encoding == encoding:
        return current
    return InputDecoder(encoding)
