"""A reply paused by voice over the agent, then resumed: it goes on from the clause that was playing.

Real time on short clauses (tenths of a second): the speaker paces against the wall clock.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voxgate.backends.base import Audio
from voxgate.protocol.events import ReplyAudio, ServerEvent
from voxgate.session.speaker import ReplySpeaker

RATE = 8000
CLAUSES = {"One.": 0.3, "Two.": 0.3, "Three.": 0.3}


def _clause_audio(text: str) -> Audio:
    """Each clause a constant level of its own, so the samples on the wire say which clause they came from."""
    level = (list(CLAUSES).index(text) + 1) / 10
    return np.full(int(CLAUSES[text] * RATE), level, np.float32)


class Wire:
    def __init__(self) -> None:
        self.samples: list[np.ndarray] = []

    async def send(self, event: ServerEvent) -> None:
        if isinstance(event, ReplyAudio):
            pcm = np.frombuffer(base64.b64decode(event.data), "<i2").astype(np.float32) / 32767
            self.samples.append(pcm)

    def clause_order(self) -> list[int]:
        """The clause of each chunk sent, in order."""
        return [round(float(chunk[0]) * 10) for chunk in self.samples]


async def _items() -> AsyncIterator[str]:
    for text in CLAUSES:
        yield text


async def _synthesize(text: str) -> Audio:
    return _clause_audio(text)


def _speaker(wire: Wire) -> ReplySpeaker:
    return ReplySpeaker(synthesize=_synthesize, encoding="audio/pcm", wire_rate=RATE, send=wire.send, lead_s=0.1)


@pytest.mark.asyncio
async def test_a_resumed_reply_says_the_interrupted_clause_again_and_finishes() -> None:
    wire = Wire()
    speaker = _speaker(wire)
    task = asyncio.create_task(speaker.speak(_items()))
    await asyncio.sleep(0.37)  # the client is a quarter of the way through "Two." (0.3-0.6 s)
    speaker.pause()
    paused_at = len(wire.samples)
    heard = speaker.clock.heard_s()
    assert 0.3 < heard < 0.45
    await asyncio.sleep(0.3)
    assert len(wire.samples) == paused_at  # nothing is sent while paused
    # A word is heard once half of it has played; "Two." (one word over its whole clause) had not.
    assert speaker.clock.heard_text() == "One."
    assert speaker.resume() == pytest.approx(0.3)  # back to the start of "Two."
    await asyncio.wait_for(task, 5)
    order = wire.clause_order()
    assert order[paused_at] == 2 and order[paused_at - 1] in (2, 3)  # "Two." again, from its first chunk
    assert order[paused_at:] == sorted(order[paused_at:])
    assert sum(len(c) for c in wire.samples[paused_at:]) == int(0.6 * RATE)  # "Two." and "Three.", whole
    assert speaker.clock.full_text() == "One. Two. Three."
    assert speaker.clock.heard_s() == pytest.approx(0.9)


@pytest.mark.asyncio
async def test_a_pause_during_the_play_out_holds_the_end_of_the_reply() -> None:
    """Paused after the last chunk was sent, while the client plays it out: the reply must not end
    (its end was flushed unheard); resumed, the last clause is sent again."""
    wire = Wire()
    speaker = _speaker(wire)
    task = asyncio.create_task(speaker.speak(_items()))
    await asyncio.sleep(0.85)  # all sent (lead 0.1 s), "Three." playing
    speaker.pause()
    await asyncio.sleep(0.4)
    assert not task.done()
    sent = len(wire.samples)
    speaker.resume()
    await asyncio.wait_for(task, 5)
    assert wire.clause_order()[sent:] == [3, 3, 3]
    assert speaker.clock.heard_s() == pytest.approx(0.9)


@pytest.mark.asyncio
async def test_a_paused_reply_can_still_be_cancelled() -> None:
    wire = Wire()
    speaker = _speaker(wire)
    task = asyncio.create_task(speaker.speak(_items()))
    await asyncio.sleep(0.1)
    speaker.pause()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # "One." (0-0.3 s) was cut a third of the way in: less than half of the word played, so not heard.
    assert speaker.clock.heard_s() < 0.15
    assert speaker.clock.heard_text() == ""
