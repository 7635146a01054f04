"""The append-only event store: both backends behave alike; SQLite's schema enforces it."""

from __future__ import annotations

import inspect
import sqlite3
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from engine.errors import Conflict, IntegrityError, NotFound, StoreError
from engine.incidents.events import NewEvent, genesis
import os

from engine.app.config import Config
from engine.store import open_store
from engine.store.sqlite import APPLICATION_ID, SCHEMA_VERSION

AT = "2026-11-22T11:42:{:02d}.000Z"


def ev(i: int = 0, type_: str = "NoteAdded", **data) -> NewEvent:
    return NewEvent(type_, AT.format(i % 60), "alice", data or {"n": i})


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "incidents.db"


def append(store, incident: str, *events: NewEvent, state: dict | None = None, summary: dict | None = None):
    with store.transaction(incident) as tx:
        return tx.append(list(events), state if state is not None else {"n": len(events)}, summary)


# --- every backend ------------------------------------------------------------------


def test_first_transaction_sees_no_snapshot_and_appends_from_seq_1(backend):
    with backend.transaction("INC-1") as tx:
        assert tx.snapshot is None
        stored = tx.append([ev(1, "IncidentStarted"), ev(2, "RoleAssigned")], {"stage": "detect"})
    assert [e.seq for e in stored] == [1, 2]
    assert stored[0].prev == genesis(backend.database_id, "INC-1")
    assert stored[1].prev == stored[0].hash
    snap = backend.snapshot("INC-1")
    assert (snap.incident, snap.seq, snap.head, snap.state) == ("INC-1", 2, stored[1].hash, {"stage": "detect"})
    assert list(backend.events("INC-1")) == stored


def test_seq_is_contiguous_and_chained_across_transactions(backend):
    for i in range(5):
        with backend.transaction("INC-1") as tx:
            seen = tx.snapshot.seq if tx.snapshot else 0
            assert seen == 2 * i
            tx.append([ev(i), ev(i)], {"seen": seen + 2})
    events = list(backend.events("INC-1"))
    assert [e.seq for e in events] == list(range(1, 11))
    assert all(b.prev == a.hash for a, b in zip(events, events[1:]))
    assert [e.seq for e in backend.events("INC-1", after=7)] == [8, 9, 10]
    assert backend.snapshot("INC-1").state == {"seen": 10}


def test_events_read_back_equal_what_was_appended(backend):
    data = {"text": "Wir prüfen das. 陈 😀 \"quoted\"\n", "n": [1, 2.5, None, True], "empty": {}}
    [stored] = append(backend, "INC-1", NewEvent("PostRendered", AT.format(3), "dr. müller", data))
    [read] = list(backend.events("INC-1"))
    assert read == stored
    assert (read.type, read.at, read.actor, read.data) == ("PostRendered", AT.format(3), "dr. müller", data)


def test_incidents_and_snapshots_are_in_creation_order(backend):
    for incident in ["INC-B", "INC-A", "INC-C"]:
        append(backend, incident, ev())
    append(backend, "INC-B", ev())
    assert backend.incidents() == ["INC-B", "INC-A", "INC-C"]
    assert [(s.incident, s.seq) for s in backend.snapshots()] == [("INC-B", 2), ("INC-A", 1), ("INC-C", 1)]
    assert backend.snapshot("INC-X") is None
    assert list(backend.events("INC-X")) == []


def test_incidents_are_counted_by_id_prefix_and_rows_come_in_byte_order(backend):
    """Ids are allocated per day by prefix; exports and verification read incidents in
    the same (byte) order on every backend, whatever the database's locale."""
    for incident in ["INC-20260314-002", "INC-20260314-001", "DRILL-20260314-001", "INC-20260315-001",
                     "inc-lower", "INC-É"]:
        append(backend, incident, ev())
    assert backend.count_incidents("INC-20260314-") == 2
    assert backend.count_incidents("DRILL-20260314-") == 1
    assert backend.count_incidents("INC-20260316-") == 0
    assert [r[0] for r in backend.rows()] == sorted(
        ["INC-20260314-002", "INC-20260314-001", "DRILL-20260314-001", "INC-20260315-001", "inc-lower", "INC-É"],
        key=lambda s: s.encode("utf-8"))


def test_an_exception_in_the_block_rolls_back_everything(backend):
    append(backend, "INC-1", ev(1))
    with pytest.raises(ZeroDivisionError):
        with backend.transaction("INC-1") as tx:
            tx.append([ev(2), ev(3)], {"n": 3})
            1 / 0
    with pytest.raises(RuntimeError):
        with backend.transaction("INC-2") as tx:
            tx.append([ev(1)], {"n": 1})
            raise RuntimeError("refused after appending")
    assert [e.seq for e in backend.events("INC-1")] == [1]
    assert backend.snapshot("INC-1").seq == 1
    assert backend.snapshot("INC-2") is None
    assert backend.incidents() == ["INC-1"]


def test_a_state_that_is_not_json_writes_nothing(backend):
    with pytest.raises(TypeError):
        append(backend, "INC-1", ev(), state={"when": object()})
    assert backend.snapshot("INC-1") is None and list(backend.events("INC-1")) == []


def test_append_is_once_per_transaction_and_only_inside_it(backend):
    with backend.transaction("INC-1") as tx:
        with pytest.raises(ValueError):
            tx.append([], {})
        tx.append([ev()], {})
        with pytest.raises(RuntimeError, match="once"):
            tx.append([ev()], {})
    with pytest.raises(RuntimeError, match="over"):
        tx.append([ev()], {})
    assert [e.seq for e in backend.events("INC-1")] == [1]


def test_a_nested_transaction_is_refused(backend):
    with backend.transaction("INC-1"):
        with pytest.raises(StoreError, match="already open"):
            with backend.transaction("INC-2"):
                pass


def test_events_stream_lazily(backend):
    append(backend, "INC-1", *[ev(i) for i in range(3)])
    stream = backend.events("INC-1")
    assert inspect.isgenerator(stream)
    assert next(stream).seq == 1
    assert inspect.isgenerator(backend.rows())
    stream.close()


def test_events_stream_with_flat_memory(backend):
    """Reading a long log one event at a time holds a batch, not the whole log."""
    text = "x" * 1000
    with backend.transaction("INC-1") as tx:
        tx.append([ev(i, text=text) for i in range(20000)], {})
    tracemalloc.start()
    try:
        count = sum(1 for _ in backend.events("INC-1"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20000
    assert peak < 5_000_000  # the whole log as objects would take > 40 MB


def test_checkpoints_are_kept_in_order(backend):
    backend.add_checkpoint({"version": 1, "at": AT.format(1), "heads": {}})
    backend.add_checkpoint({"version": 1, "at": AT.format(2), "heads": {"INC-1": {"seq": 1, "hash": "ab"}}})
    assert [cp["at"] for cp in backend.checkpoints()] == [AT.format(1), AT.format(2)]


def test_a_reading_view_refuses_writes_inside_it(backend):
    with backend.reading():
        with pytest.raises(StoreError):
            with backend.transaction("INC-1"):
                pass


def test_a_closed_store_says_so(tmp_path):
    store = open_store(tmp_path / "x.db")
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        store.snapshot("INC-1")


def test_memory_store_serialises_threads():
    store = open_store("memory:")
    errors = []

    def worker():
        try:
            for i in range(50):
                with store.transaction("INC-1") as tx:
                    n = tx.snapshot.state["n"] if tx.snapshot else 0
                    tx.append([ev(i)], {"n": n + 1})
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [e.seq for e in store.events("INC-1")] == list(range(1, 201))
    assert store.snapshot("INC-1").state == {"n": 200}


def test_memory_store_busy_beyond_timeout():
    store = open_store("memory:", busy_timeout=0.2)
    holding, release = threading.Event(), threading.Event()

    def hold():
        with store.transaction("INC-1"):
            holding.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    holding.wait(5)
    try:
        with pytest.raises(StoreError, match="busy"):
            with store.transaction("INC-1") as tx:
                tx.append([ev()], {})
    finally:
        release.set()
        t.join()
    assert list(store.events("INC-1")) == []


# --- the incident index (every backend) -------------------------------------------------


def row(status: str = "open", next_due_at: str | None = None, **more) -> dict:
    return {"status": status, "next_due_at": next_due_at, **more}


def test_due_before_is_the_open_incidents_due_by_then_and_those_without_a_summary(backend):
    append(backend, "INC-LATE", ev(), state={"n": 1}, summary=row(next_due_at="2026-11-22T13:00:00.000Z"))
    append(backend, "INC-SOON", ev(), state={"n": 1}, summary=row(next_due_at="2026-11-22T12:00:00.000Z"))
    append(backend, "INC-DONE", ev(), state={"n": 1},
           summary=row("closed", next_due_at="2026-11-22T11:00:00.000Z"))
    append(backend, "INC-IDLE", ev(), state={"n": 1}, summary=row())
    append(backend, "INC-OLD", ev(), state={"n": 1})  # no summary: the reader must look itself
    assert backend.due_before("2026-11-22T11:59:59.999Z") == ["INC-OLD"]
    assert backend.due_before("2026-11-22T12:00:00.000Z") == ["INC-SOON", "INC-OLD"]
    assert backend.due_before("2026-11-23T00:00:00.000Z") == ["INC-LATE", "INC-SOON", "INC-OLD"]


def test_due_summaries_are_the_rows_of_the_incidents_due_before_names(backend):
    soon = row(next_due_at="2026-11-22T12:00:00.000Z", title="soon")
    append(backend, "INC-LATE", ev(), state={"n": 1}, summary=row(next_due_at="2026-11-22T13:00:00.000Z"))
    append(backend, "INC-SOON", ev(), state={"n": 1}, summary=soon)
    append(backend, "INC-DONE", ev(), state={"n": 1}, summary=row("closed", next_due_at="2026-11-22T11:00:00.000Z"))
    append(backend, "INC-OLD", ev(), state={"n": 1})
    assert backend.due_summaries("2026-11-22T12:00:00.000Z") == [("INC-SOON", soon), ("INC-OLD", None)]
    assert [i for i, _ in backend.due_summaries("2026-11-23T00:00:00.000Z")] == ["INC-LATE", "INC-SOON", "INC-OLD"]
    with pytest.raises(ValueError, match="due_before takes a UTC time"):
        backend.due_summaries("tomorrow")


def test_summaries_are_returned_as_written_in_creation_order_none_where_missing(backend):
    append(backend, "INC-B", ev(), summary=row(title="B", due=["2026-11-22T12:00:00.000Z"],
                                                next_due_at="2026-11-22T12:00:00.000Z"))
    append(backend, "INC-A", ev())
    append(backend, "INC-C", ev(), summary=row("closed", title="C"))
    assert backend.summaries() == [
        ("INC-B", row(title="B", due=["2026-11-22T12:00:00.000Z"], next_due_at="2026-11-22T12:00:00.000Z")),
        ("INC-A", None),
        ("INC-C", row("closed", title="C")),
    ]


def test_every_write_replaces_the_summary_and_one_without_a_summary_removes_it(backend):
    append(backend, "INC-1", ev(1), summary=row(next_due_at="2026-11-22T12:00:00.000Z"))
    append(backend, "INC-1", ev(2), state={"n": 2}, summary=row("closed"))
    assert backend.summaries() == [("INC-1", row("closed"))]
    assert backend.due_before("2026-11-23T00:00:00.000Z") == []
    append(backend, "INC-1", ev(3), state={"n": 3})
    assert backend.summaries() == [("INC-1", None)]
    assert backend.due_before("2000-01-01T00:00:00.000Z") == ["INC-1"]
    with backend.transaction("INC-1") as tx:
        tx.rewrite_projection({"n": 3, "refolded": True}, row(next_due_at="2026-11-22T12:00:00.000Z"))
    assert backend.summaries() == [("INC-1", row(next_due_at="2026-11-22T12:00:00.000Z"))]
    assert backend.snapshot("INC-1").state == {"n": 3, "refolded": True}


@pytest.mark.parametrize("summary, message", [
    (row("pending"), "status is 'open' or 'closed'"),
    (row(next_due_at="2026-11-22 12:00"), "next_due_at is a UTC time"),
    (row(next_due_at="2026-11-22T12:00:00+01:00"), "next_due_at is a UTC time"),
])
def test_a_malformed_summary_is_refused_and_nothing_is_written(backend, summary, message):
    with pytest.raises(ValueError, match=message):
        append(backend, "INC-1", ev(), summary=summary)
    assert backend.snapshot("INC-1") is None and backend.summaries() == []


def test_due_before_refuses_a_moment_that_is_not_a_utc_time(backend):
    with pytest.raises(ValueError, match="due_before takes a UTC time"):
        backend.due_before("tomorrow")


def test_load_keeps_the_summary_it_is_given(backend):
    source = open_store("memory:", database_id=backend.database_id)
    append(source, "INC-1", ev(1), ev(2), summary=row(next_due_at="2026-11-22T12:00:00.000Z"))
    backend.load("INC-1", source.rows("INC-1"), '{"n":2}', dict(source.summaries())["INC-1"])
    assert backend.summaries() == [("INC-1", row(next_due_at="2026-11-22T12:00:00.000Z"))]
    assert backend.due_before("2026-11-22T12:00:00.000Z") == ["INC-1"]


def test_heads_are_each_snapshots_seq_and_head_in_creation_order(backend):
    append(backend, "INC-B", ev(1), ev(2))
    [first] = append(backend, "INC-A", ev(1))
    later = append(backend, "INC-B", ev(3), state={"n": 3})
    assert backend.heads() == [("INC-B", 3, later[-1].hash), ("INC-A", 1, first.hash)]


# --- grouped commits (every backend) -----------------------------------------------------


def test_grouped_transactions_each_succeed_or_fail_alone_and_are_all_kept(backend):
    with backend.grouped():
        append(backend, "INC-1", ev(1))
        with pytest.raises(ValueError):
            with backend.transaction("INC-2") as tx:
                tx.append([ev(1)], {"n": 1})
                raise ValueError("refused halfway")
        append(backend, "INC-1", ev(2), state={"n": 2})
        append(backend, "INC-3", ev(1))
    assert [e.seq for e in backend.events("INC-1")] == [1, 2]
    assert backend.snapshot("INC-2") is None and list(backend.events("INC-2")) == []
    assert backend.snapshot("INC-1").state == {"n": 2} and backend.incidents() == ["INC-1", "INC-3"]


def test_a_group_ended_by_an_exception_keeps_the_transactions_done_before_it(backend):
    with pytest.raises(RuntimeError):
        with backend.grouped():
            append(backend, "INC-1", ev(1))
            raise RuntimeError("the command failed later")
    assert [e.seq for e in backend.events("INC-1")] == [1]
    append(backend, "INC-1", ev(2), state={"n": 2})  # and the store is usable after it
    assert backend.snapshot("INC-1").seq == 2


def test_a_transaction_inside_a_grouped_transaction_is_refused(backend):
    with backend.grouped():
        with backend.transaction("INC-1") as tx:
            with pytest.raises(StoreError, match="already open"):
                with backend.transaction("INC-2"):
                    pass
            tx.append([ev(1)], {"n": 1})
    assert backend.snapshot("INC-1").seq == 1 and backend.snapshot("INC-2") is None


def test_sqlite_groups_commits_until_its_time_is_up(tmp_path):
    """Another connection sees a grouped transaction once the group commits: at once
    with no time to wait, at the end of the block with an hour."""
    writer, reader = open_store(tmp_path / "db.sqlite"), open_store(tmp_path / "db.sqlite")
    try:
        with writer.grouped(max_seconds=0):
            append(writer, "INC-1", ev(1))
            assert reader.incidents() == ["INC-1"]
        with writer.grouped(max_seconds=3600):
            append(writer, "INC-2", ev(1))
            append(writer, "INC-3", ev(1))
            assert reader.incidents() == ["INC-1"]
        assert reader.incidents() == ["INC-1", "INC-2", "INC-3"]
    finally:
        writer.close(), reader.close()


# --- SQLite: the schema itself ----------------------------------------------------------


def test_sqlite_database_is_marked_and_in_wal_mode(db_path):
    store = open_store(db_path)
    append(store, "INC-1", ev())
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("SELECT schema_version, database_id FROM meta").fetchone() == (
        1, store.database_id)  # the schema it was created with: the meta row never changes
    raw.close()
    store.close()


def test_sqlite_reopening_keeps_the_log_and_the_database_id(db_path):
    store = open_store(db_path)
    append(store, "INC-1", ev(1), ev(2))
    database_id = store.database_id
    store.close()
    again = open_store(db_path, create=False)
    assert again.database_id == database_id
    assert [e.seq for e in again.events("INC-1")] == [1, 2]
    again.close()
    assert open_store(db_path.with_name("other.db")).database_id != database_id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM events WHERE seq = 2",
        "DELETE FROM events",
    ],
)
def test_sqlite_schema_refuses_changing_events(db_path, statement):
    store = open_store(db_path)
    append(store, "INC-1", ev(1), ev(2))
    raw = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.IntegrityError, match="events are append-only: (UPDATE|DELETE) is not allowed"):
        raw.execute(statement)
    raw.close()
    assert [e.actor for e in store.events("INC-1")] == ["alice", "alice"]
    store.close()


@pytest.mark.parametrize(
    "statement, message",
    [
        ("UPDATE meta SET database_id = 'x'", "meta are append-only"),
        ("DELETE FROM meta", "meta are append-only"),
        ("UPDATE checkpoints SET body = '{}'", "checkpoints are append-only"),
        ("DELETE FROM checkpoints", "checkpoints are append-only"),
    ],
)
def test_sqlite_schema_protects_meta_and_checkpoints(db_path, statement, message):
    store = open_store(db_path)
    store.add_checkpoint({"version": 1, "at": AT.format(0), "heads": {}})
    raw = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.IntegrityError, match=message):
        raw.execute(statement)
    raw.close()
    store.close()


def test_sqlite_schema_refuses_an_event_out_of_sequence(db_path):
    store = open_store(db_path)
    [first] = append(store, "INC-1", ev(1))
    raw = sqlite3.connect(db_path)
    row = ("INC-1", "NoteAdded", AT.format(2), "alice", "{}", first.hash, "ab" * 32)
    insert = "INSERT INTO events (incident, type, at, actor, data, prev, hash, seq) VALUES (?,?,?,?,?,?,?,?)"
    for seq, prev in [(3, first.hash), (1, first.hash), (2, "00" * 32)]:
        with pytest.raises(sqlite3.IntegrityError, match="next seq"):
            raw.execute(insert, (*row[:5], prev, row[6], seq))
    raw.close()
    store.close()


def test_sqlite_a_projection_behind_its_log_is_not_appended_to(db_path):
    store = open_store(db_path)
    [first] = append(store, "INC-1", ev(1))
    raw = sqlite3.connect(db_path)  # a write that bypasses the store (and its snapshot)
    raw.execute("INSERT INTO events VALUES ('INC-1', 2, 'NoteAdded', ?, 'eve', '{}', ?, ?)",
                (AT.format(2), first.hash, "ab" * 32))
    raw.commit()
    raw.close()
    with pytest.raises(IntegrityError, match="does not match its log"):
        append(store, "INC-1", ev(3))
    assert store.snapshot("INC-1").seq == 1
    store.close()


def test_sqlite_a_duplicate_key_is_a_conflict(db_path):
    store = open_store(db_path)
    err = sqlite3.IntegrityError("UNIQUE constraint failed: events.incident, events.seq")
    translated = store._translate(err, "INC-1")
    assert isinstance(translated, Conflict)
    assert str(translated) == "incident INC-1 was changed by someone else at the same time; run the command again"
    store.close()


# --- SQLite: opening files that are not ours ------------------------------------------


def test_sqlite_refuses_a_foreign_database_without_touching_it(db_path):
    raw = sqlite3.connect(db_path)
    raw.execute("CREATE TABLE patients (name TEXT)")
    raw.execute("INSERT INTO patients VALUES ('Jane Doe')")
    raw.commit()
    raw.close()
    before = db_path.read_bytes()
    with pytest.raises(StoreError, match="belongs to another program") as info:
        open_store(db_path)
    assert str(db_path) in str(info.value) and "patients" in str(info.value)
    assert db_path.read_bytes() == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


def test_sqlite_refuses_a_file_that_is_not_a_database(db_path):
    db_path.write_text("incident,notes\nINC-1,do not overwrite me\n")
    before = db_path.read_bytes()
    with pytest.raises(StoreError, match="not a SQLite database") as info:
        open_store(db_path)
    assert str(db_path) in str(info.value)
    assert db_path.read_bytes() == before


def test_sqlite_refuses_a_corrupt_database(db_path):
    db_path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    with pytest.raises(StoreError) as info:
        open_store(db_path)
    assert str(db_path) in str(info.value)
    assert "not a database" in str(info.value) or "damaged" in str(info.value)


def test_sqlite_refuses_a_newer_schema(db_path):
    open_store(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match="newer version"):
        open_store(db_path)


def test_sqlite_missing_database_without_create_is_not_found(db_path):
    with pytest.raises(NotFound, match="no incident database"):
        open_store(db_path, create=False)
    assert not db_path.exists()


def test_sqlite_creates_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "incidents.db"
    open_store(path).close()
    assert path.is_file()


def test_sqlite_unusable_locations_are_store_errors(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(StoreError, match="cannot use"):
        open_store(tmp_path / "a-file" / "incidents.db")
    with pytest.raises(StoreError, match="folder"):
        open_store(tmp_path)


def test_sqlite_busy_beyond_timeout_writes_nothing(db_path):
    store = open_store(db_path, busy_timeout=0.2)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="busy|locked") as info:
            with store.transaction("INC-1") as tx:
                tx.append([ev()], {})
        waited = time.monotonic() - started
        assert 0.15 <= waited < 5
        assert str(db_path) in str(info.value) and "0.2 s" in str(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert list(store.events("INC-1")) == [] and store.snapshot("INC-1") is None
    append(store, "INC-1", ev())  # usable again once the other writer is gone
    store.close()


def test_sqlite_creating_waits_for_another_writer_of_the_new_file(db_path):
    """Another connection writing the new, still empty file (as a second process creating
    the same database at that moment does) makes opening wait for it, not fail: the switch
    to WAL mode alone would report "database is locked" at once, whatever busy_timeout."""
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the file exists, empty, and someone holds its write lock
    release = threading.Timer(0.3, other.execute, ("ROLLBACK",))
    release.start()
    try:
        started = time.monotonic()
        store = open_store(db_path, busy_timeout=10)
        waited = time.monotonic() - started
    finally:
        release.join()
        other.close()
    assert waited >= 0.25
    append(store, "INC-1", ev())
    store.close()
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_sqlite_creating_busy_beyond_timeout_leaves_the_file_empty(db_path):
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="busy") as info:
            open_store(db_path, busy_timeout=0.2)
        waited = time.monotonic() - started
        assert 0.15 <= waited < 5
        assert str(db_path) in str(info.value) and "0.2 s" in str(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert db_path.stat().st_size == 0
    open_store(db_path).close()  # created once the other writer is gone


def test_sqlite_two_stores_on_one_file_see_each_other(db_path):
    a, b = open_store(db_path), open_store(db_path)
    append(a, "INC-1", ev(1))
    append(b, "INC-1", ev(2))
    assert [e.seq for e in a.events("INC-1")] == [1, 2]
    assert a.snapshot("INC-1") == b.snapshot("INC-1")
    a.close()
    b.close()


# --- where the database lives ---------------------------------------------------------


def default_db_path():
    return Config.resolve(os.environ).db


def test_default_db_path_prefers_playbook_db(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYBOOK_DB", str(tmp_path / "mine.db"))
    assert default_db_path() == tmp_path / "mine.db"


def test_default_db_path_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("PLAYBOOK_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "crisis-playbook" / "incidents.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "crisis-playbook" / "incidents.db"


def test_the_configuration_puts_key_outbox_and_destinations_beside_the_database(tmp_path):
    """What `--db` names decides where the files that belong with it live, unless the
    environment says otherwise; a server database keeps them in the data folder."""
    beside = Config.resolve({}, db=str(tmp_path / "team" / "incidents.db"))
    assert (beside.key, beside.outbox, beside.destinations) == (
        tmp_path / "team" / "signing.key", tmp_path / "team" / "outbox", tmp_path / "team" / "destinations.yaml")
    chosen = Config.resolve({"PLAYBOOK_KEY": str(tmp_path / "vault" / "k"), "PLAYBOOK_OUTBOX": str(tmp_path / "o")},
                            db=str(tmp_path / "incidents.db"), outbox=str(tmp_path / "flag"))
    assert (chosen.key, chosen.outbox) == (tmp_path / "vault" / "k", tmp_path / "flag")
    server = Config.resolve({"XDG_DATA_HOME": str(tmp_path / "data")}, db="postgresql://pb@db/pb")
    assert server.key == tmp_path / "data" / "crisis-playbook" / "signing.key"
    assert server.sqlite_file is None


def test_sqlite_a_damaged_summary_is_named(db_path):
    store = open_store(db_path)
    for incident in ("INC-1", "INC-2", "INC-3"):
        append(store, incident, ev(), summary=row(title=incident))
    raw = sqlite3.connect(db_path)
    raw.execute("""UPDATE incident_index SET summary = '{"title": [1' WHERE incident = 'INC-2'""")
    raw.execute("""UPDATE incident_index SET summary = '2]}' WHERE incident = 'INC-3'""")
    raw.commit()
    raw.close()
    with pytest.raises(IntegrityError, match="incident INC-2: its stored summary is not valid JSON"):
        store.summaries()
    store.close()
