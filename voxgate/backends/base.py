"""The small protocols every backend implements.

A backend is one blocking call (or, for the LLM, one async stream). The session owns threading and
cancellation; backends never import the server or the session, so a new provider is one new module.
All audio handed to or returned by backends is mono float32 in [-1, 1] at the rate the backend states.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

# The audio types are the backends' too: re-exported for their modules.
from voxgate.audio.types import ANALYSIS_RATE as ANALYSIS_RATE
from voxgate.audio.types import Audio as Audio

# ---------------------------------------------------------------- VAD


class VadStream(Protocol):
    """Per-session detector state (the model itself is shared)."""

    frame_samples: int

    def probability(self, frame: Audio) -> float:
        """Speech probability of one frame of exactly `frame_samples` samples at ANALYSIS_RATE."""
        ...

    def reset(self) -> None: ...


class VoiceActivityDetector(Protocol):
    frame_samples: int

    def new_stream(self) -> VadStream: ...


# ---------------------------------------------------------------- STT


@dataclass(frozen=True)
class STTCapabilities:
    keyterms: bool = False
    languages: tuple[str, ...] = ("en",)


#: A decode's search, where a backend has a choice: "fast" (greedy) or "accurate" (beam search).
STTDecoding = Literal["fast", "accurate"]


class SpeechToText(Protocol):
    capabilities: STTCapabilities
    name: str

    def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None,
        keyterms: Sequence[str] = (),
        quick: bool = False,
        languages: Sequence[str] = (),
        prompt: str | None = None,
        decoding: STTDecoding | None = None,
    ) -> str:
        """Blocking: the whole utterance at ANALYSIS_RATE in, its text out (may be empty).

        `language`: the one to recognise in; None: detect it, among `languages` when given (a single
        code there is recognised in, like `language`). A code the backend cannot handle is dropped, and
        with none left it detects: never an error.
        `prompt`: context the recogniser reads before the audio (a Whisper prompt), beside `keyterms`.
        `quick`: a read whose speed matters more than its last word (partials, "is this voice over
        the agent a backchannel?"); a backend with a faster, rougher mode uses it.
        `decoding`: this call's search instead of the configured one (`quick` wins); backends without
        a choice ignore it."""
        ...


# ---------------------------------------------------------------- end of turn


class TurnCompletionModel(Protocol):
    def probability_complete(self, audio: Audio) -> float:
        """Blocking: the user's turn so far at ANALYSIS_RATE in, P(the turn is complete) out."""
        ...


# ---------------------------------------------------------------- LLM


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCallRequest:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class ChatMessage:
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    tool_call_id: str | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


LLMEvent = TextDelta | ToolCallRequest


class LanguageModel(Protocol):
    name: str

    def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> AsyncIterator[LLMEvent]:
        """Stream the reply. Cancelling the consuming task must stop generation promptly."""
        ...


# ---------------------------------------------------------------- TTS


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    engine: str
    language: str  # BCP 47 of the voice's native language, e.g. "en-US", "ja-JP"
    gender: Literal["female", "male", "neutral"]
    description: str
    languages: tuple[str, ...] = ("en",)  # ISO 639-1 codes it can speak acceptably


@runtime_checkable
class TextToSpeech(Protocol):
    sample_rate: int

    def voices(self) -> Sequence[VoiceInfo]: ...

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        """Blocking: one clause of text in, its audio at `sample_rate` out."""
        ...
