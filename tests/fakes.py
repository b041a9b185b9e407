"""Scripted stand-ins for every port a session uses, and a user who talks on virtual time.

Nothing here loads a model, starts a thread or reads the wall clock; run the scripts on
`tests/virtual_time.py`, where the fakes' delays (`asyncio.sleep`) take no real time. `open_session`
wires a Conversation to them, to a RecordingTransport (or an EchoingClient, whose microphone hears the
agent back), and to a User whose microphone streams all the time, as a client's does.

How the user's audio carries its words: each phrase the user says (`Lexicon`) is a square wave at a
level of its own. The scripted VAD hears any of them as speech (p=0.9) and silence as silence (p=0.0),
so the listener runs on the audio alone; the scripted recognizer finds which levels a stretch of audio
holds, in order, and reads their phrases: a decode of the whole turn, of a pause, of the held voice
over the agent or of a turn that went on after a pause all read what a perfect recognizer would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from voxgate.audio.resample import resample
from voxgate.backends.base import ANALYSIS_RATE, Audio, ChatMessage, LLMEvent, TextDelta, ToolCallRequest, ToolSpec
from voxgate.backends.base import VoiceInfo as _VoiceInfo
from voxgate.backends.voices import ResolvedVoice
from voxgate.protocol.events import (
    AgentTranscript,
    AgentTranscriptDelta,
    ReplyAudio,
    ReplyDone,
    ReplyError,
    ServerEvent,
    SessionConfig,
    SessionError,
    SpeechStarted,
    ToolCall,
    UserTranscript,
    UserTranscriptDelta,
)
from voxgate.session.conversation import Conversation
from voxgate.session.policy import SessionPolicy
from voxgate.session.ports import SessionPorts, TranscribePurpose
from voxgate.session.turn_state import name

FRAME = 512  # samples per VAD frame (Silero's), 32 ms at 16 kHz
FRAME_S = FRAME / ANALYSIS_RATE
VOICED_P = 0.9
SILENT_P = 0.0
_VOICE_FLOOR = 0.1  # mean |sample| of a frame the scripted VAD hears as speech
_LEVEL_BASE = 0.3  # the first phrase's level; each next one is _LEVEL_STEP louder
_LEVEL_STEP = 0.02
_LEVELS = 30
_MIN_RUN = 64  # samples a phrase's level holds at the least (4 ms)


# ---------------------------------------------------------------- the user's words, in the audio


@dataclass(frozen=True)
class Phrase:
    text: str  # what a decode reads ("" for a cough or a click: voice with no words)
    reads: dict[str, str] = field(default_factory=dict)  # per purpose, a different reading ("check": "Wait")


class Lexicon:
    """The phrases of one script, each with its own level in the audio."""

    def __init__(self) -> None:
        self._phrases: list[Phrase] = []

    def level(self, phrase: Phrase) -> float:
        if phrase not in self._phrases:
            assert len(self._phrases) < _LEVELS, "too many distinct phrases in one script"
            self._phrases.append(phrase)
        return _LEVEL_BASE + _LEVEL_STEP * self._phrases.index(phrase)

    def voice(self, phrase: Phrase, seconds: float) -> Audio:
        """`seconds` of this phrase (whole VAD frames): a square wave at its level."""
        n = frames_in(seconds) * FRAME
        wave = np.where(np.arange(n) % 2 == 0, 1.0, -1.0).astype(np.float32)
        return wave * np.float32(self.level(phrase))

    def phrases_in(self, audio: Audio) -> list[Phrase]:
        """The phrases heard in `audio`, in order (a phrase said twice with silence between is read twice)."""
        magnitude = np.abs(audio)
        index = np.where(magnitude >= _LEVEL_BASE / 2, np.rint((magnitude - _LEVEL_BASE) / _LEVEL_STEP), -1)
        index = index.astype(np.int64)
        starts = np.flatnonzero(np.diff(index, prepend=-1) != 0)
        lengths = np.diff(np.append(starts, len(index)))
        # A phrase holds its level; anything else (the agent's voice heard back, noise) holds none for long.
        runs = [int(index[i]) for i, n in zip(starts, lengths, strict=True) if index[i] >= 0 and n >= _MIN_RUN]
        heard = [i for k, i in enumerate(runs) if k == 0 or runs[k - 1] != i]
        return [self._phrases[i] for i in heard if i < len(self._phrases)]

    def read(self, audio: Audio, purpose: str) -> str:
        texts = [p.reads.get(purpose, p.text) for p in self.phrases_in(audio)]
        return " ".join(t for t in texts if t)


def frames_in(seconds: float) -> int:
    return round(seconds / FRAME_S)


def silence(seconds: float) -> Audio:
    return np.zeros(frames_in(seconds) * FRAME, dtype=np.float32)


class ScriptedVad:
    """VadStream: a frame is speech when its mean level is a phrase's (see the module docstring)."""

    frame_samples = FRAME

    def __init__(self) -> None:
        self.frames = 0
        self.resets = 0

    def probability(self, frame: Audio) -> float:
        self.frames += 1
        return VOICED_P if float(np.mean(np.abs(frame))) >= _VOICE_FLOOR else SILENT_P

    def reset(self) -> None:
        self.resets += 1


# ---------------------------------------------------------------- recognizer and end of turn


@dataclass(frozen=True)
class Transcription:
    at: float
    purpose: TranscribePurpose
    text: str | None  # None: it failed, hung or was cancelled
    keyterms: tuple[str, ...]


HANG = "hang"  # as a recognizer failure: the decode never returns


class ScriptedRecognizer:
    """Reads the lexicon's phrases, after a delay per purpose; `fail[purpose]` raises (or HANG hangs)."""

    def __init__(
        self,
        lexicon: Lexicon,
        *,
        delays: dict[str, float] | None = None,
        fail: dict[str, Exception | str] | None = None,
    ) -> None:
        self.lexicon = lexicon
        self.delays = {"partial": 0.05, "check": 0.08, "final": 0.12, **(delays or {})}
        self.fail: dict[str, Exception | str] = dict(fail or {})
        self.calls: list[Transcription] = []

    async def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None,
        keyterms: Sequence[str],
        purpose: TranscribePurpose,
        languages: Sequence[str] = (),
        prompt: str | None = None,
        mode: str = "balanced",
    ) -> str:
        self.settings_seen = (tuple(languages), prompt, mode)
        loop = asyncio.get_running_loop()
        at = loop.time()
        try:
            failure = self.fail.get(purpose)
            if failure == HANG:
                await asyncio.Event().wait()
            await asyncio.sleep(self.delays[purpose])
            if isinstance(failure, Exception):
                raise failure
            text = self.lexicon.read(audio, purpose)
        except BaseException:
            self.calls.append(Transcription(at, purpose, None, tuple(keyterms)))
            raise
        self.calls.append(Transcription(at, purpose, text, tuple(keyterms)))
        return text

    def finish_transcript(self, text: str, *, language: str | None, keyterms: Sequence[str]) -> str:
        return text.strip()


class ScriptedTurnModel:
    """Smart Turn's port: one probability for every turn, after a delay; `fail` raises."""

    def __init__(self, probability: float = 0.9, *, delay: float = 0.05, fail: Exception | None = None) -> None:
        self.probability = probability
        self.delay = delay
        self.fail = fail
        self.calls = 0

    async def probability_complete(self, audio: Audio) -> float:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return self.probability


# ---------------------------------------------------------------- the language model


@dataclass(frozen=True)
class Think:
    """In an LLM script: this long before the next event."""

    seconds: float


class Hang:
    """In an LLM script: the model never sends another event."""


LLMStep = str | ToolCallRequest | Think | Hang | Exception  # str: a text delta; Exception: raised there
LLMScript = Sequence[LLMStep]


@dataclass
class LLMCall:
    messages: list[ChatMessage]
    tools: tuple[ToolSpec, ...]
    started_at: float
    events: list[LLMEvent] = field(default_factory=list)
    completed: bool = False  # every scripted event was made
    closed_at: float | None = None  # the stream ended or was closed (cancelled) here
    # The stream itself, kept alive here: only an explicit close (aclose) can end it early, never the
    # garbage collector's finalizer. A real model's stream held open that way holds the model.
    stream: object = None

    @property
    def user_text(self) -> str:
        """The last user message the model saw."""
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))


class ScriptedLLM:
    """LanguageModels and LanguageModel in one: every call plays the next script (or `respond(messages)`'s).

    Before the first event it thinks `first_token_s`, before each later one `token_s`; `Think` adds more.
    """

    name = "scripted"

    def __init__(
        self,
        *scripts: LLMScript,
        respond: Callable[[list[ChatMessage]], LLMScript] | None = None,
        first_token_s: float = 0.3,
        token_s: float = 0.02,
    ) -> None:
        self._scripts = list(scripts)
        self._respond = respond
        self.first_token_s = first_token_s
        self.token_s = token_s
        self.calls: list[LLMCall] = []
        self.picked: list[str | None] = []
        self.endpoints: list[tuple[str, str, str | None]] = []  # (base_url, model, api_key) a session brought

    # LanguageModels
    def llm_for(self, model: str | None) -> ScriptedLLM:
        self.picked.append(model)
        return self

    def check_llm_model(self, model: str) -> None:
        if model != "scripted":
            raise ValueError(f"unknown model {model!r}")

    def llm_endpoint(self, base_url: str, model: str, api_key: str | None) -> ScriptedLLM:
        """The LLM a session brings (`session.llm`): the same scripts, the endpoint recorded."""
        self.endpoints.append((base_url, model, api_key))
        return self

    # LanguageModel
    def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> AsyncIterator[LLMEvent]:
        seen = [replace(m, tool_calls=list(m.tool_calls)) for m in messages]
        call = LLMCall(seen, tuple(tools), asyncio.get_running_loop().time())
        self.calls.append(call)
        if self._respond is not None:
            script = self._respond(seen)
        elif self._scripts:
            script = self._scripts.pop(0)
        else:
            script = [LookupError(f"no script left for LLM call {len(self.calls)}")]
        call.stream = played = self._play(call, script)
        return played

    async def _play(self, call: LLMCall, script: LLMScript) -> AsyncIterator[LLMEvent]:
        try:
            for step in script:
                if isinstance(step, Think):
                    await asyncio.sleep(step.seconds)
                    continue
                if isinstance(step, Hang):
                    await asyncio.Event().wait()
                    continue
                await asyncio.sleep(self.token_s if call.events else self.first_token_s)
                if isinstance(step, Exception):
                    raise step
                event: LLMEvent = TextDelta(step) if isinstance(step, str) else step
                call.events.append(event)
                yield event
            call.completed = True
        finally:
            call.closed_at = asyncio.get_running_loop().time()


def tool_call(name: str, call_id: str = "call_1", **arguments: Any) -> ToolCallRequest:
    return ToolCallRequest(call_id=call_id, name=name, arguments=arguments)


# ---------------------------------------------------------------- the voice


class _ToneBackend:
    """A TextToSpeech for ResolvedVoice's sake; the session synthesizes through ToneVoices."""

    sample_rate = 24_000

    def voices(self) -> Sequence[_VoiceInfo]:
        return [_VoiceInfo("tone", "tone", "en-US", "neutral", "a 220 Hz tone")]

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        raise AssertionError("the session synthesizes through the Voices port")


class ToneVoices:
    """The Voices port: `seconds_per_word` of audio per word, at 24 kHz, after `delay`.

    `timbre`: "tone" is a 220 Hz sine; "voice" is broadband like speech (smoothed noise, the same for the
    same clause every run), which an echo canceller can learn. `fail(text)`: the clause's synthesis raises
    when it returns an exception (see `failing_on`)."""

    rate = 24_000

    def __init__(
        self,
        *,
        seconds_per_word: float = 0.25,
        delay: float = 0.05,
        fail: Callable[[str], Exception | None] | None = None,
        timbre: Literal["tone", "voice"] = "tone",
        lead: bool = False,
        slow: bool = False,
    ) -> None:
        self.timbre = timbre
        self.lead = lead  # "tone" has a fast lead voice, "tone-fast", for first clauses (tts_fast_first_clause)
        self.slow = slow  # "tone" is slow to start (as the catalog marks Kokoro's voices): first clauses cut short
        self.said_by: list[tuple[str, str]] = []  # (voice, clause)
        self.seconds_per_word = seconds_per_word
        self.delay = delay
        self.fail = fail
        self.said: list[str] = []
        self.requested: list[str | None] = []
        self._backend = _ToneBackend()

    def resolve(self, requested: str | None, *, language: str | None = None) -> ResolvedVoice:
        if requested not in (None, "tone"):
            raise ValueError(f"unknown voice {requested!r}")
        self.requested.append(requested)
        lead = ResolvedVoice("tone", self._backend, "tone-fast", language or "en", self.rate) if self.lead else None
        return ResolvedVoice("tone", self._backend, "tone", language or "en", self.rate, lead, self.slow)

    async def synthesize(self, text: str, voice: ResolvedVoice) -> tuple[Audio, int]:
        await asyncio.sleep(self.delay)
        if self.fail is not None and (exc := self.fail(text)) is not None:
            raise exc
        self.said.append(text)
        self.said_by.append((voice.voice, text))
        if self.timbre == "voice":
            return speechlike(self.seconds(text), self.rate, seed=zlib.crc32(text.encode())), self.rate
        return tone(self.seconds(text), self.rate), self.rate

    def seconds(self, text: str) -> float:
        return self.seconds_per_word * max(1, len(text.split()))


def failing_on(fragment: str, exc: Exception | None = None) -> Callable[[str], Exception | None]:
    """A ToneVoices `fail` that raises on the clauses containing `fragment`."""
    return lambda text: (exc or RuntimeError(f"cannot say {text!r}")) if fragment in text else None


def tone(seconds: float, rate: int, hz: float = 220.0, level: float = 0.3) -> Audio:
    t = np.arange(round(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def speechlike(seconds: float, rate: int, *, seed: int, level: float = 0.5) -> Audio:
    noise = np.random.default_rng(seed).standard_normal(round(seconds * rate))
    return (level * np.convolve(noise, np.ones(6) / 6, mode="same")).astype(np.float32)


# ---------------------------------------------------------------- the client's side


class RecordingPlayback:
    """PlaybackPort: records flushes and rewinds at their virtual times."""

    def __init__(self, *, acknowledges_playback: bool = False, on_flush: Callable[[], None] | None = None) -> None:
        self._acknowledges = acknowledges_playback
        self._on_flush = on_flush
        self.flushes: list[float] = []
        self.rewinds: list[tuple[float, str, float]] = []  # (when, reply id, reply seconds)

    @property
    def acknowledges_playback(self) -> bool:
        return self._acknowledges

    async def flush(self) -> None:
        self.flushes.append(asyncio.get_running_loop().time())
        if self._on_flush is not None:
            self._on_flush()

    def rewound(self, reply_id: str, at_s: float) -> None:
        self.rewinds.append((asyncio.get_running_loop().time(), reply_id, at_s))


class RecordingTransport:
    """Transport: every event the session sends, with the virtual time it was sent at."""

    def __init__(self, *, acknowledges_playback: bool = False) -> None:
        self._playback = RecordingPlayback(acknowledges_playback=acknowledges_playback)
        self.log: list[tuple[float, ServerEvent]] = []

    @property
    def playback(self) -> RecordingPlayback:
        return self._playback

    async def send(self, event: ServerEvent) -> None:
        self.log.append((asyncio.get_running_loop().time(), event))

    @property
    def events(self) -> list[ServerEvent]:
        return [e for _, e in self.log]

    def first(self, wire_type: str, after: float = -1.0) -> float:
        """When the first event of this type (after `after`) was sent."""
        return next(t for t, e in self.log if e.type == wire_type and t > after)

    def audio_s(self, rate: int = 24_000) -> float:
        """Seconds of reply audio sent in all (16-bit PCM)."""
        return sum(len(base64.b64decode(e.data)) / 2 / rate for e in self.events if isinstance(e, ReplyAudio))


class EchoingClient(RecordingTransport):
    """A client with no echo cancellation: its speaker plays the reply audio as it arrives (and drops what
    it buffered on `input.speech.started` or a flush), and its microphone hears that back (`echo`),
    `delay_s` later and `gain` times as loud. Give `echo` to the User as what the microphone also hears.
    `restart_late_s`: once its speaker ran dry, the client starts playing again this much after new audio
    arrives (its jitter buffer refills first), later than the server's playback clock places it."""

    def __init__(self, *, gain: float = 1.0, delay_s: float = 0.12, restart_late_s: float = 0.0) -> None:
        super().__init__()
        self._playback = RecordingPlayback(on_flush=self._drop_buffered)
        self.gain = gain
        self.delay_s = delay_s
        self.restart_late_s = restart_late_s
        self._playing: list[tuple[float, Audio]] = []  # (when it starts playing, 16 kHz audio)
        self._end = 0.0

    async def send(self, event: ServerEvent) -> None:
        await super().send(event)
        now = asyncio.get_running_loop().time()
        if isinstance(event, SpeechStarted):
            self._drop_buffered()
        elif isinstance(event, ReplyAudio):
            pcm = np.frombuffer(base64.b64decode(event.data), "<i2").astype(np.float32) / np.float32(32767)
            start = self._end if self._end >= now else now + (self.restart_late_s if self._playing else 0.0)
            audio = resample(pcm, 24_000, ANALYSIS_RATE)
            self._playing.append((start, audio))
            self._end = start + len(audio) / ANALYSIS_RATE

    def _drop_buffered(self) -> None:
        now = asyncio.get_running_loop().time()
        played = [(start, audio[: round((now - start) * ANALYSIS_RATE)]) for start, audio in self._playing]
        self._playing = [(start, audio) for start, audio in played if start < now]
        self._end = min(self._end, now)

    def echo(self, start: float, samples: int) -> Audio:
        """What the microphone hears of the speaker from `start` (wall time), `samples` long."""
        out = np.zeros(samples, dtype=np.float32)
        t = start - self.delay_s
        for began, audio in self._playing:
            offset = round((t - began) * ANALYSIS_RATE)
            if offset >= len(audio) or offset + samples <= 0:
                continue
            lo, hi = max(offset, 0), min(offset + samples, len(audio))
            out[lo - offset : hi - offset] += audio[lo:hi]
        return out * np.float32(self.gain)


def wire(events: Sequence[ServerEvent]) -> list[str]:
    """The events as one line each, with the fields a script asserts; a run of reply.audio is one line,
    and the word captions that go with the audio are left out (tests/unit/session/test_protocol.py reads them)."""
    lines: list[str] = []
    for e in events:
        if isinstance(e, AgentTranscriptDelta):
            continue
        if isinstance(e, ReplyAudio):
            if lines and lines[-1] == "reply.audio":
                continue
            line = "reply.audio"
        elif isinstance(e, ReplyDone):
            line = f"reply.done {e.status}"
        elif isinstance(e, AgentTranscript):
            line = f"transcript.agent{' interrupted' if e.interrupted else ''}: {e.text}"
        elif isinstance(e, UserTranscript | UserTranscriptDelta):
            line = f"{e.type}: {e.text}"
        elif isinstance(e, ToolCall):
            line = f"tool.call {e.name} {json.dumps(e.arguments, sort_keys=True)}"
        elif isinstance(e, SessionError):
            line = f"session.error {e.code}"
        elif isinstance(e, ReplyError):
            line = f"reply.error {e.code}"
        else:
            line = e.type
        lines.append(line)
    return lines


class User:
    """The user at a client that streams its microphone all the time, silence between the words: one VAD
    frame (32 ms) per `on_audio` call, in real (virtual) time. A frame the session took long to take
    (`on_audio` awaited something) delays the next ones, which then arrive at once, as from a socket."""

    def __init__(self, conversation: Conversation, lexicon: Lexicon) -> None:
        self.conversation = conversation
        self.lexicon = lexicon
        self._frames: deque[tuple[Audio, asyncio.Future[None] | None]] = deque()
        self._mic: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None
        self.also_hears: Callable[[float, int], Audio] | None = None  # (start, samples): the room, e.g. an echo

    def start(self) -> None:
        """The microphone streams (silence until the user says something)."""
        assert self._mic is None or self._mic.done()
        self._mic = asyncio.get_running_loop().create_task(self._stream(), name="user-mic")

    async def stop(self) -> None:
        """The microphone stops (the socket is gone): nothing more reaches the conversation."""
        if self._mic is not None:
            self._mic.cancel()
            await asyncio.wait({self._mic})
        self._mic = None
        for _, done in self._frames:
            if done is not None:
                done.cancel()
        self._frames.clear()
        self.check()

    def check(self) -> None:
        """Raise what `on_audio` raised, if it did."""
        if self.failure is not None:
            raise AssertionError("the conversation failed on the user's audio") from self.failure

    async def say(self, text: str | Phrase, seconds: float, *, then: float = 0.0) -> None:
        """`seconds` of voice that reads as `text`, then `then` seconds of silence; returns once all is sent."""
        phrase = text if isinstance(text, Phrase) else Phrase(text)
        await self.play(np.concatenate([self.lexicon.voice(phrase, seconds), silence(then)]))

    async def noise(self, seconds: float, *, then: float = 0.0) -> None:
        """Voice with no words in it: a cough, a click, a breath."""
        await self.say(Phrase(""), seconds, then=then)

    async def pause(self, seconds: float) -> None:
        """Silence for `seconds` (counted in frames of the microphone, like everything the user does)."""
        await self.play(silence(seconds))

    async def play(self, audio: Audio) -> None:
        assert self._mic is not None and not self._mic.done(), "the microphone is off"
        frames = [audio[i : i + FRAME] for i in range(0, len(audio), FRAME)]
        if not frames:
            return
        done = asyncio.get_running_loop().create_future()
        self._frames.extend((frame, None) for frame in frames[:-1])
        self._frames.append((frames[-1], done))
        await done

    async def _stream(self) -> None:
        loop = asyncio.get_running_loop()
        quiet = np.zeros(FRAME, dtype=np.float32)
        due = loop.time()
        while True:
            due += FRAME_S  # a frame arrives once it has been captured
            await asyncio.sleep(max(0.0, due - loop.time()))
            frame, done = self._frames.popleft() if self._frames else (quiet, None)
            if self.also_hears is not None:
                frame = frame + self.also_hears(loop.time() - FRAME_S, FRAME)
            try:
                await self.conversation.on_audio(frame)
            except Exception as exc:  # the script sees it through check() and the pending say()
                self.failure = exc
                for _, pending in [(frame, done), *self._frames]:
                    if pending is not None and not pending.done():
                        pending.set_exception(exc)
                return
            if done is not None and not done.done():
                done.set_result(None)


async def until(condition: Callable[[], bool], *, within: float = 30.0, step: float = 0.01) -> None:
    """Wait (virtual time) until `condition()` holds; AssertionError after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(step)


# ---------------------------------------------------------------- one session, wired up


SCRIPT_POLICY = SessionPolicy(echo_guard=False)


@dataclass
class Session:
    """One scripted conversation and everything around it, for a script to drive and assert on."""

    conversation: Conversation
    transport: RecordingTransport
    user: User
    lexicon: Lexicon
    recognizer: ScriptedRecognizer
    llm: ScriptedLLM
    voices: ToneVoices
    turn_model: ScriptedTurnModel | None
    vads: list[ScriptedVad]
    prepared: list[int]

    @property
    def events(self) -> list[ServerEvent]:
        return self.transport.events

    def wire(self) -> list[str]:
        return wire(self.transport.events)

    def state(self) -> str:
        """The turn state's name: "Listening", "Replying", "OverAgent(reading)", ..."""
        return name(self.conversation.state)

    async def until(self, condition: Callable[[], bool], *, within: float = 30.0) -> None:
        """Wait until `condition()` holds, while the user's microphone streams."""

        def met() -> bool:
            self.user.check()
            return condition()

        await until(met, within=within)

    async def idle(self, *, within: float = 30.0) -> None:
        """Wait until the agent has nothing left to do: no user turn, no reply (a tool result may be due)."""
        await self.until(lambda: self.state() in ("Listening", "AwaitingTools"), within=within)

    async def drop(self) -> None:
        """The socket goes: the microphone stops and the conversation detaches."""
        await self.user.stop()
        await self.conversation.detach()

    def resume(self) -> RecordingTransport:
        """A new socket resumed the session: a fresh transport, and the microphone streams again."""
        self.transport = RecordingTransport()
        self.conversation.resumed()
        self.conversation.attach(self.transport)
        self.user.start()
        return self.transport

    def now(self) -> float:
        return asyncio.get_running_loop().time()


async def open_session(
    *,
    llm: ScriptedLLM | None = None,
    policy: SessionPolicy = SCRIPT_POLICY,
    config: dict[str, Any] | None = None,
    recognizer: ScriptedRecognizer | None = None,
    voices: ToneVoices | None = None,
    turn_model: ScriptedTurnModel | None = None,
    smart_turn: bool = True,
    lexicon: Lexicon | None = None,
    acknowledges_playback: bool = False,
    transport: RecordingTransport | None = None,
) -> Session:
    """A conversation on scripted ports, attached to a recording transport and configured with `config`
    (a `session.update` body); nothing is said until the script says so (`greet()`, the user)."""
    lexicon = lexicon or (recognizer.lexicon if recognizer is not None else Lexicon())
    recognizer = recognizer or ScriptedRecognizer(lexicon)
    llm = llm or ScriptedLLM()
    voices = voices or ToneVoices()
    if turn_model is None and smart_turn:
        turn_model = ScriptedTurnModel()
    vads: list[ScriptedVad] = []
    prepared: list[int] = []

    def new_vad() -> ScriptedVad:
        vads.append(ScriptedVad())
        return vads[-1]

    ports = SessionPorts(
        new_vad=new_vad,
        recognizer=recognizer,
        turn_model=turn_model,
        llms=llm,
        voices=voices,
        prepare=lambda: prepared.append(1),
    )
    conversation = Conversation(ports, policy, "sess_test", "owner")
    transport = transport or RecordingTransport(acknowledges_playback=acknowledges_playback)
    conversation.attach(transport)
    body = config or {}
    first = await conversation.update(SessionConfig.model_validate(body), set(body))
    assert first
    session = Session(
        conversation,
        transport,
        User(conversation, lexicon),
        lexicon,
        recognizer,
        llm,
        voices,
        turn_model,
        vads,
        prepared,
    )
    if isinstance(transport, EchoingClient):
        session.user.also_hears = transport.echo
    session.user.start()
    return session
