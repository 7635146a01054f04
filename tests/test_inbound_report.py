"""The clinic that let a patient post twelve times over four hours, as an incident: the
report shows time to detect, each message against its target, and the answers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from test_inbound import INCIDENT, _add, _start, playbook  # noqa: F401 - the fixture

FIRST = datetime(2026, 3, 14, 5, 0, tzinfo=timezone.utc)  # four hours before the incident starts (T0)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _twelve(cli, posted):
    for i, at in enumerate(posted, 1):
        result = _add(cli, INCIDENT, "--posted-at", _iso(at), "--author", "@patient", "--source-id", str(i),
                      text=f"Complaint {i}: <b>still</b> waiting")
        assert result.exit_code == 0, result.output


def _reply_to_last_and_close_the_rest(cli, clock):
    cli("task", INCIDENT, "confirm_post")
    cli("advance", INCIDENT, "acknowledge")
    assert cli("render", INCIDENT, "public_ack", "--reply-to", "M12").exit_code == 0
    cli("approve", INCIDENT, "public_ack/x/en/M12", "--version", "1", "--as", "bob")
    for n in range(1, 12):
        assert cli("inbound", "handle", INCIDENT, f"M{n}", "--reason", "duplicate").exit_code == 0
    assert cli("publish", INCIDENT, "public_ack/x/en/M12").exit_code == 0


def test_twelve_messages_answered_after_four_hours_are_eleven_over_target(cli, clock, playbook):  # noqa: F811
    _start(cli, playbook)
    _twelve(cli, [FIRST + timedelta(minutes=18 * i) for i in range(11)] + [FIRST + timedelta(minutes=230)])
    clock.advance(timedelta(minutes=5))  # answered at 09:05, four hours and five minutes after the first
    _reply_to_last_and_close_the_rest(cli, clock)
    report = json.loads(cli("report", INCIDENT, "--format", "json").stdout)
    inbound = report["metrics"]["inbound"]
    assert inbound["time_to_detect_seconds"] == 4 * 3600
    assert (inbound["with_target"], inbound["met_target"]) == (12, 1)
    assert inbound["longest_wait_seconds"] == 4 * 3600 + 5 * 60
    assert [x["met_target"] for x in inbound["items"]].count(False) == 11
    missed = [d for d in report["metrics"]["deadlines"] if d["kind"] == "message" and d["outcome"] == "met_late"]
    assert len(missed) == 11
    md = cli("report", INCIDENT, "--format", "md").stdout
    assert "Answered within the target: 1 of 12" in md and "Time to detect (first message posted to incident opened): 4h" in md
    assert "| M1 | 2026-03-14T05:00:00.000Z | x | @patient | 4h5m | 1h | OVER TARGET: a duplicate, by alice" in md
    assert "| M12 | 2026-03-14T08:50:00.000Z | x | @patient | 15m | 1h | met: answered by public_ack/x/en/M12" in md
    html = cli("report", INCIDENT, "--format", "html").stdout
    assert "Complaint 1: &lt;b&gt;still&lt;/b&gt; waiting" in html and "<b>still</b>" not in html


def test_twelve_messages_each_answered_within_twenty_minutes_all_meet_the_target(cli, clock, playbook):  # noqa: F811
    _start(cli, playbook)
    cli("task", INCIDENT, "confirm_post")
    cli("advance", INCIDENT, "acknowledge")
    for n in range(1, 13):
        assert _add(cli, INCIDENT, "--author", "@patient", text=f"Complaint {n}").exit_code == 0
        clock.advance(timedelta(minutes=20))
        if n < 12:
            cli("inbound", "handle", INCIDENT, f"M{n}", "--reason", "private", "--note", "called back")
    assert cli("render", INCIDENT, "public_ack", "--reply-to", "M12").exit_code == 0
    cli("approve", INCIDENT, "public_ack/x/en/M12", "--version", "1", "--as", "bob")
    assert cli("publish", INCIDENT, "public_ack/x/en/M12").exit_code == 0
    inbound = json.loads(cli("report", INCIDENT, "--format", "json").stdout)["metrics"]["inbound"]
    assert (inbound["with_target"], inbound["met_target"], inbound["waiting"]) == (12, 12, 0)
    assert inbound["time_to_detect_seconds"] == 0
    assert "Inbound messages: 12 (0 waiting for an answer)" in cli("status", INCIDENT).stdout
