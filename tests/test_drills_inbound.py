"""The two cases of the issue as drills on a fixed clock, with `due` run every five minutes
as cron would: a patient posts twelve times over four hours.

Answered after four hours: the report shows the time to detect, eleven of the twelve
messages over their 60-minute target, and the escalation ladder climbing past the
incident to the head of communications and the executive on call (reached through the
on-call roster and their own pagers). Answered within twenty minutes each: every target
met, and no ladder at all."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from conftest import VIRAL, VIRAL_START

INCIDENT = "INC-20260314-001"
FIRST = datetime(2026, 3, 14, 5, 0, tzinfo=timezone.utc)  # the first post
#: the twelve posts, minutes after the first: eleven every 17 minutes, the last at 3h45m
POSTED = [17 * i for i in range(11)] + [225]
ROSTER = """\
head_of_comms:
  - {person: dana, destination: pager.dana, week: 2026-W11}
executive_on_call:
  - {person: morgan, destination: pager.morgan}
"""


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def pagers(tmp_path):
    from test_delivery import Hook

    hooks = {name: Hook() for name in ("dana", "morgan")}
    for hook in hooks.values():
        hook.__enter__()
    (tmp_path / "roster.yaml").write_text(ROSTER, encoding="utf-8")
    (tmp_path / "destinations.yaml").write_text(
        "".join(f"pager.{name}: ['{hook.url}']\n" for name, hook in hooks.items()), encoding="utf-8")
    yield hooks
    for hook in hooks.values():
        hook.__exit__(None, None, None)


def _run(cli, clock, answer_after: dict[int, int], until: int) -> None:
    """From the first post to `until` minutes after it, minute by minute: each post arrives
    when posted, `due` runs every five minutes, and message n is answered `answer_after[n]`
    minutes after the first post (the last one by a published reply, the others handled)."""
    clock._now = FIRST + timedelta(minutes=2)  # the incident is opened two minutes after the first post
    start = [VIRAL_START[0], str(VIRAL), *VIRAL_START[2:]]
    assert cli(*start).exit_code == 0
    cli("task", INCIDENT, "confirm_post")
    cli("advance", INCIDENT, "acknowledge")
    for minute in range(0, until + 1):
        clock._now = FIRST + timedelta(minutes=minute)
        if minute < 2:
            continue
        for n, posted in enumerate(POSTED, 1):
            if posted == minute or (posted < 2 and minute == 2):
                result = cli("inbound", "add", INCIDENT, "--source", "x", "--author", "@patient",
                             "--source-id", str(n), "--text", f"Complaint {n}: still waiting",
                             "--posted-at", _iso(FIRST + timedelta(minutes=posted)))
                assert result.exit_code == 0, result.output
        for n, at in answer_after.items():
            if at == minute:
                _answer(cli, n)
        if minute % 5 == 0:
            assert cli("due").exit_code in (0, 9)


def _answer(cli, n: int) -> None:
    if n < len(POSTED):
        assert cli("inbound", "handle", INCIDENT, f"M{n}", "--reason", "private", "--note", "called back").exit_code == 0
        return
    assert cli("render", INCIDENT, "public_ack", "--reply-to", f"M{n}").exit_code == 0
    assert cli("approve", INCIDENT, f"public_ack/x/en/M{n}", "--version", "1", "--as", "bob").exit_code == 0
    assert cli("publish", INCIDENT, f"public_ack/x/en/M{n}").exit_code == 0


def test_answered_after_four_hours_eleven_are_over_target_and_the_ladder_reaches_the_executive(
        cli, clock, store, pagers):
    _run(cli, clock, {n: 240 for n in range(1, 13)}, until=300)
    report = json.loads(cli("report", INCIDENT, "--format", "json").stdout)
    inbound = report["metrics"]["inbound"]
    assert inbound["time_to_detect_seconds"] == 120
    assert (inbound["with_target"], inbound["met_target"]) == (12, 1)
    assert [x["met_target"] for x in inbound["items"]] == [False] * 11 + [True]
    ladder = report["metrics"]["escalation_ladder"]
    # one ladder for all twelve, from M1's due time (06:00; cron sees it at 06:05): the lead, the head of
    # comms at 06:15, the executive at 06:30 and every 30 minutes until the answers at 09:00
    assert [(s["step"], s["round"], s["at"][11:16]) for s in ladder] == [
        (0, 0, "06:05"), (1, 0, "06:15"), (2, 0, "06:30"), (2, 1, "07:00"), (2, 2, "07:30"),
        (2, 3, "08:00"), (2, 4, "08:30")]
    assert ladder[2]["notify"] == {"executive_on_call": ["morgan"]} and ladder[1]["notify"] == {"head_of_comms": ["dana"]}
    assert len(pagers["morgan"].received) == 5 and len(pagers["dana"].received) == 1
    assert "[INC-20260314-001] MISSED: reply to M1 (x from @patient)" in pagers["morgan"].received[0]["message"]
    md = cli("report", INCIDENT, "--format", "md").stdout
    assert "Answered within the target: 1 of 12" in md
    assert "escalation step 3 of 3 (repeat 4) for reply to M1 (x from @patient): notify executive_on_call (morgan)" in md
    # the lead is in the incident, but no destination reaches them: said, not hidden
    assert "escalation step 1 of 3 for reply to M1 (x from @patient): NOT DELIVERED: no destination for " \
           "incident_lead" in md


def test_answered_within_twenty_minutes_every_target_is_met_and_no_ladder_climbs(cli, clock, store, pagers):
    _run(cli, clock, {n: max(posted, 2) + 20 for n, posted in enumerate(POSTED, 1)}, until=300)
    report = json.loads(cli("report", INCIDENT, "--format", "json").stdout)
    inbound = report["metrics"]["inbound"]
    assert inbound["time_to_detect_seconds"] == 120
    assert (inbound["with_target"], inbound["met_target"], inbound["waiting"]) == (12, 12, 0)
    assert "escalation_ladder" not in report["metrics"]
    assert not [e for e in store.events(INCIDENT) if e.type in ("EscalationStepReached", "EscalationApplied")
                and e.data["clock"].startswith("message:")]
    assert [len(h.received) for h in pagers.values()] == [0, 0]
