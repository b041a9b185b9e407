import warnings

import numpy as np
import pytest

from voxgate.audio import codecs
from voxgate.audio.resample import StreamResampler, resample

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop")  # the oracle, while Python still ships it

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


@pytest.mark.parametrize(("encoding", "oracle"), [("audio/pcmu", "lin2ulaw"), ("audio/pcma", "lin2alaw")])
def test_g711_encoding_is_bit_exact(encoding: str, oracle: str) -> None:
    ours = codecs.encode(codecs.int16_to_float(ALL_INT16), encoding)
    reference = getattr(audioop, oracle)(ALL_INT16.astype("<i2").tobytes(), 2)
    # float round trip can move a sample by one LSB; compare on the int16 path too
    table = codecs.PCM_TO_ULAW if encoding == "audio/pcmu" else codecs.PCM_TO_ALAW
    assert table[ALL_INT16.astype(np.int32) + 32768].tobytes() == reference
    assert np.mean(np.frombuffer(ours, np.uint8) != np.frombuffer(reference, np.uint8)) < 0.01


@pytest.mark.parametrize(("encoding", "oracle"), [("audio/pcmu", "ulaw2lin"), ("audio/pcma", "alaw2lin")])
def test_g711_decoding_is_bit_exact(encoding: str, oracle: str) -> None:
    codes = bytes(range(256))
    reference = np.frombuffer(getattr(audioop, oracle)(codes, 2), dtype="<i2")
    ours = codecs.WireDecoder(encoding).decode(codes)
    assert np.array_equal(codecs.float_to_int16(ours * (32768 / 32767)), reference) or np.allclose(
        ours * 32768, reference, atol=1
    )


def test_pcm_decoder_carries_odd_bytes() -> None:
    samples = (np.sin(np.arange(1000) / 7) * 10000).astype("<i2")
    raw = samples.tobytes()
    decoder = codecs.WireDecoder("audio/pcm")
    pieces = [decoder.decode(raw[i : i + 333]) for i in range(0, len(raw), 333)]
    joined = np.concatenate(pieces)
    assert np.array_equal(codecs.float_to_int16(joined * 32768 / 32767), samples) or np.allclose(
        joined * 32768, samples, atol=1
    )


def test_streaming_resampler_matches_one_shot_length() -> None:
    audio = np.random.default_rng(0).standard_normal(24_000).astype(np.float32) * 0.1
    stream = StreamResampler(24_000, 16_000)
    parts = [stream.process(audio[i : i + 1200]) for i in range(0, len(audio), 1200)]
    parts.append(stream.process(np.zeros(0, dtype=np.float32), last=True))
    assert abs(sum(len(p) for p in parts) - 16_000) <= 2
    assert len(resample(audio, 24_000, 8_000)) == 8_000
    same = StreamResampler(8_000, 8_000)
    assert same.process(audio[:100]) is not None and len(same.process(audio[:100])) == 100
