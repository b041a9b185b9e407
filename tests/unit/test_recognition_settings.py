"""The session's recognition settings (protocol §4.2): language_codes, transcription_prompt, transcription_mode.

Fast tests use stand-in models; the `slow` ones decode real speech with the embedded Whisper models:
a LibriVox recording (pocketsphinx-testdata) and sentences made here by Piper (English) and Kokoro
(Spanish), with a fixed seed so every run hears the same take.
"""

from __future__ import annotations

import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxgate.backends.base import Audio, STTCapabilities
from voxgate.backends.recognition import (
    FINAL_DECODES,
    Recognizer,
    decode_for,
    language_codes,
    stt_options,
)
from voxgate.backends.registry import Models
from voxgate.config import Settings

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SPEECH = np.zeros(16_000, dtype=np.float32)  # long enough to be decoded; the stand-ins never listen


# ---------------------------------------------------------------- stand-ins


class RecordingSTT:
    """Records every call's keyword arguments; `old_style` takes only the arguments of before."""

    def __init__(self, name: str, *, old_style: bool = False) -> None:
        self.name = name
        self.capabilities = STTCapabilities(keyterms=True, languages=("en", "es"))
        self.calls: list[dict[str, Any]] = []
        self._old_style = old_style

    def transcribe(self, audio: Audio, **kwargs: Any) -> str:
        if self._old_style and set(kwargs) - {"language", "keyterms", "quick"}:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        self.calls.append(kwargs)
        return f"heard by {self.name}"


class AlwaysHint:
    def for_text(self, text: str) -> list[str]:
        return ["Voxgate"]


def recognizer(*, old_style: bool = False, pack_hints: object = None) -> tuple[Recognizer, RecordingSTT, RecordingSTT]:
    base, tiny = RecordingSTT("base", old_style=old_style), RecordingSTT("tiny.en", old_style=old_style)
    models = Models(Settings(stt_model="base", stt_partial_model="tiny.en"), stt={"base": base, "tiny.en": tiny})
    models.__dict__["pack_terms"] = ()
    models.__dict__["pack_hints"] = pack_hints
    return Recognizer(models), base, tiny


# ---------------------------------------------------------------- mode → decode


def test_only_the_final_decode_follows_the_mode() -> None:
    from voxgate.backends.stt.whisper import QUICK, SEARCHES, search_for

    configured = SEARCHES["fast"]
    beams = {mode: search_for(d.quick, d.decoding, configured) for mode, d in FINAL_DECODES.items()}
    assert beams["balanced"] is configured  # today's: whatever stt_decoding says
    assert beams["min_latency"] is QUICK and QUICK.beam_size == 1 and QUICK.window_min_s == 10
    assert beams["max_accuracy"] is SEARCHES["accurate"] and SEARCHES["accurate"].beam_size == 5
    assert search_for(False, None, SEARCHES["accurate"]) is SEARCHES["accurate"]  # balanced on an accurate server
    for mode in (*FINAL_DECODES, "nonsense"):
        assert decode_for("partial", mode).quick and decode_for("check", mode).quick
        assert decode_for("partial", mode).decoding is None
    assert decode_for("final", "nonsense") == FINAL_DECODES["balanced"]


async def test_modes_reach_the_backend_and_min_latency_skips_the_second_decode() -> None:
    rec, base, _ = recognizer(pack_hints=AlwaysHint())
    await rec.transcribe(SPEECH, language="en", keyterms=(), purpose="final", mode="max_accuracy")
    assert [c["decoding"] for c in base.calls] == ["accurate", "accurate"]  # the packs' second decode too
    assert not any(c.get("quick") for c in base.calls)
    base.calls.clear()
    await rec.transcribe(SPEECH, language="en", keyterms=(), purpose="final", mode="min_latency")
    assert len(base.calls) == 1 and base.calls[0]["quick"] and "decoding" not in base.calls[0]
    base.calls.clear()
    await rec.transcribe(SPEECH, language="en", keyterms=(), purpose="final")  # balanced
    assert len(base.calls) == 2 and not base.calls[0]["quick"] and "decoding" not in base.calls[0]
    base.calls.clear()
    await rec.transcribe(SPEECH, language="en", keyterms=(), purpose="check", mode="max_accuracy")
    assert len(base.calls) == 1 and base.calls[0]["quick"] and "decoding" not in base.calls[0]


# ---------------------------------------------------------------- languages and prompt, routing


def test_language_codes_are_compared_by_their_primary_subtag() -> None:
    assert language_codes(["EN", "pt-BR", "es_419", " ", "en", "xx"]) == ("en", "pt", "es", "xx")
    assert language_codes(()) == ()


def test_stt_options_pass_only_what_is_set() -> None:
    assert stt_options("en", (), None, None) == {"language": "en"}  # as before these settings
    assert stt_options(None, (), "  ", None) == {"language": None}
    assert stt_options("en", ("ES",), "Menu: quinoa.", "accurate") == {
        "language": None,  # language_codes win over the older single field
        "languages": ("es",),
        "prompt": "Menu: quinoa.",
        "decoding": "accurate",
    }


@pytest.mark.parametrize(
    ("language", "languages", "model"),
    [
        ("en", (), "tiny.en"),
        (None, (), "tiny.en"),  # the server's "auto", as before
        ("es", (), "base"),
        ("es", ("en",), "tiny.en"),  # language_codes win
        (None, ("en",), "tiny.en"),
        (None, ("es",), "base"),
        (None, ("en", "es"), "base"),  # detecting needs the multilingual model
        (None, ("xx",), "base"),  # unknown: detection, which tiny.en cannot do
    ],
)
async def test_partials_leave_the_english_only_model_for_any_other_language(
    language: str | None, languages: tuple[str, ...], model: str
) -> None:
    rec, base, tiny = recognizer()
    await rec.transcribe(SPEECH, language=language, keyterms=(), purpose="partial", languages=languages)
    used, unused = (base, tiny) if model == "base" else (tiny, base)
    assert len(used.calls) == 1 and not unused.calls
    assert used.calls[0]["quick"]


async def test_the_prompt_and_codes_go_to_partials_and_finals_but_no_prompt_to_checks() -> None:
    rec, base, _ = recognizer()
    for purpose in ("partial", "final", "check"):
        await rec.transcribe(
            SPEECH, language="en", keyterms=["Voxgate"], purpose=purpose, languages=("en", "es"), prompt="A call."
        )
    assert [c.get("prompt") for c in base.calls] == ["A call.", "A call.", None]
    assert all(c["language"] is None and c["languages"] == ("en", "es") for c in base.calls)
    assert all(c["keyterms"] == ["Voxgate"] for c in base.calls)


async def test_a_backend_of_before_still_serves_a_session_without_the_settings() -> None:
    rec, _, _ = recognizer(old_style=True)
    assert await rec.transcribe(SPEECH, language="en", keyterms=(), purpose="final") == "heard by base"
    assert await rec.transcribe(SPEECH, language="en", keyterms=(), purpose="final", mode="min_latency")


def test_language_choice() -> None:
    from voxgate.backends.stt.whisper import choose_language, most_probable

    many = ("en", "es", "fr", "tr")
    assert choose_language("es", (), many) == ("es", ())
    assert choose_language(None, ("es",), many) == ("es", ())
    assert choose_language(None, ("en", "es"), many) == (None, ("en", "es"))
    assert choose_language(None, ("en", "xx", "es", "en"), many) == (None, ("en", "es"))  # unknown dropped
    assert choose_language(None, ("en", "xx"), many) == ("en", ())
    assert choose_language(None, ("xx",), many) == (None, ())  # nothing known: detect freely
    assert choose_language("xx", (), many) == (None, ())
    assert choose_language(None, (), many) == (None, ())
    # An English-only model cannot detect: it decodes English, whatever was asked.
    assert choose_language(None, ("es",), ("en",)) == ("en", ())
    assert choose_language(None, ("en", "es"), ("en",)) == ("en", ())
    assert choose_language("tr", (), ("en",)) == ("en", ())
    probabilities = [("it", 0.6), ("es", 0.3), ("en", 0.1)]
    assert most_probable(probabilities, ()) == "it"
    assert most_probable(probabilities, ("en", "es")) == "es"
    assert most_probable(probabilities, ("en", "de")) == "en"  # a code Whisper gave no probability ranks last


def test_openai_stt_sends_the_prompt_before_the_keyterms_and_one_language() -> None:
    import httpx2

    from voxgate.backends.stt.openai_stt import OpenAITranscriptionSTT, request_prompt

    assert request_prompt(None, ()) == ""
    assert request_prompt(" A call about the menu. ", ["quinoa", "Voxgate"]) == "A call about the menu. quinoa, Voxgate"
    assert request_prompt(None, ["quinoa"]) == "quinoa"

    sent: list[bytes] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        sent.append(body)
        if b'name="language"\r\n\r\nxx\r\n' in body:
            return httpx2.Response(400, json={"error": {"message": "unsupported language", "type": "invalid"}})
        return httpx2.Response(200, json={"text": "hola"})

    client = httpx2.Client(transport=httpx2.MockTransport(answer))
    stt = OpenAITranscriptionSTT(model="whisper-1", base_url="http://stt.test/v1", api_key="k", http_client=client)
    assert stt.transcribe(SPEECH, language=None, languages=("es",), prompt="Menú.", decoding="accurate") == "hola"
    assert b'name="language"\r\n\r\nes\r\n' in sent[-1] and "Menú.".encode() in sent[-1]
    stt.transcribe(SPEECH, language=None, languages=("en", "es"))
    assert b'name="language"' not in sent[-1] and b'name="prompt"' not in sent[-1]  # several: the server detects
    sent.clear()
    assert stt.transcribe(SPEECH, language=None, languages=("xx",)) == "hola"  # refused: asked again, to detect
    assert len(sent) == 2 and b'name="language"' not in sent[1]


# ---------------------------------------------------------------- real models (slow)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def speak(tts: Any, text: str, *, voice: str, language: str = "en", seed: int = 1) -> np.ndarray:
    import onnxruntime

    from voxgate.audio.resample import resample
    from voxgate.backends.tts.text import speakable

    onnxruntime.set_seed(seed)  # Piper and Kokoro sample noise: the same take every run
    return resample(tts.synthesize(speakable(text), voice=voice, language=language), tts.sample_rate, 16_000)


@pytest.fixture(scope="module")
def models() -> Models:
    real = Models(Settings(stt_model="base", stt_partial_model="tiny.en", stt_language="en", term_packs=[]))
    real.stt("base")
    return real


@pytest.fixture(scope="module")
def spanish() -> np.ndarray:
    from voxgate.backends.tts.kokoro_voice import KokoroTTS

    # Kokoro jm_kumo with Latin American phonemes: the voice behind the "diego" alias.
    return speak(
        KokoroTTS(),
        "Hola, quisiera reservar una mesa para cuatro personas esta noche.",
        voice="jm_kumo",
        language="es-419",
    )


@pytest.fixture(scope="module")
def english() -> np.ndarray:
    return read_wav(
        LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0880.wav"
    )  # "he was not an ill disposed young man"


def spy(stt: Any, method: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Record the calls to one method of the faster-whisper model inside `stt` (they still run)."""
    model = stt._model
    real = getattr(model, method)
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    setattr(model, method, recording)
    return calls


def unspy(stt: Any, method: str) -> None:
    vars(stt._model).pop(method, None)


def timed(label: str, started: float) -> None:
    print(f"{label}: {time.monotonic() - started:.2f} s")


@pytest.mark.slow
async def test_a_prompt_primes_an_unusual_spelling(models: Models) -> None:
    from voxgate.backends.tts.piper_voice import PiperTTS

    audio = speak(PiperTTS(), "I would like to order the quinoa salad.", voice="joe")
    stt = models.stt("base")
    rec = Recognizer(models)
    plain = await rec.transcribe(audio, language="en", keyterms=(), purpose="final")
    calls = spy(stt, "generate_with_fallback")
    try:
        started = time.monotonic()
        primed = await rec.transcribe(
            audio, language="en", keyterms=["salad"], purpose="final", prompt="Menu: quinoa salad, couscous."
        )
        timed("decode with a prompt", started)
    finally:
        unspy(stt, "generate_with_fallback")
    # Whisper base writes "Kunoa" (or "Kanoa") in every take tried; the menu in the prompt spells it.
    assert "quinoa" not in plain.lower(), plain
    assert primed == "I would like to order the quinoa salad.", primed
    (_encoded, prompt, tokenizer, options), _ = calls[0]
    context = tokenizer.decode(options.initial_prompt)
    assert context.strip() == "Menu: quinoa salad, couscous." and "salad" in options.hotwords
    assert tokenizer.decode(prompt).startswith(" salad Menu: quinoa")  # the keyterms, then the prompt


@pytest.mark.slow
async def test_language_codes_on_spanish_speech(models: Models, spanish: np.ndarray, english: np.ndarray) -> None:
    rec = Recognizer(models)
    started = time.monotonic()
    forced = await rec.transcribe(spanish, language="en", keyterms=(), purpose="final", languages=("es",))
    timed("Spanish, forced", started)
    started = time.monotonic()
    detected = await rec.transcribe(spanish, language="en", keyterms=(), purpose="final", languages=("en", "es"))
    timed("Spanish, detected among en/es", started)
    for text in (forced, detected):
        assert {"mesa", "personas", "noche"} <= set(text.lower().replace(",", "").replace(".", "").split()), text
    heard = await rec.transcribe(english, language=None, keyterms=(), purpose="final", languages=("en", "es"))
    assert "disposed young man" in heard.lower(), heard  # English among en/es


@pytest.mark.slow
async def test_max_accuracy_searches_with_a_beam_and_min_latency_greedily(models: Models, english: np.ndarray) -> None:
    stt = models.stt("base")
    rec = Recognizer(models)
    calls = spy(stt, "generate_with_fallback")
    try:
        started = time.monotonic()
        accurate = await rec.transcribe(english, language="en", keyterms=(), purpose="final", mode="max_accuracy")
        timed("max_accuracy", started)
        started = time.monotonic()
        quick = await rec.transcribe(english, language="en", keyterms=(), purpose="final", mode="min_latency")
        timed("min_latency", started)
    finally:
        unspy(stt, "generate_with_fallback")
    assert [args[3].beam_size for args, _ in calls] == [5, 1]
    assert [args[0].shape[1] for args, _ in calls] == [1000, 500]  # encoder frames: 20 s and 10 s windows
    for text in (accurate, quick):
        assert "he was not an ill-disposed young man" in text.lower(), text


@pytest.mark.slow
def test_codes_a_model_cannot_handle_fall_back_without_an_error(models: Models, english: np.ndarray) -> None:
    base = models.stt("base")
    tiny = models.stt("tiny.en")
    started = time.monotonic()
    assert "young man" in base.transcribe(english, language=None, languages=("xx",)).lower()  # detected
    timed("unknown code on base", started)
    assert "young man" in base.transcribe(english, language="xx").lower()
    started = time.monotonic()
    assert "young man" in tiny.transcribe(english, language=None, languages=("tr",)).lower()  # English-only
    timed("Turkish asked of tiny.en", started)
