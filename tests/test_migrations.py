"""SQLite's schema as numbered migrations: a database written before the incident index
(schema 1) opens unchanged and works, reading every incident in full, and `db upgrade`
adds the index and fills it in for every incident."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from conftest import VIRAL_START, states_made_whole
from engine.store import open_store
from engine.store.migrations import migrations
from engine.store.sqlite import SCHEMA_VERSION, statements


def _schema(db) -> list[tuple]:
    with sqlite3.connect(db) as raw:
        return raw.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()


def _as_schema_1(db) -> None:
    """The database as the code before migration 002 left it (schema 1 is migration 001,
    unchanged: checked below), with the same incidents."""
    raw = sqlite3.connect(db)
    states_made_whole(raw)  # every part back inside the state, as schema 1 stored it
    raw.execute("DROP TABLE incident_index")
    raw.execute("DROP TABLE sign_in_failures")  # and migration 003's account tables
    raw.execute("DROP TABLE token_uses")
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()


def test_schema_1_is_exactly_what_migration_001_creates(db):
    open_store(db).close()
    _as_schema_1(db)
    created = sorted(sql for _, _, sql in _schema(db) if sql)
    assert created == sorted(statements(dict(migrations("sqlite"))[1]))
    assert SCHEMA_VERSION == 5


def test_an_old_database_opens_unchanged_works_and_db_upgrade_indexes_it(cli, clock, db):
    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=16))
    cli(*VIRAL_START)
    listing, overdue = cli("list").stdout, cli("due", "--no-record").stdout
    _as_schema_1(db)
    before = _schema(db)

    assert cli("list").stdout == listing
    assert cli("due", "--no-record").stdout == overdue
    due = cli("due")  # records the breach: a write at schema 1
    assert due.exit_code == 9 and "recorded: INC-20260314-001 missed leave stage triage" in due.stdout
    assert cli("note", "INC-20260314-002", "written at schema 1").exit_code == 0
    assert _schema(db) == before  # nothing was added behind the user's back
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1

    result = cli("db", "upgrade", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "applied migration(s) 2, 3, 4, 5; schema is now 5" in result.output
    store = open_store(db)
    try:
        assert [(i, s is not None) for i, s in store.summaries()] == [
            ("INC-20260314-001", True), ("INC-20260314-002", True)]
        assert store.due_before("2026-03-14T09:20:00.000Z") == ["INC-20260314-001"]
    finally:
        store.close()
    assert cli("list").stdout == listing
    assert "schema 5 is current" in cli("db", "upgrade", "--db", str(db)).output
    assert cli("verify").exit_code == 0


def test_upgrade_on_a_read_only_store_is_refused(db):
    from engine.errors import StoreError

    open_store(db).close()
    _as_schema_1(db)
    store = open_store(db, read_only=True)
    try:
        assert store.schema_version() == 1
        with pytest.raises(StoreError, match="read-only"):
            store.upgrade()
    finally:
        store.close()


def test_the_0_1_database_opens_at_schema_1_and_db_upgrade_indexes_it(tmp_path, clock, monkeypatch):
    import shutil

    from conftest import ROOT, Cli

    for name in ("incidents.db", "signing.key"):
        shutil.copy(ROOT / "tests" / "data" / "legacy-0.1" / name, tmp_path / name)
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "signing.key"))
    db = tmp_path / "incidents.db"
    cli = Cli(db, clock)
    before = _schema(db)
    listing, due = cli("list", "--all").stdout, cli("due", "--no-record", "--within", "24h").stdout
    assert "INC-20260314-001" in listing and "DRILL-20260314-001" in listing
    assert _schema(db) == before  # reading changed nothing

    result = cli("db", "upgrade", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "applied migration(s) 2, 3, 4, 5; schema is now 5" in result.output
    assert "rebuilt 2 incident projection(s) from the log" in result.output
    store = open_store(db)
    try:
        assert sorted(i for i, s in store.summaries() if s is not None) == ["DRILL-20260314-001", "INC-20260314-001"]
    finally:
        store.close()
    assert cli("list", "--all").stdout == listing
    assert cli("due", "--no-record", "--within", "24h").stdout == due
    result = cli("verify")
    assert result.exit_code == 0, result.output
