"""Where a spoken turn's time goes, stage by stage, from the end of the user's speech to the first audio.

The session already knows each moment; this only writes them down. The clock is the session's (the
event loop's, virtual in tests), and every stage is given in seconds after the end of the user's
speech, the moment a person waiting for the answer starts counting (it is also where `voxgate bench
latency` starts its clock):

    end_of_turn      0 → the turn was closed: the silence the listener waited to be sure the user had finished
    transcript       turn closed → `transcript.user` (the final decode, if it was not ready at the pause)
    llm_first_token  LLM request → its first token reached the reply (a request started at a pause
                     (session/prefetch.py) may begin before the turn closed)
    first_clause     first token → the first clause to say was cut (`reply.started`)
    tts_first_audio  that clause sent to the voice → its audio (~0 when it was synthesized ahead)
    first_audio      audio ready → the first `reply.audio` handed to the socket

A turn is opened when the listener closes it (`turn_ended`), bound to the reply that answers it
(`reply_started`, trigger `user_turn`), and timed at that reply's first `reply.audio`, or at its
`reply.done` when it ended before any audio: interrupted, failed (a `reply.error`), or a text-only
reply. The session feeds it the events it sends (`note`), so what is timed is what the client was
told. A turn the user went on from before it was answered is not timed; one replaced by another
turn after its transcript was sent is counted as abandoned.

The timings go to an observer (the server's metrics and traces, voxgate/telemetry), and, for a
client that asked (`voxgate.turn_latency`), into a `voxgate.turn.latency` event.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from voxgate.protocol.events import (
    LatencyStage,
    ReplyAudio,
    ReplyDone,
    ReplyError,
    ReplyStarted,
    ServerEvent,
    SessionError,
    TurnLatency,
    UserTranscript,
)

if TYPE_CHECKING:
    from voxgate.backends.base import LLMEvent
    from voxgate.session.prefetch import PrefetchedReply
    from voxgate.session.reply import ActiveReply

STAGES = ("end_of_turn", "transcript", "llm_first_token", "first_clause", "tts_first_audio", "first_audio")
Outcome = Literal["answered", "interrupted", "failed", "abandoned"]
ResumeKind = Literal["paused", "cut"]  # a paused reply went on; a cut reply's clause was said again


@dataclass(frozen=True)
class Stage:
    name: str
    start_s: float  # seconds after the end of the user's speech
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class TimedTurn:
    session_id: str
    item_id: str
    reply_id: str | None
    outcome: Outcome
    stages: tuple[Stage, ...]
    speech_end_unix: float  # wall time of the end of the user's speech (traces are in wall time)
    prefetched: bool  # the LLM was started at a pause, before the turn closed

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    @property
    def first_audio_s(self) -> float | None:
        first = self.stage("first_audio")
        return first.end_s if first is not None else None

    def event(self) -> TurnLatency:
        """The `voxgate.turn.latency` event a client that asked for it gets."""
        assert self.outcome != "abandoned", "an abandoned turn has no reply to report on"
        first = self.first_audio_s
        return TurnLatency(
            item_id=self.item_id,
            reply_id=self.reply_id,
            outcome=self.outcome,
            first_audio_ms=_ms(first) if first is not None else None,
            prefetched=self.prefetched,
            stages=[LatencyStage(name=s.name, start_ms=_ms(s.start_s), end_ms=_ms(s.end_s)) for s in self.stages],
        )


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class TurnObserver(Protocol):
    """Where a session's timings and counts go: the server's metrics and traces (voxgate/telemetry)."""

    def session_started(self) -> None: ...

    def turn_timed(self, turn: TimedTurn) -> None: ...

    def reply_done(self, trigger: str, status: str) -> None: ...

    def error(self, event: str, code: str) -> None:
        """A `session.error` or `reply.error` (`event`) with its code."""
        ...

    def barge_in(self) -> None: ...

    def reply_resumed(self, kind: ResumeKind) -> None: ...


class NoObserver:
    """A session nobody watches (tests, a conversation before a socket holds it)."""

    def session_started(self) -> None:
        return None

    def turn_timed(self, turn: TimedTurn) -> None:
        return None

    def reply_done(self, trigger: str, status: str) -> None:
        return None

    def error(self, event: str, code: str) -> None:
        return None

    def barge_in(self) -> None:
        return None

    def reply_resumed(self, kind: ResumeKind) -> None:
        return None


NO_OBSERVER = NoObserver()


class _OpenTurn:
    """The moments of one turn, in the session's clock, as they happen."""

    def __init__(self, item_id: str, speech_end: float, closed: float, speech_end_unix: float) -> None:
        self.item_id = item_id
        self.speech_end = speech_end
        self.closed = closed
        self.speech_end_unix = speech_end_unix
        self.reply_id: str | None = None
        self.transcript: float | None = None
        self.llm: tuple[float, float] | None = None  # (requested, first token)
        self.prefetched = False
        self.clause: float | None = None
        self.tts: tuple[float, float] | None = None  # (asked, audio ready) of the first clause
        self.first_audio: float | None = None
        self.failed = False

    def stages(self) -> tuple[Stage, ...]:
        t0 = self.speech_end

        def at(moment: float) -> float:
            return max(0.0, moment - t0)

        out = [Stage("end_of_turn", 0.0, at(self.closed))]
        last = self.closed
        if self.transcript is not None:
            out.append(Stage("transcript", at(self.closed), at(self.transcript)))
            last = self.transcript
        if self.llm is not None:
            asked, first = self.llm
            out.append(Stage("llm_first_token", at(asked), at(first)))
            last = max(last, first)
        if self.clause is not None:
            out.append(Stage("first_clause", at(last), at(self.clause)))
            last = self.clause
        if self.tts is not None:
            asked, ready = self.tts
            out.append(Stage("tts_first_audio", at(asked), at(ready)))
            last = max(last, ready)
        if self.first_audio is not None:
            out.append(Stage("first_audio", at(last), at(self.first_audio)))
        return tuple(out)


class TurnStages:
    def __init__(self, session_id: str, now: Callable[[], float], *, wall: Callable[[], float] = time.time) -> None:
        """`now`: the session's clock; `wall`: Unix time, only to place the turn for traces."""
        self.session_id = session_id
        self._now = now
        self._wall = wall
        self.observer: TurnObserver = NO_OBSERVER  # the server's, set by the socket that holds the session
        self._open: _OpenTurn | None = None

    # ------------------------------------------------------------ what the session tells

    def turn_ended(self, item_id: str, silence_s: float, *, speech_end_at: float | None = None) -> None:
        """The listener closed a user turn after `silence_s` of silence (audio seconds); the speech ended
        at `speech_end_at` on the session's clock, if the listener knows (else the close less the silence)."""
        if self._open is not None and self._open.item_id != item_id:
            self._abandon(self._open)
        now = self._now()
        waited = silence_s if speech_end_at is None else max(0.0, now - speech_end_at)
        self._open = _OpenTurn(item_id, now - waited, now, self._wall() - waited)

    def reply_started(self, reply: ActiveReply) -> None:
        """A reply begins (before its first word): the one answering the open turn is bound to it."""
        turn = self._open
        if turn is not None and turn.reply_id is None and reply.trigger == "user_turn":
            turn.reply_id = reply.reply_id

    def llm(
        self, stream: AsyncIterator[LLMEvent], reply: ActiveReply | None, prefetched: PrefetchedReply | None = None
    ) -> AsyncIterator[LLMEvent]:
        """`stream`, noting when its first event reaches `reply` (the reply it was made for, if that answers
        the open turn). A stream started at a pause counts from when it started, and its first token from
        when the model made it."""
        turn = self._open
        if turn is None or reply is None or turn.reply_id != reply.reply_id or turn.llm is not None:
            return stream
        asked = prefetched.started_at if prefetched is not None else self._now()
        return self._first_event(stream, turn, asked, prefetched)

    async def _first_event(
        self, stream: AsyncIterator[LLMEvent], turn: _OpenTurn, asked: float, prefetched: PrefetchedReply | None
    ) -> AsyncIterator[LLMEvent]:
        first = True
        try:
            async for event in stream:
                if first:
                    first = False
                    made = prefetched.first_event_at if prefetched is not None else None
                    turn.llm = (asked, made if made is not None else self._now())
                    turn.prefetched = prefetched is not None
                yield event
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    def synthesized(self, reply_id: str, asked: float) -> None:
        """The first clause of reply `reply_id` has its audio (asked for at `asked`)."""
        turn = self._open
        if turn is not None and turn.reply_id == reply_id and turn.tts is None:
            turn.tts = (asked, self._now())

    def barge_in(self) -> None:
        self.observer.barge_in()

    def reply_resumed(self, kind: ResumeKind) -> None:
        self.observer.reply_resumed(kind)

    def detached(self) -> None:
        """The socket went: the turn in flight is not timed (its reply, if any, was cut with it)."""
        self._open = None

    # ------------------------------------------------------------ what the session sends

    def note(self, event: ServerEvent, trigger_of: Callable[[str], str]) -> TimedTurn | None:
        """An event the session sends; returns the turn it completes the timing of, if any."""
        if isinstance(event, SessionError):
            self.observer.error(event.type, event.code)
        elif isinstance(event, ReplyError):
            self.observer.error(event.type, event.code)
        elif isinstance(event, ReplyDone):
            self.observer.reply_done(trigger_of(event.reply_id), event.status)
        turn = self._open
        if turn is None:
            return None
        if isinstance(event, UserTranscript) and event.item_id == turn.item_id and turn.transcript is None:
            turn.transcript = self._now()
            return None
        if turn.reply_id is None or getattr(event, "reply_id", None) != turn.reply_id:
            return None
        if isinstance(event, ReplyStarted):
            turn.clause = self._now()
        elif isinstance(event, ReplyError):
            turn.failed = True
        elif isinstance(event, ReplyAudio):
            turn.first_audio = self._now()
            return self._finish(turn, "failed" if turn.failed else "answered")
        elif isinstance(event, ReplyDone):
            cut = event.status == "interrupted"
            return self._finish(turn, "failed" if turn.failed else "interrupted" if cut else "answered")
        return None

    # ------------------------------------------------------------ done

    def _finish(self, turn: _OpenTurn, outcome: Outcome) -> TimedTurn:
        self._open = None
        timed = TimedTurn(
            self.session_id,
            turn.item_id,
            turn.reply_id,
            outcome,
            turn.stages(),
            turn.speech_end_unix,
            turn.prefetched,
        )
        self.observer.turn_timed(timed)
        return timed

    def _abandon(self, turn: _OpenTurn) -> None:
        """A turn replaced by another before it was answered: counted if the client saw its transcript."""
        self._open = None
        if turn.transcript is not None or turn.reply_id is not None:
            self.observer.turn_timed(
                TimedTurn(
                    self.session_id,
                    turn.item_id,
                    turn.reply_id,
                    "abandoned",
                    turn.stages(),
                    turn.speech_end_unix,
                    turn.prefetched,
                )
            )
