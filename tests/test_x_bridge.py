"""Replies on X through the bridge: a post answering a message from X is delivered to the
channel's bridge destinations with the message's id in the payload, and is measured by
X's reply rule (the @mentions it begins with are not counted)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from playbook_support import replying

INCIDENT = "INC-20260314-001"
REPLYING = replying("replying-x", "x", "We are sorry to hear this. Please send us a direct message so that we can help.",
                     update="Update: waiting times in our emergency department are back to normal.")


class Bridge(BaseHTTPRequestHandler):
    """An X bridge on 127.0.0.1: records each JSON notification it receives."""

    received: list = []

    def do_POST(self):
        Bridge.received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def bridge(tmp_path):
    Bridge.received.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Bridge)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _ok(cli, *args):
    result = cli(*args)
    assert result.exit_code == 0, (args, result.output)
    return result


@pytest.fixture
def incident(cli, tmp_path):
    pb = tmp_path / "replying-x.yaml"
    pb.write_text(REPLYING, encoding="utf-8")
    _ok(cli, "start", str(pb), "--title", "Complaint on X", "--assign", "lead=alice", "--assign", "spokesperson=bob")
    _ok(cli, "inbound", "add", INCIDENT, "--source", "x", "--source-id", "1767001234567890123",
        "--author", "@patient", "--text", "Waited 6 hours in your ER", "--posted-at", "2026-03-14T08:30:00Z")
    return INCIDENT


def _destinations(tmp_path, *urls):
    (tmp_path / "destinations.yaml").write_text("x: [" + ", ".join(f'"{u}"' for u in urls) + "]\n", encoding="utf-8")


def _release(cli, post):
    _ok(cli, "approve", INCIDENT, post, "--version", str(_draft(cli, post)["version"]), "--as", "bob")
    return cli("publish", INCIDENT, post)


def _draft(cli, post):
    return {d["id"]: d for d in json.loads(_ok(cli, "drafts", INCIDENT, "--json").stdout)}[post]


def test_a_reply_to_a_message_from_x_reaches_the_bridge_with_the_id_it_answers(cli, store, tmp_path, bridge, incident):
    _destinations(tmp_path, f"json://{bridge}/x-bridge")
    _ok(cli, "render", INCIDENT, "answer", "--reply-to", "M1")
    published = _release(cli, "answer/x/en/M1")
    assert published.exit_code == 0, published.output
    _ok(cli, "render", INCIDENT, "update")
    assert _release(cli, "update/x/en").exit_code == 0
    (path, reply), (_, update) = Bridge.received
    assert path == "/x-bridge"
    assert reply["in_reply_to_tweet_id"] == "1767001234567890123"
    assert reply["message"].startswith("We are sorry to hear this.")
    assert "in_reply_to_tweet_id" not in update  # a post that answers nothing goes out as a post
    delivered = [e.data["target"] for e in store.events(INCIDENT) if e.type == "PostDelivered"]
    assert "in_reply_to_tweet_id=1767001234567890123" in delivered[0]
    assert [r["status"] for r in json.loads(_ok(cli, "inbox", INCIDENT, "--json").stdout)] == ["answered"]
    assert _ok(cli, "verify").exit_code == 0


def test_a_reply_is_not_sent_where_it_would_leave_the_thread(cli, store, tmp_path, bridge, incident):
    """A destination that is not a bridge (here a chat webhook) cannot carry the reply id:
    the reply stays in the outbox instead of going out as a post of its own."""
    _destinations(tmp_path, "slack://TokenA/TokenB/TokenC/#social")
    _ok(cli, "render", INCIDENT, "answer", "--reply-to", "M1")
    published = _release(cli, "answer/x/en/M1")
    assert published.exit_code == 0, published.output
    types = [e.type for e in store.events(INCIDENT)]
    assert "PostPublished" in types and "DeliveryAttempted" not in types
    assert Bridge.received == []


def test_the_leading_mention_of_a_reply_on_x_is_not_counted(cli, incident):
    body = "We are sorry. " + "a" * 266  # 280 weighted characters
    _ok(cli, "render", INCIDENT, "answer", "--reply-to", "M1")
    _ok(cli, "edit", INCIDENT, "answer/x/en/M1", "--text", "@patient " + body)
    reply = _draft(cli, "answer/x/en/M1")["count"]
    assert (reply["used"], reply["limit"], reply["fits"]) == (280, 280, True)
    assert reply["detail"] == "a reply: its leading @patient not counted"
    _ok(cli, "render", INCIDENT, "update")
    _ok(cli, "edit", INCIDENT, "update/x/en", "--text", "@patient " + body)
    post = _draft(cli, "update/x/en")["count"]  # not a reply: every character counts
    assert (post["used"], post["fits"]) == (289, False)


@pytest.mark.parametrize("text, reply, used", [
    ("@patient @nurse_2 thank you", True, 9),
    ("@patient thank you", False, 18),
    ("Thank you @patient", True, 18),  # only the mentions a reply begins with
    ("@patient", True, 8),  # a mention alone is the text, not a prefix
])
def test_x_counts_a_replys_leading_mentions_out(text, reply, used):
    from engine.posts.channels import count

    assert count("x", text, reply=reply).used == used
