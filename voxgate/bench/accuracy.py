"""`voxgate bench accuracy`: what the server hears, measured through a running server over WebSocket.

Four parts, printed as tables:
- WER on the real recordings of Debian's pocketsphinx-testdata, next to plain Whisper base run
  in-process on the same audio (faster-whisper's defaults), so the server's pipeline (VAD cuts,
  resampling, formatting) is compared with the model alone;
- the entity set (voxgate/bench/entity_set.py) spoken by the project's voices and espeak-ng, sent
  at 24 kHz PCM and at telephone quality (8 kHz μ-law): WER and the missed entity rate;
- the keyterm items again with their keyterms listed in `input.keyterms`: keyterm recall;
- the 24 kHz entity items through plain Whisper base in-process plus the server's formatting
  ("plain+format"): the misses that are the model's, next to the server's.

WER uses the Whisper English normalizer (package whisper-normalizer) and jiwer. Audio is streamed
faster than real time (`--speed`): the server's turn logic runs on audio time, not wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import time
import wave
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.audio.codecs import encode
from voxgate.audio.resample import resample
from voxgate.bench.entity_set import EntityItem, entity_found, entity_set

TESTDATA = Path("/usr/share/pocketsphinx/test/data")
LOCAL_VOICES = ("joe", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo", "espeak")
RATE = 24_000


@dataclass(frozen=True)
class Recording:
    id: str
    audio: np.ndarray  # float32 at 16 kHz
    reference: str


@dataclass
class Heard:
    item: EntityItem
    voice: str
    condition: str
    text: str


# ---------------------------------------------------------------- audio


def real_recordings() -> list[Recording]:
    out: list[Recording] = []
    for line in (TESTDATA / "librivox" / "transcription").read_text().splitlines():
        text, name = line.rsplit("(", 1)
        name = name.strip(") ")
        out.append(Recording(name[-4:], _wav16k(TESTDATA / "librivox" / f"{name}.wav"), _strip_tags(text)))
    for line in (TESTDATA / "cards" / "cards.transcription").read_text().splitlines():
        text, name = line.rsplit("(", 1)
        name = name.strip(") ")
        out.append(Recording(f"cards-{name}", _wav16k(TESTDATA / "cards" / f"{name}.wav"), _strip_tags(text)))
    raw = np.frombuffer((TESTDATA / "goforward.raw").read_bytes(), "<i2")
    out.append(Recording("goforward", (raw / 32768).astype(np.float32), "go forward ten meters"))
    return out


def _strip_tags(text: str) -> str:
    return text.replace("<s>", "").replace("</s>", "").strip()


def _wav16k(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        audio = (np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768).astype(np.float32)
        rate = w.getframerate()
    return resample(audio, rate, 16_000)


class Voices:
    """Speech for the entity set, cached on disk so re-runs only pay for the server."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self._piper: Any = None
        self._kokoro: Any = None

    def speak(self, text: str, voice: str, key: str) -> np.ndarray:
        path = self.cache / voice / f"{key}.wav"
        if path.is_file():
            with wave.open(str(path)) as w:
                return (np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768).astype(np.float32)
        audio = self._synthesize(text, voice)
        audio = np.concatenate([np.zeros(int(0.3 * RATE), np.float32), audio]).astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
        return audio

    def _synthesize(self, text: str, voice: str) -> np.ndarray:
        if voice == "espeak":
            import io

            raw = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True)
            with wave.open(io.BytesIO(raw.stdout)) as w:
                audio = (np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768).astype(np.float32)
                return resample(audio, w.getframerate(), RATE)
        if voice == "joe":
            from voxgate.backends.tts.piper_voice import PiperTTS

            self._piper = self._piper or PiperTTS()
            return resample(self._piper.synthesize(text, voice="joe"), self._piper.sample_rate, RATE)
        from voxgate.backends.tts.kokoro_voice import KokoroTTS

        self._kokoro = self._kokoro or KokoroTTS()
        return resample(self._kokoro.synthesize(text, voice=voice, language="en"), self._kokoro.sample_rate, RATE)


# ---------------------------------------------------------------- the server


async def transcribe_via_server(
    url: str, key: str | None, audio24k: np.ndarray, *, encoding: str, keyterms: Sequence[str], speed: float
) -> str:
    """One session: configure, stream the utterance and trailing silence, collect final transcripts."""
    import websockets

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    rate = 8_000 if encoding != "audio/pcm" else RATE
    audio = resample(audio24k, RATE, rate) if rate != RATE else audio24k
    audio = np.concatenate([audio, np.zeros(int(2.0 * rate), np.float32)]).astype(np.float32)
    texts: list[str] = []
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        session: dict[str, Any] = {"input": {"format": {"encoding": encoding}}}
        if keyterms:
            session["input"]["keyterms"] = list(keyterms)
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        while json.loads(await ws.recv())["type"] != "session.ready":
            pass
        chunk = rate // 10
        for i in range(0, len(audio), chunk):
            payload = encode(audio[i : i + chunk], encoding)
            await ws.send(json.dumps({"type": "input.audio", "audio": base64.b64encode(payload).decode()}))
            await asyncio.sleep(0.1 / speed)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            wait = 30.0 if not texts else 0.8  # a turn split in two arrives as two transcripts
            try:
                event = json.loads(await asyncio.wait_for(ws.recv(), timeout=wait))
            except TimeoutError:
                break
            if event["type"] == "transcript.user":
                texts.append(event["text"])
            elif event["type"] == "reply.started":
                break
            elif event["type"] == "session.error":
                raise RuntimeError(event)
    return " ".join(texts)


# ---------------------------------------------------------------- scoring


def _wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    normalize = EnglishTextNormalizer()
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r.strip()]
    return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]))


def _plain_whisper_base(audios: Sequence[np.ndarray]) -> list[str]:
    """faster-whisper's defaults on each whole 16 kHz clip: the model alone, without the server."""
    from faster_whisper import WhisperModel

    from voxgate.backends.stt.whisper import whisper_base_dir

    model = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8", cpu_threads=2)
    out = []
    for audio in audios:
        segments, _ = model.transcribe(audio, language="en")
        out.append(" ".join(s.text.strip() for s in segments))
    return out


def _plain_with_formatting(heard: Sequence[Heard], voices: Voices) -> list[Heard]:
    """The 24 kHz entity items through plain Whisper base and the server's entity formatting: what is
    the model's to miss (the server cannot do better than what the model hears)."""
    from voxgate.text.entities import format_entities

    rows = [h for h in heard if h.condition == "24k"]
    audios = [resample(voices.speak(h.item.spoken, h.voice, h.item.id), RATE, 16_000) for h in rows]
    texts = _plain_whisper_base(audios)
    return [Heard(h.item, h.voice, "plain+format", format_entities(t, "en")) for h, t in zip(rows, texts, strict=True)]


# ---------------------------------------------------------------- the run


async def run(args: argparse.Namespace) -> int:
    url, key, speed = args.url, args.api_key, args.speed
    print("== real recordings (pocketsphinx-testdata)", flush=True)
    recordings = real_recordings()
    server_texts = []
    for rec in recordings:
        text = await transcribe_via_server(
            url, key, resample(rec.audio, 16_000, RATE), encoding="audio/pcm", keyterms=(), speed=speed
        )
        server_texts.append(text)
        print(f"  {rec.id:>10}: {text!r}  (ref: {rec.reference!r})", flush=True)
    plain = _plain_whisper_base([r.audio for r in recordings])
    references = [r.reference for r in recordings]
    wer_server, wer_plain = _wer(references, server_texts), _wer(references, plain)

    items = entity_set()
    if args.only:
        items = [i for i in items if any(s in i.id for s in args.only.split(","))]
    voices = Voices(Path(args.cache))
    plan: list[tuple[EntityItem, str]] = []
    for n, item in enumerate(items):
        chosen = LOCAL_VOICES if args.all_voices else (LOCAL_VOICES[n % len(LOCAL_VOICES)],)
        plan.extend((item, v) for v in chosen)
    print(f"== entity set: {len(items)} items, {len(plan)} recordings", flush=True)
    conditions = [("24k", "audio/pcm", False), ("8k-ulaw", "audio/pcmu", False)]
    heard: list[Heard] = []
    for name, encoding, with_terms in [*conditions, ("24k+keyterms", "audio/pcm", True)]:
        for item, voice in plan:
            if with_terms and not item.keyterms:
                continue
            audio = voices.speak(item.spoken, voice, item.id)
            terms = item.keyterms if with_terms else ()
            text = await transcribe_via_server(url, key, audio, encoding=encoding, keyterms=terms, speed=speed)
            heard.append(Heard(item, voice, name, text))
            missing = [e for e in item.entities if not entity_found(e, text)]
            mark = "ok " if not missing else "MISS"
            print(f"  [{name}] {mark} {item.id} ({voice}): {text!r}" + (f" missing {missing}" if missing else ""))
    print("== the 24k entity items through plain Whisper base (in-process) and the server's formatting", flush=True)
    heard.extend(_plain_with_formatting(heard, voices))
    report(wer_server, wer_plain, len(recordings), heard)
    return 0


def report(wer_server: float, wer_plain: float, n_real: int, heard: Sequence[Heard]) -> None:
    print()
    print(f"Real recordings ({n_real} utterances): WER server {wer_server:.1%}, plain Whisper base {wer_plain:.1%}")
    print()
    by_condition: dict[str, list[Heard]] = defaultdict(list)
    for h in heard:
        by_condition[h.condition].append(h)
    categories = sorted({h.item.category for h in heard})
    header = f"{'condition':<14}{'utts':>6}{'WER':>8}{'missed':>9}  " + "".join(f"{c:>9}" for c in categories)
    print("Entity set: WER and missed entity rate (per category: missed/entities)")
    print(header)
    for condition, rows in by_condition.items():
        wer = _wer([h.item.reference for h in rows], [h.text for h in rows])
        total = sum(len(h.item.entities) for h in rows)
        missed = sum(1 for h in rows for e in h.item.entities if not entity_found(e, h.text))
        cells = []
        for c in categories:
            of = [(h, e) for h in rows if h.item.category == c for e in h.item.entities]
            cells.append(f"{sum(1 for h, e in of if not entity_found(e, h.text))}/{len(of)}" if of else "-")
        rate = missed / max(total, 1)
        print(f"{condition:<14}{len(rows):>6}{wer:>8.1%}{rate:>9.1%}  " + "".join(f"{x:>9}" for x in cells))
    print()
    for condition in by_condition:
        rows = [h for h in by_condition[condition] if h.item.keyterms]
        if rows:
            found = sum(1 for h in rows for t in h.item.keyterms if t in h.text)
            total = sum(len(h.item.keyterms) for h in rows)
            print(f"keyterm recall, {condition}: {found}/{total} = {found / total:.1%} (exact spelling)")
    with_terms = {(h.item.id, h.voice): h for h in by_condition.get("24k+keyterms", [])}
    merged = [with_terms.get((h.item.id, h.voice), h) for h in by_condition.get("24k", [])]
    if merged:
        print(f"missed entity rate, 24k with keyterms listed where the item has them: {_missed(merged):.1%}")
    voices = sorted({h.voice for h in heard})
    print()
    print("Missed entity rate by voice (24k): " + ", ".join(
        f"{v} {_missed([h for h in by_condition.get('24k', []) if h.voice == v]):.0%}" for v in voices))  # fmt: skip


def _missed(rows: Sequence[Heard]) -> float:
    total = sum(len(h.item.entities) for h in rows)
    return sum(1 for h in rows for e in h.item.entities if not entity_found(e, h.text)) / max(total, 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="ws://127.0.0.1:8000/v1/ws")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--speed", type=float, default=4.0, help="how much faster than real time audio is sent")
    parser.add_argument("--all-voices", action="store_true", help="every item by every voice (7x longer)")
    parser.add_argument("--only", default="", help="comma-separated substrings of item ids")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "voxgate" / "bench-accuracy"))


def main(args: argparse.Namespace) -> int:
    return asyncio.run(run(args))
