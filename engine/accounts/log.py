"""The account log: every change to an account, as events of one reserved stream.

The log is the store's stream :data:`ACCOUNTS`: the same append-only, hash-chained
events as an incident's (:mod:`engine.incidents.events`), written under the same lock with its
projection in the same transaction, kept out of incident listings, and checked by
``playbook verify`` (chain, heads in signed checkpoints, and a refold of the
projection by :func:`replay`).

What is in an event, and why
----------------------------
No event holds a password or a token's secret; nothing stored anywhere does.

* ``UserAdded`` and ``PasswordReset`` carry the password's **Argon2id hash**. The log is
  the source of truth: the projection must be rebuildable from it (a new fold, ``db
  copy``, an edited projection that verify reports), and a hash kept only in a mutable
  table could be swapped for one whose password an attacker knows without the log
  showing it. An Argon2id hash is made to be stored; the account log is never part of
  an incident's export or bundle.
* ``TokenCreated`` carries the **SHA-256 of the token's secret**: the secret is 256
  random bits, so its hash cannot be guessed back, and a lookup needs nothing slower.
* ``AdminGranted`` and ``AdminRevoked`` make an account an administrator of the
  accounts (users and tokens, on the web and ``/api/v1/admin``) or no longer one.
* ``AccountLocked`` records a lockout (too many failed sign-ins). The failures
  themselves are counted in a small table outside the log (engine.store:
  ``count_failure``), since every guess would otherwise grow the log.

Every event names who acted (``actor``) and how they were authenticated (``auth``,
as :attr:`engine.app.principal.Principal.auth` words it).
"""

from __future__ import annotations

from typing import Iterable

from engine.store.streams import ACCOUNTS
from engine.streamlog import StreamEvent, fold
from engine.streamlog import replay as replay_stream

__all__ = ["ACCOUNTS", "EVENTS", "PROJECTION_VERSION", "apply", "disagreement", "empty", "replay"]

#: The shape of the projection this code folds; bump it when :func:`apply` changes.
PROJECTION_VERSION = 2  # 2: users carry "admin" (AdminGranted, AdminRevoked)


def empty() -> dict:
    """The projection before the first event."""
    return {"v": PROJECTION_VERSION, "kind": "accounts", "users": {}, "tokens": {}, "sessions": {}, "events": 0}


def _user_added(s: dict, at: str, actor: str, d: dict) -> None:
    s["users"][d["name"]] = {
        "name": d["name"], "display_name": d["display_name"], "email": d.get("email"),
        "created_at": at, "created_by": actor, "disabled": False, "password_hash": d["password_hash"],
        "password_changed_at": at, "locked_until": None, "admin": False,
    }


def _user_disabled(s: dict, at: str, actor: str, d: dict) -> None:
    s["users"][d["name"]]["disabled"] = True
    _end_sessions_of(s, d["name"])


def _end_sessions_of(s: dict, name: str) -> None:
    for sid in [k for k, v in s["sessions"].items() if v["name"] == name]:
        del s["sessions"][sid]


def _user_enabled(s: dict, at: str, actor: str, d: dict) -> None:
    user = s["users"][d["name"]]
    user["disabled"] = False
    user["locked_until"] = None  # enabling is also how an administrator lifts a lockout


def _admin(granted: bool):
    def fold(s: dict, at: str, actor: str, d: dict) -> None:
        s["users"][d["name"]]["admin"] = granted
    return fold


def _password_reset(s: dict, at: str, actor: str, d: dict) -> None:
    user = s["users"][d["name"]]
    user["password_hash"] = d["password_hash"]
    user["password_changed_at"] = at
    user["locked_until"] = None
    _end_sessions_of(s, d["name"])  # a new password signs everyone out


def _password_rehashed(s: dict, at: str, actor: str, d: dict) -> None:
    s["users"][d["name"]]["password_hash"] = d["password_hash"]


def _account_locked(s: dict, at: str, actor: str, d: dict) -> None:
    s["users"][d["name"]]["locked_until"] = d["until"]


def _token_created(s: dict, at: str, actor: str, d: dict) -> None:
    s["tokens"][d["id"]] = {
        "id": d["id"], "owner": d["owner"], "label": d["label"], "scope": d["scope"], "created_at": at,
        "created_by": actor, "expires_at": d["expires_at"], "hash": d["hash"], "revoked": False,
        "revoked_at": None,
    }


def _token_revoked(s: dict, at: str, actor: str, d: dict) -> None:
    token = s["tokens"][d["id"]]
    token["revoked"], token["revoked_at"] = True, at


def _session_started(s: dict, at: str, actor: str, d: dict) -> None:
    if d["name"] not in s["users"]:
        raise KeyError(d["name"])
    for sid in [k for k, v in s["sessions"].items() if v["expires_at"] <= at]:
        del s["sessions"][sid]  # only running sessions are kept
    s["sessions"][d["id"]] = {k: d[k] for k in ("id", "name", "method", "issuer", "authenticated_at",
                                                 "expires_at", "hash")}


def _session_ended(s: dict, at: str, actor: str, d: dict) -> None:
    s["sessions"].pop(d["id"], None)


#: Every event of the account log: the fields of its data, its fold, what it means.
EVENTS: dict[str, StreamEvent] = {
    "UserAdded": StreamEvent(("name", "display_name", "email", "password_hash", "auth"), _user_added,
                           "an account was created"),
    "UserDisabled": StreamEvent(("name", "auth"), _user_disabled, "an account was disabled"),
    "UserEnabled": StreamEvent(("name", "auth"), _user_enabled, "an account was enabled (and any lockout lifted)"),
    "AdminGranted": StreamEvent(("name", "auth"), _admin(True),
                              "an account was made an administrator (it may manage accounts and tokens)"),
    "AdminRevoked": StreamEvent(("name", "auth"), _admin(False), "an account is no longer an administrator"),
    "PasswordReset": StreamEvent(("name", "password_hash", "auth"), _password_reset, "a password was set anew"),
    "PasswordRehashed": StreamEvent(("name", "password_hash", "auth"), _password_rehashed,
                                  "a password's hash was renewed with the current parameters at sign-in"),
    "AccountLocked": StreamEvent(("name", "until", "failures", "auth"), _account_locked,
                               "too many failed sign-ins: the account is locked until a time"),
    "TokenCreated": StreamEvent(("id", "owner", "label", "scope", "expires_at", "hash", "auth"), _token_created,
                              "a personal API token was issued (its secret is not recorded)"),
    "TokenRevoked": StreamEvent(("id", "auth"), _token_revoked, "a personal API token was revoked"),
    "SessionStarted": StreamEvent(("id", "name", "method", "issuer", "authenticated_at", "expires_at", "hash",
                                 "auth"), _session_started,
                                "someone signed in: a browser session started (its secret is not recorded)"),
    "SessionEnded": StreamEvent(("id", "auth"), _session_ended, "someone signed out: their session ended"),
}


def apply(state: dict | None, type: str, at: str, actor: str, data: dict, *, in_place: bool = False) -> dict:
    """The projection after one event (a new dict, unless ``in_place``). Raises
    ValueError for an event this log does not know, or one about a missing account."""
    return fold(EVENTS, "account log", "an account or token the log has not created", state, empty,
                type, at, actor, data, in_place=in_place)


def replay(events: Iterable) -> dict:
    """Fold a whole account log (objects with type, at, actor, data) from nothing."""
    return replay_stream(apply, empty, events)


def disagreement(events: Iterable, stored: dict) -> str | None:
    """Why a stored account projection disagrees with the account log (for verify), or
    None. A projection of another version is not compared: it is refolded on use."""
    from engine.incidents.events import canonical

    try:
        folded = replay(events)
    except (LookupError, TypeError, ValueError, AttributeError) as e:
        return f"the account log cannot be folded into accounts ({type(e).__name__}: {e})"
    if isinstance(stored, dict) and stored.get("v") != PROJECTION_VERSION:
        return None
    if canonical(folded) != canonical(stored):
        return ("the account log: the stored accounts (users, password hashes, tokens) differ from the "
                "accounts folded from its events (edited?)")
    return None
