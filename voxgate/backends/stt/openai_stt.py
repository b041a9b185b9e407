"""Speech to text over the OpenAI transcriptions API: OpenAI itself, speaches, another Voxgate ...

Each call uploads the utterance as a 16 kHz 16-bit mono WAV to `audio.transcriptions.create` and
returns the text. Keyterms go in as the `prompt` (Whisper-style servers read it as vocabulary to
expect). The client's own retries cover transient failures; a call that still fails raises, and the
session reports it like any other STT failure.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Sequence

import httpx2
import numpy as np
import openai

from voxgate.audio.codecs import float_to_int16
from voxgate.backends.base import ANALYSIS_RATE, Audio, STTCapabilities
from voxgate.backends.openai_client import client_options

#: Shorter than this (0.1 s) is never speech; the API is not called for it.
MIN_SAMPLES = 1_600


def to_wav(audio: Audio, rate: int = ANALYSIS_RATE) -> bytes:
    """Float audio in [-1, 1] as a 16-bit mono WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(float_to_int16(np.asarray(audio, dtype=np.float32)).astype("<i2").tobytes())
    return out.getvalue()


class OpenAITranscriptionSTT:
    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        http_client: httpx2.Client | None = None,
        languages: tuple[str, ...] = ("en",),
    ) -> None:
        self.name = model
        self._model = model
        self.capabilities = STTCapabilities(keyterms=True, languages=languages)
        self._client = openai.OpenAI(
            **client_options(base_url=base_url, api_key=api_key, timeout_s=timeout_s, max_retries=max_retries),
            http_client=http_client,
        )

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    def transcribe(
        self, audio: Audio, *, language: str | None, keyterms: Sequence[str] = (), quick: bool = False
    ) -> str:
        if len(audio) < MIN_SAMPLES:
            return ""
        result = self._client.audio.transcriptions.create(
            model=self._model,
            file=("audio.wav", to_wav(audio), "audio/wav"),
            language=language or openai.omit,
            prompt=", ".join(keyterms) if keyterms else openai.omit,
            response_format="json",
        )
        return result.text.strip()

    def close(self) -> None:
        self._client.close()
