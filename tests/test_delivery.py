"""Delivery to real services through apprise, against loopback HTTP servers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import VIRAL_START


class Hook:
    """A loopback JSON webhook that records posts; `status` sets its answer."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                hook.received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def approved_ack(cli, tmp_path, monkeypatch):
    """An incident whose public_ack/x/en is approved and ready to publish."""
    monkeypatch.setenv("PLAYBOOK_OUTBOX", str(tmp_path / "outbox"))
    incident = "INC-20260314-001"
    for args in (VIRAL_START,
                 ["assign", incident, "social_media", "carol", "--as", "alice"],
                 ["task", incident, "confirm_post", "--as", "alice"],
                 ["advance", incident, "acknowledge", "--as", "alice"],
                 ["render", incident, "public_ack", "--channel", "x", "--lang", "en", "--as", "carol"],
                 ["approve", incident, "public_ack/x/en", "--version", "1", "--as", "bob"]):
        assert cli(*args).exit_code == 0
    return incident


def _destinations(tmp_path, monkeypatch, *urls: str) -> None:
    path = tmp_path / "destinations.yaml"
    path.write_text("x:\n" + "".join(f"  - {u}\n" for u in urls), encoding="utf-8")
    monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(path))


def _events(store, incident, kind):
    return [e for e in store.events(incident) if e.type == kind]


def test_a_published_post_is_delivered_with_its_exact_text(cli, store, approved_ack, tmp_path, monkeypatch):
    with Hook() as hook:
        _destinations(tmp_path, monkeypatch, hook.url)
        result = cli("publish", approved_ack, "public_ack/x/en", "--as", "carol")
    assert result.exit_code == 0, result.output
    assert "delivered to json://127.0.0.1" in result.stdout
    post = store.snapshot(approved_ack).state["posts"]["public_ack/x/en"]
    assert [r["message"] for r in hook.received] == [post["text"]]
    (delivered,) = _events(store, approved_ack, "PostDelivered")
    assert delivered.data["sha256"] == post["sha256"]


def test_a_failed_delivery_is_logged_reported_and_retriable(cli, store, approved_ack, tmp_path, monkeypatch):
    with Hook(status=500) as hook:
        _destinations(tmp_path, monkeypatch, hook.url)
        failed = cli("publish", approved_ack, "public_ack/x/en", "--as", "carol")
        assert failed.exit_code == 10
        assert "published (outbox) but delivery failed" in failed.stderr
        assert "playbook deliver" in failed.stderr
        post = store.snapshot(approved_ack).state["posts"]["public_ack/x/en"]
        assert post["status"] == "published"
        assert [d["ok"] for d in post["deliveries"]] == [False]
        assert not _events(store, approved_ack, "PostDelivered")

        hook.status = 200
        retried = cli("deliver", approved_ack, "public_ack/x/en", "--as", "carol")
        assert retried.exit_code == 0, retried.output
        again = cli("deliver", approved_ack, "public_ack/x/en", "--as", "carol")
    assert "already delivered to every destination" in again.stdout
    assert len(hook.received) == 2  # the failed attempt and the retry; nothing after success
    assert len(_events(store, approved_ack, "DeliveryFailed")) == 1
    assert len(_events(store, approved_ack, "PostDelivered")) == 1


def test_secrets_in_destination_urls_never_reach_the_log(cli, store, approved_ack, tmp_path, monkeypatch):
    with Hook(status=500) as hook:
        port = hook.server.server_address[1]
        _destinations(tmp_path, monkeypatch, f"json://user:s3cr3t-pass@127.0.0.1:{port}/hook")
        cli("publish", approved_ack, "public_ack/x/en", "--as", "carol")
    log = "".join(json.dumps(e.to_json()) for e in store.events(approved_ack))
    assert "s3cr3t-pass" not in log
    assert "DeliveryFailed" in log


def test_an_unpublished_post_cannot_be_delivered(cli, store, approved_ack, tmp_path, monkeypatch):
    _destinations(tmp_path, monkeypatch, "json://127.0.0.1:9/hook")
    before = store.snapshot(approved_ack).seq
    result = cli("deliver", approved_ack, "public_ack/x/en", "--as", "carol")
    assert result.exit_code == 5
    assert "not published" in result.stderr
    assert store.snapshot(approved_ack).seq == before


def test_without_destinations_publishing_only_writes_the_outbox(cli, approved_ack, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(tmp_path / "absent.yaml"))
    result = cli("publish", approved_ack, "public_ack/x/en", "--as", "carol")
    assert result.exit_code == 0
    assert "delivered" not in result.stdout
    assert list((tmp_path / "outbox").rglob("*.json"))


def test_a_malformed_destinations_file_is_a_usage_error(cli, approved_ack, tmp_path, monkeypatch):
    path = tmp_path / "destinations.yaml"
    path.write_text("x: json://not-a-list\n", encoding="utf-8")
    monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(path))
    result = cli("deliver", approved_ack, "public_ack/x/en", "--as", "carol")
    assert result.exit_code == 2
    assert "expected a mapping of channel names to lists of URLs" in result.stderr


def test_a_retried_delivery_sends_the_published_text_never_a_later_draft(cli, store, approved_ack, tmp_path, monkeypatch):
    """Publishing v1, then drafting v2, then retrying delivery must send v1 (the approved text)."""
    with Hook(status=500) as hook:
        _destinations(tmp_path, monkeypatch, hook.url)
        assert cli("publish", approved_ack, "public_ack/x/en", "--as", "carol").exit_code == 10
        published = store.snapshot(approved_ack).state["posts"]["public_ack/x/en"]["text"]
        assert cli("render", approved_ack, "public_ack", "--channel", "x", "--lang", "en", "--as", "carol").exit_code == 0
        assert cli("edit", approved_ack, "public_ack/x/en", "--text", "UNAPPROVED DRAFT", "--as", "carol").exit_code == 0
        hook.status = 200
        assert cli("deliver", approved_ack, "public_ack/x/en", "--as", "carol").exit_code == 0
    assert [r["message"] for r in hook.received] == [published, published]
    delivered = [e for e in store.events(approved_ack) if e.type == "PostDelivered"][0]
    assert delivered.data["version"] == 1
    assert "UNAPPROVED" not in json.dumps([e.to_json() for e in store.events(approved_ack) if e.type == "PostDelivered"])


def test_delivering_a_channel_with_no_destination_says_so(cli, store, approved_ack, tmp_path, monkeypatch):
    path = tmp_path / "destinations.yaml"  # destinations for chat only, none for x
    path.write_text("chat: ['json://127.0.0.1:9/hook']\n", encoding="utf-8")
    monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(path))
    assert cli("publish", approved_ack, "public_ack/x/en", "--as", "carol").exit_code == 0
    before = len(list(store.events(approved_ack)))
    result = cli("deliver", approved_ack, "public_ack/x/en", "--as", "carol")
    assert result.exit_code == 4
    assert "no destinations configured for channel x" in result.stderr
    assert len(list(store.events(approved_ack))) == before


def test_each_send_is_logged_before_it_is_made(cli, store, approved_ack, tmp_path, monkeypatch):
    """A crash while sending leaves the attempt in the log; the retry sends again (at least
    once) and the log shows both attempts."""
    from engine.posts import delivery

    _destinations(tmp_path, monkeypatch, "json://127.0.0.1:9/hook")
    logged_before_send = []

    def crash(url, text, **kw):
        logged_before_send.append([e.type for e in store.events(approved_ack)][-1])
        raise KeyboardInterrupt  # killed mid-send

    monkeypatch.setattr(delivery, "send", crash)
    killed = cli("publish", approved_ack, "public_ack/x/en", "--as", "carol")
    assert killed.exit_code == 130
    assert logged_before_send == ["DeliveryAttempted"]
    monkeypatch.setattr(delivery, "send", lambda url, text, **kw: delivery.Attempt(delivery.redact(url), True))
    assert cli("deliver", approved_ack, "public_ack/x/en", "--as", "carol").exit_code == 0
    types = [e.type for e in store.events(approved_ack)]
    assert types[-4:] == ["PostPublished", "DeliveryAttempted", "DeliveryAttempted", "PostDelivered"]
    assert cli("verify").exit_code == 0
