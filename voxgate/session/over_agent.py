"""Voice over the agent, from its onset to its verdict: noise, the agent's own echo, a backchannel, or a barge-in.

The turn machine holds such voice in `OverAgent` (session/turn_state.py): `unconfirmed` until there is
enough of it to be speech, `echo_unknown` while the echo guard cannot yet tell the user from the
agent's own voice, then `reading` while its words are read (session/held_voice.py). Every way out is
here: back to the reply (it goes on, resumed at the clause that was playing) or into the user's turn
(the reply cut where the user heard it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from voxgate.protocol.events import ServerEvent, SpeechStarted, SpeechStopped
from voxgate.session.false_interruptions import is_backchannel
from voxgate.session.held_voice import HeldVoice
from voxgate.session.listener import Listener, TurnEnd
from voxgate.session.reply import ActiveReply
from voxgate.session.turn_state import OverAgent, Replying, TurnState, UserTalking
from voxgate.session.user_turn import UserTurn

if TYPE_CHECKING:
    from voxgate.backends.base import Audio
    from voxgate.session.policy import SessionPolicy
    from voxgate.session.ports import TranscribePurpose
    from voxgate.session.replying import Replies
    from voxgate.session.turn_stages import TurnStages

log = logging.getLogger("voxgate.session")


class TurnHost(Protocol):
    """What the over-agent rules need of their session (the Conversation)."""

    session_id: str
    policy: SessionPolicy
    state: TurnState
    replies: Replies
    stages: TurnStages

    @property
    def listener(self) -> Listener | None: ...

    async def enter(self, new: TurnState, *, announce: ServerEvent | None = None) -> None: ...

    async def emit(self, event: ServerEvent) -> None: ...

    async def decode(self, audio: Audio, purpose: TranscribePurpose = "final", *, held: bool = False) -> str: ...

    async def rest(self) -> None: ...

    def new_turn(self) -> UserTurn: ...

    async def transcribe(self, turn: UserTurn, end: TurnEnd, decided: str | None = None) -> None: ...


class VoiceOverAgent:
    def __init__(self, host: TurnHost) -> None:
        self._host = host

    def held_voice(self, listener: Listener) -> HeldVoice:
        return HeldVoice(
            self._host.session_id,
            listener,
            decode=lambda audio, purpose: self._host.decode(audio, purpose, held=True),
            reply_paused=lambda: isinstance(self._host.state, OverAgent) and self._host.state.reply.paused,
            barge_in=self.barge_in,
            backchannel=self._backchannel_at_pause,
        )

    async def confirmed(self, state: OverAgent) -> None:
        """Enough voice over the agent to be speech. Whether it stops the agent depends on its words.

        With `backchannel_words` the words are read (session/held_voice.py); meanwhile, with
        `barge_in_pause`, the agent pauses at once (the client is told to stop playback) and picks up
        at the clause it was in when the words are only a backchannel; without it the agent talks on
        until the words are known (~0.5 s later). Without `backchannel_words`, voice alone interrupts
        at once (fast, but fooled by every "uh-huh").
        """
        reply = state.reply
        voice = state.voice
        listener = self._host.listener
        if not (self._host.policy.backchannel_words and reply.speaking and listener is not None):
            await self.barge_in("voice over the agent")
            return
        await self._host.enter(OverAgent(reply, voice, "reading"))
        log.debug("voice over the agent: waiting for its words")
        if self._host.policy.barge_in_pause:
            await self._host.replies.pause(reply)
        voice.read(listener.audio_so_far(), whole=False)

    async def settle_echo(self, before: str, now: str) -> None:
        """Act on what the echo guard learned about speech held over the agent.

        Speech that began while the guard could not yet tell echo from a clean mic was heard raw. If
        the mic turns out clean, a confirmation that waited goes through now; if it carries echo, the
        voiced audio counted so far may be the agent itself, so the listener counts again on the
        cancelled audio. Not once the voice is being read with the reply paused: it was confirmed on a mic
        the guard had found clean, and the agent is silent now; a verdict of echo then can only come from
        the tail of the audio played before the pause (the user and the agent in the same voice correlated
        at 0.42-0.44 against a 0.4 threshold, seen twice in e2e runs), and acting on it cut the user off.
        """
        state = self._host.state
        listener = self._host.listener
        if not isinstance(state, OverAgent) or listener is None:
            return
        if now == "present" and before != "present" and not (state.stage == "reading" and state.reply.paused):
            log.debug("echo present: speech over the agent counted again on cancelled audio")
            listener.rearm()
            await self._host.enter(OverAgent(state.reply, self.held_voice(listener), "unconfirmed"))
            await self._host.replies.resume(state.reply, "it may have been the agent's own echo")
        elif state.stage == "echo_unknown" and now in ("absent", "none"):
            log.debug("clean mic: deferred barge-in confirmed")
            await self.confirmed(state)

    async def barge_in(self, why: str) -> None:
        """The voice over the agent is the user taking the turn: the reply is cut where the user heard it."""
        state = self._host.state
        if not isinstance(state, OverAgent):
            return
        log.debug("barge-in: %s", why)
        self._host.stages.barge_in()
        reply = state.reply
        voice = state.voice
        turn = self._host.new_turn()
        announce = None if reply.paused else SpeechStarted()  # a paused reply already announced this speech
        await self._host.enter(UserTalking(turn), announce=announce)  # closing the reply sends its interrupted events
        await self._host.replies.interrupted(reply)
        if voice.ended is not None:  # the held utterance is over already: it is the user's turn now
            await self._host.emit(SpeechStopped())
            await self._host.transcribe(turn, voice.ended, voice.words_read())

    async def _backchannel_at_pause(self, why: str) -> None:
        state = self._host.state
        if isinstance(state, OverAgent):
            await self._host.replies.resume(state.reply, why)

    async def turn_ended(self, voice: HeldVoice, end: TurnEnd) -> None:
        """Held speech over the agent ended before its words were decided: decide on all of it now."""
        text = await voice.words_at_end(end)
        state = self._host.state
        if isinstance(state, OverAgent) and (not text.strip() or is_backchannel(text)):
            log.debug("backchannel over the agent ignored: %r", text)
            await self.back_to_reply(state.reply, f"backchannel {text!r}")
            return
        await self.barge_in(f"words {text!r}")

    async def back_to_reply(self, reply: ActiveReply, why: str) -> None:
        """The voice over the agent was nothing for it: the reply goes on (or, if it ended meanwhile, rest)."""
        if reply.finished:
            await self._host.rest()
            return
        await self._host.enter(Replying(reply))
        await self._host.replies.resume(reply, why)
