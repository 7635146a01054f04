"""Who may do what (engine/incidents/policy.py), as one table a reader can check against the
README's "Who may do what".

Each row is an action and its outcome for five actors: a person holding no role in
the incident (zed), a person holding a role that is not the one the action needs
(petra, patient relations), a person holding the right role, a ``system:`` name, and
the right person on a closed incident. Outcomes are the CLI's exit codes (0 done,
5 refused, 2 a ``system:`` name refused at the edge); the ``system:`` column is also
checked through the engine, called from code, where it raises Refused and changes
nothing. ``-`` marks a column that does not apply.
"""

from __future__ import annotations

import pytest

from conftest import VIRAL, VIRAL_START

INC, DRILL = "INC-20260314-001", "DRILL-20260314-001"
POST = "staff_support/email/en"
ENGINE_NAME = "system:clock"
_ = None  # does not apply

#          action          no role  wrong role  right role  system:  closed
MATRIX = [("start",          0,       _,          0,          2,       _),
          ("assign",         5,       5,          0,          2,       5),
          ("unassign",       5,       5,          0,          2,       5),
          ("task",           5,       0,          0,          2,       5),
          ("note",           5,       0,          0,          2,       0),
          ("set",            5,       0,          0,          2,       5),
          ("advance",        5,       5,          0,          2,       5),
          ("close",          5,       5,          0,          2,       5),
          ("reopen",         5,       5,          0,          2,       0),
          ("render",         5,       0,          0,          2,       5),
          ("edit",           5,       0,          0,          2,       5),
          ("approve",        5,       5,          0,          2,       5),
          ("reject",         5,       5,          0,          2,       5),
          ("publish",        5,       0,          0,          2,       5),
          ("deliver",        5,       0,          0,          2,       0),
          ("advance_clock",  5,       5,          0,          2,       5),
          ("read",           0,       0,          0,          _,       0)]

#: who is "right" for each action; petra (patient relations) is "wrong" for the actions
#: a role decides (she is right where any role will do); alice gave herself incident_lead
#: at start, so she may manage the incident but not approve as incident_lead
RIGHT = {"start": "alice", "assign": "alice", "unassign": "alice", "task": "bob", "note": "bob",
         "set": "bob", "advance": "alice", "close": "alice", "reopen": "alice", "render": "bob",
         "edit": "petra", "approve": "cora", "reject": "cora", "publish": "petra", "deliver": "petra",
         "advance_clock": "alice", "read": "alice"}

DRILL_START = ["drill", *VIRAL_START[1:]]
RENDERED = [["render", INC, "staff_support", "--as", "bob"]]
PUBLISHED = RENDERED + [["approve", INC, POST, "--version", "1", "--as", "cora"],
                        ["publish", INC, POST, "--as", "bob"]]
CLOSE = [["task", "{id}", "confirm_post", "--as", "alice"], ["task", "{id}", "check_patient", "--as", "alice"],
         ["close", "{id}", "--as", "alice"]]

#: what each action needs before it can be done (after start), and the command itself
SETUP = {"unassign": [["assign", INC, "social_media", "sam", "--as", "alice"]],
         "advance": [["task", INC, "confirm_post", "--as", "alice"]],
         "close": CLOSE[:2], "reopen": CLOSE, "render": [], "edit": RENDERED, "approve": RENDERED,
         "reject": RENDERED, "publish": PUBLISHED[:2], "deliver": PUBLISHED}
COMMAND = {"start": VIRAL_START[:-2], "assign": ["assign", INC, "social_media", "sam"],
           "unassign": ["unassign", INC, "social_media", "sam"], "task": ["task", INC, "alert_team"],
           "note": ["note", INC, "checked"], "set": ["set", INC, "hospital_name=St Anne's"],
           "advance": ["advance", INC, "acknowledge"], "close": ["close", INC], "reopen": ["reopen", INC],
           "render": ["render", INC, "internal_alert"], "edit": ["edit", INC, POST, "--text", "Team: see the post."],
           "approve": ["approve", INC, POST, "--version", "1"], "reject": ["reject", INC, POST, "--reason", "no"],
           "publish": ["publish", INC, POST], "deliver": ["deliver", INC, POST],
           "advance_clock": ["advance-clock", DRILL, "10m"], "read": ["status", INC]}

ACTORS = ("no role", "wrong role", "right role", "system:", "closed")
CASES = [pytest.param(row[0], actor, code, id=f"{row[0]}-{actor}")
         for row in MATRIX for actor, code in zip(ACTORS, row[1:]) if code is not None]


@pytest.fixture
def hook(tmp_path, monkeypatch):
    """A destination for the email channel that accepts every delivery."""
    from test_delivery import Hook

    with Hook() as h:
        path = tmp_path / "destinations.yaml"
        path.write_text(f"email:\n  - {h.url}\n", encoding="utf-8")
        yield path


def _prepare(cli, action: str, closed: bool) -> None:
    if action == "start":
        return
    iid = DRILL if action == "advance_clock" else INC
    fill = lambda steps: [[a.format(id=iid) for a in step] for step in steps]  # noqa: E731
    steps = fill([DRILL_START if action == "advance_clock" else VIRAL_START, *SETUP.get(action, [])])
    if closed and action != "reopen":
        steps += [step for step in fill(CLOSE) if step not in steps]
    for step in steps:
        result = cli(*step)
        assert result.exit_code == 0, (step, result.output)


def _run(cli, action: str, name: str, hook, monkeypatch):
    if action == "deliver":
        monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(hook))
    return cli(*COMMAND[action], "--as", name) if action != "read" else cli(*COMMAND[action])


@pytest.mark.parametrize("action, actor, code", CASES)
def test_who_may_do_what_through_the_cli(cli, db, action, actor, code, hook, monkeypatch):
    _prepare(cli, action, closed=actor == "closed")
    name = {"no role": "zed", "wrong role": "petra", "system:": ENGINE_NAME}.get(actor, RIGHT[action])
    if action == "read" and actor != "right role":  # reading takes no --as: anyone who can open the file
        monkeypatch.setenv("PLAYBOOK_ACTOR", name)
    before = _count(db, action)
    result = _run(cli, action, name, hook, monkeypatch)
    assert result.exit_code == code, result.output
    if code == 5:
        assert (name in result.output) if actor != "closed" else ("is closed" in result.output)
        assert _count(db, action) == before, "a refused action appends nothing"
    if code == 2:
        assert "reserved for the engine" in result.output


def _count(db, action):
    from engine.store import open_store

    if action == "start" or not db.exists():
        return None
    with_store = open_store(db)
    try:
        return len(list(with_store.events(DRILL if action == "advance_clock" else INC)))
    finally:
        with_store.close()


# -- the system: column, called from code ----------------------------------------------


def _engine_call(action: str, tmp_path):
    """How code calls each action (as the CLI does), for a given actor."""
    from engine.clocks import drills
    from engine.posts import versions as posts, release
    from engine.incidents import service
    from engine.format.loader import load_playbook

    calls = {
        "start": lambda s, c, a: service.start(s, c, a, load_playbook(VIRAL), title="t", inputs={
            "complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"},
            assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora",
                    "patient_relations": "petra"}),
        "assign": lambda s, c, a: service.assign(s, c, a, INC, "social_media", "sam"),
        "unassign": lambda s, c, a: service.unassign(s, c, a, INC, "social_media", "sam"),
        "task": lambda s, c, a: service.task(s, c, a, INC, "alert_team"),
        "note": lambda s, c, a: service.note(s, c, a, INC, "checked"),
        "set": lambda s, c, a: service.set_inputs(s, c, a, INC, {"hospital_name": "St Anne's"}),
        "advance": lambda s, c, a: service.advance(s, c, a, INC, "acknowledge"),
        "close": lambda s, c, a: service.close(s, c, a, INC),
        "reopen": lambda s, c, a: service.reopen(s, c, a, INC),
        "render": lambda s, c, a: posts.render(s, c, a, INC, "staff_support"),
        "edit": lambda s, c, a: posts.edit(s, c, a, INC, POST, text="Team: see the post."),
        "approve": lambda s, c, a: posts.approve(s, c, a, INC, POST, version=1),
        "reject": lambda s, c, a: posts.reject(s, c, a, INC, POST, "no"),
        "publish": lambda s, c, a: release.publish(s, c, a, INC, POST, tmp_path / "outbox"),
        "deliver": lambda s, c, a: release.deliver(s, c, a, INC, POST, {"email": ["json://127.0.0.1:9/hook"]}),
        "advance_clock": lambda s, c, a: drills.advance_clock(s, c, a, DRILL, 600),
    }
    return calls[action]


@pytest.mark.parametrize("action", [row[0] for row in MATRIX if row[4] is not None])
def test_a_system_name_is_refused_by_the_engine_itself(cli, db, clock, tmp_path, action):
    """Not only the CLI: code calling the engine with a system: name is refused too,
    before anything is appended (every human action; the engine's own are below)."""
    from engine.errors import Refused
    from engine.store import open_store

    _prepare(cli, action, closed=False)
    before = _count(db, action)
    store = open_store(db)
    try:
        with pytest.raises(Refused, match="names starting with 'system:' are reserved"):
            _engine_call(action, tmp_path)(store, clock, ENGINE_NAME)
    finally:
        store.close()
    assert _count(db, action) == before
    if action == "start":
        assert not open_store(db).incidents()


@pytest.mark.parametrize("action, actor, allowed", [
    ("record_due", "system:clock", True), ("record_due", "alice", False),
    ("escalate", "system:clock", True), ("escalate", "alice", False)])
def test_the_engine_s_own_actions_take_only_system_names(cli, db, action, actor, allowed):
    from engine.incidents import policy
    from engine.errors import Refused
    from engine.incidents.service import status
    from engine.store import open_store

    assert cli(*VIRAL_START).exit_code == 0
    store = open_store(db)
    try:
        state = status(store, INC)
    finally:
        store.close()
    if allowed:
        policy.require(state, actor, action)
    else:
        with pytest.raises(Refused, match=f"only the engine may .*; {actor} is a person"):
            policy.require(state, actor, action)


def test_missed_deadlines_are_still_recorded_by_the_engine(cli, clock):
    """The reservation does not stop the engine's own actor: a missed clock is recorded
    and escalated as system:clock (triage's 15 minutes)."""
    from datetime import timedelta

    assert cli(*VIRAL_START).exit_code == 0
    clock.advance(timedelta(minutes=16))
    assert cli("due").exit_code == 9
    log = cli("log", INC, "--json").stdout
    assert '"DeadlineBreached"' in log and '"system:clock"' in log

