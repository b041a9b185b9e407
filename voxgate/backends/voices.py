"""The voice catalog: every local voice, and the hosted API's voice IDs mapped to the nearest of them.

A client written for the hosted API keeps its `voice` value and still gets speech; GET /v1/voices
says honestly what each alias sounds like here, because none of them is the voice it names.

Each alias has an ordered list of targets and uses the first one a configured backend provides, so
a server without Kokoro (or without espeak-ng) still answers every hosted ID with something sensible.
Mapping choices were made on intelligibility through Whisper base (3–4 sentences per language, see
the notes); with no neural French, German or Hindi voice available, "nearest" is a compromise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voxgate.backends.base import Audio, TextToSpeech, VoiceInfo


class UnknownVoiceError(ValueError):
    """A session asked for a voice this server does not have (reported to the client, not logged as a fault)."""


@dataclass(frozen=True)
class AliasTarget:
    voice: str
    language: str  # what the voice speaks by default under this alias: "en", "en-GB", "es", "ja", ...
    note: str


@dataclass(frozen=True)
class Alias:
    id: str
    hosted: str  # what the hosted API's voice is
    targets: tuple[AliasTarget, ...]


_ACCENT = "a Japanese speaker's voice, so an accent remains"
ALIASES: tuple[Alias, ...] = (
    Alias(
        "ivy",
        "default female voice of the hosted examples",
        (
            AliasTarget("jf_alpha", "en", f"Kokoro jf_alpha speaking US English: clear, {_ACCENT}"),
            AliasTarget("joe", "en", "no female voice available here: Piper joe (male)"),
        ),
    ),
    Alias(
        "james",
        "conversational US male",
        (
            AliasTarget("joe", "en", "Piper joe: a natural US male voice, the closest match of all aliases"),
            AliasTarget("espeak-en", "en", "espeak-ng US English (robotic)"),
        ),
    ),
    Alias(
        "sophie",
        "clear UK female",
        (
            AliasTarget(
                "jf_nezumi",
                "en-GB",
                "approximation: no neural UK voice exists in any registry; Kokoro jf_nezumi with British "
                f"English pronunciation, {_ACCENT}",
            ),
            AliasTarget("espeak-en-gb", "en-GB", "approximation: espeak-ng British English (robotic, male)"),
        ),
    ),
    Alias(
        "diego",
        "Latin American Spanish male",
        (
            AliasTarget(
                "jm_kumo",
                "es-419",
                "Kokoro jm_kumo speaking Spanish with Latin American pronunciation (espeak-ng es-419 phonemes): "
                "8% WER through Whisper against 42% for espeak-ng's own voice; accented but far more intelligible",
            ),
            AliasTarget("espeak-es-419", "es-419", "espeak-ng Latin American Spanish (robotic)"),
        ),
    ),
    Alias(
        "arjun",
        "Hindi/Hinglish male",
        (
            AliasTarget(
                "jm_kumo",
                "en",
                "no Hindi voice exists here; Kokoro jm_kumo speaks English (Hinglish in Latin script) "
                "and, with language 'hi', Devanagari Hindi intelligibly",
            ),
            AliasTarget("espeak-hi", "hi", "espeak-ng Hindi (robotic)"),
        ),
    ),
    Alias(
        "pierre",
        "French male",
        (
            AliasTarget(
                "jm_kumo",
                "fr",
                "no neural French voice exists here; Kokoro jm_kumo speaking French is the most "
                "intelligible option (36% WER through Whisper, espeak-ng 96%) but clearly foreign",
            ),
            AliasTarget("espeak-fr", "fr", "espeak-ng French (robotic)"),
        ),
    ),
    Alias(
        "ren",
        "Japanese male",
        (
            AliasTarget(
                "jm_kumo",
                "ja",
                "Kokoro jm_kumo, a native Japanese voice (kanji need pyopenjtalk-plus; without it only kana are read)",
            ),
        ),
    ),
)

#: What to expect from each engine, for the catalog's listeners rather than its machines.
QUALITY = {
    "piper": "neural (VITS), natural US English; the fastest voice (RTF ~0.1, first audio in ~0.2 s)",
    "kokoro": (
        "neural (Kokoro-82M int8, 24 kHz); Japanese speakers: English is intelligible but accented; "
        "RTF ~0.5-0.7 on 2 cores, ~1 while the language model runs"
    ),
    "espeak": "formant synthesis: robotic and flat, but always available and instant",
}


@dataclass(frozen=True)
class ResolvedVoice:
    """What a session needs to speak: the backend to call, its voice id and language, and its output rate."""

    requested: str
    backend: TextToSpeech
    voice: str
    language: str
    sample_rate: int


def _primary(tag: str) -> str:
    return tag.strip().lower().replace("_", "-").split("-")[0]


class VoiceCatalog:
    """Every voice the configured backends offer, plus the hosted IDs as aliases of them."""

    def __init__(self, backends: Sequence[TextToSpeech], *, default_voice: str = "joe") -> None:
        self._voices: dict[str, tuple[VoiceInfo, TextToSpeech]] = {}
        for backend in backends:
            for info in backend.voices():
                self._voices.setdefault(info.id, (info, backend))
        self._aliases: dict[str, tuple[Alias, AliasTarget]] = {}
        for alias in ALIASES:
            target = next((t for t in alias.targets if t.voice in self._voices), None)
            if target is not None and alias.id not in self._voices:
                self._aliases[alias.id] = (alias, target)
        self.default_voice = default_voice
        self.resolve(default_voice)  # a misconfigured default fails at start-up, not on the first reply

    def local_voices(self) -> list[VoiceInfo]:
        return [info for info, _ in self._voices.values()]

    def alias_ids(self) -> list[str]:
        return list(self._aliases)

    def resolve(self, voice_id: str | None, *, language: str | None = None) -> ResolvedVoice:
        """Find the backend for `voice_id` (None means the default).

        `language` (e.g. the session's language) switches a voice that can speak it; otherwise the
        alias's language, or the voice's first language, is used.
        """
        requested = (voice_id or self.default_voice).strip()
        key = requested.lower()
        if key in self._aliases:
            _, target = self._aliases[key]
            local, default_language = target.voice, target.language
        elif key in self._voices:
            local, default_language = key, self._voices[key][0].languages[0]
        else:
            known = ", ".join([*self._voices, *self._aliases])
            raise UnknownVoiceError(f"unknown voice {requested!r}; available: {known}")
        info, backend = self._voices[local]
        chosen = default_language
        if language and _primary(language) != _primary(default_language) and _primary(language) in info.languages:
            chosen = language
        return ResolvedVoice(requested, backend, local, chosen, backend.sample_rate)

    async def synthesize(self, text: str, voice: ResolvedVoice) -> tuple[Audio, int]:
        """One clause, made speakable, in `voice` off the event loop; no audio when nothing in it is speakable."""
        from voxgate.backends.tts.text import speakable

        spoken = speakable(text)
        if not spoken:
            return np.zeros(0, dtype=np.float32), voice.sample_rate
        audio = await asyncio.to_thread(voice.backend.synthesize, spoken, voice=voice.voice, language=voice.language)
        return audio, voice.sample_rate

    def catalog_json(self) -> list[dict[str, object]]:
        """The body of GET /v1/voices: local voices first, then the hosted IDs and what they map to."""
        entries: list[dict[str, object]] = []
        for info, backend in self._voices.values():
            entries.append(
                {
                    "id": info.id,
                    "kind": "voice",
                    "engine": info.engine,
                    "language": info.language,
                    "gender": info.gender,
                    "description": info.description,
                    "languages": list(info.languages),
                    "quality": QUALITY.get(info.engine, ""),
                    "sample_rate": backend.sample_rate,
                    "default": info.id == self.default_voice,
                }
            )
        for alias, target in self._aliases.values():
            info, _ = self._voices[target.voice]
            entries.append(
                {
                    "id": alias.id,
                    "kind": "alias",
                    "maps_to": target.voice,
                    "engine": info.engine,
                    "language": target.language,
                    "gender": info.gender,
                    "hosted": alias.hosted,
                    "note": target.note,
                    "default": alias.id == self.default_voice,
                }
            )
        return entries
