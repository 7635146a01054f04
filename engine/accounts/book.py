"""Accounts and their API tokens: what the account log holds, and the changes to it.

:class:`Accounts` wraps a store. Every change is an event of the account log
(:mod:`engine.accounts.log`), appended under the stream's write lock with the new
projection, after the check that refuses it (then nothing is written). Every change
names the :class:`~engine.app.principal.Principal` who made it: on the server host the
local command line is the administrator (``--as NAME``, recorded as ``asserted``); the
server decides who else may call these and passes its authenticated principal.

Signing in is :mod:`engine.accounts.signin`; reads never return a password hash or a
token's hash.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from engine.app.principal import Principal
from engine.errors import NotFound, Refused, UsageError
from engine.incidents.events import NewEvent, utc_now_iso

from . import log, passwords, tokens
from .log import ACCOUNTS

MAX_DISPLAY_NAME = 200
MAX_EMAIL = 254


class Accounts:
    """The accounts of one database (see the module docstring).

    ``hasher``: an :class:`argon2.PasswordHasher` (default: RFC 9106 low-memory
    Argon2id); ``lockout``: a :class:`engine.accounts.signin.Lockout` policy."""

    def __init__(self, store, *, hasher=None, lockout=None) -> None:
        from .signin import Lockout

        self.store = store
        self._hasher = hasher
        self.lockout = lockout or Lockout()

    @property
    def hasher(self):
        if self._hasher is None:
            self._hasher = passwords.default_hasher()
        return self._hasher

    # --- signing in (engine.accounts.signin) ------------------------------------------

    def authenticate_password(self, name: str, password: str, now: datetime) -> Principal:
        """The account's Principal (method ``password``), or AuthenticationFailed."""
        from .signin import authenticate_password

        return authenticate_password(self, name, password, now)

    def authenticate_token(self, secret: str, now: datetime) -> Principal:
        """The token owner's Principal (method ``token``, the token's scope), or
        AuthenticationFailed."""
        from .signin import authenticate_token

        return authenticate_token(self, secret, now)

    def start_session(self, who: Principal, now: datetime, lifetime: timedelta | None = None) -> tuple[str, dict]:
        """A browser session for someone who just signed in: (its secret, its description)."""
        from .sessions import start_session

        return start_session(self, who, now, lifetime)

    def session_principal(self, secret: str, now: datetime) -> Principal:
        """Who a session belongs to (as they signed in), or AuthenticationFailed."""
        from .sessions import session_principal

        return session_principal(self, secret, now)

    def end_session(self, secret: str, now: datetime) -> bool:
        """Sign out everywhere; False if the session was not running."""
        from .sessions import end_session

        return end_session(self, secret, now)

    # --- reading ----------------------------------------------------------------------

    def state(self) -> dict:
        """The account projection (refolded from the log if another version stored it).
        Its ``sessions`` are the running ones (engine.accounts.sessions)."""
        snap = self.store.stream(ACCOUNTS)
        if snap is None:
            return log.empty()
        if snap.state.get("v") != log.PROJECTION_VERSION:
            return log.replay(self.store.events(ACCOUNTS))
        return snap.state

    def users(self, now: datetime | None = None) -> list[dict]:
        """Every account, by name, without its password hash."""
        state = self.state()
        return [_public_user(u, now) for _, u in sorted(state["users"].items())]

    def user(self, name: str, now: datetime | None = None) -> dict:
        found = self.state()["users"].get(name)
        if found is None:
            raise NotFound(f"no account {name!r} (see: playbook user list)")
        return _public_user(found, now)

    def exists(self, name: str) -> bool:
        """Whether an account of that name exists (disabled or not)."""
        return name in self.state()["users"]

    def active(self, name: str) -> bool:
        """Whether an account of that name exists and is not disabled: what a role
        assignment on a server should name."""
        user = self.state()["users"].get(name)
        return user is not None and not user["disabled"]

    def is_admin(self, name: str) -> bool:
        """Whether the account exists, is enabled and was made an administrator."""
        user = self.state()["users"].get(name)
        return user is not None and not user["disabled"] and bool(user.get("admin"))

    def trail(self, name: str) -> list[dict]:
        """What the account log says about the account ``name``, oldest first: every
        change to it, its tokens and its sessions, and every change it made (no hash or
        secret shown). NotFound for an account the log never created."""
        from .trail import trail

        if name not in self.state()["users"]:
            raise NotFound(f"no account {name!r} (see: playbook user list)")
        return trail(self.store.events(ACCOUNTS), name)

    def tokens(self, now: datetime, owner: str | None = None) -> list[dict]:
        """Every token (of ``owner``, if given), oldest first, without its hash: id, owner,
        label, scope, created, expiry, status (active, expired, revoked), last used."""
        state, at = self.state(), utc_now_iso(now)
        uses = self.store.token_uses()
        out = []
        for t in sorted(state["tokens"].values(), key=lambda t: (t["created_at"], t["id"])):
            if owner is None or t["owner"] == owner:
                shown = {k: v for k, v in t.items() if k != "hash"}
                out.append({**shown, "status": tokens.status(t, at), "last_used_at": uses.get(t["id"])})
        return out

    # --- changing ---------------------------------------------------------------------

    def change(self, build: Callable[[dict], list[NewEvent]]) -> dict:
        """Run ``build`` on the current projection under the stream's write lock and
        append the events it returns with the projection they fold to."""
        with self.store.transaction(ACCOUNTS, stream=True) as tx:
            if tx.snapshot is None:
                state = log.empty()
            elif tx.snapshot.state.get("v") != log.PROJECTION_VERSION:
                state = log.replay(self.store.events(ACCOUNTS))
            else:
                state = tx.snapshot.state
            events = build(state)
            for e in events:
                state = log.apply(state, e.type, e.at, e.actor, e.data)
            if events:
                tx.append(events, state)
        return state

    def add_user(self, by: Principal, name: str, password: str, now: datetime, *,
                 display_name: str | None = None, email: str | None = None) -> dict:
        """Create an account. UsageError for a bad name, display name, email or password
        (naming the rule); Refused if the name, or one that looks like it, is taken."""
        from engine.names import check_person, lookalike

        name = check_person("account name", name)
        shown = _display_name(display_name, name)
        mail = _email(email)
        passwords.check_password(name, password)
        digest = passwords.hash_password(self.hasher, password)  # slow: outside the lock

        def build(state):
            if name in state["users"]:
                raise Refused(f"account {name!r} exists already (see: playbook user list)")
            twin = lookalike(name, state["users"])
            if twin is not None:
                raise Refused(f"account name {name!r} looks like the existing account {twin!r}; "
                              "choose a name that cannot pass for another")
            return [_event("UserAdded", now, by, name=name, display_name=shown, email=mail,
                           password_hash=digest)]

        return _public_user(self.change(build)["users"][name], now)

    def disable(self, by: Principal, name: str, now: datetime) -> dict:
        """Disable an account: it can no longer sign in, and its tokens stop working."""
        return self._set_disabled(by, name, now, True)

    def enable(self, by: Principal, name: str, now: datetime) -> dict:
        """Enable a disabled account (and lift a lockout)."""
        return self._set_disabled(by, name, now, False)

    def _set_disabled(self, by: Principal, name: str, now: datetime, disabled: bool) -> dict:
        def build(state):
            user = _existing(state, name)
            locked = (user.get("locked_until") or "") > utc_now_iso(now)
            if user["disabled"] == disabled and (disabled or not locked):
                return []  # already so: nothing to record
            return [_event("UserDisabled" if disabled else "UserEnabled", now, by, name=name)]

        return _public_user(self.change(build)["users"][name], now)

    def grant_admin(self, by: Principal, name: str, now: datetime) -> dict:
        """Make ``name`` an administrator (Refused for a disabled account; granting twice
        records once)."""
        def build(state):
            user = _existing(state, name)
            if user["disabled"]:
                raise Refused(f"account {name!r} is disabled: enable it before making it an administrator")
            return [] if user.get("admin") else [_event("AdminGranted", now, by, name=name)]

        return _public_user(self.change(build)["users"][name], now)

    def revoke_admin(self, by: Principal, name: str, now: datetime) -> dict:
        """``name`` is no longer an administrator (revoking twice records once)."""
        def build(state):
            user = _existing(state, name)
            return [_event("AdminRevoked", now, by, name=name)] if user.get("admin") else []

        return _public_user(self.change(build)["users"][name], now)

    def set_password(self, by: Principal, name: str, password: str, now: datetime) -> dict:
        """Set a new password (an administrator's reset); it also lifts a lockout."""
        if name not in self.state()["users"]:
            raise NotFound(f"no account {name!r} (see: playbook user list)")
        passwords.check_password(name, password)
        digest = passwords.hash_password(self.hasher, password)

        def build(state):
            _existing(state, name)
            return [_event("PasswordReset", now, by, name=name, password_hash=digest)]

        return _public_user(self.change(build)["users"][name], now)

    def create_token(self, by: Principal, owner: str, label: str, scope: str, now: datetime, *,
                     lifetime: timedelta | None = None) -> tuple[str, dict]:
        """Issue a token for ``owner``: (its secret, shown only now; its listing entry)."""
        label = tokens.check_label(label)
        tokens.check_scope(scope)
        expires = utc_now_iso(now + tokens.check_lifetime(lifetime))
        token_id, secret = tokens.new_secret()

        def build(state):
            user = _existing(state, owner)
            if user["disabled"]:
                raise Refused(f"account {owner!r} is disabled: enable it before issuing it a token")
            if token_id in state["tokens"]:  # 48 random bits: not seen in practice
                raise Refused("a token with the same id exists; run the command again")
            return [_event("TokenCreated", now, by, id=token_id, owner=owner, label=label, scope=scope,
                           expires_at=expires, hash=tokens.secret_hash(secret))]

        self.change(build)
        return secret, self._token(token_id, now)

    def revoke_token(self, by: Principal, token_id: str, now: datetime) -> dict:
        """Revoke a token by its id (NotFound if there is none; revoking twice records once)."""
        def build(state):
            token = state["tokens"].get(token_id)
            if token is None:
                raise NotFound(f"no token {token_id!r} (see: playbook token list)")
            return [] if token["revoked"] else [_event("TokenRevoked", now, by, id=token_id)]

        self.change(build)
        return self._token(token_id, now)

    def _token(self, token_id: str, now: datetime) -> dict:
        return next(t for t in self.tokens(now) if t["id"] == token_id)


def _event(type_: str, now: datetime, by: Principal, **data) -> NewEvent:
    if not isinstance(by, Principal):
        raise TypeError(f"a change to an account names the Principal who made it, not {by!r}")
    return NewEvent(type_, utc_now_iso(now), by.name, {**data, "auth": by.auth})


def _existing(state: dict, name: str) -> dict:
    user = state["users"].get(name)
    if user is None:
        raise NotFound(f"no account {name!r} (see: playbook user list)")
    return user


def _public_user(user: dict, now: datetime | None) -> dict:
    shown = {k: v for k, v in user.items() if k != "password_hash"}
    locked = user.get("locked_until")
    shown["locked"] = bool(locked) and (now is None or locked > utc_now_iso(now))
    return shown


def _display_name(value: str | None, name: str) -> str:
    from engine.safetext import refuse_unsafe

    value = (value or "").strip() or name
    refuse_unsafe(f"display name {value[:40]!r}", value, one_line=True)
    if len(value) > MAX_DISPLAY_NAME:
        raise UsageError(f"a display name is at most {MAX_DISPLAY_NAME} characters (it has {len(value)})")
    return value


def _email(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    local, at, domain = value.rpartition("@")
    if not (at and local and "." in domain) or any(c.isspace() for c in value) or not value.isprintable():
        raise UsageError(f"email {value[:80]!r} is not an email address (expected NAME@DOMAIN)")
    if len(value) > MAX_EMAIL:
        raise UsageError(f"an email address is at most {MAX_EMAIL} characters (it has {len(value)})")
    return value
