"""Voxgate's models over the OpenAI HTTP API, for any client or server that speaks it.

- `POST /v1/audio/transcriptions` (multipart `file`, `model`, `language`, `prompt`, `response_format`
  json|text): the final STT model. The file must be a PCM WAV (8/16/24/32-bit, any rate, any
  channel count); it is mixed to mono and resampled to 16 kHz. The prompt is used as a keyterm.
- `POST /v1/audio/speech` (JSON `model`, `input`, `voice`, `response_format` wav|pcm; `speed` and
  `instructions` ignored): any catalog voice or alias, streamed clause by clause. Both formats are
  16-bit little-endian mono at 24 kHz (OpenAI's `pcm`); `wav` (the default here, since there is no
  mp3 encoder) starts with a header whose RIFF and data sizes are 0xFFFFFFFF, as streaming servers
  write when the length is not known yet.
- `POST /v1/chat/completions` (`messages`, `tools`, `stream`): the language model, with tool calls
  as `tool_calls`; streamed as server-sent `chat.completion.chunk`s ending with `data: [DONE]`.
- `GET /v1/models`: the models these routes serve.

The `model` field of a request is accepted and echoed but never switches models: each route serves
the one the server is configured with. Access takes an API key with the `sessions` scope (an open
loopback server takes any). Errors use OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import io
import json
import logging
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
import soundfile
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voxgate.audio.codecs import float_to_int16
from voxgate.audio.resample import resample
from voxgate.backends.base import ANALYSIS_RATE, Audio, ChatMessage, TextDelta, ToolSpec
from voxgate.backends.recognition import Recognizer
from voxgate.backends.registry import Models
from voxgate.backends.voices import UnknownVoiceError
from voxgate.redaction import redact
from voxgate.server.auth import Authenticator, AuthError, Scope, bearer
from voxgate.server.body_limits import UPLOAD_FILE_BYTES
from voxgate.session.clauses import ClauseSplitter

log = logging.getLogger("voxgate.server.openai")

router = APIRouter()

#: The rate of every audio format /v1/audio/speech returns (OpenAI's `pcm` rate).
SPEECH_RATE = 24_000
MAX_UPLOAD_BYTES = UPLOAD_FILE_BYTES  # OpenAI's own limit for transcriptions
MAX_SPEECH_INPUT_CHARS = 4096  # OpenAI's own limit for speech; longer text is minutes of synthesis
TTS_MODEL = "voxgate-tts"


class OpenAIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


def _models(request: Request) -> Models:
    models: Models = request.app.state.models
    return models


def _authorize(request: Request) -> None:
    auth: Authenticator = request.app.state.auth
    try:
        principal = auth.check_key(bearer(request.headers.get("authorization")))
    except AuthError as exc:
        raise OpenAIError(401, exc.message, code="invalid_api_key") from exc
    if Scope.SESSIONS not in principal.scopes:
        raise OpenAIError(
            403,
            "this API key may not use the models (it needs the 'sessions' scope)",
            type_="permission_error",
            code="forbidden",
        )


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()  # at most the route's limit (server/body_limits.py), counted as it came in
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OpenAIError(400, f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # nesting deeper than the parser's stack: not JSON anyone sends
        raise OpenAIError(400, "the body is not valid JSON: nested too deeply") from exc
    if not isinstance(body, dict):
        raise OpenAIError(400, "the body must be a JSON object")
    return body


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], body: dict[str, Any]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise OpenAIError(400, f"{param}: {first['msg']}" if param else first["msg"], param=param) from exc


# ---------------------------------------------------------------- models


@router.get("/v1/models", response_model=None)
async def list_models(request: Request) -> JSONResponse:
    try:
        _authorize(request)
    except OpenAIError as exc:
        return exc.response()
    s = _models(request).settings
    ids = [
        s.llm_model,
        s.stt_remote_model if s.stt_backend == "openai" else s.stt_model,
        TTS_MODEL,
    ]
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "voxgate"} for i in dict.fromkeys(ids)]
    return JSONResponse({"object": "list", "data": data})


# ---------------------------------------------------------------- transcriptions


def decode_audio(data: bytes) -> Audio:
    """An uploaded audio file (WAV, FLAC, OGG, MP3: whatever libsndfile reads) → mono float32 at ANALYSIS_RATE."""
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise OpenAIError(400, f"could not read the audio file ({exc})", param="file") from exc
    mono = np.asarray(samples.mean(axis=1), dtype=np.float32)
    return resample(mono, int(rate), ANALYSIS_RATE)


@router.post("/v1/audio/transcriptions", response_model=None)
async def transcriptions(request: Request) -> Response:
    try:
        _authorize(request)
        # The body is never read whole: server/body_limits.py counts it as it streams in (413 past the
        # upload limit), and the multipart parser spools the file to disk part by part.
        form = await request.form(max_part_size=MAX_UPLOAD_BYTES)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise OpenAIError(400, "send multipart/form-data with a 'file' field", param="file")

        def text_field(name: str) -> str | None:
            value = form.get(name)
            return value.strip() or None if isinstance(value, str) else None

        response_format = text_field("response_format") or "json"
        if response_format not in ("json", "text"):
            raise OpenAIError(400, "response_format must be 'json' or 'text'", param="response_format")
        audio = decode_audio(await upload.read())
        models = _models(request)
        language = text_field("language")
        if language is None and models.settings.stt_language != "auto":
            language = models.settings.stt_language
        prompt = text_field("prompt")
        try:
            text = await Recognizer(models).transcribe(
                audio, language=language, keyterms=[prompt] if prompt else [], purpose="final"
            )
        except Exception as exc:
            log.exception("transcription failed")
            raise OpenAIError(500, f"transcription failed: {redact(str(exc))}", type_="server_error") from exc
    except OpenAIError as exc:
        return exc.response()
    if response_format == "text":
        return PlainTextResponse(text + "\n")
    return JSONResponse({"text": text})


# ---------------------------------------------------------------- speech


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = TTS_MODEL
    input: Annotated[str, Field(max_length=MAX_SPEECH_INPUT_CHARS)]
    voice: str | None = None
    response_format: Literal["wav", "pcm"] = "wav"
    speed: float | None = None  # accepted, ignored


def wav_stream_header(rate: int = SPEECH_RATE) -> bytes:
    """A 16-bit mono WAV header for a stream of unknown length (sizes 0xFFFFFFFF)."""
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


@router.post("/v1/audio/speech", response_model=None)
async def speech(request: Request) -> Response:
    try:
        _authorize(request)
        spec = _parse(SpeechRequest, await _json_body(request))
        if not spec.input.strip():
            raise OpenAIError(400, "input is empty", param="input")
        catalog = _models(request).voices
        try:
            voice = catalog.resolve(spec.voice)
        except UnknownVoiceError as exc:
            raise OpenAIError(400, str(exc), param="voice", code="invalid_value") from exc
    except OpenAIError as exc:
        return exc.response()

    splitter = ClauseSplitter()
    clauses = [*splitter.feed(spec.input), *splitter.flush()]

    async def body() -> AsyncIterator[bytes]:
        if spec.response_format == "wav":
            yield wav_stream_header()
        for i, clause in enumerate(clauses):
            audio, rate = await catalog.synthesize(clause, voice.for_clause(first=i == 0))
            if len(audio):
                yield float_to_int16(resample(audio, rate, SPEECH_RATE)).astype("<i2").tobytes()

    media = "audio/wav" if spec.response_format == "wav" else "audio/pcm"
    return StreamingResponse(body(), media_type=media)


# ---------------------------------------------------------------- chat completions


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    stream: bool = False


def _content_text(content: object) -> str:
    """A message's content: a string, null, or a list of parts of which the text ones count."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise OpenAIError(400, "message content must be a string or a list of parts", param="messages")


def to_chat_messages(messages: list[dict[str, Any]]) -> list[ChatMessage]:
    from voxgate.backends.base import ToolCallRequest

    out: list[ChatMessage] = []
    for i, m in enumerate(messages):
        role = m.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant", "tool"):
            raise OpenAIError(400, f"messages[{i}].role {role!r} is not supported", param=f"messages.{i}.role")
        calls: list[ToolCallRequest] = []
        for call in m.get("tool_calls") or ():
            function = call.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except json.JSONDecodeError:
                arguments = {}
            calls.append(
                ToolCallRequest(
                    call_id=str(call.get("id", "")),
                    name=str(function.get("name", "")),
                    arguments=arguments if isinstance(arguments, dict) else {},
                )
            )
        out.append(
            ChatMessage(
                role=role,
                content=_content_text(m.get("content")),
                tool_calls=calls,
                tool_call_id=m.get("tool_call_id"),
            )
        )
    return out


def to_tool_specs(tools: list[dict[str, Any]] | None) -> list[ToolSpec]:
    specs = []
    for i, tool in enumerate(tools or ()):
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, dict) or not function.get("name"):
            raise OpenAIError(400, f"tools[{i}] must be a function tool with a name", param=f"tools.{i}")
        specs.append(
            ToolSpec(
                name=str(function["name"]),
                description=str(function.get("description", "")),
                parameters=function.get("parameters") or {"type": "object", "properties": {}},
            )
        )
    return specs


def _tool_call_json(index: int, call: Any) -> dict[str, Any]:
    return {
        "index": index,
        "id": call.call_id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request) -> Response:
    try:
        _authorize(request)
        spec = _parse(ChatRequest, await _json_body(request))
        messages = to_chat_messages(spec.messages)
        tools = to_tool_specs(spec.tools)
        if not messages:
            raise OpenAIError(400, "messages is empty", param="messages")
    except OpenAIError as exc:
        return exc.response()
    llm = _models(request).llm
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    model = spec.model or llm.name

    if spec.stream:

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(payload)}\n\n"

        async def events() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            n_calls = 0
            try:
                async for event in llm.stream(messages, tools):
                    if isinstance(event, TextDelta):
                        if event.text:
                            yield chunk({"content": event.text})
                    else:
                        yield chunk({"tool_calls": [_tool_call_json(n_calls, event)]})
                        n_calls += 1
            except Exception as exc:  # the headers are sent: report in the stream, as OpenAI does
                log.exception("chat completion failed mid-stream")
                error = {
                    "message": f"language model failed: {redact(str(exc))}",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
                yield f"data: {json.dumps({'error': error})}\n\n"
                return
            yield chunk({}, "tool_calls" if n_calls else "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    text: list[str] = []
    calls: list[dict[str, Any]] = []
    try:
        async for event in llm.stream(messages, tools):
            if isinstance(event, TextDelta):
                text.append(event.text)
            else:
                call = _tool_call_json(len(calls), event)
                del call["index"]
                calls.append(call)
    except Exception as exc:
        log.exception("chat completion failed")
        return OpenAIError(502, f"language model failed: {redact(str(exc))}", type_="server_error").response()
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        }
    )
