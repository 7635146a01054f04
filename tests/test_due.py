"""Clocks: `playbook due`, breaches recorded once, escalations applied and logged."""

from __future__ import annotations

import json
from datetime import timedelta

from conftest import VIRAL_START

INCIDENT = "INC-20260314-001"

ESCALATING = """\
id: escalating
name: Escalating
version: "1"
roles:
  lead: {title: Lead, required: true}
  director: {title: Director}
stages:
  respond:
    title: Respond
    deadline:
      within: 30m
      escalate: {notify: [lead, director], move_to: crisis}
  crisis:
    title: Crisis mode
  closed: {title: Closed, terminal: true}
transitions:
  escalate: {from: respond, to: crisis, roles: [director]}
  close: {from: [respond, crisis], to: closed, roles: [lead]}
"""


def _types(store, incident=INCIDENT):
    return [e.type for e in store.events(incident)]


def test_due_on_an_empty_store_says_so_and_exits_0(cli):
    result = cli("due")
    assert result.exit_code == 0
    assert "Nothing is due or overdue." in result.stdout


def test_due_lists_upcoming_clocks_most_urgent_first(cli):
    cli(*VIRAL_START)
    result = cli("due", "--within", "2h")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "leave stage triage" in lines[0] and "15m left" in lines[0]
    assert "first public post" in lines[1] and "1h left" in lines[1]


def test_an_overdue_deadline_exits_9_and_is_recorded_once(cli, clock, store):
    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=16))
    first = cli("due")
    assert first.exit_code == 9
    assert "OVERDUE by 1m" in first.stdout
    assert "recorded: INC-20260314-001 missed leave stage triage" in first.stdout
    assert "1 item(s) overdue" in first.stderr
    second = cli("due")
    assert second.exit_code == 9
    assert "recorded:" not in second.stdout
    assert _types(store).count("DeadlineBreached") == 1


def test_the_escalation_notifies_the_roles_and_names_their_holders(cli, clock, store):
    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=61))
    assert cli("due").exit_code == 9
    escalations = [e.data for e in store.events(INCIDENT) if e.type == "EscalationApplied"]
    assert {"clock": "target:first_public_post", "move_to": None, "label": "first public post",
            "key": "target:first_public_post@2026-03-14T10:00:00.000Z",
            "notify": {"incident_lead": ["alice"], "spokesperson": ["bob"]},
            # no destinations file: said loudly (tests/test_ladder.py has the delivered case)
            "undelivered": ["no destination for incident_lead", "no destination for spokesperson"]} in escalations
    log = cli("log", INCIDENT).stdout
    assert "MISSED first public post" in log
    assert ("escalation NOT DELIVERED: no destination for incident_lead; no destination for spokesperson "
            "(notify incident_lead (alice), spokesperson (bob))") in log


def test_an_escalation_moves_the_incident_through_the_playbooks_transition(cli, clock, store, tmp_path):
    path = tmp_path / "escalating.yaml"
    path.write_text(ESCALATING, encoding="utf-8")
    assert cli("start", str(path), "--title", "t", "--assign", "lead=alice").exit_code == 0
    clock.advance(timedelta(minutes=31))
    assert cli("due").exit_code == 9
    moved = [e for e in store.events(INCIDENT) if e.type == "StageChanged"]
    assert [(e.actor, e.data["trigger"], e.data["to"]) for e in moved] == [("system:clock", "escalate", "crisis")]
    assert store.snapshot(INCIDENT).state["stage"] == "crisis"
    assert cli("due").exit_code == 0  # the crisis stage has no deadline: nothing overdue now


def test_due_json_and_no_record(cli, clock, store):
    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=20))
    before = len(_types(store))
    result = cli("due", "--json", "--no-record")
    assert result.exit_code == 9
    data = json.loads(result.stdout)
    assert data["recorded"] == []
    assert data["items"][0]["overdue"] is True and data["items"][0]["incident"] == INCIDENT
    assert len(_types(store)) == before


def test_a_bad_duration_is_a_usage_error(cli):
    for bad in ("2x", "0m", "-5m"):
        result = cli("due", "--within", bad)
        assert result.exit_code == 2, bad
        assert "--within" in result.stderr


def test_closed_incidents_have_no_clocks(cli, clock):
    cli(*VIRAL_START)
    cli("task", INCIDENT, "confirm_post")
    cli("task", INCIDENT, "check_patient")
    assert cli("close", INCIDENT).exit_code == 0
    clock.advance(timedelta(hours=5))
    assert cli("due").exit_code == 0


def test_watch_checks_repeatedly_and_records_once(cli, clock, store):
    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=16))
    result = cli("watch", "--interval", "1s", "--count", "2")
    assert result.exit_code == 0
    assert result.stdout.count("-- check") == 2
    assert _types(store).count("DeadlineBreached") == 1


# -- escalation notices through the delivery path ---------------------------------------


def _notify_to(tmp_path, monkeypatch, **keys: str) -> None:
    path = tmp_path / "destinations.yaml"
    path.write_text("".join(f"{k.replace('__', '.')}: ['{u}']\n" for k, u in keys.items()), encoding="utf-8")
    monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(path))


def test_an_escalation_notice_is_sent_once_through_the_configured_destination(cli, clock, store, tmp_path, monkeypatch):
    from test_delivery import Hook

    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=16))
    with Hook() as hook:
        _notify_to(tmp_path, monkeypatch, escalation=hook.url)
        first = cli("due")
        second = cli("due")
    assert first.exit_code == second.exit_code == 9
    assert "notified: INC-20260314-001 leave stage triage -> json://127.0.0.1" in first.stdout
    assert "notified" not in second.stdout
    (notice,) = hook.received
    assert "[INC-20260314-001] MISSED: leave stage triage" in notice["message"]
    assert "incident_lead: alice" in notice["message"]
    assert _types(store).count("EscalationNotified") == 1


def test_a_failed_notice_is_logged_and_retried_at_the_next_check(cli, clock, store, tmp_path, monkeypatch):
    from test_delivery import Hook

    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=16))
    with Hook(status=500) as hook:
        _notify_to(tmp_path, monkeypatch, escalation=hook.url)
        failed = cli("due")
        assert "FAILED (retried next check)" in failed.stdout
        hook.status = 200
        retried = cli("due")
        assert "notified: INC-20260314-001 leave stage triage" in retried.stdout
        assert "notified" not in cli("due").stdout
    notices = [e.data["ok"] for e in store.events(INCIDENT) if e.type == "EscalationNotified"]
    assert notices == [False, True]
    assert "escalation notice to json://127.0.0.1" in cli("log", INCIDENT).stdout


def test_role_specific_destinations_get_only_their_roles_notices(cli, clock, tmp_path, monkeypatch):
    from test_delivery import Hook

    cli(*VIRAL_START)
    with Hook() as hook:
        _notify_to(tmp_path, monkeypatch, escalation__spokesperson=hook.url)
        clock.advance(timedelta(minutes=16))
        cli("due")  # triage deadline: notifies incident_lead only
        assert hook.received == []
        clock.advance(timedelta(minutes=45))
        cli("due")  # first public post: incident_lead and spokesperson
    assert len(hook.received) == 1
    assert "first public post" in hook.received[0]["message"]


def test_drills_never_send_escalation_notices(cli, clock, store, tmp_path, monkeypatch):
    from test_delivery import Hook

    cli("drill", *VIRAL_START[1:])
    with Hook() as hook:
        _notify_to(tmp_path, monkeypatch, escalation=hook.url)
        cli("advance-clock", "DRILL-20260314-001", "20m")
        assert cli("due").exit_code == 0
    assert hook.received == []
    assert "EscalationApplied" in _types(store, "DRILL-20260314-001")
    assert "EscalationNotified" not in _types(store, "DRILL-20260314-001")


def test_the_system_actor_cannot_be_impersonated(cli, store):
    cli(*VIRAL_START)
    result = cli("note", INCIDENT, "all fine", "--as", "system:clock")
    assert result.exit_code == 2
    assert "reserved for the engine" in result.stderr
    assert "NoteAdded" not in _types(store)


BY_SEVERITY = ESCALATING.replace(
    "      escalate: {notify: [lead, director], move_to: crisis}",
    "      escalate:\n"
    "        notify: [lead]\n"
    "        by_severity:\n"
    "          critical: {notify: [lead, director], move_to: crisis}")


def test_the_escalation_can_depend_on_the_incidents_severity(cli, clock, store, tmp_path):
    """A critical incident also notifies the director and moves to crisis mode; a high one
    notifies the lead only."""
    path = tmp_path / "by-severity.yaml"
    path.write_text(BY_SEVERITY, encoding="utf-8")
    for severity in ("high", "critical"):
        assert cli("start", str(path), "--title", severity, "--severity", severity,
                   "--assign", "lead=alice", "--assign", "director=dan").exit_code == 0
    clock.advance(timedelta(minutes=31))
    assert cli("due").exit_code == 9
    applied = {i: [e.data for e in store.events(i) if e.type == "EscalationApplied"]
               for i in ("INC-20260314-001", "INC-20260314-002")}
    assert applied["INC-20260314-001"][0]["notify"] == {"lead": ["alice"]}
    assert applied["INC-20260314-001"][0]["move_to"] is None
    assert applied["INC-20260314-002"][0]["notify"] == {"lead": ["alice"], "director": ["dan"]}
    assert store.snapshot("INC-20260314-002").state["stage"] == "crisis"
    assert store.snapshot("INC-20260314-001").state["stage"] == "respond"
    assert "if critical: notify lead, director, move to crisis" in cli("show", str(path)).output


def test_an_escalation_for_an_unknown_severity_is_located(cli, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BY_SEVERITY.replace("          critical:", "          urgent:"), encoding="utf-8")
    result = cli("validate", str(path))
    assert result.exit_code == 3
    assert f"{path}:15:11: stages.respond.deadline.escalate.by_severity.urgent: unknown severity 'urgent'" in result.output


# -- the cron path reads only what is due (engine.incidents.index) --------------------------------------


def _reads(monkeypatch):
    """The incidents whose stored state is parsed, and the write transactions opened,
    while the spy is in place."""
    import engine.store.base as store_base
    import engine.store.sqlite as sqlite_store

    seen = {"states": [], "writes": []}
    parse = store_base.snapshot_of
    spy = lambda r: seen["states"].append(r[0]) or parse(r)  # noqa: E731
    for module in (store_base, sqlite_store):  # every place a stored state is parsed
        monkeypatch.setattr(module, "snapshot_of", spy)
    transaction = sqlite_store.SqliteStore.transaction
    monkeypatch.setattr(sqlite_store.SqliteStore, "transaction",
                        lambda self, incident: seen["writes"].append(incident) or transaction(self, incident))
    return seen


def test_due_at_steady_state_reads_no_state_and_writes_nothing(cli, clock, monkeypatch):
    """The overdue incident's clocks come from its index row: no projection is parsed."""
    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=16))
    cli(*VIRAL_START), cli(*VIRAL_START)  # started now: their first clock is 15 minutes away
    first = cli("due")
    assert first.exit_code == 9 and "recorded: INC-20260314-001 missed leave stage triage" in first.stdout
    seen = _reads(monkeypatch)
    again = cli("due")
    assert again.exit_code == 9 and again.stdout == first.stdout.replace(
        "recorded: INC-20260314-001 missed leave stage triage\n"
        "!! not delivered: INC-20260314-001 leave stage triage: no destination for incident_lead\n", "")
    assert seen == {"states": [], "writes": []}


def test_due_within_a_window_reads_the_incidents_due_in_it(cli, clock, monkeypatch):
    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=30))
    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=10))  # 001's first public post is due in 20 minutes, 002's triage in 5
    seen = _reads(monkeypatch)
    result = cli("due", "--within", "10m", "--no-record")
    assert result.exit_code == 9  # 001 left triage late: overdue
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["INC-20260314-001", "INC-20260314-002"]
    assert "5m left" in result.stdout.splitlines()[1]
    assert "INC-20260314-002" not in cli("due", "--within", "1m", "--no-record").stdout
    assert seen["states"] == []  # both from their index rows


def test_list_reads_only_the_summaries(cli, clock, monkeypatch):
    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=16))
    cli(*VIRAL_START)
    seen = _reads(monkeypatch)
    lines = cli("list").stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["INC-20260314-001", "INC-20260314-002"]
    assert lines[0].endswith("ER wait time complaint  1 overdue")
    assert lines[1].endswith("ER wait time complaint")
    assert cli("status").stdout.splitlines() == lines
    assert seen["states"] == []


def test_a_drill_is_found_by_its_simulated_clock(cli, clock, store):
    cli("drill", *VIRAL_START[1:])
    cli("advance-clock", "DRILL-20260314-001", "10m")  # triage's 15 minutes end 5 real minutes from now
    assert "Nothing is due" in cli("due").stdout
    clock.advance(timedelta(minutes=6))
    result = cli("due")
    assert result.exit_code == 0  # a drill never pages anyone
    assert "DRILL leave stage triage" in result.stdout and "OVERDUE by 1m" in result.stdout
    assert "recorded: DRILL-20260314-001 missed leave stage triage" in result.stdout
    assert _types(store, "DRILL-20260314-001").count("DeadlineBreached") == 1


def test_verify_reports_an_index_row_edited_to_hide_an_overdue_incident(cli, clock, db):
    import sqlite3

    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=16))
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE incident_index SET next_due_at = '2099-01-01T00:00:00.000Z', "
                    "summary = replace(summary, '2026-03-14T09:15:00.000Z', '2099-01-01T00:00:00.000Z')")
    assert "Nothing is due" in cli("due", "--no-record").stdout  # cron trusts the index...
    result = cli("verify")  # ...and verify says it cannot be trusted
    assert result.exit_code != 0
    assert "incident INC-20260314-001: its index row (what due, watch and list read) differs" in result.output


def test_a_blocked_escalation_logs_its_reasons_without_any_interface_wording(cli, clock, store, tmp_path):
    """The log keeps facts (an input has no value), not what to type at one interface."""
    path = tmp_path / "escalating.yaml"
    path.write_text(ESCALATING.replace(
        "  escalate: {from: respond, to: crisis, roles: [director]}",
        "  escalate: {from: respond, to: crisis, roles: [director], requires: {inputs: [statement_url]}}").replace(
        "roles:\n", "inputs:\n  statement_url: {type: url}\nroles:\n", 1), encoding="utf-8")
    assert cli("start", str(path), "--title", "T", "--assign", "lead=alice", "--as", "alice").exit_code == 0
    clock.advance(timedelta(minutes=31))
    assert cli("due").exit_code == 9
    blocked = [e for e in store.events(INCIDENT) if e.type == "EscalationBlocked"]
    assert [e.data["reasons"] for e in blocked] == [["input statement_url has no value"]]
    assert "playbook set" in cli("advance", INCIDENT, "escalate", "--as", "alice").output  # the CLI still hints


def test_each_due_line_shows_its_own_time_and_date(cli, clock):
    """Durations and the due times' dates are worked out once per distinct value: lines
    that differ only there (across midnight, a minute apart) still show their own."""
    clock.advance(timedelta(hours=14, minutes=30))  # 23:30 UTC
    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=35))  # 00:05 the next day
    cli(*VIRAL_START)
    clock.advance(timedelta(minutes=5, seconds=30))
    result = cli("due", "--within", "2h", "--no-record")
    assert result.stdout.splitlines() == [
        "INC-20260314-001   leave stage triage                   OVERDUE by 25m30s (due 2026-03-14T23:45:00.000Z)",
        "INC-20260315-001   leave stage triage                   due 2026-03-15T00:20:00.000Z, 9m30s left",
        "INC-20260314-001   first public post                    due 2026-03-15T00:30:00.000Z, 19m30s left",
        "INC-20260315-001   first public post                    due 2026-03-15T01:05:00.000Z, 54m30s left",
    ]
