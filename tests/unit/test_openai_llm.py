"""The OpenAI chat-completions backend and the fallback, against real HTTP servers.

The slow tests run llama-cpp-python's own OpenAI-compatible server on the bundled SmolLM2-135M.
The format and fault cases it cannot be made to produce (tool-call fragments split across chunks,
malformed arguments, 5xx, a reply cut off cleanly, a stream that never ends) come from a small
Starlette app served by uvicorn in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voxgate.backends.base import ChatMessage, LLMEvent, TextDelta, ToolCallRequest, ToolSpec
from voxgate.backends.llm.errors import LLMUnavailable
from voxgate.backends.llm.fallback import FallbackLLM
from voxgate.backends.llm.openai_backend import OpenAIChatLLM
from voxgate.backends.llm.qwen_prompt import VOICE_RULES

WEATHER = ToolSpec(
    "get_weather", "Current weather in a city.", {"type": "object", "properties": {"city": {"type": "string"}}}
)
HELLO = [ChatMessage("system", "You are a helpful assistant."), ChatMessage("user", "Say hello to me.")]


async def collect(stream: AsyncIterator[LLMEvent], limit_s: float = 20.0) -> list[LLMEvent]:
    async with asyncio.timeout(limit_s):
        return [event async for event in stream]


def spoken(events: Sequence[LLMEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


_clients: list[OpenAIChatLLM] = []


def client(**kwargs: Any) -> OpenAIChatLLM:
    llm = OpenAIChatLLM(**kwargs)
    _clients.append(llm)
    return llm


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while _clients:
        await _clients.pop().aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- llama-cpp-python's server


@contextlib.contextmanager
def llama_server() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    from voxgate.backends.llm.embedded_models import resolve_gguf

    port = free_port()
    command = [
        *(sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_gguf("smollm2-135m"))),
        *("--n_threads", "1", "--n_threads_batch", "1", "--n_ctx", "512"),
        *("--host", "127.0.0.1", "--port", str(port), "--verbose", "False"),
    ]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read().decode()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                        break
                assert time.monotonic() < deadline, "llama_cpp.server did not start in 60 s"
                time.sleep(0.2)
            yield proc, url
        finally:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def real_url() -> Iterator[str]:
    with llama_server() as (_, url):
        yield url


def real_llm(url: str, **kwargs: Any) -> OpenAIChatLLM:
    options: dict[str, Any] = {"max_tokens": 24, "temperature": 0.0, "timeout_s": 20.0, "max_retries": 0}
    return client(model="smollm2-135m", base_url=url, **(options | kwargs))


@pytest.mark.slow
async def test_streams_text_from_a_real_server(real_url: str) -> None:
    events = await collect(real_llm(real_url).stream(HELLO, []))
    assert len(events) > 1 and all(isinstance(e, TextDelta) for e in events)
    assert spoken(events).strip()


@pytest.mark.slow
async def test_a_history_with_a_tool_call_and_its_result_is_accepted(real_url: str) -> None:
    history = [
        ChatMessage("system", "You are a helpful assistant."),
        ChatMessage("user", "What is the weather in Paris?"),
        ChatMessage("assistant", "", tool_calls=[ToolCallRequest("call_1", "get_weather", {"city": "Paris"})]),
        ChatMessage("tool", "Sunny, 20 degrees.", tool_call_id="call_1"),
    ]
    events = await collect(real_llm(real_url).stream(history, [WEATHER]))
    assert spoken(events).strip()


@pytest.mark.slow
async def test_a_reply_cut_by_barge_in_frees_the_server_for_the_next_turn(real_url: str) -> None:
    llm = real_llm(real_url, max_tokens=400)
    story = [ChatMessage("user", "Tell me a very long story about a dragon and a knight.")]
    stream = llm.stream(story, [])
    async with asyncio.timeout(10):
        await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    started = time.monotonic()
    assert spoken(await collect(llm.stream(HELLO, []), limit_s=10)).strip()
    assert time.monotonic() - started < 5


@pytest.mark.slow
async def test_a_server_killed_mid_reply_raises_llm_unavailable_promptly() -> None:
    with llama_server() as (proc, url):
        llm = real_llm(url, max_tokens=400)
        story = [ChatMessage("user", "Tell me a very long story about a dragon and a knight.")]
        got: list[LLMEvent] = []
        with pytest.raises(LLMUnavailable, match="mid-reply"):
            async with asyncio.timeout(10):
                async for event in llm.stream(story, []):
                    got.append(event)
                    if len(got) == 1:
                        proc.kill()
                        killed = time.monotonic()
        assert time.monotonic() - killed < 5


async def test_a_refused_connection_raises_within_the_retry_budget() -> None:
    llm = client(model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=2, timeout_s=5)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="Connection error"):
        await collect(llm.stream(HELLO, []), limit_s=10)
    assert time.monotonic() - started < 4  # two retries back off about 0.5 s, then 1 s


@pytest.mark.slow
async def test_fallback_answers_when_the_primary_is_dead(real_url: str, caplog: pytest.LogCaptureFixture) -> None:
    dead = client(model="gone", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    with caplog.at_level(logging.WARNING, "voxgate.llm.fallback"):
        events = await collect(FallbackLLM(dead, real_llm(real_url)).stream(HELLO, []))
    assert spoken(events).strip()
    assert "answering with smollm2-135m" in caplog.text


# ---------------------------------------------------------------- a scripted fake server


def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


def fragment(index: int, *, id: str | None = None, name: str | None = None, args: str | None = None) -> str:
    call: dict[str, Any] = {"index": index, "function": {}}
    if id is not None:
        call |= {"id": id, "type": "function"}
    if name is not None:
        call["function"]["name"] = name
    if args is not None:
        call["function"]["arguments"] = args
    return chunk({"tool_calls": [call]})


TWO_CALLS = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Let me check."}),
    fragment(0, id="call_a", name="get_weather", args=""),
    fragment(0, args='{"ci'),
    fragment(1, id="call_b", name="get_time", args='{"zone":'),
    fragment(0, args='ty": "Par'),
    fragment(1, args=' "Europe/Paris"}'),
    fragment(0, args='is"}'),
    chunk({}, finish="tool_calls"),
    "data: [DONE]\n\n",
]
BAD_ARGUMENTS = [
    fragment(0, id="call_x", name="get_weather", args='{"city": "Par'),
    fragment(1, id="call_y", name="get_time", args='"not an object"'),
    chunk({}, finish="tool_calls"),
    "data: [DONE]\n\n",
]
CUT_OFF = [chunk({"content": "Half a"}), chunk({"content": " sentence"})]  # no finish, no [DONE]
CALL_IN_CONTENT = [  # a server that does not parse its model's calls streams them as text
    chunk({"content": "<tool_"}),
    chunk({"content": 'call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'}),
    chunk({}, finish="stop"),
    "data: [DONE]\n\n",
]


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.stream_closed = threading.Event()
        self.url = ""

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append((dict(request.headers), body))
        scenario = body["model"]
        if scenario == "unavailable":
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503, headers={"retry-after-ms": "10"})
        if scenario == "unauthorized":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        if scenario == "endless":
            return StreamingResponse(self._endless(), media_type="text/event-stream")
        chunks = {
            "two-calls": TWO_CALLS,
            "bad-arguments": BAD_ARGUMENTS,
            "cut-off": CUT_OFF,
            "call-in-content": CALL_IN_CONTENT,
        }[scenario]
        return StreamingResponse(iter(chunks), media_type="text/event-stream")

    async def _endless(self) -> AsyncIterator[str]:
        try:
            while True:
                yield chunk({"content": "blah "})
                await asyncio.sleep(0.05)
        finally:
            self.stream_closed.set()

    def llm(self, scenario: str, **kwargs: Any) -> OpenAIChatLLM:
        return client(model=scenario, base_url=self.url, **kwargs)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    fake = FakeServer()
    app = Starlette(routes=[Route("/v1/chat/completions", fake.completions, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "fake server did not start"
        time.sleep(0.01)
    yield fake
    server.should_exit = True
    thread.join(5)
    sock.close()


async def test_tool_call_fragments_assemble_into_whole_calls(fake: FakeServer) -> None:
    events = await collect(fake.llm("two-calls").stream(HELLO, [WEATHER]))
    assert events == [
        TextDelta("Let me check."),
        ToolCallRequest("call_a", "get_weather", {"city": "Paris"}),
        ToolCallRequest("call_b", "get_time", {"zone": "Europe/Paris"}),
    ]


async def test_a_call_written_as_content_is_a_call_not_speech(fake: FakeServer) -> None:
    events = await collect(fake.llm("call-in-content").stream(HELLO, [WEATHER]))
    assert [(type(e).__name__, getattr(e, "name", None), getattr(e, "arguments", None)) for e in events] == [
        ("ToolCallRequest", "get_weather", {"city": "Oslo"})
    ]


async def test_arguments_that_are_not_a_json_object_become_empty(
    fake: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "voxgate.llm.openai"):
        events = await collect(fake.llm("bad-arguments").stream(HELLO, [WEATHER]))
    assert events == [ToolCallRequest("call_x", "get_weather", {}), ToolCallRequest("call_y", "get_time", {})]
    assert caplog.text.count("not a JSON object") == 2


async def test_the_request_carries_history_tools_key_and_headers(fake: FakeServer) -> None:
    history = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Weather in Paris?"),
        ChatMessage("assistant", "", tool_calls=[ToolCallRequest("call_1", "get_weather", {"city": "Paris"})]),
        ChatMessage("tool", "Sunny.", tool_call_id="call_1"),
        ChatMessage("assistant", "It is sunny."),
    ]
    llm = fake.llm("two-calls", api_key="sk-test", extra_headers={"X-Tenant": "acme"}, temperature=0.2, max_tokens=50)
    fake.requests.clear()
    await collect(llm.stream(history, [WEATHER]))
    headers, body = fake.requests[-1]
    assert headers["authorization"] == "Bearer sk-test" and headers["x-tenant"] == "acme"
    assert body["stream"] is True and body["temperature"] == 0.2 and body["max_tokens"] == 50
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": WEATHER.description, "parameters": WEATHER.parameters},
        }
    ]
    assert body["messages"] == [
        {"role": "system", "content": f"Be brief.\n{VOICE_RULES}"},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny."},
        {"role": "assistant", "content": "It is sunny."},
    ]


async def test_no_tools_sends_no_tools_field(fake: FakeServer) -> None:
    fake.requests.clear()
    await collect(fake.llm("two-calls").stream(HELLO, []))
    assert "tools" not in fake.requests[-1][1]


async def test_5xx_is_retried_then_raised(fake: FakeServer) -> None:
    fake.requests.clear()
    with pytest.raises(LLMUnavailable, match="HTTP 503"):
        await collect(fake.llm("unavailable", max_retries=2).stream(HELLO, []))
    assert len(fake.requests) == 3


async def test_a_bad_key_is_raised_without_retrying(fake: FakeServer) -> None:
    fake.requests.clear()
    with pytest.raises(LLMUnavailable, match="HTTP 401"):
        await collect(fake.llm("unauthorized", max_retries=2).stream(HELLO, []))
    assert len(fake.requests) == 1


async def test_a_reply_cut_off_without_a_finish_reason_raises(fake: FakeServer) -> None:
    got: list[LLMEvent] = []
    with pytest.raises(LLMUnavailable, match="without a finish reason"):
        async for event in fake.llm("cut-off").stream(HELLO, []):
            got.append(event)
    assert spoken(got) == "Half a sentence"


async def test_cancelling_the_consumer_closes_the_http_stream(fake: FakeServer) -> None:
    fake.stream_closed.clear()
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in fake.llm("endless").stream(HELLO, []):
            first.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake.stream_closed.wait, 5), "the server kept streaming"


# ---------------------------------------------------------------- the fallback's rules


class Scripted:
    def __init__(self, name: str, texts: Sequence[str], error: Exception | None = None) -> None:
        self.name, self.texts, self.error, self.calls = name, texts, error, 0

    async def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> AsyncIterator[LLMEvent]:
        self.calls += 1
        for text in self.texts:
            yield TextDelta(text)
        if self.error is not None:
            raise self.error


async def test_fallback_is_not_used_when_the_primary_answers() -> None:
    backup = Scripted("backup", ["no"])
    events = await collect(FallbackLLM(Scripted("main", ["Hi", "!"]), backup).stream(HELLO, []))
    assert spoken(events) == "Hi!" and backup.calls == 0


@pytest.mark.parametrize("error", [LLMUnavailable("down"), RuntimeError("boom")])
async def test_fallback_answers_when_the_primary_fails_before_any_text(error: Exception) -> None:
    events = await collect(FallbackLLM(Scripted("main", [], error), Scripted("backup", ["Hello"])).stream(HELLO, []))
    assert spoken(events) == "Hello"


@pytest.mark.parametrize("error", [LLMUnavailable("cut"), RuntimeError("boom")])
async def test_a_primary_failing_mid_reply_is_raised_not_replaced(error: Exception) -> None:
    backup = Scripted("backup", ["Hello"])
    got: list[LLMEvent] = []
    with pytest.raises(LLMUnavailable):
        async for event in FallbackLLM(Scripted("main", ["It is"], error), backup).stream(HELLO, []):
            got.append(event)
    assert spoken(got) == "It is" and backup.calls == 0


def test_the_registry_builds_the_remote_model_from_settings() -> None:
    from voxgate.backends.registry import Models
    from voxgate.config import Settings

    settings = Settings(llm_backend="openai", llm_model="llama3.2", llm_base_url="http://localhost:11434/v1")
    llm = Models(settings).llm
    assert isinstance(llm, OpenAIChatLLM) and llm.name == "llama3.2"
    _clients.append(llm)
