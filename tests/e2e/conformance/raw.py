"""A raw Voice Agent API client for the conformance suite: `websockets`, `httpx`, `json`, `base64`.

Everything here is built from /work/shared/protocol.md, not from Voxgate: the events are plain dicts
written the way the contract shows them, and nothing from the `voxgate` package is imported.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

RATE = 24_000  # audio/pcm (§3)
CHUNK_MS = 50  # the recommended chunk (§3)

SESS_ID = re.compile(r"^sess_[0-9a-f]{32}$")
RESP_ID = re.compile(r"^resp_[0-9a-f]{32}$")
MSG_ID = re.compile(r"^msg_[0-9a-f]{32}$")
CALL_ID = re.compile(r"^call_[0-9a-f]{32}$")

SYSTEM_PROMPT = "You are a helpful voice assistant. Answer in one or two short sentences."
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEATHER_QUESTION = "What's the weather like in Paris right now?"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


# ------------------------------------------------------------------ WebSocket


@dataclass
class Event:
    type: str
    data: dict[str, Any]
    at: float  # time.monotonic() on arrival
    index: int


@dataclass
class Conn:
    """One socket: every server event is recorded in order; `next` walks them with a cursor."""

    ws: Any
    events: list[Event] = field(default_factory=list)
    cursor: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    close_reason: str | None = None
    non_json: list[Any] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                try:
                    data = json.loads(message)
                except (TypeError, ValueError):
                    self.non_json.append(message)
                    continue
                self.events.append(Event(str(data.get("type")), data, time.monotonic(), len(self.events)))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()

    async def send(self, payload: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(payload if isinstance(payload, str | bytes) else json.dumps(payload))

    async def send_quiet(self, payload: dict[str, Any] | str | bytes) -> None:
        """Send, ignoring a socket the server has already closed (auth failures may close at once)."""
        try:
            await self.send(payload)
        except websockets.ConnectionClosed:
            pass

    def mark(self) -> int:
        """Skip the cursor to the end: later `next` calls only see events from now on."""
        self.cursor = len(self.events)
        return self.cursor

    def describe(self, start: int = 0) -> list[str]:
        out = []
        for e in self.events[start:]:
            extra = {
                k: v for k, v in e.data.items() if k in ("code", "param", "status", "interrupted", "text", "delta")
            }
            out.append(f"{e.type}{extra if extra else ''}")
        return out[-40:]

    async def next(self, *types: str, timeout: float = 45.0, where: Any = None) -> Event:
        """The next event after the cursor whose type is one of `types` (and that satisfies `where`)."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self.cursor, len(self.events)):
                e = self.events[i]
                if e.type in types and (where is None or where(e.data)):
                    self.cursor = i + 1
                    return e
            if self.closed.is_set() or time.monotonic() > deadline:
                raise AssertionError(
                    f"no {types} within {timeout}s (closed={self.close_code} {self.close_reason!r}); "
                    f"since cursor: {self.describe(self.cursor)}"
                )
            await asyncio.sleep(0.02)

    async def none_of(self, *types: str, seconds: float, start: int | None = None) -> None:
        """Assert that no event of `types` arrives within `seconds` (counting from index `start`)."""
        begin = len(self.events) if start is None else start
        await asyncio.sleep(seconds)
        bad = [e for e in self.events[begin:] if e.type in types]
        assert not bad, f"unexpected {[(e.type, e.data) for e in bad][:5]}"

    async def error(self, code: str, *, timeout: float = 30.0) -> dict[str, Any]:
        """The next session.error; it must carry `code` (compared as the contract states it)."""
        e = await self.next("session.error", timeout=timeout)
        assert e.data.get("code") == code, e.data
        assert isinstance(e.data.get("message"), str), e.data
        return e.data

    async def wait_closed(self, timeout: float = 15.0) -> tuple[int | None, str | None]:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code, self.close_reason

    async def update(self, session: dict[str, Any]) -> Event:
        """session.update → the next session.updated or session.error."""
        await self.send({"type": "session.update", "session": session})
        return await self.next("session.updated", "session.error", timeout=30)

    async def start(self, session: dict[str, Any] | None = None, *, timeout: float = 60.0) -> dict[str, Any]:
        """The first session.update → session.ready (fails on a session.error)."""
        await self.send({"type": "session.update", "session": session or {}})
        e = await self.next("session.ready", "session.error", timeout=timeout)
        assert e.type == "session.ready", e.data
        return e.data

    async def alive(self) -> None:
        """The session is still open and answers: a harmless update gets session.updated."""
        self.mark()
        await self.send({"type": "session.update", "session": {"system_prompt": SYSTEM_PROMPT}})
        await self.next("session.updated", timeout=15)  # other errors (e.g. rate-limited repeats) may come first
        assert not self.closed.is_set()

    def of(self, *types: str, start: int = 0, end: int | None = None) -> list[Event]:
        return [e for e in self.events[start:end] if e.type in types]

    def types(self, start: int = 0, end: int | None = None) -> list[str]:
        return [e.type for e in self.events[start:end]]

    def audio(self, start: int = 0, end: int | None = None, reply_id: str | None = None) -> bytes:
        return b"".join(
            base64.b64decode(e.data["data"])
            for e in self.of("reply.audio", start=start, end=end)
            if reply_id is None or e.data.get("reply_id") == reply_id
        )

    def bad_timestamps(self) -> list[dict[str, Any]]:
        """Server events whose `timestamp` is not a float of Unix seconds (every event has one, §General)."""
        now = time.time()
        return [
            e.data
            for e in self.events
            if not isinstance(e.data.get("timestamp"), float) or abs(e.data["timestamp"] - now) > 3600
        ]

    async def close(self) -> None:
        """End the session for good (session.end) and close, so that it frees its place on the server."""
        if not self.closed.is_set() and self.of("session.ready"):
            await self.send_quiet({"type": "session.end"})
            try:
                await asyncio.wait_for(self.closed.wait(), 10)
            except TimeoutError:
                pass
        await self.drop()

    async def drop(self) -> None:
        """Close the socket without session.end: to the server this is a network drop (§6.7, §6.8)."""
        await self.ws.close()
        if self.reader:
            await self.reader


OPEN: list[Conn] = []  # every socket a test opened; the suite's conftest ends them after each test


async def close_all() -> None:
    """End every session a test left open (a failed assertion skips its own close): capacity is small."""
    while OPEN:
        conn = OPEN.pop()
        if not conn.closed.is_set():
            try:
                await asyncio.wait_for(conn.close(), 15)
            except (TimeoutError, websockets.WebSocketException, OSError):
                pass


async def connect(
    url: str,
    *,
    authorization: str | None = None,
    token: str | None = None,
) -> Conn:
    """Open a socket; `authorization` is the raw Authorization header value, `token` goes in ?token=."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    if token is not None:
        url = f"{url}?token={token}"
    ws = await asyncio.wait_for(websockets.connect(url, additional_headers=headers, max_size=None), 30)
    conn = Conn(ws)
    conn.reader = asyncio.create_task(conn._read())
    OPEN.append(conn)
    return conn


async def session(url: str, key: str, config: dict[str, Any] | None = None) -> tuple[Conn, dict[str, Any]]:
    """A ready session opened with an API key as Bearer."""
    conn = await connect(url, authorization=f"Bearer {key}")
    ready = await conn.start(config)
    return conn, ready


async def finish(url: str, key: str, session_id: str) -> None:
    """Resume a dropped session and end it, so that it does not hold a place for the resume window."""
    conn = await connect(url, authorization=f"Bearer {key}")
    await conn.send({"type": "session.resume", "session_id": session_id})
    await conn.next("session.ready", "session.error", timeout=15)
    await conn.close()


def reply_events(conn: Conn, reply_id: str) -> list[Event]:
    """Every event that names `reply_id`, in order."""
    return [e for e in conn.events if e.data.get("reply_id") == reply_id]


def reply_span(conn: Conn, started: Event) -> list[Event]:
    """The events from a reply.started through its reply.done (inclusive)."""
    rid = started.data["reply_id"]
    for e in conn.events[started.index :]:
        if e.type == "reply.done" and e.data.get("reply_id") == rid:
            return conn.events[started.index : e.index + 1]
    raise AssertionError(f"no reply.done for {rid}: {conn.describe(started.index)}")


# ------------------------------------------------------------------ audio


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return samples.astype(np.int16)
    n = int(len(samples) * target / rate)
    x = np.linspace(0, len(samples) - 1, n)
    return np.interp(x, np.arange(len(samples)), samples.astype(np.float64)).astype(np.int16)


def speech(path: Path | str, rate: int = RATE) -> np.ndarray:
    samples, r = read_wav(path)
    return resample(samples, r, rate)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.int16)


def pcm16(data: bytes) -> np.ndarray:
    return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")


def ulaw_encode(samples: np.ndarray) -> bytes:
    """G.711 μ-law (the segment algorithm of the standard, bias 0x84)."""
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent, mantissa = (u >> 4) & 0x07, u & 0x0F
    mag = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -mag, mag).astype(np.int16)


def alaw_decode(data: bytes) -> np.ndarray:
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    exponent, mantissa = (a >> 4) & 0x07, a & 0x0F
    mag = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(a & 0x80, mag, -mag).astype(np.int16)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


class Mic:
    """A client's microphone: streams 50 ms `input.audio` chunks at real time (wall-clock paced) for as
    long as it runs, silence unless speech is queued, exactly what a live client does."""

    def __init__(self, conn: Conn, *, encoding: str = "audio/pcm") -> None:
        self.conn, self.encoding = conn, encoding
        self.rate = RATE if encoding == "audio/pcm" else 8_000
        self.step = self.rate * CHUNK_MS // 1000
        self.queue: list[np.ndarray] = []
        self.sent_s = 0.0
        self.task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def _encode(self, chunk: np.ndarray) -> bytes:
        if self.encoding == "audio/pcmu":
            return ulaw_encode(chunk)
        return chunk.astype("<i2").tobytes()

    async def _run(self) -> None:
        start = time.monotonic()
        i = 0
        pending = np.zeros(0, dtype=np.int16)
        try:
            while True:
                if not len(pending) and self.queue:
                    pending = self.queue.pop(0)
                if len(pending):
                    chunk, pending = pending[: self.step], pending[self.step :]
                    if len(chunk) < self.step:
                        chunk = np.concatenate([chunk, np.zeros(self.step - len(chunk), dtype=np.int16)])
                else:
                    self._idle.set()
                    chunk = np.zeros(self.step, dtype=np.int16)
                audio = base64.b64encode(self._encode(chunk)).decode()
                await self.conn.send({"type": "input.audio", "audio": audio})
                self.sent_s += CHUNK_MS / 1000
                i += 1
                await asyncio.sleep(max(0.0, start + i * CHUNK_MS / 1000 - time.monotonic()))
        except websockets.ConnectionClosed:
            self._idle.set()

    def start(self) -> Mic:
        self.task = asyncio.create_task(self._run())
        return self

    async def say(self, samples: np.ndarray, *, wait: bool = True) -> None:
        """Queue speech (at the mic's rate); with `wait`, return once it has all been sent."""
        self._idle.clear()
        self.queue.append(samples)
        if wait:
            await asyncio.wait_for(self._idle.wait(), len(samples) / self.rate + 30)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, websockets.ConnectionClosed):
                pass
            self.task = None


# ------------------------------------------------------------------ REST

REST_ERROR_KEYS = {"code", "message", "param", "request_id", "errors", "detail"}


def rest(
    http: str,
    method: str,
    path: str,
    *,
    authorization: str | None = None,
    params: dict[str, Any] | None = None,
    body: Any = None,
) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return httpx.request(method, f"{http}{path}", headers=headers, params=params, json=body, timeout=30)


def assert_rest_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A REST failure: the status and the §7.3 body, with every key present."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("code") == code, body
    assert REST_ERROR_KEYS <= set(body), sorted(body)
    assert isinstance(body["message"], str) and isinstance(body["errors"], list), body
    return body
