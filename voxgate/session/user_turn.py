"""One utterance of the user's, and the work started on it before it is known to be the whole turn.

While the user talks: the live line (partial decodes, one at a time). At the first pause: the final
transcript, decoded speculatively so it is ready if this is the end of the turn; when those words
read as a finished turn, the reply's LLM too (session/prefetch.py), and the speech of its first clause.
If the turn ends as guessed (same utterance, no voice since), the reply takes that work over; if the
user goes on, or the state is left, it is cancelled with the turn's scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from voxgate.aio import TaskScope
from voxgate.backends.base import Audio
from voxgate.protocol.events import new_id
from voxgate.session.listener import PartialDue, Pause
from voxgate.session.prefetch import PrefetchedReply, PrefetchKey

log = logging.getLogger("voxgate.session")

SpeechKey = tuple[str, str, str, int]  # (text, requested voice, voice, wire rate): what a clause's audio depends on


class UserTurn:
    def __init__(self, session_id: str, utterance: int, item_id: str | None = None) -> None:
        """`item_id`: the user message this utterance belongs to (one per turn, kept when the user goes on)."""
        self.utterance = utterance
        self.item_id = item_id or new_id("msg_")
        self.scope = TaskScope(f"{session_id}:turn{utterance}")
        self.audio: Audio | None = None  # the turn's audio once it ended: the start of the next, if the user goes on
        self.last_partial = ""
        self._partial: asyncio.Task[None] | None = None
        self._guess: asyncio.Task[str] | None = None  # the final text, decoded at the last pause
        self.prefetch: PrefetchedReply | None = None
        self._spoken_ahead: tuple[SpeechKey, asyncio.Task[Audio]] | None = None

    async def close(self) -> None:
        await self.scope.close()

    # ------------------------------------------------------------ the live line

    def end(self) -> None:
        """The utterance ended: the live line stops (a partial decoded now would come after the final)."""
        if self._partial is not None:
            self._partial.cancel()

    def start_partial(self, due: PartialDue, read: Callable[[PartialDue], Coroutine[Any, Any, None]]) -> None:
        if self._partial is not None and not self._partial.done():
            return  # one partial decode at a time
        self._partial = self.scope.spawn(read(due), "partial")

    # ------------------------------------------------------------ the final text, guessed at a pause

    def guess(self, pause: Pause, decode: Callable[[Pause], Awaitable[str]]) -> None:
        if self._guess is not None and not self._guess.done():
            return  # one decode at a time
        self._guess = self.scope.spawn(_text_of(decode, pause), "guess")

    def guessed_text(self) -> asyncio.Task[str] | None:
        """The decode started at the pause, if no voice came since (voice cancels it: `went_on`)."""
        return self._guess

    def went_on(self) -> None:
        """Voice after the pause: the text guessed there, and the reply started on it, will not be used."""
        if self._guess is not None:
            self._guess.cancel()
            self._guess = None
        if self.prefetch is not None:
            log.debug("speculative LLM dropped: the user went on")
        self.cancel_prefetch()

    def start_prefetch(self, prefetch: PrefetchedReply) -> None:
        self.cancel_prefetch()
        self.prefetch = prefetch
        self.scope.adopt(prefetch.task)

    def speak_ahead(self, key: SpeechKey, synthesis: Awaitable[Audio]) -> None:
        self._spoken_ahead = (key, self.scope.spawn(_audio_of(synthesis), "speak-ahead"))

    def cancel_prefetch(self) -> None:
        if self.prefetch is not None:
            self.prefetch.cancel()
            self.prefetch = None
        self._spoken_ahead = None

    def take_prefetch(self, text: str, context: tuple[object, ...]) -> PrefetchedReply | None:
        """The reply started at the pause, if it was started for exactly this turn; it leaves this scope."""
        prefetch, self.prefetch = self.prefetch, None
        if prefetch is None:
            return None
        if prefetch.key != PrefetchKey(text, context):
            prefetch.cancel()
            self._spoken_ahead = None
            return None
        self.scope.disown(prefetch.task)
        return prefetch

    def take_spoken_ahead(self) -> tuple[SpeechKey, asyncio.Task[Audio]] | None:
        ahead, self._spoken_ahead = self._spoken_ahead, None
        if ahead is not None:
            self.scope.disown(ahead[1])
        return ahead


async def _text_of(decode: Callable[[Pause], Awaitable[str]], pause: Pause) -> str:
    return await decode(pause)


async def _audio_of(synthesis: Awaitable[Audio]) -> Audio:
    return await synthesis


async def spoken_ahead_audio(ahead: tuple[SpeechKey, asyncio.Task[Audio]] | None, key: SpeechKey) -> Audio | None:
    """The first clause's audio made ahead, when it was made for this clause; a failure there is retried."""
    if ahead is None or ahead[0] != key:
        if ahead is not None:
            ahead[1].cancel()
        return None
    with contextlib.suppress(Exception):
        return await ahead[1]
    return None
