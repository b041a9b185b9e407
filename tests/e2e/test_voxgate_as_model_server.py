"""Voxgate's models over the OpenAI HTTP API, driven by the official `openai` client; then a second
Voxgate that uses the first one for its STT, TTS and LLM, and holds a spoken conversation."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from tests.e2e.conftest import API_KEY, TOKENS_ONLY_KEY, Server, start_server, stop_server, synthesize
from tests.e2e.wsclient import Client, read_wav, silence, to_rate

pytestmark = pytest.mark.slow

QUESTION = "What is the capital city of France?"
SENTENCE = "The weather today is sunny and warm, with a light breeze coming in from the west."
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def client_for(server: Server, key: str = API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.http + "/v1", api_key=key, timeout=300, max_retries=0)


def test_transcription_of_a_spoken_question(server: Server, speech_dir) -> None:
    wav = synthesize(speech_dir, QUESTION)
    with wav.open("rb") as f:
        result = client_for(server).audio.transcriptions.create(model="whisper-1", file=f, language="en")
    assert "france" in words(result.text), result.text
    text = client_for(server).audio.transcriptions.create(
        model="whisper-1", file=("q.wav", wav.read_bytes(), "audio/wav"), response_format="text"
    )
    assert "france" in words(str(text)), text


def test_not_a_wav_is_a_400_in_openais_shape(server: Server) -> None:
    response = httpx.post(
        server.http + "/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        files={"file": ("x.mp3", b"ID3 not really audio", "audio/mpeg")},
        data={"model": "whisper-1"},
        timeout=60,
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) >= {"message", "type", "code", "param"}


def test_speech_is_a_streamed_wav_of_plausible_length(server: Server) -> None:
    response = client_for(server).audio.speech.create(model="tts-1", voice="joe", input=SENTENCE, response_format="wav")
    data = response.content
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    channels, rate, bits = struct.unpack("<H", data[22:24])[0], struct.unpack("<I", data[24:28])[0], data[34]
    assert (channels, rate, bits) == (1, 24_000, 16)
    assert data[36:40] == b"data"
    samples = np.frombuffer(data[44:], dtype="<i2")
    seconds = len(samples) / 24_000
    assert 2.0 < seconds < 12.0, seconds
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 300  # speech, not silence


def test_speech_as_raw_pcm_in_an_alias_voice(server: Server) -> None:
    with client_for(server).audio.speech.with_streaming_response.create(
        model="tts-1", voice="james", input="Hello there. How are you today?", response_format="pcm"
    ) as response:
        assert response.headers["content-type"].startswith("audio/pcm")
        chunks = list(response.iter_bytes())
    seconds = sum(len(c) for c in chunks) / 2 / 24_000
    assert 0.8 < seconds < 6.0, seconds


def test_unknown_voice_is_a_400(server: Server) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(server).audio.speech.create(model="tts-1", voice="no-such-voice", input="Hello.")
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict) and "unknown voice" in body["message"] and body["param"] == "voice"


def test_chat_completion(server: Server) -> None:
    completion = client_for(server).chat.completions.create(
        model="anything",
        messages=[
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": QUESTION},
        ],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert "paris" in words(choice.message.content or ""), choice.message


def test_chat_completion_streamed(server: Server) -> None:
    stream = client_for(server).chat.completions.create(
        model="anything", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    text, finish = [], []
    for chunk in stream:
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert finish == ["stop"]
    assert len([t for t in text if t]) > 1  # streamed in pieces
    assert "paris" in words("".join(text)), text


def test_chat_completion_streams_tool_calls(server: Server) -> None:
    stream = client_for(server).chat.completions.create(
        model="anything",
        messages=[
            {"role": "system", "content": "You are a voice assistant. Use the tools when they help."},
            {"role": "user", "content": "What's the weather like in Paris right now?"},
        ],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls: list[ChoiceDeltaToolCall] = []
    finish: list[str] = []
    for chunk in stream:
        for choice in chunk.choices:
            calls.extend(choice.delta.tool_calls or ())
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert finish == ["tool_calls"], (finish, calls)
    assert calls[0].function and calls[0].function.name == "get_weather" and calls[0].id
    assert "paris" in (calls[0].function.arguments or "").lower()


@pytest.mark.asyncio(loop_scope="session")
async def test_the_remote_llm_backend_gets_real_tool_calls_from_a_real_server(server: Server) -> None:
    """Voxgate's OpenAI-compatible LLM backend against a server that really calls tools (this Voxgate)."""
    from voxgate.backends.base import ChatMessage, TextDelta, ToolCallRequest, ToolSpec
    from voxgate.backends.llm.openai_backend import OpenAIChatLLM

    llm = OpenAIChatLLM(model="qwen2.5-coder-1.5b", base_url=f"{server.http}/v1", api_key=API_KEY, temperature=0)
    tool = ToolSpec(WEATHER_TOOL["function"]["name"], WEATHER_TOOL["function"]["description"],
                    WEATHER_TOOL["function"]["parameters"])  # fmt: skip
    history = [
        ChatMessage(role="system", content="You are a voice assistant. Use the tools when they help."),
        ChatMessage(role="user", content="What's the weather like in Paris right now?"),
    ]
    events = [event async for event in llm.stream(history, [tool])]
    calls = [e for e in events if isinstance(e, ToolCallRequest)]
    assert calls and calls[0].name == "get_weather" and "paris" in str(calls[0].arguments).lower(), events
    history += [
        ChatMessage(role="assistant", tool_calls=calls),
        ChatMessage(role="tool", content='{"condition": "sunny", "temperature_c": 22}', tool_call_id=calls[0].call_id),
    ]
    answer = "".join([e.text async for e in llm.stream(history, [tool]) if isinstance(e, TextDelta)])
    assert {"sunny", "22"} & set(re.findall(r"[a-z0-9]+", answer.lower())), answer


def test_models_and_keys(server: Server) -> None:
    models = client_for(server).models.list()
    assert "voxgate-tts" in [m.id for m in models.data]
    with pytest.raises(openai.AuthenticationError):
        client_for(server, "wrong-key").chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    response = httpx.post(server.http + "/v1/audio/speech", json={"input": "Hi.", "voice": "joe"}, timeout=30)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.PermissionDeniedError):  # a tokens-only key may not use the models
        client_for(server, TOKENS_ONLY_KEY).models.list()


def test_doctor_checks_every_remote_backend(server: Server) -> None:
    first = server.http + "/v1"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VOXGATE_SMART_TURN": "false",
        **{f"VOXGATE_{kind}_BACKEND": "openai" for kind in ("STT", "TTS", "LLM")},
        **{f"VOXGATE_{kind}_BASE_URL": first for kind in ("STT", "TTS", "LLM")},
        **{f"VOXGATE_{kind}_API_KEY": API_KEY for kind in ("STT", "TTS", "LLM")},
        "VOXGATE_TTS_REMOTE_VOICES": "james,ivy",
    }
    code = "import argparse, sys; from voxgate.admin import doctor_main; sys.exit(doctor_main(argparse.Namespace()))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    remote = [line for line in lines if f"remote at {first}" in line]
    assert len(remote) == 3 and all(line.startswith("ok") for line in remote), lines
    assert any("OpenAISpeechTTS" in line and "2 voices" in line for line in remote), lines
    assert API_KEY not in done.stdout


# ---------------------------------------------------------------- one Voxgate uses another


@pytest.fixture(scope="module")
def remote_client(server: Server) -> Iterator[Server]:
    first = server.http + "/v1"
    env = {
        "VOXGATE_API_KEYS": API_KEY,
        "VOXGATE_LOG_LEVEL": "debug",
        "VOXGATE_STT_BACKEND": "openai",
        "VOXGATE_STT_BASE_URL": first,
        "VOXGATE_STT_API_KEY": API_KEY,
        "VOXGATE_TTS_BACKEND": "openai",
        "VOXGATE_TTS_BASE_URL": first,
        "VOXGATE_TTS_API_KEY": API_KEY,
        "VOXGATE_TTS_REMOTE_VOICES": "james",
        "VOXGATE_DEFAULT_VOICE": "james",
        "VOXGATE_LLM_BACKEND": "openai",
        "VOXGATE_LLM_BASE_URL": first,
        "VOXGATE_LLM_API_KEY": API_KEY,
        "VOXGATE_LLM_MODEL": "voxgate-llm",
        "VOXGATE_LLM_TEMPERATURE": "0",
        "VOXGATE_LLM_SEED": "7",
        "VOXGATE_LLM_TIMEOUT_S": "120",
        "VOXGATE_LLM_FIRST_TOKEN_TIMEOUT_S": "120",
        "VOXGATE_STT_TIMEOUT_S": "120",
    }
    srv = start_server("remote-client", env)
    yield srv
    stop_server(srv)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_voxgate_on_another_voxgates_models(remote_client: Server, speech_dir) -> None:
    voices = httpx.get(remote_client.http + "/v1/voices", timeout=30).json()
    james = next(v for v in voices["voices"] if v["id"] == "james")
    assert james["engine"] == "openai" and voices["default"] == "james"

    client = await Client.connect(remote_client.url, API_KEY)
    await client.configure(system_prompt="You are a helpful voice assistant. Answer in one short sentence.")
    samples, rate = read_wav(synthesize(speech_dir, QUESTION))
    await client.send_audio(to_rate(samples, rate, 24_000), speed=2.0)
    await client.send_audio(silence(2.0), speed=2.0)
    user = await client.next("transcript.user", timeout=180)
    assert "france" in words(user.data["text"]), user.data
    await client.next("reply.done", timeout=240)
    agent = next(e for e in client.events if e.type == "transcript.agent")
    assert "paris" in words(agent.data["text"]), agent.data
    audio = np.frombuffer(client.reply_audio(), dtype="<i2")
    assert len(audio) / 24_000 > 0.5
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 300
    await client.close()
