"""The figures an auditor reads: first post, distinct messages, visits, lateness, one set of clocks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from conftest import T0, VIRAL_START

M, H = 60, 3600
INC = "INC-20260314-001"
DRILL = "DRILL-20260314-001"

LOOP = """\
id: loop
name: Rumour loop
version: "1"
roles:
  lead: {title: Lead, required: true}
  spokesperson: {title: Spokesperson, required: true}
stages:
  watch:
    title: Watch
    templates: [update]
    updates:
      every: 1h
  rumour:
    title: Rumour control
    templates: [update]
    deadline: {within: 30m, until: first_public_post}
  closed: {title: Closed, terminal: true}
transitions:
  rumour: {from: watch, to: rumour, roles: [lead]}
  contained: {from: rumour, to: watch, roles: [lead]}
  close: {from: watch, to: closed, roles: [lead]}
templates:
  update:
    approval: {all_of: [spokesperson]}
    channels:
      x: {en: "An update from the hospital.", es: "Una actualización del hospital."}
      facebook: {en: "An update from the hospital, on Facebook."}
"""


def at(clock, seconds: int) -> None:
    clock.advance(T0 + timedelta(seconds=seconds) - clock.now())


def publish(cli, incident: str, template: str, *posts: str) -> None:
    """Render, approve (bob) and publish the given channel/lang posts of a template."""
    channels = sorted({p.split("/")[0] for p in posts})
    langs = sorted({p.split("/")[1] for p in posts})
    args = [a for c in channels for a in ("--channel", c)] + [a for lang in langs for a in ("--lang", lang)]
    assert cli("render", incident, template, *args, "--as", "alice").exit_code == 0
    for p in posts:
        pid = f"{template}/{p}"
        drafts = {d["id"]: d for d in json.loads(cli("drafts", incident, "--json").stdout)}
        ok = cli("approve", incident, pid, "--version", str(drafts[pid]["version"]), "--as", "bob")
        assert ok.exit_code == 0, ok.output
        assert cli("publish", incident, pid, "--as", "alice").exit_code == 0


@pytest.fixture
def loop(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text(LOOP, encoding="utf-8")
    return path


def _report(cli, incident: str) -> dict:
    result = cli("report", incident, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _acknowledging(cli, clock) -> None:
    assert cli(*VIRAL_START).exit_code == 0
    cli("task", INC, "confirm_post")
    cli("advance", INC, "acknowledge")


def test_status_shows_the_first_public_post_not_the_latest(cli, clock):
    """(1) Publishing a second version later does not move 'met at' forward."""
    _acknowledging(cli, clock)
    at(clock, 20 * M)
    publish(cli, INC, "public_ack", "x/en")
    first = cli("status", INC).stdout
    at(clock, 40 * M)
    publish(cli, INC, "public_ack", "x/es")
    second = cli("status", INC).stdout
    for text in (first, second):
        assert "first public post in stage acknowledge met on time at 2026-03-14T09:20:00.000Z" in text
        assert "first public post                  met on time at 2026-03-14T09:20:00.000Z" in text
    clocks = {c["key"]: c["met_at"] for c in json.loads(cli("status", INC, "--json").stdout)["clocks"]}
    assert clocks["stage:acknowledge:deadline"] == "2026-03-14T09:20:00.000Z"


def test_public_updates_count_distinct_messages_and_show_each_channel_and_language(cli, clock, loop):
    """(2) One message out on three channel x language versions is one public update."""
    cli("start", str(loop), "--title", "Loop", "--assign", "lead=alice", "--assign", "spokesperson=bob")
    at(clock, 10 * M)
    publish(cli, INC, "update", "x/en", "x/es", "facebook/en")
    at(clock, 50 * M)
    publish(cli, INC, "update", "x/en", "x/es")  # the second update
    m = _report(cli, INC)["metrics"]
    assert (m["public_updates"], m["public_publications"]) == (2, 5)
    assert m["public_publications_by_channel_lang"] == {"facebook/en": 1, "x/en": 2, "x/es": 2}
    assert [(x["message"], x["first_at"], x["versions"]) for x in m["public_messages"]] == [
        ("update#1", "2026-03-14T09:10:00.000Z", ["x/en", "x/es", "facebook/en"]),
        ("update#2", "2026-03-14T09:50:00.000Z", ["x/en", "x/es"])]
    assert m["longest_gap_between_public_updates"]["seconds"] == 40 * M
    md = cli("report", INC).stdout
    assert "| Public updates (distinct messages) | 2 (5 publications: facebook/en 1, x/en 2, x/es 2) |" in md


def test_stage_visits_are_counted_per_stage(cli, clock, loop):
    """(3) The second time in a stage is 'visit 2', not the visit's place in the whole history."""
    cli("start", str(loop), "--title", "Loop", "--assign", "lead=alice", "--assign", "spokesperson=bob")
    at(clock, 10 * M); cli("advance", INC, "rumour")
    at(clock, 20 * M); publish(cli, INC, "update", "x/en")
    at(clock, 30 * M); cli("advance", INC, "contained")
    at(clock, 40 * M); cli("advance", INC, "rumour")
    r = _report(cli, INC)
    assert [(v["stage"], v["visit"]) for v in r["metrics"]["stage_visits"]] == [
        ("watch", 1), ("rumour", 1), ("watch", 2), ("rumour", 2)]
    rows = [(d["key"], d["visit"]) for d in r["metrics"]["deadlines"] if d["kind"] == "stage"]
    assert rows == [("stage:rumour:deadline", 1), ("stage:rumour:deadline", 2)]
    md = cli("report", INC).stdout
    assert "| first public post in stage rumour | rumour (visit 2) |" in md
    assert "#4" not in md and "#2 |" not in md


def test_a_deadline_met_late_says_so_and_by_how_much(cli, clock):
    """(5) Met on time, met late, missed and still open are four different results."""
    _acknowledging(cli, clock)
    at(clock, 2 * H)
    publish(cli, INC, "public_ack", "x/en")
    m = _report(cli, INC)["metrics"]
    result = {d["key"]: (d["outcome"], d["late_seconds"]) for d in m["deadlines"]}
    assert result["target:first_public_post"] == ("met_late", H)
    assert result["stage:acknowledge:deadline"] == ("met_late", H + 15 * M)
    assert (m["deadlines_met_on_time"], m["deadlines_met_late"], m["deadlines_missed"], m["deadlines_open"]) == (
        1, 2, 0, 0)
    md = cli("report", INC).stdout
    assert "| Deadlines | 1 met on time, 2 met late, 0 missed, 0 still open (0 overdue) |" in md
    assert "| met late | 1h15m |" in md
    assert "met late at 2026-03-14T11:00:00.000Z, 1h late (due 2026-03-14T10:00:00.000Z)" in cli(
        "status", INC).stdout


def test_a_stage_left_without_its_post_is_missed(cli, clock, loop):
    cli("start", str(loop), "--title", "Loop", "--assign", "lead=alice", "--assign", "spokesperson=bob")
    cli("advance", INC, "rumour")
    at(clock, 45 * M); cli("advance", INC, "contained")
    [d] = [d for d in _report(cli, INC)["metrics"]["deadlines"] if d["key"] == "stage:rumour:deadline"]
    assert (d["outcome"], d["closed_at"], d["late_seconds"]) == ("missed", "2026-03-14T09:45:00.000Z", 15 * M)


def test_the_update_cadence_follows_the_last_public_update_not_the_reentry(cli, clock, loop):
    """(10) Leaving for rumour control and coming back does not restart the cadence."""
    cli("start", str(loop), "--title", "Loop", "--assign", "lead=alice", "--assign", "spokesperson=bob")
    at(clock, 10 * M); publish(cli, INC, "update", "x/en")
    at(clock, 20 * M); cli("advance", INC, "rumour")
    at(clock, 30 * M); cli("advance", INC, "contained")
    at(clock, 75 * M)
    [update] = [c for c in json.loads(cli("status", INC, "--json").stdout)["clocks"] if c["kind"] == "updates"]
    assert (update["due_at"], update["from"], update["overdue"]) == (
        "2026-03-14T10:10:00.000Z", "the last public update", True)
    assert "next public update (every 1h)      OVERDUE by 5m (due 2026-03-14T10:10:00.000Z)" in cli(
        "status", INC).stdout


def test_a_late_team_is_not_credited_as_on_time_in_a_drill(cli, clock):
    """(4) A team that posts 4 hours late sees each clock's lateness and the first post against its target."""
    assert cli("drill", *VIRAL_START[1:]).exit_code == 0
    cli("advance-clock", DRILL, "4h")
    cli("task", DRILL, "confirm_post")
    cli("advance", DRILL, "acknowledge")
    cli("advance-clock", DRILL, "5m")
    publish(cli, DRILL, "public_ack", "x/en")
    data = json.loads(cli("drill-summary", DRILL, "--json").stdout)
    assert [d["key"] for d in data["outcome"]["met_on_time"]] == ["stage:acknowledge:deadline"]
    late = {d["key"]: d["late_seconds"] for d in data["outcome"]["met_late"]}
    assert late == {"target:first_public_post": 3 * H + 5 * M, "stage:triage:deadline": 3 * H + 45 * M}
    first = data["first_public_post"]
    assert (first["seconds"], first["target_seconds"], first["outcome"]) == (4 * H + 5 * M, H, "met_late")
    text = cli("drill-summary", DRILL).stdout
    assert "First public post: 4h5m after the incident's start" in text
    assert "target 1h: met late, 3h5m late" in text


def test_injects_are_shown_beside_what_the_team_did_next(cli, clock, tmp_path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text("injects:\n  - at: +10m\n    message: A journalist calls\n"
                        "  - at: +30m\n    message: The patient posts again\n", encoding="utf-8")
    cli("drill", *VIRAL_START[1:], "--scenario", str(scenario))
    cli("advance-clock", DRILL, "10m")
    cli("task", DRILL, "confirm_post")
    cli("note", DRILL, "Called the press office")
    cli("advance-clock", DRILL, "20m")
    data = json.loads(cli("drill-summary", DRILL, "--json").stdout)
    first, second = data["injects"]
    assert [a["what"] for a in first["team_actions_after"]] == [
        "completed task confirm_post", "note: Called the press office"]
    assert second["team_actions_after"] == []
    text = cli("drill-summary", DRILL).stdout
    assert ">> 2026-03-14T09:10:00.000Z: A journalist calls" in text
    assert "alice: completed task confirm_post" in text
    assert "(the team did nothing before the next inject)" in text


def test_status_report_and_drill_summary_read_the_same_clocks(cli, clock):
    """(6) One implementation: the three views agree on every clock of the same incident."""
    assert cli("drill", *VIRAL_START[1:]).exit_code == 0
    cli("advance-clock", DRILL, "20m")
    cli("task", DRILL, "confirm_post")
    cli("advance", DRILL, "acknowledge")
    cli("advance-clock", DRILL, "50m")
    publish(cli, DRILL, "public_ack", "x/en", "x/es")
    cli("advance-clock", DRILL, "5m")
    fields = ("key", "due_at", "met_at", "outcome", "late_seconds", "overdue")
    status = [tuple(c[f] for f in fields) for c in json.loads(cli("status", DRILL, "--json").stdout)["clocks"]]
    report = {tuple(d[f] for f in fields) for d in _report(cli, DRILL)["metrics"]["deadlines"]}
    summary = json.loads(cli("drill-summary", DRILL, "--json").stdout)["outcome"]
    summed = {tuple(d[f] for f in fields) for items in summary.values() for d in items}
    assert set(status) <= report == summed
    assert ("target:first_public_post", "2026-03-14T10:00:00.000Z", "2026-03-14T10:10:00.000Z",
            "met_late", 600, False) in report
