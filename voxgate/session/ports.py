"""What a session needs from the rest of the server, as narrow interfaces.

A session never sees the settings object, the model registry or a socket: it gets these ports through
its constructor. The server builds them from the real models (`backends/registry.py`); tests build them
from scripted fakes, so a whole conversation runs without a model and on virtual time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from voxgate.backends.base import Audio, LanguageModel, VadStream
from voxgate.backends.voices import ResolvedVoice
from voxgate.protocol.events import ServerEvent

TranscribePurpose = Literal["partial", "check", "final"]


class Recognizer(Protocol):
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
        """`partial`: the live line; `check`: a quick read of voice over the agent; `final`: the turn's text.
        `languages`: the session's `language_codes` (several: detect among them); `prompt`: its
        `transcription_prompt`; `mode`: its `transcription_mode`."""
        ...

    def finish_transcript(self, text: str, *, language: str | None, keyterms: Sequence[str]) -> str:
        """What the recognizer wrote → what the LLM acts on (keyterms spelled as given, entities formatted)."""
        ...


class TurnModel(Protocol):
    async def probability_complete(self, audio: Audio) -> float: ...


class LanguageModels(Protocol):
    def llm_for(self, model: str | None) -> LanguageModel:
        """Blocking on a first pick (it loads the model): call it off the loop."""
        ...

    def check_llm_model(self, model: str) -> None:
        """ValueError unless a session may pick `model`."""
        ...

    def llm_endpoint(self, base_url: str, model: str, api_key: str | None) -> LanguageModel:
        """An OpenAI-compatible LLM a session brings (`session.llm`, when the operator allows it)."""
        ...


class Voices(Protocol):
    def resolve(self, requested: str | None, *, language: str | None = None) -> ResolvedVoice: ...

    async def synthesize(self, text: str, voice: ResolvedVoice) -> tuple[Audio, int]:
        """One clause in, its audio and rate out (silence of length 0 when nothing in it is speakable)."""
        ...


@dataclass(frozen=True)
class SessionPorts:
    new_vad: Callable[[], VadStream]
    recognizer: Recognizer
    turn_model: TurnModel | None  # None: silence alone (and the words) end a turn
    llms: LanguageModels
    voices: Voices
    prepare: Callable[[], None]  # blocking: load what a session needs (a no-op once loaded)


class PlaybackPort(Protocol):
    """The client's playback, as far as the session acts on it (LiveKit's AudioOutput, cut down).

    A WebSocket client flushes its own buffer on `input.speech.started`, as the protocol asks; a phone
    line (Twilio) is told to with `clear`. A transport that confirms what was played (Twilio's marks)
    says so, and the session then keeps only confirmed audio as heard.
    """

    @property
    def acknowledges_playback(self) -> bool: ...

    async def flush(self) -> None:
        """Drop what the client buffered but did not play: the reply paused or was interrupted."""
        ...

    def rewound(self, reply_id: str, at_s: float) -> None:
        """A paused reply is sent again from `at_s` (reply seconds)."""
        ...


class Transport(Protocol):
    """The session's side of a socket: one send path and the client's playback."""

    @property
    def playback(self) -> PlaybackPort: ...

    async def send(self, event: ServerEvent) -> None: ...
