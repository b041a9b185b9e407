"""A complete Voice Agent API client in ~70 lines: speak a WAV file to the agent, save its reply.

Works unchanged against the hosted API or Voxgate (change URL and key). Needs only `websockets`
and `numpy`. Usage:
    python examples/wav_client.py question.wav reply.wav [--url ws://127.0.0.1:8000/v1/ws] [--key KEY]
"""

import argparse
import asyncio
import base64
import json
import wave

import numpy as np
import websockets

RATE = 24_000  # audio/pcm: 16-bit little-endian mono at 24 kHz


def load_pcm24k(path: str) -> bytes:
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, "need 16-bit mono WAV"
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        rate = w.getframerate()
    n = int(len(samples) * RATE / rate)
    resampled = np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples)
    return resampled.astype("<i2").tobytes()


async def main(question: str, reply_path: str, url: str, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "system_prompt": "You are a friendly voice assistant. Keep answers short.",
                        "output": {"voice": "ivy"},
                    },
                }
            )
        )

        async def stream_microphone() -> None:
            audio = load_pcm24k(question) + bytes(RATE * 2 * 2)  # the question, then 2 s of silence
            chunk = RATE * 2 // 20  # 50 ms
            for i in range(0, len(audio), chunk):
                await ws.send(
                    json.dumps({"type": "input.audio", "audio": base64.b64encode(audio[i : i + chunk]).decode()})
                )
                await asyncio.sleep(0.05)

        reply = bytearray()
        sender = None
        async for message in ws:
            event = json.loads(message)
            kind = event["type"]
            if kind == "session.ready":
                print("session", event["session_id"])
                sender = asyncio.create_task(stream_microphone())
            elif kind == "transcript.user.delta":
                print("  you (partial):", event["text"])
            elif kind == "transcript.user":
                print("you:", event["text"])
            elif kind == "reply.audio":
                reply.extend(base64.b64decode(event["data"]))
            elif kind == "transcript.agent":
                print("agent:", event["text"])
            elif kind == "session.error":
                print("error:", event["code"], event["message"])
            elif kind == "reply.done":
                break
        if sender:
            sender.cancel()
    with wave.open(reply_path, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(RATE)
        out.writeframes(bytes(reply))
    print(f"saved {len(reply) / 2 / RATE:.1f} s of reply audio to {reply_path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("question")
    parser.add_argument("reply")
    parser.add_argument("--url", default="ws://127.0.0.1:8000/v1/ws")
    parser.add_argument("--key", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.question, args.reply, args.url, args.key))
