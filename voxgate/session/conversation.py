"""One conversation: configuration, history, the user's turns and the agent's replies.

A conversation outlives its socket (for `session.resume`). Everything it runs — partial decodes, the
turn being transcribed, the reply being spoken — is a task it tracks, so detaching cancels all of
it and nothing leaks. The socket side (server/connection.py) only parses and forwards.

A user turn goes through phases, and what user speech does depends on the phase:
- transcribing (after end of turn, before `transcript.user`): the user went on — cancel, and the
  closed turn's audio becomes the start of the new one;
- thinking (LLM working, no `reply.started` yet): cancel unheard; the user message stays in history;
- speaking (after `reply.started`): barge-in when `interrupt_response`, else the agent goes on and
  the new turn is answered after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from voxgate.audio.codecs import WIRE_RATES, WireDecoder
from voxgate.audio.echo import EchoGuard
from voxgate.audio.resample import StreamResampler, resample
from voxgate.backends.base import ANALYSIS_RATE, Audio, ChatMessage, TextDelta, ToolCallRequest
from voxgate.protocol.events import (
    AgentTranscript,
    ErrorCode,
    ReplyDone,
    ReplyStarted,
    ServerEvent,
    SessionConfig,
    SessionError,
    SpeechStarted,
    SpeechStopped,
    UserTranscript,
    UserTranscriptDelta,
)
from voxgate.session.clauses import ClauseSplitter
from voxgate.session.config import ConfigError, LiveConfig, apply_update
from voxgate.session.false_interruptions import (
    BACKCHANNEL_HINTS,
    HOLD_MAX_VOICED_S,
    ResumePoint,
    cue_holds,
    has_interruption_cue,
    is_backchannel,
)
from voxgate.session.languages import language_instruction, voice_for_language
from voxgate.session.listener import (
    CONFIRM_VOICED_S,
    ECHO_CONFIRM_VOICED_S,
    Listener,
    NoiseEnd,
    PartialDue,
    Pause,
    SpeechConfirmed,
    SpeechStart,
    TurnEnd,
)
from voxgate.session.playback import PlaybackClock
from voxgate.session.prefetch import PrefetchedReply, PrefetchKey
from voxgate.session.speaker import ReplySpeaker, SpeechItem, ToolCallsReady
from voxgate.session.turn_policy import TurnEvidence, turn_is_complete, unfinished_reason

if TYPE_CHECKING:
    from voxgate.engine import Engine, TranscribePurpose
    from voxgate.voices import ResolvedVoice

log = logging.getLogger("voxgate.session")

TRANSITION = "One moment, let me check."
APOLOGY = "Sorry, I'm having trouble answering right now."
NOTHING_TO_SAY = "Sorry, could you say that again?"

Send = Callable[[ServerEvent], Awaitable[None]]


@dataclass
class ActiveReply:
    reply_id: str
    speaker: ReplySpeaker
    task: asyncio.Task[None] | None = None
    started: bool = False  # reply.started has been sent
    calls: list[ToolCallRequest] = field(default_factory=list)


class Conversation:
    def __init__(self, engine: Engine, session_id: str, owner: str) -> None:
        self.engine = engine
        self.session_id = session_id
        self.owner = owner
        settings = engine.settings
        self.config = LiveConfig(
            system_prompt=settings.system_prompt,
            language=None if settings.stt_language == "auto" else settings.stt_language,
        )
        self.history: list[ChatMessage] = []
        self._send: Send | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener: Listener | None = None
        self._decoder: WireDecoder | None = None
        self._resampler: StreamResampler | None = None
        self._turn_task: asyncio.Task[None] | None = None
        self._turn_audio: Audio | None = None
        self._turn_transcribed = False
        self._reply: ActiveReply | None = None
        self._speaking = asyncio.Lock()
        self._partial_busy = False
        self._last_partial = ""
        self._pending_calls: dict[str, ToolCallRequest] = {}
        self._results: dict[str, str] = {}
        self._discarded_calls: set[str] = set()
        self._echo: EchoGuard | None = None
        self._held_start = False  # speech over the agent, not yet confirmed as a barge-in
        self._confirm_deferred = False  # confirmed while the echo guard could not yet tell echo from the user
        self._words_hold = False  # confirmed voice over the agent, waiting for words: a backchannel or a barge-in?
        self._words_check: asyncio.Task[None] | None = None
        self._whole_due: tuple[Audio, int, int] | None = None  # a pause's whole read, asked for mid-read
        self._held_words: tuple[int, int, str] | None = None  # (utterance, voiced frames, words) last decoded
        self._speculation: tuple[int, int, asyncio.Task[str]] | None = None  # (utterance, voiced frames, decode)
        self._prefetch: PrefetchedReply | None = None  # the reply's LLM, started at that pause
        self._spoken_ahead: tuple[tuple[str, str, str, int], asyncio.Task[Audio]] | None = None  # its first clause
        self._resume_point = ResumePoint()
        # Set by a transport that reports what was played (Twilio marks): an interrupted reply then keeps only
        # the audio the transport acknowledged, instead of what the pacing clock assumes was played.
        self.playback_acknowledged_only = False
        # Told when a paused reply is sent again from an earlier point (reply id, reply seconds): a transport
        # that numbers the reply's audio itself (Twilio marks) starts counting there again.
        self.on_reply_rewound: Callable[[str, float], None] | None = None

    # ------------------------------------------------------------ socket lifecycle

    @property
    def ready(self) -> bool:
        return self.config.applied_once

    def attach(self, send: Send) -> None:
        self._send = send

    async def detach(self) -> None:
        """The socket is gone: stop all work; keep what the user heard in the history."""
        self._send = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._listener = None
        self._partial_busy = False

    async def emit(self, event: ServerEvent) -> None:
        if self._send is not None:
            await self._send(event)

    async def error(self, code: ErrorCode, message: str) -> None:
        await self.emit(SessionError(code=code, message=message))

    def _spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(f"{self.session_id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session task failed", exc_info=task.exception())

    # ------------------------------------------------------------ configuration

    async def update(self, update: SessionConfig, fields_set: set[str]) -> bool:
        """Apply a session.update; returns True on the first apply (the caller sends session.ready)."""
        first = not self.config.applied_once
        if first:
            try:
                await asyncio.to_thread(self.engine.prepare)
            except Exception as exc:
                log.exception("models failed to load")
                raise ConfigError(ErrorCode.AGENT_INIT_FAILED, f"the agent could not start: {exc}") from exc
        self.config = apply_update(
            self.config, update, fields_set, self.engine.voices.resolve, self.engine.check_llm_model
        )
        if first or "input" in fields_set:
            self._setup_input()
        return first

    def _setup_input(self) -> None:
        encoding = self.config.input_encoding
        if self._decoder is None or self._decoder.encoding != encoding:
            self._decoder = WireDecoder(encoding)
            self._resampler = StreamResampler(WIRE_RATES[encoding], ANALYSIS_RATE)
        if self._echo is None and self.engine.settings.echo_guard:
            self._echo = EchoGuard()
        if self._listener is None:
            self._listener = Listener(
                self.engine.vad.new_stream(),
                turn_detection=lambda: self.config.turn,
                end_of_turn=self._end_of_turn,
                partial_interval_s=self.engine.settings.partial_interval_ms / 1000,
            )

    def resumed(self) -> None:
        """A new socket took this conversation over: fresh audio state, same history and config."""
        self._decoder = None
        self._listener = None
        self._setup_input()

    # ------------------------------------------------------------ user audio

    def decode_input(self, payload: bytes) -> Audio:
        assert self._decoder is not None and self._resampler is not None
        return self._resampler.process(self._decoder.decode(payload))

    async def on_audio(self, audio: Audio) -> None:
        if self._listener is None or len(audio) == 0:
            return
        if self._echo is not None:
            before = self._echo.state
            audio = self._echo.process(audio)
            state = self._echo.state
            self._listener.confirm_voiced_s = ECHO_CONFIRM_VOICED_S if state == "present" else CONFIRM_VOICED_S
            await self._settle_echo(before, state)
        events = await self._listener.feed(audio)
        self._drop_stale_prefetch()
        if self._words_hold:
            if not self._agent_speaking():
                await self._release_hold("the agent finished")
            elif self._listener.voiced_s >= HOLD_MAX_VOICED_S:
                await self._release_hold(f"{self._listener.voiced_s:.2f} s of voice is more than a backchannel")
        for event in events:
            if isinstance(event, SpeechStart):
                self._last_partial = ""
                if self._agent_speaking() and self.config.turn.interrupt_response:
                    self._held_start = True  # a cough or a click must not stop the agent: wait for more voice
                    log.debug("speech over the agent: held until confirmed")
                else:
                    await self._on_speech_started()
            elif isinstance(event, SpeechConfirmed):
                log.debug("speech confirmed (held=%s)", self._held_start)
                if self._held_start:
                    if self._echo is not None and self._echo.state == "unknown":
                        self._confirm_deferred = True  # it may be our own echo: wait for the guard to know
                        continue
                    await self._barge_in_confirmed()
            elif isinstance(event, PartialDue):
                if self._words_hold:
                    self._check_words(event.audio, event.utterance, whole=False)
                elif not self._held_start:
                    self._start_partial(event)
            elif isinstance(event, Pause):
                if self._words_hold:
                    self._check_words(event.audio, event.utterance, whole=True)
                self._speculate(event)
            elif isinstance(event, TurnEnd | NoiseEnd):
                if self._words_hold and isinstance(event, TurnEnd):
                    self._spawn(self._held_turn_ended(event), "held-turn")
                    continue
                if self._held_start:  # never confirmed: noise over the agent, as if nothing happened
                    log.debug("unconfirmed speech over the agent ignored: %s", type(event).__name__)
                    self._held_start = self._confirm_deferred = self._words_hold = False
                    await self._resume_reply("noise")
                    continue
                await self.emit(SpeechStopped())
                if isinstance(event, TurnEnd):
                    self._turn_audio = event.audio
                    self._turn_transcribed = False
                    self._turn_task = self._spawn(self._complete_turn(event), "turn")

    async def _settle_echo(self, before: str, now: str) -> None:
        """Act on what the echo guard learned about speech held over the agent.

        Speech that began while the guard could not yet tell echo from a clean mic was heard raw. If
        the mic turns out clean, a confirmation that waited goes through now; if it carries echo, the
        voiced audio counted so far may be the agent itself, so the listener counts again on the
        cancelled audio.
        """
        if not self._held_start or self._listener is None:
            return
        if now == "present" and before != "present":
            log.debug("echo present: speech over the agent counted again on cancelled audio")
            self._listener.rearm()
            self._confirm_deferred = self._words_hold = False
            await self._resume_reply("it may have been the agent's own echo")
        elif self._confirm_deferred and now in ("absent", "none"):
            log.debug("clean mic: deferred barge-in confirmed")
            self._confirm_deferred = False
            await self._barge_in_confirmed()

    # ------------------------------------------------------------ backchannels

    async def _barge_in_confirmed(self) -> None:
        """Enough voice over the agent to be speech. Whether it stops the agent depends on its words.

        "Uh-huh", "yeah", "right" carry as much voice as "wait" or "stop". With `backchannel_words`
        the words are decoded (from the partials, the first pause, the end of the utterance); anything
        but a backchannel, or more voice than a backchannel has, is a barge-in. Meanwhile, with
        `barge_in_pause`, the agent pauses at once (the client is told to stop playback) and picks up
        at the clause it was in when the words are only a backchannel; without it the agent talks on
        until the words are known (~0.5 s later). Without `backchannel_words`, voice alone interrupts
        at once (fast, but fooled by every "uh-huh").
        """
        if self.engine.settings.backchannel_words and self._agent_speaking() and self._listener is not None:
            self._words_hold = True
            log.debug("voice over the agent: waiting for its words")
            if self.engine.settings.barge_in_pause:
                await self._pause_reply()
            self._check_words(self._listener.audio_so_far(), self._listener.utterance_id, whole=False)
            return
        self._held_start = False
        await self._on_speech_started()

    async def _release_hold(self, why: str) -> None:
        if not self._words_hold:
            return
        self._words_hold = self._held_start = False
        log.debug("barge-in: %s", why)
        await self._on_speech_started(announce=not self._reply_paused())

    def _reply_paused(self) -> bool:
        return self._reply is not None and self._reply.speaker.paused

    async def _pause_reply(self) -> None:
        """Voice over the agent: stop playback now (the client flushes on `input.speech.started`)."""
        reply = self._reply
        if reply is None or reply.speaker.paused:
            return
        await self.emit(SpeechStarted())
        reply.speaker.pause()
        if self._echo is not None:
            self._echo.flush_far_end()
        log.debug("reply paused: voice over the agent, words not known yet")

    async def _resume_reply(self, why: str) -> None:
        """The voice that paused the reply was not an interruption: go on from the clause that was playing."""
        reply = self._reply
        if reply is None or not reply.speaker.paused:
            return
        await self.emit(SpeechStopped())
        at = reply.speaker.resume()
        if self.on_reply_rewound is not None:
            self.on_reply_rewound(reply.reply_id, at)
        log.debug("reply resumed at %.2f s: %s", at, why)

    def _check_words(self, audio: Audio, utterance: int, *, whole: bool) -> None:
        """Decode the held speech (one decode at a time); words that are more than a backchannel release it.

        Mid-speech (`whole` false) only an interruption cue ("wait", "no", "stop") releases: a decode of
        a fraction of a second of humming reads as words too often. At a pause, the utterance so far
        is whole and any non-backchannel words count. While the reply is paused nothing is read
        mid-speech: the agent is already quiet, so the surer read at the pause is worth its wait.
        """
        if not whole and self._reply_paused():
            return
        voiced_frames = self._listener.voiced_frames if self._listener is not None else -1
        if self._words_check is not None and not self._words_check.done():
            if whole:  # the utterance paused mid-read: its whole read comes right after this one
                self._whole_due = (audio, utterance, voiced_frames)
            return
        self._whole_due = None

        async def check(audio: Audio, whole: bool, voiced_frames: int) -> None:
            while True:
                # The final model, not the partial one: tiny.en heard a Japanese voice's "mm-hmm" as "in and
                # hammer". At a pause the read may become the turn's transcript (`_held_turn_ended`): decode it
                # as one.
                text = await self._decode(audio, "final" if whole else "check", held=True)
                listener = self._listener
                if not (self._words_hold and listener is not None and listener.utterance_id == utterance):
                    return
                said = repr(text)
                if whole:
                    self._held_words = (utterance, voiced_frames, text)
                    real = bool(text.strip()) and not is_backchannel(text)
                    if not real:  # the user paused after a backchannel: the agent goes on (more voice is read again)
                        await self._resume_reply(f"backchannel {text!r}")
                elif has_interruption_cue(text):  # read again from the longer audio there is by now
                    again = await self._decode(listener.audio_so_far(), "check", held=True)
                    still = self._words_hold and self._listener is listener and listener.utterance_id == utterance
                    real = still and cue_holds(text, again)
                    said = f"{text!r} then {again!r}"
                else:
                    real = False
                if real:
                    await self._release_hold(f"words {said}")
                    return
                log.debug("held speech so far: %s", said)
                if whole or not (self._words_hold and self._listener is listener):
                    return
                if (due := self._whole_due) is not None and due[1] == utterance:
                    self._whole_due = None
                    audio, whole, voiced_frames = due[0], True, due[2]
                    continue
                # Mid-speech, read again at once while more voice comes: a cue ("hold on") is often not
                # readable in the first fraction of a second, and waiting for the next partial cost ~0.5 s.
                if not listener.speaking or listener.voiced_frames == voiced_frames:
                    return  # a pause: its own (whole) read decides
                audio, voiced_frames = listener.audio_so_far(), listener.voiced_frames

        self._words_check = self._spawn(check(audio, whole, voiced_frames), "words-check")

    async def _held_turn_ended(self, end: TurnEnd) -> None:
        """Held speech over the agent ended before its words were decided: decide on all of it now.

        When the speech was already decoded at its pause (same voice, nothing since), that verdict
        stands: decoding a non-word again with a little more silence can read it differently ("mm" then
        "M.M.R.").
        """
        check = self._words_check
        if check is not None and not check.done():
            with contextlib.suppress(Exception):
                await check
        held = self._held_words
        if held is not None and held[:2] == (end.utterance, end.voiced_frames):
            text = held[2]
        else:
            text = await self._decode(end.audio, held=True)
        if self._words_hold and (not text.strip() or is_backchannel(text)):
            log.debug("backchannel over the agent ignored: %r", text)
            self._words_hold = self._held_start = self._confirm_deferred = False
            await self._resume_reply(f"backchannel {text!r}")
            return
        await self._release_hold(f"words {text!r}")  # a no-op if released meanwhile (say, the agent finished)
        await self.emit(SpeechStopped())
        self._turn_audio = end.audio
        self._turn_transcribed = False
        self._turn_task = asyncio.current_task()  # a later barge-in cancels it
        await self._complete_turn(end, text)

    async def _decode(self, audio: Audio, purpose: TranscribePurpose = "final", *, held: bool = False) -> str:
        """The session's language and keyterms, applied to every decode of the user's audio.

        `held`: voice over the agent, most often a backchannel. Listing the backchannels as hotwords
        makes Whisper spell a hum as one ("Mm-hmm." where it read "In my mom.") while "Wait" or
        "No, stop" still read as themselves (measured on the turn set's voices; see BACKCHANNEL_HINTS).
        """
        keyterms = self.config.keyterms
        if held and self.config.language in (None, "en"):
            keyterms = (*keyterms, *BACKCHANNEL_HINTS)
        return await self.engine.transcribe(audio, language=self.config.language, keyterms=keyterms, purpose=purpose)

    def _agent_speaking(self) -> bool:
        return self._reply is not None and self._reply.started

    async def _on_speech_started(self, *, announce: bool = True) -> None:
        if announce:  # not when a paused reply already announced this speech
            await self.emit(SpeechStarted())
        turn = self._turn_task
        if turn is not None and not turn.done():
            reply = self._reply
            if not self._turn_transcribed:
                turn.cancel()
                if self._listener is not None and self._turn_audio is not None:
                    self._listener.prepend(self._turn_audio)
            elif reply is None or not reply.started:
                turn.cancel()
        reply = self._reply
        if reply is not None and reply.started and self.config.turn.interrupt_response:
            await self.interrupt()
        elif self._pending_calls and self.config.turn.interrupt_response:
            self._discard_pending_calls()

    def _start_partial(self, due: PartialDue) -> None:
        if self._partial_busy:
            return
        self._partial_busy = True
        self._spawn(self._partial(due), "partial")

    async def _partial(self, due: PartialDue) -> None:
        try:
            text = await self._decode(due.audio, "partial")
        finally:
            self._partial_busy = False
        listener = self._listener
        still_talking = listener is not None and listener.speaking and listener.utterance_id == due.utterance
        if text and text != self._last_partial and still_talking:
            self._last_partial = text
            await self.emit(UserTranscriptDelta(text=text))

    def _speculate(self, pause: Pause) -> None:
        """Start the final transcript at the first pause, so it is ready if this is the end of the turn."""
        if self._held_start:
            return  # unconfirmed sound over the agent: not worth a decode
        current = self._speculation
        if current is not None and not current[2].done():
            return  # one decode at a time; a stale one is simply not used
        task = asyncio.ensure_future(self._speculative_final(pause))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._speculation = (pause.utterance, pause.voiced_frames, task)

    async def _speculative_final(self, pause: Pause) -> str:
        text = await self._decode(pause.audio)
        with contextlib.suppress(Exception):  # only an optimisation: the end of turn starts the LLM anyway
            await self._start_prefetch(pause, text)
        return text

    def _context_key(self) -> tuple[object, ...]:
        tools = tuple((t.name, t.description, repr(t.parameters)) for t in self.config.tools)
        return (len(self.history), self.config.system_prompt, self.config.language, tools, self.config.llm_model)

    async def _start_prefetch(self, pause: Pause, raw: str) -> None:
        """Words that read as a finished turn: start the reply's LLM now (see session/prefetch.py)."""
        listener = self._listener
        if not self.engine.settings.llm_prefetch or listener is None or self._held_start:
            return
        if not (listener.speaking and listener.utterance_id == pause.utterance):
            return
        if listener.voiced_frames != pause.voiced_frames or self._reply is not None:
            return
        text = self.engine.finish_transcript(raw, language=self.config.language, keyterms=self.config.keyterms)
        if not text or unfinished_reason(text):
            return
        self._cancel_prefetch()
        llm = await asyncio.to_thread(self.engine.llm_for, self.config.llm_model)
        key = PrefetchKey(pause.utterance, pause.voiced_frames, text, self._context_key())
        messages = [*self._llm_messages(), ChatMessage(role="user", content=text)]
        self._prefetch = PrefetchedReply(key, llm.stream(messages, self.config.tools))
        self._tasks.add(self._prefetch.task)
        self._prefetch.task.add_done_callback(self._tasks.discard)
        log.debug("LLM started speculatively on %r", text)
        self._spawn(self._speak_ahead(self._prefetch), "speak-ahead")

    async def _speak_ahead(self, prefetch: PrefetchedReply) -> None:
        """Synthesize the prefetched reply's first clause while the turn is still being decided.

        With the LLM started at the pause, its first clause is often written before the end of the
        turn is certain; its speech then waits, ready, instead of being made after. Unused (the user
        went on), it is dropped; used, it saves one synthesis (~0.1–0.2 s with Piper) on the first audio.
        """
        clause = await prefetch.first_clause
        if clause is None or self._prefetch is not prefetch:
            return
        voice, wire_rate = self._reply_voice()
        task = asyncio.ensure_future(self._synthesize(clause, voice, wire_rate))
        self._spoken_ahead = (_speech_key(clause, voice, wire_rate), task)
        log.debug("first clause synthesized ahead: %r", clause)
        with contextlib.suppress(Exception):
            await task

    def _reply_voice(self) -> tuple[ResolvedVoice, int]:
        language = self.config.language
        voice = self.engine.voices.resolve(self.config.voice or voice_for_language(language), language=language)
        return voice, WIRE_RATES[self.config.output_encoding]

    async def _synthesize(self, text: str, voice: ResolvedVoice, wire_rate: int) -> Audio:
        audio, rate = await self.engine.synthesize(text, voice)
        return resample(audio, rate, wire_rate)

    def _cancel_prefetch(self) -> None:
        if self._prefetch is not None:
            self._prefetch.cancel()
            self._prefetch = None

    def _drop_stale_prefetch(self) -> None:
        """The user went on speaking after the pause: the guessed answer will not be used."""
        prefetch, listener = self._prefetch, self._listener
        if prefetch is None or listener is None:
            return
        key = prefetch.key
        went_on = listener.speaking and listener.voiced_frames != key.voiced_frames
        if listener.utterance_id != key.utterance or went_on:
            log.debug("speculative LLM dropped: the user went on")
            self._cancel_prefetch()

    def _take_prefetch(self, end: TurnEnd, text: str) -> PrefetchedReply | None:
        prefetch, self._prefetch = self._prefetch, None
        if prefetch is None:
            return None
        wanted = PrefetchKey(end.utterance, end.voiced_frames, text, self._context_key())
        if prefetch.key != wanted:
            prefetch.cancel()
            return None
        return prefetch

    def _speculative_text(self, utterance: int, voiced_frames: int) -> asyncio.Task[str] | None:
        spec = self._speculation
        if spec is not None and spec[0] == utterance and spec[1] == voiced_frames and not spec[2].cancelled():
            return spec[2]
        return None

    async def _end_of_turn(self, audio: Audio, silence_s: float, late: bool) -> bool:
        listener = self._listener
        assert listener is not None
        if self._held_start:
            return True  # a blip over the agent ends at once (and is ignored); never block the listener on it
        pending = self._speculative_text(listener.utterance_id, listener.voiced_frames)
        p: float | None = None
        if self.engine.settings.smart_turn:
            p = await self.engine.turn_probability(audio)
        text = self._last_partial
        if pending is not None:
            with contextlib.suppress(Exception):
                text = await pending
        complete = turn_is_complete(TurnEvidence(text, p), self.engine.settings.smart_turn_threshold, late=late)
        reason = unfinished_reason(text)
        log.debug("end of turn check (late=%s): p=%s text=%r complete=%s reason=%s", late, p, text, complete, reason)
        return complete

    async def _complete_turn(self, end: TurnEnd, decoded: str | None = None) -> None:
        try:
            async with asyncio.timeout(self.engine.settings.stt_timeout_s):
                pending = self._speculative_text(end.utterance, end.voiced_frames)
                if decoded is not None:
                    text = decoded
                elif pending is not None:
                    text = await pending
                else:
                    text = await self._decode(end.audio)
        except TimeoutError:
            await self.error(ErrorCode.AGENT_TIMEOUT, "speech recognition took too long")
            return
        resume = self._resume_point.take_if_nothing_said(text)
        if resume is not None:
            await self._resume_after_false_interruption(text, resume)
            return
        if not text:
            return
        text = self.engine.finish_transcript(text, language=self.config.language, keyterms=self.config.keyterms)
        prefetched = self._take_prefetch(end, text)
        self._turn_transcribed = True
        item_id = "item_" + uuid.uuid4().hex[:16]
        await self.emit(UserTranscript(text=text, item_id=item_id))
        self.history.append(ChatMessage(role="user", content=text))
        await self._speak_reply(self._llm_items(prefetched))

    async def _resume_after_false_interruption(self, text: str, rest: str) -> None:
        """The interruption was a cough or an "uh-huh": say the cut-off clause again and go on."""
        log.debug("false interruption (%r): resuming", text)
        if text:
            await self.emit(UserTranscript(text=text, item_id="item_" + uuid.uuid4().hex[:16]))
            self.history.append(ChatMessage(role="user", content=text))
        self._turn_transcribed = True
        await self._speak_reply(_clauses_of(rest))

    # ------------------------------------------------------------ replies

    async def greet(self) -> None:
        if self.config.greeting:
            greeting = self.config.greeting
            self._turn_transcribed, self._turn_audio = True, None
            self._turn_task = self._spawn(self._speak_reply(_clauses_of(greeting)), "greeting")

    async def _reply_with_llm(self) -> None:
        await self._speak_reply(self._llm_items())

    def _llm_messages(self) -> list[ChatMessage]:
        system = self.config.system_prompt + language_instruction(self.config.language)
        return [ChatMessage(role="system", content=system), *self.history]

    async def _llm_items(self, prefetched: PrefetchedReply | None = None) -> AsyncIterator[SpeechItem]:
        splitter = ClauseSplitter()
        spoke = False
        calls: list[ToolCallRequest] = []
        if prefetched is not None:
            log.debug("reply from the LLM started at the pause")
            stream = prefetched.events()
        else:
            llm = await asyncio.to_thread(self.engine.llm_for, self.config.llm_model)  # a first pick loads it
            stream = llm.stream(self._llm_messages(), self.config.tools)
        try:
            first = True
            while True:
                try:
                    if first:
                        async with asyncio.timeout(self.engine.settings.llm_first_token_timeout_s):
                            event = await anext(stream)
                        first = False
                    else:
                        event = await anext(stream)
                except StopAsyncIteration:
                    break
                if isinstance(event, TextDelta):
                    for clause in splitter.feed(event.text):
                        spoke = True
                        yield clause
                else:
                    if not spoke and not calls:
                        for clause in splitter.flush():
                            spoke = True
                            yield clause
                        if not spoke:
                            spoke = True
                            yield TRANSITION
                    calls.append(event)
        except TimeoutError:
            await self.error(ErrorCode.AGENT_TIMEOUT, "the language model did not answer in time")
            if not spoke:
                yield APOLOGY
            return
        except Exception as exc:  # the backend failed: say so, and tell the user in words
            log.exception("language model failed")
            await self.error(ErrorCode.SERVER_ERROR, f"language model failed: {exc}")
            if not spoke:
                yield APOLOGY
            return
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        for clause in splitter.flush():
            spoke = True
            yield clause
        if calls:
            yield ToolCallsReady(tuple(calls))
        elif not spoke:
            yield NOTHING_TO_SAY

    async def _speak_reply(self, items: AsyncIterator[SpeechItem]) -> None:
        async with self._speaking:
            voice, wire_rate = self._reply_voice()

            async def synthesize(text: str) -> Audio:
                ahead, self._spoken_ahead = self._spoken_ahead, None
                if ahead is not None and ahead[0] == _speech_key(text, voice, wire_rate):
                    with contextlib.suppress(Exception):  # a failure there is retried here
                        return await ahead[1]
                return await self._synthesize(text, voice, wire_rate)

            reply = ActiveReply(
                reply_id="reply_" + uuid.uuid4().hex[:16],
                speaker=ReplySpeaker(
                    synthesize=synthesize,
                    encoding=self.config.output_encoding,
                    wire_rate=wire_rate,
                    send=self.emit,
                    lead_s=self.engine.settings.reply_lead_s,
                    on_played=self._far_end_for(wire_rate),
                    clock=PlaybackClock(acknowledged_s=0.0 if self.playback_acknowledged_only else None),
                ),
            )

            async def announced() -> AsyncIterator[SpeechItem]:
                async for item in items:
                    if not reply.started:
                        reply.started = True
                        await self.emit(ReplyStarted(reply_id=reply.reply_id))
                    if isinstance(item, ToolCallsReady):
                        reply.calls.extend(item.calls)
                    yield item

            self._reply = reply
            reply.task = asyncio.current_task()
            try:
                await reply.speaker.speak(announced())
            except asyncio.CancelledError:
                if self._reply is reply:  # cancelled by the socket going or the turn being dropped
                    self._reply = None
                    if reply.started:
                        await self._close_interrupted(reply)
                raise
            self._reply = None
            if not reply.started:
                return
            text = reply.speaker.clock.full_text()
            self._record_reply(reply, text, interrupted=False)
            await self.emit(AgentTranscript(text=text, interrupted=False))
            await self.emit(ReplyDone(status="completed"))
            if reply.calls:
                self._pending_calls = {c.call_id: c for c in reply.calls}
        await self._maybe_answer_tool_results()

    def _far_end_for(self, wire_rate: int) -> Callable[[Audio, float], None] | None:
        echo = self._echo
        if echo is None:
            return None
        return lambda audio, at: echo.played(resample(audio, wire_rate, ANALYSIS_RATE), at)

    def acknowledge_playback(self, reply_id: str, played_s: float) -> None:
        """The transport confirms the first `played_s` seconds of reply `reply_id` were played to the user."""
        reply = self._reply
        if reply is not None and reply.reply_id == reply_id:
            reply.speaker.clock.acknowledge(played_s)

    async def interrupt(self) -> None:
        """Barge-in: stop at once, tell the client, keep only what was heard."""
        reply = self._reply
        if reply is None or reply.task is None:
            return
        self._reply = None
        reply.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reply.task
        await self._close_interrupted(reply)
        self._discard_pending_calls()
        if self._echo is not None:
            self._echo.flush_far_end()

    async def _close_interrupted(self, reply: ActiveReply) -> None:
        heard = reply.speaker.clock.heard_text()
        if not reply.calls:  # a reply that was handing over to a tool is not resumed: the tool is gone
            self._resume_point.interrupted(reply.speaker.clock.unheard_text())
        self._discarded_calls.update(call.call_id for call in reply.calls)
        self._record_reply(reply, heard, interrupted=True)
        await self.emit(ReplyDone(status="interrupted"))
        await self.emit(AgentTranscript(text=heard, interrupted=True))

    def _record_reply(self, reply: ActiveReply, text: str, *, interrupted: bool) -> None:
        calls = [] if interrupted else list(reply.calls)
        if text or calls:
            self.history.append(ChatMessage(role="assistant", content=text, tool_calls=calls))

    # ------------------------------------------------------------ tools

    async def on_tool_result(self, call_id: str, result: str) -> None:
        if call_id in self._discarded_calls:
            log.info("tool result for a discarded call ignored", extra={"call_id": call_id})
            return
        known = call_id in self._pending_calls or (
            self._reply is not None and any(c.call_id == call_id for c in self._reply.calls)
        )
        if not known:
            await self.error(ErrorCode.INVALID_VALUE, f"tool.result for unknown call_id {call_id!r}")
            return
        self._results[call_id] = result
        await self._maybe_answer_tool_results()

    async def _maybe_answer_tool_results(self) -> None:
        if not self._pending_calls or self._reply is not None:
            return
        if not all(cid in self._results for cid in self._pending_calls):
            return
        for cid in self._pending_calls:
            self.history.append(ChatMessage(role="tool", content=self._results[cid], tool_call_id=cid))
        self._pending_calls, self._results = {}, {}
        self._turn_transcribed = True
        self._turn_audio = None
        self._turn_task = self._spawn(self._reply_with_llm(), "tool-reply")

    def _discard_pending_calls(self) -> None:
        if not self._pending_calls:
            return
        self._discarded_calls.update(self._pending_calls)
        pending = set(self._pending_calls)
        for message in reversed(self.history):
            if message.role == "assistant" and message.tool_calls:
                message.tool_calls = [c for c in message.tool_calls if c.call_id not in pending]
                break
        self._pending_calls, self._results = {}, {}


def _speech_key(text: str, voice: ResolvedVoice, wire_rate: int) -> tuple[str, str, str, int]:
    """What a synthesized clause's audio depends on: audio made ahead is used only for the same key."""
    return (text, voice.requested, voice.voice, wire_rate)


async def _clauses_of(text: str) -> AsyncIterator[SpeechItem]:
    splitter = ClauseSplitter()
    for clause in [*splitter.feed(text), *splitter.flush()]:
        yield clause


def silence(seconds: float, rate: int) -> Audio:
    return np.zeros(int(seconds * rate), dtype=np.float32)
