"""PostgreSQL as the team store: the schema's own guarantees, the CLI end to end,
concurrent writers, outages, and moving a SQLite database across byte for byte.

The store behaviour every backend shares is in test_store.py (parametrised over
memory, SQLite and PostgreSQL); these are the PostgreSQL-specific parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT, VIRAL_START, Cli, states_made_whole
from engine.errors import Conflict, NotFound, StoreError
from engine.incidents.events import NewEvent
from engine.store import open_store

AT = "2026-03-14T09:00:00.000Z"


def ev(n: int) -> NewEvent:
    return NewEvent("NoteAdded", AT, "alice", {"n": n})


def append(store, incident: str, *events: NewEvent):
    with store.transaction(incident) as tx:
        return tx.append(list(events), {"n": len(events)})


def raw(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


@pytest.mark.parametrize("statement", [
    "UPDATE events SET data = '{\"n\": 9}'",
    "DELETE FROM events",
    "TRUNCATE events",
    "UPDATE playbook_meta SET database_id = 'x'",
    "DELETE FROM playbook_meta",
    "UPDATE checkpoints SET body = '{}'",
    "DELETE FROM checkpoints",
    "DELETE FROM schema_migrations",
    "TRUNCATE schema_migrations",
])
def test_the_schema_refuses_changing_the_log_meta_and_checkpoints(pg_url, statement):
    import psycopg

    store = open_store(pg_url)
    append(store, "INC-1", ev(1), ev(2))
    store.add_checkpoint({"at": AT, "heads": {}})
    with raw(pg_url) as conn, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute(statement)
    assert [e.data["n"] for e in store.events("INC-1")] == [1, 2]
    assert store.checkpoints() == [{"at": AT, "heads": {}}]
    store.close()


def test_the_schema_refuses_an_event_out_of_sequence_or_unlinked(pg_url):
    import psycopg

    store = open_store(pg_url)
    (first,) = append(store, "INC-1", ev(1))
    with raw(pg_url) as conn:
        for seq, prev in ((3, first.hash), (2, "0" * 64)):
            with pytest.raises(psycopg.errors.RaiseException, match="next seq"):
                conn.execute("INSERT INTO events VALUES ('INC-1', %s, 'NoteAdded', %s, 'mallory', "
                             "'{}', %s, %s)", (seq, AT, prev, "f" * 64))
    store.close()


def test_event_data_is_kept_as_the_exact_text_that_is_hashed(pg_url, tmp_path):
    """Not jsonb: the bytes stored are the bytes hashed, key order and spacing included."""
    pg, lite = open_store(pg_url), open_store(tmp_path / "x.db", database_id=None)
    data = {"z": 1, "a": [3, 2, {"é": "ü"}], "m": "x\u2028y"}
    for store in (pg, lite):
        append(store, "INC-1", NewEvent("NoteAdded", AT, "alice", data))
    (pg_row,), (lite_row,) = list(pg.rows("INC-1")), list(lite.rows("INC-1"))
    assert pg_row[5] == lite_row[5]
    with raw(pg_url) as conn:
        (stored,) = conn.execute("SELECT data FROM events").fetchone()
    assert stored == lite_row[5]
    pg.close(), lite.close()


def test_reopening_keeps_the_database_id_and_an_empty_database_is_not_created_on_read(pg_url, postgres_cluster):
    store = open_store(pg_url)
    database_id = store.database_id
    append(store, "INC-1", ev(1))
    store.close()
    again = open_store(pg_url, create=False)
    assert again.database_id == database_id and again.schema_version() == 5
    again.close()
    import uuid

    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres_cluster.admin(f'CREATE DATABASE "{name}"')
    try:
        with pytest.raises(NotFound, match="holds no incident database"):
            open_store(postgres_cluster.database_url(name), create=False)
        with raw(postgres_cluster.database_url(name)) as conn:
            assert conn.execute("SELECT count(*) FROM information_schema.tables "
                                "WHERE table_schema = 'public'").fetchone()[0] == 0
    finally:
        postgres_cluster.admin(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_a_database_of_another_program_or_a_newer_tool_is_refused_untouched(pg_url):
    with raw(pg_url) as conn:
        conn.execute("CREATE TABLE patients (id int)")
    with pytest.raises(StoreError, match="belongs to another program.*patients"):
        open_store(pg_url)
    with raw(pg_url) as conn:
        conn.execute("DROP TABLE patients")
    open_store(pg_url).close()
    with raw(pg_url) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, %s)", (AT,))
    with pytest.raises(StoreError, match="newer version of this tool \\(schema 99"):
        open_store(pg_url)


def test_a_server_that_cannot_be_reached_is_store_unavailable_with_a_clear_message(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    from click.testing import CliRunner

    from cli import main

    url = f"postgresql://playbook:s3cret@127.0.0.1:{port}/playbook"
    result = CliRunner().invoke(main, ["list"], env={"PLAYBOOK_DB": url}, catch_exceptions=False)
    assert result.exit_code == 8
    assert f"127.0.0.1:{port}" in result.output and "s3cret" not in result.output
    assert "Traceback" not in result.output


def test_a_duplicate_key_written_behind_the_stores_back_is_a_conflict(pg_url):
    store = open_store(pg_url)
    append(store, "INC-1", ev(1))
    with store.transaction("INC-1") as tx:
        rows = tx.append([ev(2)], {"n": 2})
        with raw(pg_url) as conn:  # wait: the other writer is locked out by the advisory lock
            conn.execute("SET lock_timeout = '100ms'")
            with pytest.raises(Exception):
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext('INC-1'))", (0x43724262,))
    assert rows[0].seq == 2
    err = store._translate(__import__("psycopg").errors.UniqueViolation(
        'duplicate key value violates unique constraint "events_pkey"'), "INC-1")
    assert isinstance(err, Conflict)
    store.close()


# -- the CLI against PostgreSQL ------------------------------------------------------------


def test_the_readme_walkthrough_runs_on_postgresql(pg_url, clock, tmp_path, monkeypatch):
    from test_readme import _console_commands

    monkeypatch.chdir(tmp_path)
    (tmp_path / "playbooks").symlink_to(ROOT / "playbooks")
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "signing.key"))
    cli = Cli(pg_url, clock)
    for args, expected in _console_commands():
        result = cli(*args)
        assert result.exit_code == expected, (args, result.output)
    assert "OK:" in cli("verify").output


WRITER = """
import sys
from engine.clock import SystemClock
from engine.store import open_store
from engine.incidents import service
store = open_store(sys.argv[1])
for i in range(int(sys.argv[3])):
    service.note(store, SystemClock(), "alice", sys.argv[2], f"note {sys.argv[4]}-{i}")
print("done")
"""


def test_eight_processes_writing_one_incident_leave_a_contiguous_verifying_history(pg_url, clock):
    cli = Cli(pg_url, clock)
    assert cli(*VIRAL_START).exit_code == 0
    (incident,) = open_store(pg_url).incidents()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, incident, "15", str(p)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in range(8)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-800:] for o in outs]
    store = open_store(pg_url)
    events = list(store.events(incident))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    notes = [e.data["text"] for e in events if e.type == "NoteAdded"]
    assert len(notes) == 120 and len(set(notes)) == 120
    store.close()
    result = cli("verify", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True


STARTER = """
import sys
from click.testing import CliRunner
from cli import main
r = CliRunner().invoke(main, sys.argv[2:], env={"PLAYBOOK_DB": sys.argv[1], "PLAYBOOK_ACTOR": "alice"})
print(r.exit_code, r.output.strip().splitlines()[0] if r.output.strip() else "")
"""


def test_incidents_started_at_the_same_moment_get_distinct_ids(pg_url):
    args = [a for a in VIRAL_START]
    args[0] = "start"
    args[1] = str(ROOT / "playbooks" / "viral-complaint.yaml")
    procs = [subprocess.Popen([sys.executable, "-c", STARTER, pg_url, *args], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(o.startswith("0 ") for o in outs), outs
    store = open_store(pg_url)
    assert len(set(store.incidents())) == 6
    store.close()


# -- moving a team from SQLite to PostgreSQL --------------------------------------------------


def _busy_sqlite_database(tmp_path, clock) -> Cli:
    cli = Cli(tmp_path / "team.db", clock)
    os.environ.setdefault("PLAYBOOK_KEY", str(tmp_path / "signing.key"))
    assert cli(*VIRAL_START).exit_code == 0
    for args in (["task", "INC-20260314-001", "confirm_post"],
                 ["advance", "INC-20260314-001", "acknowledge"],
                 ["note", "INC-20260314-001", "Ward manager called back"],
                 ["render", "INC-20260314-001", "public_ack", "--channel", "x", "--lang", "en", "--as", "alice"]):
        assert cli(*args).exit_code == 0, cli(*args).output
    assert cli(*VIRAL_START).exit_code == 0
    assert cli("verify", "-o", str(tmp_path / "cp.json")).exit_code == 0
    return cli


def test_db_copy_moves_every_event_byte_for_byte_and_verifies_there(pg_url, clock, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "signing.key"))
    lite = _busy_sqlite_database(tmp_path, clock)
    result = lite("db", "copy", str(lite.db), pg_url)
    assert result.exit_code == 0, result.output
    assert "copied 2 incident(s)" in result.output and "verified at the destination" in result.output
    src, dst = open_store(lite.db), open_store(pg_url)
    assert dst.database_id == src.database_id
    assert list(dst.rows()) == list(src.rows())
    assert dst.checkpoints() == src.checkpoints()
    src.close(), dst.close()
    pg = Cli(pg_url, clock)
    for args in (["export", "INC-20260314-001", "--format", "jsonl"],
                 ["report", "INC-20260314-001", "--format", "json"],
                 ["log", "INC-20260314-001", "--json"],
                 ["status", "INC-20260314-001", "--json"],
                 ["verify", "--checkpoint", str(tmp_path / "cp.json"), "--json"]):
        a, b = lite(*args), pg(*args)
        assert (a.exit_code, a.output) == (b.exit_code, b.output), args
    bundles = []
    for cli, name in ((lite, "lite.zip"), (pg, "pg.zip")):
        assert cli("bundle", "INC-20260314-001", "-o", str(tmp_path / name)).exit_code == 0
        with zipfile.ZipFile(tmp_path / name) as z:
            bundles.append({m: z.read(m) for m in z.namelist()})
    assert bundles[0] == bundles[1]  # member by member, byte for byte
    assert pg("verify", "--bundle", str(tmp_path / "pg.zip")).exit_code == 0
    assert pg("note", "INC-20260314-001", "Carried on after the move").exit_code == 0
    assert pg("verify").exit_code == 0


def test_db_copy_refuses_a_destination_that_holds_incidents(pg_url, clock, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "signing.key"))
    lite = _busy_sqlite_database(tmp_path, clock)
    pg = Cli(pg_url, clock)
    assert pg(*VIRAL_START).exit_code == 0
    before = list(open_store(pg_url).rows())
    result = lite("db", "copy", str(lite.db), pg_url)
    assert result.exit_code == 5
    assert "already holds an incident database" in result.output
    assert list(open_store(pg_url).rows()) == before


def test_db_copy_from_a_missing_source_is_not_found(tmp_path, clock, pg_url):
    result = Cli(tmp_path / "x.db", clock)("db", "copy", str(tmp_path / "missing.db"), pg_url)
    assert result.exit_code == 4


def test_db_upgrade_creates_the_schema_and_then_has_nothing_to_do(pg_url, clock):
    cli = Cli(pg_url, clock)
    first = cli("db", "upgrade", "--db", pg_url)
    assert first.exit_code == 0 and "applied migration(s) 1, 2, 3, 4, 5; schema is now 5" in first.output
    again = cli("db", "upgrade", "--db", pg_url)
    assert again.exit_code == 0 and "schema 5 is current" in again.output
    assert "every incident projection is current" in again.output


def test_a_schema_1_database_is_refused_until_db_upgrade_adds_and_fills_the_index(pg_url, clock):
    cli = Cli(pg_url, clock)
    assert cli(*VIRAL_START).exit_code == 0
    with raw(pg_url) as conn:  # back to what the code before migration 002 left
        states_made_whole(conn, "%s")  # every part kept apart (migration 005) back in its place
        conn.execute("DROP TABLE incident_index")
        conn.execute("DROP TABLE sign_in_failures")  # and migration 003's account tables
        conn.execute("DROP TABLE token_uses")
        conn.execute("ALTER TABLE schema_migrations DISABLE TRIGGER migrations_no_update")
        conn.execute("DELETE FROM schema_migrations WHERE version >= 2")
        conn.execute("ALTER TABLE schema_migrations ENABLE TRIGGER migrations_no_update")
    with pytest.raises(StoreError, match="has schema 1, this version of the tool needs 5: run playbook db upgrade"):
        open_store(pg_url)
    result = cli("db", "upgrade", "--db", pg_url)
    assert result.exit_code == 0 and "applied migration(s) 2, 3, 4, 5; schema is now 5" in result.output, result.output
    store = open_store(pg_url)
    try:
        (incident, summary), = store.summaries()
        assert incident == "INC-20260314-001" and summary["next_due_at"] == "2026-03-14T09:15:00.000Z"
        assert store.due_before("2026-03-14T09:15:00.000Z") == ["INC-20260314-001"]
        assert store.due_before("2026-03-14T09:14:59.999Z") == []
    finally:
        store.close()
    assert cli("verify").exit_code == 0


# -- the server itself goes away ---------------------------------------------------------------

# Appends one note per transaction, forever; prints each committed seq, and the
# store's own message (never a traceback) whenever the server is unavailable.
RESILIENT_WRITER = """
import sys, time
from engine.errors import PlaybookError
from engine.incidents.events import NewEvent
from engine.store import open_store

store = open_store(sys.argv[1], busy_timeout=2)
while True:
    try:
        with store.transaction("INC-1") as tx:
            n = tx.snapshot.seq if tx.snapshot else 0
            tx.append([NewEvent("NoteAdded", "2026-11-22T11:42:59.123Z", "alice", {"n": n + 1})], {"n": n + 1})
        print(n + 1, flush=True)
    except PlaybookError as e:
        print(f"error {e.exit_code}: {e}", flush=True)
        time.sleep(0.2)
"""


def test_an_immediate_server_stop_during_writes_loses_no_acknowledged_event_and_recovers():
    """`pg_ctl stop -m immediate` (a crash, as far as the server's files know) while a
    client writes: the client reports the outage as store unavailable (exit 8), carries
    on by itself once the server is back, and every acknowledged event is there."""
    import threading
    import time

    from conftest import start_cluster
    from engine.audit.integrity import verify

    try:
        cluster = start_cluster()
    except RuntimeError as e:
        pytest.skip(str(e)) if not os.environ.get("PLAYBOOK_REQUIRE_POSTGRES") else pytest.fail(str(e))
    try:
        url = cluster.database_url("postgres")
        open_store(url).close()
        child = subprocess.Popen([sys.executable, "-c", RESILIENT_WRITER, url], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(child.stdout.readline, "")), daemon=True)
        reader.start()
        try:
            def wait_for(predicate, what, seconds=60):
                deadline = time.monotonic() + seconds
                while not predicate():
                    assert time.monotonic() < deadline, f"timed out waiting for {what}: {lines[-5:]}"
                    time.sleep(0.05)

            wait_for(lambda: sum(line[0].isdigit() for line in lines) >= 20, "writes before the stop")
            cluster.stop("immediate")
            wait_for(lambda: any(line.startswith("error") for line in lines), "the outage to be reported")
            time.sleep(0.5)
            outage = [line for line in lines if line.startswith("error")]
            cluster.restart()
            before = len(lines)
            wait_for(lambda: sum(line[0].isdigit() for line in lines[before:]) >= 20, "writes after the restart")
        finally:
            child.kill()
            child.wait(timeout=10)
            reader.join(timeout=10)
        assert "Traceback" not in child.stderr.read()
        assert all(line.startswith("error 8: ") for line in outage), outage[:3]
        assert any("unavailable" in line or "cannot reach" in line for line in outage), outage[:3]
        acknowledged = [int(line) for line in lines if line[0].isdigit()]
        store = open_store(url)
        seqs = [e.seq for e in store.events("INC-1")]
        assert seqs == list(range(1, len(seqs) + 1))
        assert set(acknowledged) <= set(seqs), "an acknowledged event was lost"
        report = verify(store)
        assert report.ok, report.problems
        store.close()
    finally:
        cluster.remove()
