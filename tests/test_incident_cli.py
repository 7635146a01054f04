"""The incident commands as a user types them: what is printed, the exit code, what is stored."""

from __future__ import annotations

import json
import random
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import timedelta

import pytest

from conftest import ROOT, VIRAL, VIRAL_START
from engine.incidents import state as inc
from engine.store import open_store

ID = "INC-20260314-001"
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
LOG_LINE = re.compile(rf"^ *(\d+)  ({STAMP})  (\S+) +(\w+) +(.*)$")

DISMISS_BLOCK = """  dismiss:
    from: triage
    to: resolved
    title: Not about us, or not genuine
    roles: [incident_lead]
    requires:
      tasks: [confirm_post, check_patient]
"""


def events(db, incident=ID) -> list:
    store = open_store(db)
    try:
        return list(store.events(incident))
    finally:
        store.close()


def snapshot_state(db, incident=ID) -> dict:
    store = open_store(db)
    try:
        return store.snapshot(incident).state
    finally:
        store.close()


def total_events(db) -> int:
    if not db.exists():
        return 0
    store = open_store(db)
    try:
        return sum(1 for i in store.incidents() for _ in store.events(i))
    finally:
        store.close()


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


@pytest.fixture
def started(cli):
    """One viral-complaint incident in triage: alice leads, bob is spokesperson."""
    ok(cli(*VIRAL_START))
    return ID


@pytest.fixture
def closed(cli, started):
    """The incident dismissed into its terminal stage."""
    ok(cli("task", ID, "confirm_post"))
    ok(cli("task", ID, "check_patient"))
    ok(cli("close", ID))
    return ID


# -- the whole job ------------------------------------------------------------------------


def test_start_prints_the_new_incident_its_clocks_and_what_can_happen_next(cli):
    out = ok(cli(*VIRAL_START))
    assert out.startswith(f"Started {ID}.\n\n{ID}  ER wait time complaint  (viral-complaint, critical)\n")
    assert "Stage:    triage - Detect and triage (for 0s, since 2026-03-14T09:00:00.000Z)" in out
    assert re.search(r"incident_lead +alice\n", out) and re.search(r"spokesperson +bob\n", out)
    assert re.search(r"compliance +cora\n", out) and re.search(r"staff_welfare +\(unassigned\)\n", out)
    assert "[ ] confirm_post: Find the original post, screenshot it, note its reach" in out
    assert re.search(r"first public post +due 2026-03-14T10:00:00.000Z, 1h left", out)
    assert re.search(r"leave stage triage +due 2026-03-14T09:15:00.000Z, 15m left", out)
    assert "Next (as alice):" in out
    assert "acknowledge -> acknowledge: blocked\n      - task confirm_post is not done\n" in out
    assert ("dismiss -> resolved: blocked\n      - task confirm_post is not done\n"
            "      - task check_patient is not done\n") in out


def test_status_keeps_the_playbooks_order_of_roles_tasks_and_transitions(cli, started):
    """A checklist is read top to bottom: the order the playbook gives is kept after storage."""
    out = ok(cli("status", ID))
    roles = re.findall(r"^  (\w+) +(?:\w+|\(unassigned\))$", out, re.M)
    assert roles == ["incident_lead", "spokesperson", "compliance", "social_media", "patient_relations", "staff_welfare"]
    assert re.findall(r"^  \[ \] (\w+):", out, re.M) == ["confirm_post", "check_patient", "alert_team", "check_staff_named"]
    assert re.findall(r"^  (\w+) -> ", out, re.M) == ["acknowledge", "dismiss"]
    data = json.loads(ok(cli("status", ID, "--json")))
    assert list(data["roles"]) == roles
    assert list(data["tasks"]) == ["confirm_post", "check_patient", "alert_team", "check_staff_named"]


def test_an_incident_is_dismissed_reopened_investigated_and_answered(cli, clock, db, started):
    """The dismiss path to resolved, back to investigate, and on to respond."""
    clock.advance(timedelta(minutes=2))
    assert ok(cli("task", ID, "confirm_post")) == f"{ID}: task confirm_post done.\n"
    out = ok(cli("status", ID))
    assert "[x] confirm_post: Find the original post, screenshot it, note its reach  (alice, 2026-03-14T09:02:00.000Z)" in out
    assert f"acknowledge -> acknowledge: ready  (playbook advance {ID} acknowledge)" in out
    ok(cli("task", ID, "check_patient"))

    clock.advance(timedelta(minutes=3))
    out = ok(cli("advance", ID, "dismiss", "--reason", "not a patient"))
    assert out.startswith(f"{ID}: dismiss -> resolved.\n")
    assert "closed at 2026-03-14T09:05:00.000Z" in out
    assert "No transitions lead out of this stage." not in out  # reopen leads out
    assert f"reopen -> investigate: ready  (playbook advance {ID} reopen)" in out
    assert "Clocks:" not in out  # nothing is due on a closed incident

    clock.advance(timedelta(hours=1))
    assert ok(cli("reopen", ID, "--reason", "it went viral again")) == f"{ID}: reopened (stage investigate).\n"
    ok(cli("assign", ID, "compliance", "carol"))
    ok(cli("task", ID, "gather_facts"))
    ok(cli("task", ID, "privacy_review", "--as", "carol"))
    out = ok(cli("advance", ID, "respond"))
    assert out.startswith(f"{ID}: respond -> respond.\n")
    assert "Stage:    respond - Respond publicly" in out
    assert "resolve -> resolved: blocked\n      - no post of template public_response has been published" in out

    state = snapshot_state(db)
    assert (state["stage"], state["status"]) == ("respond", "open")
    assert [e.type for e in events(db)] == [
        "IncidentStarted", "RoleAssigned", "RoleAssigned", "RoleAssigned", "RoleAssigned",
        "TaskCompleted", "TaskCompleted", "StageChanged", "StageChanged", "RoleAssigned", "TaskCompleted", "TaskCompleted", "StageChanged"]


def test_take_private_waits_until_the_public_acknowledgement_is_published(cli, db, started):
    ok(cli("task", ID, "confirm_post"))
    out = ok(cli("advance", ID, "acknowledge"))
    assert out.startswith(f"{ID}: acknowledge -> acknowledge.\n")
    assert re.search(r"first public post in stage acknowledge +due 2026-03-14T09:45:00.000Z, 45m left", out)
    before = total_events(db)

    r = cli("advance", ID, "take_private")
    assert r.exit_code == 5
    assert r.stdout == ""
    assert f"error: incident {ID}: take_private is blocked; nothing was changed" in r.stderr
    assert "  - no post of template public_ack has been published" in r.stderr
    assert total_events(db) == before


def test_close_and_reopen_follow_the_playbook_and_the_log_shows_every_step(cli, clock, db, started):
    clock.advance(timedelta(seconds=90, milliseconds=250))
    ok(cli("task", ID, "confirm_post"))
    clock.advance(timedelta(minutes=1))
    ok(cli("task", ID, "check_patient", "--as", "bob"))
    ok(cli("note", ID, "Author is not a patient", "--as", "bob"))
    clock.advance(timedelta(minutes=1))
    assert ok(cli("close", ID, "--reason", "not about us")) == f"{ID}: closed (stage resolved).\n"
    clock.advance(timedelta(days=1))
    assert ok(cli("reopen", ID)) == f"{ID}: reopened (stage investigate).\n"

    header, *lines = ok(cli("log", ID)).splitlines()
    assert header == f"Audit log of {ID}"
    parsed = [LOG_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [m.groups() for m in parsed] == [
        ("1", "2026-03-14T09:00:00.000Z", "alice", "IncidentStarted",
         "started from playbook viral-complaint v1.3 in stage triage (critical): ER wait time complaint"),
        ("2", "2026-03-14T09:00:00.000Z", "alice", "RoleAssigned", "assigned alice to incident_lead"),
        ("3", "2026-03-14T09:00:00.000Z", "alice", "RoleAssigned", "assigned bob to spokesperson"),
        ("4", "2026-03-14T09:00:00.000Z", "alice", "RoleAssigned", "assigned cora to compliance"),
        ("5", "2026-03-14T09:00:00.000Z", "alice", "RoleAssigned", "assigned petra to patient_relations"),
        ("6", "2026-03-14T09:01:30.250Z", "alice", "TaskCompleted", "completed task confirm_post"),
        ("7", "2026-03-14T09:02:30.250Z", "bob", "TaskCompleted", "completed task check_patient"),
        ("8", "2026-03-14T09:02:30.250Z", "bob", "NoteAdded", "note: Author is not a patient"),
        ("9", "2026-03-14T09:03:30.250Z", "alice", "StageChanged",
         "dismiss: triage -> resolved (not about us)"),
        ("10", "2026-03-15T09:03:30.250Z", "alice", "StageChanged", "reopen: resolved -> investigate"),
    ]

    as_json = [json.loads(line) for line in ok(cli("log", ID, "--json")).splitlines()]
    assert [e["seq"] for e in as_json] == list(range(1, 11))
    assert set(as_json[0]) == {"incident", "seq", "type", "at", "actor", "data", "prev", "hash"}
    assert all(e["prev"] == p["hash"] for p, e in zip(as_json, as_json[1:]))


def test_the_projection_after_a_cli_session_is_the_fold_of_its_log(cli, db, started):
    for args in (["task", ID, "confirm_post"], ["note", ID, "hi"], ["assign", ID, "compliance", "carol"],
                 ["set", ID, "patient_name=Jane Roe"], ["task", ID, "check_patient"], ["close", ID],
                 ["reopen", ID], ["unassign", ID, "compliance", "carol"]):
        ok(cli(*args))
    assert inc.replay(events(db)) == snapshot_state(db)


# -- the playbook is pinned at start ------------------------------------------------------------


def test_editing_the_playbook_file_does_not_change_a_running_incident(cli, tmp_path, db):
    path = tmp_path / "viral.yaml"
    shutil.copy(VIRAL, path)
    ok(cli("start", str(path), *VIRAL_START[2:]))

    text = path.read_text(encoding="utf-8")
    assert DISMISS_BLOCK in text
    path.write_text(text.replace("title: Detect and triage", "title: Renamed in the file")
                        .replace(DISMISS_BLOCK, ""), encoding="utf-8")
    fresh = ok(cli("start", str(path), *VIRAL_START[2:]))  # a new incident gets the new file
    assert "triage - Renamed in the file" in fresh and "dismiss ->" not in fresh

    out = ok(cli("status", ID))
    assert "Stage:    triage - Detect and triage" in out
    assert "dismiss -> resolved: blocked" in out
    ok(cli("task", ID, "confirm_post"))
    ok(cli("task", ID, "check_patient"))
    assert ok(cli("advance", ID, "dismiss")).startswith(f"{ID}: dismiss -> resolved.\n")
    r = cli("advance", "INC-20260314-002", "dismiss")
    assert r.exit_code == 4 and "no transition 'dismiss'" in r.stderr


# -- status and list ------------------------------------------------------------------------------


@pytest.fixture
def three(cli, clock):
    """001 in triage, 002 in acknowledge, 003 closed."""
    for title in ("first", "second", "third"):
        ok(cli(*VIRAL_START[:3], title, *VIRAL_START[4:]))
        clock.advance(timedelta(minutes=1))
    ok(cli("task", "INC-20260314-002", "confirm_post"))
    ok(cli("advance", "INC-20260314-002", "acknowledge"))
    ok(cli("task", "INC-20260314-003", "confirm_post"))
    ok(cli("task", "INC-20260314-003", "check_patient"))
    ok(cli("close", "INC-20260314-003"))


def ids(out: str) -> list[str]:
    return re.findall(r"^(INC-\d{8}-\d{3}) ", out, re.M)


def test_status_without_an_incident_lists_the_open_ones(cli, three):
    out = ok(cli("status"))
    assert ids(out) == ["INC-20260314-001", "INC-20260314-002"]
    assert re.search(r"^INC-20260314-001 +open +triage +3m +first$", out, re.M)
    assert re.search(r"^INC-20260314-002 +open +acknowledge +0s +second$", out, re.M)


def test_list_all_includes_closed_incidents_and_filters_by_stage_and_playbook(cli, three):
    assert ids(ok(cli("list"))) == ["INC-20260314-001", "INC-20260314-002"]
    out = ok(cli("list", "--all"))
    assert ids(out) == ["INC-20260314-001", "INC-20260314-002", "INC-20260314-003"]
    assert re.search(r"^INC-20260314-003 +closed +resolved ", out, re.M)
    assert ids(ok(cli("list", "--stage", "acknowledge"))) == ["INC-20260314-002"]
    assert ids(ok(cli("list", "--stage", "resolved"))) == []
    assert ids(ok(cli("list", "--all", "--stage", "resolved"))) == ["INC-20260314-003"]
    assert ids(ok(cli("list", "--playbook", "viral-complaint"))) == ["INC-20260314-001", "INC-20260314-002"]
    assert ok(cli("list", "--playbook", "privacy-breach")) == "No incidents.\n"


def test_each_listed_row_shows_its_own_stage_and_simulated_time(cli, clock):
    """The listing works out what rows share once (the padded stage texts, the moment on
    each simulated clock): rows that differ only there still show their own."""
    ok(cli(*VIRAL_START))
    clock.advance(timedelta(minutes=1))
    ok(cli(*VIRAL_START))
    ok(cli("task", "INC-20260314-002", "confirm_post"))
    ok(cli("advance", "INC-20260314-002", "acknowledge"))
    for ahead in ("45m", "10m"):
        ok(cli("drill", *VIRAL_START[1:]))
        ok(cli("advance-clock", f"DRILL-20260314-00{1 if ahead == '45m' else 2}", ahead))
    clock.advance(timedelta(minutes=2))
    lines = ok(cli("list")).splitlines()
    assert lines == [
        "INC-20260314-001   open   triage                  3m  ER wait time complaint",
        "INC-20260314-002   open   acknowledge             2m  ER wait time complaint",
        "DRILL-20260314-001 DRILL open   triage                 47m  ER wait time complaint  1 overdue",
        "DRILL-20260314-002 DRILL open   triage                 12m  ER wait time complaint",
    ]


def test_an_empty_database_lists_no_incidents(cli):
    assert ok(cli("status")) == "No incidents.\n"
    assert json.loads(ok(cli("list", "--json"))) == []


STATUS_KEYS = {"id", "title", "drill", "severity", "status", "playbook", "stage", "stage_title",
               "stage_entered_at", "started_at", "roles", "tasks", "clocks", "transitions", "recipients", "events"}


def test_status_json_has_the_documented_keys(cli, started):
    ok(cli("task", ID, "confirm_post"))
    data = json.loads(ok(cli("status", ID, "--json")))
    assert set(data) == STATUS_KEYS
    assert data["id"] == ID and data["stage"] == "triage" and data["events"] == 6
    assert data["roles"] == {"incident_lead": ["alice"], "spokesperson": ["bob"], "compliance": ["cora"],
                             "social_media": [], "patient_relations": ["petra"], "staff_welfare": []}
    assert data["tasks"]["confirm_post"] == {"by": "alice", "at": "2026-03-14T09:00:00.000Z"}
    assert data["tasks"]["check_patient"] is None and data["tasks"]["alert_team"] is None
    assert data["transitions"] == {
        "acknowledge": {"to": "acknowledge", "blocked_by": []},
        "dismiss": {"to": "resolved", "blocked_by": ["task check_patient is not done"]},
    }
    assert [c["key"] for c in data["clocks"]] == ["target:first_public_post", "stage:triage:deadline"]
    assert data["clocks"][1] == {"key": "stage:triage:deadline", "label": "leave stage triage",
                                 "kind": "stage", "stage": "triage", "visit": 1,
                                 "from": "entering triage", "from_at": "2026-03-14T09:00:00.000Z",
                                 "due_at": "2026-03-14T09:15:00.000Z", "met_at": None, "closed_at": None,
                                 "outcome": "open", "overdue": False, "late_seconds": 0, "seconds_left": 900}


def test_blockers_in_status_json_are_those_of_the_person_asking(cli, started):
    data = json.loads(ok(cli("status", ID, "--json", "--as", "bob")))
    assert data["transitions"]["acknowledge"]["blocked_by"] == [
        "bob does not hold a role allowed to fire it (incident_lead)", "task confirm_post is not done"]


def test_list_json_and_command_json_outputs_parse(cli, three):
    listed = json.loads(ok(cli("list", "--all", "--json")))
    assert [d["id"] for d in listed] == ["INC-20260314-001", "INC-20260314-002", "INC-20260314-003"]
    assert all(set(d) == STATUS_KEYS for d in listed)
    assert json.loads(ok(cli("status", "--json")))[1]["stage"] == "acknowledge"
    started = json.loads(ok(cli(*VIRAL_START, "--json")))
    assert started["id"] == "INC-20260314-004"
    assert json.loads(ok(cli("task", started["id"], "confirm_post", "--json")))["tasks"]["confirm_post"]
    moved = json.loads(ok(cli("advance", started["id"], "acknowledge", "--json")))
    assert moved["stage"] == "acknowledge"
    assert json.loads(ok(cli("assign", started["id"], "compliance", "carol", "--json")))["roles"]["compliance"] == ["cora", "carol"]


def test_clocks_show_time_left_then_overdue_once_the_deadline_passes(cli, clock, started):
    clock.advance(timedelta(minutes=14))
    assert re.search(r"leave stage triage +due 2026-03-14T09:15:00.000Z, 1m left", ok(cli("status", ID)))
    clock.advance(timedelta(minutes=2, seconds=30))
    out = ok(cli("status", ID))
    assert re.search(r"leave stage triage +OVERDUE by 1m30s \(due 2026-03-14T09:15:00.000Z\)", out)
    assert re.search(r"first public post +due 2026-03-14T10:00:00.000Z, 43m30s left", out)
    clock_json = json.loads(ok(cli("status", ID, "--json")))["clocks"][1]
    assert clock_json["overdue"] is True and clock_json["seconds_left"] == -90
    assert re.search(rf"^{ID} .* 1 overdue$", ok(cli("list")), re.M)


def test_a_new_stage_restarts_its_clock(cli, clock, started):
    clock.advance(timedelta(minutes=20))
    ok(cli("task", ID, "confirm_post"))
    out = ok(cli("advance", ID, "acknowledge"))
    assert "OVERDUE" not in out
    assert re.search(r"first public post in stage acknowledge +due 2026-03-14T10:05:00.000Z, 45m left", out)
    assert re.search(r"first public post +due 2026-03-14T10:00:00.000Z, 40m left", out)


# -- bad input: a clear message, the documented exit code, nothing written ---------------------------


def typed_playbook(tmp_path):
    """viral-complaint with an integer and a datetime input added."""
    path = tmp_path / "typed.yaml"
    text = VIRAL.read_text(encoding="utf-8").replace(
        "inputs:\n", "inputs:\n  reach:\n    type: integer\n  posted_at:\n    type: datetime\n", 1)
    path.write_text(text, encoding="utf-8")
    return str(path)


def start_with(*replace: tuple[str, str], extra: tuple[str, ...] = ()) -> list[str]:
    """VIRAL_START with some arguments replaced (or dropped, with None) and some added."""
    args = list(VIRAL_START)
    for old, new in replace:
        i = args.index(old)
        if new is None:
            del args[i - 1:i + 1]
        else:
            args[i] = new
    return args + list(extra)


BAD = [
    # (case, commands run first, command, exit code, what stderr must say)
    ("unknown incident", [], ["task", "INC-20990101-001", "confirm_post"], 4,
     ["no incident 'INC-20990101-001' in this database"]),
    ("unknown incident status", [], ["status", "INC-20990101-001"], 4, ["no incident 'INC-20990101-001'"]),
    ("unknown incident log", [], ["log", "nope"], 4, ["no incident 'nope'"]),
    ("unknown trigger", [], ["advance", ID, "escalate"], 4,
     ["no transition 'escalate'", "possible from triage: acknowledge, dismiss"]),
    ("trigger from another stage", [], ["advance", ID, "respond"], 5,
     ["respond cannot be fired from stage triage", "it leads from investigate"]),
    ("actor lacks the role", [["task", ID, "confirm_post"]], ["advance", ID, "acknowledge", "--as", "bob"], 5,
     ["acknowledge is blocked", "bob does not hold a role allowed to fire it (incident_lead)"]),
    ("every unmet guard", [], ["advance", ID, "dismiss", "--as", "bob"], 5,
     ["  - bob does not hold a role allowed to fire it (incident_lead)",
      "  - task confirm_post is not done", "  - task check_patient is not done"]),
    ("malformed --set", [], ["set", ID, "foo"], 2, ["set expects NAME=VALUE, got 'foo'"]),
    ("malformed --set at start", [], start_with(extra=("--set", "foo")), 2,
     ["--set expects NAME=VALUE, got 'foo'"]),
    ("malformed --assign at start", [], start_with(extra=("--assign", "compliance")), 2,
     ["--assign expects NAME=VALUE, got 'compliance'"]),
    ("unknown input", [], ["set", ID, "colour=red"], 2, ["unknown input 'colour'", "hospital_name"]),
    ("url not http", [], ["set", ID, "complaint_url=ftp://x"], 2,
     ["input 'complaint_url' (url): 'ftp://x' is not an http(s) URL"]),
    ("enum not in values", [], ["set", ID, "complaint_channel=tiktok"], 2,
     ["input 'complaint_channel' (enum): 'tiktok' is not one of x, facebook, bluesky, instagram, google_reviews"]),
    ("bad url at start", [], start_with(("complaint_url=https://x.com/patient/status/1", "complaint_url=ftp://x")), 2,
     ["is not an http(s) URL"]),
    ("missing required input", [], start_with(("complaint_url=https://x.com/patient/status/1", None)), 2,
     ["missing required input(s): complaint_url", "--set complaint_url=..."]),
    ("missing required role", [], start_with(("spokesperson=bob", None)), 2,
     ["roles required to start are not filled: spokesperson", "--assign spokesperson=NAME"]),
    ("unknown role at start", [], start_with(extra=("--assign", "janitor=dan")), 2,
     ["unknown role 'janitor'", "incident_lead, spokesperson, compliance"]),
    ("unknown role in assign", [], ["assign", ID, "janitor", "dan"], 2, ["unknown role 'janitor'"]),
    ("unknown severity", [], start_with(extra=("--severity", "apocalyptic")), 2,
     ["severity 'apocalyptic' is not one of moderate, high, critical"]),
    ("empty title", [], start_with(("ER wait time complaint", "  ")), 2, ["--title must be 1 to 200 characters"]),
    ("empty note", [], ["note", ID, " "], 2, ["a note must be 1 to 10000 characters"]),
    ("task of another stage", [], ["task", ID, "gather_facts"], 5,
     ["task gather_facts belongs to stage investigate, and the incident is in triage"]),
    ("unknown task", [], ["task", ID, "make_tea"], 4,
     ["no task 'make_tea'", "tasks of stage triage: confirm_post, check_patient, alert_team"]),
    ("task already done", [["task", ID, "confirm_post"]], ["task", ID, "confirm_post"], 5,
     ["task confirm_post is already done"]),
    ("task reopened while open", [], ["task", ID, "confirm_post", "--undone"], 5,
     ["task confirm_post is already open"]),
    ("only holder of a required role", [], ["unassign", ID, "spokesperson", "bob"], 5,
     ["spokesperson is a required role and bob is its only holder", f"playbook assign {ID} spokesperson NAME"]),
    ("assign by an outsider", [], ["assign", ID, "compliance", "carol", "--as", "carol"], 5,
     ["only holders of incident_lead may assign roles; carol holds no role"]),
    ("a spokesperson granting themselves the lead", [], ["assign", ID, "incident_lead", "bob", "--as", "bob"], 5,
     ["only holders of incident_lead may assign roles; bob holds spokesperson"]),
    ("a spokesperson removing the lead", [], ["unassign", ID, "incident_lead", "alice", "--as", "bob"], 5,
     ["only holders of incident_lead may change roles"]),
    ("close with no closing transition", [["task", ID, "confirm_post"], ["advance", ID, "acknowledge"]],
     ["close", ID], 5, ["no transition from stage acknowledge closes the incident", "take_private"]),
    ("reopen an open incident", [], ["reopen", ID], 5, [f"incident {ID} is not closed (stage triage)"]),
    ("missing playbook file", [], start_with((str(VIRAL), "no-such-playbook.yaml")), 4,
     ["no-such-playbook.yaml: no such playbook file"]),
]


@pytest.mark.parametrize("case, before, command, code, says", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_clearly_and_changes_nothing(cli, db, started, case, before, command, code, says):
    for args in before:
        ok(cli(*args))
    count = total_events(db)
    r = cli(*command)
    assert r.exit_code == code, r.output
    assert r.stdout == ""
    assert r.stderr.startswith("error: ")
    for text in says:
        assert text in r.stderr
    assert "Traceback" not in r.stderr
    assert total_events(db) == count


@pytest.mark.parametrize("value, says", [
    ("reach=ten", "input 'reach' (integer): 'ten' is not a whole number"),
    ("posted_at=2026-03-14T08:00:00", "input 'posted_at' (datetime): '2026-03-14T08:00:00' has no time zone"),
])
def test_badly_typed_values_are_usage_errors(cli, db, tmp_path, value, says):
    typed = typed_playbook(tmp_path)
    r = cli(*start_with((str(VIRAL), typed), extra=("--set", value)))
    assert r.exit_code == 2 and says in r.stderr and r.stdout == ""
    assert total_events(db) == 0
    ok(cli(*start_with((str(VIRAL), typed), extra=("--set", "reach=10", "--set", "posted_at=2026-03-14T09:00:00+01:00"))))
    assert snapshot_state(db)["inputs"]["posted_at"] == "2026-03-14T08:00:00Z"
    r = cli("set", ID, value)
    assert r.exit_code == 2 and says in r.stderr
    assert total_events(db) == 5  # started, and four role holders


@pytest.mark.parametrize("command", [
    ["task", ID, "alert_team"],
    ["assign", ID, "compliance", "carol"],
    ["unassign", ID, "spokesperson", "bob"],
    ["set", ID, "patient_name=Jane Roe"],
    ["advance", ID, "acknowledge"],
    ["close", ID],
])
def test_a_closed_incident_refuses_changes(cli, db, closed, command):
    count = total_events(db)
    r = cli(*command)
    assert r.exit_code == 5
    assert f"error: incident {ID} is closed (stage resolved)" in r.stderr
    assert f"playbook reopen {ID}" in r.stderr
    assert total_events(db) == count


def test_an_invalid_playbook_is_reported_with_file_line_and_column(cli, db, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(VIRAL.read_text(encoding="utf-8").replace("within: 15m", "within: soon"), encoding="utf-8")
    r = cli(*start_with((str(VIRAL), str(bad))))
    assert r.exit_code == 3
    assert re.search(rf"{re.escape(str(bad))}:\d+:\d+: stages\.triage\.deadline\.within: 'soon' is not a duration",
                     r.stderr)
    assert total_events(db) == 0


def test_a_missing_command_argument_is_a_usage_error(cli, started):
    r = cli("advance", ID)
    assert r.exit_code == 2 and "Missing argument 'TRIGGER'" in r.stderr


# -- databases that are not ours --------------------------------------------------------------------


@pytest.mark.parametrize("content", [
    random.Random(7).randbytes(4096),
    b"SQLite format 3\x00" + random.Random(8).randbytes(4080),
], ids=["random bytes", "sqlite header then garbage"])
@pytest.mark.parametrize("command", [["status"], ["status", ID], VIRAL_START, ["task", ID, "confirm_post"]],
                         ids=["status", "status id", "start", "task"])
def test_a_corrupt_database_is_refused_and_left_untouched(cli, db, content, command):
    db.write_bytes(content)
    r = cli(*command)
    assert r.exit_code == 8, r.output
    assert r.stdout == "" and r.stderr.startswith("error: ") and str(db) in r.stderr
    assert db.read_bytes() == content
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_a_database_of_another_program_is_refused_and_left_untouched(cli, db):
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    conn.commit()
    conn.close()
    content = db.read_bytes()
    for command in (["list", "--all"], VIRAL_START):
        r = cli(*command)
        assert r.exit_code == 8
        assert "belongs to another program (tables: customers)" in r.stderr
    assert db.read_bytes() == content


# -- start-up stays light ---------------------------------------------------------------------------------


PROBE = """
import sys
import cli
try:
    cli.main(sys.argv[1:], standalone_mode=False)
finally:
    heavy = {"pydantic", "yaml", "jinja2", "transitions", "cryptography"}
    print("HEAVY=" + ",".join(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


@pytest.mark.parametrize("command", [
    ["status", ID], ["status"], ["list", "--all", "--json"], ["log", ID], ["--help"],
], ids=["status id", "status", "list", "log", "help"])
def test_reading_commands_import_no_heavy_library(cli, db, started, command):
    """`status`, `list`, `log` and `--help` run without pydantic, YAML, Jinja2, transitions or crypto."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *command], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "", "PLAYBOOK_DB": str(db), "PLAYBOOK_ACTOR": "alice", "HOME": str(db.parent)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "HEAVY="


def test_huge_durations_are_clear_errors_not_crashes(cli, tmp_path):
    from conftest import VIRAL

    text = VIRAL.read_text(encoding="utf-8").replace("deadline: 4h", "deadline: 99999999999999999d")
    path = tmp_path / "huge.yaml"
    path.write_text(text, encoding="utf-8")
    result = cli("validate", str(path))
    assert result.exit_code == 3
    assert "is longer than a year" in result.stdout
    assert cli("due", "--within", "99999999999999999999d").exit_code == 2


def test_notes_need_a_role_in_the_incident(cli, store):
    cli(*VIRAL_START)
    result = cli("note", "INC-20260314-001", "hello", "--as", "mallory")
    assert result.exit_code == 5
    assert "mallory holds no role" in result.stderr


def test_a_public_key_file_that_is_not_pem_is_refused(cli, tmp_path):
    bad = tmp_path / "key.pem"
    bad.write_bytes(b"\xff\xfe not a key")
    result = cli("verify", "--public-key", str(bad))
    assert result.exit_code == 7
    assert "not a PEM public key" in result.stderr
