"""Speech to text over the OpenAI transcriptions API: OpenAI itself, speaches, another Voxgate ...

Each call uploads the utterance as a 16 kHz 16-bit mono WAV to `audio.transcriptions.create` and
returns the text. The session's prompt and its keyterms go in as the `prompt` (Whisper-style servers
read it as context and vocabulary to expect): the prompt first, then the keyterms, so that a server
that keeps only the end of a long prompt (Whisper keeps its last 224 tokens) keeps every keyterm.
One language asked for is sent as `language`; one the server refuses (a 400) is dropped and the call
made again, for the server to detect. Several are not sent (the API takes one): the server detects.
`decoding` has no counterpart in the API and is ignored. The client's own retries cover transient
failures; a call that still fails raises, and the session reports it like any other STT failure.
"""

from __future__ import annotations

import io
import logging
import wave
from collections.abc import Sequence

import httpx2
import numpy as np
import openai

from voxgate.audio.codecs import float_to_int16
from voxgate.backends.base import ANALYSIS_RATE, Audio, STTCapabilities, STTDecoding
from voxgate.backends.openai_client import client_options
from voxgate.redaction import mask_url

log = logging.getLogger("voxgate.stt.openai")

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


def request_prompt(prompt: str | None, keyterms: Sequence[str]) -> str:
    """The API's `prompt`: the session's prompt, then its keyterms (the end is what a server keeps)."""
    parts = [prompt.strip()] if prompt and prompt.strip() else []
    if keyterms:
        parts.append(", ".join(keyterms))
    return " ".join(parts)


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
        """Where the recognizer is, credentials masked: for logs and `voxgate doctor`, not for clients."""
        return mask_url(str(self._client.base_url))

    def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None,
        keyterms: Sequence[str] = (),
        quick: bool = False,
        languages: Sequence[str] = (),
        prompt: str | None = None,
        decoding: STTDecoding | None = None,
    ) -> str:
        if len(audio) < MIN_SAMPLES:
            return ""
        if language is None and len(languages) == 1:
            language = languages[0]
        wav, context = to_wav(audio), request_prompt(prompt, keyterms)

        def create(language: str | None) -> str:
            result = self._client.audio.transcriptions.create(
                model=self._model,
                file=("audio.wav", wav, "audio/wav"),
                language=language or openai.omit,
                prompt=context or openai.omit,
                response_format="json",
            )
            return result.text.strip()

        try:
            return create(language)
        except openai.BadRequestError:
            if not language:
                raise
            log.info("the STT server refused language %r: asking it to detect", language)
            return create(None)

    def close(self) -> None:
        self._client.close()
