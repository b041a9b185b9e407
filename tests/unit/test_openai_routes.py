"""The OpenAI-compatible routes with scripted models, through the official client; the remote STT and
TTS backends against those routes; `voxgate config` hiding secrets."""

from __future__ import annotations

import argparse
import io
import json
import wave
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from voxgate.admin import MASK, config_main, effective_config
from voxgate.app import create_app
from voxgate.backends.base import (
    Audio,
    ChatMessage,
    LLMEvent,
    STTCapabilities,
    TextDelta,
    ToolCallRequest,
    ToolSpec,
    VoiceInfo,
)
from voxgate.backends.registry import Models
from voxgate.backends.stt.openai_stt import OpenAITranscriptionSTT, to_wav
from voxgate.backends.tts.openai_tts import OpenAISpeechTTS
from voxgate.backends.voices import VoiceCatalog
from voxgate.config import Settings
from voxgate.server.openai_routes import OpenAIError, decode_audio

KEY = "unit-key"


class ScriptedSTT:
    name = "scripted-stt"
    capabilities = STTCapabilities(keyterms=True)

    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None, list[str]]] = []

    def transcribe(
        self, audio: Audio, *, language: str | None, keyterms: Sequence[str] = (), quick: bool = False
    ) -> str:
        self.calls.append((len(audio), language, list(keyterms)))
        return "what is the capital city of france"


class ToneTTS:
    """One second of a 440 Hz tone per clause, at 16 kHz (so the route must resample to 24 kHz)."""

    sample_rate = 16_000

    def __init__(self) -> None:
        self.clauses: list[str] = []

    def voices(self) -> Sequence[VoiceInfo]:
        return [VoiceInfo("tone", "test", "en-US", "neutral", "a tone")]

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        self.clauses.append(text)
        t = np.arange(16_000) / 16_000
        return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


class ScriptedLLM:
    name = "scripted-llm"

    def __init__(self) -> None:
        self.seen: list[tuple[list[ChatMessage], list[ToolSpec]]] = []

    async def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> AsyncIterator[LLMEvent]:
        self.seen.append((list(messages), list(tools)))
        if tools:
            yield TextDelta("Let me check.")
            yield ToolCallRequest("call_1", tools[0].name, {"city": "Paris"})
            return
        for piece in ("The capital ", "of France ", "is Paris."):
            yield TextDelta(piece)


@pytest.fixture
def app() -> Iterator[tuple[TestClient, Models]]:
    settings = Settings(preload=False, api_keys=[SecretStr(KEY), SecretStr("tok-only:tokens")], default_voice="tone")
    models = Models(
        settings,
        stt={settings.stt_model: ScriptedSTT()},
        llm=ScriptedLLM(),
        voices=VoiceCatalog([ToneTTS()], default_voice="tone"),
    )
    with TestClient(create_app(settings, models)) as client:
        yield client, models


def official(client: TestClient, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=client, max_retries=0)


def tone_wav(rate: int = 24_000, seconds: float = 1.0, channels: int = 1) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 300 * t) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(samples, channels).tobytes())
    return out.getvalue()


def test_transcription_json_and_text(app: tuple[TestClient, Models]) -> None:
    client, models = app
    stt = models.stt(models.settings.stt_model)
    assert isinstance(stt, ScriptedSTT)
    result = official(client).audio.transcriptions.create(
        model="whisper-1", file=("a.wav", tone_wav(channels=2), "audio/wav"), language="fr", prompt="Paris"
    )
    assert result.text == "what is the capital city of france"
    assert stt.calls[-1] == (16_000, "fr", ["Paris"])  # stereo 24 kHz -> mono 16 kHz
    text = official(client).audio.transcriptions.create(
        model="whisper-1", file=("a.wav", tone_wav(), "audio/wav"), response_format="text"
    )
    assert str(text).strip() == "what is the capital city of france"
    assert stt.calls[-1][1] == "en"  # the server's default language


def test_transcription_rejects_what_it_cannot_read(app: tuple[TestClient, Models]) -> None:
    client, _ = app
    headers = {"Authorization": f"Bearer {KEY}"}
    bad = client.post("/v1/audio/transcriptions", headers=headers, files={"file": ("a.mp3", b"ID3xx", "audio/mpeg")})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "file"
    missing = client.post("/v1/audio/transcriptions", headers=headers, data={"model": "m"}, files={"x": ("a", b"1")})
    assert missing.status_code == 400 and "file" in missing.json()["error"]["message"]


def test_remote_stt_backend_round_trip(app: tuple[TestClient, Models]) -> None:
    client, models = app
    remote = OpenAITranscriptionSTT(model="whisper-1", base_url="http://testserver/v1", api_key=KEY, http_client=client)
    audio = np.zeros(8_000, dtype=np.float32)
    assert remote.transcribe(audio, language="en", keyterms=["Voxgate", "Paris"]) == (
        "what is the capital city of france"
    )
    assert models.stt(models.settings.stt_model).calls[-1] == (8_000, "en", ["Voxgate, Paris"])  # type: ignore[attr-defined]
    assert remote.transcribe(audio[:100], language="en") == ""  # too short: no call


def test_speech_wav_is_streamed_clause_by_clause(app: tuple[TestClient, Models]) -> None:
    client, models = app
    data = (
        official(client)
        .audio.speech.create(
            model="tts-1", voice="tone", input="Hello there. This is the second sentence, spoken later.", speed=1.5
        )
        .content
    )
    assert data[:4] == b"RIFF" and data[36:40] == b"data" and data[40:44] == b"\xff\xff\xff\xff"
    with wave.open(io.BytesIO(data[:44] + b"")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24_000)
    assert len(data) - 44 == 2 * 24_000 * 2  # two clauses of one second each, at 24 kHz
    tts = models.voices.resolve("tone").backend
    assert isinstance(tts, ToneTTS) and tts.clauses == ["Hello there.", "This is the second sentence, spoken later."]


def test_speech_errors(app: tuple[TestClient, Models]) -> None:
    client, _ = app
    with pytest.raises(openai.BadRequestError) as caught:
        official(client).audio.speech.create(model="tts-1", voice="nobody", input="Hello.")
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "voice"
    with pytest.raises(openai.BadRequestError):
        official(client).audio.speech.create(model="tts-1", voice="tone", input="Hello.", response_format="mp3")
    with pytest.raises(openai.BadRequestError) as caught:  # OpenAI's own 4096-character limit (H7)
        official(client).audio.speech.create(model="tts-1", voice="tone", input="word " * 1000)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "input"


def test_remote_tts_backend_round_trip(app: tuple[TestClient, Models]) -> None:
    client, _ = app
    remote = OpenAISpeechTTS(
        model="tts-1",
        voices=["tone"],
        base_url="http://testserver/v1",
        api_key=KEY,
        http_client=client,
    )
    assert [v.id for v in remote.voices()] == ["tone"] and remote.sample_rate == 24_000
    audio = remote.synthesize("Hello there.", voice="tone")
    assert audio.dtype == np.float32 and len(audio) == 24_000
    assert 0.3 < float(np.max(np.abs(audio))) < 0.6


def test_remote_voices_join_the_catalog() -> None:
    settings = Settings(
        preload=False,
        tts_backend="openai",
        tts_remote_voices="nova,joe",  # type: ignore[arg-type]  # as the environment gives it tts_base_url="http://127.0.0.1:9/v1"
    )
    catalog = Models(settings).voices
    assert catalog.resolve("nova").backend.sample_rate == 24_000
    assert isinstance(catalog.resolve("joe").backend, OpenAISpeechTTS)  # the configured remote name wins
    assert not isinstance(catalog.resolve("espeak-en").backend, OpenAISpeechTTS)


def test_chat_completion(app: tuple[TestClient, Models]) -> None:
    client, models = app
    completion = official(client).chat.completions.create(
        model="m",
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
        ],
    )
    assert completion.choices[0].message.content == "The capital of France is Paris."
    assert completion.choices[0].finish_reason == "stop" and completion.model == "m"
    messages, tools = models.llm.seen[-1]  # type: ignore[attr-defined]
    assert [(m.role, m.content) for m in messages] == [("system", "Be brief."), ("user", "Capital of France?")]
    assert tools == []


WEATHER: Any = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather.", "parameters": {"type": "object"}},
}


def test_chat_completion_streamed_with_tool_calls(app: tuple[TestClient, Models]) -> None:
    client, models = app
    history: Any = [
        {"role": "user", "content": "Weather in Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c0", "content": "sunny"},
        {"role": "user", "content": "And Paris?"},
    ]
    chunks = list(official(client).chat.completions.create(model="m", messages=history, tools=[WEATHER], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    calls = [t for c in chunks for t in c.choices[0].delta.tool_calls or ()]
    assert text == "Let me check."
    assert [(t.index, t.id, t.function and t.function.name) for t in calls] == [(0, "call_1", "get_weather")]
    assert calls[0].function and json.loads(calls[0].function.arguments or "") == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    messages, tools = models.llm.seen[-1]  # type: ignore[attr-defined]
    assert messages[1].tool_calls == [ToolCallRequest("c0", "get_weather", {"city": "Rome"})]
    assert messages[2].tool_call_id == "c0" and [t.name for t in tools] == ["get_weather"]
    non_stream = official(client).chat.completions.create(model="m", messages=history, tools=[WEATHER])
    assert non_stream.choices[0].finish_reason == "tool_calls"
    assert non_stream.choices[0].message.tool_calls and non_stream.choices[0].message.tool_calls[0].id == "call_1"


def test_keys_and_models(app: tuple[TestClient, Models]) -> None:
    client, _ = app
    with pytest.raises(openai.AuthenticationError):
        official(client, "wrong").models.list()
    with pytest.raises(openai.PermissionDeniedError):
        official(client, "tok-only").models.list()
    assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 401
    ids = [m.id for m in official(client).models.list().data]
    assert ids == ["qwen2.5-coder-1.5b", "base", "voxgate-tts"]


def test_open_server_needs_no_key() -> None:
    models = Models(Settings(preload=False), llm=ScriptedLLM())
    with TestClient(create_app(models.settings, models)) as client:
        response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]


def test_uploads_in_any_libsndfile_format_decode_to_mono_16k_and_garbage_is_a_400() -> None:
    import io

    import soundfile

    stereo = np.stack([np.linspace(-0.5, 0.5, 48_000), np.zeros(48_000)], axis=1).astype(np.float32)
    flac = io.BytesIO()
    soundfile.write(flac, stereo, 48_000, format="FLAC")
    audio = decode_audio(flac.getvalue())
    assert audio.dtype == np.float32 and abs(len(audio) - 16_000) <= 16
    with pytest.raises(OpenAIError) as err:
        decode_audio(b"definitely not audio")
    assert err.value.status == 400
    assert to_wav(np.zeros(10, dtype=np.float32))[:4] == b"RIFF"


# ---------------------------------------------------------------- voxgate config


SECRETS = {
    "VOXGATE_API_KEYS": "sekrit-one,sekrit-two:tokens",
    "VOXGATE_LLM_API_KEY": "sekrit-llm",
    "VOXGATE_STT_API_KEY": "sekrit-stt",
    "VOXGATE_TTS_API_KEY": "sekrit-tts",
    "VOXGATE_TWILIO_AUTH_TOKEN": "sekrit-twilio",
    "VOXGATE_LLM_BASE_URL": "http://user:sekrit-pw@llm.example:8080/v1",
    "VOXGATE_LLM_EXTRA_HEADERS": '{"Authorization": "Bearer sekrit-h", "X-Tenant": "acme"}',
    "VOXGATE_TTS_REMOTE_VOICES": "nova, alloy",
}


def test_config_masks_every_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    assert config_main(argparse.Namespace()) == 0
    out = capsys.readouterr().out
    assert "sekrit" not in out
    assert "api_keys = ***,***    [VOXGATE_API_KEYS, set]" in out
    assert "llm_base_url = http://user:***@llm.example:8080/v1" in out
    assert '"X-Tenant": "acme"' in out and f'"Authorization": "{MASK}"' in out
    assert "tts_remote_voices = nova,alloy" in out
    assert "port = 8000    [VOXGATE_PORT, default]" in out
    assert config_main(argparse.Namespace(json=True)) == 0
    rows = json.loads(capsys.readouterr().out)
    assert "sekrit" not in json.dumps(rows)


def test_config_lists_every_setting_with_its_description() -> None:
    rows = {r["name"]: r for r in effective_config(Settings())}
    assert set(rows) == set(Settings.model_fields)
    assert rows["stt_backend"]["value"] == "embedded" and rows["stt_backend"]["description"]
    assert rows["llm_api_key"]["value"] is None  # unset secrets show as unset, not as ***
