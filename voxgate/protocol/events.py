"""The Voice Agent API wire protocol as pydantic models: the one place the JSON shapes live.

Client events are parsed leniently where the hosted API's clients are lenient (unknown keys are
ignored, several tool shapes are accepted) and strictly where a wrong value would silently change
behaviour (types and ranges of turn-detection settings). Server events are built only from these
models so that field names cannot drift.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

AudioEncoding = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]


class ErrorCode(StrEnum):
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    SESSION_NOT_FOUND = "session_not_found"
    SESSION_FORBIDDEN = "session_forbidden"
    SESSION_EXPIRED = "session_expired"
    AGENT_INIT_FAILED = "agent_init_failed"
    AGENT_TIMEOUT = "agent_timeout"
    INVALID_FORMAT = "invalid_format"
    INVALID_AUDIO = "invalid_audio"
    INVALID_VALUE = "invalid_value"
    IMMUTABLE_FIELD = "immutable_field"
    SERVER_ERROR = "server_error"


class _Lenient(BaseModel):
    """Unknown keys are ignored: newer clients may send fields this server does not know yet."""

    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------- session configuration


class AudioFormat(_Lenient):
    encoding: AudioEncoding = "audio/pcm"


class TurnDetection(_Lenient):
    vad_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    min_silence: Annotated[int, Field(ge=0, le=10_000)] = 600
    max_silence: Annotated[int, Field(ge=0, le=30_000)] = 1500
    interrupt_response: bool = True

    @model_validator(mode="after")
    def _silences_ordered(self) -> TurnDetection:
        if self.max_silence < self.min_silence:
            raise ValueError("max_silence must be >= min_silence")
        return self


class InputConfig(_Lenient):
    format: AudioFormat | None = None
    turn_detection: TurnDetection | None = None
    keyterms: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=100)] | None = None
    language: str | None = None  # [Voxgate] ISO 639-1 code; the hosted API's clients never send it


class OutputConfig(_Lenient):
    voice: str | None = None
    format: AudioFormat | None = None


class Tool(BaseModel):
    """A tool the LLM may call. Accepts the flat form, the flat form with "type": "function",
    and the OpenAI chat form {"type": "function", "function": {...}}."""

    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    @model_validator(mode="before")
    @classmethod
    def _unwrap_openai_form(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("function"), dict):
            return data["function"]
        return data


class SessionConfig(_Lenient):
    system_prompt: str | None = None
    greeting: str | None = None
    tools: list[Tool] | None = None
    input: InputConfig | None = None
    output: OutputConfig | None = None
    llm_model: str | None = None  # [Voxgate] one of the operator's allowed models; hosted clients never send it


# ---------------------------------------------------------------- client -> server


class SessionUpdate(_Lenient):
    type: Literal["session.update"]
    session: SessionConfig = Field(default_factory=SessionConfig)


class InputAudio(_Lenient):
    type: Literal["input.audio"]
    audio: str


class ToolResult(_Lenient):
    type: Literal["tool.result"]
    call_id: Annotated[str, Field(min_length=1)]
    result: str

    @field_validator("result", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # Clients are told to send a string; an object is what they meant, so keep it as JSON text.
        if isinstance(value, dict | list):
            import json

            return json.dumps(value)
        return value


class SessionResume(_Lenient):
    type: Literal["session.resume"]
    session_id: Annotated[str, Field(min_length=1)]


ClientEvent = Annotated[SessionUpdate | InputAudio | ToolResult | SessionResume, Field(discriminator="type")]
client_event_adapter: TypeAdapter[ClientEvent] = TypeAdapter(ClientEvent)
CLIENT_EVENT_TYPES = frozenset({"session.update", "input.audio", "tool.result", "session.resume"})


# ---------------------------------------------------------------- server -> client


class SessionReady(BaseModel):
    type: Literal["session.ready"] = "session.ready"
    session_id: str


class SessionUpdated(BaseModel):
    type: Literal["session.updated"] = "session.updated"


class SpeechStarted(BaseModel):
    type: Literal["input.speech.started"] = "input.speech.started"


class SpeechStopped(BaseModel):
    type: Literal["input.speech.stopped"] = "input.speech.stopped"


class UserTranscriptDelta(BaseModel):
    type: Literal["transcript.user.delta"] = "transcript.user.delta"
    text: str


class UserTranscript(BaseModel):
    type: Literal["transcript.user"] = "transcript.user"
    text: str
    item_id: str


class ReplyStarted(BaseModel):
    type: Literal["reply.started"] = "reply.started"
    reply_id: str


class ReplyAudio(BaseModel):
    type: Literal["reply.audio"] = "reply.audio"
    data: str


class AgentTranscript(BaseModel):
    type: Literal["transcript.agent"] = "transcript.agent"
    text: str
    interrupted: bool = False


class ReplyDone(BaseModel):
    type: Literal["reply.done"] = "reply.done"
    status: Literal["completed", "interrupted"] | None = None

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ToolCall(BaseModel):
    type: Literal["tool.call"] = "tool.call"
    call_id: str
    name: str
    arguments: dict[str, Any]


class SessionError(BaseModel):
    type: Literal["session.error"] = "session.error"
    code: ErrorCode
    message: str
    timestamp: float = Field(default_factory=time.time)


ServerEvent = (
    SessionReady
    | SessionUpdated
    | SpeechStarted
    | SpeechStopped
    | UserTranscriptDelta
    | UserTranscript
    | ReplyStarted
    | ReplyAudio
    | AgentTranscript
    | ReplyDone
    | ToolCall
    | SessionError
)


def to_wire(event: ServerEvent) -> dict[str, Any]:
    """The JSON object sent for a server event (optional fields that are unset are left out)."""
    return event.model_dump(mode="json", exclude_none=True)
