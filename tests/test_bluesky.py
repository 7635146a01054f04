"""Bluesky: mentions and replies polled from a stand-in PDS on the loopback interface that
the test starts, recorded once each from when they were posted; a reply goes out in the
thread (root and parent references); a silent, refusing or garbled PDS is reported and
polled again, never stopping the listener."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from loopback import Quiet, serving
from playbook_support import replying
from test_inbound import INCIDENT, _start, playbook  # noqa: F401 - the fixture

DID = "did:plc:stmarys"
HANDLE = "stmarys.bsky.social"
PASSWORD = "abcd-efgh-ijkl-mnop"
MENTION_URI = "at://did:plc:patient/app.bsky.feed.post/3kmention"
REPLY_URI = "at://did:plc:nurse/app.bsky.feed.post/3kreply"
ROOT = {"uri": "at://did:plc:stmarys/app.bsky.feed.post/3kroot", "cid": "bafyroot"}


def _jwt() -> str:
    def part(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return ".".join([part({"alg": "ES256K", "typ": "JWT"}),
                     part({"sub": DID, "scope": "com.atproto.appPass", "iat": 1700000000, "exp": 4102444800}),
                     "c2ln"])


ACCESS = _jwt()


def _notification(uri, cid, handle, reason, record):
    return {"uri": uri, "cid": cid, "author": {"did": f"did:plc:{handle.split('.')[0]}", "handle": handle},
            "reason": reason, "record": {"$type": "app.bsky.feed.post", **record}, "isRead": False,
            "indexedAt": record.get("createdAt", "2026-03-14T08:00:00.000Z"), "labels": []}


NOTIFICATIONS = [
    _notification(REPLY_URI, "bafyreply", "nurse.bsky.social", "reply", {
        "text": "Same here, four hours and counting", "createdAt": "2026-03-14T08:50:00.000Z",
        "reply": {"root": ROOT, "parent": ROOT}}),
    _notification("at://did:plc:fan/app.bsky.feed.like/3klike", "bafylike", "fan.bsky.social", "like", {
        "$type": "app.bsky.feed.like", "subject": ROOT, "createdAt": "2026-03-14T08:40:00.000Z"}),
    _notification(MENTION_URI, "bafymention", "patient.bsky.social", "mention", {
        "text": "@stmarys.bsky.social my mother is still waiting in your ER", "langs": ["en"],
        "createdAt": "2026-03-14T08:45:00.000Z"}),
]
RECORDS = {MENTION_URI: {"uri": MENTION_URI, "cid": "bafymention", "value": NOTIFICATIONS[2]["record"]},
           REPLY_URI: {"uri": REPLY_URI, "cid": "bafyreply", "value": NOTIFICATIONS[0]["record"]}}


class PDS(Quiet):
    """A Bluesky PDS on 127.0.0.1; a path prefix picks a failure: /slow, /garbage, /html,
    /flaky (fails its first poll only), /odd (a post the checks refuse)."""

    created: list = []
    flaky: list = []
    sessions: list = []

    def _route(self):
        parts = urlsplit(self.path)
        prefix, _, method = parts.path.partition("/xrpc/")
        return prefix, method, {k: v[0] for k, v in parse_qs(parts.query).items()}

    def _failure(self, prefix, method):
        if prefix == "/slow":
            time.sleep(2)
        if prefix == "/flaky" and method.endswith("listNotifications") and not PDS.flaky:
            PDS.flaky.append(1)
            return self._send(502, {"error": "UpstreamFailure", "message": "try again"}) or True
        if prefix == "/garbage" and method.endswith("listNotifications"):
            return self._send(200, {"notifications": [{"uri": 17, "author": "nobody"}]}) or True
        if prefix == "/odd" and method.endswith("listNotifications"):
            odd = _notification("at://did:plc:odd/app.bsky.feed.post/3kodd", "bafyodd", "odd.bsky.social", "mention",
                                {"text": "bell \x07 and \u202eoverride", "createdAt": "last Tuesday"})
            odd_lang = {**NOTIFICATIONS[2], "record": {**NOTIFICATIONS[2]["record"], "langs": ["English!"]}}
            return self._send(200, {"notifications": [odd, odd_lang]}) or True
        if prefix == "/html":
            return self._send(200, "<html>a captive portal</html>", "text/html") or True
        return False

    def do_POST(self):
        prefix, method, _ = self._route()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self._failure(prefix, method):
            return None
        if method == "com.atproto.server.createSession":
            if (body.get("identifier"), body.get("password")) != (HANDLE, PASSWORD):
                return self._send(401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"})
            PDS.sessions.append(prefix)
            return self._send(200, {"accessJwt": ACCESS, "refreshJwt": ACCESS, "handle": HANDLE, "did": DID})
        if self.headers.get("Authorization") != f"Bearer {ACCESS}":
            return self._send(401, {"error": "AuthenticationRequired"})
        if method == "com.atproto.repo.createRecord":
            PDS.created.append(body)
            return self._send(200, {"uri": f"at://{DID}/app.bsky.feed.post/3kanswer", "cid": "bafyanswer"})
        return self._send(404, {"error": "MethodNotImplemented"})

    def do_GET(self):
        prefix, method, query = self._route()
        if self._failure(prefix, method):
            return None
        if self.headers.get("Authorization") != f"Bearer {ACCESS}":
            return self._send(401, {"error": "AuthenticationRequired"})
        if method == "app.bsky.notification.listNotifications":
            return self._send(200, {"notifications": NOTIFICATIONS})
        if method == "com.atproto.repo.getRecord":
            uri = f"at://{query.get('repo')}/{query.get('collection')}/{query.get('rkey')}"
            if uri in RECORDS:
                return self._send(200, RECORDS[uri])
            return self._send(400, {"error": "RecordNotFound", "message": f"Could not locate record: {uri}"})
        return self._send(404, {"error": "MethodNotImplemented"})


@pytest.fixture
def pds():
    PDS.created.clear()
    PDS.flaky.clear()
    PDS.sessions.clear()
    with serving(PDS) as url:
        yield url


def _sources(tmp_path, text):
    (tmp_path / "sources.yaml").write_text(text, encoding="utf-8")


def _bluesky(name, url, target=f"incident: {INCIDENT}", password=PASSWORD):
    return f"{name}:\n  kind: bluesky\n  url: {url}\n  handle: {HANDLE}\n  password: {password}\n  {target}\n"


def _app(db, clock, tmp_path):
    from engine.app.config import Config
    from engine.app.context import App

    return App(Config.resolve({"PLAYBOOK_SOURCES": str(tmp_path / "sources.yaml")}, db=str(db)), clock)


def test_mentions_and_replies_are_recorded_once_from_when_they_were_posted(cli, store, tmp_path, pds, playbook):  # noqa: F811
    _start(cli, playbook)
    _sources(tmp_path, _bluesky("bluesky", pds, "playbook: viral-complaint"))
    first = cli("listen", "--count", "1")
    assert first.exit_code == 0, first.output
    assert f"bluesky: 2 new of 2 on {INCIDENT}" in first.stdout  # the like is not a message
    assert "bluesky: 0 new of 2" in cli("listen", "--count", "1").stdout
    assert PDS.sessions.count("") == 1  # signed in once: the session is kept between polls
    got = [e.data for e in store.events(INCIDENT) if e.type == "MessageReceived"]
    assert [(m["source_id"], m["kind"], m["author"], m["posted_at"]) for m in got] == [
        (MENTION_URI, "mention", "@patient.bsky.social", "2026-03-14T08:45:00.000Z"),
        (REPLY_URI, "reply", "@nurse.bsky.social", "2026-03-14T08:50:00.000Z")]
    assert got[0]["text"] == "@stmarys.bsky.social my mother is still waiting in your ER"
    assert (got[0]["lang"], got[0]["source"], got[0]["via"]) == ("en", "bluesky", "bluesky")
    assert got[0]["url"] == "https://bsky.app/profile/patient.bsky.social/post/3kmention"
    clocks = {c["key"]: c for c in json.loads(cli("status", INCIDENT, "--json").stdout)["clocks"]}
    assert clocks["message:M1"]["due_at"] == "2026-03-14T09:45:00.000Z"
    assert PASSWORD not in json.dumps([e.data for e in store.events(INCIDENT)])


def test_a_silent_refusing_or_garbled_pds_is_reported_and_the_others_go_on(db, clock, cli, tmp_path, pds, playbook):  # noqa: F811
    from engine.app import inbound

    _start(cli, playbook)
    _sources(tmp_path, _bluesky("slow", pds + "/slow") + _bluesky("garbage", pds + "/garbage")
             + _bluesky("html", pds + "/html") + _bluesky("wrong", pds, password="not-the-password")
             + _bluesky("gone", "http://127.0.0.1:9") + _bluesky("good", pds))
    rows = {r["source"]: r for r in inbound.listen_once(_app(db, clock, tmp_path), timeout=0.3)}
    assert rows["slow"]["error"] == f"{pds}/slow: sign-in: no answer in time"
    assert rows["garbage"]["error"] == (f"{pds}/garbage: listNotifications: the answer is not what the protocol "
                                        "says (ModelError)")
    assert rows["html"]["error"].startswith(f"{pds}/html: sign-in: ")
    assert rows["wrong"]["error"] == f"{pds}: sign-in: the handle or app password was refused"
    assert rows["gone"]["error"].startswith("http://127.0.0.1:9: sign-in failed (")
    assert (rows["good"]["new"], rows["good"]["error"]) == (2, None)
    shown = cli("listen", "--count", "1", "--timeout", "1s")
    assert shown.exit_code == 0
    assert "!! wrong: " in shown.stdout and "(polled again next time)" in shown.stdout
    assert "not-the-password" not in shown.stdout and PASSWORD not in shown.stdout


def test_a_source_that_failed_is_polled_again_and_then_recorded(db, clock, cli, store, tmp_path, pds, playbook):  # noqa: F811
    from engine.app import inbound

    _start(cli, playbook)
    _sources(tmp_path, _bluesky("flaky", pds + "/flaky"))
    app = _app(db, clock, tmp_path)
    [first] = inbound.listen_once(app, timeout=2)
    assert first["error"] == f"{pds}/flaky: listNotifications failed (NetworkError)" and first["new"] == 0
    assert not [e for e in store.events(INCIDENT) if e.type == "MessageReceived"]
    [second] = inbound.listen_once(app, timeout=2)
    assert (second["error"], second["new"]) == (None, 2)
    assert PDS.sessions.count("/flaky") == 2  # the failure dropped the session: signed in again


def test_a_post_the_checks_refuse_is_reported_and_the_others_are_recorded(db, clock, cli, store, tmp_path, pds,
                                                                          playbook):  # noqa: F811
    from engine.app import inbound

    _start(cli, playbook)
    _sources(tmp_path, _bluesky("odd", pds + "/odd"))
    [row] = inbound.listen_once(_app(db, clock, tmp_path), timeout=2)
    assert (row["error"], row["seen"], row["new"]) == (None, 2, 1)
    [refused] = row["refused"]
    assert refused.startswith("at://did:plc:odd/app.bsky.feed.post/3kodd: ") and "posted_at" in refused
    [m] = [e.data for e in store.events(INCIDENT) if e.type == "MessageReceived"]
    assert (m["source_id"], m["lang"]) == (MENTION_URI, None)  # a language that is no tag is left out


@pytest.mark.parametrize("text, message", [
    ("b:\n  kind: bluesky\n  url: https://bsky.social\n  password: p\n  incident: X\n",
     "b.handle: a bluesky source needs the account's handle"),
    ("b:\n  kind: bluesky\n  url: https://bsky.social\n  handle: h\n  incident: X\n",
     "b.password: a bluesky source needs an app password of the account"),
    ("b:\n  kind: feed\n  url: https://f.example\n  handle: h\n  password: p\n  incident: X\n",
     "b: unknown setting(s) handle, password"),
    ("b:\n  kind: bluesky\n  handle: h\n  password: p\n  incident: X\n", "b.url: a bluesky source needs an http(s) url"),
])
def test_a_bluesky_source_without_its_settings_is_refused(cli, tmp_path, text, message):
    _sources(tmp_path, text)
    result = cli("listen", "--count", "1")
    assert result.exit_code == 2, result.output
    assert message in result.stderr


REPLYING = replying("replying", "bluesky", "We are sorry to hear this. Please contact us privately so that we can help: "
                                                "https://stmarys.example.org/contact.")


def _replying(cli, tmp_path, url):
    pb = tmp_path / "replying.yaml"
    pb.write_text(REPLYING, encoding="utf-8")
    started = cli("start", str(pb), "--title", "Mention", "--assign", "lead=alice", "--assign", "spokesperson=bob")
    assert started.exit_code == 0, started.output
    _sources(tmp_path, _bluesky("bluesky", url, "playbook: replying"))
    assert "2 new of 2" in cli("listen", "--count", "1").stdout


def _publish(cli, message):
    post = f"answer/bluesky/en/{message}"
    assert cli("render", INCIDENT, "answer", "--reply-to", message).exit_code == 0
    assert cli("approve", INCIDENT, post, "--version", "1", "--as", "bob").exit_code == 0
    return cli("publish", INCIDENT, post)


def _refs(reply: dict) -> dict:
    """The reply's root and parent as (uri, cid), without the $type tags atproto adds."""
    return {k: {"uri": reply[k]["uri"], "cid": reply[k]["cid"]} for k in ("root", "parent")}


def test_a_reply_goes_into_the_thread_of_the_post_it_answers(cli, store, tmp_path, pds):
    _replying(cli, tmp_path, pds)
    published = _publish(cli, "M1")  # the mention starts its own thread: it is root and parent
    assert published.exit_code == 0, published.output
    replied = _publish(cli, "M2")  # the reply belongs to the thread of the organisation's post
    assert replied.exit_code == 0, replied.output
    first, second = PDS.created
    assert (first["repo"], first["collection"]) == (HANDLE, "app.bsky.feed.post")
    assert first["record"]["text"].startswith("We are sorry to hear this.")
    assert first["record"]["createdAt"] == "2026-03-14T09:00:00.000Z"  # the fixed clock
    mention = {"uri": MENTION_URI, "cid": "bafymention"}
    assert _refs(first["record"]["reply"]) == {"root": mention, "parent": mention}
    assert _refs(second["record"]["reply"]) == {"root": ROOT, "parent": {"uri": REPLY_URI, "cid": "bafyreply"}}
    text = first["record"]["text"].encode("utf-8")  # the link is a link: its facet names its bytes
    [facet] = first["record"]["facets"]
    assert text[facet["index"]["byteStart"]:facet["index"]["byteEnd"]] == b"https://stmarys.example.org/contact"
    assert [f["uri"] for f in facet["features"]] == ["https://stmarys.example.org/contact"]
    delivered = [e.data["target"] for e in store.events(INCIDENT) if e.type == "PostDelivered"]
    assert delivered[0] == f"bluesky reply to {MENTION_URI} on {pds} (source bluesky)"
    assert PASSWORD not in json.dumps([e.data for e in store.events(INCIDENT)])
    rows = {r["message"]: r["status"] for r in json.loads(cli("inbox", INCIDENT, "--json").stdout)}
    assert rows == {"M1": "answered", "M2": "answered"}
    assert cli("verify").exit_code == 0


def test_a_reply_the_pds_refuses_is_published_but_not_delivered(cli, store, tmp_path, pds):
    _replying(cli, tmp_path, pds)
    _sources(tmp_path, _bluesky("bluesky", pds, "playbook: replying", password="revoked-app-password"))
    published = _publish(cli, "M1")
    assert published.exit_code != 0
    assert "the handle or app password was refused" in published.output
    assert "Traceback" not in published.output and "revoked-app-password" not in published.output
    assert not PDS.created
    types = [e.type for e in store.events(INCIDENT)]
    assert "PostPublished" in types and "DeliveryFailed" in types and "PostDelivered" not in types


def test_link_facets_name_utf8_byte_ranges_without_the_closing_punctuation():
    from engine.sources.bluesky import link_facets

    text = "Lamentamos la situación (ver https://ejemplo.org/a?b=1). Más: http://x.example/ñ, gracias"
    ranges = [(f["index"]["byteStart"], f["index"]["byteEnd"], f["features"][0]["uri"]) for f in link_facets(text)]
    data = text.encode("utf-8")
    assert [(data[a:b].decode("utf-8"), uri) for a, b, uri in ranges] == [
        ("https://ejemplo.org/a?b=1", "https://ejemplo.org/a?b=1"), ("http://x.example/ñ", "http://x.example/ñ")]
    assert link_facets("no links here, not even https:// alone") == []


def _uris(text: str) -> list[str]:
    from engine.sources.bluesky import link_facets

    return [f["features"][0]["uri"] for f in link_facets(text)]


def test_a_bluesky_link_that_ends_in_a_bracket_it_opened_keeps_it():
    from engine.sources.bluesky import link_facets

    # Bluesky's own client keeps a closing bracket the link opened (Wikipedia's links end in one):
    # without it the facet sends readers to a page that does not exist
    assert _uris("See https://en.wikipedia.org/wiki/Mercury_(planet) for more.") == [
        "https://en.wikipedia.org/wiki/Mercury_(planet)"]
    assert _uris("Read it (https://en.wikipedia.org/wiki/Mercury_(planet)).") == [
        "https://en.wikipedia.org/wiki/Mercury_(planet)"]
    # a bracket that only closes the sentence's own is still not part of the link
    assert _uris("(details at https://example.org/help)") == ["https://example.org/help"]
    text = "Ärger? https://example.org/a_[b] ok"
    facet = link_facets(text)[0]
    assert text.encode("utf-8")[facet["index"]["byteStart"]:facet["index"]["byteEnd"]] == b"https://example.org/a_[b]"
