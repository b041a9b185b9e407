"""When each word of a synthesized clause is heard: the times `transcript.agent.delta` carries.

The local voices return audio without word alignment, so the times come from the audio itself: the
clause's voiced span (leading and trailing silence trimmed) is shared among its words by their
length in characters, and each boundary between words is then moved to the quietest 10 ms frame
near it, where the voice pauses between words. That is accurate to a few tens of milliseconds on
clear synthetic speech, which is what a caption or a "what was heard" trim needs.
"""

from __future__ import annotations

import numpy as np

from voxgate.backends.base import Audio

FRAME_S = 0.01
SILENT_DB = -35.0  # below the clause's loudest frame by this much counts as silence
SNAP_S = 0.08  # a boundary moves at most this far to find the pause between two words


def word_times(text: str, audio: Audio, rate: int) -> list[tuple[str, float, float]]:
    """`(word, start_s, end_s)` for each word of `text`, in seconds from the start of `audio`."""
    words = text.split()
    if not words:
        return []
    duration = len(audio) / rate if rate else 0.0
    frame = max(1, int(FRAME_S * rate))
    n = len(audio) // frame
    if n < 2:
        return _shared(words, 0.0, duration)
    frames = np.asarray(audio[: n * frame], dtype=np.float32).reshape(n, frame)
    rms = np.sqrt(np.mean(frames * frames, axis=1) + 1e-12)
    level = 20 * np.log10(rms / max(float(rms.max()), 1e-9))
    voiced = np.flatnonzero(level > SILENT_DB)
    if len(voiced) == 0:
        return _shared(words, 0.0, duration)
    start, end = voiced[0] * FRAME_S, min(duration, (voiced[-1] + 1) * FRAME_S)
    times = _shared(words, start, end)
    snap = int(SNAP_S / FRAME_S)
    for i in range(1, len(times)):
        boundary = int(times[i][1] / FRAME_S)
        low, high = max(0, boundary - snap), min(n, boundary + snap + 1)
        if high - low < 2:
            continue
        quietest = (low + int(np.argmin(level[low:high]))) * FRAME_S
        floor = times[i - 1][1] + FRAME_S
        ceiling = times[i][2] - FRAME_S
        moved = min(max(quietest, floor), ceiling) if floor <= ceiling else times[i][1]
        word, _, word_end = times[i]
        times[i] = (word, moved, word_end)
        times[i - 1] = (times[i - 1][0], times[i - 1][1], moved)
    return times


def _shared(words: list[str], start: float, end: float) -> list[tuple[str, float, float]]:
    weights = [len(w) + 1 for w in words]
    total = sum(weights)
    out, at = [], start
    for word, weight in zip(words, weights, strict=True):
        step = (end - start) * weight / total
        out.append((word, at, at + step))
        at += step
    return out
