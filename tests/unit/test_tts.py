"""The three TTS engines, the text cleaner and the voice catalog.

Synthesis tests check the signal (rate, type, length, loudness, range) rather than the words; the
round trip through STT belongs with the end-to-end tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from voxgate.backends.base import Audio, TextToSpeech, VoiceInfo
from voxgate.backends.tts.espeak_voice import EspeakMissingError, EspeakTTS
from voxgate.backends.tts.kokoro_voice import KokoroTTS, kokoro_lang
from voxgate.backends.tts.piper_voice import PiperTTS
from voxgate.backends.tts.text import speakable
from voxgate.backends.voices import ALIASES, UnknownVoiceError, VoiceCatalog
from voxgate.models import kokoro_voices

SENTENCE = "Hi there, what can I help you with today?"  # 8 words: ~2-3 s of speech


def assert_speech(audio: Audio, rate: int, expected_rate: int, *, min_s: float = 0.8, max_s: float = 6.0) -> None:
    assert rate == expected_rate
    assert isinstance(audio, np.ndarray)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert not np.isnan(audio).any()
    assert min_s <= len(audio) / rate <= max_s, f"{len(audio) / rate:.2f} s"
    assert float(np.abs(audio).max()) <= 1.0
    assert float(np.sqrt(np.mean(audio**2))) > 0.02  # speech, not near-silence


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    return PiperTTS(threads=1)


@pytest.fixture(scope="module")
def espeak() -> EspeakTTS:
    return EspeakTTS()


@pytest.fixture(scope="module")
def kokoro() -> Iterator[KokoroTTS]:
    yield KokoroTTS(threads=1)


# ---------------------------------------------------------------- Piper


def test_piper_speaks_english(piper: PiperTTS) -> None:
    assert_speech(piper.synthesize(SENTENCE, voice="joe"), piper.sample_rate, 22_050)


def test_piper_pauses_between_sentences(piper: PiperTTS) -> None:
    one = piper.synthesize("Hello there.", voice="joe")
    two = piper.synthesize("Hello there. Hello there.", voice="joe")
    assert len(two) > 2 * len(one)  # the sentences are joined with a pause, not butted together


def test_piper_loads_once_under_concurrent_first_use() -> None:
    tts = PiperTTS(threads=1)
    results: list[Audio] = []
    threads = [threading.Thread(target=lambda: results.append(tts.synthesize("Okay.", voice="joe"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(len(a) > 0 for a in results)


def test_piper_rejects_other_voices_and_handles_empty_text(piper: PiperTTS) -> None:
    with pytest.raises(ValueError):
        piper.synthesize(SENTENCE, voice="jf_alpha")
    assert piper.synthesize("   ", voice="joe").size == 0


def test_piper_lists_joe(piper: PiperTTS) -> None:
    [info] = piper.voices()
    assert (info.id, info.engine, info.gender, info.language) == ("joe", "piper", "male", "en-US")
    assert isinstance(piper, TextToSpeech)


# ---------------------------------------------------------------- espeak-ng


def test_espeak_speaks_english(espeak: EspeakTTS) -> None:
    assert_speech(espeak.synthesize(SENTENCE, voice="espeak-en"), espeak.sample_rate, 22_050)


@pytest.mark.parametrize(
    ("voice", "text"),
    [
        ("espeak-es", "Hola, ¿en qué puedo ayudarte hoy?"),
        ("espeak-fr", "Bonjour, comment puis-je vous aider ?"),
        ("espeak-de", "Hallo, wie kann ich Ihnen helfen?"),
    ],
)
def test_espeak_speaks_other_languages(espeak: EspeakTTS, voice: str, text: str) -> None:
    assert_speech(espeak.synthesize(text, voice=voice), espeak.sample_rate, 22_050)


def test_espeak_reads_a_leading_dash_as_text(espeak: EspeakTTS) -> None:
    assert_speech(espeak.synthesize("-v is not an option here", voice="espeak-en"), espeak.sample_rate, 22_050)


def test_espeak_without_binary_lists_nothing_and_says_why() -> None:
    tts = EspeakTTS(binary="no-such-espeak-binary")
    assert tts.voices() == ()
    with pytest.raises(EspeakMissingError, match="apt-get install espeak-ng"):
        tts.synthesize(SENTENCE, voice="espeak-en")


def test_espeak_rejects_unknown_voice(espeak: EspeakTTS) -> None:
    with pytest.raises(ValueError):
        espeak.synthesize(SENTENCE, voice="espeak-xx")


# ---------------------------------------------------------------- Kokoro


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["jf_alpha", "jm_kumo"])
def test_kokoro_speaks_english(kokoro: KokoroTTS, voice: str) -> None:
    assert_speech(kokoro.synthesize(SENTENCE, voice=voice, language="en"), kokoro.sample_rate, 24_000)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("es", "Hola, ¿en qué puedo ayudarte hoy?"),
        ("pt-BR", "Olá, como posso ajudar você hoje?"),
        ("ja", "こんにちは、おげんきですか。"),  # kana only: readable with or without pyopenjtalk-plus
    ],
)
def test_kokoro_speaks_other_languages(kokoro: KokoroTTS, language: str, text: str) -> None:
    assert_speech(kokoro.synthesize(text, voice="jm_kumo", language=language), kokoro.sample_rate, 24_000)


@pytest.mark.slow
def test_kokoro_nothing_to_say(kokoro: KokoroTTS) -> None:
    assert kokoro.synthesize("", voice="jf_alpha").size == 0
    assert kokoro.synthesize("...", voice="jf_alpha").size == 0


def test_kokoro_checks_voice_and_language_before_loading() -> None:
    tts = KokoroTTS(full=False)  # without the v1.0 file: the five Japanese speakers only
    assert {v.id for v in tts.voices()} == {"jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"}
    with pytest.raises(ValueError, match="unknown Kokoro voice"):
        tts.synthesize(SENTENCE, voice="af_heart")
    full = KokoroTTS(full=True)
    assert len(full.voices()) == 46 and not any(v.id.startswith("z") for v in full.voices())
    by_id = {v.id: v for v in full.voices()}
    assert (by_id["bf_emma"].language, by_id["bf_emma"].gender) == ("en-GB", "female")
    assert (by_id["pm_alex"].language, by_id["pm_alex"].gender, by_id["pm_alex"].languages) == (
        "pt-BR",
        "male",
        ("pt",),
    )
    with pytest.raises(ValueError, match="unknown Kokoro voice"):
        full.synthesize(SENTENCE, voice="zf_xiaobei")  # no Chinese text path here
    with pytest.raises(ValueError, match="cannot speak"):
        tts.synthesize(SENTENCE, voice="jf_alpha", language="de")


@pytest.mark.parametrize(
    ("tag", "lang"),
    [
        ("en", "en-us"),
        ("en-GB", "en-gb"),
        ("pt", "pt-br"),
        ("pt_BR", "pt-br"),
        ("es-419", "es-419"),
        ("es-ES", "es"),
        ("fr", "fr-fr"),
    ],
)
def test_kokoro_language_tags(tag: str, lang: str) -> None:
    assert kokoro_lang(tag) == lang


# ---------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("raw", "spoken"),
    [
        ("**Sure!** Here's `the` answer.", "Sure! Here's the answer."),
        ("## Options\n- apples\n- pears 🍐\n1. plums", "Options, apples, pears, plums"),
        ("See https://www.example.com/a/b?c=d for more.", "See example.com for more."),
        ("Read [the guide](https://x.example/guide).", "Read the guide."),
        ("Great job 👍🏽🎉!", "Great job!"),
        ("snake_case and C# and #42", "snake case and C# and forty-two"),
        ("今日は晴れです☀️", "今日は晴れです"),
        ("Hello\u0000 there\x07.\nNext line", "Hello there. Next line"),  # NUL made Piper raise
        ("", ""),
    ],
)
def test_speakable(raw: str, spoken: str) -> None:
    assert speakable(raw) == spoken


# ---------------------------------------------------------------- catalog


class FakeTTS:
    def __init__(self, engine: str, ids: Sequence[str], rate: int = 16_000) -> None:
        self.sample_rate = rate
        self._voices = tuple(VoiceInfo(i, engine, "en-US", "neutral", "fake", ("en", "es")) for i in ids)

    def voices(self) -> Sequence[VoiceInfo]:
        return self._voices

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        return np.zeros(160, dtype=np.float32)


@pytest.fixture(scope="module")
def catalog(piper: PiperTTS, espeak: EspeakTTS) -> VoiceCatalog:
    return VoiceCatalog([piper, KokoroTTS(), espeak])  # Kokoro loads lazily: listing it is free


EXPECTED = {
    "ivy": ("af_heart", "en"),
    "james": ("am_michael", "en"),
    "sophie": ("bf_isabella", "en-GB"),
    "diego": ("em_alex", "es-419"),
    "arjun": ("hm_omega", "en"),
    "pierre": ("ff_siwis", "fr"),
    "ren": ("jm_kumo", "ja"),
}


@pytest.mark.parametrize("alias", sorted(EXPECTED))  # all hosted IDs: tests/unit/test_hosted_voices.py
@pytest.mark.skipif(not kokoro_voices.installed(), reason="Kokoro v1.0 voices not built (scripts/setup.sh)")
def test_every_alias_resolves(catalog: VoiceCatalog, alias: str) -> None:
    resolved = catalog.resolve(alias)
    assert (resolved.voice, resolved.language) == EXPECTED[alias]
    assert resolved.requested == alias
    assert resolved.sample_rate == resolved.backend.sample_rate
    assert resolved.voice in {v.id for v in resolved.backend.voices()}


def test_default_and_local_voices(catalog: VoiceCatalog) -> None:
    assert catalog.default_voice == "joe"
    assert catalog.resolve(None).voice == "joe"
    assert catalog.resolve("JF_Alpha").voice == "jf_alpha"
    assert catalog.resolve("espeak-de").sample_rate == 22_050


def test_unknown_voice_raises(catalog: VoiceCatalog) -> None:
    with pytest.raises(UnknownVoiceError, match="nova"):
        catalog.resolve("nova")
    assert issubclass(UnknownVoiceError, ValueError)
    with pytest.raises(UnknownVoiceError):
        VoiceCatalog([FakeTTS("fake", ["a"])])  # default "joe" is not there


def test_session_language_switches_only_voices_that_speak_it(catalog: VoiceCatalog) -> None:
    assert catalog.resolve("ivy", language="es").language == "es"
    assert catalog.resolve("ivy", language="de").voice == "espeak-de"  # German only from espeak-ng
    assert catalog.resolve("joe", language="es").language == "en"
    assert catalog.resolve("sophie", language="en").language == "en-GB"  # same language keeps the accent


def test_catalog_json_fields(catalog: VoiceCatalog) -> None:
    entries = catalog.catalog_json()
    voices = [e for e in entries if e["kind"] == "voice"]
    aliases = [e for e in entries if e["kind"] == "alias"]
    assert {"joe", "jf_alpha", "jm_kumo", "espeak-en", "espeak-fr"} <= {e["id"] for e in voices}
    assert {a.id for a in ALIASES} == {e["id"] for e in aliases}
    for e in voices:
        assert {"id", "engine", "language", "gender", "description", "languages", "quality"} <= e.keys()
        assert e["quality"] and e["languages"]
    for e in aliases:
        assert {"id", "maps_to", "language", "note"} <= e.keys()
        assert e["note"]
    assert next(e for e in entries if e["id"] == "joe")["default"] is True


def test_aliases_fall_back_without_kokoro() -> None:
    catalog = VoiceCatalog([FakeTTS("piper", ["joe"]), FakeTTS("espeak", ["espeak-es-419", "espeak-fr"])])
    assert catalog.resolve("ivy").voice == "joe"
    assert catalog.resolve("diego").voice == "espeak-es-419"
    assert catalog.resolve("pierre").voice == "espeak-fr"
    assert catalog.resolve("ren").voice == "joe"  # no Japanese voice at all: a hosted ID is never refused


@pytest.mark.slow
def test_hibari_clauses_carry_no_silence_around_them() -> None:
    """hibari pads each clause with ~0.3 s of silence before and ~0.5 s after; the backend trims it."""
    from voxgate.backends.tts.hibari_voice import HibariTTS, available, trim_silence

    if not available():
        pytest.skip("hibari-tts not installed")
    audio = HibariTTS().synthesize("Sure, I can help with that.")
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    assert loud.size and loud[0] / 24_000 < 0.06 and (audio.size - loud[-1]) / 24_000 < 0.12
    assert 0.8 < audio.size / 24_000 < 1.8
    padded = np.concatenate([np.zeros(12_000, np.float32), audio, np.zeros(12_000, np.float32)])
    assert abs(trim_silence(padded).size - trim_silence(audio).size) <= 240


def test_trim_silence_keeps_the_speech_and_a_margin() -> None:
    from voxgate.backends.tts.hibari_voice import trim_silence

    rate = 24_000
    speech = (0.3 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)).astype(np.float32)
    padded = np.concatenate([np.zeros(rate // 2, np.float32), speech, np.zeros(rate, np.float32)])
    trimmed = trim_silence(padded)
    assert rate <= trimmed.size <= rate + 0.09 * rate + 480  # 30 ms before, 60 ms after (frame-rounded)
    assert np.flatnonzero(np.abs(trimmed) > 0.01)[0] <= 0.031 * rate
    assert trim_silence(np.zeros(4800, np.float32)).size == 0
    assert trim_silence(np.zeros(0, np.float32)).size == 0
