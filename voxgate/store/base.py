"""The record store's interface: stored agents (§9) and session records with their artifacts (§10).

Every method is synchronous and thread-safe: FastAPI runs the REST routes in its thread pool, and the
session code calls in from the event loop through `asyncio.to_thread`. The SQLite store (sqlite.py)
is the default; a shared store (Redis, say) that several servers use implements the same Protocols.

Records are plain JSON-able dicts. Times are Unix seconds (floats) here; the public JSON shapes, with
ISO 8601 times and secrets masked, are built from them by records.py and nowhere else.

The full stored agent (what `get_agent` returns, secrets included):

    {"id", "owner", "name", "system_prompt", "greeting", "voice": {"voice_id"}, "input": {}, "output": {},
     "tools": [{"id", "type": "function", "name", "description", "parameters", "execution_mode",
                "timeout_seconds", "response_instructions", "dtmf_collected_arguments",
                "http": {"url", "http_method", "headers": [{"name", "value", "last_set_at"}]} | None}],
     "llm": [{"base_url", "model", "api_key"}], "pre_connect_requests": [], "transfer_targets": [],
     "outbound_trunk_id", "caller_id", "webhook": {"url", "events", "secret"} | None,
     "created_at", "updated_at"}

A session record (what `get_session` returns):

    {"id", "owner", "agent_id", "status", "close_reason", "config", "created_at", "ended_at",
     "artifacts": [{"type", "content_type"}]}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: The session statuses (§10.1); `set_status` takes the two live ones, `finish_session` the others.
LIVE_STATUSES = ("active", "disconnected")
FINAL_STATUSES = ("completed", "failed")


def final_status(close_reason: str) -> str:
    """The status a session ends with: `failed` when it ended on an error, `completed` otherwise."""
    return "failed" if close_reason == "error" else "completed"


class InvalidCursor(ValueError):
    """A `cursor` this store did not hand out (the routes answer 422)."""


@dataclass(frozen=True)
class Page:
    """One page of a newest-first list. `next_cursor` is "" on the last page."""

    items: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str = ""

    @property
    def has_more(self) -> bool:
        return bool(self.next_cursor)


@dataclass(frozen=True)
class Artifact:
    session_id: str
    type: str
    content_type: str
    data: bytes


@runtime_checkable
class AgentRecords(Protocol):
    def create_agent(self, agent: dict[str, Any]) -> None:
        """Store a new full agent (`id`, `owner`, `name`, `created_at` set by the caller)."""
        ...

    def get_agent(self, owner: str, agent_id_or_name: str) -> dict[str, Any] | None:
        """The full stored agent, secrets included: by id, else the owner's newest agent of that name."""
        ...

    def list_agents(self, owner: str, *, limit: int, cursor: str = "") -> Page:
        """The owner's agents (full records), newest first. Raises InvalidCursor."""
        ...

    def update_agent(
        self, owner: str, agent_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Replace the agent with `change(current)`, atomically; None when there is no such agent.

        An exception from `change` propagates and leaves the agent as it was.
        """
        ...

    def delete_agent(self, owner: str, agent_id: str) -> bool: ...


@runtime_checkable
class SessionRecords(Protocol):
    """What the session code writes. A write for a session that is not (or no longer) stored is a no-op:
    a record deleted while its session was ending stays deleted."""

    def start_session(
        self, session_id: str, owner: str, agent_id: str | None, config: dict[str, Any], created_at: float
    ) -> None: ...

    def finish_session(self, session_id: str, status: str, close_reason: str | None, ended_at: float) -> None:
        """`status`: "completed" or "failed"; the duration is `ended_at - created_at`."""
        ...

    def set_status(self, session_id: str, status: str) -> None:
        """ "active" or "disconnected" (in the resume window)."""
        ...

    def add_artifact(self, session_id: str, type: str, content_type: str, data: bytes) -> None:
        """Store (or replace) the session's artifact of `type`: "timeline", "metadata", "audio"."""
        ...


@runtime_checkable
class SessionQueries(Protocol):
    """What the REST routes read and delete."""

    def list_sessions(
        self, owner: str, *, limit: int, cursor: str = "", status: str | None = None, agent_id: str | None = None
    ) -> Page:
        """The owner's session records (without `artifacts`), newest first. Raises InvalidCursor."""
        ...

    def get_session(self, owner: str, session_id: str) -> dict[str, Any] | None: ...

    def delete_session(self, owner: str, session_id: str) -> bool:
        """The record and its artifacts, gone at once."""
        ...

    def get_artifact(self, session_id: str, type: str) -> Artifact | None:
        """Any owner's: the caller has checked the link's signature."""
        ...


@runtime_checkable
class Store(AgentRecords, SessionRecords, SessionQueries, Protocol):
    def artifact_secret(self) -> bytes:
        """The per-server key that signs artifact links; the same across restarts (and across the
        servers sharing this store)."""
        ...

    def purge_expired(self, now: float) -> int:
        """Delete the session records (and artifacts) older than the retention period; how many went."""
        ...

    def close(self) -> None: ...
