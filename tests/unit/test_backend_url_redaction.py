"""M6: backend URLs with credentials never reach a client, a log line or the public voice catalog."""

from __future__ import annotations

import logging
import socket

import pytest
from fastapi.testclient import TestClient

from voxgate.app import create_app
from voxgate.backends.base import ChatMessage
from voxgate.backends.llm.errors import LLMUnavailable
from voxgate.backends.llm.openai_backend import OpenAIChatLLM
from voxgate.backends.tts.openai_tts import OpenAISpeechTTS
from voxgate.config import Settings
from voxgate.redaction import mask_url, redact

SECRET = "s3cr3t-pa55"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pw@llm.internal:8000/v1", "http://user:***@llm.internal:8000/v1"),
        ("https://sk-token@api.example.com/v1", "https://***@api.example.com/v1"),
        ("http://u:p@[::1]:9/v1", "http://u:***@[::1]:9/v1"),
        ("http://llm.internal:8000/v1", "http://llm.internal:8000/v1"),
        ("not a url", "not a url"),
    ],
)
def test_m6_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_m6_redact_masks_every_url_in_a_text() -> None:
    text = f"failed at http://a:{SECRET}@h1/v1 then wss://{SECRET}@h2/x; see http://h3/ok"
    assert redact(text) == "failed at http://a:***@h1/v1 then wss://***@h2/x; see http://h3/ok"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_m6_llm_errors_name_the_model_not_the_url(caplog: pytest.LogCaptureFixture) -> None:
    llm = OpenAIChatLLM(model="m", base_url=f"http://user:{SECRET}@127.0.0.1:{_closed_port()}/v1", max_retries=0)
    with caplog.at_level(logging.DEBUG), pytest.raises(LLMUnavailable) as failed:
        async for _ in llm.stream([ChatMessage(role="user", content="hi")], []):
            pass
    await llm.aclose()
    assert "127.0.0.1" not in str(failed.value) and SECRET not in str(failed.value)
    assert str(failed.value).startswith("language model m failed")
    assert failed.value.__cause__ is None  # a traceback logged further up cannot quote the client's URL
    assert SECRET not in caplog.text and "user:***@127.0.0.1" in caplog.text


def test_m6_the_public_voice_catalog_shows_no_backend_url() -> None:
    tts = OpenAISpeechTTS(model="tts-1", voices=["nova"], base_url=f"https://user:{SECRET}@tts.internal/v1")
    assert all("tts.internal" not in v.description and SECRET not in v.description for v in tts.voices())
    assert SECRET not in tts.base_url and "tts.internal" in tts.base_url  # for doctor and logs: masked
    settings = Settings(
        preload=False,
        tts_backend="openai",
        tts_base_url=f"https://user:{SECRET}@tts.internal/v1",
        tts_remote_voices=["nova"],  # type: ignore[arg-type]
    )
    with TestClient(create_app(settings)) as client:
        body = client.get("/v1/voices").text
    assert SECRET not in body and "tts.internal" not in body
