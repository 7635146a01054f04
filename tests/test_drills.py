"""Drills: a simulated clock, scripted injects, and what would have been overdue."""

from __future__ import annotations

import json

import pytest

from conftest import VIRAL_START

DRILL = "DRILL-20260314-001"
DRILL_START = ["drill", *VIRAL_START[1:]]  # same arguments as a real start

SCENARIO = """\
injects:
  - at: +10m
    message: A second patient replies with a photo of the waiting room
  - at: +25m
    message: A local journalist asks for comment
"""


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def _types(store, incident=DRILL):
    return [e.type for e in store.events(incident)]


def test_a_drill_is_marked_everywhere(cli, store, tmp_path):
    result = cli(*DRILL_START)
    assert result.exit_code == 0, result.output
    assert f"Started drill {DRILL}" in result.stdout
    assert "THIS IS A DRILL" in cli("status", DRILL).stdout
    assert "DRILL" in cli("list").stdout
    assert "DRILL: an exercise, not a real incident" in cli("log", DRILL).stdout
    assert json.loads(cli("status", DRILL, "--json").stdout)["drill"] is True
    first = json.loads(cli("export", DRILL).stdout.splitlines()[0])
    assert first["incident"] == DRILL and first["data"]["drill"] is True
    report = tmp_path / "r.html"
    assert cli("report", DRILL, "--format", "html", "-o", str(report)).exit_code == 0
    assert "DRILL" in report.read_text(encoding="utf-8")


def test_advancing_the_clock_shows_the_deadline_ticking_and_records_the_breach(cli, store):
    cli(*DRILL_START)
    early = cli("advance-clock", DRILL, "10m")
    assert early.exit_code == 0
    assert "leave stage triage" in early.stdout and "5m left" in early.stdout
    late = cli("advance-clock", DRILL, "10m")
    assert "!! missed: leave stage triage" in late.stdout
    assert "OVERDUE by 5m" in late.stdout
    assert _types(store).count("DeadlineBreached") == 1
    assert "EscalationApplied" in _types(store)
    due = cli("due")
    assert due.exit_code == 0, "an overdue drill must not page anyone"
    assert "DRILL leave stage triage" in due.stdout and "OVERDUE" in due.stdout


def test_the_acknowledgement_deadline_escalates_in_a_drill(cli, store):
    cli(*DRILL_START)
    cli("advance-clock", DRILL, "61m")
    escalations = [e.data["notify"] for e in store.events(DRILL) if e.type == "EscalationApplied"]
    assert {"incident_lead": ["alice"], "spokesperson": ["bob"]} in escalations


def test_events_after_a_clock_move_carry_the_simulated_time(cli, store):
    cli(*DRILL_START)
    cli("advance-clock", DRILL, "45m")
    cli("task", DRILL, "confirm_post")
    task = [e for e in store.events(DRILL) if e.type == "TaskCompleted"][0]
    assert task.at == "2026-03-14T09:45:00.000Z"


def test_scripted_injects_fall_due_as_the_clock_passes_them(cli, store, scenario):
    result = cli(*DRILL_START, "--scenario", str(scenario))
    assert "with 2 scripted inject(s)" in result.stdout
    first = cli("advance-clock", DRILL, "15m")
    assert ">> INJECT (scheduled 10m after start): A second patient replies" in first.stdout
    assert "journalist" not in first.stdout
    second = cli("advance-clock", DRILL, "15m")
    assert "A local journalist asks for comment" in second.stdout
    assert _types(store).count("InjectDelivered") == 2


def test_the_summary_says_what_was_on_time_late_missed_or_still_open(cli, clock):
    """Overdue-but-open clocks are still open (not 'never'), each with its due time and how late."""
    cli(*DRILL_START)
    cli("task", DRILL, "confirm_post")
    cli("advance", DRILL, "acknowledge")  # triage left at +0m: on time
    cli("advance-clock", DRILL, "2h")     # nobody published: the acknowledgement is overdue
    result = cli("drill-summary", DRILL)
    assert result.exit_code == 0
    text = result.stdout
    on_time = text.split("Met on time (1):")[1].split("Met late (0):")[0]
    still_open = text.split("Still open (2):")[1]
    assert "leave stage triage [triage visit 1]: due 2026-03-14T09:15:00.000Z" in on_time
    assert ("first public post: due 2026-03-14T10:00:00.000Z (from the incident's start; complaint_posted_at not set), "
            "not met yet: OVERDUE by 1h") in still_open
    assert "First public post: never; target 1h: still open, 1h late" in text
    assert "Missed (0):" in text
    data = json.loads(cli("drill-summary", DRILL, "--json").stdout)
    assert data["breaches"] >= 1
    assert [d["late_seconds"] for d in data["outcome"]["open"]] == [3600, 4500]


def test_a_real_incidents_clock_cannot_be_advanced(cli, store):
    cli(*VIRAL_START)
    before = _types(store, "INC-20260314-001")
    result = cli("advance-clock", "INC-20260314-001", "45m")
    assert result.exit_code == 5
    assert "real incident: its clock cannot be advanced" in result.stderr
    assert _types(store, "INC-20260314-001") == before
    assert cli("drill-summary", "INC-20260314-001").exit_code == 5


@pytest.mark.parametrize("duration", ["45x", "0m", "-5m", "soon"])
def test_a_bad_clock_move_is_a_usage_error(cli, duration):
    cli(*DRILL_START)
    assert cli("advance-clock", DRILL, duration).exit_code == 2


def test_drills_are_never_delivered(cli, store, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(tmp_path / "outbox"))
    cli(*DRILL_START, "--assign", "social_media=carol")
    cli("task", DRILL, "confirm_post")
    cli("advance", DRILL, "acknowledge")
    cli("render", DRILL, "public_ack", "--channel", "x", "--lang", "en", "--as", "carol")
    cli("approve", DRILL, "public_ack/x/en", "--version", "1", "--as", "bob")
    path = tmp_path / "destinations.yaml"
    path.write_text("x: ['json://127.0.0.1:9/never']\n", encoding="utf-8")
    monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(path))
    assert cli("publish", DRILL, "public_ack/x/en", "--as", "carol").exit_code == 0
    refused = cli("deliver", DRILL, "public_ack/x/en", "--as", "carol")
    assert refused.exit_code == 5
    assert "drill" in refused.stderr
    assert "DeliveryFailed" not in _types(store) and "PostDelivered" not in _types(store)


BROKEN = {
    "not-relative": ("injects:\n  - at: '10:00'\n    message: x\n", "2:9", "at: must be a time after the start"),
    "bad-duration": ("injects:\n  - at: +10x\n    message: x\n", "2:9", "not a duration"),
    "out-of-order": ("injects:\n  - at: +20m\n    message: a\n  - at: +10m\n    message: b\n",
                     "4:9", "comes before the previous inject"),
    "no-message": ("injects:\n  - at: +10m\n", "2:5", "message: must be non-empty text"),
    "too-late": ("injects:\n  - at: +40d\n    message: x\n", "2:9", "more than 30 days"),
    "wrong-shape": ("- at: +10m\n", "1:1", "a scenario is a mapping with one key"),
    "yaml-syntax": ("injects: [\n", "", "YAML syntax"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_scenario_names_file_line_and_changes_nothing(cli, store, tmp_path, name):
    text, where, message = BROKEN[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    result = cli(*DRILL_START, "--scenario", str(path))
    assert result.exit_code == 3
    assert f"{path}:{where}" in result.stderr
    assert message in result.stderr
    assert store.incidents() == []


def test_times_can_be_shown_in_a_local_zone(cli):
    cli(*VIRAL_START)
    local = cli("--tz", "Europe/Madrid", "log", "INC-20260314-001").stdout
    assert "2026-03-14T10:00:00.000+01:00" in local
    assert "2026-03-14T09:00:00.000Z" in cli("log", "INC-20260314-001").stdout
    bad = cli("--tz", "Mars/Olympus", "status")
    assert bad.exit_code == 2
    assert "unknown time zone" in bad.stderr
