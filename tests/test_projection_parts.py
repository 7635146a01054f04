"""A projection's plan is stored once per incident, apart from the rest of its state, so a
write re-encodes and rewrites only the small rest; every backend reads the whole state back."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from engine.errors import IntegrityError
from engine.incidents.events import NewEvent
from engine.store import open_store
from engine.store.copy import copy_database

AT = "2026-11-22T11:42:{:02d}.000Z"
PLAN = {"id": "viral", "initial": "detect", "stages": {"detect": {"tasks": {}}}, "roles": {"lead": {}}}


def ev(i: int, type_: str = "NoteAdded") -> NewEvent:
    return NewEvent(type_, AT.format(i), "alice", {"n": i})


def state(notes: int, plan: dict | None = None) -> dict:
    return {"v": 2, "id": "INC-1", "plan": plan if plan is not None else json.loads(json.dumps(PLAN)),
            "notes": notes}


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def backend(request, tmp_path):
    if request.param == "postgres":
        location = request.getfixturevalue("pg_url")
    else:
        location = tmp_path / "incidents.db" if request.param == "sqlite" else "memory:"
    store = open_store(location)
    yield store
    store.close()


def write(store, incident: str, i: int, new_state) -> None:
    with store.transaction(incident) as tx:
        tx.append([ev(i, "IncidentStarted" if tx.snapshot is None else "NoteAdded")],
                  new_state(tx.snapshot.state if tx.snapshot else None))


def test_the_state_reads_back_whole_with_its_plan_after_every_write(backend):
    write(backend, "INC-1", 1, lambda _: state(0))
    for i in range(2, 5):
        write(backend, "INC-1", i, lambda s: dict(s, notes=s["notes"] + 1))
    assert backend.snapshot("INC-1").state == state(3)
    assert [s.state for s in backend.snapshots()] == [state(3)]


def test_a_changed_plan_is_stored_and_an_unchanged_one_is_kept(backend):
    write(backend, "INC-1", 1, lambda _: state(0))
    changed = dict(PLAN, initial="triage")
    write(backend, "INC-1", 2, lambda s: state(1, changed))
    assert backend.snapshot("INC-1").state["plan"] == changed
    write(backend, "INC-1", 3, lambda s: dict(s, notes=2))  # the plan read, the same object
    assert backend.snapshot("INC-1").state == state(2, changed)


def test_the_digest_of_a_projection_covers_its_plan(backend):
    write(backend, "INC-1", 1, lambda _: state(0))
    write(backend, "INC-2", 1, lambda _: state(0, dict(PLAN, initial="triage")))
    digests = backend.projection_digests()
    assert sorted(digests) == ["INC-1", "INC-2"]
    assert digests["INC-1"] != digests["INC-2"]  # the rows differ only in their plans
    write(backend, "INC-1", 2, lambda s: dict(s, notes=1))
    assert backend.projection_digests()["INC-1"] not in (digests["INC-1"], digests["INC-2"])


def test_db_copy_keeps_every_state_whole(backend, tmp_path):
    write(backend, "INC-1", 1, lambda _: state(0))
    write(backend, "INC-1", 2, lambda s: dict(s, notes=1))
    copy_database(backend, tmp_path / "copy.db", open_store=open_store)
    target = open_store(tmp_path / "copy.db")
    try:
        assert target.snapshot("INC-1").state == state(1)
        assert target.projection_digests() == backend.projection_digests()
    finally:
        target.close()


# --- what SQLite holds -------------------------------------------------------------------


def rows(db, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as raw:
        return raw.execute(sql).fetchall()


def test_sqlite_keeps_the_plan_once_and_a_note_does_not_rewrite_it(tmp_path):
    db = tmp_path / "incidents.db"
    store = open_store(db)
    try:
        write(store, "INC-1", 1, lambda _: state(0))
        (text,), = rows(db, "SELECT state FROM snapshots")
        assert json.loads(text)["plan"] == {"$part": "plan"}
        assert rows(db, "SELECT part, key, body FROM projection_parts") == [
            ("plan", "", json.dumps(PLAN, sort_keys=True, separators=(",", ":")))]
        with sqlite3.connect(db) as raw:  # a mark only a rewrite of the plan would remove
            raw.execute("""UPDATE projection_parts SET body = json_set(body, '$.mark', 1)""")
        write(store, "INC-1", 2, lambda s: dict(s, notes=1))
        assert store.snapshot("INC-1").state["plan"]["mark"] == 1
        assert store.snapshot("INC-1").state["notes"] == 1
    finally:
        store.close()


@pytest.mark.parametrize("damage, message", [
    ("DELETE FROM projection_parts", "incident INC-1: its stored plan is missing (deleted?)"),
    ("UPDATE projection_parts SET body = '{not json'", "incident INC-1: its stored plan is not valid JSON"),
])
def test_a_missing_or_damaged_plan_is_named(tmp_path, damage, message):
    db = tmp_path / "incidents.db"
    store = open_store(db)
    try:
        write(store, "INC-1", 1, lambda _: state(0))
        with sqlite3.connect(db) as raw:
            raw.execute(damage)
        with pytest.raises(IntegrityError, match=re.escape(message)):
            store.snapshot("INC-1")
        with pytest.raises(IntegrityError, match=re.escape(message)):
            with store.transaction("INC-1"):
                pass
    finally:
        store.close()


def test_a_whole_state_stored_before_the_parts_is_read_and_split_at_the_next_write(tmp_path):
    db = tmp_path / "incidents.db"
    store = open_store(db)
    try:
        write(store, "INC-1", 1, lambda _: state(0))
        with sqlite3.connect(db) as raw:  # as the code before migration 004 stored it
            raw.execute("DELETE FROM projection_parts")
            raw.execute("UPDATE snapshots SET state = ?", (json.dumps(state(0)),))
        assert store.snapshot("INC-1").state == state(0)
        write(store, "INC-1", 2, lambda s: dict(s, notes=1))
        assert store.snapshot("INC-1").state == state(1)
        assert [p for p, in rows(db, "SELECT part FROM projection_parts")] == ["plan"]
        assert json.loads(rows(db, "SELECT state FROM snapshots")[0][0])["plan"] == {"$part": "plan"}
    finally:
        store.close()


def test_a_state_without_a_plan_is_stored_whole(tmp_path):
    db = tmp_path / "incidents.db"
    store = open_store(db)
    try:
        write(store, "INC-1", 1, lambda _: {"n": 1})
        assert rows(db, "SELECT state FROM snapshots") == [('{"n":1}',)]
        assert rows(db, "SELECT count(*) FROM projection_parts") == [(0,)]
    finally:
        store.close()
