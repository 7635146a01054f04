"""The web app's pages, server side: who is sent to sign in, which forms are refused,
what a refusal shows, and that every hostile text is shown as text. (The whole
incident in a real browser: test_web_browser.py.)"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

pytest.importorskip("fastapi")

from server_support import INC, PASSWORD, Server  # noqa: E402

PAGES = ["/board", "/board/rows", "/queue", "/start", "/start/viral-complaint", f"/incidents/{INC}",
         f"/incidents/{INC}/audit", f"/incidents/{INC}/report"]
FORMS = [("/queue/approve", {"pick": f"{INC}|public_ack/x/en|1"}),
         ("/queue/reject", {"key": f"{INC}|public_ack/x/en|1", "reason": "no"}),
         (f"/incidents/{INC}/assign", {"role": "social_media", "person": "dave"}),
         (f"/incidents/{INC}/tasks", {"done": "confirm_post"}),
         (f"/incidents/{INC}/advance", {"trigger": "acknowledge"}),
         (f"/incidents/{INC}/notes", {"text": "a note"}),
         (f"/incidents/{INC}/render", {"template": "public_ack"}),
         (f"/incidents/{INC}/edit", {"post": "public_ack/x/en", "text": "new text"}),
         (f"/incidents/{INC}/publish", {"post": "public_ack/x/en"}),
         ("/start/viral-complaint", {"title": "t", "input:complaint_url": "https://x.com/a/status/2",
                                     "input:complaint_channel": "x"}),
         ("/signout", {})]


@pytest.fixture
def server(tmp_path, clock):
    s = Server(tmp_path, clock)
    yield s
    s.client.close()


@pytest.fixture
def drafted(server):
    """The running incident with carol's public_ack drafts awaiting bob (spokesperson)."""
    server.running_incident()
    r = server.call("POST", f"/incidents/{INC}/render", "carol", json={"template": "public_ack",
                                                                       "channels": ["x"], "langs": ["en", "es"]})
    assert r.status_code == 200, r.text
    return server


def browser(server, name: str):
    """A browser signed in through the sign-in page: (client, the CSRF token of its pages)."""
    from fastapi.testclient import TestClient

    client = TestClient(server.app, base_url="http://127.0.0.1")
    r = client.post("/signin", data={"name": name, "password": PASSWORD, "then": "/queue",
                                     "csrf": signin_token(client)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/queue", r.text
    page = client.get("/queue")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client, csrf


def signin_token(client) -> str:
    form = client.get("/signin").text
    return re.search(r'name="csrf" value="([^"]+)"', form).group(1)


# -- signing in and out ----------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_a_page_sends_someone_not_signed_in_to_sign_in_and_back(server, path):
    server.add_people()
    r = server.client.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/signin?then=" + path


def test_signing_in_with_a_wrong_password_shows_the_refusal_and_starts_no_session(server):
    server.add_people("bob")
    r = server.client.post("/signin", data={"name": "bob", "password": "wrong", "then": "/queue",
                                            "csrf": signin_token(server.client)})
    assert r.status_code == 401
    assert '<p class="error" role="alert">authentication failed: the credentials are not valid' in r.text
    assert 'value="bob"' in r.text and "wrong" not in r.text
    assert "playbook_session" not in r.headers.get("set-cookie", "")
    assert server.client.get("/queue", follow_redirects=False).status_code == 303


def test_sign_in_returns_only_to_a_page_of_this_server(server):
    server.add_people("bob")
    r = server.client.post("/signin", data={"name": "bob", "password": PASSWORD, "then": "//evil.example/x",
                                            "csrf": signin_token(server.client)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_signing_out_ends_the_session_for_its_cookie_everywhere(server):
    from fastapi.testclient import TestClient

    server.add_people("bob")
    client, csrf = browser(server, "bob")
    cookie = client.cookies.get("playbook_session")
    r = client.post("/signout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    replay = TestClient(server.app, base_url="http://127.0.0.1", cookies={"playbook_session": cookie})
    assert replay.get("/board", follow_redirects=False).status_code == 303


def test_a_sign_in_form_without_its_own_token_is_refused(server):
    """Login CSRF: another site cannot sign this browser in to an account it chose."""
    server.add_people("bob")
    signin_token(server.client)  # this browser has a form token; the forged form does not
    for forged in ({}, {"csrf": "guessed"}):
        r = server.client.post("/signin", data={"name": "bob", "password": PASSWORD, **forged},
                               follow_redirects=False)
        assert r.status_code == 403 and "came from another site" in r.text
        assert "playbook_session" not in r.headers.get("set-cookie", "")


def test_the_single_sign_on_button_shows_only_when_the_server_has_it(server, tmp_path, clock):
    r = server.client.get("/signin")
    assert r.status_code == 200 and "/auth/sso" not in r.text
    assert 'for="password"' in r.text and 'for="name"' in r.text
    settings = tmp_path / "oidc.yaml"
    settings.write_text("issuer: https://idp.example\nclient_id: playbook\n"
                        "redirect_uri: http://127.0.0.1/auth/callback\n", encoding="utf-8")
    (tmp_path / "sso").mkdir()
    with_sso = Server(tmp_path / "sso", clock, oidc=settings)
    with_sso.running_incident()
    with_sso.call("POST", f"/incidents/{INC}/render", "carol", json={"template": "public_ack", "channels": ["x"],
                                                                    "langs": ["en"]})
    page = with_sso.client.get("/signin?then=/queue").text
    assert '<a class="button" href="/auth/sso?then=%2Fqueue">Sign in with single sign-on</a>' in page
    client, _ = browser(with_sso, "bob")
    assert 'href="/auth/sso?fresh=true&amp;then=/queue"' in client.get("/queue").text


# -- forms: CSRF, refusals ---------------------------------------------------------------


@pytest.mark.parametrize("path,form", FORMS)
def test_a_form_without_the_session_csrf_token_is_refused_and_writes_nothing(drafted, path, form):
    client, csrf = browser(drafted, "alice")
    before = len(drafted.events())
    for sent in (form, {**form, "csrf": "not-the-token"}):
        r = client.post(path, data=sent, follow_redirects=False)
        assert r.status_code == 403, (path, r.text)
        assert "CSRF" in r.text and "Nothing was changed" in r.text
    assert len(drafted.events()) == before


@pytest.mark.parametrize("path,form", FORMS[:-1])
def test_a_form_sent_without_a_session_asks_to_sign_in_and_keeps_what_was_typed(drafted, path, form):
    before = len(drafted.events())
    r = drafted.client.post(path, data={**form, "csrf": "x"}, follow_redirects=False)
    assert r.status_code == 401 and "Sign in" in r.text
    if "text" in form:
        assert form["text"] in r.text and "What you typed" in r.text
    assert len(drafted.events()) == before


def test_an_expired_session_asks_to_sign_in_again_with_the_note_typed(drafted, clock):
    client, csrf = browser(drafted, "alice")
    clock.advance(timedelta(days=30))
    r = client.post(f"/incidents/{INC}/notes", data={"csrf": csrf, "text": "Press call at 10:00 <b>x</b>"})
    assert r.status_code == 401
    assert "Press call at 10:00 &lt;b&gt;x&lt;/b&gt;" in r.text
    assert not any(e.type == "NoteAdded" for e in drafted.events())


def test_someone_without_the_role_sees_the_engines_refusal_and_nothing_changes(drafted):
    client, csrf = browser(drafted, "dave")
    before = len(drafted.events())
    r = client.post(f"/incidents/{INC}/advance", data={"csrf": csrf, "trigger": "investigate"})
    assert r.status_code in (403, 409, 422), r.text
    assert "That was not done" in r.text and "Nothing was changed" in r.text
    r = client.post("/queue/approve", data={"csrf": csrf, "pick": f"{INC}|public_ack/x/en|1"})
    assert r.status_code == 403
    assert "dave holds none of the roles still needed" in r.text
    assert len(drafted.events()) == before


def test_the_author_of_a_draft_does_not_see_it_in_their_queue_and_cannot_approve_it(drafted):
    drafted.call("POST", f"/incidents/{INC}/assign", "alice", json={"role": "spokesperson", "person": "carol"})
    client, csrf = browser(drafted, "carol")
    assert "public_ack/x/en" not in client.get("/queue").text
    r = client.post("/queue/approve", data={"csrf": csrf, "pick": f"{INC}|public_ack/x/en|1"})
    assert r.status_code == 403 and "cannot approve their own post" in r.text


def test_a_made_up_queue_entry_is_a_clear_error(drafted):
    client, csrf = browser(drafted, "bob")
    for key, status, words in (("nonsense", 400, "not a draft of the queue"),
                               (f"{INC}|public_ack/x/en|9", 404, "has no version 9"),
                               (f"INC-NOPE|public_ack/x/en|1", 404, "INC-NOPE")):
        r = client.post("/queue/approve", data={"csrf": csrf, "pick": key})
        assert r.status_code == status and words in r.text, (key, r.text)
    r = client.post("/queue/approve", data={"csrf": csrf})
    assert r.status_code == 400 and "tick at least one draft" in r.text


# -- the queue and the signature -------------------------------------------------------


def test_the_queue_lists_what_awaits_me_oldest_first_with_what_each_needs(drafted, clock):
    clock.advance(timedelta(minutes=7))
    client, _ = browser(drafted, "bob")
    page = client.get("/queue").text
    assert page.index("public_ack/x/en v1") < page.index("public_ack/x/es v1")
    assert "Waiting for 7m" in page
    assert "Still needed: approval by spokesperson" in page
    assert "x: " in page and "of 280 weighted characters" in page
    assert "v1 by carol (rendered)" in page
    assert "Approve all 2 versions of public_ack" in page
    others, _ = browser(drafted, "petra")
    assert "Nothing is waiting for you" in others.get("/queue").text


def test_several_versions_approved_in_one_step_are_each_their_own_signed_approval(drafted):
    client, csrf = browser(drafted, "bob")
    r = client.post("/queue/approve", data={"csrf": csrf, "group": f"{INC}|public_ack/x/en|1\n{INC}|public_ack/x/es|1"})
    assert r.status_code == 200 and "approved public_ack/x/en v1, public_ack/x/es v1" in r.text
    approvals = [e for e in drafted.events() if e.type == "PostApproved"]
    assert [e.data["post"] for e in approvals] == ["public_ack/x/en", "public_ack/x/es"]
    assert len({e.data["sha256"] for e in approvals}) == 2
    assert all(e.actor == "bob" and e.data["signature"]["sha256"] == e.data["sha256"] for e in approvals)


def test_a_signature_needs_a_sign_in_within_five_minutes_or_the_password_again(drafted, clock):
    client, csrf = browser(drafted, "bob")
    clock.advance(timedelta(minutes=6))
    r = client.post("/queue/approve", data={"csrf": csrf, "pick": f"{INC}|public_ack/x/en|1"})
    assert r.status_code == 403 and "within the last 5 minutes" in r.text
    assert not any(e.type == "PostApproved" for e in drafted.events())
    r = client.post("/queue/approve", data={"csrf": csrf, "pick": f"{INC}|public_ack/x/en|1", "password": "wrong"})
    assert r.status_code == 401 and not any(e.type == "PostApproved" for e in drafted.events())
    r = client.post("/queue/approve", data={"csrf": csrf, "pick": f"{INC}|public_ack/x/en|1", "password": PASSWORD})
    assert r.status_code == 200, r.text
    signed = next(e for e in drafted.events() if e.type == "PostApproved").data["signature"]
    assert signed["authenticated_at"] == signed["signed_at"]


def test_a_rejection_needs_a_reason_and_is_recorded_with_it(drafted):
    client, csrf = browser(drafted, "bob")
    r = client.post("/queue/reject", data={"csrf": csrf, "key": f"{INC}|public_ack/x/en|1", "reason": " "})
    assert r.status_code == 400 and "Reason to reject: a rejection needs a reason" in r.text
    r = client.post("/queue/reject", data={"csrf": csrf, "key": f"{INC}|public_ack/x/en|1", "reason": "tone"})
    assert r.status_code == 200 and "rejected public_ack/x/en v1" in r.text
    assert [e.data["reason"] for e in drafted.events() if e.type == "PostRejected"] == ["tone"]


def test_an_edit_shows_the_change_and_who_wrote_each_version(drafted):
    alice, csrf = browser(drafted, "alice")
    drafted.call("POST", f"/incidents/{INC}/edit", "carol",
                 json={"post": "public_ack/x/en", "text": "We hear you. Call 555-0100 <b>now</b>."})
    bob, _ = browser(drafted, "bob")
    page = bob.get("/queue").text
    assert "public_ack/x/en v2" in page and "Changes since v1" in page
    assert '<span class="dadd">+ We hear you. Call 555-0100 &lt;b&gt;now&lt;/b&gt;.</span>' in page
    assert "v2 by carol (edited)" in page


# -- hostile text, and the same figures as the API --------------------------------------

HOSTILE = '<img src=x onerror=alert(1)>"\'</textarea><script>alert(2)</script>'


def test_hostile_titles_notes_and_inputs_are_shown_as_text_on_every_page(server):
    server.add_people()
    body = {"playbook": "viral-complaint", "title": "T " + HOSTILE,
            "inputs": {"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x",
                       "hospital_name": "St " + HOSTILE},
            "assign": {"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora",
                       "patient_relations": "petra", "social_media": "carol"}}
    r = server.call("POST", "/incidents", "alice", json=body)
    assert r.status_code == 201, r.text
    server.call("POST", f"/incidents/{INC}/notes", "alice", json={"text": "N " + HOSTILE})
    server.call("POST", f"/incidents/{INC}/tasks/confirm_post", "alice", json={"done": True})
    server.call("POST", f"/incidents/{INC}/advance", "alice", json={"trigger": "acknowledge"})
    server.call("POST", f"/incidents/{INC}/render", "carol", json={"template": "public_ack", "channels": ["x", "facebook"],
                                                                  "langs": ["en"]})
    client, _ = browser(server, "bob")
    for path in ("/board", "/board/rows", "/queue", f"/incidents/{INC}", f"/incidents/{INC}/audit"):
        page = client.get(path).text
        assert "<img src=x" not in page and "<script>alert" not in page, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in page, path


def test_the_board_and_the_incident_page_show_the_figures_of_status_json(drafted, clock):
    from cli import main
    from click.testing import CliRunner

    clock.advance(timedelta(minutes=75))
    client, _ = browser(drafted, "alice")
    out = CliRunner().invoke(main, ["status", INC, "--json"], obj={"clock": clock},
                             env={"PLAYBOOK_DB": str(drafted.db), "PLAYBOOK_ACTOR": "alice"})
    assert out.exit_code == 0, out.output
    status = json.loads(out.output)
    board, page = client.get("/board").text, client.get(f"/incidents/{INC}").text
    assert f"stage <strong>{status['stage']}</strong>" in board and f"severity {status['severity']}" in board
    running = [c for c in status["clocks"] if c["outcome"] == "open"]
    assert any(c["overdue"] for c in running), status["clocks"]  # the first public post was due in 60m
    for c in running:
        assert f"{c['label']}: due {c['due_at']}" in page
    assert "OVERDUE" in board and '<li class="card overdue">' in board


def test_a_drill_is_marked_as_a_drill_on_the_board_and_its_page(server):
    server.add_people()
    body = {"playbook": "viral-complaint", "title": "Exercise",
            "inputs": {"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"},
            "assign": {"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora",
                       "patient_relations": "petra"}}
    r = server.call("POST", "/drills", "alice", json=body)
    assert r.status_code == 201, r.text
    drill = r.json()["id"]
    moved = server.call("POST", f"/incidents/{drill}/advance-clock", "alice", json={"duration": "30m"})
    assert moved.status_code == 200, moved.text
    client, _ = browser(server, "alice")
    board = client.get("/board").text
    assert "DRILL" in board and "(Detect and triage) for 30m" in board  # the drill's own clock, not the wall clock
    page = client.get(f"/incidents/{drill}").text
    assert "THIS IS A DRILL" in page and "for 30m (since" in page


# -- starting, and confidential inputs ---------------------------------------------------


def test_the_start_form_is_built_from_the_playbooks_inputs_and_marks_confidential_ones(server):
    server.add_people()
    client, csrf = browser(server, "alice")
    form = client.get("/start/viral-complaint").text
    assert re.search(r'<label for="in-patient_name">patient_name <span class="tag conf">CONFIDENTIAL', form)
    assert 'id="in-patient_name" name="input:patient_name" type="password"' in form
    assert 'id="in-complaint_url" name="input:complaint_url" type="url" required' in form
    assert '<select id="in-complaint_channel"' in form
    r = client.post("/start/viral-complaint", data={
        "csrf": csrf, "title": "Complaint", "severity": "high", "input:complaint_url": "https://x.com/p/status/1",
        "input:complaint_channel": "x", "input:patient_name": "Jane Roe", "role:incident_lead": "alice",
        "role:spokesperson": "bob", "role:compliance": "cora", "role:patient_relations": "petra",
        "role:social_media": "carol"})
    assert r.status_code == 200 and f"started {INC}" in r.text
    started = server.events()[0].data
    assert started["severity"] == "high" and started["inputs"]["patient_name"] == "Jane Roe"
    assert "Jane Roe" not in r.text
    server.call("POST", f"/incidents/{INC}/tasks/confirm_post", "alice", json={"done": True})
    server.call("POST", f"/incidents/{INC}/advance", "alice", json={"trigger": "acknowledge"})
    server.call("POST", f"/incidents/{INC}/render", "carol", json={"template": "public_ack"})
    bob, _ = browser(server, "bob")
    assert "Jane Roe" not in bob.get("/queue").text and "Jane Roe" not in bob.get(f"/incidents/{INC}").text


def test_starting_with_a_missing_required_input_names_it_and_starts_nothing(server):
    server.add_people()
    client, csrf = browser(server, "alice")
    r = client.post("/start/viral-complaint", data={"csrf": csrf, "title": "Complaint",
                                                    "input:complaint_channel": "x", "role:incident_lead": "alice"})
    assert r.status_code in (400, 422) and "complaint_url" in r.text
    assert server.call("GET", "/incidents", "alice").json() == []
    assert client.get("/start/no-such-playbook").status_code == 404


def _post(channel: str, text, hits=()) -> dict:
    from engine.posts.channels import count

    measured = count(channel, text["body"] if isinstance(text, dict) else text)
    return {"channel": channel, "version": 1, "text": text, "hits": list(hits), "leaks": [],
            "count": {"used": measured.used, "limit": measured.limit, "unit": measured.unit,
                      "detail": measured.detail, "fits": measured.fits}}


def _shown(post: dict) -> str:
    from engine.server.pages.frame import templates
    from engine.server.pages.preview import preview

    return templates().get_template("post.html.j2").render(post=post, p=preview(post, {}), id="p")


def test_a_web_post_is_shown_rendered_in_a_sandboxed_frame_and_as_escaped_source():
    shown = _shown(_post("web", '<h1>Update</h1><script>alert(1)</script><img src=x onerror=alert(2)>'))
    assert '<iframe class="webview" sandbox="" srcdoc="&lt;h1&gt;Update&lt;/h1&gt;&lt;script&gt;' in shown
    assert "<script>" not in shown and "<img src=x" not in shown


def test_an_sms_shows_its_segments_and_the_character_that_forced_ucs2():
    shown = _shown(_post("sms", "Clinic closed today \u2013 call us " + "x" * 60))
    assert "sms: 2 of" in shown and "segments" in shown
    assert "UCS-2 because of" in shown and "at character 21" in shown


def test_flagged_identifiers_are_highlighted_in_the_text_and_an_email_shows_its_subject():
    post = _post("email", {"subject": "About your <visit>", "body": "Call 0612345678 today."},
                 hits=[{"kind": "phone", "text": "0612345678"}])
    shown = _shown(post)
    assert "Call <mark title=\"possible phone\">0612345678</mark> today." in shown
    assert "Subject:</span> About your &lt;visit&gt;" in shown


@pytest.mark.parametrize("path,form,status,words", [
    (f"/incidents/{INC}/assign", {"role": "no_such_role", "person": "dave"}, 400, "no_such_role"),
    (f"/incidents/{INC}/assign", {"role": "social_media", "person": "nobody"}, 400, "not an active account: nobody"),
    (f"/incidents/{INC}/advance", {"trigger": "no_such_move"}, 404, "no_such_move"),
    (f"/incidents/{INC}/render", {"template": "no_such_template"}, 404, "no_such_template"),
    (f"/incidents/{INC}/edit", {"post": "public_ack/x/en", "text": "   "}, 400, "edited text must be 1 to"),
    (f"/incidents/{INC}/edit", {"post": "no/such/post", "text": "x"}, 404, "no/such/post"),
    (f"/incidents/{INC}/publish", {"post": "public_ack/x/en"}, 403, "public_ack/x/en"),
    (f"/incidents/{INC}/notes", {"text": ""}, 400, "note"),
    ("/incidents/INC-NOPE/notes", {"text": "hello"}, 404, "INC-NOPE"),
])
def test_bad_input_on_an_incident_form_is_named_and_changes_nothing(drafted, path, form, status, words):
    client, csrf = browser(drafted, "alice")
    before = len(drafted.events())
    r = client.post(path, data={**form, "csrf": csrf})
    assert r.status_code == status, r.text
    assert words in r.text and "Nothing was changed" in r.text and "Traceback" not in r.text
    assert len(drafted.events()) == before


def test_an_unknown_incident_page_is_a_404_page(drafted):
    client, _ = browser(drafted, "alice")
    for path in ("/incidents/INC-NOPE", "/incidents/INC-NOPE/audit", "/incidents/INC-NOPE/report"):
        r = client.get(path)
        assert r.status_code == 404 and "INC-NOPE" in r.text and r.headers["content-type"].startswith("text/html")


def test_a_date_and_time_typed_in_the_browser_is_read_as_utc(server):
    server.add_people()
    client, csrf = browser(server, "alice")
    assert "complaint_posted_at (UTC)" in client.get("/start/viral-complaint").text
    r = client.post("/start/viral-complaint", data={
        "csrf": csrf, "title": "Complaint", "input:complaint_url": "https://x.com/p/status/1",
        "input:complaint_channel": "x", "input:complaint_posted_at": "2026-03-14T08:30",
        "role:incident_lead": "alice", "role:spokesperson": "bob", "role:compliance": "cora",
        "role:patient_relations": "petra"})
    assert r.status_code == 200, r.text
    assert server.events()[0].data["inputs"]["complaint_posted_at"] == "2026-03-14T08:30:00Z"


def test_approving_a_draft_with_a_flagged_identifier_needs_a_reason_given_in_the_queue(drafted):
    r = drafted.call("POST", f"/incidents/{INC}/edit", "carol",
                     json={"post": "public_ack/x/en", "text": "Sorry. Call our nurse on 0612345678."})
    assert r.status_code == 200 and r.json()["hits"], r.text
    client, csrf = browser(drafted, "bob")
    key = f"{INC}|public_ack/x/en|2"
    page = client.get("/queue").text
    assert f'name="override:{key}" form="approve"' in page and "<mark" in page
    r = client.post("/queue/approve", data={"csrf": csrf, "pick": key})
    assert r.status_code == 403 and "possible identifiers in a public post" in r.text
    r = client.post("/queue/approve", data={"csrf": csrf, "pick": key, f"override:{key}": "our ward's line"})
    assert r.status_code == 200, r.text
    assert [e.data["reason"] for e in drafted.events() if e.type == "IdentifiersOverridden"] == ["our ward's line"]


def test_a_confidential_value_typed_into_the_title_is_warned_about_without_showing_it(server):
    server.add_people()
    client, csrf = browser(server, "alice")
    r = client.post("/start/viral-complaint", data={
        "csrf": csrf, "title": "Complaint by Jane Roe", "input:complaint_url": "https://x.com/p/status/1",
        "input:complaint_channel": "x", "input:patient_name": "Jane Roe", "role:incident_lead": "alice",
        "role:spokesperson": "bob", "role:compliance": "cora", "role:patient_relations": "petra"})
    assert r.status_code == 200
    notice = re.search(r'<p class="notice" role="status">(.*?)</p>', r.text).group(1)
    assert "confidential input patient_name also appears in title" in notice and "Jane Roe" not in notice


def test_the_queue_page_and_the_api_list_the_same_drafts_with_the_same_waits(drafted, clock):
    """Both read releases.awaiting: same drafts, same order, same waited time and blocked clock."""
    drafted.call("POST", f"/incidents/{INC}/edit", "carol", json={"post": "public_ack/x/es", "text": "Lo sentimos."})
    clock.advance(timedelta(minutes=12))
    r = drafted.call("GET", "/queue", "bob", scope="read")
    assert r.status_code == 200, r.text
    listed = r.json()
    assert [(i["post"], i["version"]) for i in listed] == [("public_ack/x/en", 1), ("public_ack/x/es", 2)]
    assert all(i["waited_s"] == 12 * 60 and i["roles"] == ["spokesperson"] for i in listed)
    assert listed[0]["blocks"]["label"] and listed[0]["missing"] == ["approval by spokesperson"]
    client, _ = browser(drafted, "bob")
    page = client.get("/queue").text
    shown = re.findall(r'<label for="pick-[^"]+">([^<]+) v(\d+)</label>', page)
    assert shown == [(i["post"], str(i["version"])) for i in listed]
    assert page.count("Waiting for 12m") == 2 and f"Blocks <strong" in page and listed[0]["blocks"]["label"] in page
    assert drafted.call("GET", "/queue", "carol").json() == []  # carol wrote them
    assert drafted.call("GET", "/queue", "dave").json() == []  # dave holds no role


# -- notifications with a link -----------------------------------------------------------


def _destinations(server, public_url: str | None = "https://playbook.example.org/", **keys) -> None:
    """Destinations beside the server's database; its configuration with a public address."""
    from dataclasses import replace

    from engine.app.config import public_url as checked

    lines = [f'"{k.replace("__", ".")}": ["{v}"]' for k, v in keys.items()]
    (server.tmp / "destinations.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    server.app.state.config = replace(server.config, public_url=checked(public_url))


def test_a_new_draft_tells_its_approvers_with_a_link_to_it_in_the_queue(server):
    from test_delivery import Hook

    server.running_incident()
    with Hook() as everyone, Hook() as spokes, Hook() as legal:
        _destinations(server, approval=everyone.url, approval__spokesperson=spokes.url,
                      approval__compliance=legal.url)
        r = server.call("POST", f"/incidents/{INC}/render", "carol",
                        json={"template": "public_ack", "channels": ["x"], "langs": ["en", "es"]})
        assert r.status_code == 200, r.text
    assert legal.received == []  # public_ack waits for the spokesperson only
    assert len(everyone.received) == 1 and len(spokes.received) == 1
    notice = spokes.received[0]
    assert notice["title"] == f"[{INC}] approval needed: public_ack"
    body = notice["message"]
    assert f"carol rendered public_ack for incident {INC} (stage acknowledge)" in body
    assert "approval by spokesperson (bob)" in body
    link = f"https://playbook.example.org/queue#q-{INC}-public_ack-x-en-1"
    assert f"- public_ack/x/en v1 (x, en): {link}" in body and "public_ack/x/es v1 (x, es)" in body
    assert "ER wait time" not in body  # no title (it may hold a confidential value)
    assert all(p["text"][:40] not in body for p in r.json())  # nor the text of the drafts
    client, _ = browser(server, "bob")
    assert f'id="q-{INC}-public_ack-x-en-1"' in client.get("/queue").text  # where the link leads
    logged = [e for e in server.events() if e.type == "ApprovalNotified"]
    assert [(e.actor, e.data["ok"], e.data["roles"], e.data["drill"]) for e in logged] == [
        ("carol", True, ["spokesperson"], False)] * 2
    assert logged[0].data["posts"] == [{"post": "public_ack/x/en", "version": 1}, {"post": "public_ack/x/es", "version": 1}]
    assert logged[0].data["auth"] == "token" and "127.0.0.1" in logged[0].data["target"]
    assert server.call("POST", "/verify", "alice", json={"incident": INC}).json()["ok"] is True
    assert server.call("GET", f"/incidents/{INC}/report", "alice").status_code == 200
    assert "approval request for public_ack/x/en v1, public_ack/x/es v1 sent to json://" in \
        client.get(f"/incidents/{INC}").text


def test_an_edit_tells_the_approvers_again_and_without_a_public_address_says_there_is_no_link(drafted):
    from test_delivery import Hook

    with Hook() as spokes:
        _destinations(drafted, None, approval__spokesperson=spokes.url)
        r = drafted.call("POST", f"/incidents/{INC}/edit", "carol", json={"post": "public_ack/x/en", "text": "Sorry."})
        assert r.status_code == 200, r.text
    body = spokes.received[0]["message"]
    assert "carol edited public_ack" in body and "- public_ack/x/en v2 (x, en)\n" in body
    assert "No link: the server's public address is not configured (PLAYBOOK_PUBLIC_URL)" in body
    assert "http" not in body


def test_a_failed_notice_is_logged_and_the_draft_stands(server):
    from test_delivery import Hook

    server.running_incident()
    with Hook(status=500) as broken:
        _destinations(server, approval=broken.url)
        r = server.call("POST", f"/incidents/{INC}/render", "carol",
                        json={"template": "public_ack", "channels": ["x"], "langs": ["en"]})
    assert r.status_code == 200 and r.json()[0]["status"] == "draft"
    logged = [e.data for e in server.events() if e.type == "ApprovalNotified"]
    assert len(logged) == 1 and logged[0]["ok"] is False and logged[0]["error"]


def test_a_drills_notice_is_marked_as_a_drill(server):
    from test_delivery import Hook

    server.add_people()
    body = {"playbook": "viral-complaint", "title": "Exercise",
            "inputs": {"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"},
            "assign": {"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora",
                       "patient_relations": "petra", "social_media": "carol"}}
    drill = server.call("POST", "/drills", "alice", json=body).json()["id"]
    server.call("POST", f"/incidents/{drill}/tasks/confirm_post", "alice", json={"done": True})
    server.call("POST", f"/incidents/{drill}/advance", "alice", json={"trigger": "acknowledge"})
    with Hook() as spokes:
        _destinations(server, approval__spokesperson=spokes.url)
        r = server.call("POST", f"/incidents/{drill}/render", "carol",
                        json={"template": "public_ack", "channels": ["x"], "langs": ["en"]})
        assert r.status_code == 200, r.text
    [notice] = spokes.received
    assert notice["title"].startswith("[DRILL] ") and notice["message"].startswith("THIS IS A DRILL")
    assert [e.data["drill"] for e in server.events(drill) if e.type == "ApprovalNotified"] == [True]


def test_a_broken_destinations_file_is_named_before_anything_is_drafted(server):
    server.running_incident()
    (server.tmp / "destinations.yaml").write_text("approval: [unclosed\n", encoding="utf-8")
    before = len(server.events())
    r = server.call("POST", f"/incidents/{INC}/render", "carol", json={"template": "public_ack"})
    assert r.status_code == 400 and "destinations.yaml" in r.json()["detail"]
    assert len(server.events()) == before


@pytest.mark.parametrize("given,expected", [
    (None, None), ("", None), ("https://playbook.example.org/", "https://playbook.example.org"),
    ("http://127.0.0.1:8080/crisis", "http://127.0.0.1:8080/crisis")])
def test_the_public_address_is_read_from_playbook_public_url(tmp_path, given, expected):
    from engine.app.config import Config

    env = {} if given is None else {"PLAYBOOK_PUBLIC_URL": given}
    assert Config.resolve(env, db=str(tmp_path / "x.db")).public_url == expected


@pytest.mark.parametrize("bad", ["playbook.example.org", "ftp://host", "https://host/?a=1", "https://", "https://h/#x"])
def test_a_public_url_that_is_not_an_address_is_refused_naming_the_variable(tmp_path, bad):
    from engine.app.config import Config
    from engine.errors import UsageError

    with pytest.raises(UsageError, match="PLAYBOOK_PUBLIC_URL: .* is not the server's address") as e:
        Config.resolve({"PLAYBOOK_PUBLIC_URL": bad}, db=str(tmp_path / "x.db"))
    assert e.value.exit_code == 2


def test_the_report_inside_the_app_is_styled_by_a_served_style_sheet_under_the_same_content_policy(drafted):
    from cli import main
    from click.testing import CliRunner

    client, _ = browser(drafted, "alice")
    r = client.get(f"/incidents/{INC}/report")
    assert r.status_code == 200 and "<style" not in r.text
    assert '<link rel="stylesheet" href="/report.css">' in r.text
    policy = r.headers["content-security-policy"]
    assert "style-src 'self';" in policy and "unsafe-inline" not in policy and "sha256-" not in policy
    css = client.get("/report.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["content-security-policy"] == policy
    standalone = CliRunner().invoke(main, ["report", INC, "--format", "html"], obj={"clock": drafted.clock},
                                    env={"PLAYBOOK_DB": str(drafted.db), "PLAYBOOK_ACTOR": "alice"})
    assert standalone.exit_code == 0, standalone.output
    inline = re.search(r"<style>(.*?)</style>", standalone.output, re.S).group(1)  # still self-contained
    assert inline.strip() == css.text.strip() and "color-scheme: light" in css.text
    assert "<link" not in standalone.output


def test_a_command_line_client_gets_the_same_queue_from_the_server(drafted):
    """releases.awaiting through a remote App asks GET /api/v1/queue of the real server."""
    from dataclasses import replace

    from test_remote_cli import Uvicorn

    from engine.app import releases
    from engine.app.context import App
    from engine.app.principal import Principal

    served = Uvicorn(drafted.app)
    try:
        client = App(replace(drafted.config, server=served.url, token=drafted.token("bob", "read")), drafted.clock)
        try:
            remote = releases.awaiting(client, Principal("bob", method="token"))
        finally:
            client.close()
    finally:
        served.stop()
    assert [(i["post"], i["version"]) for i in remote] == [("public_ack/x/en", 1), ("public_ack/x/es", 1)]
    assert remote == drafted.call("GET", "/queue", "bob").json()


def test_a_failed_notice_is_sent_again_by_due_until_delivered_or_moot(server):
    from test_delivery import Hook

    server.running_incident()
    with Hook(status=500) as broken:
        _destinations(server, approval=broken.url)
        r = server.call("POST", f"/incidents/{INC}/render", "carol",
                        json={"template": "public_ack", "channels": ["x"], "langs": ["en"]})
        assert r.status_code == 200
        again = server.call("POST", "/due", "alice")  # still failing: logged, kept for the next due
        assert again.status_code == 200, again.text
        assert [(n["label"], n["ok"]) for n in again.json()["notified"]] == [("approval request (sent again)", False)]
        broken.status = 200
        delivered = server.call("POST", "/due", "alice").json()["notified"]
        assert [(n["label"], n["ok"]) for n in delivered] == [("approval request (sent again)", True)]
        assert "(sent again)" in broken.received[-1]["title"] and "carol drafted public_ack" in broken.received[-1]["message"]
        assert server.call("POST", "/due", "alice").json()["notified"] == []  # delivered: not sent a third time
    logged = [e.data for e in server.events() if e.type == "ApprovalNotified"]
    assert [(d["ok"], d.get("retry", False)) for d in logged] == [(False, False), (False, True), (True, True)]
    assert server.call("POST", "/verify", "alice", json={"incident": INC}).json()["ok"] is True


def test_a_failed_notice_whose_version_was_approved_is_dropped_not_sent(server):
    from test_delivery import Hook

    server.running_incident()
    with Hook(status=500) as broken:
        _destinations(server, approval=broken.url)
        server.call("POST", f"/incidents/{INC}/render", "carol",
                    json={"template": "public_ack", "channels": ["x"], "langs": ["en"]})
        approved = server.call("POST", f"/incidents/{INC}/approve", "bob",
                               json={"post": "public_ack/x/en", "version": 1})
        assert approved.status_code == 200, approved.text
        sent = len(broken.received)
        assert server.call("POST", "/due", "alice").json()["notified"] == []
        assert len(broken.received) == sent  # nothing sent about a version that waits no more
    logged = [e.data for e in server.events() if e.type == "ApprovalNotified"]
    assert logged[-1]["dropped"] == "those versions no longer wait for approval"
    client, _ = browser(server, "alice")
    assert "not sent again: those versions no longer wait for approval" in client.get(f"/incidents/{INC}").text
    assert server.call("POST", "/due", "alice").json()["notified"] == []  # dropped once, then nothing to do
    assert [d for d in logged if d.get("dropped")] == [logged[-1]]


def test_a_failed_notice_whose_destination_was_removed_is_dropped_not_sent_elsewhere(server):
    from test_delivery import Hook

    server.running_incident()
    with Hook(status=500) as broken, Hook() as other:
        _destinations(server, approval=broken.url)
        server.call("POST", f"/incidents/{INC}/render", "carol",
                    json={"template": "public_ack", "channels": ["x"], "langs": ["en"]})
        _destinations(server, approval=other.url)  # the failing address replaced by another
        assert server.call("POST", "/due", "alice").json()["notified"] == []
        assert other.received == []  # a notice goes again only where it failed, never to a new address
    logged = [e.data for e in server.events() if e.type == "ApprovalNotified"]
    assert logged[-1]["dropped"] == "the destination is no longer configured"
    from engine.store import open_store

    store = open_store(server.db)
    try:  # nothing left to send again
        assert "approval_notices" not in store.snapshot(INC).state
    finally:
        store.close()
