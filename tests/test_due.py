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
    assert {"clock": "target:first_public_post", "move_to": None,
            "notify": {"incident_lead": ["alice"], "spokesperson": ["bob"]}} in escalations
    log = cli("log", INCIDENT).stdout
    assert "MISSED first public post" in log
    assert "escalated: notify incident_lead (alice), spokesperson (bob)" in log


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
