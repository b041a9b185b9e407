"""The state replicas share when `redis_url` is set: one asyncio Redis client, the token ledger and
the fleet of sessions built on it (the record store has its own blocking client: store/redis_store.py).

Unset, there is nothing shared: tokens in memory, sessions in this process, as a single server has
always run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

from voxgate.config import Settings
from voxgate.server.fleet import Fleet
from voxgate.server.redis_tokens import RedisTokenLedger

log = logging.getLogger("voxgate.fleet")


@dataclass
class SharedState:
    client: aioredis.Redis
    ledger: RedisTokenLedger
    fleet: Fleet

    async def close(self) -> None:
        await self.client.aclose()


def connect(settings: Settings) -> SharedState | None:
    """The shared state of the configured Redis (connections open on first use); None without one."""
    if settings.redis_url is None:
        return None
    client = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    prefix = settings.redis_prefix
    ledger = RedisTokenLedger(client, prefix=prefix, max_live_tokens=settings.max_live_tokens)
    fleet = Fleet(client, prefix=prefix, resume_window_s=settings.resume_window_s)
    log.info("shared state in Redis (prefix %r), this replica is %s", prefix, fleet.replica_id)
    return SharedState(client, ledger, fleet)
