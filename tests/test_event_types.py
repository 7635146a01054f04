"""One registry of event kinds: every kind the engine writes is in it, the fold and the
log views go through it, and a kind it does not know fails loudly."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT, VIRAL_START

INC = "INC-20260314-001"


def test_every_kind_of_event_the_engine_writes_is_registered():
    from engine.incidents import monitors
    from engine.incidents.event_types import EVENT_TYPES

    written = set()
    for path in (ROOT / "engine").rglob("*.py"):
        if "accounts" in path.parts:  # the account log has its own registry (engine.accounts.log)
            continue
        if path == ROOT / "engine" / "incidents" / "monitors.py":  # so has the listening log
            assert set(re.findall(r'NewEvent\(\s*"([A-Za-z]+)"', path.read_text(encoding="utf-8"))) <= set(
                monitors.EVENTS)
            continue
        text = path.read_text(encoding="utf-8")
        written |= set(re.findall(r'NewEvent\(\s*"([A-Za-z]+)"', text))
        written |= set(re.findall(r'"(Task(?:Completed|Reopened)|PostDelivered|DeliveryFailed)"', text))
    written -= {"SessionStarted", "SessionEnded"}  # account log events
    assert written and written <= set(EVENT_TYPES), sorted(written - set(EVENT_TYPES))


def test_folding_a_kind_of_event_nobody_registered_fails_loudly(viral, store, clock):
    from engine.incidents import state as inc
    from engine.incidents import service

    state = service.start(store, clock, "alice", viral, title="T", inputs={
        "complaint_url": "https://x.com/p/status/1", "complaint_channel": "x"},
        assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"})
    with pytest.raises(ValueError, match="'PostTeleported' is not a kind of event"):
        inc.apply(state, "PostTeleported", "2026-03-14T09:00:00.000Z", "alice", {})
    with pytest.raises(ValueError, match="NoteAdded lacks text"):
        inc.apply(state, "NoteAdded", "2026-03-14T09:00:00.000Z", "alice", {})


def test_verify_names_an_event_of_an_unknown_kind(cli, db):
    """A log holding a kind of event this version does not know does not verify (exit 7)."""
    assert cli(*VIRAL_START).exit_code == 0
    from engine.store import open_store

    store = open_store(db)
    try:
        from engine.incidents.events import NewEvent

        with store.transaction(INC) as tx:
            state = tx.snapshot.state
            tx.append([NewEvent("PostTeleported", "2026-03-14T09:00:00.000Z", "alice", {})], state)
    finally:
        store.close()
    result = cli("verify", INC)
    assert result.exit_code == 7
    assert "PostTeleported" in result.output
    log = cli("log", INC)
    assert log.exit_code == 0 and "PostTeleported (a kind of event this version does not know)" in log.output


def test_the_log_view_words_each_event_through_the_registry(cli):
    assert cli(*VIRAL_START).exit_code == 0
    out = cli("log", INC).output
    assert "started from playbook viral-complaint" in out and "assigned alice to incident_lead" in out
