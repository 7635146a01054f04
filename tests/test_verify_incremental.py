"""Plain `verify` refolds (and replays through the rules) only the incidents whose head or
stored projection changed since a checkpoint signed here vouched for them; every event's
hash and link is still checked, so tampering anywhere is still found."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from conftest import VIRAL_START

ONE, TWO = "INC-20260314-001", "INC-20260314-002"


@pytest.fixture
def two(cli, clock, tmp_path, monkeypatch):
    """Two incidents, with the signing key kept away from the database."""
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "vault" / "signing.key"))
    assert cli(*VIRAL_START).exit_code == 0
    clock.advance(timedelta(minutes=1))
    assert cli(*VIRAL_START).exit_code == 0
    return cli


def _verify(cli, *args: str) -> dict:
    result = cli("verify", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _raw(db) -> sqlite3.Connection:
    con = sqlite3.connect(db, isolation_level=None)
    for name in ("events_no_update", "events_no_delete"):
        con.execute(f"DROP TRIGGER IF EXISTS {name}")
    return con


def test_the_first_verify_refolds_every_incident_and_the_next_only_what_changed(two):
    first = _verify(two)
    assert (first["refolded"], first["unchanged"]) == (2, 0)
    assert all("projection" in h for h in first["checkpoint"]["heads"].values())

    again = _verify(two)
    assert (again["refolded"], again["unchanged"]) == (0, 2)

    assert two("note", ONE, "Called the patient back").exit_code == 0
    after = _verify(two)
    assert (after["refolded"], after["unchanged"]) == (1, 1)
    text = two("verify")
    assert text.exit_code == 0
    assert "(2 unchanged since a checkpoint vouched for them, not refolded; 0 refolded)" in text.stdout


def test_full_refolds_every_incident_even_when_a_checkpoint_vouches_for_them(two):
    _verify(two)
    full = _verify(two, "--full")
    assert (full["refolded"], full["unchanged"]) == (2, 0)


def test_fast_and_full_together_are_refused_and_sign_nothing(two, db):
    result = two("verify", "--fast", "--full")
    assert result.exit_code == 2
    assert "--fast skips the refold that --full asks for" in result.output
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 0


def test_a_projection_edited_after_the_checkpoint_is_refolded_and_reported(two, db):
    _verify(two)
    con = _raw(db)
    con.execute("UPDATE snapshots SET state = replace(state, 'ER wait time complaint', 'Nothing happened') "
                "WHERE incident = ?", (TWO,))
    con.close()
    result = two("verify")
    assert result.exit_code == 7
    assert f"incident {TWO}: snapshot state differs from the state folded from its events" in result.output
    assert ONE not in result.output


def test_a_part_of_a_projection_kept_apart_edited_after_the_checkpoint_is_reported(two, db):
    """The plan is stored in a row of its own, beside the snapshot's: the checkpoint's digest
    covers that row too, so an edit to it alone is refolded and reported."""
    _verify(two)
    con = _raw(db)
    (plan,) = con.execute("SELECT body FROM projection_parts WHERE incident = ? AND part = 'plan'", (TWO,)).fetchone()
    assert "triage" in plan
    con.execute("UPDATE projection_parts SET body = replace(body, 'triage', 'triaje') WHERE incident = ? "
                "AND part = 'plan'", (TWO,))
    con.close()
    result = two("verify")
    assert result.exit_code == 7
    assert f"incident {TWO}: snapshot state differs from the state folded from its events" in result.output
    assert ONE not in result.output

def test_an_index_row_edited_after_the_checkpoint_is_reported(two, db):
    _verify(two)
    con = _raw(db)
    con.execute("UPDATE incident_index SET summary = replace(summary, '\"open\"', '\"closed\"') WHERE incident = ?",
                (ONE,))
    con.close()
    result = two("verify")
    assert result.exit_code == 7
    assert f"incident {ONE}: its index row (what due, watch and list read) differs" in result.output


def test_a_history_rewritten_with_every_hash_recomputed_after_the_checkpoint_is_reported(two, db):
    """The projection is rewritten to match, so only the chain against the signed head
    can tell; that check never depends on the checkpoint's claims."""
    from engine.incidents.events import event_hash

    _verify(two)
    con = _raw(db)
    (database_id,) = con.execute("SELECT database_id FROM meta").fetchone()
    rows = con.execute("SELECT seq, type, at, actor, data, prev FROM events WHERE incident = ? ORDER BY seq",
                       (ONE,)).fetchall()
    prev = None
    for seq, type_, at, actor, data, old_prev in rows:
        data = data.replace("ER wait time complaint", "Nothing happened")
        prev = old_prev if prev is None else prev
        h = event_hash(database_id, ONE, seq, type_, at, actor, json.loads(data), prev)
        con.execute("UPDATE events SET data = ?, prev = ?, hash = ? WHERE incident = ? AND seq = ?",
                    (data, prev, h, ONE, seq))
        prev = h
    con.execute("UPDATE snapshots SET head = ?, state = replace(state, 'ER wait time complaint', "
                "'Nothing happened') WHERE incident = ?", (prev, ONE))
    con.execute("UPDATE incident_index SET summary = replace(summary, 'ER wait time complaint', "
                "'Nothing happened') WHERE incident = ?", (ONE,))
    con.close()
    result = two("verify")
    assert result.exit_code == 7
    assert f"incident {ONE} event {len(rows)}: hash differs from the checkpoint" in result.output


def test_a_fast_verify_keeps_what_the_checkpoint_before_it_vouched_for(two):
    _verify(two)
    fast = _verify(two, "--fast")
    assert (fast["refolded"], fast["unchanged"]) == (0, 2)
    assert two("note", TWO, "Not refolded by --fast").exit_code == 0
    fast = _verify(two, "--fast")
    assert "projection" not in fast["checkpoint"]["heads"][TWO]  # changed, and nothing refolded it
    assert "projection" in fast["checkpoint"]["heads"][ONE]
    plain = _verify(two)
    assert (plain["refolded"], plain["unchanged"]) == (1, 1)


def test_a_bundle_keeps_what_the_checkpoint_before_it_vouched_for(two, tmp_path):
    _verify(two)
    assert two("bundle", ONE, "-o", str(tmp_path / "bundle.zip")).exit_code == 0
    after = _verify(two)
    assert (after["refolded"], after["unchanged"]) == (0, 2)


def test_a_checkpoint_made_with_other_rules_vouches_for_nothing(two, monkeypatch):
    """After an upgrade of the tool (its source is another) the rules may have changed:
    everything is refolded."""
    from engine.audit import checkpoints

    _verify(two)
    monkeypatch.setattr(checkpoints, "refold", lambda: "0" * 64)
    again = _verify(two)
    assert (again["refolded"], again["unchanged"]) == (2, 0)


def test_the_checkpoint_printed_and_written_is_one_json_object_per_line_of_heads(two, tmp_path):
    from engine.audit.checkpoints import checkpoint_text

    printed = two("verify").stdout
    cp = json.loads(printed[printed.index("{"):])
    assert set(cp["heads"]) == {ONE, TWO} and cp["signature"]
    assert printed.endswith(checkpoint_text(cp))
    assert f'    "{ONE}": {{"seq": ' in printed
    assert two("verify", "-o", str(tmp_path / "cp.json")).exit_code == 0
    written = (tmp_path / "cp.json").read_text(encoding="utf-8")
    assert json.loads(written)["counter"] == cp["counter"] + 1 and written == checkpoint_text(json.loads(written))


def test_one_incident_is_always_refolded(two):
    _verify(two)
    result = two("verify", ONE, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["refolded"] == 1


def test_a_checkpoint_vouches_only_for_what_a_verify_refolded(store, viral, clock, tmp_path):
    from engine.audit.integrity import checkpoint, load_or_create_key, public_key_pem, verify
    from engine.audit.rules import audit
    from engine.incidents import service

    key = load_or_create_key(tmp_path / "signing.key")
    service.start(store, clock, "alice", viral, title="ER wait time complaint",
                  inputs={"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"},
                  assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora",
                          "patient_relations": "petra"})
    unverified = checkpoint(store, key, "2026-03-14T09:00:00.000Z")
    assert all("projection" not in h for h in unverified["heads"].values())

    report = verify(store, public_key_pem=public_key_pem(key), audit=audit)
    assert report.ok and report.refolded == 1 and report.unchanged == 0
    cp = checkpoint(store, key, "2026-03-14T09:01:00.000Z", verified=report.verified)
    digests = store.projection_digests()
    assert {i: h["projection"] for i, h in cp["heads"].items()} == digests
    assert "verified" not in report.to_json()

    # a claim about another head is not signed; the one before is carried while the head stays
    other = {i: (seq - 1, "f" * 64, "0" * 64) for i, (seq, head, _) in report.verified.items()}
    cp = checkpoint(store, key, "2026-03-14T09:02:00.000Z", verified=other)
    assert {i: h["projection"] for i, h in cp["heads"].items()} == digests
    report = verify(store, public_key_pem=public_key_pem(key), audit=audit)
    assert report.ok and (report.refolded, report.unchanged) == (0, 1)


def test_a_malformed_projection_claim_makes_the_checkpoint_malformed(store, tmp_path):
    from engine.audit.checkpoints import check_checkpoint
    from engine.audit.integrity import checkpoint, load_or_create_key, public_key_pem
    from engine.incidents.events import NewEvent

    key = load_or_create_key(tmp_path / "signing.key")
    with store.transaction("INC-1") as tx:
        tx.append([NewEvent("NoteAdded", "2026-03-14T09:00:00.000Z", "alice", {"text": "x"})], {"n": 1})
    cp = checkpoint(store, key, "2026-03-14T09:00:00.000Z")
    cp["heads"]["INC-1"]["projection"] = 42
    problems, heads = check_checkpoint(cp, store.database_id, public_key_pem(key), "it")
    assert heads is None and problems == ["it: not a version 2 checkpoint (malformed)"]
