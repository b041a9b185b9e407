"""Twilio's side of a bidirectional Media Stream, played as Twilio's docs describe it, for the tests.

No Twilio account is reachable from here, so this stands in for Twilio: it sends `connected`, then
`start` (streamSid, callSid, customParameters, mediaFormat audio/x-mulaw 8000 mono), then the caller's
audio as `media` messages of 20 ms of base64 μ-law with increasing `sequenceNumber`, `chunk` and
`timestamp`, paced in real time (silence when the caller says nothing, as on a real call). It plays
the `media` it receives in real time, echoes each `mark` when playback reaches it, and on `clear`
drops the unplayed audio and sends back the pending marks at once. `stop` ends the call.
Plain websockets + json + base64: no Voxgate code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import websockets

from tests.e2e.wsclient import OPEN

FRAME = 160  # 20 ms of μ-law at 8 kHz
ULAW_SILENCE = b"\xff"


@dataclass
class TwilioSide:
    ws: Any
    stream_sid: str
    call_sid: str
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    agent_audio: bytearray = field(default_factory=bytearray)  # every media payload received, in order
    played: int = 0  # bytes of agent audio played to the caller
    marks_received: list[str] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)  # echoed when playback reached them
    marks_flushed: list[str] = field(default_factory=list)  # echoed at once because of a clear
    clears: list[tuple[float, int]] = field(default_factory=list)  # (time, bytes played then)
    last_media_at: float = 0.0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    _sequence: int = 0
    _chunk: int = 0
    _caller: bytearray = field(default_factory=bytearray)
    _queue: deque[bytes | str] = field(default_factory=deque)  # agent audio and mark names, in order
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def connect(cls, url: str, **parameters: str) -> TwilioSide:
        ws = await websockets.connect(url, max_size=None)
        n = int(time.time() * 1000)
        side = cls(ws, stream_sid=f"MZ{n:032x}"[:34], call_sid=f"CA{n:032x}"[:34])
        await side._send({"event": "connected", "protocol": "Call", "version": "1.0.0"}, numbered=False)
        await side._send(
            {
                "event": "start",
                "start": {
                    "accountSid": "AC" + "0" * 32,
                    "streamSid": side.stream_sid,
                    "callSid": side.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
                "streamSid": side.stream_sid,
            }
        )
        side._tasks = [asyncio.create_task(side._read()), asyncio.create_task(side._clock())]
        OPEN.append(side)  # closed after the test even if it fails (wsclient.close_all)
        return side

    async def _send(self, message: dict[str, Any], *, numbered: bool = True) -> None:
        if numbered:
            self._sequence += 1
            message = {"event": message["event"], "sequenceNumber": str(self._sequence), **message}
        try:
            await self.ws.send(json.dumps(message))
        except websockets.ConnectionClosed:
            pass

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                self.received.append((time.monotonic(), message))
                event = message.get("event")
                assert message.get("streamSid") == self.stream_sid, message
                if event == "media":
                    audio = base64.b64decode(message["media"]["payload"])
                    self.agent_audio += audio
                    self._queue.append(audio)
                    self.last_media_at = time.monotonic()
                elif event == "mark":
                    self.marks_received.append(message["mark"]["name"])
                    self._queue.append(message["mark"]["name"])
                elif event == "clear":
                    self.clears.append((time.monotonic(), self.played))
                    pending = [item for item in self._queue if isinstance(item, str)]
                    self._queue.clear()
                    for name in pending:  # Twilio sends the marks of the dropped audio back
                        self.marks_flushed.append(name)
                        await self._mark(name)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    async def _mark(self, name: str) -> None:
        await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def _clock(self) -> None:
        """Every 20 ms: one frame of the caller's audio up, 20 ms of the agent's audio played."""
        start = time.monotonic()
        while not self.closed.is_set():
            frame = bytes(self._caller[:FRAME])
            del self._caller[:FRAME]
            frame += ULAW_SILENCE * (FRAME - len(frame))
            self._chunk += 1
            media = {
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str((self._chunk - 1) * 20),
                "payload": base64.b64encode(frame).decode(),
            }
            await self._send({"event": "media", "streamSid": self.stream_sid, "media": media})
            await self._play(FRAME)
            await asyncio.sleep(max(0.0, start + self._chunk * 0.02 - time.monotonic()))

    async def _play(self, budget: int) -> None:
        while self._queue:
            head = self._queue[0]
            if isinstance(head, str):  # playback reached the mark: everything before it was heard
                self._queue.popleft()
                self.marks_echoed.append(head)
                await self._mark(head)
                continue
            if budget <= 0:
                return
            take = min(budget, len(head))
            self.played += take
            budget -= take
            if take == len(head):
                self._queue.popleft()
            else:
                self._queue[0] = head[take:]

    @property
    def playing(self) -> bool:
        return any(isinstance(item, bytes) for item in self._queue)

    def quiet_for(self, seconds: float) -> bool:
        """Nothing left to play and no agent audio for `seconds`."""
        return not self.playing and time.monotonic() - self.last_media_at > seconds

    async def say(self, ulaw: bytes) -> None:
        """The caller speaks `ulaw` (returns when it has all been sent, in real time)."""
        self._caller += ulaw
        await asyncio.sleep(len(self._caller) / 8000 + 0.04)  # the clock sends it at 8000 bytes a second

    async def dtmf(self, digit: str) -> None:
        await self._send(
            {"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": digit}}
        )

    async def wait(self, condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or self.closed.is_set():
                raise AssertionError(f"timed out ({timeout} s) waiting for {what}; closed={self.closed.is_set()}")
            await asyncio.sleep(0.05)

    async def stop(self, timeout: float = 10.0) -> int | None:
        """Hang up: `stop`, then the server closes the socket. Returns the close code."""
        await self._send(
            {
                "event": "stop",
                "streamSid": self.stream_sid,
                "stop": {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid},
            }
        )
        await asyncio.wait_for(self.closed.wait(), timeout)
        await self.aclose()
        return self.close_code

    async def aclose(self) -> None:
        """Close the stream socket (a no-op after stop) and stop the reader and the clock."""
        try:
            await self.ws.close()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
