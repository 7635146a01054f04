"""Browser sessions, kept in the account log so every server on the database knows them.

A session starts when someone signs in (by password or single sign-on) and ends when
they sign out, when it expires, when their password is reset, or when their account is
disabled. Its secret (the cookie) reads ``pbs_<id>_<43 random characters>`` and, like a
token's, is stored only as its SHA-256 and compared with :func:`hmac.compare_digest`; a
new secret is made at every sign-in, so a session id planted before sign-in is never
the one signed in (no fixation). ``SessionStarted`` and ``SessionEnded`` are events of
the account log (who signed in, when, how), and the projection keeps only the sessions
still running: those expired are dropped at the next sign-in.

The CSRF token of a session is derived from its secret (:func:`csrf_token`): a page of
the server can be given it, another site cannot compute it without the cookie.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from engine.app.principal import Principal
from engine.errors import AuthenticationFailed, UsageError
from engine.incidents.events import NewEvent, parse_iso, utc_now_iso

PREFIX = "pbs_"
DEFAULT_LIFETIME = timedelta(hours=12)
MAX_LIFETIME = timedelta(days=7)
_SECRET = re.compile(r"pbs_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


def csrf_token(secret: str) -> str:
    """The CSRF token that goes with the session ``secret`` (hex SHA-256 of it, labelled)."""
    import hashlib

    return hashlib.sha256(b"playbook csrf\x00" + secret.encode("utf-8")).hexdigest()


def start_session(accounts, who: Principal, now: datetime, lifetime: timedelta | None = None) -> tuple[str, dict]:
    """Record a sign-in ``who`` just made (a password or OIDC principal); return the
    session's secret (for the cookie, shown only now) and its description: id, name,
    auth, started and expiry times, ``lifetime_s``."""
    import secrets

    from . import tokens

    if who.method not in ("password", "oidc"):
        raise UsageError(f"a session starts from a sign-in by password or single sign-on, not {who.auth}")
    lifetime = DEFAULT_LIFETIME if lifetime is None else lifetime
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise UsageError(f"a session lasts more than zero and at most {MAX_LIFETIME.days} days")
    session_id = secrets.token_hex(8)
    secret = f"{PREFIX}{session_id}_{secrets.token_urlsafe(32)}"
    at = utc_now_iso(now)
    expires = utc_now_iso(now + lifetime)
    signed_in = utc_now_iso(who.authenticated_at or now)

    def build(state):
        user = state["users"].get(who.name)
        if user is None or user["disabled"]:
            raise AuthenticationFailed()  # disabled between the check and now
        return [NewEvent("SessionStarted", at, who.name, {
            "id": session_id, "name": who.name, "method": who.method, "issuer": who.issuer,
            "authenticated_at": signed_in, "expires_at": expires, "hash": tokens.secret_hash(secret),
            "auth": who.auth})]

    accounts.change(build)
    return secret, {"id": session_id, "name": who.name, "auth": who.auth, "started_at": at,
                    "expires_at": expires, "lifetime_s": int(lifetime.total_seconds())}


def session_principal(accounts, secret: str, now: datetime) -> Principal:
    """Who the session ``secret`` belongs to (as they signed in: method, issuer, when),
    or AuthenticationFailed if it is unknown, ended or expired, or the account disabled."""
    from . import tokens

    m = _SECRET.fullmatch(secret) if isinstance(secret, str) else None
    state = accounts.state()
    session = state["sessions"].get(m.group(1)) if m else None
    right = tokens.matches(session["hash"] if session else None, secret if m else "")
    user = state["users"].get(session["name"]) if session else None
    if not right or user is None or user["disabled"] or session["expires_at"] <= utc_now_iso(now):
        raise AuthenticationFailed()
    return Principal(session["name"], method=session["method"], issuer=session["issuer"],
                     authenticated_at=parse_iso(session["authenticated_at"]), session=session["id"])


def end_session(accounts, secret: str, now: datetime) -> bool:
    """Sign out: end the session ``secret`` on every server. False if it was not running."""
    try:
        who = session_principal(accounts, secret, now)
    except AuthenticationFailed:
        return False

    def build(state):
        if who.session not in state["sessions"]:
            return []
        return [NewEvent("SessionEnded", utc_now_iso(now), who.name, {"id": who.session, "auth": who.auth})]

    accounts.change(build)
    return True
