"""hibari: a 6 M-parameter int8 ONNX voice distilled from Kokoro `af_heart` (US English female, 24 kHz).

It is some 50 times faster than Kokoro on these cores (a short clause in ~0.02 s) and needs neither
espeak-ng nor the GPL phonemizer: it has its own G2P (misaki lexicons, an out-of-vocabulary net).

Network review of hibari-tts 0.2.1 (pinned by hash in requirements/hashed.txt): the only network
access is `hibari.voices.download()`, reached through `voice_path()` for voices other than the bundled
`heart`. This backend never calls it: it hands Hibari the bundled model's path itself and checks that
the file is inside the package, so nothing can download at run time.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.backends.base import Audio, VoiceInfo
from voxgate.models.assets import ModelAssetError, package_file

SAMPLE_RATE = 24_000

VOICE = VoiceInfo(
    id="hibari-heart",
    engine="hibari",
    language="en-US",
    gender="female",
    description="hibari heart: a tiny fast voice distilled from Kokoro af_heart (US English female)",
    languages=("en",),
)


def available() -> bool:
    return importlib.util.find_spec("hibari") is not None


def model_path() -> Path:
    """The bundled `heart` model: the only hibari voice that is offline."""
    return package_file("hibari", "assets/hibari.onnx")


class HibariTTS:
    """The bundled hibari `heart` voice; loads on first use (or `load()`), once, under a lock."""

    engine = "hibari"
    sample_rate = SAMPLE_RATE

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._tts: Any = None
        self._load_lock = threading.Lock()
        self._synth_lock = threading.Lock()

    def voices(self) -> Sequence[VoiceInfo]:
        return (VOICE,) if available() else ()

    def load(self) -> None:
        self._loaded()

    def _loaded(self) -> Any:
        with self._load_lock:
            if self._tts is None:
                if not available():
                    raise ModelAssetError("hibari-tts is not installed (scripts/setup.sh installs it)")
                from hibari import Hibari

                self._tts = Hibari(voice="heart", model=str(model_path()), threads=self._threads)
                self._tts("Ready.")  # the G2P loads its lexicons on first use
            return self._tts

    def synthesize(self, text: str, *, voice: str = VOICE.id, language: str = "en") -> Audio:
        """Speak `text` in US English (`language` other than English is refused: hibari speaks only English)."""
        if voice != VOICE.id:
            raise ValueError(f"HibariTTS has only the voice {VOICE.id!r}, not {voice!r}")
        if language.strip().lower().replace("_", "-").split("-")[0] != "en":
            raise ValueError(f"hibari speaks only English, not {language!r}")
        if not text.strip():
            return np.zeros(0, dtype=np.float32)
        tts = self._loaded()
        with self._synth_lock:
            audio = tts(text, seed=0)
        return trim_silence(np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0))


def trim_silence(audio: Audio, *, rate: int = SAMPLE_RATE, floor_db: float = -50.0) -> Audio:
    """Cut the silence hibari puts around every clause (~0.3 s before, ~0.5 s after), keeping 30 ms before
    and 60 ms after the speech: before, it delayed the first audible word; after, it left a gap before
    the next clause that Kokoro (which trims its own) does not, so a hibari first clause followed by
    af_heart sounded like a pause. Speech is a 10 ms frame within `floor_db` of the loudest one."""
    frame = rate // 100
    count = audio.size // frame
    if count == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: count * frame].reshape(count, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (floor_db / 20)) if rms.max() > 0 else np.zeros(0, dtype=int)
    if loud.size == 0:
        return audio[:0]
    start = max(0, loud[0] * frame - 3 * frame)
    end = min(audio.size, (loud[-1] + 1) * frame + 6 * frame)
    return audio[start:end]
