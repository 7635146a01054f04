"""What the stores keep for accounts, on every backend: the reserved stream, the failed
sign-in counts and the tokens' last use (one conformance suite)."""

from __future__ import annotations

import pytest

from engine.errors import NotFound, StoreError
from engine.incidents.events import NewEvent
from engine.store import open_store
from engine.store.streams import ACCOUNTS

AT = "2026-03-14T09:{:02d}:00.000Z"


def write(store, stream: str, n: int = 1, *, as_stream: bool = True, summary: dict | None = None):
    with store.transaction(stream, stream=as_stream) as tx:
        tx.append([NewEvent("Noted", AT.format(i), "root", {"n": i}) for i in range(n)], {"n": n}, summary)


def test_the_account_stream_is_a_chained_log_kept_out_of_incident_listings(backend):
    write(backend, ACCOUNTS, 2)
    write(backend, "INC-20260314-001", 1, as_stream=False, summary={"status": "open", "next_due_at": AT.format(5)})
    assert backend.incidents() == ["INC-20260314-001"]
    assert [s.incident for s in backend.snapshots()] == ["INC-20260314-001"]
    assert [i for i, _ in backend.summaries()] == ["INC-20260314-001"]
    assert backend.due_before(AT.format(59)) == ["INC-20260314-001"]
    assert backend.count_incidents("") == 1 and backend.count_incidents("A") == 0
    assert backend.snapshot(ACCOUNTS) is None
    snap = backend.stream(ACCOUNTS)
    assert (snap.seq, snap.state) == (2, {"n": 2})
    events = list(backend.events(ACCOUNTS))
    assert [e.seq for e in events] == [1, 2] and events[1].prev == events[0].hash
    assert sorted({r[0] for r in backend.rows()}) == [ACCOUNTS, "INC-20260314-001"]  # verify reads it


def test_a_stream_is_written_only_when_asked_and_asking_for_an_incident_is_a_mistake(backend):
    with pytest.raises(NotFound, match="no incident 'ACCOUNTS'"):
        write(backend, ACCOUNTS, as_stream=False)
    with pytest.raises(ValueError, match="not a stream"):
        write(backend, "INC-20260314-001", as_stream=True)
    assert backend.stream(ACCOUNTS) is None and backend.incidents() == []


def test_failures_are_counted_in_their_window_and_cleared(backend):
    assert [backend.count_failure("carol", AT.format(m), AT.format(0)) for m in (1, 2, 3)] == [1, 2, 3]
    assert backend.count_failure("dana", AT.format(3), AT.format(0)) == 1  # per name
    # the window's first failure (09:01) is older than the window's start: counting starts again
    assert backend.count_failure("carol", AT.format(20), AT.format(5)) == 1
    assert backend.count_failure("carol", AT.format(21), AT.format(6)) == 2
    backend.clear_failures("carol")
    backend.clear_failures("nobody")
    assert backend.count_failure("carol", AT.format(22), AT.format(7)) == 1


def test_a_failure_time_that_is_not_utc_is_refused(backend):
    with pytest.raises(ValueError, match="a sign-in time is a UTC time"):
        backend.count_failure("carol", "yesterday", AT.format(0))


def test_a_tokens_last_use_only_moves_forward(backend):
    assert backend.token_uses() == {}
    backend.token_used("aaaaaaaaaaaa", AT.format(5))
    backend.token_used("aaaaaaaaaaaa", AT.format(3))
    backend.token_used("bbbbbbbbbbbb", AT.format(1))
    assert backend.token_uses() == {"aaaaaaaaaaaa": AT.format(5), "bbbbbbbbbbbb": AT.format(1)}
    backend.token_used("aaaaaaaaaaaa", AT.format(9))
    assert backend.token_uses()["aaaaaaaaaaaa"] == AT.format(9)


def test_a_sqlite_database_at_schema_2_works_for_incidents_but_accounts_ask_for_the_upgrade(tmp_path):
    import sqlite3

    db = tmp_path / "incidents.db"
    open_store(db).close()
    raw = sqlite3.connect(db)
    raw.execute("DROP TABLE sign_in_failures")
    raw.execute("DROP TABLE token_uses")
    raw.execute("DROP TABLE projection_parts")  # and migration 005's table (no incident yet)
    raw.execute("ALTER TABLE incident_index DROP COLUMN clocks")  # and migration 004's column
    raw.execute("PRAGMA user_version = 2")
    raw.commit()
    raw.close()
    with open_store(db) as old:
        write(old, "INC-20260314-001", as_stream=False)
        assert old.token_uses() == {}
        with pytest.raises(StoreError, match="accounts need schema 3: run playbook db upgrade"):
            old.count_failure("carol", AT.format(1), AT.format(0))
        assert old.upgrade() == [3, 4, 5]
    with open_store(db) as upgraded:
        assert upgraded.count_failure("carol", AT.format(1), AT.format(0)) == 1
