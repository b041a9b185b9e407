"""The fleet's bookkeeping in a real redis-server (server/fleet.py), as two replicas see it: who holds a
session, take-over on resume, refused writes of the replica that lost it, the per-key cap's leases,
and the sweep that finds abandoned sessions exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from tests.redis_server import RedisServer, redis_server
from voxgate.protocol.events import ErrorCode
from voxgate.server.fleet import Fleet, Held
from voxgate.session.store import ResumeError


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


@pytest.fixture
async def pair(server: RedisServer) -> AsyncIterator[tuple[Fleet, Fleet]]:
    """Replicas A and B on one prefix, each with its own client."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    clients = [aioredis.Redis.from_url(server.url) for _ in range(2)]
    a, b = (Fleet(c, prefix=prefix, resume_window_s=30, replica_id=n) for c, n in zip(clients, "ab", strict=True))
    yield a, b
    for client in clients:
        await client.aclose()


def snap(session_id: str, owner: str = "o", turn: int = 0) -> dict[str, object]:
    return {"session_id": session_id, "owner": owner, "turn": turn}


async def test_a_resume_elsewhere_takes_the_session_over(pair: tuple[Fleet, Fleet]) -> None:
    a, b = pair
    assert await a.save(snap("s1", turn=1), attached=True)
    assert await a.holder("s1") == "a"
    taken = await b.claim("s1", "o")
    assert taken["turn"] == 1 and await b.holder("s1") == "b"
    assert not await a.save(snap("s1", turn=2), attached=False)  # A lost it: its write is refused
    assert (await b.claim("s1", "o"))["turn"] == 1
    assert await a.heartbeat([Held("s1", "o", attached=False)]) == ["s1"]  # and A's heartbeat says so
    assert await b.heartbeat([Held("s1", "o", attached=True)]) == []
    assert not await a.retire("s1")  # not A's to finish
    assert await b.retire("s1")
    with pytest.raises(ResumeError) as gone:
        await a.claim("s1", "o")
    assert gone.value.code == ErrorCode.SESSION_NOT_FOUND
    assert await b.heartbeat([Held("s1", "o", attached=True)]) == ["s1"]  # ended: nobody holds it any more


async def test_another_owners_session_is_forbidden_and_not_taken(pair: tuple[Fleet, Fleet]) -> None:
    a, b = pair
    await a.save(snap("s2", owner="alice"), attached=True)
    with pytest.raises(ResumeError) as refused:
        await b.claim("s2", "mallory")
    assert refused.value.code == ErrorCode.SESSION_FORBIDDEN
    assert await a.holder("s2") == "a"


async def test_the_per_key_cap_counts_the_fleets_leases(pair: tuple[Fleet, Fleet]) -> None:
    a, b = pair
    assert await a.acquire_lease("o", "s1", 2) and await b.acquire_lease("o", "s2", 2)
    assert not await a.acquire_lease("o", "s3", 2)
    assert await b.acquire_lease("o", "s1", 2)  # a session that holds a place counts once (a resume)
    assert await a.acquire_lease("p", "s4", 2)  # another key's places are its own
    await b.release_lease("o", "s2")
    assert await a.acquire_lease("o", "s3", 2)


async def test_a_dead_replicas_leases_lapse(pair: tuple[Fleet, Fleet]) -> None:
    a, b = pair
    a.lease_ms = b.lease_ms = 300
    assert await a.acquire_lease("o", "s1", 1)
    assert not await b.acquire_lease("o", "s2", 1)
    await asyncio.sleep(0.5)  # A renews nothing: it died
    assert await b.acquire_lease("o", "s2", 1)


async def test_an_abandoned_session_is_swept_by_exactly_one_replica(pair: tuple[Fleet, Fleet]) -> None:
    a, b = pair
    for fleet in (a, b):
        fleet.window_ms, fleet.slack_ms, fleet.lease_ms = 200, 0, 200
    await a.save(snap("s5"), attached=False)  # dropped; then A died before its window ran out
    assert await a.sweep() == [] and await b.sweep() == []
    await asyncio.sleep(0.3)
    swept = await asyncio.gather(a.sweep(), b.sweep(), a.sweep())
    assert sorted(sid for found in swept for sid in found) == ["s5"]
