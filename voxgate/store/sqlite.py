"""The default record store: one SQLite file (standard library `sqlite3`), in WAL mode.

One connection, opened on first use and shared by every thread behind a lock: the routes' thread
pool and the session code's `asyncio.to_thread` calls take turns, and each write is one short
transaction (`BEGIN IMMEDIATE`, so two servers sharing the file wait for each other instead of
failing). Nothing touches the disk until a record is read or written, so building an app (a test,
`voxgate config`) creates no file.

The schema is versioned: `schema_version` holds how many steps of MIGRATIONS have run, and opening
the file runs the rest, in order, each step in its own transaction. A new step is appended, never
edited. A file written by a newer Voxgate (more steps than this one knows) is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from voxgate.store.base import Artifact, InvalidCursor, Page

log = logging.getLogger("voxgate.store")

MEMORY = ":memory:"
SECONDS_PER_DAY = 86_400.0

#: Each step is a list of statements; step N (1-based) brings the file to schema version N.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE agents (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            doc TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX agents_by_owner ON agents (owner, created_at DESC, seq DESC)",
        "CREATE INDEX agents_by_name ON agents (owner, name)",
        """CREATE TABLE sessions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            owner TEXT NOT NULL,
            agent_id TEXT,
            status TEXT NOT NULL,
            close_reason TEXT,
            config TEXT NOT NULL,
            created_at REAL NOT NULL,
            ended_at REAL
        )""",
        "CREATE INDEX sessions_by_owner ON sessions (owner, created_at DESC, seq DESC)",
        "CREATE INDEX sessions_by_age ON sessions (coalesce(ended_at, created_at))",
        """CREATE TABLE artifacts (
            session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            type TEXT NOT NULL,
            content_type TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (session_id, type)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
ARTIFACT_ORDER = {"timeline": 0, "metadata": 1, "audio": 2}


def encode_cursor(created_at: float, seq: int) -> str:
    """An opaque cursor: the position after the last record of a page."""
    return base64.urlsafe_b64encode(f"{created_at!r}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, seq = raw.split(":")
        return float(created_at), int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(f"invalid cursor {cursor!r}: pass the previous page's next_cursor") from None


class SQLiteStore:
    """Stored agents and session records in one SQLite file (or `":memory:"`, gone at close).

    `retention_days`: session records older than this (from their end, or their start while they
    have none) go at `purge_expired`; 0 keeps them.
    """

    def __init__(self, path: str | Path, *, retention_days: float = 0.0) -> None:
        self.path = str(path)
        self.retention_days = retention_days
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._secret: bytes | None = None

    # ---------------------------------------------------------------- connection and schema

    def _db(self) -> sqlite3.Connection:
        with self._lock:
            if self._conn is None:
                self._conn = self._open()
            return self._conn

    def _open(self) -> sqlite3.Connection:
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; each write opens its own (see _tx).
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            if self.path != MEMORY:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")  # two servers opening one file: the second waits, then finds it done
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (0)")
                version = 0
            else:
                version = int(row[0])
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: schema version {version} is newer than this Voxgate's ({SCHEMA_VERSION})"
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for number in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                current = int(conn.execute("SELECT version FROM schema_version").fetchone()[0])
                if current < number:
                    for statement in MIGRATIONS[number - 1]:
                        conn.execute(statement)
                    conn.execute("UPDATE schema_version SET version = ?", (number,))
                    log.info("store %s: schema version %d", self.path, number)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, under the lock; rolled back if the block raises."""
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db().execute(sql, args).fetchall()

    def schema_version(self) -> int:
        return int(self._query("SELECT version FROM schema_version")[0][0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def artifact_secret(self) -> bytes:
        with self._lock:
            if self._secret is None:
                with self._tx() as conn:
                    conn.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('artifact_secret', ?)",
                        (secrets.token_hex(32),),
                    )
                    row = conn.execute("SELECT value FROM meta WHERE key = 'artifact_secret'").fetchone()
                self._secret = bytes.fromhex(row[0])
            return self._secret

    # ---------------------------------------------------------------- agents

    def create_agent(self, agent: dict[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO agents (id, owner, name, doc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    agent["id"],
                    agent["owner"],
                    agent["name"],
                    json.dumps(agent),
                    agent["created_at"],
                    agent.get("updated_at", agent["created_at"]),
                ),
            )

    def get_agent(self, owner: str, agent_id_or_name: str) -> dict[str, Any] | None:
        rows = self._query("SELECT doc FROM agents WHERE owner = ? AND id = ?", (owner, agent_id_or_name))
        if not rows:
            rows = self._query(
                "SELECT doc FROM agents WHERE owner = ? AND name = ? ORDER BY created_at DESC, seq DESC LIMIT 1",
                (owner, agent_id_or_name),
            )
        return json.loads(rows[0]["doc"]) if rows else None

    def list_agents(self, owner: str, *, limit: int, cursor: str = "") -> Page:
        rows = self._page("agents", "doc, created_at, seq", "owner = ?", [owner], limit, cursor)
        return self._paged(rows, limit, lambda row: json.loads(row["doc"]))

    def update_agent(
        self, owner: str, agent_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any] | None:
        with self._tx() as conn:
            row = conn.execute("SELECT doc FROM agents WHERE owner = ? AND id = ?", (owner, agent_id)).fetchone()
            if row is None:
                return None
            agent = change(json.loads(row["doc"]))
            agent["id"], agent["owner"] = agent_id, owner  # never moved by a change
            conn.execute(
                "UPDATE agents SET name = ?, doc = ?, updated_at = ? WHERE id = ?",
                (agent["name"], json.dumps(agent), agent["updated_at"], agent_id),
            )
            return agent

    def delete_agent(self, owner: str, agent_id: str) -> bool:
        with self._tx() as conn:
            return conn.execute("DELETE FROM agents WHERE owner = ? AND id = ?", (owner, agent_id)).rowcount > 0

    # ---------------------------------------------------------------- sessions: what the session code writes

    def start_session(
        self, session_id: str, owner: str, agent_id: str | None, config: dict[str, Any], created_at: float
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO sessions (id, owner, agent_id, status, config, created_at)"
                " VALUES (?, ?, ?, 'active', ?, ?) ON CONFLICT (id) DO NOTHING",
                (session_id, owner, agent_id or None, json.dumps(config), created_at),
            )

    def finish_session(self, session_id: str, status: str, close_reason: str | None, ended_at: float) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE sessions SET status = ?, close_reason = ?, ended_at = ? WHERE id = ?",
                (status, close_reason, ended_at, session_id),
            )

    def set_status(self, session_id: str, status: str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE sessions SET status = ? WHERE id = ?", (status, session_id))

    def add_artifact(self, session_id: str, type: str, content_type: str, data: bytes) -> None:
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
                return  # deleted while it was ending: it stays deleted
            conn.execute(
                "INSERT INTO artifacts (session_id, type, content_type, data) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (session_id, type) DO UPDATE SET content_type = excluded.content_type,"
                " data = excluded.data",
                (session_id, type, content_type, sqlite3.Binary(data)),
            )

    # ---------------------------------------------------------------- sessions: what the routes read

    def list_sessions(
        self, owner: str, *, limit: int, cursor: str = "", status: str | None = None, agent_id: str | None = None
    ) -> Page:
        where, args = ["owner = ?"], [owner]
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if agent_id is not None:
            where.append("agent_id = ?")
            args.append(agent_id)
        rows = self._page("sessions", "*", " AND ".join(where), args, limit, cursor)
        return self._paged(rows, limit, _session)

    def get_session(self, owner: str, session_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM sessions WHERE owner = ? AND id = ?", (owner, session_id))
        if not rows:
            return None
        record = _session(rows[0])
        kinds = self._query("SELECT type, content_type FROM artifacts WHERE session_id = ?", (session_id,))
        ordered = sorted(kinds, key=lambda r: (ARTIFACT_ORDER.get(r["type"], len(ARTIFACT_ORDER)), r["type"]))
        record["artifacts"] = [{"type": r["type"], "content_type": r["content_type"]} for r in ordered]
        return record

    def delete_session(self, owner: str, session_id: str) -> bool:
        with self._tx() as conn:
            found = conn.execute("SELECT 1 FROM sessions WHERE owner = ? AND id = ?", (owner, session_id)).fetchone()
            if found is None:
                return False
            conn.execute("DELETE FROM artifacts WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            return True

    def get_artifact(self, session_id: str, type: str) -> Artifact | None:
        rows = self._query(
            "SELECT content_type, data FROM artifacts WHERE session_id = ? AND type = ?", (session_id, type)
        )
        if not rows:
            return None
        return Artifact(session_id, type, rows[0]["content_type"], bytes(rows[0]["data"]))

    def purge_expired(self, now: float) -> int:
        if self.retention_days <= 0:
            return 0
        cutoff = now - self.retention_days * SECONDS_PER_DAY
        old = "SELECT id FROM sessions WHERE coalesce(ended_at, created_at) < ?"
        with self._tx() as conn:
            conn.execute(f"DELETE FROM artifacts WHERE session_id IN ({old})", (cutoff,))
            count = conn.execute("DELETE FROM sessions WHERE coalesce(ended_at, created_at) < ?", (cutoff,)).rowcount
        if count:
            log.info(
                "store %s: %d session records past the retention of %g days deleted",
                self.path,
                count,
                self.retention_days,
            )
        return int(count)

    # ---------------------------------------------------------------- pagination

    def _page(
        self, table: str, columns: str, where: str, args: list[Any], limit: int, cursor: str
    ) -> list[sqlite3.Row]:
        """Newest first by (created_at, seq): a page after `cursor`, with one more row to tell has_more."""
        if cursor:
            created_at, seq = decode_cursor(cursor)
            where += " AND (created_at < ? OR (created_at = ? AND seq < ?))"
            args = [*args, created_at, created_at, seq]
        sql = f"SELECT {columns} FROM {table} WHERE {where} ORDER BY created_at DESC, seq DESC LIMIT ?"
        return self._query(sql, (*args, limit + 1))

    @staticmethod
    def _paged(rows: list[sqlite3.Row], limit: int, record: Callable[[sqlite3.Row], dict[str, Any]]) -> Page:
        items = [record(row) for row in rows[:limit]]
        if len(rows) <= limit:
            return Page(items, "")
        last = rows[limit - 1]
        return Page(items, encode_cursor(float(last["created_at"]), int(last["seq"])))


def _session(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "owner": row["owner"],
        "agent_id": row["agent_id"],
        "status": row["status"],
        "close_reason": row["close_reason"],
        "config": json.loads(row["config"]),
        "created_at": float(row["created_at"]),
        "ended_at": None if row["ended_at"] is None else float(row["ended_at"]),
    }
