"""Clocks that run from when things happened, allowances that follow the severity, and start's one-run report."""

from __future__ import annotations

import json

import pytest

from conftest import PLAYBOOKS, VIRAL_START

INC = "INC-20260314-001"
BREACH = PLAYBOOKS / "privacy-breach.yaml"


def breach_start(discovered: str) -> list[str]:
    return ["start", str(BREACH), "--title", "PB",
            "--set", f"discovered_at={discovered}", "--set", "affected_count=120",
            "--set", "data_categories=names", "--set", "breach_cause=cyberattack",
            "--set", "helpline_phone=+44 20 7946 0001", "--set", "info_url=https://ex.org/b",
            "--assign", "incident_lead=lee", "--assign", "privacy_officer=pat",
            "--assign", "legal=law", "--assign", "spokesperson=sam", "--as", "lee"]


def test_the_regulators_72_hours_run_from_discovery_not_from_the_start(cli):
    """(7) A breach discovered 96 hours before the incident was opened is 24 hours overdue."""
    assert cli(*breach_start("2026-03-10T09:00:00Z")).exit_code == 0
    text = cli("status", INC, "--as", "lee").stdout
    assert ("regulator notified (GDPR Art. 33, 72 hours from discovery) OVERDUE by 1d "
            "(due 2026-03-13T09:00:00.000Z)") in text
    clocks = {c["key"]: c for c in json.loads(cli("status", INC, "--json").stdout)["clocks"]}
    patients = clocks["target:individuals_notified"]
    assert (patients["from"], patients["from_at"], patients["due_at"]) == (
        "discovered_at", "2026-03-10T09:00:00Z", "2026-05-09T09:00:00.000Z")
    due = cli("due")
    assert due.exit_code == 9 and "regulator notified" in due.stdout


def test_correcting_the_discovery_time_moves_the_clock(cli):
    assert cli(*breach_start("2026-03-14T08:00:00Z")).exit_code == 0
    assert cli("set", INC, "discovered_at=2026-03-13T08:00:00+01:00", "--as", "lee").exit_code == 0
    clocks = {c["key"]: c for c in json.loads(cli("status", INC, "--json").stdout)["clocks"]}
    assert clocks["target:regulator_notified"]["due_at"] == "2026-03-16T07:00:00.000Z"


def test_the_first_answer_clock_runs_from_when_the_complaint_was_posted(cli, clock):
    """(7) Ignored for 4 hours before anyone opened an incident: the report says so, not 'met in 1s'."""
    from test_figures import at, publish

    start = [*VIRAL_START, "--set", "complaint_posted_at=2026-03-14T05:00:00Z"]
    assert cli(*start).exit_code == 0
    assert "first public post                  OVERDUE by 3h (due 2026-03-14T06:00:00.000Z)" in cli(
        "status", INC).stdout
    cli("task", INC, "confirm_post")
    cli("advance", INC, "acknowledge")
    at(clock, 10 * 60)
    publish(cli, INC, "public_ack", "x/en")
    m = json.loads(cli("report", INC, "--format", "json").stdout)["metrics"]
    assert m["time_to_first_public_post_seconds"] == 600
    assert m["first_public_post"] == {
        "at": "2026-03-14T09:10:00.000Z", "from": "complaint_posted_at", "from_at": "2026-03-14T05:00:00Z",
        "seconds": 4 * 3600 + 600, "due_at": "2026-03-14T06:00:00.000Z", "target_seconds": 3600,
        "outcome": "met_late", "late_seconds": 3 * 3600 + 600}
    md = cli("report", INC).stdout
    assert ("| Time to first public post | 10m from the start; 4h10m from complaint_posted_at "
            "(2026-03-14T05:00:00Z) (target 1h: met late, 3h10m late) |") in md


def test_without_the_complaint_time_the_clock_runs_from_the_start_and_says_so(cli):
    assert cli(*VIRAL_START).exit_code == 0
    [target] = [c for c in json.loads(cli("status", INC, "--json").stdout)["clocks"]
                if c["key"] == "target:first_public_post"]
    assert (target["from"], target["due_at"]) == (
        "the incident's start; complaint_posted_at not set", "2026-03-14T10:00:00.000Z")


@pytest.mark.parametrize("value, message", [
    ("2026-03-14T12:00:00Z", "'2026-03-14T12:00:00Z' is in the future (now is 2026-03-14T09:00:00Z)"),
    ("2026-03-14T08:00", "has no time zone; add one, e.g. Z or +01:00"),
    ("yesterday", "is not a date and time like 2026-11-22T09:30:00Z"),
])
def test_a_bad_complaint_time_is_refused_and_nothing_is_written(cli, db, value, message):
    result = cli(*VIRAL_START, "--set", f"complaint_posted_at={value}")
    assert result.exit_code == 2
    assert message in result.stderr and "complaint_posted_at" in result.stderr
    assert "No incidents." in cli("list", "--all").stdout


def test_a_time_a_few_minutes_ahead_is_accepted_as_clock_skew(cli):
    assert cli(*VIRAL_START, "--set", "complaint_posted_at=2026-03-14T09:03:00Z").exit_code == 0


SEVERE = """\
id: severe
name: Severity-dependent clocks
version: "1"
severities: [low, high, critical]
roles:
  lead: {title: Lead, required: true}
  spokesperson: {title: Spokesperson}
inputs:
  noticed_at: {type: datetime}
  note: {type: string}
targets:
  first_public_post:
    within: {critical: 30m, high: 2h}
stages:
  respond:
    title: Respond
    deadline: {within: {critical: 1h, high: 4h, low: 1d}}
  closed: {title: Closed, terminal: true}
transitions:
  close: {from: respond, to: closed, roles: [lead]}
"""


@pytest.fixture
def severe(tmp_path):
    path = tmp_path / "severe.yaml"
    path.write_text(SEVERE, encoding="utf-8")
    return path


def _due(cli) -> dict:
    return {c["key"]: c["due_at"] for c in json.loads(cli("status", INC, "--json").stdout)["clocks"]}


def test_severity_can_change_during_an_incident_and_the_clocks_follow_it(cli, severe):
    """(8) `set severity=critical` is logged, and the allowances of the new severity apply."""
    cli("start", str(severe), "--title", "S", "--severity", "high", "--assign", "lead=alice")
    assert _due(cli) == {"target:first_public_post": "2026-03-14T11:00:00.000Z",
                         "stage:respond:deadline": "2026-03-14T13:00:00.000Z"}
    result = cli("set", INC, "severity=critical")
    assert result.exit_code == 0, result.output
    assert _due(cli) == {"target:first_public_post": "2026-03-14T09:30:00.000Z",
                         "stage:respond:deadline": "2026-03-14T10:00:00.000Z"}
    assert "severity changed from high to critical" in cli("log", INC).stdout
    assert "(S, critical)" in cli("status", INC).stdout.splitlines()[0].replace("severe, ", "S, ")
    report = json.loads(cli("report", INC, "--format", "json").stdout)["incident"]
    assert report["severity"] == "critical"
    assert [h["severity"] for h in report["severity_history"]] == ["high", "critical"]


def test_a_severity_without_an_allowance_has_no_such_clock(cli, severe):
    cli("start", str(severe), "--title", "S", "--severity", "low", "--assign", "lead=alice")
    assert _due(cli) == {"stage:respond:deadline": "2026-03-15T09:00:00.000Z"}


def test_a_bad_severity_change_says_why_and_writes_nothing(cli, store, severe):
    cli("start", str(severe), "--title", "S", "--severity", "high", "--assign", "lead=alice")
    before = store.snapshot(INC).seq
    result = cli("set", INC, "severity=extreme", "noticed_at=2027-01-01T00:00:00Z")
    assert result.exit_code == 2
    assert "severity 'extreme' is not one of low, high, critical" in result.stderr
    assert "'2027-01-01T00:00:00Z' is in the future" in result.stderr  # both problems, one run
    assert cli("set", INC, "severity=high").exit_code == 2
    assert store.snapshot(INC).seq == before


def test_clock_anchors_and_severities_are_checked_at_validate_time(cli, tmp_path):
    bad = SEVERE.replace("within: {critical: 30m, high: 2h}", "within: {critical: 30m, urgent: 2h}\n    from: note")
    bad = bad.replace("deadline: {within: {critical: 1h, high: 4h, low: 1d}}",
                      "deadline: {within: 1h, from: posted_at}")
    path = tmp_path / "bad.yaml"
    path.write_text(bad, encoding="utf-8")
    result = cli("validate", str(path))
    assert result.exit_code == 3
    out = result.stdout
    assert (f"{path}:14:11: targets.first_public_post.from: input 'note' is of type string; a clock can "
            "only count from a datetime input") in out
    assert f"{path}:13:29: targets.first_public_post.within.urgent: unknown severity 'urgent'" in out
    assert (f"{path}:18:34: stages.respond.deadline.from: 'posted_at' is neither start nor entry "
            "nor a datetime input (datetime inputs: noticed_at)") in out


def test_start_reports_every_problem_in_one_run(cli):
    """(14) Missing inputs, missing roles and every bad --set value, together; nothing written."""
    result = cli("start", str(BREACH), "--title", "PB", "--set", "affected_count=many",
                 "--set", "info_url=not-a-url", "--set", "discovered_at=soon", "--assign", "incident_lead=lee")
    assert result.exit_code == 2
    err = result.stderr
    assert "cannot start: 5 problems" in err
    for part in ("input 'affected_count' (integer): 'many' is not a whole number",
                 "input 'info_url' (url): 'not-a-url' is not an http(s) URL",
                 "input 'discovered_at' (datetime): 'soon' is not a date and time",
                 "missing required input(s): data_categories, breach_cause, helpline_phone",
                 "roles required to start are not filled: privacy_officer, legal, spokesperson"):
        assert part in err
    assert "No incidents." in cli("list", "--all").stdout


@pytest.mark.parametrize("moment, text", [
    ("2026-03-14T09:15:00+00:00", "2026-03-14T09:15:00.000Z"),
    ("2026-03-14T23:59:59.999999+00:00", "2026-03-14T23:59:59.999Z"),  # truncated, never rounded up
    ("1969-12-31T23:59:59.000500+00:00", "1969-12-31T23:59:59.000Z"),
    ("2028-02-29T00:00:00.010+00:00", "2028-02-29T00:00:00.010Z"),
    ("0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00.000Z"),
    ("9999-12-31T23:59:59.999999+00:00", "9999-12-31T23:59:59.999Z"),
    ("2026-03-14T10:15:00.5+01:00", "2026-03-14T10:15:00.500+01:00"),  # another zone keeps its offset
    ("2026-03-14T09:15:00.25", "2026-03-14T09:15:00.250"),  # no zone: none written
])
def test_due_times_are_written_to_the_millisecond_whatever_the_date(moment, text):
    from datetime import datetime

    from engine.clocks.deadlines import iso_ms

    assert iso_ms(datetime.fromisoformat(moment)) == text


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (0.9, "0s"), (45, "45s"), (60, "1m"), (90, "1m30s"), (3600, "1h"), (3605, "1h5s"),
    (3660, "1h1m"), (3661, "1h1m"), (86400, "1d"), (86405, "1d5s"), (86460, "1d1m"), (90000, "1d1h"),
    (90061, "1d1h"), (400 * 86400, "400d"), (-300, "-5m"), (-5400, "-1h30m"), (-0.5, "0s"),
])
def test_durations_are_shown_in_their_two_largest_units(seconds, text):
    from datetime import timedelta

    from engine.format.durations import format_duration

    assert format_duration(timedelta(seconds=seconds)) == text
    assert format_duration(timedelta(seconds=seconds)) == text  # the same again, from the cache
