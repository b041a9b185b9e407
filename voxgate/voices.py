"""The voice catalog: local voices, and the hosted API's voice IDs mapped to the nearest of them.

A client written for the hosted API keeps its `voice` value; the catalog (GET /v1/voices) says
honestly what each alias sounds like here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from voxgate.backends.base import TextToSpeech, VoiceInfo


class UnknownVoiceError(ValueError):
    pass


@dataclass(frozen=True)
class Alias:
    id: str
    maps_to: str
    language: str
    note: str


ALIASES = (
    Alias("ivy", "jf_alpha", "en", "hosted default female voice → Kokoro jf_alpha"),
    Alias("james", "joe", "en", "conversational US male → Piper joe"),
    Alias("sophie", "jf_nezumi", "en", "UK female: no neural UK voice is available locally; a Kokoro female"),
    Alias("diego", "jm_kumo", "es", "Latin American Spanish → Kokoro jm_kumo speaking Spanish (accented)"),
    Alias("arjun", "jm_kumo", "en", "Hindi/Hinglish: no Hindi neural voice locally; English with jm_kumo"),
    Alias("pierre", "espeak-fr", "fr", "French: no neural French voice locally; espeak-ng (robotic)"),
    Alias("ren", "jm_kumo", "ja", "Japanese → Kokoro jm_kumo, a native Japanese voice"),
)


@dataclass(frozen=True)
class ResolvedVoice:
    requested: str
    backend: TextToSpeech
    voice: str
    language: str

    @property
    def sample_rate(self) -> int:
        return self.backend.sample_rate


class VoiceCatalog:
    def __init__(self, backends: Sequence[TextToSpeech], *, default_voice: str = "joe") -> None:
        self._voices: dict[str, tuple[VoiceInfo, TextToSpeech]] = {}
        for backend in backends:
            for info in backend.voices():
                self._voices[info.id] = (info, backend)
        self._aliases = {a.id: a for a in ALIASES if a.maps_to in self._voices}
        self.default_voice = default_voice
        self.resolve(default_voice)

    def local_voices(self) -> list[VoiceInfo]:
        return [info for info, _ in self._voices.values()]

    def resolve(self, voice_id: str | None) -> ResolvedVoice:
        requested = voice_id or self.default_voice
        alias = self._aliases.get(requested)
        local = alias.maps_to if alias else requested
        if local not in self._voices:
            known = ", ".join([*self._voices, *self._aliases])
            raise UnknownVoiceError(f"unknown voice {requested!r}; available: {known}")
        info, backend = self._voices[local]
        language = alias.language if alias else info.languages[0]
        return ResolvedVoice(requested, backend, local, language)

    def catalog_json(self) -> list[dict[str, object]]:
        local = [{**asdict(info), "kind": "local", "languages": list(info.languages)} for info in self.local_voices()]
        aliases = [{**asdict(a), "kind": "alias"} for a in self._aliases.values()]
        return local + aliases
