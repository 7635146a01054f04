"""Signing in with a password or an API token: who it is, or one refusal for every reason.

Both return a :class:`~engine.app.principal.Principal` or raise
:class:`~engine.errors.AuthenticationFailed`, with the same message whether the name is
unknown, the password wrong, the account disabled or locked, or the token unknown,
expired or revoked: nobody learns which names exist. A password check does the work of
an Argon2id verification even for a name that does not exist.

Brute force: after ``Lockout.failures`` wrong passwords for one account within
``Lockout.window``, the account is locked for ``Lockout.duration`` (an ``AccountLocked``
event, so the lock is in the log, survives a restart and holds for every server process
on the database). The failures are counted by the store in one atomic statement per
attempt (a table outside the log: see :mod:`engine.accounts.log`); a successful sign-in
clears the count. A lockout protects passwords: it does not stop the account's API
tokens, and ``user enable`` or ``user passwd`` lifts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.app.principal import Principal
from engine.errors import AuthenticationFailed, UsageError
from engine.incidents.events import NewEvent, utc_now_iso

from . import passwords, tokens
from .log import ACCOUNTS

#: Who records what the engine does by itself (a lockout, a renewed hash).
ENGINE = Principal("system:accounts", method="engine")
#: How often one process records a token's last use (a write per request would
#: serialise every API call on SQLite).
USE_RESOLUTION = timedelta(minutes=1)
#: (database id, token id) -> when this process last recorded a use: a cache shared by
#: every Accounts of the process (a server makes one per request), bounded.
_RECORDED: dict[tuple[str, str], datetime] = {}
_RECORDED_MAX = 10_000


@dataclass(frozen=True)
class Lockout:
    """Lock an account for ``duration`` after ``failures`` wrong passwords in ``window``."""

    failures: int = 5
    window: timedelta = timedelta(minutes=15)
    duration: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if not isinstance(self.failures, int) or self.failures < 1:
            raise UsageError(f"lockout failures must be a whole number of at least 1, not {self.failures!r}")
        for what in ("window", "duration"):
            if getattr(self, what) <= timedelta(0):
                raise UsageError(f"lockout {what} must be longer than zero")


def authenticate_password(accounts, name: str, password: str, now: datetime) -> Principal:
    """The account ``name`` if ``password`` is its password and it may sign in now."""
    if not isinstance(name, str) or not passwords.acceptable(password):
        raise AuthenticationFailed()
    at = utc_now_iso(now)
    user = accounts.state()["users"].get(name)
    stored = user["password_hash"] if user is not None else None
    right = passwords.verify_password(accounts.hasher, stored, password)  # the same work for anyone
    if user is None or user["disabled"] or (user.get("locked_until") or "") > at:
        raise AuthenticationFailed()
    if not right:
        _failed(accounts, name, now)
        raise AuthenticationFailed()
    accounts.store.clear_failures(name)
    if passwords.needs_rehash(accounts.hasher, stored):
        renewed = passwords.hash_password(accounts.hasher, password)

        def build(state):
            current = state["users"].get(name)
            if current is None or current["password_hash"] != stored:
                return []  # changed meanwhile: the new hash is someone else's decision
            return [_event("PasswordRehashed", at, name=name, password_hash=renewed)]

        accounts.change(build)
    return Principal(name, method="password", authenticated_at=now)


def _failed(accounts, name: str, now: datetime) -> None:
    policy = accounts.lockout
    at = utc_now_iso(now)
    count = accounts.store.count_failure(name, at, utc_now_iso(now - policy.window))
    if count < policy.failures:
        return
    until = utc_now_iso(now + policy.duration)

    def build(state):
        user = state["users"].get(name)
        if user is None or (user.get("locked_until") or "") > at:
            return []  # another process recorded it first
        return [_event("AccountLocked", at, name=name, until=until, failures=count)]

    accounts.change(build)
    accounts.store.clear_failures(name)


def authenticate_token(accounts, secret: str, now: datetime) -> Principal:
    """The owner of the token ``secret``, limited to its scope, if the token is
    neither expired nor revoked and its owner's account is enabled."""
    at = utc_now_iso(now)
    state = accounts.state()
    token_id = tokens.token_id(secret)
    token = state["tokens"].get(token_id) if token_id is not None else None
    right = tokens.matches(token["hash"] if token else None, secret if token_id is not None else "")
    owner = state["users"].get(token["owner"]) if token else None
    if not right or owner is None or owner["disabled"] or tokens.status(token, at) != "active":
        raise AuthenticationFailed()
    key = (accounts.store.database_id, token_id)
    last = _RECORDED.get(key)
    if last is None or now - last >= USE_RESOLUTION or now < last:
        accounts.store.token_used(token_id, at)
        if len(_RECORDED) >= _RECORDED_MAX:
            _RECORDED.clear()
        _RECORDED[key] = now
    return Principal(owner["name"], method="token", authenticated_at=now, scope=token["scope"])


def _event(type_: str, at: str, **data) -> NewEvent:
    return NewEvent(type_, at, ENGINE.name, {**data, "auth": ENGINE.auth})
