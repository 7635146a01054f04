"""Attacks and slips found by reviewing the guarantees: each one is refused or handled.

Every test here reproduces a path that once got through (see the commit log).
"""

from __future__ import annotations

import json
import unicodedata
from datetime import timedelta

from conftest import PLAYBOOKS, VIRAL_START

INC = "INC-20260314-001"
#: What starting a privacy-breach incident (or drill) takes.
BREACH_START = [
    str(PLAYBOOKS / "privacy-breach.yaml"), "--title", "PB",
    "--set", "discovered_at=2026-03-14T08:00:00Z", "--set", "affected_count=120",
    "--set", "data_categories=names", "--set", "breach_cause=cyberattack",
    "--set", "helpline_phone=+44 20 7946 0001", "--set", "info_url=https://ex.org/b",
    "--assign", "incident_lead=lee", "--assign", "privacy_officer=pat",
    "--assign", "legal=law", "--assign", "spokesperson=sam", "--as", "lee"]


def _events(store, incident=INC):
    return [e.type for e in store.events(incident)]


def _ack_draft(cli):
    """viral-complaint in stage acknowledge with carol drafting public_ack/x/en (v1)."""
    for args in (VIRAL_START, ["assign", INC, "social_media", "carol", "--as", "alice"],
                 ["task", INC, "confirm_post", "--as", "alice"], ["advance", INC, "acknowledge", "--as", "alice"],
                 ["render", INC, "public_ack", "--channel", "x", "--lang", "en", "--as", "carol"]):
        assert cli(*args).exit_code == 0, args


def test_a_confidential_value_set_after_the_draft_still_blocks_approval(cli, store, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(tmp_path / "outbox"))
    _ack_draft(cli)
    cli("edit", INC, "public_ack/x/en", "--text", "We spoke with Bea Jones today.", "--as", "carol")
    assert cli("set", INC, "patient_name=Bea Jones", "--as", "alice").exit_code == 0
    refused = cli("approve", INC, "public_ack/x/en", "--version", "2", "--as", "bob")
    assert refused.exit_code == 5 and "patient_name" in refused.stderr
    assert "PostApproved" not in _events(store)


def test_a_confidential_value_set_after_approval_still_blocks_publishing(cli, store, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(tmp_path / "outbox"))
    _ack_draft(cli)
    cli("edit", INC, "public_ack/x/en", "--text", "We spoke with Bea Jones today.", "--as", "carol")
    assert cli("approve", INC, "public_ack/x/en", "--version", "2", "--as", "bob").exit_code == 0
    assert cli("set", INC, "patient_name=Bea Jones", "--as", "alice").exit_code == 0
    refused = cli("publish", INC, "public_ack/x/en", "--as", "carol")
    assert refused.exit_code == 5 and "confidential input(s) patient_name" in refused.stderr
    assert "PostPublished" not in _events(store)
    assert not (tmp_path / "outbox").exists() or not list((tmp_path / "outbox").rglob("*.json"))


def test_the_confidential_check_sees_through_unicode_forms_and_invisible_characters(cli, store):
    _ack_draft(cli)
    cli("set", INC, "patient_name=Zoë Ramírez", "--as", "alice")
    for text in (unicodedata.normalize("NFD", "We met Zoë Ramírez today."), "We met ZOË\u200b  ramírez."):
        assert cli("edit", INC, "public_ack/x/en", "--text", text, "--as", "carol").exit_code == 0
        post = json.loads(cli("drafts", INC, "--json").stdout)[0]
        assert post["leaks"] == ["patient_name"], text


def test_an_approval_from_before_a_reopen_does_not_allow_publishing_after_it(cli, store, clock, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(tmp_path / "outbox"))
    _ack_draft(cli)
    cli("render", INC, "public_ack", "--channel", "facebook", "--lang", "en", "--as", "carol")
    assert cli("approve", INC, "public_ack/x/en", "--version", "1", "--as", "bob").exit_code == 0
    assert cli("approve", INC, "public_ack/facebook/en", "--version", "1", "--as", "bob").exit_code == 0
    assert cli("publish", INC, "public_ack/x/en", "--as", "carol").exit_code == 0
    # reaching resolved takes the whole playbook; record a reopen the way the engine would
    import pytest

    from engine.incidents import state as inc
    from engine.errors import Refused
    from engine.incidents.events import NewEvent
    from engine.posts.release import publish

    state = store.snapshot(INC).state
    reopening = {"trigger": "reopen", "from": "acknowledge", "to": "acknowledge", "reason": ""}
    later = inc.apply(state, "StageChanged", "2026-03-14T10:00:00.000Z", "alice", reopening)
    assert later["reopened_at"] == "2026-03-14T10:00:00.000Z" and later["tasks"] == {}
    with store.transaction(INC) as tx:  # the projection folded from the event, as publish checks
        tx.append([NewEvent("StageChanged", "2026-03-14T10:00:00.000Z", "alice", reopening)], later)
    with pytest.raises(Refused, match="approved before the incident was reopened"):
        publish(store, clock, "carol", INC, "public_ack/facebook/en", tmp_path / "outbox")


def test_returning_from_rumour_control_keeps_the_respond_checklist(store, clock):
    from engine.incidents import state as inc
    from engine.incidents import service
    from engine.format.loader import load_playbook

    pb = load_playbook(PLAYBOOKS / "medical-tourism.yaml")
    spec = pb.playbook
    state = service.start(store, clock, "lee", pb, title="t", inputs={
        k: "x" for k, v in spec.inputs.items() if v.required and v.type in ("string", "text")} | {
        k: "https://ex.org" for k, v in spec.inputs.items() if v.required and v.type == "url"} | {
        k: v.values[0] for k, v in spec.inputs.items() if v.required and v.type == "enum"} | {
        k: "+44 20 7946 0001" for k, v in spec.inputs.items() if v.required and v.type == "phone"} | {
        k: "2026-03-14T08:00:00Z" for k, v in spec.inputs.items() if v.required and v.type == "datetime"} | {
        k: "3" for k, v in spec.inputs.items() if v.required and v.type == "integer"},
        assign={r: f"p-{r}" for r, role in spec.roles.items() if role.required})
    task = next(iter(spec.stages["respond"].tasks))
    s = inc.apply(dict(state, stage="respond"), "TaskCompleted", "2026-03-14T09:05:00.000Z", "lee", {"task": task})
    for trigger, to in (("rumours_spreading", "rumour_control"), ("rumours_contained", "respond")):
        s = inc.apply(s, "StageChanged", "2026-03-14T09:10:00.000Z", "lee",
                      {"trigger": trigger, "from": s["stage"], "to": to, "reason": ""})
    assert task in s["tasks"]


def test_an_escalation_moves_through_the_first_transition_whose_guards_hold(cli, store):
    result = cli("drill", *BREACH_START)
    assert result.exit_code == 0, result.output
    drill = "DRILL-20260314-001"
    for t in ("confirm_breach", "record_discovery_time", "stop_exposure", "preserve_evidence"):
        assert cli("task", drill, t, "--as", "lee").exit_code == 0, t
    assert cli("advance", drill, "assess", "--as", "lee").exit_code == 0
    assert cli("advance-clock", drill, "37h", "--as", "lee").exit_code == 0
    moved = [e.data for e in store.events(drill) if e.type == "StageChanged" and e.actor == "system:clock"]
    assert [(m["trigger"], m["to"]) for m in moved] == [("report_in_phases", "notify_regulator")]


def test_a_render_override_cannot_make_a_stranger_number_our_own_contact(cli, store, tmp_path):
    assert cli("start", *BREACH_START).exit_code == 0
    from engine.posts.versions import _drafted
    from engine.incidents.service import writing_of

    writing = writing_of(store, INC)
    state = store.snapshot(INC).state
    template = next(t for t, spec in writing["templates"].items() if "x" in spec["channels"])
    event = _drafted(writing, state, f"{template}/x/en", template, "x", "en",
                     "Call +44 7700 900123 now.", "2026-03-14T09:00:00.000Z", "sam",
                     extra={"helpline_phone": "+44 7700 900123"})
    assert event.data["hits"] == [{"kind": "phone number", "text": "+44 7700 900123"}]


def test_a_terminal_stage_checklist_can_be_ticked_after_closing(cli, store, clock):
    from engine.incidents import service
    from engine.format.loader import load_playbook

    pb = load_playbook(PLAYBOOKS / "public-health-cerc.yaml")
    state = service.start(store, clock, "ic", pb, title="t", inputs={
        k: {"url": "https://ex.org", "phone": "+44 20 7946 0001", "datetime": "2026-03-14T08:00:00Z",
            "date": "2026-03-14", "integer": "3", "boolean": "true"}.get(v.type, v.values[0] if v.values else "x")
        for k, v in pb.playbook.inputs.items() if v.required},
        assign={r: "ic" for r, role in pb.playbook.roles.items() if role.required})
    from engine.incidents.state import apply
    closed = apply(state, "StageChanged", "2026-03-14T12:00:00.000Z", "ic",
                   {"trigger": "x", "from": state["stage"], "to": "evaluation", "reason": ""})
    with store.transaction(state["id"]) as tx:
        from engine.incidents.events import NewEvent
        tx.append([NewEvent("StageChanged", "2026-03-14T12:00:00.000Z", "ic",
                            {"trigger": "x", "from": state["stage"], "to": "evaluation", "reason": ""})], closed)
    clock.advance(timedelta(hours=4))
    after = service.task(store, clock, "ic", state["id"], "after_action_review")
    assert "after_action_review" in after["tasks"] and after["status"] == "closed"
