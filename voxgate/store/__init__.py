"""The server's records: stored agents (§9) and session records with their artifacts (§10).

`open_store(settings)` builds the configured store: SQLite at `store_path`, else
`voxgate.sqlite3` in `data_dir`, else in `$XDG_DATA_HOME/voxgate` (`~/.local/share/voxgate`); with
`redis_url` set, Redis (store/redis_store.py), shared by every replica. The app keeps it as
`app.state.store`.
"""

from __future__ import annotations

import os
from pathlib import Path

from voxgate.config import Settings
from voxgate.store.base import (
    FINAL_STATUSES,
    LIVE_STATUSES,
    AgentRecords,
    Artifact,
    InvalidCursor,
    Page,
    SessionQueries,
    SessionRecords,
    Store,
)
from voxgate.store.sqlite import MEMORY, SQLiteStore

STORE_FILE = "voxgate.sqlite3"

__all__ = [
    "FINAL_STATUSES",
    "LIVE_STATUSES",
    "MEMORY",
    "STORE_FILE",
    "AgentRecords",
    "Artifact",
    "InvalidCursor",
    "Page",
    "SQLiteStore",
    "SessionQueries",
    "SessionRecords",
    "Store",
    "data_dir",
    "open_store",
    "store_path",
]


def data_dir(settings: Settings) -> Path:
    if settings.data_dir:
        return Path(settings.data_dir).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "voxgate"


def store_path(settings: Settings) -> str:
    if settings.store_path:
        return settings.store_path if settings.store_path == MEMORY else str(Path(settings.store_path).expanduser())
    return str(data_dir(settings) / STORE_FILE)


def open_store(settings: Settings) -> Store:
    """The configured store; the file (or the Redis connection) is opened on first use."""
    if settings.redis_url is not None:
        from voxgate.store.redis_store import RedisStore

        return RedisStore(
            settings.redis_url.get_secret_value(),
            prefix=settings.redis_prefix,
            retention_days=settings.session_retention_days,
        )
    return SQLiteStore(store_path(settings), retention_days=settings.session_retention_days)
