"""The Redis record store and token ledger against a real redis-server: the SQLite store's behaviour
(store/sqlite.py is the reference), and tokens single-use across two ledgers as two replicas hold them."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from tests.redis_server import RedisServer, redis_server
from voxgate.server.auth import Authenticator, AuthError
from voxgate.server.redis_tokens import RedisTokenLedger
from voxgate.store import InvalidCursor, SessionRecords, Store
from voxgate.store.redis_store import RedisStore

DAY = 86_400.0
T0 = 1_800_000_000.0
KEY = "k"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


@pytest.fixture
def store(server: RedisServer) -> Iterator[RedisStore]:
    """A store of its own (a fresh prefix): tests do not see each other's records."""
    made = RedisStore(server.url, prefix=f"t{uuid.uuid4().hex[:8]}:")
    yield made
    made.close()


def agent(owner: str, agent_id: str, name: str, created_at: float) -> dict[str, Any]:
    return {
        "id": agent_id,
        "owner": owner,
        "name": name,
        "system_prompt": "p",
        "voice": {"voice_id": "ivy"},
        "created_at": created_at,
        "updated_at": created_at,
    }


def test_it_implements_the_interfaces(store: RedisStore) -> None:
    assert isinstance(store, Store) and isinstance(store, SessionRecords)


def test_agents_by_id_or_name_within_the_owner(store: RedisStore) -> None:
    store.create_agent(agent("o", "agent_1", "desk", T0))
    store.create_agent(agent("o", "agent_2", "desk", T0 + 1))
    store.create_agent(agent("p", "agent_3", "desk", T0 + 2))
    got = store.get_agent("o", "desk")
    assert got is not None and got["id"] == "agent_2"  # the newest of that name
    assert store.get_agent("o", "agent_3") is None and store.get_agent("p", "agent_1") is None
    assert store.get_agent("o", "agent_1") == agent("o", "agent_1", "desk", T0)  # as stored, nothing added


def test_an_update_is_atomic_and_a_failing_change_keeps_the_agent(store: RedisStore) -> None:
    store.create_agent(agent("o", "agent_1", "desk", T0))

    def rename(current: dict[str, Any]) -> dict[str, Any]:
        return {**current, "name": "front", "updated_at": T0 + 5, "id": "agent_moved", "owner": "thief"}

    updated = store.update_agent("o", "agent_1", rename)
    assert updated is not None and updated["id"] == "agent_1" and updated["owner"] == "o"
    assert store.get_agent("o", "front") is not None and store.get_agent("o", "desk") is None

    def fail(current: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("no")

    with pytest.raises(ValueError):
        store.update_agent("o", "agent_1", fail)
    assert store.get_agent("o", "agent_1") == updated
    assert store.update_agent("p", "agent_1", rename) is None
    assert not store.delete_agent("p", "agent_1") and store.delete_agent("o", "agent_1")
    assert store.get_agent("o", "agent_1") is None and store.list_agents("o", limit=5).items == []


def test_concurrent_updates_from_two_replicas_lose_nothing(server: RedisServer, store: RedisStore) -> None:
    other = RedisStore(server.url, prefix=store.prefix)  # a second replica on the same Redis
    store.create_agent({**agent("o", "agent_1", "desk", T0), "count": 0})

    def bump(current: dict[str, Any]) -> dict[str, Any]:
        return {**current, "count": current["count"] + 1}

    def work(target: RedisStore) -> None:
        for _ in range(50):
            target.update_agent("o", "agent_1", bump)

    threads = [threading.Thread(target=work, args=(s,)) for s in (store, other, store, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get_agent("o", "agent_1")["count"] == 200  # type: ignore[index]
    other.close()


def test_agent_pages_are_newest_first(store: RedisStore) -> None:
    for i in range(5):
        store.create_agent(agent("o", f"agent_{i}", f"n{i}", T0 + (i // 2)))  # ties on created_at too
    first = store.list_agents("o", limit=3)
    assert [a["id"] for a in first.items] == ["agent_4", "agent_3", "agent_2"] and first.has_more
    second = store.list_agents("o", limit=3, cursor=first.next_cursor)
    assert [a["id"] for a in second.items] == ["agent_1", "agent_0"] and second.next_cursor == ""
    assert store.list_agents("p", limit=3).items == []
    exact = store.list_agents("o", limit=5)
    assert len(exact.items) == 5 and not exact.has_more
    with pytest.raises(InvalidCursor):
        store.list_agents("o", limit=3, cursor="not-a-cursor")


def test_the_session_codes_writes(store: RedisStore) -> None:
    store.start_session("sess_1", "o", None, {"greeting": "hi", "tools": [], "input": {}}, T0)
    record = store.get_session("o", "sess_1")
    assert record is not None and record["status"] == "active" and record["ended_at"] is None
    assert record["agent_id"] is None and record["artifacts"] == []
    assert record["config"] == {"greeting": "hi", "tools": [], "input": {}}  # empty lists stay lists
    store.set_status("sess_1", "disconnected")
    assert store.get_session("o", "sess_1")["status"] == "disconnected"  # type: ignore[index]
    store.set_status("sess_1", "active")
    store.start_session("sess_1", "o", "agent_x", {"other": True}, T0 + 9)  # a second start changes nothing
    store.finish_session("sess_1", "failed", "error", T0 + 3)
    store.add_artifact("sess_1", "audio", "audio/wav", b"RIFF\x00\xff")
    store.add_artifact("sess_1", "metadata", "application/json", b"{}")
    store.add_artifact("sess_1", "timeline", "application/json", b"[1]")
    store.add_artifact("sess_1", "timeline", "application/json", b"[2]")  # replaced
    record = store.get_session("o", "sess_1")
    assert record is not None
    assert (record["status"], record["close_reason"], record["ended_at"]) == ("failed", "error", T0 + 3)
    assert record["config"] == {"greeting": "hi", "tools": [], "input": {}} and record["created_at"] == T0
    assert [a["type"] for a in record["artifacts"]] == ["timeline", "metadata", "audio"]
    assert store.get_artifact("sess_1", "timeline").data == b"[2]"  # type: ignore[union-attr]
    assert store.get_artifact("sess_1", "audio").data == b"RIFF\x00\xff"  # type: ignore[union-attr]
    assert store.get_session("p", "sess_1") is None


def test_writes_for_a_deleted_session_do_not_bring_it_back(store: RedisStore) -> None:
    store.start_session("sess_1", "o", None, {}, T0)
    store.add_artifact("sess_1", "timeline", "application/json", b"[]")
    assert not store.delete_session("p", "sess_1")
    assert store.delete_session("o", "sess_1") and not store.delete_session("o", "sess_1")
    store.finish_session("sess_1", "completed", "client_end", T0 + 1)
    store.set_status("sess_1", "active")
    store.add_artifact("sess_1", "metadata", "application/json", b"{}")
    assert store.get_session("o", "sess_1") is None and store.get_artifact("sess_1", "timeline") is None
    assert store.get_artifact("sess_1", "metadata") is None
    assert store.list_sessions("o", limit=10).items == []


def test_session_filters_and_pages(store: RedisStore) -> None:
    for i in range(6):
        store.start_session(f"sess_{i}", "o", "agent_a" if i % 2 else "agent_b", {}, T0 + i)
        if i < 4:
            store.finish_session(f"sess_{i}", "completed", "client_end", T0 + i + 1)
    store.start_session("sess_other", "p", "agent_a", {}, T0 + 10)
    assert [s["id"] for s in store.list_sessions("o", limit=10, status="active").items] == ["sess_5", "sess_4"]
    assert [s["id"] for s in store.list_sessions("o", limit=10, agent_id="agent_a").items] == [
        "sess_5",
        "sess_3",
        "sess_1",
    ]
    both = store.list_sessions("o", limit=1, status="completed", agent_id="agent_a")
    assert [s["id"] for s in both.items] == ["sess_3"] and both.has_more
    rest = store.list_sessions("o", limit=5, cursor=both.next_cursor, status="completed", agent_id="agent_a")
    assert [s["id"] for s in rest.items] == ["sess_1"] and not rest.has_more
    assert "artifacts" not in store.list_sessions("o", limit=1).items[0]


def test_a_page_past_many_filtered_out_records(store: RedisStore) -> None:
    for i in range(450):  # more than one scan chunk of records the filter drops
        store.start_session(f"sess_{i}", "o", "agent_a" if i < 3 else "agent_b", {}, T0 + i)
    page = store.list_sessions("o", limit=2, agent_id="agent_a")
    assert [s["id"] for s in page.items] == ["sess_2", "sess_1"] and page.has_more
    last = store.list_sessions("o", limit=2, agent_id="agent_a", cursor=page.next_cursor)
    assert [s["id"] for s in last.items] == ["sess_0"] and not last.has_more


def test_purge_removes_records_past_the_retention(server: RedisServer, store: RedisStore) -> None:
    store = RedisStore(server.url, prefix=store.prefix, retention_days=30)
    store.start_session("sess_old", "o", None, {}, T0 - 40 * DAY)
    store.finish_session("sess_old", "completed", "client_end", T0 - 40 * DAY + 60)
    store.add_artifact("sess_old", "timeline", "application/json", b"[]")
    store.start_session("sess_ended_recently", "o", None, {}, T0 - 31 * DAY)  # started long ago, ended within
    store.finish_session("sess_ended_recently", "completed", "client_end", T0 - 29 * DAY)
    store.start_session("sess_orphan", "o", None, {}, T0 - 31 * DAY)  # never finished (a crash)
    store.start_session("sess_new", "o", None, {}, T0 - DAY)
    store.create_agent(agent("o", "agent_old", "old", T0 - 400 * DAY))
    assert store.purge_expired(T0) == 2
    kept = {s["id"] for s in store.list_sessions("o", limit=10).items}
    assert kept == {"sess_ended_recently", "sess_new"}
    assert store.get_artifact("sess_old", "timeline") is None
    assert store.get_agent("o", "agent_old") is not None  # agents are not records that expire
    assert store.purge_expired(T0) == 0
    assert RedisStore(server.url, prefix=store.prefix).purge_expired(T0) == 0  # no retention: nothing goes


def test_threads_write_at_once(store: RedisStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                sid = f"sess_{n}_{i}"
                store.start_session(sid, "o", None, {"n": n}, T0 + i)
                store.add_artifact(sid, "timeline", "application/json", b"[]")
                store.finish_session(sid, "completed", "client_end", T0 + i + 1)
                store.list_sessions("o", limit=5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.list_sessions("o", limit=200).items) == 200


def test_two_replicas_share_records_and_the_link_secret(server: RedisServer, store: RedisStore) -> None:
    other = RedisStore(server.url, prefix=store.prefix)
    store.start_session("sess_1", "o", None, {}, T0)
    other.finish_session("sess_1", "completed", "client_end", T0 + 2)
    assert store.get_session("o", "sess_1")["status"] == "completed"  # type: ignore[index]
    assert store.artifact_secret() == other.artifact_secret() and len(store.artifact_secret()) == 32
    assert RedisStore(server.url, prefix="elsewhere:").artifact_secret() != store.artifact_secret()
    other.close()


# ---------------------------------------------------------------- tokens


async def test_a_token_is_spent_once_across_replicas(server: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    clients = [aioredis.Redis.from_url(server.url) for _ in range(2)]
    a, b = (Authenticator([KEY], ledger=RedisTokenLedger(c, prefix=prefix, max_live_tokens=100)) for c in clients)
    for _ in range(20):
        token = await a.mint_token(a.check_key(KEY), 60)
        results = await asyncio.gather(
            *(auth.authenticate_ws(None, token) for auth in (a, b, a, b)), return_exceptions=True
        )
        opened = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, AuthError)]
        assert len(opened) == 1 and len(refused) == 3, results
        assert opened[0].owner == a.check_key(KEY).owner and opened[0].via_token
    assert (await b.held())["tokens"] == 0
    for client in clients:
        await client.aclose()


async def test_the_token_cap_is_fleet_wide_and_resume_tokens_revoke_everywhere(server: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    clients = [aioredis.Redis.from_url(server.url) for _ in range(2)]
    a, b = (Authenticator([KEY], ledger=RedisTokenLedger(c, prefix=prefix, max_live_tokens=3)) for c in clients)
    for auth in (a, b, a):
        await auth.mint_token(auth.check_key(KEY), 60)
    with pytest.raises(AuthError) as full:
        await b.mint_token(b.check_key(KEY), 60)
    assert full.value.code == "RATE_LIMITED" and "retry in" in full.value.message
    resume = await a.mint_resume_token("sess_1", "o", 30)
    for _ in range(2):  # not spent on use
        assert (await b.authenticate_ws(f"Bearer {resume}", None)).resume_of == "sess_1"
    with pytest.raises(AuthError) as rest:
        await b.authenticate_rest(f"Bearer {resume}")
    assert rest.value.code == "FORBIDDEN"
    raw = redis.Redis.from_url(server.url)
    for key in raw.keys(f"{prefix}*"):  # kept under their hash: nothing in Redis is a usable token
        assert resume.encode() not in key
        if raw.type(key) == b"string":
            assert resume.encode() not in (raw.get(key) or b"")
    raw.close()
    await b.revoke_resume_tokens("sess_1")
    with pytest.raises(AuthError):
        await a.check_resume_token(resume)
    for client in clients:
        await client.aclose()


async def test_tokens_expire_on_redis_time(server: RedisServer) -> None:
    client = aioredis.Redis.from_url(server.url)
    auth = Authenticator([KEY], ledger=RedisTokenLedger(client, prefix=f"t{uuid.uuid4().hex[:8]}:", max_live_tokens=5))
    token = await auth.mint_token(auth.check_key(KEY), 0.2)
    await asyncio.sleep(0.4)
    with pytest.raises(AuthError):
        await auth.redeem_token(token)
    assert (await auth.held())["tokens"] == 0
    await client.aclose()


def test_ping_says_whether_redis_answers(server: RedisServer) -> None:
    """`/ready` asks the store: a replica cut off from the shared state must say so, not hang or raise."""
    reachable = RedisStore(server.url, prefix="ping:")
    assert reachable.ping() is True
    reachable.close()
    unreachable = RedisStore("redis://127.0.0.1:1/0", prefix="ping:")  # port 1: nothing listens
    assert unreachable.ping() is False
    unreachable.close()
