"""Binding a stored agent to a session (`session.update {"agent_id": ...}`, §4.1).

`agent_lookup(store)` is the Conversation's `AgentLookup`: `(owner, id or name)` to the agent's id
and its configuration as a `session.update` would send it (secrets included: the server runs its
http tools), or None. The store is read off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from voxgate.protocol.events import SessionConfig
from voxgate.store.base import AgentRecords
from voxgate.store.records import agent_session_config

Lookup = Callable[[str, str], Awaitable[tuple[str, SessionConfig] | None]]


def agent_lookup(store: AgentRecords) -> Lookup:
    async def lookup(owner: str, agent_id_or_name: str) -> tuple[str, SessionConfig] | None:
        agent = await asyncio.to_thread(store.get_agent, owner, agent_id_or_name)
        if agent is None:
            return None
        return agent["id"], SessionConfig.model_validate(agent_session_config(agent))

    return lookup
