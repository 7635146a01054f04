"""Checkpoint retention: each verify signs a checkpoint, and the oldest stored ones are
removed in the same transaction, so their number stays bounded; verification stays
incremental and still finds tampering before and after the oldest checkpoint kept."""

from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import VIRAL_START
from test_verify_incremental import _verify
from engine.audit.checkpoints import KEEP

ONE = "INC-20260314-001"


@pytest.fixture
def one(cli, tmp_path, monkeypatch):
    """One incident, the signing key kept away from the database."""
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "vault" / "signing.key"))
    assert cli(*VIRAL_START).exit_code == 0
    return cli




def _stored(db) -> list[dict]:
    con = sqlite3.connect(db)
    try:
        return [json.loads(body) for (body,) in con.execute("SELECT body FROM checkpoints ORDER BY id")]
    finally:
        con.close()


def _raw(db) -> sqlite3.Connection:
    con = sqlite3.connect(db, isolation_level=None)
    for name in ("events_no_update", "events_no_delete", "checkpoints_no_delete"):
        con.execute(f"DROP TRIGGER IF EXISTS {name}")
    return con


def _rewrite(db, incident: str, start: int, old: str, new: str) -> None:
    """Edit the data of every event from ``start`` on and recompute every hash after it
    (and the projection), as someone who can write the file and knows the database id."""
    from engine.incidents.events import event_hash

    con = _raw(db)
    (database_id,) = con.execute("SELECT database_id FROM meta").fetchone()
    rows = con.execute("SELECT seq, type, at, actor, data, prev FROM events WHERE incident = ? ORDER BY seq",
                       (incident,)).fetchall()
    prev = None
    for seq, type_, at, actor, data, stored_prev in rows:
        if seq < start:
            continue
        data = data.replace(old, new)
        prev = stored_prev if prev is None else prev
        h = event_hash(database_id, incident, seq, type_, at, actor, json.loads(data), prev)
        con.execute("UPDATE events SET data = ?, prev = ?, hash = ? WHERE incident = ? AND seq = ?",
                    (data, prev, h, incident, seq))
        prev = h
    con.execute("UPDATE snapshots SET head = ?, state = replace(state, ?, ?) WHERE incident = ?",
                (prev, old, new, incident))
    con.execute("UPDATE incident_index SET summary = replace(summary, ?, ?) WHERE incident = ?", (old, new, incident))
    con.close()


def test_the_number_of_stored_checkpoints_stays_bounded(one, db):
    for n in range(1, KEEP + 4):
        assert one("note", ONE, f"note {n}").exit_code == 0
        _verify(one)
        assert len(_stored(db)) == min(n, KEEP)
    stored = _stored(db)
    counters = [cp["counter"] for cp in stored]
    assert counters == list(range(KEEP + 3 - KEEP + 1, KEEP + 4))  # the newest, in order
    # the triggers that keep checkpoints append-only are back after each removal
    con = sqlite3.connect(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM checkpoints")
    con.close()


def test_after_removal_verify_is_still_incremental_and_the_chain_still_checked(one, db):
    for _ in range(KEEP + 2):
        _verify(one)
    again = _verify(one)
    assert (again["refolded"], again["unchanged"], again["checkpoints"]) == (0, 1, KEEP)
    assert one("note", ONE, "after the removal").exit_code == 0
    after = _verify(one)
    assert (after["refolded"], after["unchanged"]) == (1, 0)
    assert after["checkpoint"]["counter"] == KEEP + 4


def test_a_deleted_checkpoint_among_those_kept_is_still_found(one, db):
    for _ in range(KEEP + 2):
        _verify(one)
    assert KEEP >= 3
    con = _raw(db)
    # the second oldest kept: deleting the oldest looks like retention, and the newest only a copy shows
    (middle,) = con.execute("SELECT id FROM checkpoints ORDER BY id LIMIT 1 OFFSET 1").fetchone()
    con.execute("DELETE FROM checkpoints WHERE id = ?", (middle,))
    con.close()
    result = one("verify")
    assert result.exit_code == 7
    assert "does not follow the stored checkpoint before it (a checkpoint was deleted or inserted?)" in result.output


def test_a_history_rewritten_before_the_oldest_checkpoint_kept_is_found(one, db):
    """An event signed for by checkpoints since removed is still covered: the newest
    checkpoint's head covers every event before it."""
    for _ in range(KEEP + 2):
        _verify(one)
    assert _stored(db)[0]["counter"] > 1  # the first checkpoints are gone
    _rewrite(db, ONE, 1, "ER wait time complaint", "Nothing happened")
    result = one("verify")
    assert result.exit_code == 7
    assert f"incident {ONE} event" in result.output and "hash differs from the checkpoint" in result.output
    assert _stored(db)[-1]["counter"] == KEEP + 2  # nothing signed over it, nothing removed


def test_a_history_rewritten_after_the_oldest_checkpoint_kept_is_found(one, db):
    for n in range(KEEP + 2):
        assert one("note", ONE, f"Checked on the ward, round {n}").exit_code == 0
        _verify(one)
    oldest = _stored(db)[0]["heads"][ONE]["seq"]
    _rewrite(db, ONE, oldest + 1, "Checked on the ward", "Nobody called")
    result = one("verify")
    assert result.exit_code == 7
    assert "hash differs from the checkpoint" in result.output


def test_a_modified_event_is_found_after_removal(one, db):
    for _ in range(KEEP + 2):
        _verify(one)
    con = _raw(db)
    con.execute("UPDATE events SET data = replace(data, 'ER wait time complaint', 'Nothing') "
                "WHERE incident = ? AND seq = 1", (ONE,))
    con.close()
    result = one("verify")
    assert result.exit_code == 7
    assert f"incident {ONE} event 1: hash does not match its content (modified?)" in result.output


def test_the_checkpoint_folder_keeps_every_copy_and_removed_ones_are_not_missing(one, db, tmp_path):
    folder = tmp_path / "copies"
    for _ in range(KEEP + 2):
        _verify(one, "--checkpoint-dir", str(folder))
    assert len(list(folder.glob("checkpoint-*.json"))) == KEEP + 2
    assert len(_stored(db)) == KEEP
    report = _verify(one, "--checkpoint-dir", str(folder))
    assert report["checkpoints"] == KEEP + (KEEP + 2)
    con = _raw(db)
    con.execute("DELETE FROM checkpoints WHERE id = (SELECT max(id) FROM checkpoints)")  # the newest
    con.close()
    result = one("verify", "--checkpoint-dir", str(folder))
    assert result.exit_code == 7
    assert f"checkpoint-{KEEP + 3:08d}.json in {folder} is missing from the database's checkpoints" in result.output


def test_a_checkpoint_signed_without_verifying_every_incident_removes_nothing(one, db, tmp_path):
    """A bundle signs a checkpoint after verifying one incident only: the older ones, which
    may still catch something in another incident, stay."""
    for _ in range(KEEP):
        _verify(one)
    for n in range(3):
        assert one("bundle", ONE, "-o", str(tmp_path / f"bundle-{n}.zip")).exit_code == 0
    assert len(_stored(db)) == KEEP + 3
    _verify(one)
    assert len(_stored(db)) == KEEP


def test_the_report_numbers_the_latest_checkpoint_as_verify_does(one, db):
    for _ in range(KEEP + 2):
        _verify(one)
    result = one("report", ONE, "--format", "json")
    assert result.exit_code == 0, result.output
    integrity = json.loads(result.stdout)["integrity"]
    assert integrity["ok"] and integrity["checkpoint"]["stored"] == KEEP + 2
