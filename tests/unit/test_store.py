"""The SQLite record store: migrations, restarts, the session code's writes, pagination, retention,
threads, and the signed links."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from voxgate.config import Settings
from voxgate.store import STORE_FILE, InvalidCursor, SessionRecords, SQLiteStore, Store, links, open_store, store_path
from voxgate.store.sqlite import MIGRATIONS, SCHEMA_VERSION

DAY = 86_400.0
T0 = 1_800_000_000.0


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


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# ---------------------------------------------------------------- schema


def test_an_empty_file_is_migrated_to_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    store = SQLiteStore(path)
    assert not path.exists()  # nothing on disk until it is used
    assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    assert {"schema_version", "meta", "agents", "sessions", "artifacts"} <= tables(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_reopening_runs_nothing_again_and_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path)
    store.create_agent(agent("o", "agent_1", "a", T0))
    store.close()
    for _ in range(2):
        again = SQLiteStore(path)
        assert again.schema_version() == SCHEMA_VERSION
        assert again.get_agent("o", "agent_1") is not None
        again.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1


def test_a_partly_migrated_file_gets_the_remaining_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.sqlite3"
    extra = ("CREATE TABLE later_step (x INTEGER)",)
    SQLiteStore(path).close()
    store = SQLiteStore(path)
    assert store.schema_version() == SCHEMA_VERSION
    store.close()
    monkeypatch.setattr("voxgate.store.sqlite.MIGRATIONS", (*MIGRATIONS, extra))
    monkeypatch.setattr("voxgate.store.sqlite.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    upgraded = SQLiteStore(path)
    assert upgraded.schema_version() == SCHEMA_VERSION + 1 and "later_step" in tables(path)
    upgraded.close()


def test_a_failed_step_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bad.sqlite3"
    broken = ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL")
    monkeypatch.setattr("voxgate.store.sqlite.MIGRATIONS", (*MIGRATIONS, broken))
    monkeypatch.setattr("voxgate.store.sqlite.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(sqlite3.OperationalError):
        SQLiteStore(path).schema_version()
    monkeypatch.undo()
    store = SQLiteStore(path)
    assert store.schema_version() == SCHEMA_VERSION and "half_done" not in tables(path)
    store.close()


def test_a_file_from_a_newer_voxgate_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    SQLiteStore(path).schema_version()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 5,))
    with pytest.raises(RuntimeError, match="newer"):
        SQLiteStore(path).get_agent("o", "x")


def test_it_implements_the_interfaces() -> None:
    store = SQLiteStore(":memory:")
    assert isinstance(store, Store) and isinstance(store, SessionRecords)
    store.start_session("sess_m", "o", None, {}, T0)
    assert store.get_session("o", "sess_m") is not None  # one connection: :memory: works across calls
    store.close()


def test_the_path_comes_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store_path(Settings(store_path=str(tmp_path / "x.db"))) == str(tmp_path / "x.db")
    assert store_path(Settings(data_dir=str(tmp_path))) == str(tmp_path / STORE_FILE)
    assert store_path(Settings(store_path=":memory:")) == ":memory:"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert store_path(Settings()) == str(tmp_path / "xdg" / "voxgate" / STORE_FILE)
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store_path(Settings()) == str(tmp_path / "home" / ".local" / "share" / "voxgate" / STORE_FILE)
    store = open_store(Settings(data_dir=str(tmp_path / "d"), session_retention_days=7))
    assert store.retention_days == 7 and store.path == str(tmp_path / "d" / STORE_FILE)


# ---------------------------------------------------------------- restarts


def test_everything_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    store = SQLiteStore(path)
    store.create_agent(agent("o", "agent_1", "desk", T0))
    store.start_session("sess_1", "o", "agent_1", {"system_prompt": "p"}, T0)
    store.finish_session("sess_1", "completed", "client_end", T0 + 12.5)
    store.add_artifact("sess_1", "timeline", "application/json", b"[]")
    secret = store.artifact_secret()
    store.close()

    store = SQLiteStore(path)
    assert store.get_agent("o", "desk") == agent("o", "agent_1", "desk", T0)
    session = store.get_session("o", "sess_1")
    assert session is not None and session["status"] == "completed" and session["ended_at"] == T0 + 12.5
    assert session["config"] == {"system_prompt": "p"}
    assert session["artifacts"] == [{"type": "timeline", "content_type": "application/json"}]
    artifact = store.get_artifact("sess_1", "timeline")
    assert artifact is not None and artifact.data == b"[]"
    assert store.artifact_secret() == secret and len(secret) == 32
    store.close()
    assert SQLiteStore(tmp_path / "other.sqlite3").artifact_secret() != secret  # per server (per store)


# ---------------------------------------------------------------- agents


def test_agents_by_id_or_name_within_the_owner(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.sqlite3")
    store.create_agent(agent("o", "agent_1", "desk", T0))
    store.create_agent(agent("o", "agent_2", "desk", T0 + 1))
    store.create_agent(agent("p", "agent_3", "desk", T0 + 2))
    got = store.get_agent("o", "desk")
    assert got is not None and got["id"] == "agent_2"  # the newest of that name
    assert store.get_agent("o", "agent_3") is None and store.get_agent("p", "agent_1") is None
    assert store.get_agent("o", "agent_1") is not None


def test_an_update_is_atomic_and_a_failing_change_keeps_the_agent(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "u.sqlite3")
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
    assert store.get_agent("o", "agent_1") is None


def test_agent_pages_are_newest_first(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "p.sqlite3")
    for i in range(5):
        store.create_agent(agent("o", f"agent_{i}", f"n{i}", T0 + (i // 2)))  # ties on created_at too
    first = store.list_agents("o", limit=3)
    assert [a["id"] for a in first.items] == ["agent_4", "agent_3", "agent_2"] and first.has_more
    second = store.list_agents("o", limit=3, cursor=first.next_cursor)
    assert [a["id"] for a in second.items] == ["agent_1", "agent_0"] and second.next_cursor == ""
    assert store.list_agents("p", limit=3).items == []
    with pytest.raises(InvalidCursor):
        store.list_agents("o", limit=3, cursor="not-a-cursor")


# ---------------------------------------------------------------- sessions


def test_the_session_codes_writes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    store.start_session("sess_1", "o", None, {"greeting": "hi"}, T0)
    record = store.get_session("o", "sess_1")
    assert record is not None and record["status"] == "active" and record["ended_at"] is None
    assert record["agent_id"] is None and record["artifacts"] == []
    store.set_status("sess_1", "disconnected")
    assert store.get_session("o", "sess_1")["status"] == "disconnected"  # type: ignore[index]
    store.set_status("sess_1", "active")
    store.start_session("sess_1", "o", "agent_x", {"other": True}, T0 + 9)  # a second start changes nothing
    store.finish_session("sess_1", "failed", "error", T0 + 3)
    store.add_artifact("sess_1", "audio", "audio/wav", b"RIFF")
    store.add_artifact("sess_1", "metadata", "application/json", b"{}")
    store.add_artifact("sess_1", "timeline", "application/json", b"[1]")
    store.add_artifact("sess_1", "timeline", "application/json", b"[2]")  # replaced
    record = store.get_session("o", "sess_1")
    assert record is not None
    assert (record["status"], record["close_reason"], record["ended_at"]) == ("failed", "error", T0 + 3)
    assert record["config"] == {"greeting": "hi"} and record["created_at"] == T0
    assert [a["type"] for a in record["artifacts"]] == ["timeline", "metadata", "audio"]
    assert store.get_artifact("sess_1", "timeline").data == b"[2]"  # type: ignore[union-attr]
    assert store.get_session("p", "sess_1") is None


def test_writes_for_a_deleted_session_do_not_bring_it_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "d.sqlite3")
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


def test_session_filters_and_pages(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.sqlite3")
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


# ---------------------------------------------------------------- retention


def test_purge_removes_records_past_the_retention(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ret.sqlite3", retention_days=30)
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


def test_no_retention_keeps_everything(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "keep.sqlite3", retention_days=0)
    store.start_session("sess_old", "o", None, {}, T0 - 4000 * DAY)
    assert store.purge_expired(T0) == 0 and store.get_session("o", "sess_old") is not None


# ---------------------------------------------------------------- threads


def test_threads_write_at_once(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.sqlite3")
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


def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    one, two = SQLiteStore(path), SQLiteStore(path)
    one.start_session("sess_1", "o", None, {}, T0)
    two.finish_session("sess_1", "completed", "client_end", T0 + 2)
    assert one.get_session("o", "sess_1")["status"] == "completed"  # type: ignore[index]
    assert one.artifact_secret() == two.artifact_secret()


# ---------------------------------------------------------------- links


def test_links_are_signed_over_session_type_and_expiry() -> None:
    secret = b"k" * 32
    now = time.time()
    expires = int(now) + 60
    signature = links.sign(secret, "sess_1", "audio", expires)
    assert links.check(secret, "sess_1", "audio", str(expires), signature, now) == ""
    assert links.check(secret, "sess_1", "audio", str(expires), signature, now + 61) == "expired"
    assert links.check(secret, "sess_2", "audio", str(expires), signature, now) == "invalid"
    assert links.check(secret, "sess_1", "timeline", str(expires), signature, now) == "invalid"
    assert links.check(secret, "sess_1", "audio", str(expires + 1), signature, now) == "invalid"
    assert links.check(b"j" * 32, "sess_1", "audio", str(expires), signature, now) == "invalid"
    for bad_expires in (None, "", "soon", "-5", "²"):
        assert links.check(secret, "sess_1", "audio", bad_expires, signature, now) == "invalid"
    assert links.check(secret, "sess_1", "audio", str(expires), None, now) == "invalid"
