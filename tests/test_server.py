"""The team server: people authenticated, never asserted; the CLI's use cases over HTTP;
errors as problem details with the CLI's exit codes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

pytest.importorskip("fastapi")

from server_support import INC, OPENAPI, PASSWORD, VIRAL_BODY, Server  # noqa: E402


@pytest.fixture
def server(tmp_path, clock):
    s = Server(tmp_path, clock)
    yield s
    s.client.close()


def _problem(r, status: int, exit_code: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["exit_code"] == exit_code
    return body


# -- a whole incident, each person signed in as themselves --------------------------------


def test_a_lead_a_comms_officer_and_an_approver_run_an_incident_end_to_end(server):
    server.running_incident()
    drafted = server.call("POST", f"/incidents/{INC}/render", "carol",
                          json={"template": "public_ack", "channels": ["x"], "langs": ["en"]})
    assert drafted.status_code == 200, drafted.text
    post = drafted.json()[0]
    assert post["id"] == "public_ack/x/en" and post["author"] == "carol"
    browser, csrf = server.sign_in("bob")
    approved = browser.post(f"/api/v1/incidents/{INC}/approve", json={"post": post["id"], "version": 1},
                            headers={"X-CSRF-Token": csrf})
    assert approved.status_code == 200, approved.text
    assert approved.json()["missing"] == []
    published = server.call("POST", f"/incidents/{INC}/publish", "carol", json={"post": post["id"]})
    assert published.status_code == 200, published.text
    assert (server.tmp / "outbox").is_dir()
    events = server.events()
    approval = next(e for e in events if e.type == "PostApproved")
    assert approval.actor == "bob" and approval.data["auth"] == "password"
    assert approval.data["signature"]["meaning"] == "approved for publication on x in en"
    assert {e.data.get("auth") for e in events if e.actor == "alice"} == {"token"}
    verified = server.call("POST", "/verify", "dave", scope="read", json={"incident": INC})
    assert verified.status_code == 200 and verified.json()["ok"] is True


def test_the_author_cannot_approve_their_own_post_over_http_either(server):
    server.running_incident()
    server.call("POST", f"/incidents/{INC}/assign", "alice", json={"role": "spokesperson", "person": "carol"})
    server.call("POST", f"/incidents/{INC}/render", "carol", json={"template": "public_ack", "channels": ["x"],
                                                                  "langs": ["en"]})
    before = len(server.events())
    browser, csrf = server.sign_in("carol")
    r = browser.post(f"/api/v1/incidents/{INC}/approve", json={"post": "public_ack/x/en", "version": 1},
                     headers={"X-CSRF-Token": csrf})
    body = _problem(r, 403, 5)
    assert any("cannot approve their own post" in reason for reason in body["reasons"])
    assert len(server.events()) == before


# -- nobody acts as someone else --------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer pbk_not-a-token"},
                                     {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
                                     {"Authorization": "Bearer "}])
def test_no_valid_credential_is_401_with_one_message(server, headers):
    server.add_people()
    r = server.client.get("/api/v1/incidents", headers=headers)
    body = _problem(r, 401, 5)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "pbk_" not in json.dumps(body)


def test_an_asserted_name_in_the_body_is_refused(server):
    server.add_people()
    r = server.call("POST", "/incidents", "carol", json={**VIRAL_BODY, "as": "alice"})
    body = _problem(r, 400, 2)
    assert any(p["where"].endswith("as") for p in body["problems"])
    assert server.call("GET", "/incidents", "carol").json() == []


def test_roles_name_accounts(server):
    server.add_people("alice", "bob", "cora", "petra")
    r = server.call("POST", "/incidents", "alice", json={**VIRAL_BODY, "assign": {**VIRAL_BODY["assign"],
                                                                                 "spokesperson": "mallory"}})
    body = _problem(r, 400, 2)
    assert "not an active account: mallory" in body["detail"]


def test_a_revoked_an_expired_and_a_disabled_accounts_token_stop_working(server, clock):
    from engine.app.principal import Principal

    server.add_people()
    book, admin = server.accounts(), Principal.asserted("admin")
    assert server.call("GET", "/incidents", "alice").status_code == 200
    token_id = next(t["id"] for t in book.tokens(clock.now()) if t["owner"] == "alice")
    book.revoke_token(admin, token_id, clock.now())
    _problem(server.call("GET", "/incidents", "alice"), 401, 5)
    assert server.call("GET", "/incidents", "bob").status_code == 200
    book.disable(admin, "bob", clock.now())
    _problem(server.call("GET", "/incidents", "bob"), 401, 5)
    assert server.call("GET", "/incidents", "carol").status_code == 200
    clock.advance(timedelta(days=400))
    _problem(server.call("GET", "/incidents", "carol"), 401, 5)


def test_a_read_only_token_reads_but_cannot_act(server):
    server.running_incident()
    assert server.call("GET", f"/incidents/{INC}", "dave", scope="read").status_code == 200
    before = len(server.events())
    body = _problem(server.call("POST", f"/incidents/{INC}/notes", "alice", scope="read", json={"text": "hi"}),
                    403, 5)
    assert "scope is read" in body["detail"]
    assert len(server.events()) == before


# -- browser sessions ----------------------------------------------------------------------


def test_a_session_needs_its_csrf_token_for_every_change(server):
    server.running_incident()
    browser, csrf = server.sign_in("alice")
    assert browser.get(f"/api/v1/incidents/{INC}").status_code == 200  # reading needs none
    before = len(server.events())
    _problem(browser.post(f"/api/v1/incidents/{INC}/notes", json={"text": "forged"}), 403, 5)
    _problem(browser.post(f"/api/v1/incidents/{INC}/notes", json={"text": "forged"},
                          headers={"X-CSRF-Token": "0" * 64}), 403, 5)
    assert len(server.events()) == before
    ok = browser.post(f"/api/v1/incidents/{INC}/notes", json={"text": "mine"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200, ok.text


def test_the_session_cookie_is_httponly_strict_and_new_at_every_sign_in(server):
    server.add_people()
    first, _ = server.sign_in("alice")
    second, _ = server.sign_in("alice")
    assert first.cookies["playbook_session"] != second.cookies["playbook_session"]
    r = server.client.post("/api/v1/session", json={"name": "alice", "password": PASSWORD})
    cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("playbook_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")


def test_signing_out_ends_the_session(server):
    server.add_people()
    browser, csrf = server.sign_in("alice")
    stolen = browser.cookies["playbook_session"]
    assert browser.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 200
    server.client.cookies.set("playbook_session", stolen)
    replay = server.client.get("/api/v1/me")
    _problem(replay, 401, 5)


def test_a_session_expires(server, clock):
    server.add_people()
    browser, _ = server.sign_in("alice")
    assert browser.get("/api/v1/me").json()["name"] == "alice"
    clock.advance(timedelta(hours=13))
    _problem(browser.get("/api/v1/me"), 401, 5)


def test_wrong_passwords_lock_the_account_and_the_message_never_says_which(server):
    server.add_people()
    messages = set()
    for _ in range(5):
        r = server.client.post("/api/v1/session", json={"name": "alice", "password": "wrong password!!"})
        messages.add(_problem(r, 401, 5)["detail"])
    unknown = server.client.post("/api/v1/session", json={"name": "nobody", "password": "wrong password!!"})
    messages.add(_problem(unknown, 401, 5)["detail"])
    locked = server.client.post("/api/v1/session", json={"name": "alice", "password": PASSWORD})
    messages.add(_problem(locked, 401, 5)["detail"])
    assert len(messages) == 1


def test_an_approval_needs_a_sign_in_within_five_minutes_or_the_password_again(server, clock):
    server.running_incident()
    server.call("POST", f"/incidents/{INC}/render", "carol", json={"template": "public_ack", "channels": ["x"],
                                                                  "langs": ["en"]})
    browser, csrf = server.sign_in("bob")
    clock.advance(timedelta(minutes=6))
    body = {"post": "public_ack/x/en", "version": 1}
    stale = browser.post(f"/api/v1/incidents/{INC}/approve", json=body, headers={"X-CSRF-Token": csrf})
    assert any("sign in again" in r for r in _problem(stale, 403, 5)["reasons"])
    wrong = browser.post(f"/api/v1/incidents/{INC}/approve", json={**body, "password": "not the password"},
                         headers={"X-CSRF-Token": csrf})
    _problem(wrong, 401, 5)
    again = browser.post(f"/api/v1/incidents/{INC}/approve", json={**body, "password": PASSWORD},
                         headers={"X-CSRF-Token": csrf})
    assert again.status_code == 200, again.text


# -- problem details, limits -------------------------------------------------------------


def test_errors_are_problem_details_with_the_cli_exit_code(server):
    server.add_people()
    body = _problem(server.call("GET", "/incidents/INC-20990101-001", "alice"), 404, 4)
    assert body["type"].endswith(":not-found") and "INC-20990101-001" in body["detail"]
    _problem(server.call("POST", "/incidents", "alice", json={**VIRAL_BODY, "playbook": "nope"}), 404, 4)
    _problem(server.call("POST", "/incidents", "alice", json={"title": "no playbook"}), 400, 2)
    _problem(server.call("POST", "/incidents", "alice", content=b"{not json", headers={
        "content-type": "application/json"}), 400, 2)


def test_a_body_over_the_limit_is_413_and_changes_nothing(server):
    server.add_people()
    r = server.call("POST", "/incidents", "alice", content=b"x" * 1_000_001,
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert server.call("GET", "/incidents", "alice").json() == []


def test_every_response_carries_the_security_headers(server):
    r = server.client.get("/api/v1/healthz")
    assert r.status_code == 200
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_no_secret_reaches_the_log_the_database_or_an_error(server):
    server.running_incident()
    secret = server.token("alice")
    server.call("GET", "/incidents", headers={"Authorization": f"Bearer {secret}x"})
    server.client.post("/api/v1/session", json={"name": "alice", "password": PASSWORD + "x"})
    server.app.state.stores.close()
    raw = b"".join(p.read_bytes() for p in server.tmp.glob("incidents.db*"))
    assert secret.encode() not in raw and PASSWORD.encode() not in raw


def test_the_committed_openapi_document_is_the_one_the_server_serves(server):
    served = server.client.get("/openapi.json").json()
    assert json.loads(OPENAPI.read_text(encoding="utf-8")) == served, (
        "regenerate: python -m engine.server.openapi > docs/openapi.json")


# -- single sign-on ------------------------------------------------------------------------


def _sso_server(tmp_path, clock, idp):
    import yaml

    from oidc_idp import CLIENT_SECRET, REDIRECT_URI

    settings = tmp_path / "oidc.yaml"
    settings.write_text(yaml.safe_dump({"issuer": idp.issuer, "client_id": "playbook", "client_secret": CLIENT_SECRET,
                                        "redirect_uri": REDIRECT_URI}), encoding="utf-8")
    s = Server(tmp_path, clock, oidc=settings)
    return s


def _sso_sign_in(server, browser):
    import httpx

    start = browser.get("/auth/sso", follow_redirects=False)
    assert start.status_code == 303, start.text
    at_idp = httpx.get(start.headers["location"], follow_redirects=False)  # the provider approves
    assert at_idp.status_code == 302, at_idp.text
    back = at_idp.headers["location"].split("?", 1)[1]
    return browser.get(f"/auth/callback?{back}", follow_redirects=False)


def test_single_sign_on_gives_a_session_that_signs_approvals_as_oidc(tmp_path, clock, oidc_idp):
    from fastapi.testclient import TestClient

    server = _sso_server(tmp_path, clock, oidc_idp)
    server.running_incident()
    server.call("POST", f"/incidents/{INC}/render", "carol", json={"template": "public_ack", "channels": ["x"],
                                                                  "langs": ["en"]})
    oidc_idp.user = {**oidc_idp.user, "sub": "u-1002", "preferred_username": "bob", "email": "bob@hospital.example"}
    browser = TestClient(server.app, base_url="http://127.0.0.1")
    back = _sso_sign_in(server, browser)
    assert back.status_code == 303 and back.headers["location"] == "/"
    me = browser.get("/api/v1/me").json()
    assert (me["name"], me["auth"]) == ("bob", f"oidc:{oidc_idp.issuer}")
    csrf = browser.cookies["playbook_csrf"]
    r = browser.post(f"/api/v1/incidents/{INC}/approve", json={"post": "public_ack/x/en", "version": 1},
                     headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    approval = next(e for e in server.events() if e.type == "PostApproved")
    assert approval.actor == "bob" and approval.data["signature"]["auth"] == f"oidc:{oidc_idp.issuer}"


def test_single_sign_on_needs_an_active_account_here(tmp_path, clock, oidc_idp):
    from fastapi.testclient import TestClient

    server = _sso_server(tmp_path, clock, oidc_idp)
    server.add_people("bob")  # the provider signs in alice, who has no account here
    browser = TestClient(server.app, base_url="http://127.0.0.1")
    _problem(_sso_sign_in(server, browser), 401, 5)
    assert "playbook_session" not in browser.cookies


def test_a_callback_without_a_sign_in_started_in_this_browser_is_refused(tmp_path, clock, oidc_idp):
    from fastapi.testclient import TestClient

    server = _sso_server(tmp_path, clock, oidc_idp)
    server.add_people()
    started = TestClient(server.app, base_url="http://127.0.0.1")
    start = started.get("/auth/sso", follow_redirects=False)
    import httpx

    back = httpx.get(start.headers["location"], follow_redirects=False).headers["location"].split("?", 1)[1]
    other = TestClient(server.app, base_url="http://127.0.0.1")  # an attacker's forwarded link
    body = _problem(other.get(f"/auth/callback?{back}", follow_redirects=False), 401, 5)
    assert body["side"] == "request"


def test_sso_redirects_only_to_this_server(tmp_path, clock, oidc_idp):
    from fastapi.testclient import TestClient

    server = _sso_server(tmp_path, clock, oidc_idp)
    server.add_people()
    browser = TestClient(server.app, base_url="http://127.0.0.1")
    browser.get("/auth/sso?then=//evil.example/x", follow_redirects=False)
    import httpx

    start = browser.get("/auth/sso?then=https://evil.example/", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False).headers["location"].split("?", 1)[1]
    assert browser.get(f"/auth/callback?{back}", follow_redirects=False).headers["location"] == "/"


def test_without_sso_settings_the_sso_routes_say_so(server):
    _problem(server.client.get("/auth/sso", follow_redirects=False), 404, 4)


def test_export_and_bundle_are_sent_from_files_that_do_not_outlive_the_request(server, tmp_path, monkeypatch):
    import tempfile
    import zipfile
    from io import BytesIO

    server.running_incident()
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    exported = server.call("GET", f"/incidents/{INC}/export", "dave", scope="read")
    assert exported.status_code == 200
    lines = exported.text.splitlines()
    assert len(lines) == int(exported.headers["x-event-count"]) == len(server.events())
    assert json.loads(lines[0])["type"] == "IncidentStarted"
    bundled = server.call("GET", f"/incidents/{INC}/bundle", "dave", scope="read")
    assert bundled.status_code == 200
    assert "events.jsonl" in " ".join(zipfile.ZipFile(BytesIO(bundled.content)).namelist())
    assert bundled.headers["content-disposition"].endswith(f'filename="{INC}.bundle.zip"')
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize("content,code,says", [
    (None, 4, "PLAYBOOK_OIDC: no such file"),
    ("issuer: [unclosed", 2, "is not a readable YAML file"),
    ("- just\n- a list\n", 2, "must be a mapping of settings"),
    ("client_id: playbook\n", 2, "oidc.issuer: is required"),
])
def test_serve_refuses_bad_single_sign_on_settings_before_listening(tmp_path, content, code, says):
    from click.testing import CliRunner

    from cli import main

    settings = tmp_path / "oidc.yaml"
    if content is not None:
        settings.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--db", str(tmp_path / "incidents.db"), "--port", "0"],
                                env={"PLAYBOOK_OIDC": str(settings)})
    assert result.exit_code == code, result.output
    assert says in result.output and "Traceback" not in result.output
