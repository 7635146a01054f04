"""Accounts: passwords, the policy, lockout, API tokens and one refusal for every reason."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from conftest import T0
from engine.accounts import ACCOUNTS, Accounts, Lockout
from engine.app.principal import Principal
from engine.clock import FixedClock
from engine.errors import AuthenticationFailed, NotFound, Refused, UsageError
from engine.store import open_store

ADMIN = Principal.asserted("root")
PASSWORD = "correct horse battery"


def cheap(time_cost: int = 1) -> PasswordHasher:
    """Argon2id with tiny parameters: the tests' hasher (the default is never weakened)."""
    return PasswordHasher(time_cost=time_cost, memory_cost=8, parallelism=1)


class CountingHasher:
    """A real hasher that counts its verifications."""

    def __init__(self, inner: PasswordHasher) -> None:
        self.inner, self.verified = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def verify(self, stored, password):
        self.verified += 1
        return self.inner.verify(stored, password)


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def location(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return tmp_path / "incidents.db" if request.param == "sqlite" else "memory:"


@pytest.fixture
def store(location):
    s = open_store(location)
    yield s
    s.close()


@pytest.fixture
def accounts(store):
    return Accounts(store, hasher=cheap())


@pytest.fixture
def clock():
    return FixedClock(T0)


def add_carol(accounts, now=T0, **kw):
    return accounts.add_user(ADMIN, "carol", PASSWORD, now, **kw)


def log_types(store) -> list[str]:
    return [e.type for e in store.events(ACCOUNTS)]


# -- passwords -----------------------------------------------------------------------


def test_a_password_signs_in_and_gives_a_password_principal(accounts):
    added = add_carol(accounts, display_name="Carol Cruz", email="carol@hospital.example")
    assert added["display_name"] == "Carol Cruz" and added["email"] == "carol@hospital.example"
    assert "password_hash" not in added
    who = accounts.authenticate_password("carol", PASSWORD, T0)
    assert who == Principal("carol", method="password", authenticated_at=T0)
    assert who.auth == "password"


def test_the_default_hasher_is_argon2id_with_rfc_9106_low_memory_parameters(store):
    hasher = Accounts(store).hasher
    assert (hasher.type.name, hasher.time_cost, hasher.memory_cost, hasher.parallelism) == ("ID", 3, 65536, 4)


def test_a_hash_made_with_other_parameters_is_renewed_at_the_next_sign_in(store):
    add_carol(Accounts(store, hasher=cheap(1)))
    renewing = Accounts(store, hasher=cheap(2))
    renewing.authenticate_password("carol", PASSWORD, T0)
    assert log_types(store) == ["UserAdded", "PasswordRehashed"]
    assert "t=2" in store.stream(ACCOUNTS).state["users"]["carol"]["password_hash"]
    renewing.authenticate_password("carol", PASSWORD, T0)  # current now: nothing more to record
    assert log_types(store) == ["UserAdded", "PasswordRehashed"]


@pytest.mark.parametrize("password, rule", [
    ("", "is empty"),
    ("short pass", "shorter than 12 characters (it has 10)"),
    ("CAROL", "shorter than 12"),
    ("x" * 1025, "longer than 1024 bytes"),
    ("é" * 513, "longer than 1024 bytes"),
    ("correct horse \udcff battery", "is not valid UTF-8 text"),
])
def test_a_password_that_breaks_the_policy_is_refused_naming_the_rule(accounts, store, password, rule):
    with pytest.raises(UsageError, match=re.escape(rule)) as e:
        accounts.add_user(ADMIN, "carol", password, T0)
    assert e.value.exit_code == 2 and (password not in str(e.value) or not password)
    assert store.stream(ACCOUNTS) is None  # nothing written


def test_the_account_name_is_not_a_password(accounts):
    with pytest.raises(UsageError, match="is the account name"):
        accounts.add_user(ADMIN, "carolinecruz", "CarolineCruz", T0)


@pytest.mark.parametrize("name, message", [
    ("", "needs a person's name"),
    ("system:accounts", "reserved for the engine"),
    ("ｓｙｓｔｅｍ：x", "reserved for the engine"),
    ("cаrol", "mixes letters of several scripts"),
    ("car\x1bol", "ESCAPE"),
])
def test_a_bad_account_name_is_refused(accounts, store, name, message):
    with pytest.raises(UsageError, match=message):
        accounts.add_user(ADMIN, name, PASSWORD, T0)
    assert store.stream(ACCOUNTS) is None


def test_a_taken_name_or_one_that_looks_like_it_is_refused(accounts):
    add_carol(accounts)
    with pytest.raises(Refused, match="account 'carol' exists already"):
        add_carol(accounts)
    with pytest.raises(Refused, match="looks like the existing account 'carol'"):
        accounts.add_user(ADMIN, "Carol", PASSWORD, T0)


@pytest.mark.parametrize("field, value, message", [
    ("email", "not-an-address", "is not an email address"),
    ("email", "a b@c.org", "is not an email address"),
    ("display_name", "x" * 201, "at most 200 characters"),
    ("display_name", "Carol\u202e", "RIGHT-TO-LEFT OVERRIDE"),
])
def test_a_bad_email_or_display_name_is_refused(accounts, store, field, value, message):
    with pytest.raises(UsageError, match=message):
        add_carol(accounts, **{field: value})
    assert store.stream(ACCOUNTS) is None


def test_exists_and_active_answer_for_role_assignments(accounts):
    add_carol(accounts)
    assert accounts.exists("carol") and accounts.active("carol")
    assert not accounts.exists("dave") and not accounts.active("dave")
    accounts.disable(ADMIN, "carol", T0)
    assert accounts.exists("carol") and not accounts.active("carol")
    accounts.enable(ADMIN, "carol", T0)
    assert accounts.active("carol")


def test_a_reset_password_replaces_the_old_one(accounts):
    add_carol(accounts)
    accounts.set_password(ADMIN, "carol", "a new long passphrase", T0)
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_password("carol", PASSWORD, T0)
    assert accounts.authenticate_password("carol", "a new long passphrase", T0).name == "carol"
    with pytest.raises(NotFound, match="no account 'dave'"):
        accounts.set_password(ADMIN, "dave", "a new long passphrase", T0)


# -- one refusal for every reason ------------------------------------------------------


def test_unknown_wrong_disabled_and_locked_fail_alike(store):
    hasher = CountingHasher(cheap())
    accounts = Accounts(store, hasher=hasher, lockout=Lockout(failures=1))
    add_carol(accounts)
    accounts.add_user(ADMIN, "dana", PASSWORD, T0)
    accounts.disable(ADMIN, "dana", T0)
    accounts.add_user(ADMIN, "erin", PASSWORD, T0)
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_password("erin", "wrong password!", T0)  # now locked
    errors = []
    for name, password in [("nobody", PASSWORD), ("carol", "wrong password!"), ("dana", PASSWORD),
                           ("erin", PASSWORD), ("carol", "x" * 5000), (None, PASSWORD),
                           ("carol", "\udcff" * 12)]:
        before = hasher.verified
        with pytest.raises(AuthenticationFailed) as e:
            accounts.authenticate_password(name, password, T0)
        errors.append((type(e.value), str(e.value), e.value.exit_code))
        if name is not None and len(password) < 1024 and password.isprintable():
            assert hasher.verified == before + 1  # the Argon2 work is done for every name
    assert len(set(errors)) == 1
    assert "nobody" not in errors[0][1] and "carol" not in errors[0][1]
    problem = AuthenticationFailed().problem()  # what a server answers: 401, and nothing more
    assert problem["status"] == 401 and problem["type"].endswith(":authentication-failed")
    assert problem["detail"] == errors[0][1]


# -- lockout ---------------------------------------------------------------------------


def fail(accounts, clock, times: int = 1, name: str = "carol") -> None:
    for _ in range(times):
        with pytest.raises(AuthenticationFailed):
            accounts.authenticate_password(name, "not the password", clock.now())


def test_five_failures_lock_the_account_for_fifteen_minutes(accounts, store, clock):
    add_carol(accounts)
    fail(accounts, clock, 5)
    assert log_types(store) == ["UserAdded", "AccountLocked"]
    locked = list(store.events(ACCOUNTS))[-1]
    assert locked.actor == "system:accounts" and locked.data["until"] == "2026-03-14T09:15:00.000Z"
    assert accounts.user("carol", clock.now())["locked"] is True
    with pytest.raises(AuthenticationFailed):  # the right password does not help now
        accounts.authenticate_password("carol", PASSWORD, clock.now())
    clock.advance(timedelta(minutes=14, seconds=59))
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_password("carol", PASSWORD, clock.now())
    clock.advance(timedelta(seconds=1))
    assert accounts.authenticate_password("carol", PASSWORD, clock.now()).name == "carol"
    assert accounts.user("carol", clock.now())["locked"] is False


def test_a_success_resets_the_count_and_old_failures_leave_the_window(accounts, store, clock):
    add_carol(accounts)
    fail(accounts, clock, 4)
    accounts.authenticate_password("carol", PASSWORD, clock.now())
    fail(accounts, clock, 4)
    clock.advance(timedelta(minutes=16))
    fail(accounts, clock, 4)
    assert log_types(store) == ["UserAdded"]
    fail(accounts, clock, 1)
    assert log_types(store) == ["UserAdded", "AccountLocked"]


def test_the_lockout_is_configurable(store, clock):
    accounts = Accounts(store, hasher=cheap(), lockout=Lockout(failures=2, window=timedelta(minutes=1),
                                                                duration=timedelta(hours=1)))
    add_carol(accounts)
    fail(accounts, clock, 2)
    clock.advance(timedelta(minutes=59))
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_password("carol", PASSWORD, clock.now())
    with pytest.raises(UsageError, match="at least 1"):
        Lockout(failures=0)


def test_enabling_or_a_new_password_lifts_a_lockout(accounts, clock):
    add_carol(accounts)
    fail(accounts, clock, 5)
    accounts.enable(ADMIN, "carol", clock.now())
    assert accounts.authenticate_password("carol", PASSWORD, clock.now()).name == "carol"
    fail(accounts, clock, 5)
    accounts.set_password(ADMIN, "carol", "another long passphrase", clock.now())
    assert accounts.authenticate_password("carol", "another long passphrase", clock.now()).name == "carol"


def test_failures_and_the_lock_survive_reopening_the_store(tmp_path, clock):
    db = tmp_path / "incidents.db"
    with open_store(db) as first:
        add_carol(Accounts(first, hasher=cheap()))
        fail(Accounts(first, hasher=cheap()), clock, 3)
    with open_store(db) as second:  # a restart, or another server process
        fail(Accounts(second, hasher=cheap()), clock, 2)
    with open_store(db) as third:
        with pytest.raises(AuthenticationFailed):
            Accounts(third, hasher=cheap()).authenticate_password("carol", PASSWORD, clock.now())
        assert Accounts(third).user("carol", clock.now())["locked"] is True


# -- tokens ----------------------------------------------------------------------------


def test_a_token_authenticates_its_owner_within_its_scope(accounts, store, clock):
    add_carol(accounts)
    secret, made = accounts.create_token(ADMIN, "carol", "laptop CLI", "approve", clock.now())
    assert secret.startswith(f"pbk_{made['id']}_") and len(secret) == 4 + 12 + 1 + 43
    assert made["expires_at"] == "2026-06-12T09:00:00.000Z" and made["status"] == "active"
    who = accounts.authenticate_token(secret, clock.now())
    assert (who.name, who.method, who.scope, who.authenticated_at) == ("carol", "token", "approve", T0)
    assert who.allows("act") and who.allows("approve") and not who.allows("admin")
    assert accounts.tokens(clock.now())[0]["last_used_at"] == "2026-03-14T09:00:00.000Z"


def test_an_expired_revoked_or_disowned_token_fails_like_an_unknown_one(accounts, clock):
    add_carol(accounts)
    accounts.add_user(ADMIN, "dana", PASSWORD, T0)
    short, _ = accounts.create_token(ADMIN, "carol", "one day", "read", T0, lifetime=timedelta(days=1))
    revoked, r = accounts.create_token(ADMIN, "carol", "old", "read", T0)
    accounts.revoke_token(ADMIN, r["id"], T0)
    dana, _ = accounts.create_token(ADMIN, "dana", "dana's", "read", T0)
    accounts.disable(ADMIN, "dana", T0)
    good, g = accounts.create_token(ADMIN, "carol", "good", "read", T0)
    clock.advance(timedelta(days=1))
    forged = f"pbk_{g['id']}_" + ("A" * 43)
    errors = set()
    for secret in [short, revoked, dana, forged, "pbk_000000000000_" + "B" * 43, "not a token", "", None,
                   "pbk_\udcff"]:
        with pytest.raises(AuthenticationFailed) as e:
            accounts.authenticate_token(secret, clock.now())
        errors.add(str(e.value))
    assert len(errors) == 1
    assert accounts.authenticate_token(good, clock.now()).name == "carol"
    statuses = {t["label"]: t["status"] for t in accounts.tokens(clock.now())}
    assert statuses == {"one day": "expired", "old": "revoked", "dana's": "active", "good": "active"}


def test_a_disabled_owners_tokens_work_again_once_enabled(accounts):
    add_carol(accounts)
    secret, _ = accounts.create_token(ADMIN, "carol", "ci", "act", T0)
    accounts.disable(ADMIN, "carol", T0)
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(secret, T0)
    with pytest.raises(Refused, match="is disabled"):
        accounts.create_token(ADMIN, "carol", "another", "act", T0)
    accounts.enable(ADMIN, "carol", T0)
    assert accounts.authenticate_token(secret, T0).scope == "act"


@pytest.mark.parametrize("owner, label, scope, lifetime, error, message", [
    ("carol", "x", "superuser", None, UsageError, "token scope 'superuser' is not one of read, act, approve, admin"),
    ("carol", "  ", "read", None, UsageError, "needs a label"),
    ("carol", "x" * 101, "read", None, UsageError, "at most 100 characters"),
    ("carol", "x", "read", timedelta(days=366), UsageError, "at most 365 days"),
    ("carol", "x", "read", timedelta(0), UsageError, "longer than zero"),
    ("dave", "x", "read", None, NotFound, "no account 'dave'"),
])
def test_a_bad_token_request_is_refused_and_writes_nothing(accounts, store, owner, label, scope, lifetime,
                                                          error, message):
    add_carol(accounts)
    with pytest.raises(error, match=message):
        accounts.create_token(ADMIN, owner, label, scope, T0, lifetime=lifetime)
    assert log_types(store) == ["UserAdded"]


def test_revoking_an_unknown_token_is_not_found_and_twice_records_once(accounts, store):
    add_carol(accounts)
    _, made = accounts.create_token(ADMIN, "carol", "ci", "read", T0)
    with pytest.raises(NotFound, match="no token 'feedfeedfeed'"):
        accounts.revoke_token(ADMIN, "feedfeedfeed", T0)
    accounts.revoke_token(ADMIN, made["id"], T0)
    assert accounts.revoke_token(ADMIN, made["id"], T0)["status"] == "revoked"
    assert log_types(store) == ["UserAdded", "TokenCreated", "TokenRevoked"]


def test_every_change_records_who_made_it_and_how_they_were_authenticated(accounts, store):
    add_carol(accounts)
    accounts.disable(Principal("dana", method="password"), "carol", T0)
    events = list(store.events(ACCOUNTS))
    assert [(e.actor, e.data["auth"]) for e in events] == [("root", "asserted"), ("dana", "password")]


def test_account_changes_stay_out_of_the_incidents(accounts, store):
    add_carol(accounts)
    assert store.incidents() == [] and store.snapshots() == [] and store.summaries() == []
    assert store.due_before("2099-01-01T00:00:00.000Z") == [] and store.count_incidents("") == 0
    assert store.snapshot(ACCOUNTS) is None  # an incident command finds no incident there
    with pytest.raises(NotFound, match="no incident 'ACCOUNTS'"):
        with store.transaction(ACCOUNTS):
            pass


def test_a_token_is_compared_in_constant_time_even_when_its_id_is_unknown(accounts, monkeypatch):
    import hmac

    add_carol(accounts)
    secret, made = accounts.create_token(ADMIN, "carol", "ci", "read", T0)
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((len(a), len(b))) or real(a, b))
    for attempt in (secret, f"pbk_{made['id']}_" + "C" * 43, "pbk_ffffffffffff_" + "C" * 43, "garbage"):
        try:
            accounts.authenticate_token(attempt, T0)
        except AuthenticationFailed:
            pass
    assert compared == [(64, 64)] * 4  # one SHA-256 comparison per attempt, whatever the token


@pytest.mark.parametrize("location", ["sqlite", "postgres"], indirect=True)
def test_several_processes_failing_at_once_lock_the_account_once(location, clock):
    """Two server processes (each its own connection) take wrong passwords at the same
    time: the failures add up across them, and the lockout is recorded once."""
    import threading

    with open_store(location) as setup:
        add_carol(Accounts(setup, hasher=cheap()))
    start, problems = threading.Barrier(2), []

    def server() -> None:
        try:
            with open_store(location) as own:
                accounts = Accounts(own, hasher=cheap())
                start.wait()
                for _ in range(5):
                    with pytest.raises(AuthenticationFailed):
                        accounts.authenticate_password("carol", "not the password", clock.now())
        except BaseException as e:  # noqa: BLE001 - reported below, in the test's thread
            problems.append(e)

    threads = [threading.Thread(target=server) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert problems == []
    with open_store(location) as after:
        assert log_types(after) == ["UserAdded", "AccountLocked"]
        with pytest.raises(AuthenticationFailed):
            Accounts(after, hasher=cheap()).authenticate_password("carol", PASSWORD, clock.now())


def test_only_an_administrator_may_administer_accounts_and_never_the_engine():
    """The one decision the admin pages and API ask (engine.incidents.policy.require_admin)."""
    from engine.errors import Refused
    from engine.incidents.policy import require_admin, scope_of

    assert require_admin("carol", admin=True) is None
    with pytest.raises(Refused, match="carol is not an administrator") as refused:
        require_admin("carol", admin=False)
    assert refused.value.exit_code == 5 and "playbook user grant-admin carol" in refused.value.reasons[0]
    with pytest.raises(Refused, match="'system:clock' cannot administer accounts"):
        require_admin("system:clock", admin=True)
    assert scope_of("accounts") == "admin"
