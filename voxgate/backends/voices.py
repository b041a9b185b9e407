"""The voice catalog: every local voice, and every hosted voice ID ever accepted mapped to the nearest of them.

The rule (protocol §11): Voxgate never refuses a voice ID the hosted API has ever accepted. A client
written for the hosted API keeps its `voice` value and still gets speech; GET /v1/voices says
honestly what each alias sounds like here, because none of them is the voice it names.

Each hosted ID (hosted_voices.py) has an ordered list of targets, nearest first by language, accent
(US, UK or the native accent of another language) and gender; the first one a configured backend
provides speaks for it. Every hosted voice is multilingual (hosted, June 2026), so each ID also has
a native voice per language: a session in Spanish, French, Italian, Portuguese, Hindi or Japanese
speaks with a native Kokoro voice of that language (same gender where one exists), German with
espeak-ng (no neural German voice exists in any registry). When no target is configured at all (a
server with other engines), the nearest configured voice by the same criteria is taken, so a hosted
ID always resolves.

What is installed here: the Kokoro v1.0 voices (native US and UK English, es, fr, it, pt-BR, hi and
the five Japanese speakers; scripts/setup.sh builds them from npm kokoro-js), Piper `joe` (natural
US male, the fastest neural voice after hibari), hibari `heart` (a tiny voice distilled from Kokoro
af_heart) and espeak-ng (robotic, male; the only German). No French male voice exists (pierre speaks
with ff_siwis, female), and no voice at all for Russian, Chinese or Korean: those IDs speak English.
Without the v1.0 file (set-up not run) the older targets remain: the Japanese speakers and joe.
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
    session: bool = False  # only for a session in `language`, which it speaks as the session tags it


@dataclass(frozen=True)
class Alias:
    hosted: HostedVoice
    targets: tuple[AliasTarget, ...]

    @property
    def id(self) -> str:
        return self.hosted.id


_ACCENT = "a Japanese speaker's voice, so an accent remains"

#: The native Kokoro v1.0 voice of each hosted ID: same accent and gender, spread over the best-rated
#: voices (upstream grades: af_heart A, af_bella A-, af_nicole B-, bf_emma B-, ff_siwis B-; the rest C
#: or below) so that two agents with different hosted voices sound different here too.
NATIVE_VOICE = {
    # US English, female
    "ivy": "af_heart",
    "winter": "af_nicole",
    "bella": "af_bella",
    "helen": "af_sarah",
    "martha": "af_aoede",
    "emma": "af_kore",
    "eleanor": "af_nova",
    "mia": "af_sky",
    "alba": "af_bella",
    "eve": "af_heart",
    "jane": "af_sarah",
    "mary": "af_nicole",
    "autumn": "af_aoede",
    "claire": "af_kore",
    "dawn": "af_nova",
    "grace": "af_sky",
    "river": "af_alloy",  # neutral: Kokoro's "alloy", the name of OpenAI's neutral voice
    # US English, male
    "james": "am_michael",
    "tyler": "am_fenrir",
    "david": "am_puck",
    "kyle": "am_echo",
    "victor": "am_onyx",
    "sam": "am_eric",
    "jack": "am_liam",
    "george": "am_fenrir",
    "jean": "am_puck",
    "michael": "am_michael",
    "josh": "am_echo",
    "pete": "am_eric",
    # UK English
    "anna": "bf_emma",
    "sophie": "bf_isabella",
    "vera": "bf_alice",
    "charles": "bm_george",
    "oliver": "bm_fable",
    "paul": "bm_lewis",
    # native accents
    "arjun": "hm_omega",
    "pierre": "ff_siwis",  # no French male voice exists: the one French voice, female
    "estelle": "ff_siwis",
    "giulia": "if_sara",
    "luca": "im_nicola",
    "giovanni": "im_nicola",
    "lucia": "ef_dora",
    "lola": "ef_dora",
    "mateo": "em_alex",
    "diego": "em_alex",
    "rafael": "pm_alex",
    "hana": "jf_alpha",
    "ren": "jm_kumo",
    # no voice of their language here: English of the same gender
    "dmitri": "am_onyx",
    "ethan": "am_liam",
    "mei": "af_nicole",
    "mina": "af_sarah",
    "joon": "am_puck",
    "lukas": "am_michael",
    "lena": "af_kore",
    "juergen": "am_fenrir",
}

#: Per language a session may ask for: its native voice by gender (neutral takes the female one).
SESSION_VOICE = {
    "en": {"female": "af_heart", "male": "am_michael"},
    "es": {"female": "ef_dora", "male": "em_alex"},
    "fr": {"female": "ff_siwis", "male": "ff_siwis"},
    "it": {"female": "if_sara", "male": "im_nicola"},
    "pt": {"female": "pf_dora", "male": "pm_alex"},
    "hi": {"female": "hf_alpha", "male": "hm_omega"},
    "ja": {"female": "jf_alpha", "male": "jm_kumo"},
}

#: The Japanese speaker that stood for each female ID before the v1.0 voices (a fallback when the
#: v1.0 file is missing): English intelligible, accented.
_FEMALE_VOICE = {
    **dict.fromkeys(["ivy", "martha", "alba", "autumn", "anna", "hana", "mei"], "jf_alpha"),
    **dict.fromkeys(["winter", "emma", "eve", "claire", "vera", "lucia", "mina"], "jf_gongitsune"),
    **dict.fromkeys(["bella", "eleanor", "jane", "dawn", "sophie", "lola", "estelle"], "jf_nezumi"),
    **dict.fromkeys(["helen", "mia", "mary", "grace", "giulia", "lena"], "jf_tebukuro"),
}
_MALE_VOICE = "jm_kumo"

_LANGUAGE_NAME = {
    "en": "US English",
    "en-GB": "British English",
    "es": "Spanish",
    "es-419": "Latin American Spanish",
    "fr": "French",
    "it": "Italian",
    "pt": "Brazilian Portuguese",
    "hi": "Hindi",
    "ja": "Japanese",
    "de": "German",
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
_NO_VOICE = {"ru": "Russian", "zh": "Chinese", "ko": "Korean", "de": "German"}


def _primary(tag: str) -> str:
    return tag.strip().lower().replace("_", "-").split("-")[0]


def _dialect(tag: str) -> str:
    """The pronunciation a tag stands for: "en" is "en-us" (and "pt" Brazilian, as Kokoro speaks it)."""
    tag = tag.strip().lower().replace("_", "-")
    return {"en": "en-us", "pt": "pt-br", "pt-br": "pt-br"}.get(tag, tag)


def _english_targets(hosted: HostedVoice) -> list[AliasTarget]:
    """US or UK English: the native Kokoro voice, the older Japanese speaker, then joe and espeak-ng."""
    uk = hosted.language == "en-GB"
    tag = "en-GB" if uk else "en"
    accent = "British" if uk else "US"
    native = NATIVE_VOICE[hosted.id]
    targets = [AliasTarget(native, tag, f"Kokoro {native}: a native {accent} English {_gender(native)} voice")]
    female = _FEMALE_VOICE.get(hosted.id) if hosted.gender != "male" else None
    if female is not None:
        targets.append(AliasTarget(female, tag, f"Kokoro {female} speaking {accent} English: clear, {_ACCENT}"))
    if uk:
        if female is None:
            targets.append(AliasTarget(_MALE_VOICE, "en-GB", f"Kokoro {_MALE_VOICE}, British phonemes, {_ACCENT}"))
        targets.append(AliasTarget("espeak-en-gb", "en-GB", "espeak-ng British English (robotic, male)"))
        targets.append(AliasTarget("joe", "en", "no British voice configured: Piper joe, US English male"))
    else:
        targets.append(AliasTarget("joe", "en", "Piper joe: a natural US male voice"))
        if female is None:
            targets.append(AliasTarget(_MALE_VOICE, "en", f"Kokoro {_MALE_VOICE} speaking US English, {_ACCENT}"))
    targets.append(AliasTarget("espeak-en", "en", "espeak-ng US English (robotic, male)"))
    return targets


def _gender(voice: str) -> str:
    return "female" if voice[1:2] == "f" else "male"


def _native_targets(hosted: HostedVoice) -> list[AliasTarget]:
    """Another language: its native voice (Kokoro, then espeak-ng), then English of the same gender."""
    lang = hosted.language
    native = NATIVE_VOICE[hosted.id]
    targets: list[AliasTarget] = []
    missing = _NO_VOICE.get(_primary(lang), "")
    if hosted.id == "arjun":  # Hinglish is written in Latin script: Indian English by default, Hindi on request
        targets.append(AliasTarget(native, "en", "Kokoro hm_omega, a native Hindi male voice, speaking English"))
        targets.append(AliasTarget(native, "hi", "Kokoro hm_omega speaking Hindi (a session in Hindi)", session=True))
    elif not missing:
        name = _LANGUAGE_NAME.get(lang, lang)
        gap = " (no French male voice exists: the only French voice is female)" if hosted.id == "pierre" else ""
        targets.append(AliasTarget(native, lang, f"Kokoro {native}: a native {name} {_gender(native)} voice{gap}"))
        old = _FEMALE_VOICE.get(hosted.id) if hosted.gender == "female" else _MALE_VOICE
        if old and lang in ("es", "es-419", "it", "pt", "ja", "fr"):
            targets.append(AliasTarget(old, lang, f"Kokoro {old} speaking {name}; {_ACCENT}"))
    if lang in _ESPEAK:
        robotic = "the only German voice: no neural German TTS exists in any registry; " if lang == "de" else ""
        targets.append(AliasTarget(_ESPEAK[lang], lang, f"{robotic}espeak-ng {lang} (robotic, male)"))
    why = f"no {missing} voice is installed here, so English: " if missing else "in English: "
    if missing:
        targets.append(AliasTarget(native, "en", f"{why}Kokoro {native}, a native US English {_gender(native)} voice"))
    elif hosted.id != "arjun":
        english = SESSION_VOICE["en"]["male" if hosted.gender == "male" else "female"]
        note = f"{why}Kokoro {english}, a native US English {_gender(english)} voice"
        targets.append(AliasTarget(english, "en", note, session=True))
    female = _FEMALE_VOICE.get(hosted.id) if hosted.gender == "female" else None
    if female is not None:
        targets.append(AliasTarget(female, "en", f"{why}Kokoro {female} (female), {_ACCENT}"))
        targets.append(AliasTarget("joe", "en", f"{why}Piper joe (no female voice configured)"))
    else:
        targets.append(AliasTarget("joe", "en", f"{why}Piper joe, a natural US male voice"))
        targets.append(AliasTarget(_MALE_VOICE, "en", f"{why}Kokoro {_MALE_VOICE}, {_ACCENT}"))
    targets.append(AliasTarget("espeak-en", "en", f"{why}espeak-ng US English (robotic, male)"))
    return targets


def _session_targets(hosted: HostedVoice) -> list[AliasTarget]:
    """Per other language a session may ask for: its native voice of the hosted gender, then espeak-ng."""
    own = _primary(hosted.language)
    gender = "male" if hosted.gender == "male" else "female"
    targets = []
    for lang, by_gender in SESSION_VOICE.items():
        if lang == own:
            continue
        voice = by_gender[gender]
        note = f"a session in {_LANGUAGE_NAME[lang]}: Kokoro {voice}, a native {_gender(voice)} voice of it"
        targets.append(AliasTarget(voice, lang, note, session=True))
    for lang in ("es", "fr", "it", "pt", "hi", "de"):
        if lang != own:
            note = f"a session in {_LANGUAGE_NAME[lang]}: espeak-ng (robotic, male)"
            if lang == "de":
                note = "a session in German: espeak-ng, the only German voice (no neural German TTS exists)"
            targets.append(AliasTarget(_ESPEAK[lang], lang, note, session=True))
    return targets


def _alias(hosted: HostedVoice) -> Alias:
    targets = _english_targets(hosted) if not hosted.native else _native_targets(hosted)
    return Alias(hosted, tuple([*targets, *_session_targets(hosted)]))


ALIASES: tuple[Alias, ...] = tuple(_alias(h) for h in HOSTED_VOICES)

#: What to expect from each engine, for the catalog's listeners rather than its machines.
QUALITY = {
    "piper": "neural (VITS), natural US English; first audio of a short clause in ~0.1 s",
    "kokoro": (
        "neural (Kokoro-82M int8, 24 kHz), native speakers of their language; the slowest neural voice "
        "here: a short clause takes ~1.2 s on 2 cores (RTF ~0.6), more while the language model runs"
    ),
    "hibari": "neural, distilled from Kokoro af_heart (US English female); the fastest voice (~0.02 s a clause)",
    "espeak": "formant synthesis: robotic and flat, but always available and instant",
}

#: Measured speed per voice, seconds on the 2-core build machine with nothing else running: first audio
#: of "Sure, I can help with that." (p50) idle and while the embedded LLM generates in another process,
#: and the idle RTF of four longer sentences. Made with
#:   voxgate bench voices --reps 3 --no-intelligibility
#: (2026-12-02; the same table is in the README's voice section). The engine rows cover a voice added
#: since: every Kokoro voice runs the same model.
MEASURED: dict[str, dict[str, float]] = {
    "joe": {"first_audio_s": 0.09, "first_audio_contended_s": 0.30, "rtf": 0.06},
    "hibari-heart": {"first_audio_s": 0.03, "first_audio_contended_s": 0.05, "rtf": 0.01},
    "af_heart": {"first_audio_s": 0.83, "first_audio_contended_s": 2.23, "rtf": 0.60},
    "af_bella": {"first_audio_s": 0.93, "first_audio_contended_s": 2.43, "rtf": 0.59},
    "af_nicole": {"first_audio_s": 1.03, "first_audio_contended_s": 3.08, "rtf": 0.56},
    "af_sarah": {"first_audio_s": 1.01, "first_audio_contended_s": 2.81, "rtf": 0.59},
    "af_aoede": {"first_audio_s": 0.76, "first_audio_contended_s": 1.92, "rtf": 0.62},
    "af_kore": {"first_audio_s": 0.72, "first_audio_contended_s": 2.19, "rtf": 0.62},
    "af_nova": {"first_audio_s": 1.12, "first_audio_contended_s": 3.27, "rtf": 0.54},
    "af_alloy": {"first_audio_s": 1.06, "first_audio_contended_s": 3.30, "rtf": 0.50},
    "af_sky": {"first_audio_s": 0.99, "first_audio_contended_s": 2.46, "rtf": 0.57},
    "af_jessica": {"first_audio_s": 0.88, "first_audio_contended_s": 2.06, "rtf": 0.60},
    "af_river": {"first_audio_s": 0.82, "first_audio_contended_s": 2.22, "rtf": 0.56},
    "am_michael": {"first_audio_s": 1.00, "first_audio_contended_s": 2.21, "rtf": 0.67},
    "am_fenrir": {"first_audio_s": 0.79, "first_audio_contended_s": 1.86, "rtf": 0.77},
    "am_puck": {"first_audio_s": 0.82, "first_audio_contended_s": 1.84, "rtf": 0.72},
    "am_echo": {"first_audio_s": 1.13, "first_audio_contended_s": 2.11, "rtf": 0.69},
    "am_eric": {"first_audio_s": 0.84, "first_audio_contended_s": 1.96, "rtf": 0.61},
    "am_liam": {"first_audio_s": 1.02, "first_audio_contended_s": 2.22, "rtf": 0.54},
    "am_onyx": {"first_audio_s": 1.03, "first_audio_contended_s": 2.59, "rtf": 0.51},
    "am_adam": {"first_audio_s": 0.93, "first_audio_contended_s": 2.61, "rtf": 0.62},
    "am_santa": {"first_audio_s": 1.01, "first_audio_contended_s": 2.22, "rtf": 0.55},
    "bf_emma": {"first_audio_s": 1.29, "first_audio_contended_s": 2.44, "rtf": 0.61},
    "bf_isabella": {"first_audio_s": 1.28, "first_audio_contended_s": 2.46, "rtf": 0.61},
    "bf_alice": {"first_audio_s": 1.19, "first_audio_contended_s": 2.58, "rtf": 0.54},
    "bf_lily": {"first_audio_s": 1.21, "first_audio_contended_s": 3.29, "rtf": 0.52},
    "bm_george": {"first_audio_s": 1.22, "first_audio_contended_s": 3.41, "rtf": 0.52},
    "bm_fable": {"first_audio_s": 1.29, "first_audio_contended_s": 3.00, "rtf": 0.50},
    "bm_lewis": {"first_audio_s": 1.15, "first_audio_contended_s": 2.88, "rtf": 0.54},
    "bm_daniel": {"first_audio_s": 1.26, "first_audio_contended_s": 2.66, "rtf": 0.60},
    "ef_dora": {"first_audio_s": 1.34, "first_audio_contended_s": 2.68, "rtf": 0.51},
    "em_alex": {"first_audio_s": 1.35, "first_audio_contended_s": 2.24, "rtf": 0.57},
    "em_santa": {"first_audio_s": 1.34, "first_audio_contended_s": 2.74, "rtf": 0.56},
    "ff_siwis": {"first_audio_s": 1.28, "first_audio_contended_s": 2.72, "rtf": 0.63},
    "if_sara": {"first_audio_s": 1.68, "first_audio_contended_s": 3.01, "rtf": 0.56},
    "im_nicola": {"first_audio_s": 1.63, "first_audio_contended_s": 3.40, "rtf": 0.53},
    "pf_dora": {"first_audio_s": 1.24, "first_audio_contended_s": 2.58, "rtf": 0.57},
    "pm_alex": {"first_audio_s": 1.26, "first_audio_contended_s": 2.38, "rtf": 0.61},
    "pm_santa": {"first_audio_s": 1.30, "first_audio_contended_s": 2.63, "rtf": 0.59},
    "hf_alpha": {"first_audio_s": 1.81, "first_audio_contended_s": 3.52, "rtf": 0.61},
    "hf_beta": {"first_audio_s": 1.35, "first_audio_contended_s": 3.78, "rtf": 0.69},
    "hm_omega": {"first_audio_s": 1.39, "first_audio_contended_s": 4.21, "rtf": 0.66},
    "hm_psi": {"first_audio_s": 1.73, "first_audio_contended_s": 4.14, "rtf": 0.60},
    "jf_alpha": {"first_audio_s": 0.88, "first_audio_contended_s": 2.09, "rtf": 0.70},
    "jf_gongitsune": {"first_audio_s": 1.06, "first_audio_contended_s": 2.14, "rtf": 0.67},
    "jf_nezumi": {"first_audio_s": 1.05, "first_audio_contended_s": 2.02, "rtf": 0.63},
    "jf_tebukuro": {"first_audio_s": 1.15, "first_audio_contended_s": 2.34, "rtf": 0.59},
    "jm_kumo": {"first_audio_s": 0.88, "first_audio_contended_s": 2.26, "rtf": 0.68},
    "espeak-en": {"first_audio_s": 0.01, "first_audio_contended_s": 0.02, "rtf": 0.00},
    "espeak-en-gb": {"first_audio_s": 0.01, "first_audio_contended_s": 0.01, "rtf": 0.00},
    "espeak-es": {"first_audio_s": 0.01, "first_audio_contended_s": 0.02, "rtf": 0.01},
    "espeak-es-419": {"first_audio_s": 0.01, "first_audio_contended_s": 0.04, "rtf": 0.01},
    "espeak-fr": {"first_audio_s": 0.01, "first_audio_contended_s": 0.03, "rtf": 0.01},
    "espeak-de": {"first_audio_s": 0.01, "first_audio_contended_s": 0.02, "rtf": 0.01},
    "espeak-it": {"first_audio_s": 0.01, "first_audio_contended_s": 0.03, "rtf": 0.01},
    "espeak-pt": {"first_audio_s": 0.01, "first_audio_contended_s": 0.03, "rtf": 0.01},
    "espeak-hi": {"first_audio_s": 0.01, "first_audio_contended_s": 0.04, "rtf": 0.01},
    "kokoro": {"first_audio_s": 1.1, "first_audio_contended_s": 2.5, "rtf": 0.6},
    "espeak": {"first_audio_s": 0.01, "first_audio_contended_s": 0.03, "rtf": 0.01},
}


#: A voice whose first audio (idle, MEASURED) takes this long says its replies' opening words on their own.
SLOW_FIRST_AUDIO_S = 0.3


def measured_speed(info: VoiceInfo) -> dict[str, float]:
    return MEASURED.get(info.id) or MEASURED.get(info.engine) or {}


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
    #: A much faster voice of the same speaker for a reply's first clause (tts_fast_first_clause), or None.
    lead: ResolvedVoice | None = None
    #: The voice that says the first clause is slow to start (MEASURED), so the clause is cut short.
    slow_start: bool = False

    def for_clause(self, first: bool) -> ResolvedVoice:
        """The voice that says a reply's first clause (the lead, when there is one) or any later one."""
        return self.lead if first and self.lead is not None else self


#: The fast voice distilled from a slower one, which can say its first clauses (same speaker, accent
#: and language): hibari heart is a student of Kokoro af_heart.
FAST_LEAD = {"af_heart": "hibari-heart"}


def _accent(tag: str) -> str:
    """ "US", "UK" for English; the native language otherwise ("es", "fr", "pt-BR", ...)."""
    if _primary(tag) == "en":
        return "UK" if _dialect(tag) == "en-gb" else "US"
    return tag


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

    def __init__(
        self, backends: Sequence[TextToSpeech], *, default_voice: str = "joe", fast_first_clause: bool = False
    ) -> None:
        self._fast_first_clause = fast_first_clause
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
        info, backend = self._voices[local]
        lead = self._lead(requested, local, chosen)
        slow = lead is None and measured_speed(info).get("first_audio_s", 0.0) >= SLOW_FIRST_AUDIO_S
        return ResolvedVoice(requested, backend, local, chosen, backend.sample_rate, lead, slow)

    def _lead(self, requested: str, local: str, language: str) -> ResolvedVoice | None:
        """The fast voice for the first clause of `local`'s replies in `language`, when enabled and installed."""
        fast = FAST_LEAD.get(local) if self._fast_first_clause else None
        if fast is None or fast not in self._voices or _primary(language) not in self._voices[fast][0].languages:
            return None
        backend = self._voices[fast][1]
        return ResolvedVoice(requested, backend, fast, language, backend.sample_rate)

    def lead_of(self, voice_id: str) -> str | None:
        """The voice that says the first clause of `voice_id`'s replies in its own language, if any."""
        lead = self.resolve(voice_id).lead
        return lead.voice if lead is not None else None

    def _speaker(self, targets: tuple[AliasTarget, ...], language: str | None) -> tuple[str, str]:
        """(local voice, language) for an alias: its first target, unless `language` needs a later one.

        First the targets made for that language (the nearest first), then a voice that can speak it."""
        first = next((t for t in targets if not t.session), targets[0])
        if not language:
            return first.voice, first.language
        wanted = _primary(language)
        for target in targets:
            if _primary(target.language) == wanted:
                # the alias's own accent is kept (en-GB, es-419); a per-language target speaks as asked
                return target.voice, (language if target.session else target.language)
        for target in targets:
            if wanted in self._voices[target.voice][0].languages:
                return target.voice, language
        return first.voice, first.language  # nothing here speaks it: the voice as chosen

    async def synthesize(self, text: str, voice: ResolvedVoice) -> tuple[Audio, int]:
        """One clause, made speakable, in `voice` off the event loop; no audio when nothing in it is speakable."""
        from voxgate.backends.tts.text import speakable

        spoken = speakable(text, voice.language)  # numbers and symbols in words of the language it speaks
        if not spoken:
            return np.zeros(0, dtype=np.float32), voice.sample_rate
        audio = await asyncio.to_thread(voice.backend.synthesize, spoken, voice=voice.voice, language=voice.language)
        return audio, voice.sample_rate

    def catalog_json(self) -> list[dict[str, object]]:
        """The body of GET /v1/voices: local voices first, then every hosted ID and the voice it speaks with.

        For a hosted ID: `maps_to` and `language` are the local voice and what it speaks by default;
        `exact_language` whether that voice speaks the hosted voice's language, `match` how (see
        `_match`), `same_gender` whether its gender is the hosted voice's. `first_clause_voice` names the
        fast voice that says the first clause of each reply (tts_fast_first_clause), else null.
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
                    "accent": _accent(info.language),
                    "quality": QUALITY.get(info.engine, ""),
                    "speed": measured_speed(info),
                    "sample_rate": backend.sample_rate,
                    "first_clause_voice": self.lead_of(info.id),
                    "default": info.id == self.default_voice,
                }
            )
        for alias, targets in self._aliases.values():
            hosted, target = alias.hosted, next((t for t in targets if not t.session), targets[0])
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
                    "accent": _accent(target.language if _primary(target.language) != "en" else info.language),
                    "speed": measured_speed(info),
                    "hosted": hosted.description,
                    "hosted_era": hosted.era,
                    "hosted_language": hosted.language,
                    "hosted_gender": hosted.gender,
                    "exact_language": match != "fallback",
                    "match": match,
                    "same_gender": hosted.gender == "neutral" or hosted.gender == info.gender,
                    "note": target.note,
                    "first_clause_voice": self.lead_of(alias.id),
                    "default": alias.id == self.default_voice,
                }
            )
        return entries
