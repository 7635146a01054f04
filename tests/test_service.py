"""The incident use cases, called as the CLI calls them: store, clock and actor passed in."""

from __future__ import annotations

import random
import shutil
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import NotFound, PlaybookError, Refused, UsageError
from engine.format.loader import load_playbook
from engine.incidents import state as inc
from engine.incidents import service
from engine.store import open_store

from conftest import T0, VIRAL

ID = "INC-20260314-001"
INPUTS = {"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"}
PEOPLE = {"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"}


def start(store, clock, loaded, **kw) -> dict:
    args = {"title": "ER wait time complaint", "inputs": dict(INPUTS), "assign": dict(PEOPLE)}
    args.update(kw)
    return service.start(store, clock, "alice", loaded, **args)


def types(store, incident=ID) -> list[str]:
    return [e.type for e in store.events(incident)]


def assert_projection_is_the_fold(store, incident=ID) -> None:
    events = list(store.events(incident))
    snap = store.snapshot(incident)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert snap.seq == len(events) and snap.head == events[-1].hash
    assert inc.replay(events) == snap.state


# -- start --------------------------------------------------------------------------


def test_start_records_the_incident_and_its_role_holders(store, clock, viral):
    state = start(store, clock, viral)
    assert state["id"] == ID
    assert state["stage"] == "triage" and state["status"] == "open"
    assert state["severity"] == "critical"  # the playbook's highest, by default
    assert state["roles"] == {"incident_lead": ["alice"], "spokesperson": ["bob"],
                              "compliance": ["cora"], "patient_relations": ["petra"]}
    assert state["inputs"] == {**INPUTS, "hospital_name": "St Mary's Hospital",
                               "contact_url": "https://example-hospital.org/feedback"}
    assert state["started_at"] == "2026-03-14T09:00:00.000Z"
    assert types(store) == ["IncidentStarted", "RoleAssigned", "RoleAssigned", "RoleAssigned", "RoleAssigned"]
    assert store.snapshot(ID).state == state


def test_incident_ids_count_up_per_day_and_drills_are_numbered_apart(store, clock, viral):
    assert start(store, clock, viral)["id"] == "INC-20260314-001"
    assert start(store, clock, viral)["id"] == "INC-20260314-002"
    assert start(store, clock, viral, drill=True)["id"] == "DRILL-20260314-001"
    clock.advance(timedelta(days=1))
    assert start(store, clock, viral)["id"] == "INC-20260315-001"


@pytest.mark.parametrize("kw, says", [
    ({"title": "   "}, "--title must be 1 to 200 characters"),
    ({"title": "x" * 201}, "--title must be 1 to 200 characters"),
    ({"severity": "apocalyptic"}, "severity 'apocalyptic' is not one of moderate, high, critical"),
    ({"inputs": {"complaint_channel": "x"}}, "--set complaint_url=..."),
    ({"inputs": {**INPUTS, "colour": "red"}}, "unknown input 'colour'"),
    ({"assign": {"incident_lead": "alice"}}, "--assign spokesperson=NAME"),
    ({"assign": {**PEOPLE, "janitor": "dan"}}, "unknown role 'janitor'"),
    ({"assign": {**PEOPLE, "compliance": "  "}}, "--assign compliance= needs a person's name"),
])
def test_a_bad_start_is_a_usage_error_and_creates_nothing(store, clock, viral, kw, says):
    with pytest.raises(UsageError) as e:
        start(store, clock, viral, **kw)
    assert says in str(e.value)
    assert store.incidents() == []


# -- refusals write nothing ------------------------------------------------------------


def _closed(store, clock, viral):
    start(store, clock, viral)
    service.task(store, clock, "alice", ID, "confirm_post")
    service.task(store, clock, "alice", ID, "check_patient")
    service.close(store, clock, "alice", ID)


REFUSALS = [
    ("unknown incident", NotFound, lambda s, c: service.task(s, c, "alice", "INC-19990101-001", "confirm_post")),
    ("unknown trigger", NotFound, lambda s, c: service.advance(s, c, "alice", ID, "escalate")),
    ("trigger from another stage", Refused, lambda s, c: service.advance(s, c, "alice", ID, "respond")),
    ("guards not met", Refused, lambda s, c: service.advance(s, c, "alice", ID, "dismiss")),
    ("actor lacks the role", Refused, lambda s, c: service.advance(s, c, "bob", ID, "acknowledge")),
    ("unknown task", NotFound, lambda s, c: service.task(s, c, "alice", ID, "make_tea")),
    ("task of another stage", Refused, lambda s, c: service.task(s, c, "alice", ID, "gather_facts")),
    ("task reopened while open", Refused, lambda s, c: service.task(s, c, "alice", ID, "alert_team", done=False)),
    ("outsider assigns", Refused, lambda s, c: service.assign(s, c, "mallory", ID, "compliance", "mallory")),
    ("unknown role", UsageError, lambda s, c: service.assign(s, c, "alice", ID, "janitor", "dan")),
    ("already holds", Refused, lambda s, c: service.assign(s, c, "alice", ID, "spokesperson", "bob")),
    ("only holder of a required role", Refused, lambda s, c: service.unassign(s, c, "alice", ID, "spokesperson", "bob")),
    ("unassign a non-holder", Refused, lambda s, c: service.unassign(s, c, "alice", ID, "compliance", "bob")),
    ("bad input value", UsageError, lambda s, c: service.set_inputs(s, c, "alice", ID, {"complaint_url": "ftp://x"})),
    ("unknown input", UsageError, lambda s, c: service.set_inputs(s, c, "alice", ID, {"colour": "red"})),
    ("outsider sets inputs", Refused, lambda s, c: service.set_inputs(s, c, "mallory", ID, {"patient_name": "x"})),
    ("empty note", UsageError, lambda s, c: service.note(s, c, "alice", ID, "  ")),
    ("reopen an open incident", Refused, lambda s, c: service.reopen(s, c, "alice", ID)),
]


@pytest.mark.parametrize("case, error, action", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_refused_action_appends_nothing(store, clock, viral, case, error, action):
    start(store, clock, viral)
    before = store.snapshot(ID)
    with pytest.raises(error):
        action(store, clock)
    assert store.snapshot(ID) == before
    assert len(list(store.events(ID))) == before.seq


@pytest.mark.parametrize("action", [
    lambda s, c: service.task(s, c, "alice", ID, "gather_facts"),
    lambda s, c: service.assign(s, c, "alice", ID, "compliance", "carol"),
    lambda s, c: service.unassign(s, c, "alice", ID, "spokesperson", "bob"),
    lambda s, c: service.set_inputs(s, c, "alice", ID, {"patient_name": "Jane Roe"}),
    lambda s, c: service.advance(s, c, "alice", ID, "respond"),
    lambda s, c: service.close(s, c, "alice", ID),
], ids=["task", "assign", "unassign", "set", "advance", "close"])
def test_a_closed_incident_refuses_changes(store, clock, viral, action):
    _closed(store, clock, viral)
    before = store.snapshot(ID).seq
    with pytest.raises(Refused, match=f"incident {ID} is closed"):
        action(store, clock)
    assert store.snapshot(ID).seq == before


def test_close_refuses_when_no_transition_from_here_reaches_a_terminal_stage(store, clock, viral):
    start(store, clock, viral)
    service.task(store, clock, "alice", ID, "confirm_post")
    service.advance(store, clock, "alice", ID, "acknowledge")
    with pytest.raises(Refused) as e:
        service.close(store, clock, "alice", ID)
    assert "no transition from stage acknowledge closes the incident" in str(e.value)
    assert e.value.reasons == ["possible from acknowledge: take_private"]


# -- close, reopen and their choices ------------------------------------------------------


def test_close_fires_the_one_closing_transition_and_reopen_the_one_reopening_it(store, clock, viral):
    _closed(store, clock, viral)
    state = store.snapshot(ID).state
    assert (state["stage"], state["status"], state["closed_at"]) == ("resolved", "closed", state["updated_at"])
    clock.advance(timedelta(hours=2))
    state = service.reopen(store, clock, "alice", ID, reason="the patient posted again")
    assert (state["stage"], state["status"], state["closed_at"]) == ("investigate", "open", None)
    last = list(store.events(ID))[-1]
    assert last.type == "StageChanged"
    assert last.data == {"trigger": "reopen", "from": "resolved", "to": "investigate",
                         "reason": "the patient posted again"}
    assert last.at == "2026-03-14T11:00:00.000Z"


@pytest.fixture
def two_ways_out(tmp_path):
    """viral-complaint with a second closing transition out of triage."""
    path = tmp_path / "two-ways.yaml"
    text = VIRAL.read_text(encoding="utf-8").replace(
        "  take_private:\n",
        "  withdraw:\n    from: triage\n    to: resolved\n    roles: [incident_lead]\n"
        "  take_private:\n", 1)
    path.write_text(text, encoding="utf-8")
    return load_playbook(path)


def test_close_asks_which_transition_when_several_close(store, clock, two_ways_out):
    start(store, clock, two_ways_out)
    with pytest.raises(UsageError) as e:
        service.close(store, clock, "alice", ID)
    assert "several transitions from triage can do that (dismiss, withdraw)" in str(e.value)
    assert "--trigger" in str(e.value)
    with pytest.raises(Refused, match="acknowledge is not a transition that closes"):
        service.close(store, clock, "alice", ID, trigger="acknowledge")
    assert service.close(store, clock, "alice", ID, trigger="withdraw")["stage"] == "resolved"


# -- the projection is the fold of the log ----------------------------------------------------


def test_the_projection_equals_the_fold_after_every_step_of_a_full_run(store, clock, viral):
    steps = [
        lambda: start(store, clock, viral),
        lambda: service.assign(store, clock, "alice", ID, "compliance", "carol"),
        lambda: service.task(store, clock, "alice", ID, "confirm_post"),
        lambda: service.task(store, clock, "carol", ID, "alert_team"),
        lambda: service.task(store, clock, "carol", ID, "alert_team", done=False),
        lambda: service.note(store, clock, "bob", ID, "Post has 40k views"),
        lambda: service.set_inputs(store, clock, "alice", ID, {"patient_name": "Jane Roe"}),
        lambda: service.task(store, clock, "alice", ID, "check_patient"),
        lambda: service.close(store, clock, "alice", ID, reason="not a patient"),
        lambda: service.note(store, clock, "carol", ID, "closed after review"),
        lambda: service.reopen(store, clock, "alice", ID),
        lambda: service.task(store, clock, "alice", ID, "gather_facts"),
        lambda: service.task(store, clock, "carol", ID, "privacy_review"),
        lambda: service.unassign(store, clock, "alice", ID, "compliance", "carol"),
        lambda: service.advance(store, clock, "alice", ID, "respond"),
    ]
    for step in steps:
        clock.advance(timedelta(minutes=3))
        returned = step()
        assert returned == store.snapshot(ID).state
        assert_projection_is_the_fold(store)
    state = store.snapshot(ID).state
    assert state["stage"] == "respond" and state["notes"] == 2
    assert state["roles"] == {"incident_lead": ["alice"], "spokesperson": ["bob"],
                              "compliance": ["cora"], "patient_relations": ["petra"]}


NOISE = [
    ("task", "bob", "confirm_post", True), ("task", "carol", "alert_team", True),
    ("task", "alice", "gather_facts", True), ("task", "alice", "make_tea", True),
    ("task", "alice", "confirm_post", False), ("task", "alice", "alert_team", True),
    ("assign", "alice", "compliance", "carol"), ("assign", "alice", "incident_lead", "carol"),
    ("assign", "carol", "spokesperson", "carol"), ("assign", "alice", "janitor", "dan"),
    ("unassign", "alice", "incident_lead", "alice"), ("unassign", "alice", "compliance", "carol"),
    ("unassign", "carol", "incident_lead", "alice"),
    ("note", "bob", "reach is 40k"), ("note", "alice", "  "),
    ("set", "alice", {"patient_name": "Jane Roe"}), ("set", "bob", {"complaint_channel": "facebook"}),
    ("set", "alice", {"complaint_url": "ftp://x"}), ("set", "alice", {"colour": "red"}),
    ("advance", "bob", "dismiss"), ("advance", "alice", "escalate"), ("advance", "carol", "reopen"),
    ("advance", "alice", "resolve"), ("close", "bob"), ("reopen", "alice"),
    ("wait", 60), ("wait", 3600),
]


def choose_action(rnd: random.Random, state: dict) -> tuple:
    """Any action, with a bias towards those that make sense in `state` so that runs get far."""
    sensible = [("task", "alice", t, True) for t in inc.stage_tasks(state)]
    sensible += [("advance", "alice", t) for t in inc.transitions_from_here(state)]
    sensible += [("close", "alice"), ("reopen", "alice")]
    return rnd.choice(sensible * 3 + NOISE)


def _do(store, clock, action) -> None:
    kind, *args = action
    if kind == "wait":
        clock.advance(timedelta(seconds=args[0]))
    elif kind == "task":
        service.task(store, clock, args[0], ID, args[1], done=args[2])
    elif kind == "assign":
        service.assign(store, clock, args[0], ID, args[1], args[2])
    elif kind == "unassign":
        service.unassign(store, clock, args[0], ID, args[1], args[2])
    elif kind == "note":
        service.note(store, clock, args[0], ID, args[1])
    elif kind == "set":
        service.set_inputs(store, clock, args[0], ID, args[1])
    elif kind == "advance":
        service.advance(store, clock, args[0], ID, args[1])
    elif kind == "close":
        service.close(store, clock, args[0], ID)
    elif kind == "reopen":
        service.reopen(store, clock, args[0], ID)


# `viral` is only read, so sharing it between examples is safe.
@settings(derandomize=True, deadline=None, max_examples=60,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_the_projection_equals_the_fold_after_any_sequence_of_actions(tmp_path_factory, viral, seed):
    """Accepted actions append, refused ones append nothing; the projection is always the fold.

    Hypothesis picks the seed of a random walk (a walk drawn action by action from
    Hypothesis itself keeps repeating one action and rarely leaves triage)."""
    from engine.clock import FixedClock

    rnd = random.Random(seed)
    clock = FixedClock(T0)
    store = open_store(tmp_path_factory.mktemp("fold") / "incidents.db")
    done = []
    try:
        start(store, clock, viral)
        for _ in range(rnd.randint(0, 40)):
            before = store.snapshot(ID)
            action = choose_action(rnd, before.state)
            done.append(action)
            try:
                _do(store, clock, action)
            except PlaybookError:
                assert store.snapshot(ID) == before, done
            else:
                assert store.snapshot(ID).seq in (before.seq, before.seq + 1), done
        assert_projection_is_the_fold(store)
    finally:
        store.close()


# -- pinning -------------------------------------------------------------------------------


def test_a_running_incident_keeps_the_playbook_it_started_with(store, clock, tmp_path):
    path = tmp_path / "viral.yaml"
    shutil.copy(VIRAL, path)
    original = path.read_text(encoding="utf-8")
    start(store, clock, load_playbook(path))

    edited = original.replace("title: Detect and triage", "title: Renamed stage")
    edited = edited.replace("  dismiss:\n    from: triage\n    to: resolved\n", "  dismiss:\n    from: respond\n    to: resolved\n")
    path.write_text(edited, encoding="utf-8")
    assert load_playbook(path).sha256 != load_playbook(VIRAL).sha256

    pinned = service.pinned_playbook(store, ID)
    assert pinned.text == original
    assert pinned.playbook.stages["triage"].title == "Detect and triage"
    assert service.status(store, ID)["plan"]["stages"]["triage"]["title"] == "Detect and triage"
    service.task(store, clock, "alice", ID, "confirm_post")
    service.task(store, clock, "alice", ID, "check_patient")
    assert service.advance(store, clock, "alice", ID, "dismiss")["stage"] == "resolved"


def test_pinned_playbook_of_an_unknown_incident_is_not_found(store):
    with pytest.raises(NotFound):
        service.pinned_playbook(store, ID)


# -- reading -----------------------------------------------------------------------------------


def test_list_shows_open_incidents_oldest_first_and_filters(store, clock, viral):
    start(store, clock, viral, title="first")
    clock.advance(timedelta(minutes=5))
    start(store, clock, viral, title="second")
    service.task(store, clock, "alice", "INC-20260314-002", "confirm_post")
    service.advance(store, clock, "alice", "INC-20260314-002", "acknowledge")
    clock.advance(timedelta(minutes=5))
    start(store, clock, viral, title="third")
    service.task(store, clock, "alice", "INC-20260314-003", "confirm_post")
    service.task(store, clock, "alice", "INC-20260314-003", "check_patient")
    service.close(store, clock, "alice", "INC-20260314-003")

    def ids(**kw):
        return [s["id"] for s in service.list_incidents(store, **kw)]

    assert ids() == ["INC-20260314-001", "INC-20260314-002"]
    assert ids(include_closed=True) == ["INC-20260314-001", "INC-20260314-002", "INC-20260314-003"]
    assert ids(stage="acknowledge") == ["INC-20260314-002"]
    assert ids(include_closed=True, stage="resolved") == ["INC-20260314-003"]
    assert ids(playbook="viral-complaint") == ["INC-20260314-001", "INC-20260314-002"]
    assert ids(playbook="privacy-breach") == []


def test_the_log_streams_every_event_oldest_first(store, clock, viral):
    start(store, clock, viral)
    clock.advance(timedelta(seconds=1, milliseconds=234))
    service.note(store, clock, "bob", ID, "seen it")
    events = list(service.log(store, ID))
    assert [(e.seq, e.type, e.actor, e.at) for e in events] == [
        (1, "IncidentStarted", "alice", "2026-03-14T09:00:00.000Z"),
        (2, "RoleAssigned", "alice", "2026-03-14T09:00:00.000Z"),
        (3, "RoleAssigned", "alice", "2026-03-14T09:00:00.000Z"),
        (4, "RoleAssigned", "alice", "2026-03-14T09:00:00.000Z"),
        (5, "RoleAssigned", "alice", "2026-03-14T09:00:00.000Z"),
        (6, "NoteAdded", "bob", "2026-03-14T09:00:01.234Z"),
    ]
    with pytest.raises(NotFound):
        service.log(store, "INC-19990101-001")


# -- two writers ----------------------------------------------------------------------------------


def test_two_stores_on_one_database_see_each_others_events(db, clock, viral):
    """No lost update: each writer acts on the state the other one left."""
    first, second = open_store(db), open_store(db)
    try:
        start(first, clock, viral)
        service.task(second, clock, "alice", ID, "confirm_post")
        state = service.task(first, clock, "alice", ID, "check_patient")
        assert set(state["tasks"]) == {"confirm_post", "check_patient"}
        service.assign(second, clock, "alice", ID, "compliance", "carol")
        service.close(first, clock, "alice", ID)
        with pytest.raises(Refused, match="is closed"):
            service.task(second, clock, "carol", ID, "alert_team")
        for store in (first, second):
            assert types(store) == ["IncidentStarted", "RoleAssigned", "RoleAssigned", "RoleAssigned",
                                    "RoleAssigned", "TaskCompleted", "TaskCompleted", "RoleAssigned", "StageChanged"]
            assert_projection_is_the_fold(store)
    finally:
        first.close()
        second.close()


def test_reopening_requires_the_work_again(store, clock, viral, tmp_path):
    """After a reopen, the stage's tasks are open again and older posts do not satisfy guards."""
    from engine.incidents import state as inc

    state = service.start(store, clock, "alice", viral, title="t",
                          inputs={"complaint_url": "https://x.com/p/1", "complaint_channel": "x"},
                          assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"})
    iid = state["id"]
    # fast-forward a resolved incident: tasks done and public_response published (fold only)
    service.task(store, clock, "alice", iid, "confirm_post")
    service.task(store, clock, "alice", iid, "check_patient")
    service.close(store, clock, "alice", iid, trigger="dismiss")
    reopened = service.reopen(store, clock, "alice", iid)
    assert reopened["stage"] == "investigate" and reopened["reopened_at"]
    late = dict(reopened, published={"public_response": "2026-03-14T08:00:00.000Z"})
    assert "no post of template public_response has been published since the incident was reopened" in \
        inc.blockers(dict(late, stage="respond"), "resolve", "alice")
    service.task(store, clock, "alice", iid, "gather_facts")
    service.task(store, clock, "alice", iid, "privacy_review")
    service.advance(store, clock, "alice", iid, "respond")
    assert store.snapshot(iid).state["stage"] == "respond"


def test_reentering_a_stage_reopens_its_checklist(store, clock, viral):
    from engine.incidents import state as inc

    state = service.start(store, clock, "alice", viral, title="t",
                          inputs={"complaint_url": "https://x.com/p/1", "complaint_channel": "x"},
                          assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"})
    done = inc.apply(state, "TaskCompleted", "2026-03-14T09:01:00.000Z", "alice", {"task": "gather_facts"})
    back = inc.apply(done, "StageChanged", "2026-03-14T09:02:00.000Z", "alice",
                     {"trigger": "reopen", "from": "resolved", "to": "investigate", "reason": ""})
    assert "gather_facts" not in back["tasks"]
