"""The token ledger of a fleet: temporary and resume tokens in Redis, shared by every replica.

Single use across replicas is the point: a token minted on A and presented to A and B at the same
moment must open exactly one socket. Redis runs each command and each Lua script alone, so `spend`
is one `GETDEL` (read and delete in one step; no replica can read the token between another's read
and delete, as it could with GET then DEL), inside a script that also drops it from the live count.
Minting is a script too, so the cap check and the write cannot interleave with another replica's
(two replicas checking "under the cap" and both writing would pass it).

Tokens are kept under the SHA-256 of their value, never the value itself: a Redis dump or `MONITOR`
shows no usable token. Expiry is Redis's own (`PX`), on Redis's clock (`TIME` in the scripts), so
replicas with skewed clocks agree. The live counts are sorted sets scored by expiry, trimmed on every
mint; per session, a set names its resume tokens for revocation. Keys: `{prefix}tok:{hash}`,
`{prefix}rtok:{hash}`, `{prefix}toks`, `{prefix}rtoks`, `{prefix}rtoks:{session_id}`. The scripts
touch keys they compute, so this needs one Redis (with replicas, or Sentinel), not Redis Cluster.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis.asyncio as aioredis

from voxgate.server.principal import Principal, Scope
from voxgate.server.token_ledger import LedgerFull

_NOW_MS = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "

# KEYS: token key, live set. ARGV: principal, ttl ms, cap, hash.
_ISSUE = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local soonest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return tonumber(soonest[2]) - now
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[4])
return -1
"""
)
# KEYS: token key, live set. ARGV: hash.
_SPEND = """
local value = redis.call('GETDEL', KEYS[1])
if value then redis.call('ZREM', KEYS[2], ARGV[1]) end
return value
"""
# KEYS: token key, live set, the session's set. ARGV: principal, ttl ms, cap, hash, resume key prefix.
_ISSUE_RESUME = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
while redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) do
  local oldest = redis.call('ZPOPMIN', KEYS[2])
  redis.call('DEL', ARGV[5] .. oldest[1])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[4])
redis.call('SADD', KEYS[3], ARGV[4])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
return 1
"""
)
# KEYS: the session's set, live set. ARGV: resume key prefix.
_REVOKE = """
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('DEL', ARGV[1] .. h)
  redis.call('ZREM', KEYS[2], h)
end
return redis.call('DEL', KEYS[1])
"""
# KEYS: temporary live set, resume live set.
_HELD = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
"""
)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_json(principal: Principal) -> str:
    return json.dumps(
        {
            "owner": principal.owner,
            "scopes": sorted(principal.scopes),
            "via_token": principal.via_token,
            "max_session_s": principal.max_session_s,
            "resume_of": principal.resume_of,
        }
    )


def principal_from(raw: bytes | str | None) -> Principal | None:
    if raw is None:
        return None
    data: dict[str, Any] = json.loads(raw)
    return Principal(
        owner=data["owner"],
        scopes=frozenset(Scope(s) for s in data["scopes"]),
        via_token=bool(data["via_token"]),
        max_session_s=int(data["max_session_s"]),
        resume_of=data.get("resume_of"),
    )


class RedisTokenLedger:
    """Tokens in Redis for every replica sharing `prefix`. `client`: an asyncio Redis client."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, max_live_tokens: int) -> None:
        self._r = client
        self.prefix = prefix
        self.max_live_tokens = max_live_tokens
        self._issue = client.register_script(_ISSUE)
        self._spend = client.register_script(_SPEND)
        self._issue_resume = client.register_script(_ISSUE_RESUME)
        self._revoke = client.register_script(_REVOKE)
        self._held = client.register_script(_HELD)

    def _tok(self, token: str) -> str:
        return f"{self.prefix}tok:{_hash(token)}"

    def _rtok(self, token: str) -> str:
        return f"{self.prefix}rtok:{_hash(token)}"

    async def issue(self, token: str, principal: Principal, ttl_s: float) -> None:
        ttl_ms = max(1, int(ttl_s * 1000))
        keys = [self._tok(token), f"{self.prefix}toks"]
        wait_ms = int(
            await self._issue(keys=keys, args=[principal_json(principal), ttl_ms, self.max_live_tokens, _hash(token)])
        )
        if wait_ms >= 0:
            raise LedgerFull(self.max_live_tokens, max(1, -(-wait_ms // 1000)))

    async def spend(self, token: str) -> Principal | None:
        raw = await self._spend(keys=[self._tok(token), f"{self.prefix}toks"], args=[_hash(token)])
        return principal_from(raw)

    async def issue_resume(self, token: str, principal: Principal, ttl_s: float) -> None:
        ttl_ms = max(1, int(ttl_s * 1000))
        keys = [self._rtok(token), f"{self.prefix}rtoks", f"{self.prefix}rtoks:{principal.resume_of}"]
        args: list[str | int] = [principal_json(principal), ttl_ms, self.max_live_tokens, _hash(token)]
        args.append(f"{self.prefix}rtok:")
        await self._issue_resume(keys=keys, args=args)

    async def resume_principal(self, token: str) -> Principal | None:
        return principal_from(await self._r.get(self._rtok(token)))

    async def revoke_session(self, session_id: str) -> None:
        keys = [f"{self.prefix}rtoks:{session_id}", f"{self.prefix}rtoks"]
        await self._revoke(keys=keys, args=[f"{self.prefix}rtok:"])

    async def is_live(self, token: str) -> bool:
        return bool(await self._r.exists(self._tok(token), self._rtok(token)))

    async def held(self) -> dict[str, int]:
        tokens, resume = await self._held(keys=[f"{self.prefix}toks", f"{self.prefix}rtoks"])
        return {"tokens": int(tokens), "resume_tokens": int(resume)}

    async def close(self) -> None:
        return None  # the client belongs to the app, which closes it
