"""Browser sessions: started at sign-in, known to every server on the database, ended by
signing out, expiry, a new password or a disabled account."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from conftest import T0
from engine.accounts import ACCOUNTS, Accounts
from engine.accounts.sessions import csrf_token
from engine.app.principal import Principal
from engine.clock import FixedClock
from engine.errors import AuthenticationFailed, UsageError
from engine.store import open_store

ADMIN = Principal.asserted("root")
PASSWORD = "correct horse battery"


def book(store) -> Accounts:
    return Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture
def accounts(db):
    with open_store(db) as store:
        a = book(store)
        a.add_user(ADMIN, "carol", PASSWORD, T0)
        yield a


def sign_in(accounts, clock, name="carol", password=PASSWORD):
    who = accounts.authenticate_password(name, password, clock.now())
    return accounts.start_session(who, clock.now())


def test_a_session_is_who_signed_in_and_how(accounts, clock):
    secret, session = sign_in(accounts, clock)
    assert secret.startswith(f"pbs_{session['id']}_")
    assert session["expires_at"] == "2026-03-14T21:00:00.000Z" and session["lifetime_s"] == 12 * 3600
    clock.advance(timedelta(minutes=7))
    who = accounts.session_principal(secret, clock.now())
    assert (who.name, who.method, who.authenticated_at, who.session) == ("carol", "password", T0, session["id"])
    assert [e.type for e in accounts.store.events(ACCOUNTS)][-1] == "SessionStarted"


def test_every_sign_in_gets_a_new_secret_and_its_own_csrf_token(accounts, clock):
    first, one = sign_in(accounts, clock)
    second, two = sign_in(accounts, clock)
    assert first != second and one["id"] != two["id"]
    assert csrf_token(first) != csrf_token(second) and csrf_token(first) == csrf_token(first)
    assert first not in csrf_token(first)


def test_signing_out_ends_the_session_for_every_server(accounts, clock, db):
    secret, _ = sign_in(accounts, clock)
    with open_store(db) as other:  # another server process on the same database
        assert book(other).session_principal(secret, clock.now()).name == "carol"
        assert book(other).end_session(secret, clock.now()) is True
    with pytest.raises(AuthenticationFailed):
        accounts.session_principal(secret, clock.now())
    assert accounts.end_session(secret, clock.now()) is False
    ended = list(accounts.store.events(ACCOUNTS))[-1]
    assert (ended.type, ended.actor, ended.data["auth"]) == ("SessionEnded", "carol", "password")


def test_a_session_expires_and_expired_ones_are_not_kept(accounts, clock):
    old, _ = sign_in(accounts, clock)
    clock.advance(timedelta(hours=12))
    with pytest.raises(AuthenticationFailed):
        accounts.session_principal(old, clock.now())
    new, session = sign_in(accounts, clock)
    assert list(accounts.state()["sessions"]) == [session["id"]]
    assert accounts.session_principal(new, clock.now()).name == "carol"


def test_a_new_password_or_a_disabled_account_ends_its_sessions(accounts, clock):
    one, _ = sign_in(accounts, clock)
    accounts.set_password(ADMIN, "carol", "a brand new passphrase", clock.now())
    with pytest.raises(AuthenticationFailed):
        accounts.session_principal(one, clock.now())
    two, _ = sign_in(accounts, clock, password="a brand new passphrase")
    accounts.disable(ADMIN, "carol", clock.now())
    accounts.enable(ADMIN, "carol", clock.now())
    with pytest.raises(AuthenticationFailed):
        accounts.session_principal(two, clock.now())


def test_a_single_sign_on_session_keeps_the_issuer_and_a_token_starts_none(accounts, clock):
    sso = Principal("carol", method="oidc", issuer="https://idp.example", authenticated_at=T0)
    secret, session = accounts.start_session(sso, clock.now())
    assert session["auth"] == "oidc:https://idp.example"
    assert accounts.session_principal(secret, clock.now()).auth == "oidc:https://idp.example"
    with pytest.raises(UsageError, match="not token"):
        accounts.start_session(Principal("carol", method="token", scope="read"), clock.now())
    with pytest.raises(UsageError, match="at most 7 days"):
        accounts.start_session(sso, clock.now(), timedelta(days=8))
    with pytest.raises(AuthenticationFailed):
        accounts.start_session(Principal("nobody", method="password"), clock.now())


def test_forged_or_malformed_session_secrets_fail_alike(accounts, clock):
    secret, session = sign_in(accounts, clock)
    errors = set()
    for forged in (f"pbs_{session['id']}_" + "A" * 43, "pbs_0123456789abcdef_" + "A" * 43, "cookie", "", None):
        with pytest.raises(AuthenticationFailed) as e:
            accounts.session_principal(forged, clock.now())
        errors.add(str(e.value))
    assert len(errors) == 1


def test_session_secrets_are_not_stored_and_the_log_still_verifies(accounts, clock, db, cli):
    secret, _ = sign_in(accounts, clock)
    accounts.end_session(sign_in(accounts, clock)[0], clock.now())
    data = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name))
    assert secret.encode() not in data and secret.split("_", 2)[2].encode() not in data
    result = cli("verify")
    assert result.exit_code == 0, result.output
