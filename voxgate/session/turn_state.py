"""Where the turn is: one named state at a time, and the work each state owns.

    Listening ──voice──▶ UserTalking ──turn end──▶ Transcribing ──transcript──▶ Replying (thinking)
        ▲                   ▲   │ noise               │ voice (went on)             │ first audio
        │                   │   ▼                     ▼                             ▼
        │                   │  Listening         UserTalking (the closed      Replying (speaking)
        │                   │  / AwaitingTools    turn's audio prepended)          │ voice over it
        │                   │                                                      ▼
        │                   └───────────── barge-in: the reply is cut ──────── OverAgent
        │                                                                  unconfirmed → reading
        │                                         noise, echo, backchannel:         │
        │                                         the reply goes on (Replying) ◀────┘
        │
        └── reply done ── AwaitingTools (the reply called tools) ── every result in ──▶ Replying

Each state names the holders of its work (`Holder`: a user turn's decodes and guessed reply, the
held voice's reads, a reply). Entering a state closes every holder the old state had and the new one
does not, which cancels its tasks, so work of a state that was left never reports back. Voice while
thinking cancels the unheard reply; voice while transcribing re-opens the user's turn; voice while
speaking is held (`OverAgent`) until it is known to be a barge-in, a backchannel or noise.

A turn with `interrupt_response` off lets a speaking reply finish: the session keeps it running
outside the state (it still ends with its own `reply.done`) while the user's next turn goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from voxgate.session.held_voice import HeldVoice
from voxgate.session.reply import ActiveReply
from voxgate.session.user_turn import UserTurn

Holder = UserTurn | HeldVoice | ActiveReply  # each owns running work: closing it cancels the work and waits


@dataclass(frozen=True)
class Listening:
    """Nothing is happening: the agent waits for the user."""


@dataclass(frozen=True)
class AwaitingTools:
    """The reply that called tools is done; the agent waits for their results (the user may still talk)."""

    call_ids: frozenset[str]


@dataclass(frozen=True, eq=False)
class UserTalking:
    turn: UserTurn  # the partial decodes, the guess at the final text and the reply started on it


@dataclass(frozen=True, eq=False)
class Transcribing:
    turn: UserTurn  # the same one: the guessed text and reply are used if the turn ended as guessed


@dataclass(frozen=True, eq=False)
class Replying:
    reply: ActiveReply


OverAgentStage = Literal["unconfirmed", "echo_unknown", "reading"]


@dataclass(frozen=True, eq=False)
class OverAgent:
    """Voice while the agent speaks: a cough, a backchannel, the agent's own echo, or a barge-in.

    `unconfirmed`: too little voice yet to be speech; `echo_unknown`: enough, but the echo guard cannot
    yet tell the user from the agent's echo; `reading`: speech, its words being read (the reply paused
    with `barge_in_pause`)."""

    reply: ActiveReply
    voice: HeldVoice  # the reads of the words
    stage: OverAgentStage


TurnState = Listening | AwaitingTools | UserTalking | Transcribing | Replying | OverAgent


def holders(state: TurnState) -> tuple[Holder, ...]:
    match state:
        case UserTalking(turn) | Transcribing(turn):
            return (turn,)
        case Replying(reply):
            return (reply,)
        case OverAgent(reply, voice, _):
            return (reply, voice)
    return ()


def reply_of(state: TurnState) -> ActiveReply | None:
    """The reply the state is about: being spoken, or held under voice over the agent."""
    return state.reply if isinstance(state, Replying | OverAgent) else None


def name(state: TurnState) -> str:
    if isinstance(state, OverAgent):
        return f"OverAgent({state.stage})"
    return type(state).__name__
