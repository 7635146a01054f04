"""A database written by version 0.1 (the first landed release: the README walkthrough
and a drill, a signed checkpoint, an audit bundle) keeps working: it verifies, its
incidents read and act, and `db upgrade` rebuilds its projections from the log.

The files in tests/data/legacy-0.1 were written by that version and are never edited."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from conftest import ROOT, Cli
from engine.incidents.state import PROJECTION_VERSION

DATA = ROOT / "tests" / "data" / "legacy-0.1"


@pytest.fixture
def legacy(tmp_path, clock, monkeypatch):
    for name in ("incidents.db", "signing.key", "checkpoint.json", "audit-bundle.zip"):
        shutil.copy(DATA / name, tmp_path / name)
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "signing.key"))
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(tmp_path / "outbox"))
    return Cli(tmp_path / "incidents.db", clock)


def _stored_versions(db) -> dict:
    with sqlite3.connect(db) as raw:
        return {i: json.loads(s).get("v") for i, s in raw.execute("SELECT incident, state FROM snapshots")}


def test_an_old_database_verifies_against_its_key_its_checkpoint_and_its_bundle(legacy, tmp_path):
    assert legacy("verify").exit_code == 0, legacy("verify").output
    result = legacy("verify", "--checkpoint", str(tmp_path / "checkpoint.json"))
    assert result.exit_code == 0, result.output
    bundle = legacy("verify", "--bundle", str(tmp_path / "audit-bundle.zip"))
    assert bundle.exit_code == 0 and bundle.output.startswith("OK:")


def test_old_incidents_read_as_before(legacy):
    status = json.loads(legacy("status", "INC-20260314-001", "--json").output)
    assert status["stage"] == "private_outreach" and status["roles"]["social_media"] == ["carol"]
    assert "INC-20260314-001" in legacy("list").output
    report = json.loads(legacy("report", "INC-20260314-001", "--format", "json").output)
    assert report["integrity"]["ok"] is True
    assert legacy("drill-summary", "DRILL-20260314-001").exit_code == 0


def test_the_next_write_rebuilds_an_old_projection_and_approvals_still_work(legacy, tmp_path):
    db = tmp_path / "incidents.db"
    assert _stored_versions(db) == {"INC-20260314-001": None, "DRILL-20260314-001": None}
    assert legacy("note", "INC-20260314-001", "after the upgrade").exit_code == 0
    assert _stored_versions(db)["INC-20260314-001"] == PROJECTION_VERSION
    assert legacy("render", "INC-20260314-001", "private_reply", "--channel", "email", "--lang", "en",
                  "--set", "patient_name=Jane", "--as", "carol").exit_code == 0
    assert legacy("approve", "INC-20260314-001", "private_reply/email/en", "--version", "1",
                  "--as", "bob").exit_code == 0
    assert legacy("publish", "INC-20260314-001", "private_reply/email/en", "--as", "carol").exit_code == 0
    result = legacy("verify")
    assert result.exit_code == 0, result.output
    assert '"counter": 3' in result.output  # a chained checkpoint after the two old-format ones
    assert legacy("verify").exit_code == 0


def test_db_upgrade_rebuilds_every_old_projection_from_the_log(legacy, tmp_path):
    result = legacy("db", "upgrade", "--db", str(tmp_path / "incidents.db"))
    assert result.exit_code == 0, result.output
    assert "rebuilt 2 incident projection(s) from the log" in result.output
    assert set(_stored_versions(tmp_path / "incidents.db").values()) == {PROJECTION_VERSION}
    assert "every incident projection is current" in legacy("db", "upgrade", "--db", str(tmp_path / "incidents.db")).output
    assert legacy("verify").exit_code == 0


def test_a_projection_made_to_look_old_is_never_trusted(cli, db):
    """Marking an edited projection as from an older version does not launder it: every
    reader then refolds the log, so the edit changes nothing anyone sees or does."""
    from conftest import VIRAL_START

    assert cli(*VIRAL_START).exit_code == 0
    incident = "INC-20260314-001"
    assert cli("assign", incident, "social_media", "carol").exit_code == 0
    assert cli("task", incident, "confirm_post").exit_code == 0
    assert cli("advance", incident, "acknowledge").exit_code == 0
    assert cli("render", incident, "public_ack", "--channel", "x", "--lang", "en", "--as", "carol").exit_code == 0
    with sqlite3.connect(db) as raw:
        (text,) = raw.execute("SELECT state FROM snapshots WHERE incident = ?", (incident,)).fetchone()
        state = json.loads(text)
        state.pop("v")
        state["stage"] = "resolved"
        raw.execute("UPDATE snapshots SET state = ? WHERE incident = ?", (json.dumps(state), incident))
        posts = raw.execute("SELECT key, body FROM projection_parts WHERE incident = ? AND part = 'posts'",
                            (incident,)).fetchall()  # each post is kept in its own row
        assert posts
        for key, body in posts:
            raw.execute("UPDATE projection_parts SET body = ? WHERE incident = ? AND part = 'posts' AND key = ?",
                        (json.dumps(dict(json.loads(body), status="approved")), incident, key))
    assert json.loads(cli("status", incident, "--json").output)["stage"] == "acknowledge"
    result = cli("publish", incident, "public_ack/x/en", "--as", "carol")
    assert result.exit_code == 5
    assert "public_ack/x/en v1 is draft, not approved; nothing was published" in result.output
    assert cli("verify").exit_code == 0  # nothing was released, and the log is intact
