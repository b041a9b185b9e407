"""A remote LLM over the OpenAI chat-completions API: OpenAI itself, Ollama, vLLM, llama.cpp's server ...

One `AsyncOpenAI` client per backend; its own retries (with backoff) cover transient failures
before the reply starts. A reply is streamed: text deltas are passed on as they come, and the
tool-call fragments (`delta.tool_calls`: an index, then the id and name, then pieces of the JSON
arguments) are assembled and handed over as `ToolCallRequest`s when the stream finishes.
Cancelling the consumer closes the HTTP response, which tells the server to stop generating.
Every failure of the API (refused connection, timeout, 4xx/5xx after retries, a stream cut off)
is raised as `LLMUnavailable`, so the session and `FallbackLLM` see one kind of error.

A server that does not parse its model's tool calls (llama.cpp's without `--jinja`, a raw Qwen or
Hermes model) streams them as content, `<tool_call>{...}</tool_call>` or a JSON fence: content goes
through the same parser as the embedded model's, so such a call is a call and not text to speak.

The spoken-style rules the embedded prompt carries are appended to the system message here too,
so a remote model answers in short spoken sentences like the embedded one.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from voxgate.backends.base import ChatMessage, LLMEvent, ToolCallRequest, ToolSpec
from voxgate.backends.llm.errors import LLMUnavailable
from voxgate.backends.llm.qwen_prompt import VOICE_RULES
from voxgate.backends.llm.tool_call_parser import ToolCallParser
from voxgate.backends.openai_client import client_options
from voxgate.redaction import mask_url, redact

log = logging.getLogger("voxgate.llm.openai")


class OpenAIChatLLM:
    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        context_tokens: int = 16_384,
    ) -> None:
        self.name = model
        # What session/context_window.py fits the conversation into (the server says nothing of its window).
        self.context_tokens = context_tokens
        self.max_tokens = max_tokens or 1_024
        self._model = model
        self._temperature, self._max_tokens, self._seed = temperature, max_tokens, seed
        self._client = openai.AsyncOpenAI(
            **client_options(base_url=base_url, api_key=api_key, timeout_s=timeout_s, max_retries=max_retries),
            default_headers=dict(extra_headers or {}),
        )

    async def aclose(self) -> None:
        await self._client.close()

    def _unavailable(self, what: str, exc: openai.OpenAIError | None = None) -> LLMUnavailable:
        """The error for the session, which may show its text to the client: the model's name, never its URL.

        The log line (WARNING) says where, with the URL's credentials masked; no exception is chained,
        so a traceback logged further up cannot print an unmasked URL that the client library quoted.
        """
        detail = f": {redact(_describe(exc))}" if exc is not None else ""
        log.warning("language model %s at %s %s%s", self._model, mask_url(str(self._client.base_url)), what, detail)
        return LLMUnavailable(f"language model {self._model} {what}{detail}")

    async def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> AsyncIterator[LLMEvent]:
        try:
            response = await self._client.chat.completions.create(
                model=self._model,
                messages=to_openai_messages(messages),
                tools=to_openai_tools(tools) if tools else openai.omit,
                temperature=openai.omit if self._temperature is None else self._temperature,
                max_tokens=openai.omit if self._max_tokens is None else self._max_tokens,
                seed=openai.omit if self._seed is None else self._seed,
                stream=True,
            )
        except openai.OpenAIError as exc:
            raise self._unavailable("failed", exc) from None

        calls = ToolCallAssembler()
        content = ToolCallParser()
        finished = False
        try:
            async for chunk in response:
                for choice in chunk.choices[:1]:
                    delta = choice.delta
                    if delta.content:
                        for event in content.feed(delta.content):
                            yield event
                    for fragment in delta.tool_calls or ():
                        calls.add(fragment)
                    finished = finished or choice.finish_reason is not None
        except openai.OpenAIError as exc:
            raise self._unavailable("failed mid-reply", exc) from None
        finally:
            await response.close()
        if not finished:
            # The HTTP body ended cleanly but the reply did not: a server that failed after
            # sending its headers (llama-cpp-python's does this on a template error).
            raise self._unavailable("ended its reply without a finish reason")
        for event in content.flush():
            yield event
        for call in calls.finish():
            yield call


# ---------------------------------------------------------------- our types → OpenAI's


def to_openai_tools(tools: Sequence[ToolSpec]) -> list[ChatCompletionFunctionToolParam]:
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


def to_openai_messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    """Our history as OpenAI messages, the voice rules appended to the (first) system message.

    Content is always a string, never null or missing: the API allows both for an assistant turn
    that only calls tools, but servers that render the history with the model's chat template
    (llama-cpp-python's) fail on them.
    """
    out: list[ChatCompletionMessageParam] = []
    if not any(m.role == "system" for m in messages):
        out.append({"role": "system", "content": VOICE_RULES})
    ruled = False
    for m in messages:
        if m.role == "system":
            content = m.content if ruled else f"{m.content}\n{VOICE_RULES}".lstrip()
            ruled = True
            out.append({"role": "system", "content": content})
        elif m.role == "user":
            out.append({"role": "user", "content": m.content})
        elif m.role == "assistant":
            if m.tool_calls:
                out.append(
                    {
                        "role": "assistant",
                        "content": m.content,
                        "tool_calls": [
                            {
                                "id": c.call_id,
                                "type": "function",
                                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                            }
                            for c in m.tool_calls
                        ],
                    }
                )
            else:
                out.append({"role": "assistant", "content": m.content})
        else:
            out.append({"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content})
    return out


# ---------------------------------------------------------------- streamed tool calls → ours


@dataclass
class _PartialCall:
    call_id: str = ""
    name: str = ""
    arguments: str = ""


class ToolCallAssembler:
    """Joins streamed `delta.tool_calls` fragments into whole calls, by the fragment's index.

    The first fragment of a call carries its id and name; later ones carry pieces of the arguments'
    JSON text. A fragment without an index (some servers send whole calls) continues the call with
    its id, or else starts a new one.
    """

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}

    def add(self, fragment: ChoiceDeltaToolCall) -> None:
        index = fragment.index
        if index is None:
            index = next(
                (i for i, c in self._calls.items() if fragment.id and c.call_id == fragment.id),
                len(self._calls),
            )
        call = self._calls.setdefault(index, _PartialCall())
        if fragment.id and not call.call_id:
            call.call_id = fragment.id
        function = fragment.function
        if function is not None:
            if function.name and not call.name:
                call.name = function.name
            if function.arguments:
                call.arguments += function.arguments

    def finish(self) -> list[ToolCallRequest]:
        out = []
        for index in sorted(self._calls):
            call = self._calls[index]
            if not call.name:
                log.warning("dropped a streamed tool call without a name")
                log.debug("the nameless call's arguments: %r", call.arguments[:200])  # the caller's data: DEBUG
                continue
            call_id = call.call_id or "call_" + uuid.uuid4().hex[:12]
            out.append(ToolCallRequest(call_id=call_id, name=call.name, arguments=_arguments(call)))
        self._calls = {}
        return out


def _arguments(call: _PartialCall) -> dict[str, Any]:
    text = call.arguments.strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
        if isinstance(value, str):  # arguments encoded twice: a JSON string holding the object
            value = json.loads(value)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        log.warning("tool call %s (%s): arguments are not a JSON object, using {}", call.call_id, call.name)
        log.debug("tool call %s arguments: %r", call.call_id, text[:200])  # the caller's data: DEBUG only
        return {}
    return value


def _describe(exc: openai.OpenAIError) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    cause = exc.__cause__
    return f"{exc}" + (f" ({type(cause).__name__}: {cause})" if cause is not None and str(cause) else "")
