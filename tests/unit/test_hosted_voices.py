"""Protocol §11: every voice ID the hosted API has ever accepted resolves to the nearest local voice.

The IDs are typed here from the contract, not imported from the catalog's table, so a missing one
fails. The real catalog is built as the server builds it (Piper, Kokoro, espeak-ng): listing voices
loads no model, so none of this is slow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from voxgate.backends.base import Audio, VoiceInfo
from voxgate.backends.tts.espeak_voice import EspeakTTS
from voxgate.backends.tts.kokoro_voice import KokoroTTS
from voxgate.backends.tts.piper_voice import PiperTTS
from voxgate.backends.voices import UnknownVoiceError, VoiceCatalog
from voxgate.models import kokoro_voices

v1 = pytest.mark.skipif(not kokoro_voices.installed(), reason="Kokoro v1.0 voices not built (scripts/setup.sh)")

F, M, N = "female", "male", "neutral"

#: id -> (accent or language, gender), era by era, as protocol.md §11 lists them.
LAUNCH = {
    **dict.fromkeys(["ivy", "winter", "bella", "helen", "martha", "emma", "eleanor"], ("en-US", F)),
    **dict.fromkeys(["james", "tyler", "david", "kyle", "victor"], ("en-US", M)),
    "river": ("en-US", N),
    "arjun": ("hi", M),
    "dmitri": ("ru", M),
    "pierre": ("fr", M),
    "giulia": ("it", F),
    "luca": ("it", M),
    "lucia": ("es", F),
    "mateo": ("es", M),
    "diego": ("es-419", M),
}
LAUNCH_REMOVED = {
    "sam": ("en-US", M),
    "mia": ("en-US", F),
    "jack": ("en-US", M),
    "sophie": ("en-GB", F),
    "oliver": ("en-GB", M),
    "ethan": ("zh", M),
    "mei": ("zh", F),
    "lukas": ("de", M),
    "lena": ("de", F),
    "mina": ("ko", F),
    "joon": ("ko", M),
    "ren": ("ja", M),
    "hana": ("ja", F),
}
SEPTEMBER = {
    **dict.fromkeys(["alba", "eve", "jane", "mary"], ("en-US", F)),
    **dict.fromkeys(["george", "jean", "michael"], ("en-US", M)),
    **dict.fromkeys(["anna", "vera"], ("en-GB", F)),
    **dict.fromkeys(["charles", "paul"], ("en-GB", M)),
    "giovanni": ("it", M),
    "lola": ("es", F),
    "juergen": ("de", M),
    "rafael": ("pt", M),
    "estelle": ("fr", F),
}
PRE_LAUNCH = {
    **dict.fromkeys(["autumn", "claire", "dawn", "grace"], ("en-US", F)),
    **dict.fromkeys(["josh", "pete"], ("en-US", M)),
}
HOSTED = {**LAUNCH, **LAUNCH_REMOVED, **SEPTEMBER, **PRE_LAUNCH}
NATIVE = {voice: tag for voice, (tag, _) in HOSTED.items() if not tag.startswith("en")}
UK = [voice for voice, (tag, _) in HOSTED.items() if tag == "en-GB"]


def primary(tag: str) -> str:
    return tag.lower().replace("_", "-").split("-")[0]


def test_the_list_is_the_contracts() -> None:
    assert (len(LAUNCH), len(LAUNCH_REMOVED), len(SEPTEMBER), len(PRE_LAUNCH)) == (21, 13, 16, 6)
    assert len(HOSTED) == 56
    assert sorted(UK) == ["anna", "charles", "oliver", "paul", "sophie", "vera"]


@pytest.fixture(scope="module")
def catalog() -> VoiceCatalog:
    return VoiceCatalog([PiperTTS(threads=1), KokoroTTS(), EspeakTTS()])  # nothing loads until it speaks


def info_of(catalog: VoiceCatalog, voice: str) -> VoiceInfo:
    return next(v for v in catalog.local_voices() if v.id == voice)


def speakers_of(catalog: VoiceCatalog, language: str) -> list[VoiceInfo]:
    return [v for v in catalog.local_voices() if language in {primary(v.language), *v.languages}]


@pytest.mark.parametrize("voice_id", sorted(HOSTED))
def test_every_hosted_id_resolves_case_insensitively(catalog: VoiceCatalog, voice_id: str) -> None:
    resolved = catalog.resolve(voice_id)
    assert resolved.requested == voice_id  # config.output.voice echoes what the client sent
    assert resolved.voice in {v.id for v in resolved.backend.voices()}
    assert resolved.sample_rate == resolved.backend.sample_rate
    for spelled in (voice_id.upper(), voice_id.capitalize(), f" {voice_id} "):
        again = catalog.resolve(spelled)
        assert (again.voice, again.language, again.requested) == (resolved.voice, resolved.language, spelled.strip())


@pytest.mark.parametrize("voice_id", sorted(HOSTED))
def test_the_gender_matches_where_a_voice_of_it_speaks_the_language(catalog: VoiceCatalog, voice_id: str) -> None:
    _, gender = HOSTED[voice_id]
    resolved = catalog.resolve(voice_id)
    language = primary(resolved.language)
    neural = [v for v in speakers_of(catalog, language) if v.engine != "espeak"]
    if gender != N and any(v.gender == gender for v in neural):
        assert info_of(catalog, resolved.voice).gender == gender
    elif voice_id == "pierre" and neural:
        assert resolved.voice == "ff_siwis"  # no French male neural voice exists: the French one, female


@pytest.mark.parametrize("voice_id", sorted(NATIVE))
def test_native_ids_speak_their_language_where_a_local_voice_does(catalog: VoiceCatalog, voice_id: str) -> None:
    language = primary(NATIVE[voice_id])
    resolved = catalog.resolve(voice_id)
    if not speakers_of(catalog, language):  # Russian, Chinese, Korean: none here
        assert primary(resolved.language) == "en"
        return
    # Hinglish is written in Latin script: arjun speaks English unless the session asks for Hindi.
    assert primary(resolved.language) == ("en" if voice_id == "arjun" else language)
    asked = catalog.resolve(voice_id, language=language)
    assert primary(asked.language) == language
    if NATIVE[voice_id] == "es-419":
        assert asked.language == "es-419"  # the Latin American pronunciation is kept


def test_what_is_native_here(catalog: VoiceCatalog) -> None:
    """The languages this machine has a voice for, so a change in what is installed shows up here."""
    spoken = {lang for lang in set(map(primary, NATIVE.values())) if speakers_of(catalog, lang)}
    assert spoken == {"fr", "it", "es", "pt", "hi", "de", "ja"}
    assert catalog.resolve("juergen").voice == catalog.resolve("lena", language="de").voice == "espeak-de"


#: The native voice each hosted ID gets once the Kokoro v1.0 voices are installed (issue 17).
NATIVE_MAP = {
    "anna": ("bf_emma", "en-GB"),
    "ivy": ("af_heart", "en"),
    "pierre": ("ff_siwis", "fr"),
    "estelle": ("ff_siwis", "fr"),
    "lucia": ("ef_dora", "es"),
    "lola": ("ef_dora", "es"),
    "mateo": ("em_alex", "es"),
    "diego": ("em_alex", "es-419"),
    "giulia": ("if_sara", "it"),
    "luca": ("im_nicola", "it"),
    "giovanni": ("im_nicola", "it"),
    "rafael": ("pm_alex", "pt"),
    "arjun": ("hm_omega", "en"),
    "ren": ("jm_kumo", "ja"),
    "hana": ("jf_alpha", "ja"),
}
ACCENT_PREFIX = {
    "en-US": "a",
    "en-GB": "b",
    "es": "e",
    "es-419": "e",
    "fr": "f",
    "it": "i",
    "pt": "p",
    "hi": "h",
    "ja": "j",
}


@v1
@pytest.mark.parametrize("voice_id", sorted(NATIVE_MAP))
def test_native_voices_of_issue_17(catalog: VoiceCatalog, voice_id: str) -> None:
    resolved = catalog.resolve(voice_id)
    assert (resolved.voice, resolved.language) == NATIVE_MAP[voice_id]


@v1
@pytest.mark.parametrize("voice_id", sorted(HOSTED))
def test_every_hosted_id_gets_a_native_kokoro_voice_of_its_accent_and_gender(
    catalog: VoiceCatalog, voice_id: str
) -> None:
    tag, gender = HOSTED[voice_id]
    resolved = catalog.resolve(voice_id)
    info = info_of(catalog, resolved.voice)
    if tag == "de":  # German speaks German: espeak-ng is the only German voice
        assert resolved.voice == "espeak-de"
        return
    assert info.engine == "kokoro"
    if tag in ACCENT_PREFIX:
        assert resolved.voice[0] == ACCENT_PREFIX[tag], voice_id  # US, UK or the native language's speaker
    else:  # ru, zh, ko, de: nothing neural speaks it: a US English voice
        assert resolved.voice[0] == "a" and primary(resolved.language) == "en", voice_id
    if voice_id != "pierre":  # the only French voice is female
        assert info.gender == (F if gender == N else gender), voice_id


@v1
@pytest.mark.parametrize("voice_id", sorted(HOSTED))
@pytest.mark.parametrize("language", ["es", "fr", "it", "pt", "hi", "ja", "de", "en"])
def test_every_hosted_id_speaks_the_session_language_natively(
    catalog: VoiceCatalog, voice_id: str, language: str
) -> None:
    """The hosted voices are multilingual: a session in a language speaks it with a native voice of it."""
    _, gender = HOSTED[voice_id]
    resolved = catalog.resolve(voice_id, language=language)
    info = info_of(catalog, resolved.voice)
    assert primary(resolved.language) == language, (voice_id, language)
    if language == "de":
        assert resolved.voice == "espeak-de"  # no neural German voice exists
        return
    if voice_id == "arjun" and language == "en":
        assert resolved.voice == "hm_omega"  # Hinglish: Indian English from a native Hindi voice
        return
    assert info.engine == "kokoro" and primary(info.language) == language, (voice_id, language, info.id)
    if language != "fr" and gender != N:
        assert info.gender == gender
    if language == "en" and HOSTED[voice_id][0] == "en-GB":
        assert resolved.language == "en-GB"


@v1
def test_the_catalog_lists_every_v1_voice_with_language_accent_gender_engine_and_speed(catalog: VoiceCatalog) -> None:
    voices = {e["id"]: e for e in catalog.catalog_json() if e["kind"] == "voice"}
    kokoro = {v for v, e in voices.items() if e["engine"] == "kokoro"}
    assert len(kokoro) == 46  # the 54 packs but the 8 Chinese ones
    assert voices["bf_emma"]["accent"] == "UK" and voices["af_heart"]["accent"] == "US"
    assert voices["pf_dora"]["language"] == "pt-BR" and voices["hm_omega"]["gender"] == M
    for entry in voices.values():
        assert {"language", "accent", "gender", "engine", "speed"} <= set(entry)
        assert entry["speed"], entry["id"]


@pytest.mark.parametrize("voice_id", UK)
def test_uk_ids_get_british_english(catalog: VoiceCatalog, voice_id: str) -> None:
    british = [v for v in catalog.local_voices() if v.language == "en-GB"]
    assert british  # espeak-ng en-GB at least; Kokoro also speaks British English with en-GB phonemes
    resolved = catalog.resolve(voice_id)
    assert resolved.language == "en-GB"
    assert catalog.resolve(voice_id, language="en").language == "en-GB"  # an English session keeps the accent
    assert info_of(catalog, resolved.voice).gender == HOSTED[voice_id][1]


def test_a_session_language_the_voice_cannot_speak_moves_to_one_that_can(catalog: VoiceCatalog) -> None:
    lena = catalog.resolve("lena", language="en")  # espeak-de speaks only German
    assert primary(lena.language) == "en" and info_of(catalog, lena.voice).gender == F
    assert info_of(catalog, catalog.resolve("juergen", language="en").voice).gender == M
    assert catalog.resolve("juergen", language="de").voice == "espeak-de"
    assert catalog.resolve("anna", language="es").language == "es"
    assert catalog.resolve("ivy", language="de").voice == "espeak-de"  # German speaks German, robotic but German


@pytest.mark.parametrize("voice_id", ["nova", "alloy", "shimmer", "ivy2", "anna-uk", "jürgen"])
def test_ids_neither_hosted_nor_local_are_refused(catalog: VoiceCatalog, voice_id: str) -> None:
    with pytest.raises(UnknownVoiceError, match="unknown voice"):
        catalog.resolve(voice_id)


def test_catalog_json_lists_every_hosted_id_with_its_mapping(catalog: VoiceCatalog) -> None:
    entries = catalog.catalog_json()
    aliases = {e["id"]: e for e in entries if e["kind"] == "alias"}
    local = {e["id"] for e in entries if e["kind"] == "voice"}
    assert set(HOSTED) <= set(aliases)
    for voice_id, (tag, gender) in HOSTED.items():
        entry = aliases[voice_id]
        resolved = catalog.resolve(voice_id)
        assert entry["maps_to"] == resolved.voice and entry["maps_to"] in local
        assert entry["language"] == resolved.language
        assert entry["hosted_language"] == tag and entry["hosted_gender"] == gender
        assert entry["match"] in ("exact", "other-accent", "on-request", "fallback")
        assert entry["exact_language"] is (entry["match"] != "fallback")
        assert isinstance(entry["same_gender"], bool) and entry["note"]
        if tag.startswith("en") or speakers_of(catalog, primary(tag)):
            assert entry["exact_language"] is True, voice_id
        else:
            assert entry["match"] == "fallback" and primary(str(entry["language"])) == "en", voice_id
    assert aliases["arjun"]["match"] == "on-request"
    assert {v for v, e in aliases.items() if e["match"] == "fallback"} == {"dmitri", "ethan", "mei", "mina", "joon"}


class FakeTTS:
    def __init__(self, voices: Sequence[VoiceInfo]) -> None:
        self.sample_rate = 16_000
        self._voices = tuple(voices)

    def voices(self) -> Sequence[VoiceInfo]:
        return self._voices

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        return np.zeros(160, dtype=np.float32)


def test_with_only_other_engines_every_hosted_id_still_resolves() -> None:
    catalog = VoiceCatalog(
        [
            FakeTTS(
                [
                    VoiceInfo("tone", "fake", "en-US", "male", "fake"),
                    VoiceInfo("bell", "fake", "en-US", "female", "fake"),
                    VoiceInfo("cloche", "fake", "fr-FR", "female", "fake", ("fr",)),
                ]
            )
        ],
        default_voice="tone",
    )
    for voice_id, (tag, gender) in HOSTED.items():
        resolved = catalog.resolve(voice_id)
        if primary(tag) == "fr":
            assert (resolved.voice, resolved.language) == ("cloche", "fr")
        elif gender == F:
            assert resolved.voice == "bell", voice_id
        else:
            assert resolved.voice == "tone", voice_id
    with pytest.raises(UnknownVoiceError):
        catalog.resolve("nova")


def test_a_configured_voice_named_like_a_hosted_id_is_meant_literally() -> None:
    remote = FakeTTS([VoiceInfo("james", "openai", "en-US", "male", "remote")])
    catalog = VoiceCatalog([remote, PiperTTS(threads=1)], default_voice="anna")
    assert catalog.resolve("James").backend is remote
    assert catalog.resolve(None).requested == "anna"  # the default may be a hosted ID
    assert next(e for e in catalog.catalog_json() if e["id"] == "james")["kind"] == "voice"


class Recording(EspeakTTS):
    """The real espeak-ng backend, keeping the text it was asked to say."""

    def __init__(self) -> None:
        super().__init__()
        self.said: list[tuple[str, str]] = []

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        self.said.append((text, language))
        return super().synthesize(text, voice=voice, language=language)


async def test_a_reply_is_normalised_in_the_language_its_voice_speaks() -> None:
    """A Spanish session hears "10:30" and "$42.50" in Spanish, not "ten thirty" and "forty-two dollars"."""
    backend = Recording()
    catalog = VoiceCatalog([backend], default_voice="espeak-en")
    spanish = catalog.resolve("lucia", language="es")
    audio, _ = await catalog.synthesize("Su cita es a las 10:30 y cuesta $42.50.", spanish)
    assert audio.size > 0
    text, language = backend.said[-1]
    assert language == "es" and "thirty" not in text and "dollars" not in text, text
    assert "10" in text and "dólares" in text, text
    english = catalog.resolve("ivy")
    await catalog.synthesize("Your appointment is at 10:30.", english)
    assert "ten thirty" in backend.said[-1][0], backend.said[-1]


@v1
def test_the_fast_lead_is_hibari_for_af_heart_in_english_only() -> None:
    from voxgate.backends.tts.hibari_voice import HibariTTS, available

    if not available():
        pytest.skip("hibari-tts not installed")
    backends = [PiperTTS(threads=1), KokoroTTS(), HibariTTS(), EspeakTTS()]
    catalog = VoiceCatalog(backends, fast_first_clause=True)
    ivy = catalog.resolve("ivy")
    assert ivy.voice == "af_heart" and ivy.lead is not None
    assert (ivy.lead.voice, ivy.lead.language, ivy.lead.requested) == ("hibari-heart", "en", "ivy")
    assert ivy.for_clause(first=True) is ivy.lead and ivy.for_clause(first=False) is ivy
    assert catalog.resolve("af_heart").lead is not None
    assert catalog.resolve("ivy", language="es").lead is None  # a Spanish session: ef_dora, no lead
    for other in ("anna", "james", "bella", "joe"):  # other speakers (UK anna too): no lead
        assert catalog.resolve(other).lead is None, other
    entries = {e["id"]: e for e in catalog.catalog_json()}
    assert entries["ivy"]["first_clause_voice"] == "hibari-heart" and entries["anna"]["first_clause_voice"] is None
    off = VoiceCatalog(backends)
    assert off.resolve("ivy").lead is None and off.catalog_json()[0]["first_clause_voice"] is None
    # a Kokoro voice without a fast lead is slow to start (its first clause is cut short); with one, not
    assert catalog.resolve("anna").slow_start and off.resolve("ivy").slow_start
    assert not ivy.slow_start and not catalog.resolve("joe").slow_start
    assert not catalog.resolve("hibari-heart").slow_start and not catalog.resolve("espeak-de").slow_start
