"""Text to speech over the OpenAI speech API: OpenAI itself, speaches, another Voxgate ...

`audio.speech` is asked for `pcm`, which the API defines as raw 16-bit little-endian mono at
24 kHz; the body is read as it streams in and returned as one clause of float audio. Voice names are
passed through unchanged: `voices()` offers the configured names, so they join the catalog and a
session picks one like any local voice. The remote API has no language parameter; the voice decides.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx2
import numpy as np
import openai

from voxgate.audio.codecs import int16_to_float
from voxgate.backends.base import Audio, VoiceInfo
from voxgate.backends.openai_client import client_options
from voxgate.redaction import mask_url

#: The rate of the API's `pcm` format.
PCM_RATE = 24_000


class OpenAISpeechTTS:
    sample_rate = PCM_RATE

    def __init__(
        self,
        *,
        model: str,
        voices: Sequence[str],
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        http_client: httpx2.Client | None = None,
    ) -> None:
        if not voices:
            raise ValueError("a remote TTS backend needs at least one voice name (VOXGATE_TTS_REMOTE_VOICES)")
        self.name = model
        self._model = model
        self._client = openai.OpenAI(
            **client_options(base_url=base_url, api_key=api_key, timeout_s=timeout_s, max_retries=max_retries),
            http_client=http_client,
        )
        # The catalog is public (GET /v1/voices needs no key): a description names the model, never the server.
        self._voices = [
            VoiceInfo(
                id=v, engine="openai", language="en-US", gender="neutral", description=f"remote voice {v} of {model}"
            )
            for v in voices
        ]

    @property
    def base_url(self) -> str:
        """Where the voices are, credentials masked: for logs and `voxgate doctor`, not for clients."""
        return mask_url(str(self._client.base_url))

    def voices(self) -> Sequence[VoiceInfo]:
        return self._voices

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        pcm = bytearray()
        with self._client.audio.speech.with_streaming_response.create(
            model=self._model, input=text, voice=voice, response_format="pcm"
        ) as response:
            for chunk in response.iter_bytes():
                pcm += chunk
        usable = len(pcm) - len(pcm) % 2
        return int16_to_float(np.frombuffer(bytes(pcm[:usable]), dtype="<i2"))

    def close(self) -> None:
        self._client.close()
