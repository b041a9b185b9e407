"""Pack hints: which pack terms a transcript may have misheard, so the turn is decoded again listing them."""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.text.pack_hints import MAX_HINTS, PackHints
from voxgate.text.packs import load_pack


@pytest.fixture(scope="module")
def hints() -> PackHints:
    return PackHints(load_pack("medical"))


@pytest.mark.parametrize(
    ("heard", "first"),
    [
        ("I ran out of top ramen yesterday.", "topiramate"),  # Kokoro jf_tebukuro, read by Whisper base
        ("I take Gabbe Penton every morning.", "gabapentin"),
        ("My doctor prescribed Dichlofnak last week.", "diclofenac"),
        ("Is it safe to take peogletas on with food?", "pioglitazone"),
    ],
)
def test_a_far_miss_of_a_pack_term_asks_for_it(hints: PackHints, heard: str, first: str) -> None:
    assert hints.for_text(heard)[0] == first


@pytest.mark.parametrize(
    "text",
    [
        "My doctor prescribed Levaquin last week.",  # already right: its look-alikes are not listed
        "I take Valtrex and metformin.",
        "What is the capital city of France?",
        "Call me back on 617-555-0199",  # a run of everyday words must be very close to ask ("baclofen")
        "I'd like to book a table for four people tomorrow evening.",
        "",
    ],
)
def test_ordinary_or_settled_speech_asks_for_nothing(hints: PackHints, text: str) -> None:
    assert hints.for_text(text) == []


def test_hints_are_few_and_never_already_written(hints: PackHints) -> None:
    text = "I take top ramen, Gabbe Penton, Dichlofnak and peogletas on, and also metformin."
    got = hints.for_text(text)
    assert 0 < len(got) <= MAX_HINTS and "metformin" not in got


@pytest.mark.slow
def test_a_second_decode_with_hints_hears_medication_names_correction_alone_misses() -> None:
    """Real voices, real Whisper base, the engine's own final-turn path: with hints the names come out."""
    import asyncio

    import onnxruntime

    from voxgate.audio.resample import resample
    from voxgate.backends.recognition import Recognizer
    from voxgate.backends.registry import Models
    from voxgate.backends.tts.kokoro_voice import KokoroTTS
    from voxgate.config import Settings

    onnxruntime.set_seed(1)  # Kokoro samples noise in its graph: the same take every run
    kokoro = KokoroTTS()
    said = [
        ("doxycycline", "My doctor prescribed doxycycline last week.", "jf_alpha"),
        ("topiramate", "I ran out of topiramate yesterday.", "jf_tebukuro"),
        ("gabapentin", "I take gabapentin every morning.", "jm_kumo"),
    ]
    audio = [
        np.concatenate(
            [np.zeros(4800, np.float32), resample(kokoro.synthesize(text, voice=v), kokoro.sample_rate, 16_000)]
        )
        for _, text, v in said
    ]

    async def heard(hinted: bool) -> int:
        engine = Recognizer(Models(Settings(term_packs=["medical"], term_pack_hints=hinted, preload=False)))
        found = 0
        for (term, _, _), clip in zip(said, audio, strict=True):
            raw = await engine.transcribe(clip, language="en", keyterms=(), purpose="final")
            found += term in engine.finish_transcript(raw, language="en", keyterms=()).lower()
        return found

    with_hints, correction_only = asyncio.run(heard(True)), asyncio.run(heard(False))
    assert with_hints >= 2 and with_hints > correction_only
