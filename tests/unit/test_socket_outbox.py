"""The pieces of the socket loop that keep a slow or hostile client bounded (server/transport.py,
server/connection.py): the outgoing queue in bytes, the audio backlog in seconds, finding the transport
to abort, and what errors may echo."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from voxgate.backends.base import ANALYSIS_RATE
from voxgate.server.connection import _depth_exceeds, _summarize, clip
from voxgate.server.transport import AudioBacklog, Outbox, SocketLoop, raw_transport


async def test_outbox_is_bounded_in_bytes_and_an_offer_never_waits() -> None:
    box = Outbox(max_bytes=100)
    assert box.offer("a" * 60)
    assert box.offer("b" * 40)
    assert not box.offer("c")  # full: dropped, not awaited
    assert box.bytes == 100
    assert await box.get() == "a" * 60
    assert box.offer("c" * 50)
    assert box.bytes == 90


async def test_outbox_takes_one_large_frame_when_empty() -> None:
    box = Outbox(max_bytes=10)
    assert box.offer("x" * 1000)  # a 4 MiB event is never refused for size alone
    assert not box.offer("y")


async def test_outbox_put_waits_for_room_and_times_out() -> None:
    box = Outbox(max_bytes=10)
    assert box.offer("x" * 10)
    assert not await box.put("y", timeout_s=0.05)  # nobody takes: the caller aborts the socket

    async def drain() -> None:
        await asyncio.sleep(0.02)
        await box.get()

    task = asyncio.create_task(drain())
    assert await box.put("y" * 5, timeout_s=1.0)
    await task
    assert box.bytes == 5


async def test_an_offer_does_not_overtake_a_waiting_put() -> None:
    box = Outbox(max_bytes=10)
    assert box.offer("x" * 8)
    waiting = asyncio.create_task(box.put("y" * 8, timeout_s=1.0))
    await asyncio.sleep(0)
    assert not box.offer("z")  # it would fit, but a sender waits before it
    assert await box.get() == "x" * 8
    assert await waiting
    assert await box.get() == "y" * 8


async def test_outbox_close_goes_after_what_is_queued_and_shuts_it() -> None:
    box = Outbox()
    box.offer("one")
    box.close(1000, "bye")
    assert not box.offer("two") and not await box.put("two", 0.01)
    assert await box.get() == "one"
    closing = await box.get()
    assert getattr(closing, "code", None) == 1000
    assert await box.get() is None


async def test_audio_backlog_is_bounded_in_seconds_not_chunks() -> None:
    backlog = AudioBacklog(max_s=20.0)
    second = np.zeros(ANALYSIS_RATE, dtype=np.float32)
    for _ in range(20):
        assert backlog.put(second)
    assert not backlog.has_room(0.05)  # 20 s queued: even a 50 ms chunk waits for the worker
    assert not backlog.put(np.zeros(800, dtype=np.float32))
    await backlog.get()
    assert backlog.has_room(1.0) and not backlog.has_room(1.5)
    assert backlog.queued_s == pytest.approx(19.0)


async def test_audio_backlog_takes_one_long_chunk_when_empty_and_honours_a_chunk_bound() -> None:
    assert AudioBacklog(max_s=20.0).has_room(21.8)  # a 1 MiB chunk alone
    frames = AudioBacklog(max_s=20.0, max_chunks=2)  # Twilio's fixed frames
    frame = np.zeros(320, dtype=np.float32)
    assert frames.put(frame) and frames.put(frame) and not frames.put(frame)


class _Transport(asyncio.Transport):
    pass


class _Protocol:
    def __init__(self) -> None:
        self.transport = _Transport()

    async def send(self, message: object) -> None:
        return None


class _Ws:
    def __init__(self, send: object) -> None:
        self._send = send


def test_raw_transport_is_found_through_middleware_wrappers() -> None:
    protocol = _Protocol()

    def wrap(send: object) -> object:
        async def sender(message: object) -> None:
            await send(message)  # type: ignore[operator]

        return sender

    assert raw_transport(_Ws(wrap(wrap(protocol.send)))) is protocol.transport  # type: ignore[arg-type]

    class Middleware:  # a middleware object keeping the send it wraps
        def __init__(self, send: object) -> None:
            self._send = send

        async def send(self, message: object) -> None:
            return None

    assert raw_transport(_Ws(Middleware(protocol.send).send)) is protocol.transport  # type: ignore[arg-type]
    assert raw_transport(_Ws(lambda m: None)) is None  # type: ignore[arg-type]


async def test_errors_are_dropped_not_awaited_when_the_queue_is_full() -> None:
    loop = SocketLoop(
        _Ws(None),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        name="test",
        on_audio_error=lambda exc: asyncio.sleep(0),
    )
    loop._outbox.max_bytes = 200
    assert loop.send_nowait({"type": "session.error", "message": "x" * 150})
    assert not loop.send_nowait({"type": "session.error", "message": "y" * 150})
    assert not loop.closed


def test_clip_bounds_a_client_value_and_says_its_length() -> None:
    assert clip("session.updat") == "'session.updat'"
    long = clip("t" * 100_000)
    assert len(long) < 100 and "100000 characters" in long


def test_depth_check_is_iterative_and_bounded() -> None:
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    assert _depth_exceeds(deep, 64)
    assert not _depth_exceeds({"a": [{"b": 1}]}, 64)
    assert _depth_exceeds(json.loads("[" * 65 + "]" * 65), 64)
    assert not _depth_exceeds(json.loads("[" * 64 + "]" * 64), 64)


def test_validation_summaries_clip_a_clients_keys() -> None:
    from pydantic import BaseModel, ValidationError

    class M(BaseModel):
        values: dict[str, int]

    with pytest.raises(ValidationError) as info:
        M.model_validate({"values": {"k" * 10_000: "not a number"}})
    assert len(_summarize(info.value)) < 300
