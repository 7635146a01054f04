"""Nothing unapproved is published, provably from the log alone.

Someone who can write the database file can edit the projection (the `snapshots`
table has no trigger) or append events the commands would refuse. The commands
that release text check the log, not the projection, and `verify` replays every
event through the same rules.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import VIRAL_START

INC = "INC-20260314-001"
POST = "public_ack/x/en"


@pytest.fixture(autouse=True)
def outbox(tmp_path, monkeypatch):
    folder = tmp_path / "outbox"
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(folder))
    return folder


def _ok(cli, *args):
    result = cli(*args)
    assert result.exit_code == 0, (args, result.output)
    return result


def _drafted(cli):
    """viral-complaint in stage acknowledge; carol (social_media) has drafted public_ack/x/en v1."""
    for args in (VIRAL_START, ("assign", INC, "social_media", "carol", "--as", "alice"),
                 ("task", INC, "confirm_post", "--as", "alice"), ("advance", INC, "acknowledge", "--as", "alice"),
                 ("render", INC, "public_ack", "--channel", "x", "--lang", "en", "--as", "carol")):
        _ok(cli, *args)


def _types(db) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT type FROM events WHERE incident = ? ORDER BY seq", (INC,))]
    finally:
        conn.close()


def _stored_state(conn) -> dict:
    """The stored state put together as the store does: its row, with each part kept apart
    (the plan, each post and message in its own row) back in its place."""
    (text,) = conn.execute("SELECT state FROM snapshots WHERE incident = ?", (INC,)).fetchone()
    state = json.loads(text)
    rows = {(p, k): json.loads(b) for p, k, b in
            conn.execute("SELECT part, key, body FROM projection_parts WHERE incident = ?", (INC,))}
    for name, value in state.items():
        if isinstance(value, dict) and "$part" in value:
            state[name] = rows[(name, "")] if name == "plan" else {k: rows[(name, k)] for k in value["keys"]}
    return state


def _edit_projection(db, change) -> None:
    """What anyone with write access to the file can do: rewrite the stored state."""
    conn = sqlite3.connect(db)
    try:
        state = _stored_state(conn)
        change(state)
        conn.execute("DELETE FROM projection_parts WHERE incident = ?", (INC,))
        for name in ("plan", "posts", "inbound", "inbound_keys"):
            if name not in state:
                continue
            entries = {"": state[name]} if name == "plan" else state[name]
            for key, value in entries.items():
                conn.execute("INSERT INTO projection_parts (incident, part, key, body) VALUES (?, ?, ?, ?)",
                             (INC, name, key, json.dumps(value)))
            state[name] = {"$part": name} if name == "plan" else {"$part": name, "keys": sorted(entries)}
        conn.execute("UPDATE snapshots SET state = ? WHERE incident = ?", (json.dumps(state), INC))
        conn.commit()
    finally:
        conn.close()


def _append_unchecked(db, clock, actor: str, type_: str, data: dict) -> None:
    """Append an event the way the store lets any writer, without the commands' rules
    (as a command that trusted an edited projection did), projection kept in step."""
    from engine.incidents import state as inc
    from engine.incidents.events import NewEvent, utc_now_iso
    from engine.store import open_store

    store = open_store(db)
    try:
        with store.transaction(INC) as tx:
            at = utc_now_iso(clock.now())
            tx.append([NewEvent(type_, at, actor, data)], inc.apply(tx.snapshot.state, type_, at, actor, data))
    finally:
        store.close()


def _post(db) -> dict:
    conn = sqlite3.connect(db)
    try:
        return _stored_state(conn)["posts"][POST]
    finally:
        conn.close()


def test_a_post_marked_approved_in_the_projection_is_not_published(cli, db, outbox):
    _drafted(cli)
    _edit_projection(db, lambda s: s["posts"][POST].update(status="approved"))
    refused = cli("publish", INC, POST, "--as", "carol")
    assert refused.exit_code == 7, refused.output
    assert "stored state differs from the state folded from its log" in refused.output
    assert "nothing is released" in refused.output
    assert "PostPublished" not in _types(db)
    assert not outbox.exists() or not list(outbox.rglob("*.json"))
    failed = cli("verify")
    assert failed.exit_code == 7
    assert f"incident {INC}: snapshot state differs from the state folded from its events" in failed.output


def test_a_role_granted_in_the_projection_does_not_let_its_holder_approve(cli, db):
    _drafted(cli)
    _edit_projection(db, lambda s: s["roles"]["spokesperson"].append("dave"))
    refused = cli("approve", INC, POST, "--version", "1", "--as", "dave")
    assert refused.exit_code == 7, refused.output
    assert "PostApproved" not in _types(db)


def test_verify_reports_an_approval_by_someone_who_did_not_hold_the_role_then(cli, db, clock):
    """Grant in the projection, approve, unassign: the final state matches the log
    again, but the approval was refused by the rules at the moment it was made."""
    _drafted(cli)
    _edit_projection(db, lambda s: s["roles"]["spokesperson"].append("dave"))
    sha, seq = _post(db)["sha256"], len(_types(db)) + 1
    _append_unchecked(db, clock, "dave", "PostApproved", {"post": POST, "version": 1, "sha256": sha,
                                                          "role": "spokesperson"})
    _ok(cli, "unassign", INC, "spokesperson", "dave", "--as", "alice")
    failed = cli("verify")
    assert failed.exit_code == 7, failed.output
    assert (f"incident {INC} event {seq} (PostApproved by dave): refused by the rules: "
            "cannot approve public_ack/x/en v1; dave does not hold spokesperson in this incident") in failed.output
    assert f"incident {INC} event {seq + 1} (RoleUnassigned by alice): refused by the rules: dave does not hold" \
        in failed.output
    refused = cli("publish", INC, POST, "--as", "carol")
    assert refused.exit_code == 7 and "its log records actions the rules refuse" in refused.output
    assert "PostPublished" not in _types(db)


def test_verify_reports_a_publication_without_the_approvals_its_version_needed(cli, db, clock):
    _drafted(cli)
    sha, seq = _post(db)["sha256"], len(_types(db)) + 1
    _append_unchecked(db, clock, "carol", "PostPublished", {"post": POST, "version": 1, "sha256": sha,
                                                            "outbox": "nowhere"})
    failed = cli("verify")
    assert failed.exit_code == 7, failed.output
    assert f"event {seq} (PostPublished by carol): refused by the rules" in failed.output
    assert "is draft, not approved" in failed.output


def test_verify_reports_an_approval_by_the_author_and_one_of_another_text(cli, db, clock):
    _drafted(cli)
    _ok(cli, "assign", INC, "spokesperson", "carol", "--as", "alice")
    sha, seq = _post(db)["sha256"], len(_types(db)) + 1
    _append_unchecked(db, clock, "carol", "PostApproved", {"post": POST, "version": 1, "sha256": sha,
                                                           "role": "spokesperson"})
    failed = cli("verify")
    assert f"event {seq} (PostApproved by carol)" in failed.output
    assert "carol rendered this version and cannot approve their own post" in failed.output

    _ok(cli, "render", INC, "public_ack", "--channel", "x", "--lang", "en", "--as", "alice")
    seq = len(_types(db)) + 1
    _append_unchecked(db, clock, "bob", "PostApproved", {"post": POST, "version": 2, "sha256": "0" * 64,
                                                         "role": "spokesperson"})
    failed = cli("verify")
    assert failed.exit_code == 7
    assert f"event {seq} (PostApproved by bob): refused by the rules: it covers another text" in failed.output


def test_verify_reports_a_role_given_by_someone_who_does_not_manage_the_incident(cli, db, clock):
    _drafted(cli)
    seq = len(_types(db)) + 1
    _append_unchecked(db, clock, "carol", "RoleAssigned", {"role": "spokesperson", "person": "carol"})
    failed = cli("verify")
    assert failed.exit_code == 7
    assert f"event {seq} (RoleAssigned by carol): refused by the rules: only holders of incident_lead may assign" \
        in failed.output
    refused = cli("approve", INC, POST, "--version", "1", "--as", "bob")
    assert refused.exit_code == 7 and "PostApproved" not in _types(db)


def test_a_lawful_history_passes_the_rules(cli, db, tmp_path, monkeypatch):
    """Approve with an identifier override, reject, edit, publish, deliver: nothing is reported."""
    from engine.audit.rules import audit
    from engine.store import open_store

    dest = tmp_path / "destinations.yaml"
    dest.write_text("x: ['json://localhost:1/never']\n", encoding="utf-8")
    monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(dest))
    _drafted(cli)
    _ok(cli, "reject", INC, POST, "--reason", "tone", "--as", "bob")
    _ok(cli, "edit", INC, POST, "--text", "Call us on 020 7946 0000 about your visit.", "--as", "carol")
    _ok(cli, "approve", INC, POST, "--version", "2", "--override-identifiers", "our switchboard", "--as", "bob")
    published = cli("publish", INC, POST, "--as", "carol")
    assert published.exit_code == 10, published.output  # nothing listens on port 1
    store = open_store(db)
    try:
        state, problems = audit(store.events(INC))
        assert problems == []
        assert state == store.snapshot(INC).state
    finally:
        store.close()
    assert _types(db)[-5:] == ["IdentifiersOverridden", "PostApproved", "PostPublished", "DeliveryAttempted",
                               "DeliveryFailed"]
    _ok(cli, "verify")


def _self_granted_approval(cli, db, clock, **extra):
    """alice, the lead, gives herself spokesperson and a PostApproved by her is logged."""
    _drafted(cli)
    _ok(cli, "assign", INC, "spokesperson", "alice", "--as", "alice")
    sha = _post(db)["sha256"]
    _append_unchecked(db, clock, "alice", "PostApproved",
                      {"post": POST, "version": 1, "sha256": sha, "role": "spokesperson", **extra})


def test_an_approval_logged_under_the_old_rules_is_judged_by_them(cli, db, clock):
    """Before rules 2, a self-granted role could approve: a log from then still verifies."""
    _self_granted_approval(cli, db, clock)
    result = cli("verify")
    assert result.exit_code == 0, result.output


def test_the_same_approval_under_the_current_rules_is_refused_by_verify(cli, db, clock):
    _self_granted_approval(cli, db, clock, rules=2)
    result = cli("verify")
    assert result.exit_code == 7
    assert "alice assigned themselves spokesperson" in result.output


def test_an_approval_cannot_claim_older_rules_after_newer_ones(cli, db, clock):
    _self_granted_approval(cli, db, clock, rules=2)
    sha = _post(db)["sha256"]
    _append_unchecked(db, clock, "alice", "PostApproved",
                      {"post": POST, "version": 1, "sha256": sha, "role": "spokesperson"})
    result = cli("verify")
    assert result.exit_code == 7
    assert "claims approval rules 1 after an approval recorded under rules 2" in result.output


def _published(cli, tmp_path, monkeypatch):
    dest = tmp_path / "destinations.yaml"
    dest.write_text("x: ['json://localhost:1/never']\n", encoding="utf-8")
    monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(dest))
    _drafted(cli)
    _ok(cli, "approve", INC, POST, "--version", "1", "--as", "bob")
    assert cli("publish", INC, POST, "--as", "carol").exit_code == 10  # nothing listens on port 1


def test_verify_reports_a_delivery_attempt_by_someone_with_no_role(cli, db, clock, tmp_path, monkeypatch):
    _published(cli, tmp_path, monkeypatch)
    sha = _post(db)["sha256"]
    seq = len(_types(db)) + 1
    _append_unchecked(db, clock, "mallory", "DeliveryAttempted",
                      {"post": POST, "version": 1, "sha256": sha, "target": "json://localhost:1/never", "rules": 2})
    failed = cli("verify")
    assert failed.exit_code == 7
    assert f"event {seq} (DeliveryAttempted by mallory): refused by the rules: incident {INC}" not in failed.output
    assert f"event {seq} (DeliveryAttempted by mallory): refused by the rules: mallory holds no role" in failed.output


def test_a_delivery_attempt_logged_before_delivery_rules_2_is_judged_by_the_old_rules(cli, db, clock, tmp_path,
                                                                                   monkeypatch):
    """Anyone could retry a delivery then: such a log still verifies."""
    _published(cli, tmp_path, monkeypatch)
    sha = _post(db)["sha256"]
    _append_unchecked(db, clock, "mallory", "DeliveryAttempted",
                      {"post": POST, "version": 1, "sha256": sha, "target": "json://localhost:1/never"})
    assert cli("verify").exit_code == 0
