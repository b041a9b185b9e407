"""`voxgate bench terms`: does the medical pack make Voxgate hear medication names?

42 sentences a patient might say, each with one medication from the bundled medical pack, spoken by
every local voice in turn (the same voices and cache as `voxgate bench accuracy`). Each is decoded
in-process the way the server decodes a final turn (`Recognizer.transcribe` then `finish_transcript`)
three ways: no pack, the pack as correction only (`term_pack_hints=false`), and the pack with hints
(a second decode listing the near terms, the default). It prints how many names come out spelled as
in the pack, and on how many ordinary turns (the real recordings and the entity set, none naming a
medication) the hints cost a second decode. With `--url`, the sentences also go through a running
server, which shows what that server, as configured, hears.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxgate.audio.resample import resample
from voxgate.bench.accuracy import LOCAL_VOICES, RATE, Voices, real_recordings, transcribe_via_server
from voxgate.bench.entity_set import entity_set

if TYPE_CHECKING:
    from voxgate.backends.recognition import Recognizer

MEDICAL_SET: tuple[tuple[str, str], ...] = (
    ("meloxicam", "I take meloxicam every morning."),
    ("doxycycline", "My doctor prescribed doxycycline last week."),
    ("omeprazole", "Can I get a refill of my omeprazole?"),
    ("Lexapro", "I'm allergic to Lexapro."),
    ("aripiprazole", "Is it safe to take aripiprazole with food?"),
    ("bisoprolol", "I ran out of bisoprolol yesterday."),
    ("warfarin", "I take warfarin every morning."),
    ("cephalexin", "My doctor prescribed cephalexin last week."),
    ("morphine", "Can I get a refill of my morphine?"),
    ("Cipro", "I'm allergic to Cipro."),
    ("atorvastatin", "Is it safe to take atorvastatin with food?"),
    ("topiramate", "I ran out of topiramate yesterday."),
    ("gabapentin", "I take gabapentin every morning."),
    ("amoxicillin", "My doctor prescribed amoxicillin last week."),
    ("carvedilol", "Can I get a refill of my carvedilol?"),
    ("pregabalin", "I'm allergic to pregabalin."),
    ("pioglitazone", "Is it safe to take pioglitazone with food?"),
    ("benazepril", "I ran out of benazepril yesterday."),
    ("hydroxychloroquine", "I take hydroxychloroquine every morning."),
    ("cefdinir", "My doctor prescribed cefdinir last week."),
    ("Ambien", "Can I get a refill of my Ambien?"),
    ("potassium chloride", "I'm allergic to potassium chloride."),
    ("azithromycin", "Is it safe to take azithromycin with food?"),
    ("Augmentin", "I ran out of Augmentin yesterday."),
    ("cyclobenzaprine", "I take cyclobenzaprine every morning."),
    ("glyburide", "My doctor prescribed glyburide last week."),
    ("Keflex", "Can I get a refill of my Keflex?"),
    ("Jardiance", "I'm allergic to Jardiance."),
    ("Valtrex", "Is it safe to take Valtrex with food?"),
    ("Neurontin", "I ran out of Neurontin yesterday."),
    ("Celebrex", "I take Celebrex every morning."),
    ("Levaquin", "My doctor prescribed Levaquin last week."),
    ("Zocor", "Can I get a refill of my Zocor?"),
    ("Xarelto", "I'm allergic to Xarelto."),
    ("glipizide", "Is it safe to take glipizide with food?"),
    ("apixaban", "I ran out of apixaban yesterday."),
    ("Amoxil", "I take Amoxil every morning."),
    ("diclofenac", "My doctor prescribed diclofenac last week."),
    ("linagliptin", "Can I get a refill of my linagliptin?"),
    ("Prilosec", "I'm allergic to Prilosec."),
    ("diltiazem", "Is it safe to take diltiazem with food?"),
    ("zolpidem", "I ran out of zolpidem yesterday."),
)


@dataclass(frozen=True)
class Spoken:
    id: str
    voice: str
    audio24k: np.ndarray
    term: str | None  # the medication said, if any


def medical_items(voices: Voices, first: int | None = None) -> list[Spoken]:
    """The medical set spoken (`first`: only its first sentences, as a test takes them)."""
    out = []
    for n, (term, text) in enumerate(MEDICAL_SET[:first]):
        voice, key = LOCAL_VOICES[n % len(LOCAL_VOICES)], f"med{n:02d}"
        out.append(Spoken(key, voice, voices.speak(text, voice, key), term))
    return out


def ordinary_items(voices: Voices, pack: list[str]) -> list[Spoken]:
    """Turns that name no medication: the real recordings and the entity set (items naming one left out)."""
    lowered = [t.lower() for t in pack]
    out = [Spoken(r.id, "real", resample(r.audio, 16_000, RATE), None) for r in real_recordings()]
    for n, item in enumerate(entity_set()):
        if not any(t in item.reference.lower() for t in lowered):
            voice = LOCAL_VOICES[n % len(LOCAL_VOICES)]
            out.append(Spoken(item.id, voice, voices.speak(item.spoken, voice, item.id), None))
    return out


def heard(term: str, text: str) -> bool:
    return term.lower() in text.lower()


def _recognizer(packs: list[str], hints: bool) -> Recognizer:
    from voxgate.backends.recognition import Recognizer
    from voxgate.backends.registry import Models
    from voxgate.config import Settings

    return Recognizer(Models(Settings(term_packs=packs, term_pack_hints=hints, preload=False)))


async def _decode_in_process(items: list[Spoken], recognizer: Recognizer) -> tuple[list[str], list[str], float]:
    """Each item as the server decodes a final turn: (raw transcripts, finished ones, seconds per turn)."""
    raw: list[str] = []
    start = time.perf_counter()
    for item in items:
        audio = resample(item.audio24k, RATE, 16_000)
        raw.append(await recognizer.transcribe(audio, language="en", keyterms=(), purpose="final"))
    seconds = (time.perf_counter() - start) / max(len(items), 1)
    return raw, [recognizer.finish_transcript(t, language="en", keyterms=()) for t in raw], seconds


async def run(args: argparse.Namespace) -> int:
    from voxgate.text.packs import load_pack

    pack = load_pack("medical")
    voices = Voices(Path(args.cache))
    print(f"== the medical set: {len(MEDICAL_SET)} sentences, voices {', '.join(LOCAL_VOICES)} in turn", flush=True)
    medical = medical_items(voices)
    no_pack, hinting = _recognizer([], False), _recognizer(["medical"], True)
    rows: list[tuple[str, list[str], float | None]] = []
    for label, recognizer in (
        ("no pack", no_pack),
        ("pack: correction only", _recognizer(["medical"], False)),
        ("pack: hints + correction", hinting),
    ):
        _raw, texts, per_turn = await _decode_in_process(medical, recognizer)
        rows.append((label, texts, per_turn))
        print(f"  decoded: {label}", flush=True)
    if args.url:
        texts = [
            await transcribe_via_server(
                args.url, args.api_key, s.audio24k, encoding="audio/pcm", keyterms=(), speed=4.0
            )
            for s in medical
        ]
        rows.append(("server at --url", texts, None))
    for n, item in enumerate(medical):
        said = " | ".join(repr(r[1][n]) for r in rows)
        print(f"  {item.id} {item.term:>18} ({item.voice}): {said}")
    ordinary = ordinary_items(voices, pack)
    plain, _, _ = await _decode_in_process(ordinary, no_pack)
    second = [(s, t, hinting.pack_terms_maybe_in(t, ())) for s, t in zip(ordinary, plain, strict=True)]
    triggered = [(s, t, h) for s, t, h in second if h]
    print()
    print(f"Medication names heard as spelled in the pack ({len(medical)} sentences, one name each):")
    for label, texts, seconds in rows:
        found = sum(heard(s.term or "", t) for s, t in zip(medical, texts, strict=True))
        cost = "" if seconds is None else f"   {seconds:.2f} s per turn in-process"
        print(f"  {label:<26} {found:>3}/{len(medical)} = {found / len(medical):.0%}{cost}")
    share = len(triggered) / max(len(ordinary), 1)
    print(f"Ordinary turns (no medication) that the hints decode twice: {len(triggered)}/{len(ordinary)} = {share:.0%}")
    for s, t, h in triggered[: args.show]:
        print(f"    {s.id}: {t!r} -> {h}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="also run the set through this server (ws://.../v1/ws)")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--show", type=int, default=10, help="how many ordinary turns with hints to list")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "voxgate" / "bench-accuracy"))


def main(args: argparse.Namespace) -> int:
    return asyncio.run(run(args))
