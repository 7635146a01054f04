"""Tamper evidence: verify finds every kind of edit an attacker with the file could make.

The attacker works with raw sqlite3 and drops the append-only triggers first, as a
real one would.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from contextlib import contextmanager

import pytest

from engine.audit import integrity
from engine.audit.integrity import checkpoint, load_or_create_key, public_key_pem, verify
from engine.errors import IntegrityError, StoreError
from engine.incidents.events import NewEvent, event_hash
from engine.incidents.state import PROJECTION_VERSION as V
from engine.store import open_store

AT = "2026-11-22T11:{:02d}:00.000Z"
CP_AT = "2026-11-22T12:00:00.000Z"
TRIGGERS = ["events_no_update", "events_no_delete", "events_append_in_order",
            "checkpoints_no_update", "checkpoints_no_delete"]


@pytest.fixture
def db(tmp_path):
    return tmp_path / "incidents.db"


@pytest.fixture
def key(tmp_path):
    return load_or_create_key(tmp_path / "keys" / "signing.key")


@pytest.fixture
def store(db):
    """INC-1 with 10 events (one per transaction) and INC-2 with 3."""
    s = open_store(db)
    for incident, n in [("INC-1", 10), ("INC-2", 3)]:
        for i in range(1, n + 1):
            with s.transaction(incident) as tx:
                tx.append([NewEvent("NoteAdded", AT.format(i), "alice", {"text": f"note {i}"})], {"v": V, "n": i})
    yield s
    s.close()


@contextmanager
def attacker(db):
    raw = sqlite3.connect(db)
    for name in TRIGGERS:
        raw.execute(f"DROP TRIGGER IF EXISTS {name}")
    yield raw
    raw.commit()
    raw.close()


def rehash_from(raw, database_id: str, incident: str, start: int) -> None:
    """Recompute hash and prev of every event from ``start`` on, and the snapshot head."""
    rows = raw.execute(
        "SELECT seq, type, at, actor, data, prev FROM events WHERE incident = ? ORDER BY seq", (incident,)
    ).fetchall()
    prev = None
    for seq, type_, at, actor, data, stored_prev in rows:
        if seq < start:
            prev = raw.execute("SELECT hash FROM events WHERE incident=? AND seq=?", (incident, seq)).fetchone()[0]
            continue
        prev = stored_prev if prev is None else prev
        h = event_hash(database_id, incident, seq, type_, at, actor, json.loads(data), prev)
        raw.execute("UPDATE events SET prev = ?, hash = ? WHERE incident = ? AND seq = ?", (prev, h, incident, seq))
        prev = h
    raw.execute("UPDATE snapshots SET seq = ?, head = ? WHERE incident = ?", (rows[-1][0], prev, incident))


def problems_of(report) -> str:
    assert report.ok is False
    return "\n".join(report.problems)


# --- a clean log -----------------------------------------------------------------------


def test_an_untouched_log_verifies(store, key):
    report = verify(store)
    assert (report.ok, report.incidents, report.events, report.problems) == (True, 2, 13, [])
    checkpoint(store, key, CP_AT)
    report = verify(store, public_key_pem=public_key_pem(key))
    assert report.ok and report.checkpoints == 1
    assert verify(store).unchecked == 1  # without a trusted key, a stored checkpoint proves nothing


def test_verify_one_incident_reads_only_that_one(store, db):
    with attacker(db) as raw:
        raw.execute("UPDATE events SET data = '{\"text\":\"x\"}' WHERE incident = 'INC-2' AND seq = 2")
    assert verify(store, "INC-1").ok
    assert verify(store, "INC-1").events == 10
    assert "incident INC-2 event 2" in problems_of(verify(store, "INC-2"))


def test_memory_store_verifies_too():
    s = open_store("memory:")
    with s.transaction("INC-1") as tx:
        tx.append([NewEvent("NoteAdded", AT.format(i), "bob", {"i": i}) for i in range(1, 4)], {})
    assert verify(s).ok
    row = s._rows["INC-1"][1]
    s._rows["INC-1"][1] = row[:5] + ('{"i":99}',) + row[6:]
    assert problems_of(verify(s)) == "incident INC-1 event 2: hash does not match its content (modified?)"


# --- always detected, no checkpoint needed ---------------------------------------------


def test_a_modified_event_is_found(store, db):
    with attacker(db) as raw:
        raw.execute("UPDATE events SET data = '{\"text\":\"all is well\"}' WHERE incident = 'INC-1' AND seq = 7")
    assert verify(store).problems == ["incident INC-1 event 7: hash does not match its content (modified?)"]


@pytest.mark.parametrize("column, value", [("actor", "'mallory'"), ("at", "'2026-11-22T10:00:00.000Z'"),
                                           ("type", "'PostApproved'")])
def test_any_modified_field_is_found(store, db, column, value):
    with attacker(db) as raw:
        raw.execute(f"UPDATE events SET {column} = {value} WHERE incident = 'INC-1' AND seq = 3")
    assert "incident INC-1 event 3: hash does not match its content (modified?)" in problems_of(verify(store))


@pytest.mark.parametrize("value", ["CAST(data AS BLOB)", "CAST(data AS BLOB) || x'ff'",
                                   "CAST(CAST(data AS BLOB) || x'ff' AS TEXT)", "7"])
def test_data_stored_as_other_than_the_text_hashed_is_found(store, db, value):
    """The chain is checked on the data's stored bytes: the same bytes stored as a BLOB,
    bytes that are not UTF-8 or a number are not the text that was hashed."""
    with attacker(db) as raw:
        raw.execute(f"UPDATE events SET data = {value} WHERE incident = 'INC-1' AND seq = 4")
    assert verify(store).problems == ["incident INC-1 event 4: hash does not match its content (modified?)"]


def test_a_modified_event_with_its_own_hash_fixed_breaks_the_chain(store, db):
    with attacker(db) as raw:
        raw.execute("UPDATE events SET data = '{\"text\":\"all is well\"}' WHERE incident = 'INC-1' AND seq = 7")
        seq, type_, at, actor, data, prev = raw.execute(
            "SELECT seq, type, at, actor, data, prev FROM events WHERE incident = 'INC-1' AND seq = 7").fetchone()
        h = event_hash(store.database_id, "INC-1", seq, type_, at, actor, json.loads(data), prev)
        raw.execute("UPDATE events SET hash = ? WHERE incident = 'INC-1' AND seq = 7", (h,))
    assert verify(store).problems == ["incident INC-1: chain broken between 7 and 8 (inserted or reordered?)"]


def test_a_deleted_event_is_found(store, db):
    with attacker(db) as raw:
        raw.execute("DELETE FROM events WHERE incident = 'INC-1' AND seq = 5")
    assert verify(store).problems == ["incident INC-1: event 5 missing (deleted?)"]


def test_several_deleted_events_are_found(store, db):
    with attacker(db) as raw:
        raw.execute("DELETE FROM events WHERE incident = 'INC-1' AND seq BETWEEN 3 AND 6")
    assert verify(store).problems == ["incident INC-1: events 3-6 missing (deleted?)"]


def test_an_inserted_event_is_found(store, db):
    """The attacker makes room at seq 5 and forges a well-hashed event linked to event 4."""
    with attacker(db) as raw:
        raw.execute("UPDATE events SET seq = seq + 1000 WHERE incident = 'INC-1' AND seq >= 5")
        raw.execute("UPDATE events SET seq = seq - 999 WHERE incident = 'INC-1' AND seq >= 1005")
        prev = raw.execute("SELECT hash FROM events WHERE incident='INC-1' AND seq=4").fetchone()[0]
        data = {"text": "approved by legal"}
        h = event_hash(store.database_id, "INC-1", 5, "PostApproved", AT.format(4), "carol", data, prev)
        raw.execute("INSERT INTO events VALUES ('INC-1', 5, 'PostApproved', ?, 'carol', ?, ?, ?)",
                    (AT.format(4), json.dumps(data, separators=(",", ":")), prev, h))
    text = problems_of(verify(store))
    assert "incident INC-1: chain broken between 5 and 6 (inserted or reordered?)" in text
    assert "incident INC-1 event 6: hash does not match its content (modified?)" in text


def test_reordered_events_are_found(store, db):
    with attacker(db) as raw:
        raw.execute("UPDATE events SET seq = 1004 WHERE incident = 'INC-1' AND seq = 4")
        raw.execute("UPDATE events SET seq = 4 WHERE incident = 'INC-1' AND seq = 5")
        raw.execute("UPDATE events SET seq = 5 WHERE incident = 'INC-1' AND seq = 1004")
    text = problems_of(verify(store))
    assert "incident INC-1 event 4: hash does not match its content (modified?)" in text
    assert "incident INC-1 event 5: hash does not match its content (modified?)" in text
    assert "incident INC-1: chain broken between 3 and 4 (inserted or reordered?)" in text


def test_an_event_moved_to_another_incident_is_found(store, db):
    with attacker(db) as raw:
        raw.execute("UPDATE events SET incident = 'INC-3' WHERE incident = 'INC-1' AND seq >= 1")
        raw.execute("UPDATE snapshots SET incident = 'INC-3' WHERE incident = 'INC-1'")
    text = problems_of(verify(store))
    assert "incident INC-3 event 1: hash does not match its content (modified?)" in text


def test_a_dropped_tail_disagrees_with_the_snapshot(store, db):
    with attacker(db) as raw:
        raw.execute("DELETE FROM events WHERE incident = 'INC-1' AND seq >= 9")
    assert verify(store).problems == ["incident INC-1: snapshot says seq 10 but the log ends at 8"]


def test_a_whole_incident_deleted_leaves_its_snapshot(store, db):
    with attacker(db) as raw:
        raw.execute("DELETE FROM events WHERE incident = 'INC-2'")
    assert verify(store).problems == ["incident INC-2: snapshot says seq 3 but the log has no events (deleted?)"]


def count_events(events) -> dict:
    """The fixture's fold: its state is the number of events."""
    return {"v": V, "n": sum(1 for _ in events)}


def test_an_edited_projection_state_is_found_by_refolding(store, db):
    assert verify(store, replay=count_events).ok
    with attacker(db) as raw:
        raw.execute(f"UPDATE snapshots SET state = '{{\"n\":99,\"v\":{V}}}' WHERE incident = 'INC-2'")
    assert verify(store).ok  # the hash chain does not cover the projection's state
    assert verify(store, replay=count_events).problems == [
        "incident INC-2: snapshot state differs from the state folded from its events (edited?)"
    ]


@pytest.mark.parametrize("replay", [None, count_events], ids=["fast", "refold"])
def test_a_projection_that_is_not_json_is_named_and_the_others_still_checked(store, db, replay):
    with attacker(db) as raw:
        raw.execute("UPDATE snapshots SET state = '{\"n\":' WHERE incident = 'INC-1'")
        raw.execute("UPDATE snapshots SET seq = 2 WHERE incident = 'INC-2'")
    assert problems_of(verify(store, replay=replay)).splitlines() == [
        "incident INC-1: its stored state is not valid JSON (modified?)",
        "incident INC-2: snapshot says seq 2 but the log ends at 3"]


def test_a_fold_that_fails_is_a_problem(store):
    def broken(events):
        raise KeyError("stage")

    assert "incident INC-1: its events cannot be folded" in problems_of(verify(store, "INC-1", replay=broken))


# --- detected only against a checkpoint ----------------------------------------------------


def edit_and_rechain(store, db) -> None:
    with attacker(db) as raw:
        raw.execute("UPDATE events SET data = '{\"text\":\"nothing happened\"}' WHERE incident = 'INC-1' AND seq = 3")
        rehash_from(raw, store.database_id, "INC-1", 3)


def test_a_recomputed_chain_is_invisible_without_a_checkpoint(store, db):
    edit_and_rechain(store, db)
    assert verify(store).ok  # the documented limit: the chain alone cannot tell


def test_a_recomputed_chain_is_found_by_a_stored_checkpoint(store, db, key):
    checkpoint(store, key, CP_AT)
    edit_and_rechain(store, db)
    assert verify(store, public_key_pem=public_key_pem(key)).problems == [
        f"incident INC-1 event 10: hash differs from the checkpoint of {CP_AT} (stored #1) (chain recomputed?)"
    ]


def test_a_recomputed_chain_is_found_by_the_auditors_checkpoint(store, db, key):
    """The attacker also deleted the stored checkpoints; the auditor's copy still catches it."""
    cp = checkpoint(store, key, CP_AT)
    edit_and_rechain(store, db)
    with attacker(db) as raw:
        raw.execute("DELETE FROM checkpoints")
    assert verify(store).ok
    report = verify(store, checkpoint=cp, public_key_pem=public_key_pem(key))
    assert report.problems == [
        f"incident INC-1 event 10: hash differs from the checkpoint of {CP_AT} (chain recomputed?)"
    ]


def test_a_truncated_tail_is_found_by_a_checkpoint(store, db, key):
    checkpoint(store, key, CP_AT)
    with attacker(db) as raw:
        raw.execute("DELETE FROM events WHERE incident = 'INC-1' AND seq >= 9")
        rehash_from(raw, store.database_id, "INC-1", 99)  # rewinds the snapshot to event 8
    assert verify(store, public_key_pem=public_key_pem(key)).problems == [
        f"incident INC-1: log ends at seq 8 but checkpoint of {CP_AT} (stored #1) recorded seq 10 (truncated?)"
    ]


def test_an_incident_missing_from_the_log_is_found_by_a_checkpoint(store, db, key):
    cp = checkpoint(store, key, CP_AT)
    with attacker(db) as raw:
        raw.execute("DELETE FROM events WHERE incident = 'INC-2'")
        raw.execute("DELETE FROM snapshots WHERE incident = 'INC-2'")
    assert verify(store, checkpoint=cp).problems == [
        f"incident INC-2 in the checkpoint of {CP_AT} is missing from the log (deleted?)"
    ]


def test_a_later_checkpoint_covers_later_events_only(store, key):
    checkpoint(store, key, CP_AT)
    with store.transaction("INC-1") as tx:
        tx.append([NewEvent("NoteAdded", AT.format(30), "bob", {})], {"v": V, "n": 11})
    assert verify(store, public_key_pem=public_key_pem(key)).ok


# --- bad checkpoints --------------------------------------------------------------------


def test_a_checkpoint_with_a_bad_signature_is_a_problem(store, key):
    cp = checkpoint(store, key, CP_AT)
    forged = dict(cp, heads={**cp["heads"], "INC-1": {"seq": 10, "hash": "00" * 32}})
    assert verify(store, checkpoint=forged).problems == [f"checkpoint signature invalid (checkpoint of {CP_AT})"]


def test_a_stored_checkpoint_with_a_bad_signature_is_a_problem(store, db, key):
    cp = checkpoint(store, key, CP_AT)
    forged = dict(cp, heads={"INC-1": {"seq": 12, "hash": "00" * 32}})
    with attacker(db) as raw:
        raw.execute("UPDATE checkpoints SET body = ?", (json.dumps(forged),))
    assert verify(store, public_key_pem=public_key_pem(key)).problems == [f"checkpoint signature invalid (checkpoint of {CP_AT} (stored #1))"]


def test_a_checkpoint_signed_by_another_key_fails_against_the_auditors_key(store, tmp_path, key):
    other = load_or_create_key(tmp_path / "other.key")
    cp = checkpoint(store, other, CP_AT)
    text = problems_of(verify(store, checkpoint=cp, public_key_pem=public_key_pem(key)))
    assert text == f"checkpoint signature invalid (checkpoint of {CP_AT}): signed by a different key than the configured or given one (forged?)"


def test_a_checkpoint_from_another_database_is_a_problem(store, tmp_path, key):
    elsewhere = open_store(tmp_path / "elsewhere.db")
    with elsewhere.transaction("INC-1") as tx:
        tx.append([NewEvent("NoteAdded", AT.format(1), "alice", {})], {})
    cp = checkpoint(elsewhere, key, CP_AT)
    elsewhere.close()
    assert verify(store, checkpoint=cp).problems == [
        f"checkpoint of {CP_AT} is from a different database ({cp['database']}), not this one ({store.database_id})"
    ]


@pytest.mark.parametrize("cp", [{}, {"version": 2}, [], {"version": 1, "heads": {"INC-1": 3}}])
def test_a_malformed_checkpoint_is_a_problem(store, cp):
    assert not verify(store, checkpoint=cp).ok


def test_checkpoint_refuses_to_sign_a_projection_that_disagrees_with_its_log(store, db, key):
    with attacker(db) as raw:
        raw.execute("DELETE FROM events WHERE incident = 'INC-1' AND seq = 10")
    with pytest.raises(IntegrityError, match="INC-1"):
        checkpoint(store, key, CP_AT)


def test_checkpoint_contents(store, key):
    cp = checkpoint(store, key, CP_AT)
    assert set(cp) == {"version", "database", "at", "counter", "previous", "heads", "public_key", "refold", "signature"}
    assert (cp["version"], cp["counter"], cp["previous"]) == (2, 1, None)
    last = list(store.events("INC-1"))[-1]
    assert cp["heads"]["INC-1"] == {"seq": 10, "hash": last.hash}
    assert cp["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert store.checkpoints() == [cp]


def test_problems_are_capped(store, db, monkeypatch):
    monkeypatch.setattr(integrity, "MAX_PROBLEMS", 3)
    with attacker(db) as raw:
        raw.execute("UPDATE events SET actor = 'mallory'")
    report = verify(store)
    assert len(report.problems) == 4 and report.problems[-1] == "... and 10 more problems"


# --- the signing key ------------------------------------------------------------------


def test_the_key_is_created_once_with_owner_only_permissions(tmp_path):
    path = tmp_path / "k" / "signing.key"
    first = load_or_create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert public_key_pem(load_or_create_key(path)) == public_key_pem(first)
    assert sorted(p.name for p in path.parent.iterdir()) == ["signing.key", "signing.key.pub"]  # no temporary
    assert (path.parent / "signing.key.pub").read_text() == public_key_pem(first)


def test_the_default_key_sits_beside_the_database_unless_playbook_key(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYBOOK_DB", str(tmp_path / "data" / "incidents.db"))
    monkeypatch.delenv("PLAYBOOK_KEY", raising=False)
    from engine.app.config import Config

    assert Config.resolve().key == tmp_path / "data" / "signing.key"
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "vault" / "audit.key"))
    load_or_create_key(Config.resolve().key)
    assert (tmp_path / "vault" / "audit.key").is_file()


def test_a_damaged_key_file_is_a_store_error(tmp_path):
    path = tmp_path / "signing.key"
    path.write_text("not a key")
    with pytest.raises(StoreError, match="signing key"):
        load_or_create_key(path)
