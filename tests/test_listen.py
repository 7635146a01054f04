"""`playbook listen`: RSS/Atom feeds and Mastodon mentions, polled from stand-in servers on
the loopback interface that the tests start; a broken or silent source is reported and
never stops the others."""

from __future__ import annotations

import json
import time

import pytest

from loopback import Quiet, serving
from playbook_support import replying
from test_inbound import INCIDENT, _start, playbook  # noqa: F401 - the fixture

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Reviews of St Mary's</title><id>urn:reviews</id><updated>2026-03-14T08:30:00Z</updated>
  <entry><id>urn:review:1</id><title>One star</title><author><name>Dana R.</name></author>
    <updated>2026-03-14T08:00:00Z</updated><link href="https://reviews.example.org/1"/>
    <summary type="html">&lt;p&gt;Waited &lt;b&gt;six hours&lt;/b&gt; in the ER.&lt;/p&gt;</summary></entry>
  <entry><id>urn:review:2</id><title>Rude staff</title><author><name>Lee</name></author>
    <updated>2026-03-14T08:30:00Z</updated><link href="https://reviews.example.org/2"/>
    <summary>Nobody answered the phone.</summary></entry>
</feed>"""

MENTION = {"id": "90", "type": "mention", "created_at": "2026-03-14T08:45:00.000Z",
           "account": {"id": "7", "acct": "patient@social.example", "username": "patient"},
           "status": {"id": "1101", "created_at": "2026-03-14T08:45:00.000Z", "visibility": "public",
                      "language": "en", "url": "https://social.example/@patient/1101",
                      "account": {"id": "7", "acct": "patient@social.example", "username": "patient"},
                      "content": "<p><span class=\"h-card\">@stmarys</span> my mother is still waiting in your ER</p>"}}


class StandIn(Quiet):
    """A feed host and a Mastodon instance, on 127.0.0.1."""

    posted: list = []

    def do_POST(self):
        from urllib.parse import parse_qs

        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            form = json.loads(raw or "{}")
        else:
            form = {k: v[0] for k, v in parse_qs(raw).items()}
        if self.path == "/api/v1/statuses" and self.headers.get("Authorization") == "Bearer token-123":
            StandIn.posted.append(form)
            return self._send(200, json.dumps({"id": "2202", "url": "https://social.example/@stmarys/2202",
                                               "created_at": "2026-03-14T09:10:00.000Z", "content": form.get("status")}))
        return self._send(401, json.dumps({"error": "The access token is invalid"}))

    def do_GET(self):
        if self.path == "/feed.atom":
            return self._send(200, ATOM, "application/atom+xml")
        if self.path == "/broken":
            return self._send(200, "this is <<< not a feed", "text/plain")
        if self.path == "/slow":
            time.sleep(2)
            return self._send(200, ATOM, "application/atom+xml")
        if self.path.startswith("/api/v1/notifications"):
            if self.headers.get("Authorization") != "Bearer token-123":
                return self._send(401, json.dumps({"error": "The access token is invalid"}))
            return self._send(200, json.dumps([MENTION]))
        return self._send(404, json.dumps({"error": "not found"}))


@pytest.fixture
def stand_in():
    with serving(StandIn) as url:
        yield url


def _sources(tmp_path, text):
    (tmp_path / "sources.yaml").write_text(text, encoding="utf-8")


def _app(db, clock, tmp_path):
    from engine.app.config import Config
    from engine.app.context import App

    return App(Config.resolve({"PLAYBOOK_SOURCES": str(tmp_path / "sources.yaml")}, db=str(db)), clock)


def test_a_feeds_entries_are_recorded_once_as_text(cli, store, tmp_path, stand_in, playbook):  # noqa: F811
    _start(cli, playbook)
    _sources(tmp_path, f"reviews:\n  kind: feed\n  url: {stand_in}/feed.atom\n  incident: {INCIDENT}\n")
    env = ["--db", str(tmp_path / "incidents.db")]
    first = cli("listen", "--count", "1", *env)
    assert first.exit_code == 0, first.output
    assert f"reviews: 2 new of 2 on {INCIDENT}" in first.stdout
    assert "reviews: 0 new of 2" in cli("listen", "--count", "1", *env).stdout
    got = [e.data for e in store.events(INCIDENT) if e.type == "MessageReceived"]
    assert [(m["source"], m["source_id"], m["author"], m["posted_at"]) for m in got] == [
        ("reviews", "urn:review:1", "Dana R.", "2026-03-14T08:00:00.000Z"),
        ("reviews", "urn:review:2", "Lee", "2026-03-14T08:30:00.000Z")]
    assert got[0]["text"] == "One star\nWaited six hours in the ER."
    assert got[0]["kind"] == "review" and got[0]["url"] == "https://reviews.example.org/1"


def test_a_feed_that_is_not_xml_or_does_not_answer_is_reported_and_the_others_go_on(
        db, clock, store, cli, tmp_path, stand_in, playbook):  # noqa: F811
    from engine.app import inbound

    _start(cli, playbook)
    _sources(tmp_path, f"broken:\n  kind: feed\n  url: {stand_in}/broken\n  incident: {INCIDENT}\n"
                       f"slow:\n  kind: feed\n  url: {stand_in}/slow\n  incident: {INCIDENT}\n"
                       f"gone:\n  kind: feed\n  url: {stand_in}/gone\n  incident: {INCIDENT}\n"
                       f"reviews:\n  kind: feed\n  url: {stand_in}/feed.atom\n  incident: {INCIDENT}\n")
    rows = {r["source"]: r for r in inbound.listen_once(_app(db, clock, tmp_path), timeout=0.2)}
    assert "not an RSS or Atom feed" in rows["broken"]["error"]
    assert "no answer within 0.2s" in rows["slow"]["error"]
    assert "answered HTTP 404" in rows["gone"]["error"]
    assert rows["reviews"]["new"] == 2 and rows["reviews"]["error"] is None
    shown = cli("listen", "--count", "1", "--timeout", "1s", "--db", str(db))
    assert shown.exit_code == 0
    assert "!! broken: " in shown.stdout and "(polled again next time)" in shown.stdout


def test_mastodon_mentions_are_recorded_from_when_they_were_posted(cli, store, tmp_path, stand_in, playbook):  # noqa: F811
    _start(cli, playbook)
    _sources(tmp_path, f"mastodon:\n  kind: mastodon\n  url: {stand_in}\n  token: token-123\n"
                       "  playbook: viral-complaint\n")
    result = cli("listen", "--count", "1", "--db", str(tmp_path / "incidents.db"))
    assert f"mastodon: 1 new of 1 on {INCIDENT}" in result.stdout, result.output
    [m] = [e.data for e in store.events(INCIDENT) if e.type == "MessageReceived"]
    assert (m["source"], m["source_id"], m["author"], m["lang"]) == ("mastodon", "1101", "@patient@social.example", "en")
    assert m["text"] == "@stmarys my mother is still waiting in your ER"
    assert m["posted_at"] == "2026-03-14T08:45:00.000Z"
    clocks = {c["key"]: c for c in json.loads(cli("status", INCIDENT, "--json").stdout)["clocks"]}
    assert clocks["message:M1"]["due_at"] == "2026-03-14T09:45:00.000Z"


def test_a_refused_mastodon_token_is_reported(cli, tmp_path, stand_in, playbook):  # noqa: F811
    _start(cli, playbook)
    _sources(tmp_path, f"mastodon:\n  kind: mastodon\n  url: {stand_in}\n  token: wrong\n  incident: {INCIDENT}\n")
    result = cli("listen", "--count", "1", "--db", str(tmp_path / "incidents.db"))
    assert result.exit_code == 0
    assert "!! mastodon: " in result.stdout and "mentions cannot be read" in result.stdout
    assert "wrong" not in result.stdout


@pytest.mark.parametrize("text, message", [
    ("reviews: [1]\n", "reviews: must be a mapping"),
    ("Reviews:\n  kind: feed\n", "'Reviews': a source name is lower-case"),
    ("r:\n  kind: pigeon\n  incident: X\n", "r.kind: 'pigeon' is not one of webhook, feed, mastodon"),
    ("r:\n  kind: feed\n  incident: X\n", "r.url: a feed source needs an http(s) url"),
    ("r:\n  kind: webhook\n  secret: short\n  incident: X\n", "r.secret: a webhook needs a secret of at least 16"),
    ("r:\n  kind: mastodon\n  url: https://m.example\n  incident: X\n", "r.token: a mastodon source needs"),
    ("r:\n  kind: feed\n  url: https://f.example\n", "r: give incident (an incident id) or playbook"),
    ("r:\n  kind: feed\n  url: https://f.example\n  incident: X\n  password: p\n", "unknown setting(s) password"),
    ("[not, a, mapping]\n", "must map source names"),
    ("r: {kind: feed\n", "not a readable YAML file"),
])
def test_a_bad_sources_file_is_refused_naming_the_source_and_field(cli, tmp_path, text, message):
    _sources(tmp_path, text)
    result = cli("listen", "--count", "1", "--db", str(tmp_path / "incidents.db"))
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_listen_without_polled_sources_says_where_it_looked(cli, tmp_path):
    result = cli("listen", "--count", "1", "--db", str(tmp_path / "incidents.db"))
    assert result.exit_code == 4
    assert "no feed, mastodon or bluesky source in" in result.stderr and "sources.yaml" in result.stderr


REPLYING = replying("replying", "mastodon")


def test_a_reply_to_a_mastodon_mention_goes_out_in_its_thread(cli, store, tmp_path, stand_in):
    StandIn.posted.clear()
    pb = tmp_path / "replying.yaml"
    pb.write_text(REPLYING, encoding="utf-8")
    started = cli("start", str(pb), "--title", "Mention", "--assign", "lead=alice", "--assign", "spokesperson=bob")
    assert started.exit_code == 0, started.output
    _sources(tmp_path, f"mastodon:\n  kind: mastodon\n  url: {stand_in}\n  token: token-123\n  playbook: replying\n")
    assert "1 new of 1" in cli("listen", "--count", "1").stdout
    assert cli("render", INCIDENT, "answer", "--reply-to", "M1").exit_code == 0
    cli("approve", INCIDENT, "answer/mastodon/en/M1", "--version", "1", "--as", "bob")
    published = cli("publish", INCIDENT, "answer/mastodon/en/M1")
    assert published.exit_code == 0, published.output
    [sent] = StandIn.posted
    assert str(sent["in_reply_to_id"]) == "1101"
    assert sent["status"].startswith("We are sorry to hear this.")
    delivered = [e.data for e in store.events(INCIDENT) if e.type == "PostDelivered"]
    assert delivered[0]["target"] == f"mastodon reply to status 1101 on {stand_in} (source mastodon)"
    assert "token-123" not in json.dumps([e.data for e in store.events(INCIDENT)])
    row = json.loads(cli("inbox", INCIDENT, "--json").stdout)[0]
    assert row["status"] == "answered"
    assert cli("verify").exit_code == 0
