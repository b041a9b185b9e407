"""The Voice Agent API wire protocol as pydantic models: the one place the JSON shapes live.

Client events are parsed leniently where the hosted API's clients are lenient (unknown keys are
ignored, several tool shapes are accepted) and strictly where a wrong value would silently change
behaviour (types and ranges of settings): a refused value names its field (`param`) so a client can
fix its update. Server events are built only from these models so that field names cannot drift;
every one carries `timestamp`, and optional fields go out as `null` rather than missing, as the
hosted API sends them (shared/protocol.md §5).
"""

from __future__ import annotations

import json
import time
import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator, model_validator

AudioEncoding = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
TranscriptionMode = Literal["balanced", "min_latency", "max_accuracy"]
ExecutionMode = Literal["interactive", "hold"]
WEBHOOK_EVENTS = frozenset({"session.started", "session.completed", "call.connected", "call.ended", "call.failed"})


class ErrorCode(StrEnum):
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    SERVER_ERROR = "server_error"
    CONCURRENCY_EXCEEDED = "concurrency_exceeded"
    SESSION_NOT_FOUND = "session_not_found"
    SESSION_FORBIDDEN = "session_forbidden"
    SESSION_EXPIRED = "session_expired"
    AGENT_INIT_FAILED = "agent_init_failed"
    AGENT_TIMEOUT = "agent_timeout"
    AGENT_NOT_FOUND = "agent_not_found"
    AGENT_ID_NOT_FIRST = "agent_id_not_first"
    INVALID_FORMAT = "invalid_format"
    INVALID_AUDIO = "invalid_audio"
    INVALID_VALUE = "invalid_value"
    INVALID_CONFIG = "invalid_config"
    IMMUTABLE_FIELD = "immutable_field"
    INVALID_WEBHOOK = "invalid_webhook"
    AUDIO_RATE_VIOLATION = "audio_rate_violation"


class ReplyErrorCode(StrEnum):
    LLM_ERROR = "llm_error"
    LLM_TIMEOUT = "llm_timeout"
    TTS_ERROR = "tts_error"
    STT_TIMEOUT = "stt_timeout"


def new_id(prefix: str) -> str:
    """The hosted API's id form: a prefix (`sess_`, `resp_`, `msg_`, `call_`) and 32 hex digits."""
    return prefix + uuid.uuid4().hex


# Size limits on what a client may configure or send [Voxgate]. The hosted API documents none of these;
# they keep one client from freezing or flooding the server (a 300 KB greeting once stalled every
# session for seconds) while leaving room for any real agent: a long prompt is ~4000 words.
MAX_SYSTEM_PROMPT_CHARS = 16_000
MAX_GREETING_CHARS = 2_000
MAX_TOOLS = 64
MAX_TOOL_DESCRIPTION_CHARS = 2_000
MAX_TOOL_SCHEMA_CHARS = 8_000  # the JSON Schema of one tool's parameters, as JSON text
MAX_TOOL_RESULT_CHARS = 16_000
MAX_MESSAGE_CHARS = 16_000  # conversation.message
MAX_INSTRUCTIONS_CHARS = 4_000  # reply.create


class _Lenient(BaseModel):
    """Unknown keys are ignored: newer clients may send fields this server does not know yet."""

    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------- session configuration


class AudioFormat(_Lenient):
    encoding: AudioEncoding = "audio/pcm"
    sample_rate: int | None = None  # only audio/pcm has a rate, and 24 kHz is its only one

    @field_validator("sample_rate")
    @classmethod
    def _pcm_rate(cls, rate: int | None, info: ValidationInfo) -> int | None:
        if info.data.get("encoding", "audio/pcm") != "audio/pcm":
            return None  # G.711 is 8 kHz; a rate given with it is ignored
        if rate not in (None, 24000):
            raise ValueError("audio/pcm is 24000 Hz only")
        return rate


class TurnDetection(_Lenient):
    """Turn-taking settings as sent. Unset silences mean adaptive pacing (session/config.py)."""

    vad_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    min_silence: Annotated[int, Field(ge=0, le=10_000)] | None = None
    max_silence: Annotated[int, Field(ge=0, le=30_000)] | None = None
    interrupt_response: bool = True
    interruption_delay: Annotated[int, Field(ge=0, le=1000)] | None = None
    type: Literal["server_vad", "semantic_vad"] | None = None
    uninterruptible_turns: list[str] = Field(default_factory=list)


Keyterms = Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=100)]


class InputConfig(_Lenient):
    type: Literal["audio", "text"] | None = None
    format: AudioFormat | None = None
    turn_detection: TurnDetection | None = None
    keyterms: Keyterms | None = None
    language_codes: list[Annotated[str, Field(min_length=2, max_length=8)]] | None = None
    transcription_mode: TranscriptionMode | None = None
    transcription_prompt: Annotated[str, Field(max_length=1750)] | None = None
    voice_focus: Literal["near-field", "far-field"] | None = None
    voice_focus_threshold: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    continuous_partials: bool | None = None
    language: str | None = None  # [Voxgate] the older single-language field; language_codes wins


class OutputConfig(_Lenient):
    type: Literal["audio", "text"] | None = None
    voice: str | None = None
    format: AudioFormat | None = None
    volume: Annotated[float, Field(ge=0, le=100)] | None = None


class ResponseInstructions(_Lenient):
    success: Annotated[str, Field(max_length=500)] | None = None
    error: Annotated[str, Field(max_length=500)] | None = None


class Tool(BaseModel):
    """A tool the LLM may call. Accepts the flat form, the flat form with "type": "function",
    and the OpenAI chat form {"type": "function", "function": {...}}."""

    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: Annotated[str, Field(max_length=MAX_TOOL_DESCRIPTION_CHARS)] = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    execution_mode: ExecutionMode = "interactive"
    timeout_seconds: Annotated[int, Field(ge=1, le=300)] = 120
    response_instructions: ResponseInstructions | None = None
    http: dict[str, Any] | None = None
    dtmf_collected_arguments: list[Any] | None = None

    @field_validator("parameters")
    @classmethod
    def _schema_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > MAX_TOOL_SCHEMA_CHARS:
            raise ValueError(f"parameters: at most {MAX_TOOL_SCHEMA_CHARS} characters of JSON Schema")
        return value

    @model_validator(mode="before")
    @classmethod
    def _unwrap_openai_form(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("function"), dict):
            return {**{k: v for k, v in data.items() if k not in ("function", "type")}, **data["function"]}
        return data


class LlmEndpoint(_Lenient):
    base_url: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1)]
    api_key: str | None = None


class Webhook(_Lenient):
    url: str
    events: list[str]
    secret: str | None = None


class VoxgateOptions(_Lenient):
    """[Voxgate] Extensions a client asks for by name; a hosted client never sends `voxgate` and gets none of them."""

    turn_latency: bool | None = None  # a `voxgate.turn.latency` event after each spoken turn's first audio


class SessionConfig(_Lenient):
    agent_id: str | None = None
    system_prompt: Annotated[str, Field(max_length=MAX_SYSTEM_PROMPT_CHARS)] | None = None
    greeting: Annotated[str, Field(max_length=MAX_GREETING_CHARS)] | None = None
    tools: Annotated[list[Tool], Field(max_length=MAX_TOOLS)] | None = None
    input: InputConfig | None = None
    output: OutputConfig | None = None
    llm: Annotated[list[LlmEndpoint], Field(max_length=1)] | None = None
    pre_connect_requests: Annotated[list[dict[str, Any]], Field(max_length=2)] | None = None
    webhook: Webhook | None = None
    llm_model: str | None = None  # [Voxgate] one of the operator's allowed models; hosted clients never send it
    voxgate: VoxgateOptions | None = None  # [Voxgate] extensions the client asks for (VoxgateOptions)


# ---------------------------------------------------------------- client -> server


class SessionUpdate(_Lenient):
    type: Literal["session.update"]
    session: SessionConfig = Field(default_factory=SessionConfig)


class InputAudio(_Lenient):
    type: Literal["input.audio"]
    audio: str


class ToolResult(_Lenient):
    type: Literal["tool.result"]
    call_id: Annotated[str, Field(min_length=1, max_length=128)]
    result: Annotated[str, Field(max_length=MAX_TOOL_RESULT_CHARS)] = ""
    is_error: bool = False

    @field_validator("result", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # Clients are told to send a string; an object is what they meant, so keep it as JSON text.
        if isinstance(value, dict | list):
            return json.dumps(value)
        if value is None:
            return ""
        return value


class SessionResume(_Lenient):
    type: Literal["session.resume"]
    session_id: Annotated[str, Field(min_length=1)]


class ReplyCreate(_Lenient):
    type: Literal["reply.create"]
    instructions: Annotated[str, Field(max_length=MAX_INSTRUCTIONS_CHARS)] | None = None


class ReplyCancel(_Lenient):
    type: Literal["reply.cancel"]
    reply_id: str | None = None


class SessionEnd(_Lenient):
    type: Literal["session.end"]


class ConversationMessage(_Lenient):
    type: Literal["conversation.message"]
    role: Literal["system", "user"]
    content: Annotated[str, Field(max_length=MAX_MESSAGE_CHARS)]


ClientEvent = Annotated[
    SessionUpdate
    | InputAudio
    | ToolResult
    | SessionResume
    | ReplyCreate
    | ReplyCancel
    | SessionEnd
    | ConversationMessage,
    Field(discriminator="type"),
]
client_event_adapter: TypeAdapter[ClientEvent] = TypeAdapter(ClientEvent)
CLIENT_EVENT_TYPES = frozenset(
    {
        "session.update",
        "input.audio",
        "tool.result",
        "session.resume",
        "reply.create",
        "reply.cancel",
        "session.end",
        "conversation.message",
    }
)


# ---------------------------------------------------------------- server -> client


class _ServerEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    timestamp: float = Field(default_factory=time.time)


class SessionReady(_ServerEvent):
    type: Literal["session.ready"] = "session.ready"
    session_id: str
    config: dict[str, Any] = Field(default_factory=dict)
    expires_at: int | None = None
    resume_token: str | None = None


class SessionUpdated(_ServerEvent):
    type: Literal["session.updated"] = "session.updated"
    config: dict[str, Any] = Field(default_factory=dict)


class SessionEnded(_ServerEvent):
    type: Literal["session.ended"] = "session.ended"
    session_duration_seconds: float = 0.0
    audio_duration_seconds: float | None = None


class SpeechStarted(_ServerEvent):
    type: Literal["input.speech.started"] = "input.speech.started"


class SpeechStopped(_ServerEvent):
    type: Literal["input.speech.stopped"] = "input.speech.stopped"


class UserTranscriptDelta(_ServerEvent):
    type: Literal["transcript.user.delta"] = "transcript.user.delta"
    text: str
    item_id: str = ""


class UserTranscript(_ServerEvent):
    type: Literal["transcript.user"] = "transcript.user"
    text: str
    item_id: str


class ReplyStarted(_ServerEvent):
    type: Literal["reply.started"] = "reply.started"
    reply_id: str
    item_id: str = ""


class ReplyAudio(_ServerEvent):
    type: Literal["reply.audio"] = "reply.audio"
    data: str
    reply_id: str = ""


class AgentTranscriptDelta(_ServerEvent):
    type: Literal["transcript.agent.delta"] = "transcript.agent.delta"
    reply_id: str
    item_id: str
    delta: str
    start_ms: int | None = None
    end_ms: int | None = None


class AgentTranscript(_ServerEvent):
    type: Literal["transcript.agent"] = "transcript.agent"
    text: str
    interrupted: bool = False
    reply_id: str = ""
    item_id: str = ""


class ReplyDone(_ServerEvent):
    type: Literal["reply.done"] = "reply.done"
    status: Literal["completed", "interrupted"] = "completed"
    reply_id: str = ""


class ReplyError(_ServerEvent):
    type: Literal["reply.error"] = "reply.error"
    reply_id: str
    code: str
    message: str
    retryable: bool = False
    provider_code: str | None = None
    provider_param: str | None = None
    status_code: int | None = None


class ToolCall(_ServerEvent):
    type: Literal["tool.call"] = "tool.call"
    call_id: str
    name: str
    arguments: dict[str, Any]


class SessionError(_ServerEvent):
    type: Literal["session.error"] = "session.error"
    code: str
    message: str
    param: str | None = None
    session_id: str | None = None


class LatencyStage(BaseModel):
    """[Voxgate] One stage of a turn, in milliseconds after the end of the user's speech."""

    name: str
    start_ms: int
    end_ms: int


class TurnLatency(_ServerEvent):
    """[Voxgate] Where a spoken turn's time went, from the end of the user's speech to the agent's first audio.

    Sent only to a client that set `voxgate.turn_latency` (docs/observability.md), right after the turn's
    first `reply.audio` (or its `reply.done`, when it ended before any audio)."""

    type: Literal["voxgate.turn.latency"] = "voxgate.turn.latency"
    item_id: str  # the user's turn
    reply_id: str | None = None  # the reply to it
    outcome: Literal["answered", "interrupted", "failed"] = "answered"
    first_audio_ms: int | None = None  # end of speech to the first reply.audio
    prefetched: bool = False  # the LLM was started at a pause, before the turn ended
    stages: list[LatencyStage] = Field(default_factory=list)


ServerEvent = (
    SessionReady
    | SessionUpdated
    | SessionEnded
    | SpeechStarted
    | SpeechStopped
    | UserTranscriptDelta
    | UserTranscript
    | ReplyStarted
    | ReplyAudio
    | AgentTranscriptDelta
    | AgentTranscript
    | ReplyDone
    | ReplyError
    | ToolCall
    | SessionError
    | TurnLatency
)


def to_wire(event: ServerEvent) -> dict[str, Any]:
    """The JSON object sent for a server event: every field, `null` where unset."""
    return event.model_dump(mode="json")
