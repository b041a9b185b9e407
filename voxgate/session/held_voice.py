"""Voice over the agent, held: are its words a backchannel ("uh-huh") or a barge-in ("wait")?

"Uh-huh", "yeah", "right" carry as much voice as "wait" or "stop", so voice alone cannot tell. The
held voice is read (one decode at a time): mid-speech only an interruption cue that survives a second
read releases it as a barge-in, because a fraction of a second of humming reads as words too often;
at a pause the utterance so far is whole and any words but a backchannel release it. While the reply
is paused nothing is read mid-speech: the agent is already quiet, so the surer read at the pause is
worth its wait. The reads run in this holder's scope: when the session leaves the held state they stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voxgate.aio import TaskScope
from voxgate.backends.base import Audio
from voxgate.session.false_interruptions import cue_holds, has_interruption_cue, is_backchannel
from voxgate.session.listener import Listener, TurnEnd
from voxgate.session.ports import TranscribePurpose

log = logging.getLogger("voxgate.session")

Decode = Callable[[Audio, TranscribePurpose], Awaitable[str]]
Verdict = Callable[[str], Awaitable[None]]  # called with why


@dataclass(frozen=True)
class _Read:
    audio: Audio
    voiced_frames: int


class HeldVoice:
    def __init__(
        self,
        session_id: str,
        listener: Listener,
        *,
        decode: Decode,
        reply_paused: Callable[[], bool],
        barge_in: Verdict,
        backchannel: Verdict,
    ) -> None:
        """`barge_in(why)`: the words are more than a backchannel; `backchannel(why)`: the user paused after
        one, so the agent goes on (more voice is read again)."""
        self.utterance = listener.utterance_id
        self.scope = TaskScope(f"{session_id}:held{self.utterance}")
        self._listener = listener
        self._decode = decode
        self._reply_paused = reply_paused
        self._barge_in = barge_in
        self._backchannel = backchannel
        self._reading: asyncio.Task[None] | None = None
        self._whole_due: _Read | None = None  # a pause's whole read, asked for mid-read
        self._words: str | None = None  # the words of the last whole read
        self.ended: TurnEnd | None = None  # the held utterance ended before its words were decided

    async def close(self) -> None:
        await self.scope.close()

    def read(self, audio: Audio, *, whole: bool) -> None:
        if not whole and self._reply_paused():
            return
        frames = self._listener.voiced_frames
        if self._reading is not None and not self._reading.done():
            if whole:  # the utterance paused mid-read: its whole read comes right after this one
                self._whole_due = _Read(audio, frames)
            return
        self._whole_due = None
        self._reading = self.scope.spawn(self._read(_Read(audio, frames), whole), "words")

    async def _read(self, read: _Read, whole: bool) -> None:
        listener = self._listener
        while True:
            # The final model, not the partial one: tiny.en heard a Japanese voice's "mm-hmm" as "in and
            # hammer". At a pause the read may become the turn's transcript (`turn_ended`): decode it as one.
            text = await self._decode(read.audio, "final" if whole else "check")
            said = repr(text)
            if whole:
                self._words = text
                real = bool(text.strip()) and not is_backchannel(text)
                if not real:  # the user paused after a backchannel: the agent goes on (more voice is read again)
                    await self._backchannel(f"backchannel {text!r}")
            elif has_interruption_cue(text):  # read again from the longer audio there is by now
                again = await self._decode(listener.audio_so_far(), "check")
                real = cue_holds(text, again)
                said = f"{text!r} then {again!r}"
            else:
                real = False
            if real:
                await self._barge_in(f"words {said}")
                return
            log.debug("held speech so far: %s", said)
            if whole:
                return
            if (due := self._whole_due) is not None:
                self._whole_due = None
                read, whole = due, True
                continue
            # Mid-speech, read again at once while more voice comes: a cue ("hold on") is often not
            # readable in the first fraction of a second, and waiting for the next partial cost ~0.5 s.
            if not listener.speaking or listener.voiced_frames == read.voiced_frames:
                return  # a pause: its own (whole) read decides
            read = _Read(listener.audio_so_far(), listener.voiced_frames)

    def words_read(self) -> str | None:
        """The words of the last whole read (at a pause), if no voice came since (`went_on` forgets them)."""
        return self._words

    def went_on(self) -> None:
        self._words = None

    async def words_at_end(self, end: TurnEnd) -> str:
        """The held utterance ended before its words were decided: its words, decided on all of it.

        When the speech was already read at its pause (same voice, nothing since), that verdict stands:
        decoding a non-word again with a little more silence can read it differently ("mm" then "M.M.R.").
        A read in flight is waited for first; if it finds a barge-in, the session leaves this state and
        this wait is cancelled with the scope.
        """
        reading = self._reading
        if reading is not None and not reading.done():
            with contextlib.suppress(Exception):
                await reading
        words = self.words_read()
        return words if words is not None else await self._decode(end.audio, "final")
