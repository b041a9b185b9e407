"""espeak-ng as a subprocess: robotic formant synthesis, but ~100 languages and no model to load.

It is the only voice for German (and the fallback for every language the neural voices lack). A
subprocess rather than a library binding: Piper and kokoro-onnx each load their own copy of the
espeak-ng library into this process, and a third one there would be asking for symbol clashes;
a process per clause costs ~20 ms, which nothing here notices.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from collections.abc import Sequence

import numpy as np

from voxgate.audio.resample import resample
from voxgate.backends.base import Audio, VoiceInfo

#: voice id suffix -> (espeak-ng voice, BCP 47 tag, English name) for the voices listed by default.
ESPEAK_VOICES: dict[str, tuple[str, str, str]] = {
    "en": ("en-us", "en-US", "US English"),
    "en-gb": ("en-gb", "en-GB", "British English"),
    "es": ("es", "es-ES", "Spanish (Spain)"),
    "es-419": ("es-419", "es-419", "Latin American Spanish"),
    "fr": ("fr-fr", "fr-FR", "French"),
    "de": ("de", "de-DE", "German"),
    "it": ("it", "it-IT", "Italian"),
    "pt": ("pt-br", "pt-BR", "Brazilian Portuguese"),
    "hi": ("hi", "hi-IN", "Hindi"),
}


class EspeakMissingError(RuntimeError):
    """The espeak-ng binary is not on PATH."""


def espeak_voice_info(suffix: str) -> VoiceInfo:
    _, tag, name = ESPEAK_VOICES[suffix]
    return VoiceInfo(
        id=f"espeak-{suffix}",
        engine="espeak",
        language=tag,
        gender="male",
        description=f"espeak-ng {name}: robotic formant synthesis, always available, instant",
        languages=(suffix.split("-")[0],),
    )


class EspeakTTS:
    """One voice per language; the voice id fixes the language, the `language` argument is ignored.

    Text goes in on stdin, never as an argument, so a clause that starts with "-" is not read as an option.
    """

    engine = "espeak"
    sample_rate = 22_050

    def __init__(
        self,
        *,
        binary: str = "espeak-ng",
        languages: Sequence[str] = tuple(ESPEAK_VOICES),
        words_per_minute: int = 165,
        timeout_s: float = 30.0,
    ) -> None:
        unknown = [code for code in languages if code not in ESPEAK_VOICES]
        if unknown:
            raise ValueError(f"no espeak voice defined for {unknown}; known: {', '.join(ESPEAK_VOICES)}")
        self._binary = shutil.which(binary)
        self._voices = tuple(espeak_voice_info(code) for code in languages)
        self._ids = {v.id: ESPEAK_VOICES[v.id.removeprefix("espeak-")][0] for v in self._voices}
        self._wpm = words_per_minute
        self._timeout = timeout_s
        self._binary_name = binary

    @property
    def available(self) -> bool:
        return self._binary is not None

    def voices(self) -> Sequence[VoiceInfo]:
        """Lists the voices only when the binary exists, so the catalog never offers a voice that cannot speak."""
        return self._voices if self._binary else ()

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        if self._binary is None:
            raise EspeakMissingError(
                f"{self._binary_name!r} is not installed or not on PATH (Debian: apt-get install espeak-ng)"
            )
        if voice not in self._ids:
            raise ValueError(f"unknown espeak voice {voice!r}; known: {', '.join(self._ids)}")
        if not text.strip():
            return np.zeros(0, dtype=np.float32)
        command = [self._binary, "-v", self._ids[voice], "-s", str(self._wpm), "-b", "1", "--stdout"]
        try:
            result = subprocess.run(
                command, input=text.encode("utf-8"), capture_output=True, timeout=self._timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"espeak-ng took longer than {self._timeout:.0f} s") from exc
        if result.returncode != 0:
            raise RuntimeError(f"espeak-ng failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
        return self._decode(result.stdout)

    def _decode(self, wav_bytes: bytes) -> Audio:
        """espeak-ng streams its WAV with a placeholder length, so read frames until the data ends."""
        with wave.open(io.BytesIO(wav_bytes)) as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise RuntimeError("espeak-ng returned audio that is not 16-bit mono")
            rate = wav.getframerate()
            raw = wav.readframes(wav.getnframes())
        audio = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
        return resample(audio, rate, self.sample_rate) if rate != self.sample_rate else audio
