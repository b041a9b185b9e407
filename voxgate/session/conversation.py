"""One conversation: configuration, history, and the turn machine that runs the user's turns and the replies.

A conversation outlives its socket (for `session.resume`). Where the turn is lives in one value,
`self.state` (session/turn_state.py has the diagram); every piece of work belongs to a holder of that
state (a user turn, the held voice, a reply) and runs in its scope, so entering a state that no longer
names a holder cancels its work. Detaching the socket returns to a resting state the same way, which
leaves nothing behind for the next socket. The transport (server/connection.py, integrations/twilio)
decodes the wire and forwards; the session sends through it and tells its playback when to flush.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from voxgate.audio.echo import EchoGuard
from voxgate.backends.base import ANALYSIS_RATE, Audio, ChatMessage
from voxgate.protocol.events import (
    ErrorCode,
    ReplyErrorCode,
    ServerEvent,
    SessionConfig,
    SessionEnded,
    SessionError,
    SpeechStarted,
    SpeechStopped,
    UserTranscript,
    UserTranscriptDelta,
)
from voxgate.redaction import redact
from voxgate.session.config import ConfigError, LiveConfig, apply_update, resolved, sent_fields
from voxgate.session.false_interruptions import BACKCHANNEL_HINTS, HOLD_MAX_VOICED_S, ResumePoint, is_backchannel
from voxgate.session.languages import voice_for_language
from voxgate.session.listener import (
    CONFIRM_VOICED_S,
    ECHO_CONFIRM_VOICED_S,
    Listener,
    ListenerEvent,
    NoiseEnd,
    PartialDue,
    Pause,
    SpeechConfirmed,
    SpeechStart,
    TurnEnd,
    VoiceResumed,
)
from voxgate.session.over_agent import VoiceOverAgent
from voxgate.session.recording import Recorder
from voxgate.session.reply import ActiveReply, ReplyFailed, Trigger, clauses_of
from voxgate.session.replying import Replies
from voxgate.session.timeline import Timeline
from voxgate.session.tool_runs import ToolRuns
from voxgate.session.tools import ToolLedger
from voxgate.session.turn_policy import TurnEvidence, decided_by_words, turn_is_complete
from voxgate.session.turn_stages import TurnStages
from voxgate.session.turn_state import (
    AwaitingTools,
    Listening,
    OverAgent,
    Replying,
    Transcribing,
    TurnState,
    UserTalking,
    holders,
    name,
    reply_of,
)
from voxgate.session.user_turn import UserTurn

if TYPE_CHECKING:
    from voxgate.session.policy import SessionPolicy
    from voxgate.session.ports import SessionPorts, TranscribePurpose, Transport
    from voxgate.session.speaker import SpeechItem

log = logging.getLogger("voxgate.session")

MIN_LATENCY_INTERRUPTION_S = 0.12  # `transcription_mode: min_latency`: the shortest voice over the agent that stops it
AgentLookup = Callable[[str, str], Awaitable[tuple[str, SessionConfig] | None]]  # (owner, id or name) -> (id, config)
MAX_SESSION_S = 10_800
AGENT_READY_TIMEOUT_S = 30.0  # a first session may still be loading the models (hosted: 10 s)
OWED_TRIGGERS: frozenset[Trigger] = frozenset({"user_turn", "tool_result", "reply_create"})  # replies a turn waits on


class Conversation:
    def __init__(
        self,
        ports: SessionPorts,
        policy: SessionPolicy,
        session_id: str,
        owner: str,
        *,
        now: Callable[[], float] | None = None,
    ) -> None:
        """`now`: the clock of playback and echo timing; the running event loop's by default (virtual in tests)."""
        self.ports = ports
        self.policy = policy
        self.session_id = session_id
        self.owner = owner
        self.now = now or (lambda: asyncio.get_running_loop().time())
        self.config = LiveConfig(system_prompt=policy.system_prompt, language=policy.language)
        self.started_at = time.time()
        self.max_session_s: float = MAX_SESSION_S  # the token's cap, set by the socket that opens it
        self.audio_s = 0.0  # user audio streamed, for `session.ended`
        self.ended = False
        self.agent_id = ""
        self.agent_lookup: AgentLookup | None = None  # stored agents by id or name, for `agent_id` (the registry's)
        self.history: list[ChatMessage] = []
        self.state: TurnState = Listening()
        self.tools = ToolLedger()
        self.resume_point = ResumePoint(self.now)
        self.replies = Replies(self)
        self.over_agent = VoiceOverAgent(self)
        self._transport: Transport | None = None
        self._listener: Listener | None = None
        self._echo: EchoGuard | None = None
        self._discarding: int | None = None  # an utterance over an uninterruptible reply, dropped whole
        self._withheld: list[tuple[str, str]] = []  # (item_id, text) of turns said while a hold tool runs
        self._speech_announced = False  # input.speech.started was sent, its input.speech.stopped not yet
        self._owed: Trigger | None = None  # a reply cut unheard by a socket drop, given on resume (M7)
        self.tool_runs = ToolRuns(self, session_id)
        self.timeline = Timeline(self.started_at)
        self.stages = TurnStages(session_id, self.now)  # each spoken turn's latency, stage by stage
        self.recorder: Recorder | None = None  # the stereo recording, when the operator turned recording on
        # Told at each turn's end, when nothing is in flight: a fleet saves the session then (session/snapshot.py).
        self.on_rest: Callable[[Conversation], None] | None = None

    # ------------------------------------------------------------ the socket

    @property
    def ready(self) -> bool:
        return self.config.applied_once

    def attach(self, transport: Transport) -> None:
        self._transport = transport

    async def detach(self) -> None:
        """The socket is gone: stop all work (what the user heard stays in the history).

        A reply to the user (or to tool results) cut before a word of it was heard leaves its turn in
        history unanswered: it is owed to the socket that resumes the session (`answer_owed`, M7)."""
        self._transport = None
        self.stages.detached()
        cut, before = reply_of(self.state), len(self.history)
        await self.enter(self._resting())
        if cut is not None and cut.trigger in OWED_TRIGGERS and not cut.finished and len(self.history) == before:
            self._owed = cut.trigger
        await self.replies.close_background()
        self.replies.stop_warming()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def answer_owed(self) -> None:
        """After `session.ready` on a resumed socket: the reply the dropped socket never got, given now."""
        owed, self._owed = self._owed, None
        if owed is not None and not self.ended and isinstance(self.state, Listening):
            log.debug("resumed: answering the %s the dropped socket never got a reply to", owed)
            await self.replies.start(self.replies.from_llm(), trigger=owed)

    def resumed(self) -> None:
        """A new socket took this conversation over: fresh audio state, same history and config."""
        if self._listener is not None:
            self._listener.close()
        self._listener = None
        self._speech_announced = False
        self._setup_input()

    async def emit(self, event: ServerEvent) -> None:
        self.timeline.note(event, self._trigger_of)
        timed = self.stages.note(event, self._trigger_of)
        await self._send(event)
        if timed is not None and self.config.turn_latency:  # [Voxgate] only to a client that asked
            await self._send(timed.event())

    async def _send(self, event: ServerEvent) -> None:
        if self._transport is None:
            return
        # input.speech.* go in pairs: speech that began over a reply the user may not stop was not announced
        # (clients flush their playback on it), so its end is not announced either, even if the reply ended first.
        if isinstance(event, SpeechStopped):
            if not self._speech_announced:
                return
            self._speech_announced = False
        elif isinstance(event, SpeechStarted):
            self._speech_announced = True
        await self._transport.send(event)

    def _trigger_of(self, reply_id: str) -> str:
        reply = reply_of(self.state) or self.replies.background
        return reply.trigger if reply is not None and reply.reply_id == reply_id else "user_turn"

    async def error(self, code: ErrorCode, message: str, param: str | None = None) -> None:
        await self.emit(SessionError(code=code, message=message, param=param, session_id=self.session_id))

    def durations(self, at: float | None = None) -> tuple[float, float | None]:
        """(seconds since the session began, seconds of audio the user streamed or None): what
        `session.ended` and the session record's metadata report."""
        end = time.time() if at is None else at
        return round(end - self.started_at, 3), (round(self.audio_s, 3) if self.audio_s > 0 else None)

    def ended_event(self) -> SessionEnded:
        session_s, audio_s = self.durations()
        return SessionEnded(session_duration_seconds=session_s, audio_duration_seconds=audio_s)

    @property
    def expires_at(self) -> float:
        """When the duration cap ends this session (Unix seconds)."""
        return self.started_at + self.max_session_s

    async def end(self) -> None:
        """Ended for good (`session.end`, the cap): every task stops; nothing more is sent for it."""
        self.ended = True
        transport, self._transport = self._transport, None
        await self.enter(Listening())
        await self.replies.close_background()
        self.replies.stop_warming()
        await self.tool_runs.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._transport = transport  # the caller still sends `session.ended` through it

    @property
    def transport(self) -> Transport | None:
        return self._transport

    @property
    def echo(self) -> EchoGuard | None:
        return self._echo

    @property
    def listener(self) -> Listener | None:
        return self._listener

    # ------------------------------------------------------------ the turn machine

    async def enter(self, new: TurnState, *, announce: ServerEvent | None = None) -> None:
        """Move to `new`; `announce` is sent first; then the old state's holders that `new` lacks are closed."""
        old, self.state = self.state, new
        if type(old) is not type(new) or holders(old) != holders(new):
            log.debug("turn: %s -> %s", name(old), name(new))
        if announce is not None:
            await self.emit(announce)
        kept = (*holders(new), self.replies.background)  # a reply let finish in the background goes on
        for holder in holders(old):
            if holder not in kept:
                await holder.close()

    def _resting(self) -> TurnState:
        pending = self.tools.pending
        return AwaitingTools(pending) if pending else Listening()

    async def rest(self) -> None:
        """Nothing more to do for the user now: wait for them, or answer tool results that are all in."""
        await self.enter(self._resting())
        if self.on_rest is not None:
            self.on_rest(self)
        if self.tools.answered():
            guidance = self.tools.guidance()
            self.history.extend(self.tools.take_results())
            for item_id, text in self._withheld:  # what the user said during a hold, flushed before the reply
                await self.emit(UserTranscript(text=text, item_id=item_id))
                self.history.append(ChatMessage(role="user", content=text))
            self._withheld = []
            if self._transport is None:  # a server-run tool answered while no socket holds the session
                self._owed = "tool_result"
                return
            await self.replies.start(self.replies.from_llm(instructions=guidance), trigger="tool_result")

    def new_turn(self, item_id: str | None = None) -> UserTurn:
        utterance = self._listener.utterance_id if self._listener is not None else 0
        return UserTurn(self.session_id, utterance, item_id)

    # ------------------------------------------------------------ configuration

    async def update(self, update: SessionConfig, fields_set: set[str] | None = None) -> bool:
        """Apply a session.update; returns True on the first apply (the caller sends session.ready)."""
        first = not self.config.applied_once
        if update.agent_id is not None:
            if not first:
                raise ConfigError(
                    ErrorCode.AGENT_ID_NOT_FIRST, "agent_id is only allowed in the first update", "agent_id"
                )
            if set(sent_fields(update)) - {"agent_id"}:
                raise ConfigError(ErrorCode.INVALID_CONFIG, "agent_id must be the only field of its update", "agent_id")
            found = await self.agent_lookup(self.owner, update.agent_id) if self.agent_lookup is not None else None
            if found is None:
                raise ConfigError(ErrorCode.AGENT_NOT_FOUND, f"no stored agent {update.agent_id!r}", "agent_id")
            self.agent_id, update = found
        if first:
            try:
                async with asyncio.timeout(AGENT_READY_TIMEOUT_S):
                    await asyncio.to_thread(self.ports.prepare)
            except TimeoutError:
                raise ConfigError(
                    ErrorCode.AGENT_TIMEOUT, f"the agent was not ready within {AGENT_READY_TIMEOUT_S:.0f} s"
                ) from None
            except Exception as exc:
                log.exception("models failed to load")
                why = redact(str(exc))
                raise ConfigError(ErrorCode.AGENT_INIT_FAILED, f"the agent could not start: {why}") from exc
            self.config = replace(self.config, default_voice=self.default_voice)
        self.config = apply_update(
            self.config,
            update,
            fields_set,
            self.ports.voices.resolve,
            self.ports.llms.check_llm_model,
            session_llm_allowed=self.policy.session_llm or bool(self.agent_id),  # a stored agent's llm: the operator's
        )
        self._setup_input()
        self.replies.warm()
        if first:
            self.stages.observer.session_started()
        if first and self.policy.recording and self.recorder is None:
            self.recorder = Recorder(self.now())
        return first

    @property
    def default_voice(self) -> str:
        """The voice a session that names none speaks with (the language's best, else the server's)."""
        try:
            named = voice_for_language(self.config.language)
            return self.ports.voices.resolve(named, language=self.config.language).requested
        except Exception:  # a catalog that cannot say: the echo still needs a name
            return ""

    def resolved_config(self) -> dict[str, Any]:
        return resolved(self.config, default_voice=self.config.voice or self.default_voice, agent_id=self.agent_id)

    def _setup_input(self) -> None:
        if self._echo is None and self.policy.echo_guard:
            self._echo = EchoGuard(now=self.now)
        if self._listener is None:
            self._listener = Listener(
                self.ports.new_vad(),
                turn_detection=lambda: self.config.timing,
                end_of_turn=self._end_of_turn,
                partial_interval_s=self.policy.partial_interval_s,
                now=self.now,
            )

    async def greet(self) -> None:
        if self.config.greeting:
            greeting = clauses_of(self.config.greeting, first_min_words=self.replies.first_min_words())
            await self.replies.start(greeting, trigger="greeting")

    # ------------------------------------------------------------ what the client asks for directly

    async def reply_now(self, instructions: str | None) -> None:
        """`reply.create`: a reply now; one playing is interrupted first, as `reply.cancel` would (its ending
        is sent, and the client's playback flushed before the new reply's audio)."""
        await self.cancel_reply(None)
        status = self.tools.holding  # a status update while a hold tool runs: words, not another call
        items = self.replies.from_llm(instructions=instructions, tools=not status)
        await self.replies.start(items, trigger="reply_create")

    async def cancel_reply(self, reply_id: str | None) -> None:
        """`reply.cancel`: like a barge-in with no user turn. A reply that is not the current one is ignored."""
        reply = reply_of(self.state) or self.replies.background
        if reply is None or (reply_id is not None and reply_id != reply.reply_id):
            return
        if reply is self.replies.background:
            await self.replies.close_background()
        else:
            await self.enter(self._resting())
        self.resume_point.forget()  # not cut by the user's voice: an "okay" next must not bring it back
        await self.replies.interrupted(reply)

    async def add_message(self, role: str, content: str) -> None:
        """`conversation.message`: context, not a turn; with `input.type` text a user message is the turn."""
        if role == "user" and self.config.input_type == "text":
            await self._user_text(content)
            return
        self.history.append(ChatMessage(role="system" if role == "system" else "user", content=content))

    async def _user_text(self, text: str) -> None:
        await self.enter(self._resting())
        if self.tools.holding:
            self._withheld.append((self.new_turn().item_id, text))
            return
        self._commit(text)
        await self.emit(UserTranscript(text=text, item_id=self.new_turn().item_id))  # the turn's item, as for speech
        await self.replies.start(self.replies.from_llm())

    # ------------------------------------------------------------ the user's audio

    async def on_audio(self, audio: Audio) -> None:
        listener = self._listener
        if listener is None or len(audio) == 0:
            return
        self.audio_s += len(audio) / ANALYSIS_RATE
        if self.recorder is not None:
            self.recorder.user(audio, self.now())
        if self.config.input_type == "text":
            return  # no audio is expected: a text session's turns are its messages
        confirm = self._interruption_delay_s()
        if self._echo is not None:
            before = self._echo.state
            audio = self._echo.process(audio)
            now = self._echo.state
            if now == "present":
                confirm = max(confirm, ECHO_CONFIRM_VOICED_S)
            listener.confirm_voiced_s = confirm
            await self.over_agent.settle_echo(before, now)
        else:
            listener.confirm_voiced_s = confirm
        events = await listener.feed(audio)
        state = self.state
        if isinstance(state, OverAgent) and state.stage == "reading" and listener.voiced_s >= HOLD_MAX_VOICED_S:
            await self.over_agent.barge_in(f"{listener.voiced_s:.2f} s of voice is more than a backchannel")
        for event in events:
            await self._on_listener(event, listener)

    def _interruption_delay_s(self) -> float:
        """How much voice over the agent stops it: `interruption_delay` if set, shortest in `min_latency` mode."""
        delay = self.config.turn.interruption_delay
        if delay is not None:
            return delay / 1000
        return MIN_LATENCY_INTERRUPTION_S if self.config.transcription_mode == "min_latency" else CONFIRM_VOICED_S

    def _talking_over_unstoppable(self) -> bool:
        """A reply plays that the user may not stop: their voice is not announced (clients flush on it)."""
        state = self.state
        background = self.replies.background
        if background is not None and background.speaking:
            return True
        return isinstance(state, Replying) and state.reply.speaking and state.reply.uninterruptible

    async def _on_listener(self, event: ListenerEvent, listener: Listener) -> None:
        state = self.state
        if self._discarding is not None:
            if self._discarding == listener.utterance_id and not isinstance(event, SpeechStart):
                if isinstance(event, TurnEnd | NoiseEnd):
                    self._discarding = None  # the discarded utterance is over
                return
            self._discarding = None
        if isinstance(event, SpeechStart):
            if isinstance(state, Replying) and state.reply.speaking and state.reply.uninterruptible:
                log.debug("speech over an uninterruptible %s discarded", state.reply.trigger)
                self._discarding = listener.utterance_id
            elif isinstance(state, Replying) and state.reply.speaking and self.config.turn.interrupt_response:
                # a cough or a click must not stop the agent: wait for more voice
                await self.enter(OverAgent(state.reply, self.over_agent.held_voice(listener), "unconfirmed"))
            else:
                await self._user_voice()
        elif isinstance(event, SpeechConfirmed):
            if isinstance(state, OverAgent) and state.stage == "unconfirmed":
                if self._echo is not None and self._echo.state == "unknown":
                    await self.enter(OverAgent(state.reply, state.voice, "echo_unknown"))  # may be our own echo
                elif self._echo is not None and self._echo.echo_only():
                    log.debug("voice over the agent is residual echo (the mic holds only the agent): counted again")
                    listener.rearm()
                else:
                    await self.over_agent.confirmed(state)
        elif isinstance(event, PartialDue):
            if isinstance(state, OverAgent):
                if state.stage == "reading":
                    state.voice.read(event.audio, whole=False)
            elif isinstance(state, UserTalking) and self.config.continuous_partials:
                state.turn.start_partial(event, self._read_partial)
        elif isinstance(event, Pause):
            if isinstance(state, OverAgent):
                if state.stage == "reading":
                    state.voice.read(event.audio, whole=True)
            elif isinstance(state, UserTalking):
                turn = state.turn
                if not self.config.continuous_partials:  # partials only at pauses
                    turn.start_partial(PartialDue(event.audio, event.utterance), self._read_partial)
                turn.guess(event, lambda pause: self.replies.guess_final(turn, pause))
        elif isinstance(event, VoiceResumed):
            if isinstance(state, UserTalking):
                state.turn.went_on()
            elif isinstance(state, OverAgent):
                state.voice.went_on()
        elif isinstance(state, OverAgent):
            if state.stage == "reading" and isinstance(event, TurnEnd):
                voice = state.voice
                voice.ended = event
                voice.scope.spawn(self.over_agent.turn_ended(voice, event), "held-turn")
            else:  # never confirmed: noise over the agent, as if nothing happened
                log.debug("unconfirmed speech over the agent ignored: %s", type(event).__name__)
                await self.over_agent.back_to_reply(state.reply, "noise")
        else:
            turn = state.turn if isinstance(state, UserTalking) else self.new_turn()
            if not self._talking_over_unstoppable():
                await self.emit(SpeechStopped())
            if isinstance(event, TurnEnd):
                await self.transcribe(turn, event)
            else:
                await self.rest()

    async def _user_voice(self) -> None:
        """The user started speaking, not over a reply they can interrupt."""
        state, turn = self.state, self.new_turn()
        if isinstance(state, Transcribing) and self._listener is not None:
            previous = state.turn
            turn = self.new_turn(previous.item_id)  # one turn, one item: the deltas keep its id
            if previous.audio is not None:  # the user went on: the closed turn's audio starts this one
                self._listener.prepend(previous.audio)
        elif isinstance(state, Replying) and state.reply.speaking:
            self.replies.finish_in_background(state.reply)  # interrupt_response off
        # A reply still thinking is cancelled unheard (the user message stays in history).
        announce = None if self._talking_over_unstoppable() else SpeechStarted()
        await self.enter(UserTalking(turn), announce=announce)

    async def _read_partial(self, due: PartialDue) -> None:
        """The live line; it runs in the user turn's scope, which cancels it when the utterance ends."""
        state = self.state
        if not isinstance(state, UserTalking):
            return
        try:
            text = await self.decode(due.audio, "partial")
        except Exception:
            log.warning("partial decode failed", exc_info=True)
            return
        if text and text != state.turn.last_partial:
            state.turn.last_partial = text
            if not self.tools.holding:  # withheld while a hold tool runs
                await self.emit(UserTranscriptDelta(text=text, item_id=state.turn.item_id))

    async def decode(self, audio: Audio, purpose: TranscribePurpose = "final", *, held: bool = False) -> str:
        """The session's language and keyterms, applied to every decode of the user's audio.

        `held`: voice over the agent, most often a backchannel. Listing the backchannels as hotwords
        makes Whisper spell a hum as one ("Mm-hmm." where it read "In my mom.") while "Wait" or
        "No, stop" still read as themselves (measured on the turn set's voices; see BACKCHANNEL_HINTS).
        """
        keyterms = self.config.keyterms
        if held and self.config.language in (None, "en"):
            keyterms = (*keyterms, *BACKCHANNEL_HINTS)
        c = self.config
        return await self.ports.recognizer.transcribe(
            audio,
            language=c.language,
            keyterms=keyterms,
            purpose=purpose,
            languages=c.language_codes,
            prompt=c.transcription_prompt,
            mode=c.transcription_mode,
        )

    async def _end_of_turn(self, audio: Audio, silence_s: float, late: bool) -> bool:
        state, listener = self.state, self._listener
        if isinstance(state, OverAgent) or listener is None:
            return True  # a blip over the agent ends at once (and is ignored); never block the listener on it
        turn = state.turn if isinstance(state, UserTalking) else None
        guessed = turn.guessed_text() if turn is not None else None
        words = _decoded(guessed)
        decided = decided_by_words(words, late=late) if words is not None else None
        if decided is not None:  # Smart Turn would not change it: not run (~70 ms of a core, its wait)
            log.debug("end of turn check (late=%s): words decide %r complete=%s", late, words, decided)
            return decided
        p: float | None = None
        if self.ports.turn_model is not None:
            try:
                p = await self.ports.turn_model.probability_complete(audio)
            except Exception:  # the words and the silence still decide
                log.warning("end-of-turn model failed", exc_info=True)
        text = turn.last_partial if turn is not None else ""
        if guessed is not None:
            await asyncio.wait({guessed})  # not `await`: a cancelled guess must not cancel the listener
            decoded = _decoded(guessed)
            if decoded is not None:
                text = decoded
        complete = turn_is_complete(TurnEvidence(text, p), self.policy.smart_turn_threshold, late=late)
        log.debug("end of turn check (late=%s): p=%s text=%r complete=%s", late, p, text, complete)
        return complete

    # ------------------------------------------------------------ the user's turn

    async def transcribe(self, turn: UserTurn, end: TurnEnd, decided: str | None = None) -> None:
        turn.audio = end.audio
        turn.end()
        self.stages.turn_ended(turn.item_id, end.silence_s, speech_end_at=end.speech_end_at)
        await self.enter(Transcribing(turn))
        turn.scope.spawn(self._complete_turn(turn, end, decided), "transcript")

    async def _complete_turn(self, turn: UserTurn, end: TurnEnd, decided: str | None) -> None:
        try:
            async with asyncio.timeout(self.policy.stt_timeout_s):
                guessed = turn.guessed_text()
                text = decided if decided is not None else await (guessed or self.decode(end.audio))
        except Exception as exc:
            timeout = isinstance(exc, TimeoutError)
            if not timeout:
                log.exception("speech recognition failed")
            why = redact(str(exc))
            message = "speech recognition took too long" if timeout else f"speech recognition failed: {why}"
            # The contract has no recognizer code but stt_timeout (§7.2); only a timeout is worth retrying.
            failure = ReplyFailed(ReplyErrorCode.STT_TIMEOUT, message, retryable=timeout)
            await self.replies.start(_failing(failure))  # reply.error, then the apology: the user is waiting
            return
        resume = self.resume_point.take_if_nothing_said(text)
        if resume is not None:  # the interruption was a cough or an "uh-huh": say the cut-off clause again
            log.debug("false interruption (%r): resuming", text)
            self.stages.reply_resumed("cut")
            if text:
                self._commit(text)
                await self.emit(UserTranscript(text=text, item_id=turn.item_id))
            await self.replies.start(clauses_of(resume))
            return
        if not text or (self.tools.pending and is_backchannel(text)):
            # Nothing said, or only an "mm-hmm" while a tool runs: not a turn, so the call stays pending (H3).
            await self.rest()
            return
        text = self.ports.recognizer.finish_transcript(
            text, language=self.config.language, keyterms=self.config.keyterms
        )
        if self.tools.holding:  # a hold tool runs: the turn joins the context when its result comes
            self._withheld.append((turn.item_id, text))
            await self.rest()
            return
        prefetched = turn.take_prefetch(text, self.replies.context_key())
        ahead = turn.take_spoken_ahead() if prefetched is not None else None
        await self.emit(UserTranscript(text=text, item_id=turn.item_id))
        self._commit(text)
        await self.replies.start(self.replies.from_llm(prefetched), prefetched=prefetched, ahead=ahead)

    def _commit(self, text: str) -> None:
        """The user's turn is in history; tool calls still waiting for results are settled first."""
        self.tools.settle(self.history)
        self.history.append(ChatMessage(role="user", content=text))

    async def on_reply_finished(self, reply: ActiveReply) -> None:
        """A reply completed on its own (or closed after a failure)."""
        state = self.state
        if isinstance(state, Replying) and state.reply is reply:
            await self.rest()
        elif isinstance(state, OverAgent) and state.reply is reply and state.stage == "reading":
            await self.over_agent.barge_in("the agent finished")  # the held voice is the user's next turn
        elif isinstance(state, Listening | AwaitingTools):
            await self.rest()

    # ------------------------------------------------------------ tools and playback

    async def on_tool_result(self, call_id: str, result: str, is_error: bool = False, *, ours: bool = False) -> None:
        """A tool's result: the client's (`tool.result`), or, `ours`, from a tool the server ran itself."""
        if self.tools.runs_here(call_id) and not ours:
            log.info("tool.result for a call the server runs itself ignored", extra={"call_id": call_id})
            return
        state = self.state
        reply = reply_of(state)
        in_flight = reply.calls if reply is not None else ()
        verdict = self.tools.result(call_id, result, in_flight=in_flight, is_error=is_error)
        if verdict == "discarded":
            log.info("tool result for a discarded call ignored", extra={"call_id": call_id})
        elif verdict == "unknown":
            await self.error(ErrorCode.INVALID_VALUE, f"tool.result for unknown call_id {call_id!r}", "call_id")
        elif isinstance(state, Listening | AwaitingTools):
            await self.rest()

    def calls_sent(self, reply: ActiveReply) -> None:
        self.tool_runs.calls_sent(reply)

    def acknowledge_playback(self, reply_id: str, played_s: float) -> None:
        """The transport confirms the first `played_s` seconds of reply `reply_id` were played to the user."""
        self.replies.acknowledge(reply_id, played_s)


def _decoded(guess: asyncio.Task[str] | None) -> str | None:
    """The text of a guess at the pause that has finished without failing; None while it runs, or if it failed."""
    if guess is None or not guess.done() or guess.cancelled() or guess.exception() is not None:
        return None
    return guess.result()


async def _failing(failure: ReplyFailed) -> AsyncIterator[SpeechItem]:
    """The items of a reply that failed before it could say anything (the recognizer gave no words)."""
    raise failure
    yield  # an async generator
