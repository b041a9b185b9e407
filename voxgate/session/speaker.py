"""Speaking one reply: clauses in, `reply.audio` out at about real time.

Two stages run concurrently — synthesis of the next clause while the current one is being sent — so
the voice does not pause between clauses. Sending is paced against the playback clock: the server
stays `lead_s` ahead of what the client has played, never bursting the whole reply, so a barge-in
can cut any part of it and the clock knows exactly what was heard. Cancellation (barge-in) is just
cancelling the task that runs `speak`.

A reply can also be paused (voice over the agent, words not yet known: the client has flushed what
it buffered) and resumed (it was only a backchannel). Resuming starts again at the clause that was
playing, so every clause sent so far is kept until the reply ends.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from voxgate.aio import closing
from voxgate.audio.codecs import encode
from voxgate.backends.base import Audio, ToolCallRequest
from voxgate.protocol.events import AgentTranscriptDelta, ReplyAudio, ServerEvent
from voxgate.session.playback import PlaybackClock
from voxgate.session.word_timing import word_times

CHUNK_S = 0.1
PLAYOUT_POLL_S = 0.05  # while the client plays out the last clause, how often a pause is noticed


@dataclass(frozen=True)
class ToolCallsReady:
    """Marks where in the reply the tool calls go: after the transition phrase has been sent."""

    calls: tuple[ToolCallRequest, ...]


SpeechItem = str | ToolCallsReady
Synthesize = Callable[[str], Awaitable[Audio]]  # text → audio at the wire rate
Send = Callable[[ServerEvent], Awaitable[None]]
Played = Callable[[Audio, float], None]  # (wire-rate audio, wall time it starts playing)
Word = tuple[str, float, float]  # (word, start, end) in seconds of the reply's audio


class ReplySpeaker:
    def __init__(
        self,
        *,
        synthesize: Synthesize,
        encoding: str,
        wire_rate: int,
        send: Send,
        lead_s: float,
        clock: PlaybackClock | None = None,
        on_played: Played | None = None,
        reply_id: str = "",
        item_id: str = "",
        volume: Callable[[], float] = lambda: 100.0,
        text_only: bool = False,
    ) -> None:
        """`volume`: 0–100, read for every chunk (a live `output.volume`). `text_only`: `output.type` text,
        so the words go out as captions with no audio and no times."""
        self.reply_id = reply_id
        self.item_id = item_id
        self._volume = volume
        self._text_only = text_only
        self._words: list[list[Word]] = []  # per clause
        self._captioned: set[tuple[int, int]] = set()  # (clause, word) deltas sent; a resume does not repeat them
        self._synthesize = synthesize
        self._encoding = encoding
        self._wire_rate = wire_rate
        self._send = send
        self._lead_s = lead_s
        self.clock = clock or PlaybackClock()
        self._on_played = on_played
        self.first_audio_sent = asyncio.Event()
        self._clauses: list[Audio] = []  # every clause sent or being sent, in order (resume may go back one)
        self._cursor = (0, 0)  # (clause, sample) to send next
        self._playing = asyncio.Event()
        self._playing.set()

    @property
    def paused(self) -> bool:
        return not self._playing.is_set()

    def pause(self) -> None:
        """Stop sending; the client dropped its buffer, so what it had not played was never heard."""
        if self.paused:
            return
        self._playing.clear()
        self.clock.flush()

    def resume(self) -> float:
        """Send again from the start of the clause the client was playing; returns where that is (reply seconds)."""
        if not self.paused:
            return self.clock.sent_s
        clause = self.clock.segment_at(self.clock.sent_s)
        if clause is None:  # paused after the whole reply was played
            clause = len(self._clauses)
        self.clock.rewind(clause)
        self._cursor = (clause, 0)
        self._playing.set()
        return self.clock.sent_s

    async def speak(self, items: AsyncIterator[SpeechItem]) -> None:
        """Speak every item; returns when the client has (by the clock) finished playing."""
        ready: asyncio.Queue[tuple[str, Audio] | ToolCallsReady | None] = asyncio.Queue(maxsize=2)

        async def synthesize_all() -> None:
            # Closed when this stops early (a cut), not left for the garbage collector: the items hold the
            # LLM's stream, and an embedded model serves no one else while a stream of it is open.
            async with closing(items):
                async for item in items:
                    if isinstance(item, str) and self._text_only:
                        await ready.put((item, np.zeros(0, dtype=np.float32)))
                    elif isinstance(item, str):
                        await ready.put((item, await self._synthesize(item)))
                    else:
                        await ready.put(item)
            await ready.put(None)

        async with asyncio.TaskGroup() as group:
            group.create_task(synthesize_all())
            while (entry := await ready.get()) is not None:
                if isinstance(entry, ToolCallsReady):
                    continue  # announced by the reply after its transcript (shared/protocol.md §6.4)
                text, audio = entry
                await self._send_audio(text, audio)
        while True:  # the client plays out what it has; a pause meanwhile means sending some of it again
            await self._playing.wait()
            if self._cursor[0] < len(self._clauses):
                await self._drain()
                continue
            if (left := self.clock.buffered_s()) <= 0:
                break
            await asyncio.sleep(min(left, PLAYOUT_POLL_S))

    async def _send_audio(self, text: str, audio: Audio) -> None:
        start = self.clock.add_segment(text, len(audio) / self._wire_rate)
        words = [(w, start + a, start + b) for w, a, b in word_times(text, audio, self._wire_rate)]
        self.clock.segments[-1].words = words
        self._words.append(words)
        self._clauses.append(audio)
        if self._text_only:
            await self._caption(len(self._clauses) - 1, float("inf"), timed=False)
            return
        await self._drain()

    async def _caption(self, clause: int, until_s: float, *, timed: bool = True) -> None:
        """The words of `clause` that begin before `until_s` (reply seconds), once each."""
        for index, (word, start, end) in enumerate(self._words[clause]):
            if start >= until_s or (clause, index) in self._captioned:
                continue
            self._captioned.add((clause, index))
            await self._send(
                AgentTranscriptDelta(
                    reply_id=self.reply_id,
                    item_id=self.item_id,
                    delta=word,
                    start_ms=round(start * 1000) if timed else None,
                    end_ms=round(end * 1000) if timed else None,
                )
            )

    async def _drain(self) -> None:
        """Send from the cursor to the end of the clauses there are, paced, waiting out any pause."""
        step = max(1, int(CHUNK_S * self._wire_rate))
        while self._cursor[0] < len(self._clauses):
            await self._playing.wait()
            ahead = self.clock.buffered_s() - self._lead_s
            if ahead > 0:
                await asyncio.sleep(ahead)
                if self.paused:
                    continue  # paused while waiting: the cursor may have moved back
            clause, start = self._cursor
            chunk = self._clauses[clause][start : start + step]
            last = start + step >= len(self._clauses[clause])
            self._cursor = (clause + 1, 0) if last else (clause, start + step)
            if len(chunk) == 0:
                continue
            volume = self._volume()
            if volume < 100:
                chunk = chunk * np.float32(max(0.0, volume) / 100)
            payload = base64.b64encode(encode(chunk, self._encoding)).decode("ascii")
            await self._send(ReplyAudio(data=payload, reply_id=self.reply_id))
            clause_start = self.clock.segments[clause].start_s
            await self._caption(clause, float("inf") if last else clause_start + (start + step) / self._wire_rate)
            starts_at = self.clock.on_sent(len(chunk) / self._wire_rate)
            if self._on_played is not None:
                self._on_played(chunk, starts_at)
            self.first_audio_sent.set()
