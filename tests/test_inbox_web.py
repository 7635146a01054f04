"""The inbox in the web app: the incident page lists its inbound messages (the longest
waiting first, each wait against its target), offers "reply" and "mark handled" to those
who may, and the board shows each incident's unanswered messages and oldest wait. The
rows are the application layer's, the same as `playbook inbox --json`."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("fastapi")

from server_support import INC, Server, library_with  # noqa: E402
from test_inbound import listening_text  # noqa: E402
from test_web import browser  # noqa: E402

HOSTILE = "<script>alert('inbox')</script><img src=x onerror=alert(1)> you \"ignored\" me & my mother"
MESSAGES = [  # (posted at, author, text): at 09:00, waited 90m, 15m and 40m of their 60m
    ("2026-03-14T07:30:00Z", "@patient", "Waited 6 hours in your ER, nobody cared"),
    ("2026-03-14T08:45:00Z", "@nurse", "Same here"),
    ("2026-03-14T08:20:00Z", "<b>@evil</b>", HOSTILE),
]


@pytest.fixture
def server(tmp_path, clock):
    s = Server(tmp_path, clock, library=library_with(tmp_path, "viral-complaint", listening_text()))
    s.running_incident()
    from engine.app import inbound
    from engine.app.context import App
    from engine.app.principal import Principal

    app = App(s.config, clock)
    for i, (posted, author, said) in enumerate(MESSAGES, 1):
        inbound.receive(app, Principal.asserted("alice"), INC, {
            "source": "x", "source_id": str(1000 + i), "author": author, "text": said, "posted_at": posted})
    yield s
    s.client.close()


def _rows(html: str) -> list[tuple[str, str]]:
    """(message, its Waited cell) of each row of the page's inbox, in order."""
    inbox = html.split('id="inbox"', 1)[1].split("</section>", 1)[0]
    return [(m, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", waited)).strip())
            for m, waited in re.findall(r'<tr id="msg-(M\d+)".*?<td>.*?</td>\s*<td class="said">.*?</td>\s*'
                                        r"<td>(.*?)</td>", inbox, flags=re.S)]


def test_the_page_lists_the_messages_as_the_inbox_command_does(server, cli):
    client, _ = browser(server, "carol")
    page = client.get(f"/incidents/{INC}")
    assert page.status_code == 200
    assert _rows(page.text) == [("M1", "OVERDUE 1h30m of a 1h target"), ("M3", "40m of a 1h target"),
                                ("M2", "15m of a 1h target")]
    assert "3 of 3 message(s) waiting for an answer" in page.text
    listed = json.loads(cli("inbox", INC, "--json").stdout)
    assert [(r["message"], r["waiting_seconds"], r["target_seconds"], r["overdue"]) for r in listed] == [
        ("M1", 5400, 3600, True), ("M3", 2400, 3600, False), ("M2", 900, 3600, False)]


def test_hostile_inbound_text_is_shown_as_text(server):
    client, _ = browser(server, "carol")
    page = client.get(f"/incidents/{INC}").text
    assert "<script>alert('inbox')" not in page and "<img src=x" not in page and "<b>@evil" not in page
    assert "&lt;script&gt;alert(&#39;inbox&#39;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;@evil&lt;/b&gt;" in page


def test_mark_handled_records_the_reason_and_the_page_shows_it(server):
    client, csrf = browser(server, "carol")
    r = client.post(f"/incidents/{INC}/inbox/handle", data={"csrf": csrf, "message": "M2", "reason": "duplicate",
                                                           "note": "same person as M1"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/incidents/{INC}?done=marked%20M2%20handled%20%28a%20duplicate%29#inbox"
    [handled] = [e for e in server.events() if e.type == "MessageHandled"]
    assert (handled.actor, handled.data) == ("carol", {"message": "M2", "reason": "duplicate",
                                                       "note": "same person as M1", "auth": "password"})
    page = client.get(f"/incidents/{INC}").text
    assert "handled: a duplicate, by carol at 2026-03-14T09:00:00.000Z (same person as M1)" in page
    assert "2 of 3 message(s) waiting" in page


@pytest.mark.parametrize("form, status, shown", [
    ({"message": "M2", "reason": "bored"}, 400, "&#39;bored&#39; is not one of spam, duplicate, private"),
    ({"message": "M9", "reason": "spam"}, 404, "no message &#39;M9&#39; (messages: M1, M2, M3)"),
])
def test_a_bad_handle_form_is_refused_naming_what_is_wrong_and_changes_nothing(server, form, status, shown):
    client, csrf = browser(server, "carol")
    before = len(server.events())
    r = client.post(f"/incidents/{INC}/inbox/handle", data={"csrf": csrf, **form})
    assert r.status_code == status
    assert shown in r.text
    assert len(server.events()) == before


def test_a_message_already_handled_is_not_handled_twice(server):
    client, csrf = browser(server, "carol")
    form = {"csrf": csrf, "message": "M2", "reason": "spam"}
    assert client.post(f"/incidents/{INC}/inbox/handle", data=form, follow_redirects=False).status_code == 303
    again = client.post(f"/incidents/{INC}/inbox/handle", data=form)
    assert again.status_code == 403 and "message M2 is already handled" in again.text
    assert len([e for e in server.events() if e.type == "MessageHandled"]) == 1


def test_reply_drafts_a_post_answering_the_message_on_its_channel(server):
    client, csrf = browser(server, "carol")
    r = client.post(f"/incidents/{INC}/inbox/reply", data={"csrf": csrf, "message": "M1", "template": "public_ack"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    assert "drafted%20a%20reply%20to%20M1%3A%20public_ack/x/en/M1" in r.headers["location"]
    drafted = [e.data for e in server.events() if e.type == "PostDrafted"]
    replies = [(d["post"], d["reply_to"], d["channel"]) for d in drafted if d.get("reply_to")]
    assert replies[0] == ("public_ack/x/en/M1", "M1", "x")  # and one in each of the template's languages
    assert {p for p, m, ch in replies} == {f"public_ack/x/{lang}/M1" for lang in ("en", "es", "ar")}


def test_someone_without_a_role_sees_no_forms_and_is_refused(server):
    client, csrf = browser(server, "dave")
    page = client.get(f"/incidents/{INC}").text
    assert "Mark M1 handled" not in page and "Draft reply" not in page
    assert _rows(page)[0] == ("M1", "OVERDUE 1h30m of a 1h target")  # reading is allowed
    before = len(server.events())
    r = client.post(f"/incidents/{INC}/inbox/handle", data={"csrf": csrf, "message": "M1", "reason": "spam"})
    assert r.status_code == 403 and "dave holds no role in this incident" in r.text
    r = client.post(f"/incidents/{INC}/inbox/reply", data={"csrf": csrf, "message": "M1", "template": "public_ack"})
    assert r.status_code == 403
    assert len(server.events()) == before


def test_forms_offered_to_a_member(server):
    page = browser(server, "carol")[0].get(f"/incidents/{INC}").text
    assert page.count("Draft reply</button>") == 3 and page.count("Mark handled</button>") == 3
    assert '<label for="reason-M1">Reason</label>' in page


def test_the_board_shows_the_unanswered_count_and_the_oldest_wait(server):
    client, csrf = browser(server, "carol")
    text = re.sub(r"<[^>]+>", "", client.get("/board/rows").text)
    assert "Unanswered: 3 message(s), the oldest waiting 1h30m; 1 past target" in text
    client.post(f"/incidents/{INC}/inbox/handle", data={"csrf": csrf, "message": "M1", "reason": "private"})
    text = re.sub(r"<[^>]+>", "", client.get("/board").text)
    assert "Unanswered: 2 message(s), the oldest waiting 40m" in text and "past target" not in text
