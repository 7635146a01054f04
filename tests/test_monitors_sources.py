"""Monitors fed by the sources: the signed webhook, `playbook listen` polling a stand-in
Mastodon server on the loopback interface, and messages arriving at the same moment."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from test_listen import MENTION, StandIn, _sources
from test_monitors import INCIDENT, SPIKY
from test_webhooks import SECRET, _post


@pytest.fixture
def bridge(tmp_path, clock):
    """A team server whose `bridge` webhook feeds the shipped viral-complaint playbook,
    with no incident open."""
    from fastapi.testclient import TestClient

    from engine.app.config import Config
    from engine.server.app import create_app

    (tmp_path / "sources.yaml").write_text(
        f"bridge:\n  kind: webhook\n  secret: {SECRET}\n  channel: x\n  playbook: viral-complaint\n", encoding="utf-8")
    config = Config.resolve({"PLAYBOOK_OUTBOX": str(tmp_path / "outbox"),
                             "PLAYBOOK_DESTINATIONS": str(tmp_path / "destinations.yaml")},
                            db=str(tmp_path / "incidents.db"))
    server = create_app(config, clock)
    client = TestClient(server, base_url="http://127.0.0.1")
    client.store = lambda: server.state.stores.get()
    return client


def _complaint(n: int, minutes_ago: int, clock, text="Waited hours in the ER and nobody came", **more):
    return {"source_id": f"17734780{n:02d}", "author": f"@patient{n}", "text": text,
            "posted_at": (clock.now() - timedelta(minutes=minutes_ago)).isoformat(),
            "url": f"https://x.com/patient{n}/status/17734780{n:02d}", **more}


def test_a_spike_through_the_webhook_opens_the_shipped_playbook_with_its_inputs_from_the_first_post(bridge, clock):
    from engine.audit.integrity import verify

    first = _post(bridge, clock, _complaint(1, 50, clock))
    assert first.status_code == 202, first.text
    assert first.json() == {"incident": None, "kept": "L1", "new": True, "monitors": ["complaint_spike"],
                            "fired": None, "paged": []}
    assert _post(bridge, clock, _complaint(2, 40, clock, text="Lovely nurses")).json()["monitors"] == []
    assert _post(bridge, clock, _complaint(3, 30, clock, text="So RUDE at reception")).status_code == 202
    opened = _post(bridge, clock, _complaint(4, 5, clock, text="Still waiting, this is unacceptable"))
    assert opened.status_code == 201, opened.text
    assert opened.json() == {"incident": INCIDENT, "message": "M3", "new": True, "opened_by": "complaint_spike"}
    store = bridge.store()
    started = next(iter(store.events(INCIDENT)))
    assert started.actor == "system:monitor"
    assert started.data["title"] == "Patient complaint spreading on social media"
    assert started.data["severity"] == "high"
    assert started.data["inputs"]["complaint_url"] == "https://x.com/patient1/status/1773478001"
    assert started.data["inputs"]["complaint_channel"] == "x"
    assert started.data["inputs"]["complaint_posted_at"] == "2026-03-14T08:10:00Z"
    assert started.data["origin"]["origin_at"] == "2026-03-14T08:10:00.000Z"
    later = _post(bridge, clock, _complaint(5, 1, clock, text="any news?"))
    assert later.status_code == 201 and later.json()["message"] == "M4"
    assert _post(bridge, clock, _complaint(5, 1, clock, text="any news?")).status_code == 200
    assert [e.data["text"] for e in store.events(INCIDENT) if e.type == "MessageReceived"] == [
        "Waited hours in the ER and nobody came", "So RUDE at reception", "Still waiting, this is unacceptable",
        "any news?"]
    assert verify(store).ok


def test_a_bad_reach_in_a_webhook_payload_is_a_problem_naming_the_field(bridge, clock):
    r = _post(bridge, clock, _complaint(1, 5, clock, reach="lots"))
    assert r.status_code == 400, r.text
    assert "reach: the author's followers, a whole number" in r.json()["detail"]
    assert bridge.store().stream("LISTENING") is None


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """The database the listeners share: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "incidents.db")
    return request.getfixturevalue("pg_url")


def test_messages_arriving_at_the_same_moment_open_exactly_one_incident(tmp_path, clock, location):
    """Six processes' worth of listeners (each its own store on the same database) post
    matching messages at once: one incident opens, and every message ends in it."""
    from engine.app import inbound
    from engine.app.config import Config
    from engine.app.context import App
    from engine.audit.integrity import verify
    from engine.store import open_store

    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "spiky.yaml").write_text(SPIKY.replace("count: 3", "count: 2"), encoding="utf-8")
    _sources(tmp_path, f"bridge:\n  kind: webhook\n  secret: {SECRET}\n  channel: x\n  playbook: spiky\n")
    env = {"PLAYBOOK_LIBRARY": str(folder), "PLAYBOOK_SOURCES": str(tmp_path / "sources.yaml"),
           "PLAYBOOK_DESTINATIONS": str(tmp_path / "destinations.yaml")}
    open_store(location).close()  # the schema, once
    apps = [App(Config.resolve(env, db=location), clock) for _ in range(6)]
    start, results, errors = threading.Barrier(len(apps)), [], []

    def send(n, app):
        try:
            source = inbound.sources(app)["bridge"]
            start.wait()
            results.append(inbound.ingest(app, source, _complaint(n, 10 - n, clock, text="so rude")))
        except Exception as e:  # reported below, with the others
            errors.append(e)

    threads = [threading.Thread(target=send, args=(n, app)) for n, app in enumerate(apps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for app in apps:
        app.close()
    assert errors == []
    store = open_store(location)
    try:
        assert store.incidents() == [INCIDENT]
        assert sum(1 for r in results if r.opened) == 1
        texts = [e.data["source_id"] for e in store.events(INCIDENT) if e.type == "MessageReceived"]
        assert sorted(texts) == [f"17734780{n:02d}" for n in range(6)]
        fired = [e for e in store.events("LISTENING") if e.type == "MonitorFired"]
        assert len(fired) == 1
        assert verify(store).ok
    finally:
        store.close()


class Mentions(StandIn):
    """The stand-in Mastodon server, with three complaints among its mentions."""

    def do_GET(self):
        if self.path.startswith("/api/v1/notifications"):
            found = []
            for n, (minute, text) in enumerate([(10, "you were so rude to my father"), (20, "lovely staff"),
                                                (30, "waited hours, still no doctor"), (40, "Rude. Again.")]):
                status = {**MENTION["status"], "id": f"11{n:02d}", "created_at": f"2026-03-14T08:{minute}:00.000Z",
                          "content": f"<p>@stmarys {text}</p>",
                          "account": {**MENTION["status"]["account"], "followers_count": 1200}}
                found.append({**MENTION, "id": f"9{n}", "status": status})
            return self._send(200, json.dumps(found))
        return super().do_GET()


@pytest.fixture
def mastodon():
    from loopback import serving

    with serving(Mentions) as url:
        yield url


def test_complaints_on_a_stand_in_mastodon_open_an_incident_within_one_poll(cli, store, tmp_path, monkeypatch,
                                                                              mastodon):
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "spiky.yaml").write_text(SPIKY.replace("within: 30m", "within: 45m"), encoding="utf-8")
    monkeypatch.setenv("PLAYBOOK_LIBRARY", str(folder))
    monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(tmp_path / "destinations.yaml"))
    _sources(tmp_path, f"mastodon:\n  kind: mastodon\n  url: {mastodon}\n  token: token-123\n  playbook: spiky\n")
    polled = cli("listen", "--count", "1")
    assert polled.exit_code == 0, polled.output
    assert f"mastodon: 4 new of 4 on {INCIDENT}, 3 kept for monitors (no incident open)" in polled.stdout
    assert f"mastodon: a monitor opened {INCIDENT}" in polled.stdout
    status = json.loads(cli("status", INCIDENT, "--json").stdout)
    assert status["opened_by_monitor"]["origin_at"] == "2026-03-14T08:10:00.000Z"
    assert status["opened_by_monitor"]["time_to_detect_seconds"] == 50 * 60
    target = next(c for c in status["clocks"] if c["key"] == "target:first_public_post")
    assert target["from_at"] == "2026-03-14T08:10:00.000Z"
    messages = [e.data for e in store.events(INCIDENT) if e.type == "MessageReceived"]
    assert [(m["source_id"], m["reach"], m["via"]) for m in messages] == [
        ("1100", 1200, "mastodon"), ("1102", 1200, "mastodon"), ("1103", 1200, "mastodon")]
    again = cli("listen", "--count", "1")
    assert f"mastodon: 0 new of 4 on {INCIDENT}\n" in again.stdout  # the one kept is moved, not recorded again
    assert [e.data["source_id"] for e in store.events(INCIDENT) if e.type == "MessageReceived"][-1] == "1101"
    assert cli("verify").exit_code == 0
