"""Wire audio encodings: 16-bit PCM, G.711 μ-law and A-law.

G.711 is done with numpy lookup tables rather than the stdlib `audioop`, which is deprecated and
gone in Python 3.13; the tests check these tables against `audioop` while it still exists.
Decoders keep a carry byte so that an odd-sized PCM chunk is never an error: the server buffers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from voxgate.audio.types import Audio

WIRE_RATES = {"audio/pcm": 24_000, "audio/pcmu": 8_000, "audio/pcma": 8_000}


def _ulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1))
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


ULAW_TO_PCM = _ulaw_decode_table()
ALAW_TO_PCM = _alaw_decode_table()


_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _ulaw_encode_table() -> np.ndarray:
    """Standard G.711 μ-law quantisation (14-bit magnitude, bias 33) for every int16 value."""
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), 8159) + 0x21
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude)
    code = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    return (np.where(segment >= 8, 0x7F, code) ^ mask).astype(np.uint8)


def _alaw_encode_table() -> np.ndarray:
    """Standard G.711 A-law quantisation (13-bit) for every int16 value."""
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude)
    shift = np.where(segment < 2, 1, segment)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    return (np.where(segment >= 8, 0x7F, code) ^ mask).astype(np.uint8)


PCM_TO_ULAW = _ulaw_encode_table()
PCM_TO_ALAW = _alaw_encode_table()


def float_to_int16(audio: Audio) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def int16_to_float(samples: np.ndarray) -> Audio:
    return (samples.astype(np.float32) / 32768.0).astype(np.float32)


def encode(audio: Audio, encoding: str) -> bytes:
    """Float audio already at the encoding's wire rate → wire bytes."""
    pcm = float_to_int16(audio)
    if encoding == "audio/pcm":
        return pcm.astype("<i2").tobytes()
    table = PCM_TO_ULAW if encoding == "audio/pcmu" else PCM_TO_ALAW
    return table[pcm.astype(np.int32) + 32768].tobytes()


@dataclass
class WireDecoder:
    """Wire bytes → float audio at the wire rate, carrying a half sample across PCM chunks."""

    encoding: str
    _carry: bytes = field(default=b"", repr=False)

    @property
    def rate(self) -> int:
        return WIRE_RATES[self.encoding]

    def decode(self, data: bytes) -> Audio:
        if self.encoding == "audio/pcm":
            data = self._carry + data
            usable = len(data) - (len(data) % 2)
            self._carry = data[usable:]
            return int16_to_float(np.frombuffer(data[:usable], dtype="<i2"))
        table = ULAW_TO_PCM if self.encoding == "audio/pcmu" else ALAW_TO_PCM
        return int16_to_float(table[np.frombuffer(data, dtype=np.uint8)])
