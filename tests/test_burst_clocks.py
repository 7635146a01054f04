"""A burst of inbound messages: their response clocks kept as counts by the fold, `due`'s
one line per incident for its late messages, the listing's count, and a write that reads
only the message it records."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from conftest import T0
from engine.clocks import breaches
from test_due_index import from_states, shown
from test_inbound import INCIDENT, _add, _start, listening_text

M = 60


@pytest.fixture
def playbook(tmp_path):
    path = tmp_path / "listening.yaml"  # respond_within: default 60m, phone 30m
    path.write_text(listening_text(), encoding="utf-8")
    return path


def at(clock, hhmmss: str) -> None:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    clock.advance(T0.replace(hour=h, minute=m, second=s) - clock.now())


def reference(state: dict) -> dict:
    """The counts worked out afresh from the messages: per minute their clock falls due in,
    [waiting with no breach recorded, waiting with one recorded]."""
    breached = {b["clock"][len("message:"):] for b in state["breaches"].values() if b["clock"].startswith("message:")}
    out: dict = {}
    for mid, m in state["inbound"].items():
        if m["status"] != "waiting":
            continue
        due = datetime.fromisoformat(m["posted_at"].replace("Z", "+00:00")) + timedelta(
            minutes=30 if m["source"] == "phone" else 60)
        out.setdefault(due.strftime("%Y-%m-%dT%H:%M:00.000Z"), [0, 0])[1 if mid in breached else 0] += 1
    return out


def counts(store, incident=INCIDENT) -> dict:
    return store.snapshot(incident).state.get("inbound_clock", {})


def posted(hhmmss: str) -> tuple[str, str]:
    return "--posted-at", f"2026-03-14T{hhmmss}Z"


def test_the_counts_the_fold_keeps_are_those_of_the_waiting_messages(cli, clock, store, playbook):
    _start(cli, playbook)
    for when, source in (("08:05:10", "x"), ("08:05:50", "x"), ("08:40:00", "phone"), ("08:50:00", "x"),
                         ("08:59:59", "x"), ("09:00:00", "x")):
        assert _add(cli, INCIDENT, *posted(when), source=source).exit_code == 0
    assert counts(store) == reference(store.snapshot(INCIDENT).state) == {
        "2026-03-14T09:05:00.000Z": [2, 0], "2026-03-14T09:10:00.000Z": [1, 0],
        "2026-03-14T09:50:00.000Z": [1, 0], "2026-03-14T09:59:00.000Z": [1, 0], "2026-03-14T10:00:00.000Z": [1, 0]}
    at(clock, "09:20:00")
    assert cli("due").exit_code == 9  # M1, M2 and M3 recorded as missed
    assert counts(store) == reference(store.snapshot(INCIDENT).state)
    assert counts(store)["2026-03-14T09:05:00.000Z"] == [0, 2]
    assert cli("inbound", "handle", INCIDENT, "M1", "--reason", "spam").exit_code == 0  # late
    assert cli("inbound", "handle", INCIDENT, "M4", "--reason", "duplicate").exit_code == 0  # not late yet
    assert counts(store) == reference(store.snapshot(INCIDENT).state)
    cli("task", INCIDENT, "confirm_post")
    cli("advance", INCIDENT, "acknowledge")
    assert cli("render", INCIDENT, "public_ack", "--reply-to", "M5").exit_code == 0
    assert cli("approve", INCIDENT, "public_ack/x/en/M5", "--version", "1", "--as", "bob").exit_code == 0
    assert cli("publish", INCIDENT, "public_ack/x/en/M5").exit_code == 0
    assert counts(store) == reference(store.snapshot(INCIDENT).state) == {
        "2026-03-14T09:05:00.000Z": [0, 1], "2026-03-14T09:10:00.000Z": [0, 1], "2026-03-14T10:00:00.000Z": [1, 0]}
    assert cli("verify").exit_code == 0  # the counts folded afresh from the log are the stored ones


def _listed_overdue(cli) -> int:
    line = [ln for ln in cli("list").stdout.splitlines() if ln.startswith(INCIDENT)][0]
    return int(line.split(" overdue")[0].split()[-1]) if " overdue" in line else 0


def _other_overdue(cli) -> int:
    """The incident's overdue clocks other than the messages', as status gives them."""
    clocks = json.loads(cli("status", INCIDENT, "--json").stdout)["clocks"]
    return sum(1 for c in clocks if c["overdue"] and c["kind"] != "message")


def test_a_listing_counts_a_late_message_once_recorded_or_once_its_minute_is_over(cli, clock, playbook):
    _start(cli, playbook)
    _add(cli, INCIDENT, *posted("08:05:10"))  # due 09:05:10
    _add(cli, INCIDENT, *posted("08:05:50"))  # due 09:05:50
    at(clock, "09:05:55")  # both overdue, neither recorded, their minute not over
    assert _listed_overdue(cli) == _other_overdue(cli)
    at(clock, "09:06:00")
    assert _listed_overdue(cli) == _other_overdue(cli) + 2
    clock.advance(timedelta(seconds=-50))  # 09:05:10.000: M1 is due, not overdue
    assert _listed_overdue(cli) == _other_overdue(cli)
    at(clock, "09:05:20")
    cli("due")  # records M1
    assert _listed_overdue(cli) == _other_overdue(cli) + 1


def test_due_shows_an_incidents_late_messages_as_one_line(cli, clock, store, playbook):
    _start(cli, playbook)
    for n in range(30):
        assert _add(cli, INCIDENT, *posted(f"07:{n:02d}:30"), "--source-id", str(n)).exit_code == 0
    first = cli("due")
    assert first.exit_code == 9
    late = [ln for ln in first.stdout.splitlines() if "past their reply target" in ln]
    assert late == [f"{INCIDENT:<18} 30 messages past their reply target  OVERDUE by 1h "
                    "(due 2026-03-14T08:00:00.000Z)"]
    assert not [ln for ln in first.stdout.splitlines() if ln.startswith(INCIDENT) and "reply to M" in ln]
    assert [ln for ln in first.stdout.splitlines() if ln.startswith(f"recorded: {INCIDENT} missed") and "M1" in ln] == [
        f"recorded: {INCIDENT} missed the reply target of 30 messages (M1, M2, M3, M4, M5 and 25 more)"]
    assert len(json.loads(cli("due", "--json").stdout)["recorded"]) == 0  # recorded once, by the run above
    again = cli("due")  # nothing new: the same line, from the index
    assert again.exit_code == 9 and "recorded:" not in again.stdout
    assert [ln for ln in again.stdout.splitlines() if "past their reply target" in ln] == late
    items = json.loads(cli("due", "--json").stdout)["items"]
    assert [(i["key"], i["count"], i["overdue"]) for i in items if i["kind"] == "messages"] == [
        ("messages:late", 30, True)]
    assert f"{30 + _other_overdue(cli)} item(s) overdue" in again.stderr
    assert cli("inbound", "handle", INCIDENT, "M7", "--reason", "spam").exit_code == 0
    assert "29 messages past their reply target" in cli("due").stdout
    assert sum(1 for e in store.events(INCIDENT) if e.type == "DeadlineBreached") == 30 + sum(
        1 for e in store.events(INCIDENT) if e.type == "DeadlineBreached" and not e.data["clock"].startswith("message:"))


@pytest.fixture
def burst(cli, clock, store, playbook):
    """A real incident with late messages (recorded), one waiting message due at 09:50 and
    one with a 30-minute clock; a drill whose messages are late on its own clock."""
    _start(cli, playbook)
    for n in range(5):
        _add(cli, INCIDENT, *posted(f"07:1{n}:00"), "--source-id", str(n))
    _add(cli, INCIDENT, *posted("08:50:00"), "--source-id", "later")
    drill = _start(cli, playbook, "drill")
    _add(cli, drill, *posted("08:30:00"))
    _add(cli, drill, *posted("08:31:00"), source="phone")
    assert cli("advance-clock", drill, "40m").exit_code == 0  # the drill at 09:40: both late
    assert cli("due").exit_code == 9  # records them all
    return drill


def test_due_items_from_the_index_are_those_of_the_states_with_late_messages(burst, store, clock):
    for moment in ("09:00:30", "09:49:59", "09:50:00", "11:00:00"):
        at(clock, moment)
        now = clock.now()
        for within in (0, 30 * M):
            index = shown(breaches.due(store, now, within))
            assert any(item[6].get("count") for item in index), (moment, within)
            assert index == shown(from_states(store, now, within)), (moment, within)
            from engine.incidents.state import rebuild_stale
            rebuild_stale(store)  # the index rows back


def test_an_incident_whose_messages_are_all_recorded_is_not_read_for_due(burst, store, clock, monkeypatch):
    at(clock, "09:30:00")  # the waiting message falls due at 09:50: only recorded ones are late
    def unread(incident):
        raise AssertionError(f"due read {incident} in full")
    monkeypatch.setattr(store, "snapshot", unread)
    items = breaches.due(store, clock.now())
    assert {(i.incident, i.count) for i in items if i.count} == {(INCIDENT, 5), (burst, 2)}
    with pytest.raises(AssertionError, match="read INC-20260314-001 in full"):
        breaches.due(store, clock.now(), 25 * M)  # within the window: its clock may be new


def test_recording_a_message_reads_no_other_message(cli, store, playbook, request):
    _start(cli, playbook)
    for n in range(40):
        _add(cli, INCIDENT, "--source-id", str(n))
    looked = request.getfixturevalue("parts_read")  # from here on
    result = _add(cli, INCIDENT, "--source-id", "new", "--posted-at", "2026-03-14T08:59:00Z")
    assert result.exit_code == 0 and "Recorded M41 on INC-20260314-001 (posted 2026-03-14T08:59:00.000Z)" in result.stdout
    assert looked == []  # the new message is the state's own; no earlier one (nor any post) is read
    again = _add(cli, INCIDENT, "--source-id", "3")
    assert "already recorded as M4" in again.stdout
    assert set(looked) <= {("inbound_keys", "x\x1f3"), ("inbound", "M4")}


def test_a_burst_missing_its_targets_escalates_once_not_once_per_message(cli, store, playbook):
    _start(cli, playbook)  # inbound escalate: notify incident_lead, no ladder
    for n in range(3):
        _add(cli, INCIDENT, *posted(f"07:0{n}:00"), "--source-id", str(n), "--author", f"@p{n}")
    result = cli("due")
    assert result.exit_code == 9
    escalations = [e.data for e in store.events(INCIDENT) if e.type == "EscalationApplied"
                   and e.data["clock"].startswith("message:")]
    assert [(d["clock"], d["label"], d["notify"]) for d in escalations] == [
        ("message:M1", "reply to M1 (x from @p0) and 2 other message(s)", {"incident_lead": ["alice"]})]
    breached = [e.data["clock"] for e in store.events(INCIDENT) if e.type == "DeadlineBreached"]
    assert {"message:M1", "message:M2", "message:M3"} <= set(breached)
    assert result.stdout.count("!! not delivered: INC-20260314-001 the reply target of 3 messages (M1, M2, M3)") == 1
    notices = store.snapshot(INCIDENT).state["notifications"]
    assert [n["label"] for n in notices.values() if "message" in n["label"]] == [
        "reply to M1 (x from @p0) and 2 other message(s)"]
    assert cli("verify").exit_code == 0
