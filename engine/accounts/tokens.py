"""Personal API tokens: their secrets, what is stored of them, and their lifetimes.

A secret reads ``pbk_<id>_<43 random characters>``: the prefix makes a leaked token easy
to recognise (and to scan for), the id (12 hex digits, also shown in listings) finds the
token without comparing against every stored hash, and the random part is
``secrets.token_urlsafe(32)`` (256 bits). Only the SHA-256 of the whole secret is
stored: for a secret that cannot be guessed, a fast hash is the right one, and the
comparison is :func:`hmac.compare_digest`. The secret is shown once, when it is made.
"""

from __future__ import annotations

import re
from datetime import timedelta

from engine.app.principal import SCOPES
from engine.errors import UsageError

PREFIX = "pbk_"
DEFAULT_LIFETIME = timedelta(days=90)
MAX_LIFETIME = timedelta(days=365)
MAX_LABEL = 100
_SECRET = re.compile(r"pbk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
#: Compared against when no token has the id a secret names, so the comparison still runs.
_NO_HASH = "0" * 64


def new_secret() -> tuple[str, str]:
    """(token id, secret) for a new token."""
    import secrets

    token_id = secrets.token_hex(6)
    return token_id, f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def secret_hash(secret: str) -> str:
    import hashlib

    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_id(secret: object) -> str | None:
    """The id a well-formed secret names; None for anything else."""
    m = _SECRET.fullmatch(secret) if isinstance(secret, str) else None
    return m.group(1) if m else None


def matches(stored_hash: str | None, secret: str) -> bool:
    """Whether ``secret`` hashes to ``stored_hash``, compared in constant time (and
    compared even when there is no stored hash, so both cases take as long)."""
    import hmac

    return hmac.compare_digest(stored_hash or _NO_HASH, secret_hash(secret)) and stored_hash is not None


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise UsageError(f"token scope {scope!r} is not one of {', '.join(SCOPES)}")
    return scope


def check_lifetime(lifetime: timedelta | None) -> timedelta:
    if lifetime is None:
        return DEFAULT_LIFETIME
    if lifetime <= timedelta(0):
        raise UsageError("a token's lifetime must be longer than zero")
    if lifetime > MAX_LIFETIME:
        raise UsageError(f"a token lives at most {MAX_LIFETIME.days} days; create a new one when it expires")
    return lifetime


def check_label(label: str) -> str:
    from engine.safetext import refuse_unsafe

    label = (label or "").strip()
    if not label:
        raise UsageError("a token needs a label saying what it is for (it is empty)")
    refuse_unsafe(f"token label {label[:40]!r}", label, one_line=True)
    if len(label) > MAX_LABEL:
        raise UsageError(f"a token's label is at most {MAX_LABEL} characters (it has {len(label)})")
    return label


def status(token: dict, now_iso: str) -> str:
    """``active``, ``expired`` or ``revoked``."""
    if token["revoked"]:
        return "revoked"
    return "expired" if token["expires_at"] <= now_iso else "active"
