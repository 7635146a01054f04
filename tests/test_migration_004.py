"""Migration 004 keeps each index row's running clocks in a column of their own: a schema 3
database (clocks inside the summary, no parts kept apart) works unchanged, and `db upgrade`
moves them out (and applies migration 005 after it)."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from conftest import VIRAL_START, states_made_whole
from engine.incidents.index import SUMMARY_VERSION
from engine.store import open_store


def _as_schema_3(db) -> None:
    """The database as the code before migration 004 wrote it: each summary whole (and each
    state whole, as before migration 005)."""
    raw = sqlite3.connect(db)
    states_made_whole(raw)
    for incident, summary, clocks in raw.execute("SELECT incident, summary, clocks FROM incident_index").fetchall():
        whole = dict(json.loads(summary), clocks=clocks)
        raw.execute("UPDATE incident_index SET summary = ? WHERE incident = ?",
                    (json.dumps(whole, sort_keys=True, separators=(",", ":"), ensure_ascii=False), incident))
    raw.execute("ALTER TABLE incident_index DROP COLUMN clocks")
    raw.execute("PRAGMA user_version = 3")
    raw.commit()
    raw.close()


def _columns(db) -> list[str]:
    with sqlite3.connect(db) as raw:
        return [r[1] for r in raw.execute("PRAGMA table_info(incident_index)")]


def _rows(db) -> dict[str, tuple[dict, str | None]]:
    with sqlite3.connect(db) as raw:
        return {i: (json.loads(s), c) for i, s, c in raw.execute("SELECT incident, summary, clocks FROM incident_index")}


@pytest.fixture
def incidents(cli, clock):
    assert cli(*VIRAL_START).exit_code == 0
    clock.advance(timedelta(minutes=16))
    assert cli(*VIRAL_START).exit_code == 0
    return cli


def test_the_index_keeps_clocks_apart_from_the_summary(incidents, db):
    for summary, clocks in _rows(db).values():
        assert "clocks" not in summary and summary["v"] == SUMMARY_VERSION
        assert isinstance(json.loads(clocks), list)


def test_a_schema_3_database_works_unchanged_and_db_upgrade_moves_the_clocks_out(incidents, cli, db):
    listing, overdue = cli("list").stdout, cli("due", "--no-record").stdout
    _as_schema_3(db)
    assert "clocks" not in _columns(db)
    assert cli("list").stdout == listing
    assert cli("due", "--no-record").stdout == overdue
    assert cli("note", "INC-20260314-002", "written at schema 3").exit_code == 0  # a write keeps the old shape
    assert "clocks" not in _columns(db)
    with sqlite3.connect(db) as raw:
        assert all("clocks" in json.loads(s) for (s,) in raw.execute("SELECT summary FROM incident_index"))

    result = cli("db", "upgrade", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "applied migration(s) 4, 5; schema is now 5" in result.output
    rows = _rows(db)
    assert all("clocks" not in summary and clocks is not None for summary, clocks in rows.values())
    assert cli("list").stdout == listing
    assert cli("due", "--no-record").stdout == overdue
    assert cli("verify").exit_code == 0


def test_a_damaged_summary_is_left_as_it_is_by_the_upgrade_and_named(incidents, cli, db):
    _as_schema_3(db)
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE incident_index SET summary = '{not json' WHERE incident = 'INC-20260314-001'")
    result = cli("db", "upgrade", "--db", str(db))
    assert result.exit_code == 7  # the schema is upgraded; rebuilding the projections then stops at it
    assert "incident INC-20260314-001: its stored summary is not valid JSON (modified?)" in result.output
    assert "Traceback" not in result.output
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 5
        assert dict(raw.execute("SELECT incident, clocks IS NULL FROM incident_index")) == {
            "INC-20260314-001": 1, "INC-20260314-002": 0}
        assert raw.execute("SELECT summary FROM incident_index WHERE incident = 'INC-20260314-001'"
                           ).fetchone() == ("{not json",)
    result = cli("verify")
    assert result.exit_code == 7
    assert "incident INC-20260314-001: its stored summary is not valid JSON (modified?)" in result.output


def test_postgres_upgrade_from_schema_3_moves_the_clocks_out(pg_url):
    import psycopg

    from engine.incidents.events import NewEvent

    summary = {"v": 2, "id": "INC-1", "status": "open", "next_due_at": None, "clocks": "[[false]]"}
    store = open_store(pg_url)
    try:
        with store.transaction("INC-1") as tx:
            tx.append([NewEvent("NoteAdded", "2026-03-14T09:00:00.000Z", "alice", {"text": "x"})], {"n": 1}, summary)
    finally:
        store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # back to schema 3, as the code before 004 left it
        whole = json.dumps(summary, sort_keys=True, separators=(",", ":"))
        conn.execute("UPDATE incident_index SET summary = %s", (whole,))
        conn.execute("ALTER TABLE incident_index DROP COLUMN clocks")
        states_made_whole(conn, "%s")  # and before 005
        conn.execute("ALTER TABLE schema_migrations DISABLE TRIGGER migrations_no_update")
        conn.execute("DELETE FROM schema_migrations WHERE version >= 4")
        conn.execute("ALTER TABLE schema_migrations ENABLE TRIGGER migrations_no_update")
    from engine.errors import StoreError

    with pytest.raises(StoreError, match="run playbook db upgrade"):
        open_store(pg_url)
    store = open_store(pg_url, migrate=True)
    try:
        assert store.applied_on_open == [4, 5]
        assert store.summaries() == [("INC-1", summary)]
        assert store.summaries(clocks=False)[0][1] == {k: v for k, v in summary.items() if k != "clocks"}
    finally:
        store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT summary, clocks FROM incident_index").fetchone() == (
            '{"id":"INC-1","next_due_at":null,"status":"open","v":2}', "[[false]]")


@pytest.mark.parametrize("offset_us", [-1000, -1, 0, 1, 500, 999, 1000, 86_400_000_000])
def test_a_listing_counts_overdue_clocks_as_their_times_say(offset_us):
    """`list` compares the index's due texts instead of parsing them: the same count as
    comparing the times, at the millisecond and below it, whatever zone `now` is in."""
    from datetime import datetime, timedelta, timezone

    from engine.clocks.deadlines import parse_ts
    from engine.incidents.index import overdue

    due = ["2026-03-14T09:15:00.000Z", "2026-03-14T09:15:00.001Z", "2026-03-14T10:00:00.000Z"]
    for now in (parse_ts(due[0]) + timedelta(microseconds=offset_us),
                (parse_ts(due[0]) + timedelta(microseconds=offset_us)).astimezone(timezone(timedelta(hours=-5)))):
        assert overdue({"due": due}, now) == sum(1 for d in due if now > parse_ts(d))
    assert overdue({"due": []}, datetime(2026, 3, 14, tzinfo=timezone.utc)) == 0
