"""A cheap OpenAI-compatible server for `voxgate bench load`: fixed answers, at once, for any input.

It answers exactly what Voxgate's `openai` backends call, so a load test with every model "remote"
measures Voxgate's own cost (sockets, audio decoding, VAD, end of turn, pacing, events), not a model's:

- `POST /v1/chat/completions` (`stream: true`): the fixed reply streamed as a few SSE deltas with no
  pause, then `finish_reason: "stop"` and `[DONE]` (without `stream`: one JSON completion);
- `POST /v1/audio/speech`: `--speech-s` seconds of a soft tone as raw 24 kHz s16le (`response_format:
  pcm`, what Voxgate asks for) or as a WAV file (any other format);
- `POST /v1/audio/transcriptions`: `{"text": <the fixed transcript>}`, the upload read and dropped;
- `GET /v1/models`: one model, so `voxgate doctor` and readiness probes see a live server;
- `GET /stats`: requests served per route (the bench checks that the backends really came here).

Run it as `python -m voxgate.bench.openai_stub --port 9100`; it is a plain Starlette app on uvicorn.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import wave
from collections import Counter
from collections.abc import AsyncIterator

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

REPLY = "Sure, Paris is the capital of France."
TRANSCRIPT = "What is the capital city of France?"
PCM_RATE = 24_000


def tone(seconds: float, rate: int = PCM_RATE) -> bytes:
    """A 220 Hz tone at about -20 dBFS with 10 ms fades: audible, never clipping, cheap to make once."""
    n = max(1, int(seconds * rate))
    t = np.arange(n) / rate
    wave_ = 0.1 * np.sin(2 * math.pi * 220.0 * t)
    fade = min(n // 2, int(0.01 * rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave_[:fade] *= ramp
        wave_[-fade:] *= ramp[::-1]
    return (wave_ * 32767).astype("<i2").tobytes()


def as_wav(pcm: bytes, rate: int = PCM_RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def _chunk(delta: dict[str, str], finish: str | None) -> bytes:
    body = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "stub",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def create_stub(reply: str = REPLY, transcript: str = TRANSCRIPT, speech_s: float = 1.0) -> Starlette:
    """The stub app; `app.state.counts` is what `/stats` returns."""
    pcm = tone(speech_s)
    wav = as_wav(pcm)
    words = reply.split(" ")
    pieces = [" ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "") for i in range(0, len(words), 3)]
    counts: Counter[str] = Counter()

    async def chat(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        counts["chat"] += 1
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "stub"),
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
                    ],
                }
            )

        async def events() -> AsyncIterator[bytes]:
            yield _chunk({"role": "assistant", "content": ""}, None)
            for piece in pieces:
                yield _chunk({"content": piece}, None)
            yield _chunk({}, "stop")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def speech(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        counts["speech"] += 1
        if body.get("response_format", "mp3") == "pcm":
            return Response(pcm, media_type="audio/pcm")
        return Response(wav, media_type="audio/wav")

    async def transcriptions(request: Request) -> Response:
        await request.body()  # the upload is read (as a real server would) and dropped
        counts["transcriptions"] += 1
        return JSONResponse({"text": transcript})

    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "stub", "object": "model", "owned_by": "voxgate"}]})

    async def stats(_: Request) -> Response:
        return JSONResponse(dict(counts))

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/audio/speech", speech, methods=["POST"]),
            Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/stats", stats, methods=["GET"]),
        ]
    )
    app.state.counts = counts
    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m voxgate.bench.openai_stub", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--reply", default=REPLY, help="the chat completion's text")
    parser.add_argument("--transcript", default=TRANSCRIPT, help="what every transcription returns")
    parser.add_argument("--speech-s", type=float, default=1.0, help="seconds of audio per speech request")
    args = parser.parse_args(argv)
    app = create_stub(args.reply, args.transcript, args.speech_s)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
