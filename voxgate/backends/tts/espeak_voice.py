"""espeak-ng as a subprocess: robotic, but speaks ~100 languages (the only French/German/Italian voice)."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from collections.abc import Sequence

import numpy as np

from voxgate.backends.base import Audio, VoiceInfo

_LANGS = {"en": "en-us", "es": "es", "fr": "fr-fr", "de": "de", "it": "it", "pt": "pt-br"}
VOICES = tuple(
    VoiceInfo(f"espeak-{code}", "espeak", tag, "neutral", f"espeak-ng {tag} (robotic fallback)", (code,))
    for code, tag in _LANGS.items()
)


class EspeakTTS:
    sample_rate = 22_050

    def __init__(self, binary: str = "espeak-ng") -> None:
        self._binary = shutil.which(binary) or ""

    def voices(self) -> Sequence[VoiceInfo]:
        return VOICES if self._binary else ()

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        if not self._binary:
            raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
        code = voice.removeprefix("espeak-") if voice.startswith("espeak-") else language
        result = subprocess.run(
            [self._binary, "-v", _LANGS.get(code, code), "--stdout", text],
            capture_output=True,
            check=True,
            timeout=30,
        )
        with wave.open(io.BytesIO(result.stdout)) as w:
            self.sample_rate = w.getframerate()
            raw = w.readframes(w.getnframes())
        return (np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)
