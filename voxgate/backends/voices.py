"""The voice catalog: every local voice, and every hosted voice ID ever accepted mapped to the nearest of them.

The rule (protocol §11): Voxgate never refuses a voice ID the hosted API has ever accepted. A client
written for the hosted API keeps its `voice` value and still gets speech; GET /v1/voices says
honestly what each alias sounds like here, because none of them is the voice it names.

Each hosted ID (hosted_voices.py) has an ordered list of targets, nearest first by language, accent
(US, UK or the native accent of another language) and gender; the first one a configured backend
provides speaks for it. A session language that target cannot speak moves to the first later target
that can (a German voice in an English session speaks with an English voice of the same gender).
When no target is configured at all (a server with other engines), the nearest configured voice by
the same criteria is taken, so a hosted ID always resolves.

What is installed here: Piper `joe` (natural US male), five Kokoro voices of Japanese speakers
(four female, one male; clear but accented English, British pronunciation through en-GB phonemes,
intelligible es/it/pt/hi, weak French) and espeak-ng (robotic, male; en, en-GB, es, es-419, fr, de,
it, pt, hi). There is no neural German voice, and no voice at all for Russian, Chinese or Korean:
those hosted IDs speak English. Choices were made on intelligibility through Whisper base (WER on
2-4 short sentences per language; figures in the notes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voxgate.backends.base import Audio, TextToSpeech, VoiceInfo
from voxgate.backends.hosted_voices import HOSTED_VOICES, HostedVoice


class UnknownVoiceError(ValueError):
    """A session asked for a voice this server does not have (reported to the client, not logged as a fault)."""


@dataclass(frozen=True)
class AliasTarget:
    voice: str
    language: str  # what the voice speaks by default under this alias: "en", "en-GB", "es", "ja", ...
    note: str


@dataclass(frozen=True)
class Alias:
    hosted: HostedVoice
    targets: tuple[AliasTarget, ...]

    @property
    def id(self) -> str:
        return self.hosted.id


_ACCENT = "a Japanese speaker's voice, so an accent remains"

#: The Kokoro voice that stands for each female hosted ID: spread over the four, so that two agents
#: with different hosted voices sound different here too. Native ones take the voice measured best
#: in their language (Whisper base WER, 2 sentences each: it jf_tebukuro 0.00, jf_gongitsune 0.05;
#: es jf_gongitsune 0.00, jf_nezumi 0.05; fr jf_nezumi 0.51, the best of the four).
_FEMALE_VOICE = {
    # US English
    "ivy": "jf_alpha",
    "winter": "jf_gongitsune",
    "bella": "jf_nezumi",
    "helen": "jf_tebukuro",
    "martha": "jf_alpha",
    "emma": "jf_gongitsune",
    "eleanor": "jf_nezumi",
    "mia": "jf_tebukuro",
    "alba": "jf_alpha",
    "eve": "jf_gongitsune",
    "jane": "jf_nezumi",
    "mary": "jf_tebukuro",
    "autumn": "jf_alpha",
    "claire": "jf_gongitsune",
    "dawn": "jf_nezumi",
    "grace": "jf_tebukuro",
    # UK English
    "sophie": "jf_nezumi",
    "anna": "jf_alpha",
    "vera": "jf_gongitsune",
    # native accents
    "giulia": "jf_tebukuro",
    "lucia": "jf_gongitsune",
    "lola": "jf_nezumi",
    "estelle": "jf_nezumi",
    "hana": "jf_alpha",
    "lena": "jf_tebukuro",  # English only: no Kokoro voice speaks German
    "mei": "jf_alpha",  # English only: no Chinese voice here
    "mina": "jf_gongitsune",  # English only: no Korean voice here
}

#: The male (and neutral) voice: Kokoro's one male speaker, for every language it speaks.
_MALE_VOICE = "jm_kumo"

#: Per language other than English: (language tag, note) for the Kokoro voice, and the espeak-ng voice.
_KOKORO_SPEAKS = {
    "fr": (
        "fr",
        "French: weak for every Kokoro voice here (WER 0.5 through Whisper) but far better than espeak-ng (~1.0)",
    ),
    "it": ("it", "Italian, intelligibly (WER 0.00-0.10 through Whisper)"),
    "es": ("es", "Spanish, intelligibly (WER 0.00-0.10 through Whisper)"),
    "es-419": (
        "es-419",
        "Spanish with Latin American pronunciation (espeak-ng es-419 phonemes): 8% WER through Whisper "
        "against 42% for espeak-ng's own voice",
    ),
    "pt": ("pt", "Brazilian Portuguese, intelligibly"),
    "hi": (
        "en",  # Hinglish in Latin script: espeak-ng's Hindi phonemes would mark every Latin word as English
        "English (Hinglish in Latin script); a session with language 'hi' gets Devanagari Hindi, intelligibly",
    ),
    "ja": ("ja", "Japanese natively (kanji need pyopenjtalk-plus; without it only kana are read)"),
}
_ESPEAK = {
    "fr": "espeak-fr",
    "it": "espeak-it",
    "es": "espeak-es",
    "es-419": "espeak-es-419",
    "pt": "espeak-pt",
    "hi": "espeak-hi",
    "de": "espeak-de",
}
_NO_VOICE = {"ru": "Russian", "zh": "Chinese", "ko": "Korean"}


def _english_targets(hosted: HostedVoice) -> list[AliasTarget]:
    """US or UK English: the Kokoro voice of the same gender (or joe for US male), then espeak-ng, then joe."""
    uk = hosted.language == "en-GB"
    tag = "en-GB" if uk else "en"
    female = _FEMALE_VOICE.get(hosted.id) if hosted.gender == "female" else None
    targets: list[AliasTarget] = []
    if female is not None:
        accent = "British" if uk else "US"
        targets.append(AliasTarget(female, tag, f"Kokoro {female} speaking {accent} English: clear, {_ACCENT}"))
    if uk:
        if female is None:
            targets.append(
                AliasTarget(_MALE_VOICE, "en-GB", f"Kokoro {_MALE_VOICE} with British English pronunciation, {_ACCENT}")
            )
        targets.append(AliasTarget("espeak-en-gb", "en-GB", "espeak-ng British English (robotic, male)"))
        targets.append(AliasTarget("joe", "en", "no British voice configured: Piper joe, US English male"))
    elif female is None:
        what = "a neutral voice; Piper joe" if hosted.gender == "neutral" else "Piper joe"
        targets.append(AliasTarget("joe", "en", f"{what}: a natural US male voice, the closest match of all"))
        targets.append(AliasTarget(_MALE_VOICE, "en", f"Kokoro {_MALE_VOICE} speaking US English, {_ACCENT}"))
    else:
        targets.append(AliasTarget("joe", "en", "no female voice configured: Piper joe (US male)"))
    targets.append(AliasTarget("espeak-en", "en", "espeak-ng US English (robotic, male)"))
    return targets


def _native_targets(hosted: HostedVoice) -> list[AliasTarget]:
    """Another language: a voice that speaks it (Kokoro, then espeak-ng), then English of the same gender."""
    lang = hosted.language
    female = _FEMALE_VOICE.get(hosted.id) if hosted.gender == "female" else None
    kokoro = female or _MALE_VOICE
    targets: list[AliasTarget] = []
    if lang in _KOKORO_SPEAKS:
        tag, what = _KOKORO_SPEAKS[lang]
        targets.append(AliasTarget(kokoro, tag, f"Kokoro {kokoro} speaking {what}; {_ACCENT}"))
    if lang in _ESPEAK:
        robotic = "the only German voice: no neural German TTS exists in any registry; " if lang == "de" else ""
        note = f"{robotic}espeak-ng {lang} (robotic, male)"
        targets.append(AliasTarget(_ESPEAK[lang], lang, note))
    missing = _NO_VOICE.get(lang, "")
    why = f"no {missing} voice is installed here, so English: " if missing else "in English: "
    if female is not None:
        targets.append(AliasTarget(female, "en", f"{why}Kokoro {female} (female), {_ACCENT}"))
        targets.append(AliasTarget("joe", "en", f"{why}Piper joe (no female voice configured)"))
    else:
        targets.append(AliasTarget("joe", "en", f"{why}Piper joe, a natural US male voice"))
        targets.append(AliasTarget(_MALE_VOICE, "en", f"{why}Kokoro {_MALE_VOICE}, {_ACCENT}"))
    targets.append(AliasTarget("espeak-en", "en", f"{why}espeak-ng US English (robotic, male)"))
    return targets


def _alias(hosted: HostedVoice) -> Alias:
    targets = _english_targets(hosted) if not hosted.native else _native_targets(hosted)
    return Alias(hosted, tuple(targets))


ALIASES: tuple[Alias, ...] = tuple(_alias(h) for h in HOSTED_VOICES)

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
    """What a session needs to speak: the backend to call, its voice id and language, and its output rate.

    `requested` is the ID the client sent (a hosted ID stays a hosted ID); `voice` is the local one.
    """

    requested: str
    backend: TextToSpeech
    voice: str
    language: str
    sample_rate: int


def _primary(tag: str) -> str:
    return tag.strip().lower().replace("_", "-").split("-")[0]


def _dialect(tag: str) -> str:
    """The pronunciation a tag stands for: "en" is "en-us" (and "pt" Brazilian, as Kokoro speaks it)."""
    tag = tag.strip().lower().replace("_", "-")
    return {"en": "en-us", "pt": "pt-br", "pt-br": "pt-br"}.get(tag, tag)


def _match(hosted: HostedVoice, target: AliasTarget, info: VoiceInfo) -> str:
    """How a hosted voice's language is met: "exact" (its language and pronunciation, by default),
    "other-accent" (its language, another pronunciation: a UK ID on a US voice), "on-request" (its
    language when the session's language asks for it, another by default), "fallback" (not at all)."""
    wanted = _primary(hosted.language)
    if _primary(target.language) == wanted:
        return "exact" if _dialect(target.language) == _dialect(hosted.language) else "other-accent"
    return "on-request" if wanted in info.languages else "fallback"


class VoiceCatalog:
    """Every voice the configured backends offer, plus the hosted IDs as aliases of them."""

    def __init__(self, backends: Sequence[TextToSpeech], *, default_voice: str = "joe") -> None:
        self._voices: dict[str, tuple[VoiceInfo, TextToSpeech]] = {}
        for backend in backends:
            for info in backend.voices():
                self._voices.setdefault(info.id, (info, backend))
        # Per hosted ID, the targets this server has, nearest first (never empty while any voice exists).
        self._aliases: dict[str, tuple[Alias, tuple[AliasTarget, ...]]] = {}
        for alias in ALIASES:
            if alias.id in self._voices:
                continue  # a configured voice of that name (a remote one, say) is meant literally
            targets = tuple(t for t in alias.targets if t.voice in self._voices) or self._nearest(alias.hosted)
            if targets:
                self._aliases[alias.id] = (alias, targets)
        self.default_voice = default_voice
        self.resolve(default_voice)  # a misconfigured default fails at start-up, not on the first reply

    def _nearest(self, hosted: HostedVoice) -> tuple[AliasTarget, ...]:
        """No curated target is configured: the configured voice nearest by language, accent and gender."""

        def score(info: VoiceInfo) -> tuple[bool, bool, bool]:
            speaks = _primary(hosted.language) in {_primary(info.language), *info.languages}
            accent = _dialect(info.language) == _dialect(hosted.language)
            gender = hosted.gender in ("neutral", info.gender) or info.gender == "neutral"
            return speaks, accent, gender

        infos = [info for info, _ in self._voices.values()]
        if not infos:
            return ()
        best = max(infos, key=score)  # the first of equals: the configured order breaks ties
        speaks, _, gender = score(best)
        language = _primary(hosted.language) if speaks else _primary(best.languages[0])
        why = "speaks its language" if speaks else "does not speak its language"
        mismatch = "" if gender else f", {best.gender}"
        note = f"none of the usual voices is configured: {best.id}{mismatch} is the nearest here and {why}"
        return (AliasTarget(best.id, language, note),)

    def local_voices(self) -> list[VoiceInfo]:
        return [info for info, _ in self._voices.values()]

    def alias_ids(self) -> list[str]:
        return list(self._aliases)

    def resolve(self, voice_id: str | None, *, language: str | None = None) -> ResolvedVoice:
        """Find the backend for `voice_id` (None means the default), matched case-insensitively.

        `language` (e.g. the session's language) switches a voice that can speak it; a hosted ID
        whose voice cannot moves to the next of its targets that can. Otherwise the alias's
        language, or the voice's first language, is used.
        """
        requested = (voice_id or self.default_voice).strip()
        key = requested.lower()
        if key in self._aliases:
            local, chosen = self._speaker(self._aliases[key][1], language)
        elif key in self._voices:
            local, chosen = key, self._voices[key][0].languages[0]
            if (
                language
                and _primary(language) != _primary(chosen)
                and _primary(language) in self._voices[key][0].languages
            ):
                chosen = language
        else:
            known = ", ".join([*self._voices, *self._aliases])
            raise UnknownVoiceError(f"unknown voice {requested!r}; available: {known}")
        backend = self._voices[local][1]
        return ResolvedVoice(requested, backend, local, chosen, backend.sample_rate)

    def _speaker(self, targets: tuple[AliasTarget, ...], language: str | None) -> tuple[str, str]:
        """(local voice, language) for an alias: its first target, unless `language` needs a later one."""
        first = targets[0]
        if not language:
            return first.voice, first.language
        wanted = _primary(language)
        for target in targets:
            if _primary(target.language) == wanted:
                return target.voice, target.language  # keeps the alias's accent (en-GB, es-419)
            if wanted in self._voices[target.voice][0].languages:
                return target.voice, language
        return first.voice, first.language  # nothing here speaks it: the voice as chosen

    async def synthesize(self, text: str, voice: ResolvedVoice) -> tuple[Audio, int]:
        """One clause, made speakable, in `voice` off the event loop; no audio when nothing in it is speakable."""
        from voxgate.backends.tts.text import speakable

        spoken = speakable(text)
        if not spoken:
            return np.zeros(0, dtype=np.float32), voice.sample_rate
        audio = await asyncio.to_thread(voice.backend.synthesize, spoken, voice=voice.voice, language=voice.language)
        return audio, voice.sample_rate

    def catalog_json(self) -> list[dict[str, object]]:
        """The body of GET /v1/voices: local voices first, then every hosted ID and the voice it speaks with.

        For a hosted ID: `maps_to` and `language` are the local voice and what it speaks by default;
        `exact_language` whether that voice speaks the hosted voice's language, `match` how (see
        `_match`), `same_gender` whether its gender is the hosted voice's.
        """
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
        for alias, targets in self._aliases.values():
            hosted, target = alias.hosted, targets[0]
            info, _ = self._voices[target.voice]
            match = _match(hosted, target, info)
            entries.append(
                {
                    "id": alias.id,
                    "kind": "alias",
                    "maps_to": target.voice,
                    "engine": info.engine,
                    "language": target.language,
                    "gender": info.gender,
                    "hosted": hosted.description,
                    "hosted_era": hosted.era,
                    "hosted_language": hosted.language,
                    "hosted_gender": hosted.gender,
                    "exact_language": match != "fallback",
                    "match": match,
                    "same_gender": hosted.gender == "neutral" or hosted.gender == info.gender,
                    "note": target.note,
                    "default": alias.id == self.default_voice,
                }
            )
        return entries
