"""A plain Voice Agent API client for the tests: websockets + json + base64, no Voxgate code.

This is what a client written for the hosted API does; the tests drive the real server with it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import websockets


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """16-bit mono WAV → (int16 samples, rate)."""
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


def to_rate(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Linear-interpolation resampling: crude but independent of the server's own resampler."""
    if rate == target:
        return samples
    n = int(len(samples) * target / rate)
    x = np.linspace(0, len(samples) - 1, n)
    return np.interp(x, np.arange(len(samples)), samples.astype(np.float64)).astype(np.int16)


def ulaw_encode(samples: np.ndarray) -> bytes:
    """G.711 μ-law from the continuous companding law (independent of the server's tables).

    G.711's 7-bit magnitude (segment * 16 + step) approximates 127 * ln(1 + 255|x|) / ln(256);
    the code is sign | magnitude with all bits inverted.
    """
    x = np.clip(samples.astype(np.float64) / 32768.0, -1, 1)
    magnitude = np.round(127 * np.log1p(255 * np.abs(x)) / np.log1p(255)).astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    return (~(sign | magnitude) & 0xFF).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    codes = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    sign = np.where(codes & 0x80, -1.0, 1.0)
    x = np.expm1((codes & 0x7F) / 127 * np.log1p(255)) / 255 * sign
    return (x * 32767).astype(np.int16)


@dataclass
class Received:
    type: str
    data: dict[str, Any]
    at: float


OPEN: list[Any] = []  # every Client (and TwilioSide) connected during the current test; see close_all


async def close_all() -> None:
    """Close every socket the test opened, whether it passed or not (the conftest calls this after each test).

    A failed test that left its sockets open kept its sessions attached, and with the test server's four
    session slots the following tests were refused with `server_error` (at capacity)."""
    while OPEN:
        client = OPEN.pop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.aclose(), 10)


@dataclass
class Client:
    ws: Any
    events: list[Received] = field(default_factory=list)
    _cursor: int = 0
    reader: asyncio.Task[None] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None

    @classmethod
    async def connect(cls, url: str, api_key: str | None = None, token: str | None = None) -> Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if token:
            url = f"{url}?token={token}"
        ws = await websockets.connect(url, additional_headers=headers, max_size=None)
        client = cls(ws)
        client.reader = asyncio.create_task(client._read())
        OPEN.append(client)
        return client

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                data = json.loads(message)
                self.events.append(Received(data["type"], data, time.monotonic()))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    async def send(self, payload: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(payload if isinstance(payload, str | bytes) else json.dumps(payload))

    async def configure(self, **session: Any) -> dict[str, Any]:
        """The first `session.update`: answered by `session.updated`, then `session.ready` (§6.1), or an error."""
        await self.send({"type": "session.update", "session": session})
        return (await self.next("session.ready", "session.error")).data

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        """Wait until the server closed the socket; its close code."""
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    async def send_audio(
        self,
        samples: np.ndarray,
        *,
        encoding: str = "audio/pcm",
        rate: int = 24_000,
        speed: float = 1.0,
        chunk_ms: int = 50,
    ) -> None:
        """Stream int16 samples (already at `rate`) in ~50 ms chunks at `speed` × real time."""
        step = rate * chunk_ms // 1000
        for start in range(0, len(samples), step):
            chunk = samples[start : start + step]
            raw = ulaw_encode(chunk) if encoding == "audio/pcmu" else chunk.astype("<i2").tobytes()
            await self.send({"type": "input.audio", "audio": base64.b64encode(raw).decode()})
            await asyncio.sleep(chunk_ms / 1000 / speed)

    async def next(self, *types: str, timeout: float = 60.0) -> Received:
        """The next event (after the cursor) of one of `types`; events in between are kept in `events`."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self._cursor, len(self.events)):
                if self.events[i].type in types:
                    self._cursor = i + 1
                    return self.events[i]
            if self.closed.is_set() or time.monotonic() > deadline:
                seen = [e.type for e in self.events[self._cursor :]]
                raise AssertionError(f"no {types} within {timeout}s (closed={self.closed.is_set()}); saw {seen}")
            await asyncio.sleep(0.02)

    def types_since(self, start: int = 0) -> list[str]:
        return [e.type for e in self.events[start:]]

    def reply_audio(self, start: int = 0, end: int | None = None) -> bytes:
        return b"".join(base64.b64decode(e.data["data"]) for e in self.events[start:end] if e.type == "reply.audio")

    async def close(self) -> None:
        await self.ws.close()
        if self.reader:
            await self.reader

    async def aclose(self) -> None:
        """close(), whatever state the socket is in (used by close_all)."""
        try:
            await self.close()
        finally:
            if self.reader and not self.reader.done():
                self.reader.cancel()


def silence(seconds: float, rate: int = 24_000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.int16)


class EchoingMic:
    """A client without echo cancellation. Its speaker plays `reply.audio` in real time as it arrives
    (stalling when the buffer runs dry, like any player), and its mic hears the speaker `delay_s` later
    at `gain`, plus noise; optionally the user talks over it from `user_at_s`."""

    def __init__(
        self, client: Client, *, delay_s: float = 0.2, gain: float = 0.4, noise: float = 0.003, seed: int = 0
    ) -> None:
        self.client, self.delay_s, self.gain, self.noise = client, delay_s, gain, noise
        self.rng = np.random.default_rng(seed)
        self.speaker: list[np.ndarray] = []  # what the speaker output, 50 ms per tick
        self.played = 0  # reply samples played so far
        self.seen = 0  # events looked at for `input.speech.started`

    def _reply_samples(self) -> np.ndarray:
        chunks = [e for e in self.client.events if e.type == "reply.audio"]
        return np.frombuffer(b"".join(base64.b64decode(e.data["data"]) for e in chunks), dtype="<i2")

    async def run(self, seconds: float, user: np.ndarray | None = None, user_at_s: float = 0.0) -> None:
        """Stream `seconds` of microphone audio in real time (24 kHz PCM)."""
        step, delay_ticks = 1_200, round(self.delay_s / 0.05)
        start = time.monotonic()
        first = next((e for e in self.client.events if e.type == "reply.audio"), None)
        if first is not None and self.played == 0:
            # The speaker started when the first audio arrived, not when this mic started listening.
            self.played = min(len(self._reply_samples()), int((start - first.at) * 24_000))
        self.seen = max(self.seen, len(self.client.events))
        for i in range(int(seconds / 0.05)):
            reply = self._reply_samples()
            events, self.seen = self.client.events[self.seen :], len(self.client.events)
            if any(e.type == "input.speech.started" for e in events):
                self.played = len(reply)  # a real client flushes playback here; it plays what comes later
            out = np.zeros(step, dtype=np.float64)
            take = reply[self.played : self.played + step]
            out[: len(take)] = take
            self.played += len(take)
            self.speaker.append(out)
            chunk = self.rng.standard_normal(step) * self.noise * 32768
            if len(self.speaker) > delay_ticks:
                chunk += self.gain * self.speaker[-1 - delay_ticks]
            if user is not None:
                u0 = int((i * 0.05 - user_at_s) * 24_000)
                if 0 <= u0 < len(user):
                    segment = user[u0 : u0 + step].astype(np.float64)
                    chunk[: len(segment)] += segment
            pcm = np.clip(chunk, -32768, 32767).astype("<i2").tobytes()
            await self.client.send({"type": "input.audio", "audio": base64.b64encode(pcm).decode()})
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.05 - time.monotonic()))
