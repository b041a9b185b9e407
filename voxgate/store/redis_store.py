"""The record store of a fleet: stored agents and session records (with artifacts) in Redis.

Every replica behind a load balancer sees the same agents and records, which one SQLite file per
replica cannot give. The behaviour is the SQLite store's (store/sqlite.py is the reference; the same
unit tests run on both): newest-first pages by `(created_at, seq)` with opaque cursors, lookup of an
agent by id or by its owner's newest of that name, writes to a session that is not stored being
no-ops, retention by end time.

The Store interface is synchronous and thread-safe (FastAPI's thread pool and `asyncio.to_thread`
call it), so this uses redis-py's blocking client, whose connection pool is thread-safe.

Layout (`p` is the prefix):
- `p:agent:{id}`: the agent's JSON; `p:agents:{owner}` and `p:agentname:{owner}:{name}`: indexes.
- `p:session:{id}`: the session record, a hash of JSON values (`doc`: what never changes; `status`,
  `close_reason`, `ended_at`: what does, so a change is one `HSET` of a record that exists);
  `p:sessions:{owner}`: index; `p:sessions:age`: a sorted set by `coalesce(ended_at, created_at)`
  for retention.
- `p:artifact:{id}:{type}`: the artifact's bytes; `p:artifacts:{id}`: a hash of type -> content type.
- `p:seq`: the counter of `seq`; `p:meta:artifact_secret`: the key that signs artifact links.

An index is a sorted set whose members all have score 0 and read `{created_us:016d}:{seq:012d}:{id}`,
so lexicographic order is `(created_at, seq)` order and a page is one `ZREVRANGEBYLEX` from the
cursor: the same order SQLite's index gives. Changes that must not interleave (update, delete, a
write that must find its session) run as Lua scripts or WATCH transactions.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
from collections.abc import Callable
from typing import Any

import redis

from voxgate.store.base import Artifact, InvalidCursor, Page

log = logging.getLogger("voxgate.store")

SECONDS_PER_DAY = 86_400.0
ARTIFACT_ORDER = {"timeline": 0, "metadata": 1, "audio": 2}
_POSITION = re.compile(r"^\d{16}:\d{12}$")
_CHANGING = ("status", "close_reason", "ended_at")  # a session record's fields that change after its start
SCAN_CHUNK = 200  # index entries read at once while filtering a page of sessions

# KEYS: a session record (a hash). ARGV: field, value, ... Writes only a record that exists.
_PATCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
# KEYS: session record, artifact, artifact hash. ARGV: type, content type, data.
_ADD_ARTIFACT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 1
"""


def _member(created_at: float, seq: int, record_id: str) -> str:
    return f"{_position(created_at, seq)}:{record_id}"


def _position(created_at: float, seq: int) -> str:
    return f"{max(0, round(created_at * 1_000_000)):016d}:{seq:012d}"


def encode_cursor(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        position = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        position = ""
    if not _POSITION.match(position):
        raise InvalidCursor(f"invalid cursor {cursor!r}: pass the previous page's next_cursor")
    return position


class RedisStore:
    """Stored agents and session records in Redis at `url`, under `prefix` (shared by the fleet).

    `retention_days`: session records older than this (from their end, or their start while they
    have none) go at `purge_expired`; 0 keeps them. `client`: a blocking client to use instead of
    one made from `url` (tests).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "voxgate:",
        retention_days: float = 0.0,
        client: redis.Redis | None = None,
    ) -> None:
        self.prefix = prefix
        self.retention_days = retention_days
        self._r: redis.Redis = client if client is not None else redis.Redis.from_url(url)
        self._patch = self._r.register_script(_PATCH)
        self._add_artifact = self._r.register_script(_ADD_ARTIFACT)
        self._secret: bytes | None = None

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def close(self) -> None:
        self._r.close()

    def ping(self) -> bool:
        """Redis answers (`/ready` asks: a replica that cannot reach the shared state takes no new sessions)."""
        try:
            return bool(self._r.ping())
        except redis.RedisError:
            return False

    def artifact_secret(self) -> bytes:
        if self._secret is None:
            key = self._k("meta", "artifact_secret")
            self._r.set(key, secrets.token_hex(32), nx=True)
            raw = self._r.get(key)
            assert raw is not None
            self._secret = bytes.fromhex(_text(raw))
        return self._secret

    def _seq(self) -> int:
        return int(self._r.incr(self._k("seq")))

    def _load(self, key: str) -> dict[str, Any] | None:
        raw = self._r.get(key)
        return json.loads(raw) if raw is not None else None

    def _session_doc(self, session_id: str) -> dict[str, Any] | None:
        fields = self._r.hgetall(self._k("session", session_id))
        if b"doc" not in fields:
            return None
        doc: dict[str, Any] = json.loads(fields[b"doc"])
        for name in _CHANGING:
            raw = fields.get(name.encode())
            doc[name] = json.loads(raw) if raw is not None else None
        return doc

    # ---------------------------------------------------------------- agents

    def create_agent(self, agent: dict[str, Any]) -> None:
        doc = {**agent, "updated_at": agent.get("updated_at", agent["created_at"]), "_seq": self._seq()}
        member = _member(doc["created_at"], doc["_seq"], doc["id"])
        if not self._r.set(self._k("agent", doc["id"]), json.dumps(doc), nx=True):
            raise ValueError(f"agent {doc['id']!r} exists")
        pipe = self._r.pipeline()
        pipe.zadd(self._k("agents", doc["owner"]), {member: 0})
        pipe.zadd(self._k("agentname", doc["owner"], doc["name"]), {member: 0})
        pipe.execute()

    def get_agent(self, owner: str, agent_id_or_name: str) -> dict[str, Any] | None:
        doc = self._load(self._k("agent", agent_id_or_name))
        if doc is None or doc["owner"] != owner:
            newest = self._r.zrevrangebylex(self._k("agentname", owner, agent_id_or_name), "+", "-", 0, 1)
            if not newest:
                return None
            doc = self._load(self._k("agent", _text(newest[0]).split(":", 2)[2]))
            if doc is None or doc["owner"] != owner:
                return None
        return _public(doc)

    def list_agents(self, owner: str, *, limit: int, cursor: str = "") -> Page:
        items, next_position = self._page(
            self._k("agents", owner), lambda i: self._load(self._k("agent", i)), limit, cursor, lambda _: True
        )
        return Page([_public(d) for d in items], encode_cursor(next_position) if next_position else "")

    def update_agent(
        self, owner: str, agent_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any] | None:
        key = self._k("agent", agent_id)
        with self._r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.unwatch()
                        return None
                    current = json.loads(raw)
                    if current["owner"] != owner:
                        pipe.unwatch()
                        return None
                    agent = change(_public(current))  # raises: nothing written (the WATCH is let go)
                    agent["id"], agent["owner"] = agent_id, owner  # never moved by a change
                    doc = {**agent, "created_at": current["created_at"], "_seq": current["_seq"]}
                    member = _member(current["created_at"], current["_seq"], agent_id)
                    pipe.multi()
                    pipe.set(key, json.dumps(doc))
                    if agent["name"] != current["name"]:
                        pipe.zrem(self._k("agentname", owner, current["name"]), member)
                        pipe.zadd(self._k("agentname", owner, agent["name"]), {member: 0})
                    pipe.execute()
                    return _public(doc)
                except redis.WatchError:
                    continue  # another replica changed it between our read and write: read it again
                finally:
                    pipe.reset()

    def delete_agent(self, owner: str, agent_id: str) -> bool:
        key = self._k("agent", agent_id)
        doc = self._load(key)
        if doc is None or doc["owner"] != owner:
            return False
        member = _member(doc["created_at"], doc["_seq"], agent_id)
        pipe = self._r.pipeline()
        pipe.delete(key)
        pipe.zrem(self._k("agents", owner), member)
        pipe.zrem(self._k("agentname", owner, doc["name"]), member)
        deleted = pipe.execute()[0]
        return bool(deleted)

    # ---------------------------------------------------------------- sessions: what the session code writes

    def start_session(
        self, session_id: str, owner: str, agent_id: str | None, config: dict[str, Any], created_at: float
    ) -> None:
        seq = self._seq()
        doc = {
            "id": session_id,
            "owner": owner,
            "agent_id": agent_id or None,
            "status": "active",
            "close_reason": None,
            "config": config,
            "created_at": created_at,
            "ended_at": None,
            "_seq": seq,
        }
        fixed = {k: v for k, v in doc.items() if k not in _CHANGING}
        if not self._r.hsetnx(self._k("session", session_id), "doc", json.dumps(fixed)):
            return  # ON CONFLICT DO NOTHING, as SQLite: a resumed session is not started again
        self._r.hset(self._k("session", session_id), mapping={k: json.dumps(doc[k]) for k in _CHANGING})
        pipe = self._r.pipeline()
        pipe.zadd(self._k("sessions", owner), {_member(created_at, seq, session_id): 0})
        pipe.zadd(self._k("sessions", "age"), {session_id: created_at})
        pipe.execute()

    def finish_session(self, session_id: str, status: str, close_reason: str | None, ended_at: float) -> None:
        change = [
            "status",
            json.dumps(status),
            "close_reason",
            json.dumps(close_reason),
            "ended_at",
            json.dumps(ended_at),
        ]
        if self._patch(keys=[self._k("session", session_id)], args=change):
            self._r.zadd(self._k("sessions", "age"), {session_id: ended_at}, xx=True)

    def set_status(self, session_id: str, status: str) -> None:
        self._patch(keys=[self._k("session", session_id)], args=["status", json.dumps(status)])

    def add_artifact(self, session_id: str, type: str, content_type: str, data: bytes) -> None:
        keys = [self._k("session", session_id), self._k("artifact", session_id, type), self._k("artifacts", session_id)]
        self._add_artifact(keys=keys, args=[type, content_type, data])

    # ---------------------------------------------------------------- sessions: what the routes read

    def list_sessions(
        self, owner: str, *, limit: int, cursor: str = "", status: str | None = None, agent_id: str | None = None
    ) -> Page:
        def wanted(doc: dict[str, Any]) -> bool:
            return (status is None or doc["status"] == status) and (agent_id is None or doc["agent_id"] == agent_id)

        items, next_position = self._page(self._k("sessions", owner), self._session_doc, limit, cursor, wanted)
        return Page([_session(d) for d in items], encode_cursor(next_position) if next_position else "")

    def get_session(self, owner: str, session_id: str) -> dict[str, Any] | None:
        doc = self._session_doc(session_id)
        if doc is None or doc["owner"] != owner:
            return None
        record = _session(doc)
        kinds = {_text(k): _text(v) for k, v in self._r.hgetall(self._k("artifacts", session_id)).items()}
        ordered = sorted(kinds, key=lambda t: (ARTIFACT_ORDER.get(t, len(ARTIFACT_ORDER)), t))
        record["artifacts"] = [{"type": t, "content_type": kinds[t]} for t in ordered]
        return record

    def delete_session(self, owner: str, session_id: str) -> bool:
        doc = self._session_doc(session_id)
        if doc is None or doc["owner"] != owner:
            return False
        self._drop_session(doc)
        return True

    def _drop_session(self, doc: dict[str, Any]) -> None:
        sid = doc["id"]
        types = [_text(t) for t in self._r.hkeys(self._k("artifacts", sid))]
        pipe = self._r.pipeline()
        pipe.delete(self._k("session", sid), self._k("artifacts", sid), *(self._k("artifact", sid, t) for t in types))
        pipe.zrem(self._k("sessions", doc["owner"]), _member(doc["created_at"], doc["_seq"], sid))
        pipe.zrem(self._k("sessions", "age"), sid)
        pipe.execute()

    def get_artifact(self, session_id: str, type: str) -> Artifact | None:
        pipe = self._r.pipeline()
        pipe.hget(self._k("artifacts", session_id), type)
        pipe.get(self._k("artifact", session_id, type))
        content_type, data = pipe.execute()
        if content_type is None or data is None:
            return None
        return Artifact(session_id, type, content_type.decode(), bytes(data))

    def purge_expired(self, now: float) -> int:
        if self.retention_days <= 0:
            return 0
        cutoff = now - self.retention_days * SECONDS_PER_DAY
        count = 0
        for raw in self._r.zrangebyscore(self._k("sessions", "age"), "-inf", f"({cutoff}"):
            sid = _text(raw)
            doc = self._session_doc(sid)
            if doc is None:
                self._r.zrem(self._k("sessions", "age"), sid)
                continue
            self._drop_session(doc)
            count += 1
        if count:
            log.info(
                "store %s: %d session records past the retention of %g days deleted",
                self.prefix,
                count,
                self.retention_days,
            )
        return count

    # ---------------------------------------------------------------- pagination

    def _page(
        self,
        index: str,
        load: Callable[[str], dict[str, Any] | None],
        limit: int,
        cursor: str,
        wanted: Callable[[dict[str, Any]], bool],
    ) -> tuple[list[dict[str, Any]], str]:
        """Up to `limit` wanted records after `cursor`, newest first, and the position after the last one
        ("" when nothing wanted follows)."""
        top = "(" + decode_cursor(cursor) + ":" if cursor else "+"  # ':' sorts after every digit, before any id
        items: list[dict[str, Any]] = []
        while True:
            members = self._r.zrevrangebylex(index, top, "-", 0, SCAN_CHUNK)
            if not members:
                return items, ""
            for raw in members:
                member = _text(raw)
                doc = load(member.split(":", 2)[2])
                if doc is None or not wanted(doc):
                    continue
                if len(items) == limit:  # one more wanted record exists: this page has a next one
                    last = items[-1]
                    return items, _position(last["created_at"], last["_seq"])
                items.append(doc)
            top = "(" + _text(members[-1])


def _text(raw: Any) -> str:
    """A value Redis returned (bytes: this client does not decode, since artifacts are binary) as text."""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    """The record as the Store interface returns it: without this store's own bookkeeping."""
    return {k: v for k, v in doc.items() if k != "_seq"}


def _session(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["id"],
        "owner": doc["owner"],
        "agent_id": doc["agent_id"],
        "status": doc["status"],
        "close_reason": doc["close_reason"],
        "config": doc["config"],
        "created_at": float(doc["created_at"]),
        "ended_at": None if doc["ended_at"] is None else float(doc["ended_at"]),
    }
