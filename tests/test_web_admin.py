"""The administrators' pages and API: refused (403) for anyone who is not an
administrator, CSRF on every form, and every action recorded in the account log under
the administrator's name."""

from __future__ import annotations

import html
import re

import pytest

pytest.importorskip("fastapi")

from server_support import PASSWORD, Server  # noqa: E402
from test_web import browser  # noqa: E402

NEW_PASSWORD = "a brand new passphrase"
FORMS = [("/admin/users", {"name": "erin", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
         ("/admin/users/bob/disable", {}),
         ("/admin/users/bob/enable", {}),
         ("/admin/users/bob/grant-admin", {}),
         ("/admin/users/bob/revoke-admin", {}),
         ("/admin/users/bob/password", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
         ("/admin/tokens", {"label": "laptop", "scope": "read", "days": "30"}),
         ("/admin/tokens/TOKEN/revoke", {})]
PAGES = ["/admin", "/admin/tokens", "/admin/users/bob"]


@pytest.fixture
def server(tmp_path, clock):
    """alice is an administrator (granted on the server host), bob is not; bob has a token."""
    from engine.app.principal import Principal

    s = Server(tmp_path, clock)
    s.add_people("alice", "bob")
    s.accounts().grant_admin(Principal.asserted("root"), "alice", clock.now())
    s.token("bob", "read")
    yield s
    s.client.close()


def account_log(server) -> list[tuple[str, str, str, str]]:
    """(type, actor, auth, whom) of every event of the account log but sign-ins."""
    from engine.accounts import ACCOUNTS

    return [(e.type, e.actor, e.data["auth"], e.data.get("name") or e.data.get("owner") or e.data.get("id"))
            for e in server.accounts().store.events(ACCOUNTS) if not e.type.startswith("Session")]


def bobs_token(server) -> str:
    return next(t["id"] for t in server.accounts().tokens(server.clock.now()) if t["owner"] == "bob")


def _form(server, path: str, form: dict) -> tuple[str, dict]:
    return path.replace("TOKEN", bobs_token(server)), form


@pytest.mark.parametrize("path", PAGES)
def test_an_admin_page_is_refused_to_someone_who_is_not_an_administrator(server, path):
    client, _ = browser(server, "bob")
    r = client.get(path)
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert "bob is not an administrator" in r.text and "playbook user grant-admin bob" in r.text
    assert 'href="/admin"' not in client.get("/board").text  # no link to what is refused


@pytest.mark.parametrize("path,form", FORMS)
def test_an_admin_form_from_someone_who_is_not_an_administrator_is_refused_and_writes_nothing(server, path, form):
    path, form = _form(server, path, form)
    client, csrf = browser(server, "bob")
    before = account_log(server)
    r = client.post(path, data={**form, "csrf": csrf})
    assert r.status_code == 403 and "bob is not an administrator" in r.text and "Nothing was changed" in r.text
    assert account_log(server) == before


@pytest.mark.parametrize("path,form", FORMS)
def test_an_admin_form_without_the_session_csrf_token_is_refused_and_writes_nothing(server, path, form):
    path, form = _form(server, path, form)
    client, _ = browser(server, "alice")
    before = account_log(server)
    for sent in (form, {**form, "csrf": "not-the-token"}):
        r = client.post(path, data=sent, follow_redirects=False)
        assert r.status_code == 403 and "CSRF" in r.text, r.text
    assert account_log(server) == before


def test_every_admin_action_is_recorded_in_the_account_log_under_the_administrators_name(server):
    client, csrf = browser(server, "alice")
    assert 'href="/admin"' in client.get("/board").text
    before = len(account_log(server))
    steps = [("/admin/users", {"name": "erin", "display_name": "Erin <b>E</b>", "password": NEW_PASSWORD,
                               "confirm": NEW_PASSWORD}, "added account erin"),
             ("/admin/users/erin/disable", {}, "disabled account erin"),
             ("/admin/users/erin/enable", {}, "enabled account erin"),
             ("/admin/users/erin/grant-admin", {}, "erin is now an administrator"),
             ("/admin/users/erin/revoke-admin", {}, "erin is no longer an administrator"),
             ("/admin/users/erin/password", {"password": "another good passphrase",
                                             "confirm": "another good passphrase"}, "password of erin set anew"),
             (f"/admin/tokens/{bobs_token(server)}/revoke", {}, "revoked token")]
    for path, form, said in steps:
        r = client.post(path, data={**form, "csrf": csrf})
        assert r.status_code == 200 and said in r.text, (path, r.text)
    assert "Erin &lt;b&gt;E&lt;/b&gt;" in client.get("/admin").text
    assert account_log(server)[before:] == [
        ("UserAdded", "alice", "password", "erin"), ("UserDisabled", "alice", "password", "erin"),
        ("UserEnabled", "alice", "password", "erin"), ("AdminGranted", "alice", "password", "erin"),
        ("AdminRevoked", "alice", "password", "erin"), ("PasswordReset", "alice", "password", "erin"),
        ("TokenRevoked", "alice", "password", bobs_token(server))]
    assert server.accounts().authenticate_password("erin", "another good passphrase", server.clock.now())


def test_a_token_issued_on_the_tokens_page_is_shown_once_works_and_is_never_listed(server):
    client, csrf = browser(server, "alice")
    r = client.post("/admin/tokens", data={"csrf": csrf, "label": "laptop CLI", "scope": "admin", "days": "30"})
    assert r.status_code == 200, r.text
    secret = re.search(r'id="secret" value="(pbk_[^"]+)"', r.text).group(1)
    assert "will not be shown again" in r.text
    listing = client.get("/admin/tokens").text
    assert secret not in listing and "laptop CLI" in listing
    me = server.client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()
    assert me["name"] == "alice" and me["scope"] == "admin"
    assert account_log(server)[-1][:2] == ("TokenCreated", "alice")


def test_the_trail_of_an_account_shows_what_the_account_log_says_about_it_and_no_hash(server):
    browser(server, "bob")
    client, csrf = browser(server, "alice")
    client.post("/admin/users/bob/disable", data={"csrf": csrf})
    page = client.get("/admin/users/bob").text
    assert "account bob disabled" in page and "account bob created" in page and "bob signed in (password)" in page
    assert re.search(r"token [0-9a-f]{12} \(bob-read, scope read\) issued to bob", page)
    assert "$argon2" not in page and "password_hash" not in page
    trail = server.call("GET", "/admin/users/bob/trail", "alice", scope="admin").json()
    assert [e["type"] for e in trail] == ["UserAdded", "TokenCreated", "SessionStarted", "UserDisabled"]
    assert all("password_hash" not in e["data"] and "hash" not in e["data"] for e in trail)


@pytest.mark.parametrize("path,form,status,words", [
    ("/admin/users", {"name": "erin", "password": NEW_PASSWORD, "confirm": "something else entirely"}, 400,
     "the two passwords typed differ"),
    ("/admin/users", {"name": "erin", "password": "short", "confirm": "short"}, 400, "shorter than 12 characters"),
    ("/admin/users", {"name": "bob", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, 403, "exists already"),
    ("/admin/users/nobody/disable", {}, 404, "no account 'nobody'"),
    ("/admin/users/nobody/password", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, 404, "no account 'nobody'"),
    ("/admin/users/bob/rename", {}, 404, "no account change 'rename'"),
    ("/admin/users/alice/disable", {}, 403, "you cannot disable your own account"),
    ("/admin/users/alice/revoke-admin", {}, 403, "your own administrator rights"),
    ("/admin/tokens", {"label": "x", "scope": "read", "days": "0"}, 400, "1 to 365"),
    ("/admin/tokens", {"label": "x", "scope": "root", "days": "30"}, 400, "token scope 'root'"),
    ("/admin/tokens", {"label": " ", "scope": "read", "days": "30"}, 400, "needs a label"),
    ("/admin/tokens/000000000000/revoke", {}, 404, "no token '000000000000'"),
])
def test_bad_input_on_an_admin_form_is_named_and_changes_nothing(server, path, form, status, words):
    client, csrf = browser(server, "alice")
    before = account_log(server)
    r = client.post(path, data={**form, "csrf": csrf})
    assert r.status_code == status and words in html.unescape(r.text), r.text
    assert "Nothing was changed" in r.text and "Traceback" not in r.text
    assert account_log(server) == before


def test_the_admin_api_needs_an_administrator_and_a_token_of_scope_admin(server):
    from engine.app.principal import Principal

    r = server.call("GET", "/admin/users", "alice", scope="approve")
    assert r.status_code == 403 and "'admin' needs a token with that scope" in r.json()["detail"]
    r = server.call("GET", "/admin/users", "bob", scope="admin")
    assert r.status_code == 403 and "bob is not an administrator" in r.json()["detail"]
    r = server.call("GET", "/admin/users", "alice", scope="admin")
    assert r.status_code == 200 and [(u["name"], u["admin"]) for u in r.json()] == [("alice", True), ("bob", False)]
    assert all("password_hash" not in u for u in r.json())
    r = server.call("POST", "/admin/users", "alice", scope="admin", json={"name": "erin", "password": NEW_PASSWORD})
    assert r.status_code == 201 and r.json()["name"] == "erin"
    r = server.call("POST", "/admin/tokens", "alice", scope="admin", json={"label": "ci", "scope": "read"})
    assert r.status_code == 201 and r.json()["secret"].startswith("pbk_") and r.json()["token"]["owner"] == "alice"
    assert all("hash" not in t for t in server.call("GET", "/admin/tokens", "alice", scope="admin").json())
    server.accounts().revoke_admin(Principal.asserted("root"), "alice", server.clock.now())
    assert server.call("GET", "/admin/users", "alice", scope="admin").status_code == 403  # at once
    assert [t for t, *_ in account_log(server)][-3:] == ["UserAdded", "TokenCreated", "AdminRevoked"]


@pytest.mark.parametrize("path", PAGES)
def test_an_admin_page_sends_someone_not_signed_in_to_sign_in_and_back(server, path):
    r = server.client.get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin?then=" + path
