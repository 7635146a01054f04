"""The state machine built from a playbook: no back doors, guards as conditions, built once."""

from __future__ import annotations

import pytest

from engine.errors import NotFound, Refused
from engine.format.plan import compile_plan
from engine.incidents import state as inc
from engine.incidents.machine import fire, machine_for


@pytest.fixture
def plan(viral):
    return compile_plan(viral.playbook, viral.sha256)


def started(plan, *, roles=None, tasks=(), stage=None) -> dict:
    """An incident state folded from events, as the service would build it."""
    state = inc.apply(None, "IncidentStarted", "2026-03-14T09:00:00.000Z", "alice", {
        "incident": "INC-20260314-001", "title": "ER wait time complaint", "severity": "high",
        "drill": False, "inputs": {"complaint_url": "https://x.com/p/1", "complaint_channel": "x"},
        "playbook": {}, "plan": plan,
    })
    for role, person in (roles or {"incident_lead": "alice", "spokesperson": "bob"}).items():
        state = inc.apply(state, "RoleAssigned", "2026-03-14T09:00:00.000Z", "alice",
                          {"role": role, "person": person})
    for t in tasks:
        state = inc.apply(state, "TaskCompleted", "2026-03-14T09:01:00.000Z", "alice", {"task": t})
    if stage is not None:
        state = inc.apply(state, "StageChanged", "2026-03-14T09:02:00.000Z", "alice",
                          {"trigger": "test", "from": state["stage"], "to": stage, "reason": ""})
    return state


class Bare:
    """A model with nothing of its own, to see what the machine adds to it."""


# -- no back doors ----------------------------------------------------------------


def test_the_machine_adds_no_to_stage_methods_to_a_model(plan):
    machine = machine_for(plan)
    model = Bare()
    machine.add_model(model, initial="triage")
    try:
        assert not hasattr(model, "to_resolved")
        assert not hasattr(model, "to_investigate")
        assert [name for name in dir(model) if name.startswith("to_")] == []
    finally:
        machine.remove_model(model)


def test_each_stage_offers_only_the_playbook_triggers_that_leave_it(plan):
    machine = machine_for(plan)
    for stage in plan["stages"]:
        expected = {t for t, tr in plan["transitions"].items() if stage in tr["from"]}
        assert set(machine.get_triggers(stage)) == expected, stage


def test_the_machine_is_built_once_per_playbook_version(viral, plan):
    again = compile_plan(viral.playbook, viral.sha256)
    assert machine_for(again) is machine_for(plan)


def test_a_plan_read_back_from_the_store_finds_the_same_machine(plan):
    """Stored JSON has its keys sorted; that must not build a second machine."""
    import json

    stored = json.loads(json.dumps(plan, sort_keys=True))
    assert list(stored["transitions"]) != list(plan["transitions"])
    assert machine_for(stored) is machine_for(plan)


def test_another_playbook_version_gets_its_own_machine(viral, plan):
    other = dict(plan, sha256="0" * 64)
    assert machine_for(other) is not machine_for(plan)


def test_firing_leaves_no_model_attached_to_the_shared_machine(plan):
    machine = machine_for(plan)
    before = list(machine.models)
    fire(started(plan, tasks=["confirm_post"]), "acknowledge", "alice")
    with pytest.raises(Refused):
        fire(started(plan), "acknowledge", "alice")
    assert list(machine.models) == before


# -- firing ---------------------------------------------------------------------------


def test_firing_an_allowed_trigger_returns_the_new_stage_and_changes_nothing(plan):
    state = started(plan, tasks=["confirm_post"])
    snapshot = repr(state)
    assert fire(state, "acknowledge", "alice") == "acknowledge"
    assert repr(state) == snapshot


def test_a_blocked_trigger_is_refused_with_every_unmet_condition(plan):
    state = started(plan)
    with pytest.raises(Refused) as e:
        fire(state, "dismiss", "bob")
    assert e.value.exit_code == 5
    assert e.value.reasons == [
        "bob does not hold a role allowed to fire it (incident_lead)",
        "task confirm_post is not done",
        "task check_patient is not done",
    ]
    assert "dismiss is blocked" in str(e.value)


def test_a_trigger_that_does_not_lead_from_the_current_stage_is_refused(plan):
    with pytest.raises(Refused) as e:
        fire(started(plan), "respond", "alice")
    assert "respond cannot be fired from stage triage" in str(e.value)
    assert "it leads from investigate" in e.value.reasons
    assert "possible from triage: acknowledge, dismiss" in e.value.reasons


def test_an_unknown_trigger_is_not_found_and_names_the_possible_ones(plan):
    with pytest.raises(NotFound) as e:
        fire(started(plan), "to_resolved", "alice")
    assert e.value.exit_code == 4
    assert "no transition 'to_resolved'" in str(e.value)
    assert "acknowledge, dismiss" in str(e.value)


def test_a_required_publication_blocks_until_the_post_is_published(plan):
    state = started(plan, stage="acknowledge")
    with pytest.raises(Refused) as e:
        fire(state, "take_private", "alice")
    assert e.value.reasons == ["no post of template public_ack has been published"]


def test_a_required_input_without_a_value_blocks(plan):
    state = started(plan, tasks=["confirm_post"])
    state["inputs"]["complaint_url"] = ""
    with pytest.raises(Refused) as e:
        fire(state, "acknowledge", "alice")
    assert e.value.reasons == [
        "input complaint_url has no value (playbook set INC-20260314-001 complaint_url=...)"]


def test_the_reopen_transition_leads_from_the_terminal_stage(plan):
    state = started(plan, tasks=["confirm_post", "check_patient"], stage="resolved")
    assert fire(state, "reopen", "alice") == "investigate"


def test_replaying_a_log_never_fires_the_machine(plan, monkeypatch):
    """History is folded from the recorded StageChanged events, not fired again."""
    from types import SimpleNamespace as Ev

    import engine.incidents.machine

    def boom(*args, **kwargs):  # pragma: no cover - the test fails if it runs
        raise AssertionError("replay used the state machine")

    monkeypatch.setattr(engine.incidents.machine, "fire", boom)
    monkeypatch.setattr(engine.incidents.machine, "machine_for", boom)
    at = "2026-03-14T09:00:00.000Z"
    log = [
        Ev(type="IncidentStarted", at=at, actor="alice", data={
            "incident": "INC-20260314-001", "title": "t", "severity": "high", "drill": False,
            "inputs": {}, "playbook": {}, "plan": plan}),
        Ev(type="StageChanged", at=at, actor="alice",
           data={"trigger": "dismiss", "from": "triage", "to": "resolved", "reason": ""}),
        Ev(type="StageChanged", at=at, actor="alice",
           data={"trigger": "reopen", "from": "resolved", "to": "investigate", "reason": ""}),
    ]
    state = inc.replay(log)
    assert (state["stage"], state["status"], state["events"]) == ("investigate", "open", 3)
