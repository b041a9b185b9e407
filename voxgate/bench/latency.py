"""`voxgate bench latency`: spoken turns against a running server, timed from the end of speech.

The client behaves like a microphone: it streams each question in real time, then keeps streaming
silence until the reply has finished. "End of speech" is the moment the last voiced sample was
sent, so each figure includes the server's end-of-turn wait, transcription, LLM and TTS.
Speech is made locally with the Piper voice (synthetic; say so when reporting).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

QUESTIONS = (
    "What is the capital city of France?",
    "Can you tell me a fun fact about the ocean?",
    "How many days are there in a leap year?",
    "What should I cook for dinner tonight?",
    "Who wrote the play Romeo and Juliet?",
    "What is two plus two?",
    "Give me one tip for sleeping better.",
    "What colour is the sky on a clear day?",
)
CHUNK_S = 0.05
RATE = 24_000


@dataclass
class TurnTiming:
    question: str
    transcript: str = ""
    to_transcript: float | None = None
    to_reply_started: float | None = None
    to_first_audio: float | None = None
    reply: str = ""  # what the agent said (transcript.agent)
    events: list[str] = field(default_factory=list)


def _speech(texts: tuple[str, ...]) -> list[np.ndarray]:
    from voxgate.audio.codecs import float_to_int16
    from voxgate.audio.resample import resample
    from voxgate.backends.tts.piper_voice import PiperTTS

    tts = PiperTTS()
    return [float_to_int16(resample(tts.synthesize(t, voice="joe"), tts.sample_rate, RATE)) for t in texts]


async def _turn(ws: object, samples: np.ndarray, timing: TurnTiming, inbox: asyncio.Queue[dict]) -> None:
    step = int(CHUNK_S * RATE)
    send = ws.send  # type: ignore[attr-defined]
    start = time.monotonic()
    for i, offset in enumerate(range(0, len(samples), step)):
        chunk = samples[offset : offset + step].astype("<i2").tobytes()
        await send(json.dumps({"type": "input.audio", "audio": base64.b64encode(chunk).decode()}))
        await asyncio.sleep(max(0.0, start + (i + 1) * CHUNK_S - time.monotonic()))
    end_of_speech = time.monotonic()
    silence = base64.b64encode(np.zeros(step, dtype="<i2").tobytes()).decode()
    deadline = end_of_speech + 60
    while time.monotonic() < deadline:
        await send(json.dumps({"type": "input.audio", "audio": silence}))
        await asyncio.sleep(CHUNK_S)
        while not inbox.empty():
            event = inbox.get_nowait()
            kind, now = event["type"], event["_at"] - end_of_speech
            timing.events.append(kind)
            if kind == "transcript.user" and timing.to_transcript is None:
                timing.to_transcript, timing.transcript = now, event["text"]
            elif kind == "reply.started" and timing.to_reply_started is None:
                timing.to_reply_started = now
            elif kind == "reply.audio" and timing.to_first_audio is None:
                timing.to_first_audio = now
            elif kind == "transcript.agent":
                timing.reply = str(event.get("text", ""))
            elif kind == "reply.done":
                return


def read_events(ws: Any) -> tuple[asyncio.Queue[dict[str, Any]], asyncio.Task[None]]:
    """A task putting the socket's events, stamped with their arrival (`_at`, monotonic), on a queue."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def reader() -> None:
        async for message in ws:
            event = json.loads(message)
            event["_at"] = time.monotonic()
            await inbox.put(event)

    return inbox, asyncio.create_task(reader())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(url: str, api_key: str | None, turns: int, voice: str | None = None) -> list[TurnTiming]:
    import websockets

    questions = tuple(QUESTIONS[i % len(QUESTIONS)] for i in range(turns))
    print(f"synthesizing {turns} questions with the Piper voice ...", flush=True)
    audio = _speech(questions)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timings: list[TurnTiming] = []
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        inbox, reading = read_events(ws)
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "system_prompt": "You are a helpful voice assistant. Answer in one short sentence.",
                        **({"output": {"voice": voice}} if voice else {}),
                    },
                }
            )
        )
        ready = await asyncio.wait_for(inbox.get(), 120)
        while ready["type"] == "session.updated":  # the configuration echoed before the session is ready
            ready = await asyncio.wait_for(inbox.get(), 120)
        if ready["type"] != "session.ready":
            raise SystemExit(f"session not ready: {ready}")
        for question, samples in zip(questions, audio, strict=True):
            timing = TurnTiming(question)
            await _turn(ws, samples, timing, inbox)
            timings.append(timing)
            _print_turn(len(timings), timing)
        reading.cancel()
    return timings


def _fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.2f}"


def _print_turn(n: int, t: TurnTiming) -> None:
    print(
        f"turn {n}: transcript {_fmt(t.to_transcript)} s  reply.started {_fmt(t.to_reply_started)} s  "
        f"first audio {_fmt(t.to_first_audio)} s  | heard: {t.transcript!r}  said: {t.reply!r}",
        flush=True,
    )


def summarize(timings: list[TurnTiming]) -> None:
    print("\nfrom end of user speech (seconds)      p50     p95    n")
    for label, attr in (
        ("→ transcript.user", "to_transcript"),
        ("→ reply.started", "to_reply_started"),
        ("→ first reply.audio", "to_first_audio"),
    ):
        values = [v for t in timings if (v := getattr(t, attr)) is not None]
        if values:
            print(f"  {label:<34} {_pct(values, 0.5):6.2f}  {_pct(values, 0.95):6.2f}  {len(values):3d}")
        else:
            print(f"  {label:<34}      -       -    0")
    if timings:
        print(f"  mean first audio: {statistics.mean(t.to_first_audio or 0 for t in timings):.2f} s")


def main(args: argparse.Namespace) -> int:
    timings = asyncio.run(run(args.url, args.api_key, args.turns, args.voice))
    summarize(timings)
    return 0 if all(t.to_first_audio is not None for t in timings) else 1
