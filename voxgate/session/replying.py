"""The agent's side of the turn machine: starting replies, speaking them, pausing, resuming, cutting them.

A reply is spoken in its own scope (session/reply.py), one at a time (a reply started while another
finishes waits for it). It ends in one of three ways, each with the events the protocol gives:
completed (`transcript.agent`, `reply.done {completed}`, its tool calls then pending), cut
(`transcript.agent` with what was heard, then `reply.done {interrupted}`), or failed: a model failed,
so the client gets `reply.error`, the reply closes as cut, and an apology follows as a reply of its
own. The LLM started at the user's first pause (session/prefetch.py) and the first clause synthesized
ahead are started here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from voxgate.aio import closing
from voxgate.audio.codecs import WIRE_RATES
from voxgate.audio.resample import resample
from voxgate.backends.base import ANALYSIS_RATE, Audio, ChatMessage, ToolCallRequest, ToolSpec
from voxgate.protocol.events import (
    AgentTranscript,
    ErrorCode,
    ReplyDone,
    ReplyError,
    ReplyErrorCode,
    ReplyStarted,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
)
from voxgate.redaction import redact
from voxgate.session.clauses import first_clause_min_words
from voxgate.session.context_window import ContextWindow, estimate_tokens
from voxgate.session.languages import language_instruction, voice_for_language
from voxgate.session.listener import Pause
from voxgate.session.playback import PlaybackClock
from voxgate.session.prefetch import PrefetchedReply, PrefetchKey
from voxgate.session.reply import APOLOGY, ActiveReply, ReplyFailed, Trigger, clauses_of, llm_items
from voxgate.session.speaker import ReplySpeaker, SpeechItem, ToolCallsReady
from voxgate.session.turn_policy import unfinished_reason
from voxgate.session.turn_state import Replying, TurnState, reply_of
from voxgate.session.user_turn import SpeechKey, UserTurn, spoken_ahead_audio
from voxgate.text.tool_arguments import normalise_arguments

if TYPE_CHECKING:
    from voxgate.audio.echo import EchoGuard
    from voxgate.backends.base import LanguageModel
    from voxgate.backends.voices import ResolvedVoice
    from voxgate.protocol.events import ServerEvent
    from voxgate.session.config import LiveConfig
    from voxgate.session.false_interruptions import ResumePoint
    from voxgate.session.policy import SessionPolicy
    from voxgate.session.ports import SessionPorts, TranscribePurpose, Transport
    from voxgate.session.recording import Recorder
    from voxgate.session.tools import ToolLedger
    from voxgate.session.turn_stages import TurnStages

log = logging.getLogger("voxgate.session")

# A remote model says nothing of its window: assume a modest one (every current chat model has more),
# and the most a reply may take.
REMOTE_CONTEXT_TOKENS = 16_384
REMOTE_REPLY_TOKENS = 1_024
RECENT_TURNS = 6  # the user's turns a call's entity arguments are looked up in, newest last


class ReplyHost(Protocol):
    """What the replies need of their session (the Conversation)."""

    session_id: str
    ports: SessionPorts
    policy: SessionPolicy
    config: LiveConfig
    history: list[ChatMessage]
    tools: ToolLedger
    resume_point: ResumePoint
    now: Callable[[], float]
    state: TurnState
    stages: TurnStages

    @property
    def transport(self) -> Transport | None: ...

    @property
    def echo(self) -> EchoGuard | None: ...

    recorder: Recorder | None

    async def emit(self, event: ServerEvent) -> None: ...

    async def error(self, code: ErrorCode, message: str) -> None: ...

    async def enter(self, new: TurnState, *, announce: ServerEvent | None = None) -> None: ...

    async def decode(self, audio: Audio, purpose: TranscribePurpose = "final", *, held: bool = False) -> str: ...

    async def on_reply_finished(self, reply: ActiveReply) -> None: ...

    def calls_sent(self, reply: ActiveReply) -> None: ...


class Replies:
    def __init__(self, host: ReplyHost) -> None:
        self._host = host
        self._speaking = asyncio.Lock()
        self._background: ActiveReply | None = None  # a reply let finish while the user talks
        self._window = ContextWindow()
        self._warming: asyncio.Task[None] | None = None
        self._prompt_cut_pending = self._prompt_cut_told = False

    # ------------------------------------------------------------ starting one

    async def start(
        self,
        items: AsyncIterator[SpeechItem],
        *,
        prefetched: PrefetchedReply | None = None,
        ahead: tuple[SpeechKey, asyncio.Task[Audio]] | None = None,
        trigger: Trigger = "user_turn",
    ) -> ActiveReply:
        # Of the hosted turn classes only the greeting occurs on a WebSocket session.
        uninterruptible = trigger == "greeting" and "greeting" in self._host.config.turn.uninterruptible_turns
        reply = ActiveReply.new(self._host.session_id, trigger, uninterruptible=uninterruptible)
        self._host.stages.reply_started(reply)
        if prefetched is not None:
            reply.scope.adopt(prefetched.task)
        if ahead is not None:
            reply.scope.adopt(ahead[1])
        await self._host.enter(Replying(reply))
        reply.scope.spawn(self._speak(reply, items, ahead), "speak")
        return reply

    def from_llm(
        self, prefetched: PrefetchedReply | None = None, *, instructions: str | None = None, tools: bool = True
    ) -> AsyncIterator[SpeechItem]:
        """`instructions`: guidance for this one reply (`reply.create`, a tool's `response_instructions`).
        `tools`: off for a status reply while a hold tool runs (it must speak, not call the tool again)."""
        host = self._host

        async def items() -> AsyncIterator[SpeechItem]:
            if prefetched is not None:
                log.debug("reply from the LLM started at the pause")
                stream = prefetched.events()
            else:
                llm = await self._llm()
                specs = host.config.tools if tools else ()
                messages = self.messages(llm, instructions, tools=specs)
                await self._tell_if_prompt_cut()
                stream = llm.stream(messages, specs)
            stream = host.stages.llm(stream, reply_of(host.state), prefetched)
            policy = host.policy
            heard = [prefetched.key.user_text] if prefetched is not None else []
            said = llm_items(
                stream,
                first_token_timeout_s=policy.llm_first_token_timeout_s,
                hold=self._holds,
                filtered=policy.tool_guards,
                first_min_words=self.first_min_words(),
            )
            async with closing(said):  # a cut closes the LLM's stream at once (speaker.py)
                async for item in said:
                    if isinstance(item, ToolCallsReady) and policy.tool_guards:
                        item = ToolCallsReady(tuple(self._as_said(call, heard) for call in item.calls))
                    yield item

        return items()

    def _as_said(self, call: ToolCallRequest, heard: Sequence[str]) -> ToolCallRequest:
        """`call` with its entity arguments as the user's formatted turns have them (text/tool_arguments.py)."""
        spec = next((t for t in self._host.config.tools if t.name == call.name), None)
        if spec is None:
            return call
        said = [m.content for m in self._host.history if m.role == "user"][-RECENT_TURNS:]
        arguments = normalise_arguments(call.arguments, spec.parameters, [*said, *heard])
        if arguments != call.arguments:
            log.debug("tool call %s: arguments taken as said: %r -> %r", call.name, call.arguments, arguments)
        return replace(call, arguments=arguments)

    async def _llm(self) -> LanguageModel:
        """The session's LLM: one it brought (`session.llm`), one it picked, or the server's (a first pick loads it)."""
        c, llms = self._host.config, self._host.ports.llms
        if c.llm:
            endpoint = c.llm[0]
            return await asyncio.to_thread(llms.llm_endpoint, endpoint.base_url, endpoint.model, endpoint.api_key)
        return await asyncio.to_thread(llms.llm_for, c.llm_model)

    def _holds(self, tool: str) -> bool:
        settings = self._host.config.tool(tool)
        return settings is not None and settings.execution_mode == "hold"

    def messages(
        self,
        llm: LanguageModel,
        instructions: str | None = None,
        *,
        tools: Sequence[ToolSpec] = (),
        then: Sequence[ChatMessage] = (),
    ) -> list[ChatMessage]:
        """The LLM's context, fitted to `llm`'s window (session/context_window.py), `then` after it.

        System messages the client added mid-conversation (`conversation.message`) join the system
        prompt, where every chat template accepts them, in the order they came. The recap of folded
        turns is a system message of its own among the turns (see session/context_window.py)."""
        config = self._host.config
        added = [m.content for m in self._host.history if m.role == "system" and m.content]
        parts = [config.system_prompt + language_instruction(config.language, config.language_codes), *added]
        if instructions:
            parts.append("For this reply: " + instructions)
        turns = [m for m in self._host.history if m.role != "system"]
        listed = getattr(llm, "prompt_tools", None)  # what the model's prompt lists: the embedded one adds `chat`
        system, window = self._window.fit(
            "\n\n".join(parts),
            listed(tools) if callable(listed) else tools,
            [*turns, *then],
            context_tokens=getattr(llm, "context_tokens", REMOTE_CONTEXT_TOKENS),
            reply_tokens=getattr(llm, "max_tokens", REMOTE_REPLY_TOKENS),
            count=getattr(llm, "count_tokens", estimate_tokens),
            turns_tokens=getattr(llm, "history_tokens", None),
        )
        if window.system_cut and not self._prompt_cut_told:
            self._prompt_cut_pending = True
        return [ChatMessage(role="system", content=system), *_answered_only(window.turns)]

    def warm(self) -> None:
        """Have a local model read the session's prompt now (its own system prompt and tools), while the
        greeting plays or the user speaks: the first turn otherwise reads it after the user's words, ~5 s
        on 2 cores and more under load, past the first-token timeout. Only a newer warm-up replaces it;
        a reply that comes meanwhile waits its turn on the model, and finds the prompt read.

        Also after each reply ends (completed without calls, or cut): the history as the next turn
        renders it need not be what the model's cache holds. With the embedded model's tool guards the
        cache holds the reply as the `chat` call's argument, the prompt as plain text, so the next turn
        read the whole previous reply again before its first word (~25 tokens, +0.5-0.9 s measured)."""
        self.stop_warming()
        self._warming = asyncio.ensure_future(self._warm())

    def stop_warming(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
            self._warming = None

    async def _warm(self) -> None:
        with contextlib.suppress(Exception):
            llm = await self._llm()
            read_ahead = getattr(llm, "read_ahead", None)
            if read_ahead is None:
                return  # a remote model: it has no cache of ours to fill
            tools = self._host.config.tools
            await read_ahead(self.messages(llm, tools=tools), tools)

    async def _tell_if_prompt_cut(self) -> None:
        """Once per session: the client's prompt and tools overflow the model's window, so it was shortened."""
        if self._prompt_cut_pending:
            self._prompt_cut_pending, self._prompt_cut_told = False, True
            await self._host.error(
                ErrorCode.INVALID_VALUE,
                "system_prompt and tools take more of the language model's context window than fits: "
                "the prompt was shortened from its end",
            )

    def context_key(self) -> tuple[object, ...]:
        """What a reply's LLM call depends on besides the user's words: a prefetch made for another is stale."""
        c = self._host.config
        tools = tuple((t.name, t.description, repr(t.parameters)) for t in c.tools)
        return (len(self._host.history), c.system_prompt, c.language, tools, c.llm_model)

    # ------------------------------------------------------------ started before the turn is certain

    async def guess_final(self, turn: UserTurn, pause: Pause) -> str:
        """The final transcript at the first pause, so it is ready if this is the end of the turn.

        Bounded like the final decode: the end-of-turn check waits for this guess, so a recognizer that
        never answers would otherwise hold the listener (and the turn's own timeout) forever."""
        async with asyncio.timeout(self._host.policy.stt_timeout_s):
            text = await self._host.decode(pause.audio)
        with contextlib.suppress(Exception):  # only an optimisation: the end of turn starts the LLM anyway
            await self._start_prefetch(turn, text)
        return text

    async def _start_prefetch(self, turn: UserTurn, raw: str) -> None:
        """Words that read as a finished turn: start the reply's LLM now (see session/prefetch.py).

        This runs in the turn's scope: voice after the pause, or the turn's end, cancels it."""
        host = self._host
        if not host.policy.llm_prefetch or self._background is not None or host.tools.holding:
            return  # (during a hold tool the turn is withheld: a reply started for it would never be said)
        c = host.config
        text = host.ports.recognizer.finish_transcript(raw, language=c.language, keyterms=c.keyterms)
        if not text or unfinished_reason(text):
            return
        llm = await self._llm()
        key = PrefetchKey(text, self.context_key())
        messages = self.messages(llm, tools=c.tools, then=[ChatMessage(role="user", content=text)])
        stream = llm.stream(messages, c.tools)
        words = self.first_min_words()
        turn.start_prefetch(PrefetchedReply(key, stream, filtered=host.policy.tool_guards, first_min_words=words))
        log.debug("LLM started speculatively on %r", text)
        turn.scope.spawn(self._speak_ahead(turn), "speak-ahead")

    async def _speak_ahead(self, turn: UserTurn) -> None:
        """Synthesize the prefetched reply's first clause while the turn is still being decided.

        With the LLM started at the pause, its first clause is often written before the end of the
        turn is certain; its speech then waits, ready, instead of being made after. Unused (the user
        went on), it is dropped; used, it saves one synthesis (~0.1–0.2 s with Piper) on the first audio.
        """
        prefetch = turn.prefetch
        if prefetch is None:
            return
        clause = await prefetch.first_clause
        if clause is None or turn.prefetch is not prefetch:
            return
        voice, wire_rate = self.voice()
        voice = voice.for_clause(first=True)
        turn.speak_ahead(_speech_key(clause, voice, wire_rate), self._synthesize(clause, voice, wire_rate))
        log.debug("first clause synthesized ahead: %r", clause)

    # ------------------------------------------------------------ speaking it

    def voice(self) -> tuple[ResolvedVoice, int]:
        c = self._host.config
        voice = self._host.ports.voices.resolve(c.voice or voice_for_language(c.language), language=c.language)
        return voice, WIRE_RATES[c.output_encoding]

    def first_min_words(self) -> int:
        """Where this session's replies may cut their first clause (session/clauses.py): early for a slow voice."""
        return first_clause_min_words(self.voice()[0].for_clause(first=True).slow_start)

    async def _synthesize(self, text: str, voice: ResolvedVoice, wire_rate: int) -> Audio:
        audio, rate = await self._host.ports.voices.synthesize(text, voice)
        return resample(audio, rate, wire_rate)

    async def _speak(
        self,
        reply: ActiveReply,
        items: AsyncIterator[SpeechItem],
        ahead: tuple[SpeechKey, asyncio.Task[Audio]] | None,
    ) -> None:
        host = self._host
        failed: ReplyFailed | None = None
        async with self._speaking:
            voice, wire_rate = self.voice()
            first = True

            async def synthesize(text: str) -> Audio:
                nonlocal ahead, first
                asked = host.now()
                said_by, first = voice.for_clause(first), False  # a fast lead voice says the first clause
                made, ahead = await spoken_ahead_audio(ahead, _speech_key(text, said_by, wire_rate)), None
                audio = made if made is not None else await self._synthesize(text, said_by, wire_rate)
                host.stages.synthesized(reply.reply_id, asked)
                return audio

            transport = host.transport
            acknowledged = transport is not None and transport.playback.acknowledges_playback
            speaker = reply.speaker = ReplySpeaker(
                reply_id=reply.reply_id,
                item_id=reply.item_id,
                volume=lambda: host.config.volume,
                text_only=host.config.output_type == "text",
                synthesize=synthesize,
                encoding=host.config.output_encoding,
                wire_rate=wire_rate,
                send=host.emit,
                lead_s=host.policy.reply_lead_s,
                on_played=self._far_end_for(wire_rate),
                clock=PlaybackClock(now=host.now, acknowledged_s=0.0 if acknowledged else None),
            )

            async def announced() -> AsyncIterator[SpeechItem]:
                async with closing(items):  # closing this closes the LLM's stream too (speaker.py)
                    async for item in items:
                        if not reply.started:
                            await self._announce(reply)
                        if isinstance(item, ToolCallsReady):
                            reply.calls.extend(item.calls)
                        yield item

            try:
                await speaker.speak(announced())
            except asyncio.CancelledError:  # cut by a barge-in, by the user going on, or by the socket going
                if reply.started:
                    await self._close_interrupted(reply, speaker)
                raise
            except Exception as exc:  # a model failed: say so, and close the reply the client is playing
                failure = _failure_of(exc)
                if failure is None:
                    log.exception("speech synthesis failed")
                    failure = ReplyFailed(ReplyErrorCode.TTS_ERROR, f"speech synthesis failed: {redact(str(exc))}")
                reply.finished = True
                failed = failure
                await self._fail(reply, speaker, failure)
            else:
                reply.finished = True
                if reply.started:
                    text = speaker.clock.full_text()
                    self._record(reply, text, interrupted=False)
                    if text or not reply.calls:  # a hold tool's reply says nothing: only its call
                        await host.emit(
                            AgentTranscript(
                                text=text, interrupted=False, reply_id=reply.reply_id, item_id=reply.item_id
                            )
                        )
                    for call in reply.calls:  # after the transition's transcript, before reply.done (§6.4)
                        await host.emit(ToolCall(call_id=call.call_id, name=call.name, arguments=call.arguments))
                    await host.emit(ReplyDone(status="completed", reply_id=reply.reply_id))
                    if reply.calls:
                        host.tools.expect(reply.calls, host.config.tool)
                        host.calls_sent(reply)
                    else:
                        self.warm()
        if self._background is reply:
            self._background = None
        await host.on_reply_finished(reply)
        if failed is not None and reply.trigger != "apology":
            await self.start(clauses_of(APOLOGY), trigger="apology")

    async def _announce(self, reply: ActiveReply) -> None:
        reply.started = True
        await self._host.emit(ReplyStarted(reply_id=reply.reply_id, item_id=reply.item_id))

    async def _fail(self, reply: ActiveReply, speaker: ReplySpeaker, failure: ReplyFailed) -> None:
        """`reply.error`, then the ending of an interrupted reply (shared/protocol.md §7.2)."""
        host = self._host
        if not reply.started:
            await self._announce(reply)
        await host.emit(
            ReplyError(
                reply_id=reply.reply_id,
                code=failure.code,
                message=failure.message,
                retryable=failure.retryable,
                provider_code=failure.provider_code,
                provider_param=failure.provider_param,
                status_code=failure.status_code,
            )
        )
        await self._end_cut(reply, speaker)

    async def _close_interrupted(self, reply: ActiveReply, speaker: ReplySpeaker) -> None:
        if not reply.calls:  # a reply that was handing over to a tool is not said again: the tool is gone
            self._host.resume_point.interrupted(speaker.clock.unheard_text())
        await self._end_cut(reply, speaker)

    async def _end_cut(self, reply: ActiveReply, speaker: ReplySpeaker) -> None:
        """The ending of a reply that did not complete: what was heard, then `reply.done {interrupted}`
        (its tool calls are dropped: the client never got them, or discards them on this ending)."""
        heard = speaker.clock.heard_text()
        self._host.tools.forget(reply.calls)
        self._record(reply, heard, interrupted=True)
        await self._host.emit(
            AgentTranscript(text=heard, interrupted=True, reply_id=reply.reply_id, item_id=reply.item_id)
        )
        await self._host.emit(ReplyDone(status="interrupted", reply_id=reply.reply_id))
        self.warm()

    def _record(self, reply: ActiveReply, text: str, *, interrupted: bool) -> None:
        calls = [] if interrupted else list(reply.calls)
        if text or calls:
            self._host.history.append(ChatMessage(role="assistant", content=text, tool_calls=calls))

    def _far_end_for(self, wire_rate: int) -> Callable[[Audio, float], None] | None:
        """What is told of the agent's audio as it plays: the echo guard's reference, and the recording."""
        echo, recorder = self._host.echo, self._host.recorder
        if echo is None and recorder is None:
            return None

        def played(audio: Audio, at: float) -> None:
            if echo is not None:
                echo.played(resample(audio, wire_rate, ANALYSIS_RATE), at)
            if recorder is not None:
                recorder.agent(audio, wire_rate, at)

        return played

    # ------------------------------------------------------------ pausing, resuming, cutting

    async def pause(self, reply: ActiveReply) -> None:
        """Voice over the agent: stop playback now (the client flushes on `input.speech.started`)."""
        if reply.speaker is None or reply.speaker.paused:
            return
        await self._host.emit(SpeechStarted())
        reply.speaker.pause()
        await self._flush_playback()
        log.debug("reply paused: voice over the agent, words not known yet")

    async def resume(self, reply: ActiveReply, why: str) -> None:
        """The voice that paused the reply was not an interruption: go on from the clause that was playing."""
        if reply.speaker is None or not reply.speaker.paused:
            return
        await self._host.emit(SpeechStopped())
        self._host.stages.reply_resumed("paused")
        at = reply.speaker.resume()
        if (transport := self._host.transport) is not None:
            transport.playback.rewound(reply.reply_id, at)
        log.debug("reply resumed at %.2f s: %s", at, why)

    async def interrupted(self, reply: ActiveReply) -> None:
        """After a barge-in closed `reply`: the client's playback and the echo reference are dropped too."""
        if reply.started:
            await self._flush_playback()

    async def _flush_playback(self) -> None:
        if (transport := self._host.transport) is not None:
            await transport.playback.flush()
        if (echo := self._host.echo) is not None:
            echo.flush_far_end()

    def finish_in_background(self, reply: ActiveReply) -> None:
        """The user talks over a reply they may not interrupt: it goes on, outside the turn state."""
        self._background = reply

    @property
    def background(self) -> ActiveReply | None:
        return self._background

    async def close_background(self) -> None:
        reply, self._background = self._background, None
        if reply is not None:
            await reply.close()

    def acknowledge(self, reply_id: str, played_s: float) -> None:
        for reply in (reply_of(self._host.state), self._background):
            if reply is not None and reply.reply_id == reply_id and reply.speaker is not None:
                reply.speaker.clock.acknowledge(played_s)


def _speech_key(text: str, voice: ResolvedVoice, wire_rate: int) -> SpeechKey:
    """What a synthesized clause's audio depends on: audio made ahead is used only for the same key."""
    return (text, voice.requested, voice.voice, wire_rate)


def _answered_only(history: list[ChatMessage]) -> list[ChatMessage]:
    """History without tool calls still waiting for results (a status reply during a hold tool): a call
    with no result after it is refused by OpenAI-style backends and confuses the local chat template."""
    answered = {m.tool_call_id for m in history if m.role == "tool"}
    out = []
    for m in history:
        if m.role == "assistant" and m.tool_calls and any(c.call_id not in answered for c in m.tool_calls):
            kept = [c for c in m.tool_calls if c.call_id in answered]
            if not kept and not m.content:
                continue
            m = ChatMessage(role="assistant", content=m.content, tool_calls=kept)
        out.append(m)
    return out


def _failure_of(exc: BaseException) -> ReplyFailed | None:
    """The model failure inside `exc` (the speaker's task group wraps what its stages raise)."""
    if isinstance(exc, ReplyFailed):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _failure_of(inner)) is not None:
                return found
    return None
