"""The sessions of a fleet of replicas sharing one Redis: who holds each, its snapshot, the per-key cap.

Each replica holds its sessions in memory (server/sessions.py) and mirrors them here, so that
another replica can carry one on (session/snapshot.py builds and rebuilds the snapshots):

- `{p}snap:{id}`: the session's latest snapshot, written at each turn's end and when its socket
  drops. While a replica holds the session attached, the key lives for the lease plus the resume
  window (renewed by that replica's heartbeat), so if the replica dies the session can still be
  resumed for a whole window; once detached, for the window.
- `{p}holder:{id}`: the replica that has the session in memory, with a lease renewed by its
  heartbeat. A resume on another replica takes the session over by writing itself there; the old
  holder sees that at its next heartbeat (or its next write, which is refused) and lets its copy go
  without finishing the record. Snapshot writes are guarded by the holder in one script, so a
  replica that lost a session can never overwrite the new holder's snapshot.
- `{p}leases:{owner}`: the owner's attached sessions across the fleet, each scored by when its lease
  lapses: `max_sessions_per_key` counts these. A replica that dies stops renewing, and its leases
  lapse within LEASE_S, so a dead replica's sessions do not hold a key's places for ever.
- `{p}live`: every session by the time after which nobody holds it (its window over, or its replica
  dead and the window over too). Every replica sweeps it, and exactly one (the one whose `ZREM`
  removes the entry) finishes the record of an abandoned session.

Every change is one Lua script, run by Redis alone, on Redis's clock (`TIME`), so replicas with
skewed clocks agree and no two replicas interleave a check and a write.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from voxgate.protocol.events import ErrorCode
from voxgate.session.store import ResumeError

log = logging.getLogger("voxgate.fleet")

LEASE_S = 15.0  # a holder or a session-cap lease not renewed for this long has lapsed (its replica is gone)
HEARTBEAT_S = 5.0  # how often a replica renews its leases and sees which sessions it lost
SWEEP_SLACK_S = 5.0  # a session's own replica finishes it at the window's end; the sweepers this much later

_NOW_MS = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "

# KEYS: snap, holder, live. ARGV: me, snapshot, snapshot ttl ms, lease ms, deadline offset ms, session id.
_SAVE = (
    _NOW_MS
    + """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[6])
return 1
"""
)
# KEYS: snap, holder. ARGV: me, lease ms, owner. -> {status, snapshot}: 1 taken, 0 not found, 2 another owner's
_CLAIM = """
local snap = redis.call('GET', KEYS[1])
if not snap then return {0, ''} end
if cjson.decode(snap)['owner'] ~= ARGV[3] then return {2, ''} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {1, snap}
"""
# KEYS: holder, snap, live, leases. ARGV: me, lease ms, snapshot ttl ms, deadline offset ms, attached, session id.
_HEARTBEAT = (
    _NOW_MS
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end  -- ended or expired elsewhere
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[5] == '1' then  -- attached
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[6])
  if redis.call('ZSCORE', KEYS[4], ARGV[6]) then redis.call('ZADD', KEYS[4], now + tonumber(ARGV[2]), ARGV[6]) end
end
return 1
"""
)
# KEYS: leases. ARGV: session id, limit, lease ms.
_ACQUIRE = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
)
# KEYS: snap, holder, live. ARGV: me, session id. -> 1 unless another replica holds the session now.
_RETIRE = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
"""
# KEYS: live. -> the sessions abandoned by now (at most 100 a sweep)
_ABANDONED = (
    _NOW_MS
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)
"""
)


@dataclass(frozen=True)
class Held:
    """A session this replica has in memory, as its heartbeat reports it."""

    session_id: str
    owner: str
    attached: bool


class Fleet:
    """This replica's view of the fleet's sessions in Redis. `client`: an asyncio Redis client."""

    def __init__(
        self, client: aioredis.Redis, *, prefix: str, resume_window_s: float, replica_id: str | None = None
    ) -> None:
        self._r = client
        self.prefix = prefix
        self.window_ms = int(resume_window_s * 1000)
        self.lease_ms = int(LEASE_S * 1000)
        self.slack_ms = int(SWEEP_SLACK_S * 1000)
        self.replica_id = replica_id or "replica_" + uuid.uuid4().hex[:12]
        self._save = client.register_script(_SAVE)
        self._claim = client.register_script(_CLAIM)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._acquire = client.register_script(_ACQUIRE)
        self._retire = client.register_script(_RETIRE)
        self._abandoned = client.register_script(_ABANDONED)

    def _keys(self, session_id: str) -> tuple[str, str]:
        return f"{self.prefix}snap:{session_id}", f"{self.prefix}holder:{session_id}"

    @property
    def _live(self) -> str:
        return f"{self.prefix}live"

    def _leases(self, owner: str) -> str:
        return f"{self.prefix}leases:{owner}"

    # ---------------------------------------------------------------- snapshots

    async def save(self, snapshot: dict[str, Any], *, attached: bool) -> bool:
        """Write the snapshot and hold the session; False when another replica holds it now."""
        sid = snapshot["session_id"]
        snap, holder = self._keys(sid)
        if attached:  # resumable for a whole window after this replica's lease lapses
            ttl, deadline = self.lease_ms + self.window_ms + self.slack_ms, self.lease_ms + self.window_ms
        else:
            ttl, deadline = self.window_ms + 2 * self.slack_ms, self.window_ms + self.slack_ms
        args = [self.replica_id, json.dumps(snapshot), ttl, self.lease_ms, deadline, sid]
        return bool(await self._save(keys=[snap, holder, self._live], args=args))

    async def holder(self, session_id: str) -> str | None:
        raw = await self._r.get(self._keys(session_id)[1])
        return raw.decode() if isinstance(raw, bytes) else None if raw is None else str(raw)

    async def claim(self, session_id: str, owner: str) -> dict[str, Any]:
        """Take the session over (whoever held it) and return its snapshot; ResumeError as a resume fails."""
        status, raw = await self._claim(keys=list(self._keys(session_id)), args=[self.replica_id, self.lease_ms, owner])
        if int(status) == 0:
            raise ResumeError(ErrorCode.SESSION_NOT_FOUND, "Session not found or grace window has expired")
        if int(status) == 2:
            raise ResumeError(ErrorCode.SESSION_FORBIDDEN, "this session belongs to another credential")
        data: dict[str, Any] = json.loads(raw)
        return data

    async def retire(self, session_id: str) -> bool:
        """The session is over here (ended, or its window ran out): its snapshot goes. True when this
        replica is the one to finish its record: no other replica took it over."""
        snap, holder = self._keys(session_id)
        return bool(await self._retire(keys=[snap, holder, self._live], args=[self.replica_id, session_id]))

    # ---------------------------------------------------------------- the per-key cap

    async def acquire_lease(self, owner: str, session_id: str, limit: int) -> bool:
        """A place among the owner's `limit` attached sessions fleet-wide (one it holds already counts once)."""
        return bool(await self._acquire(keys=[self._leases(owner)], args=[session_id, limit, self.lease_ms]))

    async def release_lease(self, owner: str, session_id: str) -> None:
        await self._r.zrem(self._leases(owner), session_id)

    # ---------------------------------------------------------------- liveness

    async def heartbeat(self, held: Sequence[Held]) -> list[str]:
        """Renew this replica's leases; the sessions another replica has taken over (or ended) since are
        returned."""
        if not held:
            return []
        ttl, deadline = self.lease_ms + self.window_ms + self.slack_ms, self.lease_ms + self.window_ms
        async with self._r.pipeline(transaction=False) as pipe:
            for h in held:
                snap, holder = self._keys(h.session_id)
                keys = [holder, snap, self._live, self._leases(h.owner)]
                args: list[str | int] = [self.replica_id, self.lease_ms, ttl, deadline, int(h.attached), h.session_id]
                await self._heartbeat(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        return [h.session_id for h, kept in zip(held, results, strict=True) if not int(kept)]

    async def sweep(self) -> list[str]:
        """Sessions nobody holds any more (window over, replica gone) whose records this replica finishes."""
        mine = []
        for raw in await self._abandoned(keys=[self._live]):
            session_id = raw.decode()
            if await self._r.zrem(self._live, session_id):  # exactly one sweeper removes it
                mine.append(session_id)
        return mine
