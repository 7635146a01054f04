"""The authorization matrix over HTTP: every endpoint x {anonymous, disabled account,
expired token, revoked token, read-only token, no role, wrong role, right role, the
draft's author}, each with the status a person would get, and nothing written by a
refused request.

The incident is the viral complaint in stage acknowledge: alice leads (the manager),
bob is the spokesperson (the approver of public_ack), cora holds compliance, carol
(social_media) drafted public_ack/x/en, dave holds no role, eve's account is disabled.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

pytest.importorskip("fastapi")

from server_support import INC, VIRAL_BODY, Server  # noqa: E402

POST = "public_ack/x/en"

#: (name, method, path, body, right, wrong, author). "right" succeeds; "wrong" holds a
#: role in the incident but not the one needed (None: any role will do); "author" is
#: asked only where being the draft's author matters.
ENDPOINTS = [
    ("list", "GET", "/incidents", None, "dave", None, None),
    ("status", "GET", f"/incidents/{INC}", None, "dave", None, None),
    ("log", "GET", f"/incidents/{INC}/log", None, "dave", None, None),
    ("posts", "GET", f"/incidents/{INC}/posts", None, "dave", None, None),
    ("report", "GET", f"/incidents/{INC}/report", None, "dave", None, None),
    ("export", "GET", f"/incidents/{INC}/export", None, "dave", None, None),
    ("bundle", "GET", f"/incidents/{INC}/bundle", None, "dave", None, None),
    ("due", "GET", "/due", None, "dave", None, None),
    ("key", "GET", "/key", None, "dave", None, None),
    ("playbooks", "GET", "/playbooks", None, "dave", None, None),
    ("me", "GET", "/me", None, "dave", None, None),
    ("verify", "POST", "/verify", {"incident": INC}, "dave", None, None),
    ("start", "POST", "/incidents", {**VIRAL_BODY, "title": "Another"}, "dave", None, None),
    ("assign", "POST", f"/incidents/{INC}/assign", {"role": "staff_welfare", "person": "dave"}, "alice", "cora", None),
    ("unassign", "POST", f"/incidents/{INC}/unassign", {"role": "social_media", "person": "carol"}, "alice", "cora",
     None),
    ("task", "POST", f"/incidents/{INC}/tasks/reply_in_thread", {"done": True}, "cora", None, None),
    ("note", "POST", f"/incidents/{INC}/notes", {"text": "seen"}, "cora", None, None),
    ("set", "POST", f"/incidents/{INC}/inputs", {"values": {"complaint_channel": "x"}}, "cora", None, None),
    ("render", "POST", f"/incidents/{INC}/render", {"template": "public_ack", "channels": ["facebook"]}, "carol",
     None, None),
    ("edit", "POST", f"/incidents/{INC}/edit", {"post": POST, "text": "We hear you. Please DM us."}, "carol", None,
     None),
    ("approve", "POST", f"/incidents/{INC}/approve", {"post": POST, "version": 1}, "bob", "cora", "carol"),
    ("reject", "POST", f"/incidents/{INC}/reject", {"post": POST, "reason": "tone"}, "bob", "cora", None),
    ("check-due", "POST", "/due", None, "dave", None, None),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One prepared database, copied for each case (a case may write)."""
    from engine.app.principal import Principal
    from engine.clock import FixedClock

    from conftest import T0

    base = tmp_path_factory.mktemp("matrix")
    clock = FixedClock(T0)
    server = Server(base, clock)
    server.running_incident()
    server.add_people("eve")
    r = server.call("POST", f"/incidents/{INC}/render", "carol", json={"template": "public_ack", "channels": ["x"],
                                                                       "langs": ["en"]})
    assert r.status_code == 200, r.text
    book, admin = server.accounts(), Principal.asserted("admin")
    tokens = {who: server.token(who) for who in ("alice", "bob", "carol", "cora", "dave", "eve")}
    tokens["read"] = server.token("alice", "read")
    tokens["revoked"] = server.token("dave", "act")
    book.revoke_token(admin, next(t["id"] for t in book.tokens(clock.now()) if t["label"] == "dave-act"), clock.now())
    short, _ = book.create_token(admin, "dave", "short", "approve", clock.now(), lifetime=timedelta(days=1))
    tokens["expired"] = short
    book.disable(admin, "eve", clock.now())
    server.app.state.stores.close()
    return base, tokens


def _case(world, tmp_path):
    import shutil

    from engine.clock import FixedClock

    from conftest import T0

    base, tokens = world
    for f in base.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    server = Server(tmp_path, FixedClock(T0 + timedelta(days=2)))  # the one-day token has expired
    return server, tokens


def _call(server, tokens, method, path, body, who):
    headers = {} if who == "anonymous" else {"Authorization": f"Bearer {tokens[who]}"}
    return server.client.request(method, "/api/v1" + path, json=body, headers=headers)


def _expected(method, path, who, right, wrong, author) -> int:
    if who in ("anonymous", "eve", "expired", "revoked"):
        return 401
    reading = method == "GET" or path == "/verify"
    if who == "read":
        return 200 if reading else 403
    if who in ("right", "none") and right == "dave":
        return 201 if path == "/incidents" and method == "POST" else 200
    if who == "right":
        return 200
    return 403  # no role, the wrong role, the author


CALLERS = ["anonymous", "eve", "expired", "revoked", "read", "none", "wrong", "right", "author"]
CASES = [(who, *e) for e in ENDPOINTS for who in CALLERS
         if not (who == "wrong" and e[5] is None or who == "author" and e[6] is None)]


@pytest.mark.parametrize("who,name,method,path,body,right,wrong,author", CASES,
                         ids=[f"{c[1]}-{c[0]}" for c in CASES])
def test_every_endpoint_answers_each_kind_of_caller_as_documented(world, tmp_path, who, name, method, path, body,
                                                                   right, wrong, author):
    server, tokens = _case(world, tmp_path)
    caller = {"none": "dave", "wrong": wrong, "right": right, "author": author}.get(who, who)
    before = len(server.events())
    r = _call(server, tokens, method, path, body, caller)
    expected = _expected(method, path, who, right, wrong, author)
    assert r.status_code == expected, (name, who, r.text[:300])
    if expected >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert len(server.events()) == before, "a refused request wrote to the log"
    for secret in tokens.values():
        assert secret not in r.text
