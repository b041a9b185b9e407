"""Pack hints: which pack terms a transcript may have misheard, so the turn is decoded again listing them."""

from __future__ import annotations

from pathlib import Path

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
def test_a_second_decode_with_hints_hears_medication_names_correction_alone_misses(tmp_path: Path) -> None:
    """Real voices, real Whisper base, the engine's own final-turn path, on the first 14 sentences of
    `voxgate bench terms` (each of its seven voices twice). One take per name is a coin toss (a test of
    three names failed CI on a machine where two takes came out a little off); over the bench's 42 the
    hints hear 28-29 names against correction's 12, and over these 14 they heard 11 against 3 here."""
    import asyncio

    import onnxruntime

    from voxgate.audio.resample import resample
    from voxgate.backends.recognition import Recognizer
    from voxgate.backends.registry import Models
    from voxgate.bench.accuracy import RATE, Voices
    from voxgate.bench.terms import MEDICAL_SET, medical_items
    from voxgate.config import Settings

    onnxruntime.set_seed(1)  # Kokoro samples noise in its graph: the same takes every run on a machine
    items = medical_items(Voices(tmp_path), first=14)
    assert [i.term for i in items] == [term for term, _ in MEDICAL_SET[:14]]
    audio = [resample(item.audio24k, RATE, 16_000) for item in items]

    async def heard(hinted: bool) -> int:
        engine = Recognizer(Models(Settings(term_packs=["medical"], term_pack_hints=hinted, preload=False)))
        found = 0
        for item, clip in zip(items, audio, strict=True):
            raw = await engine.transcribe(clip, language="en", keyterms=(), purpose="final")
            found += str(item.term).lower() in engine.finish_transcript(raw, language="en", keyterms=()).lower()
        return found

    with_hints, correction_only = asyncio.run(heard(True)), asyncio.run(heard(False))
    print(f"medication names heard: {with_hints}/14 with hints, {correction_only}/14 by correction alone")
    assert with_hints >= 7 and with_hints >= correction_only + 4, (with_hints, correction_only)
