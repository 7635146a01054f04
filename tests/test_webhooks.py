"""Inbound webhooks on the team server: signed by the source's secret, inside the replay
window, bounded, and recorded once per message on the incident the source feeds."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from test_inbound import INCIDENT, listening_text

SECRET = "a-webhook-secret-of-some-length"
SOURCES = f"""\
bridge:
  kind: webhook
  secret: {SECRET}
  channel: x
  playbook: viral-complaint
"""


@pytest.fixture
def hook(tmp_path, clock):
    """A server whose sources file declares the `bridge` webhook, and an incident it feeds."""
    from fastapi.testclient import TestClient

    from engine.app import incidents
    from engine.app.config import Config
    from engine.app.context import App
    from engine.app.principal import Principal
    from engine.server.app import create_app

    (tmp_path / "sources.yaml").write_text(SOURCES, encoding="utf-8")
    playbook = tmp_path / "viral-complaint.yaml"
    playbook.write_text(listening_text())
    config = Config.resolve({"PLAYBOOK_OUTBOX": str(tmp_path / "outbox")}, db=str(tmp_path / "incidents.db"))
    app = App(config, clock)
    incidents.start(app, Principal.asserted("alice"), incidents.StartRequest(
        playbook=str(playbook), title="ER wait complaint",
        inputs={"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"},
        assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"}))
    app.close()
    server = create_app(config, clock)
    client = TestClient(server, base_url="http://127.0.0.1")
    client.store = lambda: server.state.stores.get()
    return client


def _post(client, clock, payload, *, secret=SECRET, source="bridge", at=None, body=None, headers=None):
    from engine.sources.webhook import sign

    body = json.dumps(payload).encode() if body is None else body
    stamp = str(int((at or clock.now()).timestamp()))
    sent = {"X-Playbook-Timestamp": stamp, "X-Playbook-Signature-256": sign(secret, stamp, body),
            "Content-Type": "application/json"}
    sent.update(headers or {})
    return client.post(f"/webhooks/{source}", content=body, headers={k: v for k, v in sent.items() if v is not None})


def _messages(client):
    return [e.data for e in client.store().events(INCIDENT) if e.type == "MessageReceived"]


MESSAGE = {"source_id": "1773478000", "author": "@patient", "text": "Six hours in your ER!",
           "posted_at": "2026-03-14T08:40:00Z", "url": "https://x.com/patient/status/1773478000"}


def test_a_signed_message_is_recorded_once_on_the_incident_the_source_feeds(hook, clock):
    first = _post(hook, clock, MESSAGE)
    assert first.status_code == 201, first.text
    assert first.json() == {"incident": INCIDENT, "message": "M1", "new": True}
    again = _post(hook, clock, MESSAGE)
    assert again.status_code == 200 and again.json()["new"] is False
    [recorded] = _messages(hook)
    assert recorded["source"] == "x" and recorded["via"] == "bridge" and recorded["posted_at"] == "2026-03-14T08:40:00.000Z"
    assert [e.actor for e in hook.store().events(INCIDENT) if e.type == "MessageReceived"] == ["system:listen"]


@pytest.mark.parametrize("change", [
    {"secret": "another-secret-entirely"},
    {"headers": {"X-Playbook-Signature-256": None}},
    {"headers": {"X-Playbook-Timestamp": None}},
    {"headers": {"X-Playbook-Signature-256": "sha256=00"}},
    {"source": "unknown"},
])
def test_an_unsigned_or_wrongly_signed_request_is_401_logged_and_writes_nothing(hook, clock, caplog, change):
    with caplog.at_level(logging.WARNING, logger="engine.server.webhooks"):
        r = _post(hook, clock, MESSAGE, **change)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "not signed with this source's secret" in r.json()["title"]
    assert SECRET not in r.text
    assert "refused" in caplog.text and SECRET not in caplog.text
    assert _messages(hook) == []


def test_a_request_outside_the_replay_window_is_refused(hook, clock):
    stale = _post(hook, clock, MESSAGE, at=clock.now() - timedelta(minutes=6))
    assert stale.status_code == 401
    assert _post(hook, clock, MESSAGE, at=clock.now() - timedelta(minutes=4)).status_code == 201


def test_a_body_that_was_altered_after_signing_is_refused(hook, clock):
    from engine.sources.webhook import sign

    stamp = str(int(clock.now().timestamp()))
    signed = json.dumps(MESSAGE).encode()
    r = hook.post("/webhooks/bridge", content=signed.replace(b"Six", b"Ten"), headers={
        "X-Playbook-Timestamp": stamp, "X-Playbook-Signature-256": sign(SECRET, stamp, signed)})
    assert r.status_code == 401 and _messages(hook) == []


@pytest.mark.parametrize("body, status, detail", [
    (b"not json", 400, "not JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (json.dumps({"author": "@p"}).encode(), 400, "text: missing"),
    (json.dumps({"text": "hi", "posted_at": "soon"}).encode(), 400, "posted_at: timestamp 'soon' is not ISO"),
    (json.dumps({"text": "hi", "source": "phone"}).encode(), 400, "source: set by the server"),
    (json.dumps({"text": "hi", "colour": "red"}).encode(), 400, "unknown field(s): colour"),
    (json.dumps({"text": "x" * 70_000}).encode(), 413, "at most 65536"),
])
def test_a_malformed_signed_payload_is_a_problem_naming_what_is_wrong(hook, clock, body, status, detail):
    r = _post(hook, clock, None, body=body)
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]
    assert _messages(hook) == []


def test_with_no_open_incident_for_the_playbook_the_message_is_kept_for_its_monitors(hook, clock):
    from engine.incidents import monitors, service

    store = hook.store()
    service.task(store, clock, "alice", INCIDENT, "confirm_post")
    service.task(store, clock, "alice", INCIDENT, "check_patient")
    service.advance(store, clock, "alice", INCIDENT, "dismiss")  # closed
    r = _post(hook, clock, MESSAGE)
    assert r.status_code == 202, r.text
    assert r.json()["incident"] is None and r.json()["kept"] == "L1"
    assert _messages(hook) == []
    assert monitors.read(store)["messages"]["L1"]["text"] == MESSAGE["text"]
    assert _post(hook, clock, MESSAGE).json() == {**r.json(), "new": False}
