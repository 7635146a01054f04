"""Checkpoints someone who can write the database, but not read the signing key, cannot
delete or forge; and `verify` never signs over a history that contradicts them."""

from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import VIRAL_START

INC = "INC-20260314-001"


@pytest.fixture
def incident(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "vault" / "signing.key"))
    assert cli(*VIRAL_START).exit_code == 0
    assert cli("task", INC, "confirm_post").exit_code == 0
    return INC


def _raw(db) -> sqlite3.Connection:
    con = sqlite3.connect(db, isolation_level=None)
    for name in ("events_no_update", "events_no_delete", "checkpoints_no_update", "checkpoints_no_delete"):
        con.execute(f"DROP TRIGGER IF EXISTS {name}")
    return con


def _stored(db) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    finally:
        con.close()


def _rewrite_history(db) -> None:
    """Change a note's task name and recompute every later hash (no key needed)."""
    from engine.incidents.events import event_hash

    con = _raw(db)
    (database_id,) = con.execute("SELECT database_id FROM meta").fetchone()
    rows = con.execute("SELECT seq, type, at, actor, data, prev FROM events WHERE incident = ? ORDER BY seq",
                       (INC,)).fetchall()
    prev = None
    for seq, type_, at, actor, data, old_prev in rows:
        data = data.replace("confirm_post", "check_patient")
        prev = old_prev if prev is None else prev
        h = event_hash(database_id, INC, seq, type_, at, actor, json.loads(data), prev)
        con.execute("UPDATE events SET data = ?, prev = ?, hash = ? WHERE incident = ? AND seq = ?",
                    (data, prev, h, INC, seq))
        prev = h
    con.execute("UPDATE snapshots SET head = ?, state = replace(state, 'confirm_post', 'check_patient') "
                "WHERE incident = ?", (prev, INC))
    con.close()


def test_a_checkpoint_stored_with_the_attackers_own_key_is_refused(cli, incident, db, tmp_path):
    from engine.audit.integrity import checkpoint, load_or_create_key
    from engine.store import open_store

    assert cli("verify").exit_code == 0
    _rewrite_history(db)
    con = _raw(db)
    con.execute("DELETE FROM checkpoints")
    con.close()
    store = open_store(db)
    checkpoint(store, load_or_create_key(tmp_path / "mallory.key"), "2026-03-14T09:30:00.000Z")
    store.close()
    failed = cli("verify")
    assert failed.exit_code == 7, failed.output
    assert "signed by a different key than the configured or given one (forged?)" in failed.output
    assert _stored(db) == 1  # nothing new signed over the forged history


def test_deleting_a_stored_checkpoint_breaks_their_chain(cli, incident, db):
    for _ in range(3):
        assert cli("verify").exit_code == 0
    con = _raw(db)
    con.execute("DELETE FROM checkpoints WHERE id = 2")
    con.close()
    failed = cli("verify")
    assert failed.exit_code == 7
    assert "(stored #2): does not follow the stored checkpoint before it (a checkpoint was deleted" in failed.output
    assert _stored(db) == 2


def test_checkpoints_kept_in_a_folder_show_that_the_stored_ones_were_deleted(cli, incident, db, tmp_path,
                                                                             monkeypatch):
    folder = tmp_path / "vault" / "checkpoints"
    monkeypatch.setenv("PLAYBOOK_CHECKPOINTS", str(folder))
    assert cli("verify").exit_code == 0
    assert cli("verify").exit_code == 0
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-00000001.json", "checkpoint-00000002.json"]
    _rewrite_history(db)
    con = _raw(db)
    con.execute("DELETE FROM checkpoints")
    con.close()
    failed = cli("verify")
    assert failed.exit_code == 7
    assert f"checkpoint checkpoint-00000002.json in {folder} is missing from the database's checkpoints" \
        in failed.output
    assert "hash differs from the checkpoint checkpoint-00000002.json" in failed.output
    assert _stored(db) == 0 and len(list(folder.iterdir())) == 2


def test_a_missing_signing_key_is_an_integrity_failure_not_a_fresh_start(cli, incident, db, tmp_path):
    assert cli("verify").exit_code == 0
    (tmp_path / "vault" / "signing.key").unlink()
    (tmp_path / "vault" / "signing.key.pub").unlink()
    failed = cli("verify")
    assert failed.exit_code == 7
    assert "1 checkpoint(s) cannot be checked: the signing key" in failed.output
    assert not (tmp_path / "vault" / "signing.key").exists() and _stored(db) == 1


def test_verify_with_another_signing_key_refuses_to_continue_the_chain(cli, incident, db, tmp_path, monkeypatch):
    assert cli("verify").exit_code == 0
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "other" / "signing.key"))
    public = tmp_path / "vault" / "signing.key.pub"
    failed = cli("verify", "--public-key", str(public))
    assert failed.exit_code == 7
    assert "the last stored checkpoint is not signed by this signing key" in failed.output
    assert _stored(db) == 1


def test_verify_into_a_missing_folder_exits_4_and_signs_nothing(cli, incident, db, tmp_path):
    result = cli("verify", "-o", str(tmp_path / "missing" / "cp.json"))
    assert result.exit_code == 4, result.output
    assert "does not exist" in result.output
    assert _stored(db) == 0
    assert cli("verify", "-o", str(tmp_path / "cp.json")).exit_code == 0
    assert json.loads((tmp_path / "cp.json").read_text())["counter"] == 1


# -- bad input at the edges gets its documented code (issue: exit 1 on each) --------------


def test_arguments_that_are_not_utf8_are_a_usage_error(cli, incident, db):
    before = _stored(db)
    result = cli("note", INC, "caf\udce9", "--as", "alice")  # the bytes b"caf\xe9" as Python sees them
    assert result.exit_code == 2
    assert "is not valid UTF-8 text" in result.output
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM events WHERE type = 'NoteAdded'").fetchone()[0] == 0
    con.close()
    assert _stored(db) == before


def test_a_database_path_too_long_for_the_file_system_is_a_store_error(cli, tmp_path):
    long = str(tmp_path / ("a" * 5000) / "incidents.db")
    for args in (["status", "INC-1"], list(VIRAL_START)):
        result = cli(*args, "--db", long)
        assert result.exit_code == 8, result.output
        assert "File name too long" in result.output or "cannot use" in result.output
        assert "(5" in result.output and len(result.output) < 600  # the path is shortened


def test_a_time_outside_the_zone_range_is_shown_as_written(cli, incident):
    assert cli("note", INC, "no earlier than 0001-01-01T00:00:00Z").exit_code == 0
    result = cli("--tz", "America/Los_Angeles", "log", INC)
    assert result.exit_code == 0, result.output
    assert "note: no earlier than 0001-01-01T00:00:00Z" in result.output
    assert "-07:00" in result.output or "-08:00" in result.output


def test_out_of_memory_is_reported_with_its_code_and_changes_nothing(cli, incident, db, monkeypatch):
    from engine.incidents import act

    def exhausted(*a, **k):
        raise MemoryError

    monkeypatch.setattr(act, "apply_all", exhausted)
    result = cli("note", INC, "hello")
    assert result.exit_code == 8
    assert "out of memory" in result.output and "nothing was changed" in result.output
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM events WHERE type = 'NoteAdded'").fetchone()[0] == 0
    con.close()
