"""Escalation ladders: steps with delays that climb and repeat until someone acknowledges,
reaching on-call people through a roster kept outside the playbook; an escalation that
can reach nobody says so in `due`, `status` and the log."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from conftest import T0, VIRAL, VIRAL_START
from test_remote_cli import team  # noqa: F401 - the fixture

INCIDENT = "INC-20260314-001"
SHIPPED = """\
    ladder:
      - {after: 0m, notify: [incident_lead]}
      - {after: 15m, notify: [head_of_comms]}
      - {after: 30m, notify: [executive_on_call], repeat: 30m}
"""
ROSTER = """\
head_of_comms:
  - person: dana
    destination: pager.dana
    week: 2026-W11
  - person: eli
    destination: pager.eli
    from: 2026-03-14T12:00:00Z
    until: 2026-03-15T08:00:00Z
executive_on_call:
  - person: morgan
    destination: pager.morgan
"""


def _playbook(tmp_path, ladder: str):
    """The viral-complaint playbook with another ladder for its inbound messages."""
    text = VIRAL.read_text(encoding="utf-8")
    assert SHIPPED in text
    path = tmp_path / "ladder.yaml"
    path.write_text(text.replace(SHIPPED, ladder), encoding="utf-8")
    return path


def _line_of(path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def _message(cli, posted_at: str = "2026-03-14T08:30:00Z", n: int = 1):
    result = cli("inbound", "add", INCIDENT, "--source", "x", "--author", "@patient", "--source-id", str(n),
                 "--text", f"Still waiting ({n})", "--posted-at", posted_at)
    assert result.exit_code == 0, result.output


def _at(clock, minutes: int) -> None:
    clock._now = T0 + timedelta(minutes=minutes)


def _steps(store, incident=INCIDENT) -> list[tuple[int, int]]:
    return [(e.data["step"], e.data["round"]) for e in store.events(incident) if e.type == "EscalationStepReached"]


def _types(store, incident=INCIDENT) -> list[str]:
    return [e.type for e in store.events(incident)]


@pytest.fixture
def paging(tmp_path, monkeypatch):
    """Loopback pagers for the lead, dana (head of comms) and morgan (executive on call),
    with the roster and destinations files that name them."""
    from test_delivery import Hook

    hooks = {name: Hook() for name in ("lead", "dana", "morgan")}
    for hook in hooks.values():
        hook.__enter__()
    (tmp_path / "roster.yaml").write_text(ROSTER, encoding="utf-8")
    (tmp_path / "destinations.yaml").write_text(
        f"escalation.incident_lead: ['{hooks['lead'].url}']\n"
        f"pager.dana: ['{hooks['dana'].url}']\npager.morgan: ['{hooks['morgan'].url}']\n", encoding="utf-8")
    yield hooks
    for hook in hooks.values():
        hook.__exit__(None, None, None)


# -- the ladder in the playbook ------------------------------------------------------------


def test_the_shipped_ladder_is_valid_and_compiled_into_the_plan(cli, store):
    assert cli("validate", str(VIRAL)).exit_code == 0
    cli(*VIRAL_START)
    plan = store.snapshot(INCIDENT).state["plan"]
    assert plan["inbound"]["escalate"]["ladder"] == [
        {"after": 0, "notify": ["incident_lead"], "repeat": None},
        {"after": 900, "notify": ["head_of_comms"], "repeat": None},
        {"after": 1800, "notify": ["executive_on_call"], "repeat": 1800}]


@pytest.mark.parametrize("ladder, needle, message", [
    ("    ladder:\n      - {after: 15m, notify: [incident_lead]}\n      - {after: 10m, notify: [head_of_comms]}\n",
     "after: 10m", "after: 10m is not later than the step before (15m); list the steps in ascending order"),
    ("    ladder:\n      - {after: 0m, notify: [incident_lead], repeat: 30m}\n      - {after: 10m, notify: [cfo]}\n",
     "repeat: 30m", "repeat: only on the last step of a ladder"),
    ("    ladder:\n      - {after: 0m, notify: [incident_lead], repeat: 2m}\n",
     "repeat: 2m", "a ladder that repeats more often than every 5m is not workable: '2m'"),
    ("    ladder:\n      - {after: 0m, notify: [incident_laed]}\n",
     "incident_laed", "unknown role 'incident_laed': did you mean 'incident_lead'?"),
    ("    ladder:\n      - {after: soon, notify: [incident_lead]}\n",
     "after: soon", "'soon' is not a duration"),
    ("    notify: [incident_lead]\n    ladder:\n      - {after: 0m, notify: [head_of_comms]}\n",
     "notify: [head_of_comms]", "inbound.escalate.ladder: give either notify: (once) or ladder: (steps), not both"),
    ("    ladder:\n      - {after: 0m, notify: []}\n",
     "notify: []", "at least 1 item"),
])
def test_a_bad_ladder_is_refused_at_the_line_of_the_field_to_change(cli, tmp_path, ladder, needle, message):
    path = _playbook(tmp_path, ladder)
    result = cli("validate", str(path))
    assert result.exit_code == 3
    assert message in result.output
    assert f"{path}:{_line_of(path, needle)}:" in result.output


def test_a_ladder_may_name_on_call_roles_the_playbook_does_not_have(cli, tmp_path):
    path = _playbook(tmp_path, "    ladder:\n      - {after: 0m, notify: [incident_lead]}\n"
                               "      - {after: 1h, notify: [chief_executive], repeat: 1h}\n")
    assert cli("validate", str(path)).exit_code == 0


# -- the roster ---------------------------------------------------------------------------


def test_the_roster_says_who_holds_a_role_then_ranges_over_weeks_over_standing_entries():
    from engine.clocks.roster import parse_roster

    roster = parse_roster(__import__("yaml").load(ROSTER, Loader=__import__("yaml").BaseLoader), "roster.yaml")
    at = lambda *a: datetime(*a, tzinfo=timezone.utc)  # noqa: E731
    assert [s.person for s in roster.holders("head_of_comms", at(2026, 3, 14, 9))] == ["dana"]
    assert [s.person for s in roster.holders("head_of_comms", at(2026, 3, 14, 13))] == ["eli"]
    assert [s.person for s in roster.holders("head_of_comms", at(2026, 3, 16, 0, 0))] == []  # W12
    assert [s.person for s in roster.holders("executive_on_call", at(2030, 1, 1))] == ["morgan"]
    assert roster.roles == ["executive_on_call", "head_of_comms"]


@pytest.mark.parametrize("text, problem", [
    ("head_of_comms:\n  - {person: dana, week: 2026-W60}\n", "head_of_comms[1]: week: '2026-W60' is not an ISO week"),
    ("head_of_comms:\n  - {person: dana, shift: nights}\n", "head_of_comms[1]: unknown key(s) shift"),
    ("head_of_comms:\n  - {destination: pager.dana}\n", "head_of_comms[1]: person: the account name"),
    ("head_of_comms:\n  - {person: dana}\n  - {person: eli, from: 2026-03-14T12:00:00Z}\n",
     "head_of_comms[2]: until: a UTC timestamp"),
    ("head_of_comms:\n  - {person: eli, from: 2026-03-14T12:00:00, until: 2026-03-15T08:00:00Z}\n",
     "head_of_comms[1]: from: '2026-03-14T12:00:00' is not a timestamp with its time zone"),
    ("head_of_comms:\n  - {person: eli, from: 2026-03-15T12:00:00Z, until: 2026-03-15T08:00:00Z}\n",
     "head_of_comms[1]: until: 2026-03-15T08:00:00Z is not after from: 2026-03-15T12:00:00Z"),
    ("Head Of Comms:\n  - {person: dana}\n", "'Head Of Comms': not a role name"),
    ("head_of_comms: dana\n", "head_of_comms: a list of shifts"),
    ("- dana\n", "the on-call roster is a mapping of on-call roles"),
    ("head_of_comms: [dana\n", "cannot read the on-call roster"),
])
def test_a_bad_roster_is_refused_naming_the_file_and_entry_and_nothing_is_recorded(cli, clock, store, tmp_path,
                                                                                  text, problem):
    cli(*VIRAL_START)
    _message(cli)
    (tmp_path / "roster.yaml").write_text(text, encoding="utf-8")
    _at(clock, 40)
    result = cli("due")
    assert result.exit_code == 2
    assert str(tmp_path / "roster.yaml") in result.stderr and problem in result.stderr
    assert "Traceback" not in result.stderr
    assert "DeadlineBreached" not in _types(store)


def test_the_roster_comes_from_playbook_roster_when_set(tmp_path):
    from engine.app.config import Config

    assert Config.resolve({}, db=str(tmp_path / "x.db")).roster == tmp_path / "roster.yaml"
    assert Config.resolve({"PLAYBOOK_ROSTER": str(tmp_path / "oncall.yaml")}, db=str(tmp_path / "x.db")).roster \
        == tmp_path / "oncall.yaml"


# -- climbing -----------------------------------------------------------------------------


def test_the_ladder_climbs_each_step_once_and_repeats_the_last_until_acknowledged(cli, clock, store, paging):
    cli(*VIRAL_START)
    _message(cli)  # posted 08:30: its answer is due at 09:30
    for minute in (20, 34, 35, 40, 44, 45, 59, 60, 61, 89, 90, 95):
        _at(clock, minute)
        assert cli("due").exit_code == 9
    assert _steps(store) == [(0, 0), (1, 0), (2, 0), (2, 1)]
    # the lead also hears of the playbook's one-off escalations (leaving triage, the first public post)
    assert [sum("reply to M1" in n["message"] for n in paging[p].received) for p in ("lead", "dana", "morgan")] \
        == [1, 1, 2]
    assert "[INC-20260314-001] MISSED: reply to M1 (x from @patient)" in paging["morgan"].received[0]["message"]
    assert "acknowledge with playbook ack INC-20260314-001" in paging["morgan"].received[0]["message"]
    status = cli("status", INCIDENT).stdout
    assert "step 3 of 3 reached at 2026-03-14T10:30:00.000Z (executive_on_call); CLIMBING, not acknowledged; " \
           "next step at 2026-03-14T11:00:00.000Z" in status
    assert "not delivered" not in status
    acked = cli("ack", INCIDENT, "M1", "--note", "calling the patient now", "--as", "alice")
    assert acked.exit_code == 0
    assert "Acknowledged: INC-20260314-001 reply to M1 (x from @patient) (after step 3)" in acked.stdout
    for minute in (120, 150, 240):
        _at(clock, minute)
        cli("due")
    assert _steps(store) == [(0, 0), (1, 0), (2, 0), (2, 1)]
    assert len(paging["morgan"].received) == 2
    assert "acknowledged by alice at 2026-03-14T10:35:00.000Z" in cli("status", INCIDENT).stdout
    log = cli("log", INCIDENT).stdout
    assert "escalation step 2 of 3 for reply to M1 (x from @patient): notify head_of_comms (dana)" in log
    assert "escalation step 3 of 3 (repeat 1) for reply to M1 (x from @patient): notify executive_on_call (morgan)" in log
    assert "acknowledged the escalation for reply to M1 (x from @patient): calling the patient now" in log
    assert cli("verify").exit_code == 0


def test_the_head_of_comms_is_whoever_the_roster_says_at_the_time_of_the_step(cli, clock, store, tmp_path):
    (tmp_path / "roster.yaml").write_text(ROSTER, encoding="utf-8")
    cli(*VIRAL_START)
    _at(clock, 120)
    _message(cli, "2026-03-14T11:00:00Z")  # due 12:00: the head of comms step at 12:15, eli's shift
    _at(clock, 200)
    cli("due")
    _at(clock, 236)
    cli("due")
    (step,) = [e.data for e in store.events(INCIDENT) if e.type == "EscalationStepReached" and e.data["step"] == 1]
    assert step["notify"] == {"head_of_comms": ["eli"]}


def test_a_run_after_a_long_pause_records_every_step_but_only_the_latest_repeat(cli, clock, store):
    cli(*VIRAL_START)
    _message(cli)
    _at(clock, 30 + 60 * 5)  # five hours after the answer was due, the first check
    cli("due")
    steps = [e.data for e in store.events(INCIDENT) if e.type == "EscalationStepReached"]
    assert [(s["step"], s["round"], s["skipped"]) for s in steps] == [(0, 0, 0), (1, 0, 0), (2, 0, 0), (2, 9, 8)]


def test_concurrent_checks_record_each_step_once(db, clock, store, cli):
    from engine.app import clocks
    from engine.app.config import Config
    from engine.app.context import App
    from engine.app.principal import Principal

    cli(*VIRAL_START)
    _message(cli)
    _at(clock, 61)
    apps = [App(Config.resolve({}, db=str(db)), clock) for _ in range(4)]
    start = threading.Barrier(len(apps))
    errors = []

    def check(app):
        start.wait()
        try:
            clocks.due(app, Principal.asserted(""), 0)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=check, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _steps(store) == [(0, 0), (1, 0), (2, 0)]
    assert _types(store).count("DeadlineBreached") == 3  # the message's clock, leaving triage, the first post


def test_messages_that_wait_too_long_share_one_ladder(cli, clock, store):
    cli(*VIRAL_START)
    for n, posted in enumerate(("08:30", "08:40", "08:50"), 1):
        _message(cli, f"2026-03-14T{posted}:00Z", n)
    for minute in range(5, 125, 5):
        _at(clock, minute)
        cli("due")
    applied = [e.data for e in store.events(INCIDENT) if e.type == "EscalationApplied" and e.data.get("ladder")]
    assert [bool(a["ladder"].get("joined")) for a in applied] == [False, True, True]
    assert _steps(store) == [(0, 0), (1, 0), (2, 0), (2, 1), (2, 2)]  # from 09:30: +0, 15m, 30m, 1h, 1h30m
    assert "joins the escalation ladder already climbing for message:M1" in cli("log", INCIDENT).stdout


def test_the_ladder_stops_once_the_message_is_answered(cli, clock, store):
    cli(*VIRAL_START)
    _message(cli)
    _at(clock, 50)
    cli("due")
    assert _steps(store) == [(0, 0), (1, 0)]
    assert cli("inbound", "handle", INCIDENT, "M1", "--reason", "private").exit_code == 0
    for minute in (60, 90, 180):
        _at(clock, minute)
        cli("due")
    assert _steps(store) == [(0, 0), (1, 0)]
    assert "stopped: no longer overdue" in cli("status", INCIDENT).stdout
    refused = cli("ack", INCIDENT)
    assert refused.exit_code == 5 and "no escalation is climbing" in refused.stderr


def test_a_drill_climbs_its_ladder_but_never_pages(cli, clock, store, paging):
    drill = VIRAL_START[:]
    drill[0] = "drill"
    assert cli(*drill).exit_code == 0
    assert cli("inbound", "add", "DRILL-20260314-001", "--source", "x", "--text", "Still waiting",
                "--posted-at", "2026-03-14T08:30:00Z").exit_code == 0
    _at(clock, 95)
    result = cli("due")
    assert result.exit_code == 0  # a drill never pages
    assert _steps(store, "DRILL-20260314-001") == [(0, 0), (1, 0), (2, 0), (2, 1)]
    assert "escalated: DRILL-20260314-001 DRILL reply to M1 (x)" in result.stdout
    assert "not delivered" not in result.stdout
    assert [len(h.received) for h in paging.values()] == [0, 0, 0]


# -- loud when undeliverable ----------------------------------------------------------------


def test_a_step_nobody_can_receive_says_so_in_due_status_and_the_log(cli, clock, store, tmp_path):
    (tmp_path / "roster.yaml").write_text("head_of_comms:\n  - {person: dana, destination: pager.dana}\n",
                                          encoding="utf-8")
    (tmp_path / "destinations.yaml").write_text("escalation.incident_lead: ['json://127.0.0.1:9/lead']\n",
                                                encoding="utf-8")
    cli(*VIRAL_START)
    _message(cli)
    _at(clock, 61)
    due = cli("due").stdout
    assert ("!! not delivered: INC-20260314-001 reply to M1 (x from @patient) step 2 of 3: no destination for "
            "head_of_comms (dana: pager.dana is not in the destinations file)") in due
    assert ("!! not delivered: INC-20260314-001 reply to M1 (x from @patient) step 3 of 3: nobody holds "
            "executive_on_call in the on-call roster") in due
    assert "step 1 of 3: no destination" not in due
    status = cli("status", INCIDENT).stdout
    assert "  !! not delivered: nobody holds executive_on_call in the on-call roster" in status
    log = cli("log", INCIDENT).stdout
    assert "escalation step 3 of 3 for reply to M1 (x from @patient): NOT DELIVERED: nobody holds " \
           "executive_on_call in the on-call roster" in log
    shown = json.loads(cli("status", INCIDENT, "--json").stdout)["ladders"]
    assert shown[0]["climbing"] and shown[0]["undelivered"] == ["nobody holds executive_on_call in the on-call roster"]


def test_a_one_off_escalation_without_a_destination_is_not_reported_as_sent(cli, clock, store):
    cli(*VIRAL_START)
    _at(clock, 16)
    result = cli("due")
    assert "!! not delivered: INC-20260314-001 leave stage triage: no destination for incident_lead" in result.stdout
    assert "escalation NOT DELIVERED: no destination for incident_lead" in cli("log", INCIDENT).stdout


# -- acknowledging ------------------------------------------------------------------------


@pytest.fixture
def climbing(cli, clock, tmp_path):
    (tmp_path / "roster.yaml").write_text(ROSTER, encoding="utf-8")
    cli(*VIRAL_START)
    _message(cli)
    _at(clock, 61)
    assert cli("due").exit_code == 9


def test_someone_the_ladder_paged_may_acknowledge_from_outside_the_incident(cli, store, climbing):
    result = cli("ack", INCIDENT, "--as", "morgan")
    assert result.exit_code == 0
    (ack,) = [e for e in store.events(INCIDENT) if e.type == "EscalationAcknowledged"]
    assert ack.actor == "morgan" and ack.data["clock"] == "message:M1"


@pytest.mark.parametrize("args, code, message", [
    (["--as", "zed"], 5, "zed"),
    (["--as", "system:clock"], 2, "reserved for the engine"),
    (["message:M7", "--as", "alice"], 4, "clock 'message:M7' has no climbing escalation (climbing: message:M1)"),
    (["--note", "on it\x1b[31m", "--as", "alice"], 2, "--note"),
])
def test_an_acknowledgement_that_is_not_allowed_is_refused_and_changes_nothing(cli, store, climbing, args, code,
                                                                              message):
    before = len(list(store.events(INCIDENT)))
    result = cli("ack", INCIDENT, *args)
    assert result.exit_code == code and message in result.stderr
    assert len(list(store.events(INCIDENT))) == before


def test_acknowledging_an_unknown_incident_is_not_found(cli, climbing):
    result = cli("ack", "INC-20991231-009")
    assert result.exit_code == 4 and "INC-20991231-009" in result.stderr


def test_the_api_acknowledges_and_refuses_like_the_command_line(tmp_path, clock):
    from server_support import INC, VIRAL_BODY, Server

    server = Server(tmp_path, clock)
    try:
        server.add_people("alice", "bob", "cora", "petra", "zed")
        assert server.call("POST", "/incidents", "alice", json=VIRAL_BODY).status_code == 201
        from engine.app import inbound
        from engine.app.context import App
        from engine.app.principal import Principal

        inbound.receive(App(server.config, clock), Principal.asserted("alice"), INC,
                        {"source": "x", "text": "Still waiting", "posted_at": "2026-03-14T08:30:00Z"})
        _at(clock, 61)
        assert server.call("POST", "/due", "alice").status_code == 200
        refused = server.call("POST", f"/incidents/{INC}/ack", "zed", json={})
        assert refused.status_code == 403 and refused.json()["exit_code"] == 5
        missing = server.call("POST", f"/incidents/{INC}/ack", "alice", json={"clock": "message:M9"})
        assert missing.status_code == 404
        ok = server.call("POST", f"/incidents/{INC}/ack", "alice", json={"note": "on it"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["acknowledged"] == [{"clock": "message:M1", "label": "reply to M1 (x)", "step": 2}]
        assert ok.json()["status"]["ladders"][0]["acknowledged"]["by"] == "alice"
        again = server.call("POST", f"/incidents/{INC}/ack", "alice", json={})
        assert again.status_code == 403 and "nothing to acknowledge" in again.json()["detail"]
        acks = [e for e in server.events() if e.type == "EscalationAcknowledged"]
        assert len(acks) == 1 and acks[0].data.get("auth")
    finally:
        server.client.close()


def test_once_a_ladder_stops_due_at_steady_state_reads_no_state_and_writes_nothing(cli, clock, monkeypatch):
    """The index row says whether a ladder may still climb: an answered message's does not."""
    from test_due import _reads

    cli(*VIRAL_START)
    _message(cli)
    _at(clock, 50)
    cli("due")
    cli("inbound", "handle", INCIDENT, "M1", "--reason", "private")
    _at(clock, 70)
    first = cli("due")
    seen = _reads(monkeypatch)
    again = cli("due")
    assert again.exit_code == first.exit_code == 9 and "escalated:" not in again.stdout
    assert seen == {"states": [], "writes": []}


def test_playbook_ack_works_as_a_client_of_the_team_server(team):
    """`ack` on a command line that is a client of the team server acknowledges there."""
    from server_support import INC, VIRAL_BODY
    from test_remote_cli import run

    from engine.app import inbound
    from engine.app.context import App
    from engine.app.principal import Principal

    team.add_people("cora", "petra")
    assert team.call("POST", "/incidents", "alice", json=VIRAL_BODY).status_code == 201
    inbound.receive(App(team.config, team.clock), Principal.asserted("alice"), INC,
                    {"source": "x", "text": "Still waiting", "posted_at": "2026-03-14T08:30:00Z"})
    _at(team.clock, 61)
    assert team.call("POST", "/due", "alice").status_code == 200
    env = {"PLAYBOOK_SERVER": team.url, "PLAYBOOK_TOKEN": team.token("alice")}
    result = run(["ack", INC, "M1", "--note", "on it"], env=env, clock=team.clock)
    assert result.exit_code == 0, result.output
    assert "Acknowledged: INC-20260314-001 reply to M1 (x) (after step 3)" in result.stdout
    (ack,) = [e for e in team.events() if e.type == "EscalationAcknowledged"]
    assert ack.actor == "alice" and ack.data["note"] == "on it"
    again = run(["ack", INC], env=env, clock=team.clock)
    assert again.exit_code == 5 and "nothing to acknowledge" in again.stderr


def test_playbook_roster_shows_who_is_on_call_and_whether_they_can_be_reached(cli, tmp_path):
    assert cli("roster").stdout.startswith("No on-call roster (expected at ")
    (tmp_path / "roster.yaml").write_text(ROSTER, encoding="utf-8")
    (tmp_path / "destinations.yaml").write_text("pager.dana: ['json://127.0.0.1:9/dana']\n"
                                                "pager.eli: ['json://127.0.0.1:9/eli']\n", encoding="utf-8")
    now = cli("roster")
    assert now.exit_code == 10
    assert "   head_of_comms          dana (week until 2026-03-16T00:00:00.000Z)\n" in now.stdout
    assert "executive_on_call      morgan (standing)   !! not reachable: pager.morgan is not in the destinations " \
           "file" in now.stdout
    later = json.loads(cli("roster", "--at", "2026-03-14T13:00:00Z", "--json").stdout)
    assert [(r["role"], r["person"], r["reachable"]) for r in later] == [
        ("executive_on_call", "morgan", False), ("head_of_comms", "eli", True)]
    (tmp_path / "roster.yaml").write_text("head_of_comms:\n  - {person: dana, week: 2026-W01}\n", encoding="utf-8")
    nobody = cli("roster")
    assert nobody.exit_code == 10 and "!! head_of_comms          nobody on call" in nobody.stdout
    bad = cli("roster", "--at", "tomorrow")
    assert bad.exit_code == 2 and "--at: 'tomorrow' is not a time with its zone" in bad.stderr


def test_a_failed_page_is_retried_until_someone_acknowledges(cli, clock, store, tmp_path):
    from test_delivery import Hook

    (tmp_path / "roster.yaml").write_text(ROSTER, encoding="utf-8")
    with Hook(status=500) as pager:
        (tmp_path / "destinations.yaml").write_text(f"pager.morgan: ['{pager.url}']\n", encoding="utf-8")
        cli(*VIRAL_START)
        _message(cli)
        _at(clock, 61)
        failed = cli("due")
        assert "!! notice for INC-20260314-001 reply to M1 (x from @patient) to json://127.0.0.1" in failed.stdout
        _at(clock, 62)
        cli("due")
        assert len(pager.received) == 2  # tried again at the next check
        assert cli("ack", INCIDENT).exit_code == 0
        _at(clock, 63)
        cli("due")
        assert len(pager.received) == 2
