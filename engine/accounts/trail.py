"""One account's audit trail: the events of the account log that concern it.

An event concerns an account when it changed the account (``name``), one of its tokens
(``owner``, or a revoked token's ``id``) or one of its sessions, or when the account
made it (``actor``). What is shown never holds a password hash, a token's hash or a
session's hash: those stay in the log.
"""

from __future__ import annotations

from typing import Iterable

#: Fields of an event's data never shown in a trail.
HIDDEN = frozenset({"password_hash", "hash"})

WORDS = {
    "UserAdded": "account {name} created",
    "UserDisabled": "account {name} disabled",
    "UserEnabled": "account {name} enabled",
    "AdminGranted": "{name} made an administrator",
    "AdminRevoked": "{name} no longer an administrator",
    "PasswordReset": "password of {name} set anew",
    "PasswordRehashed": "password hash of {name} renewed at sign-in",
    "AccountLocked": "{name} locked after {failures} failed sign-ins, until {until}",
    "TokenCreated": "token {id} ({label}, scope {scope}) issued to {owner}, expires {expires_at}",
    "TokenRevoked": "token {id} revoked",
    "SessionStarted": "{name} signed in ({method})",
    "SessionEnded": "a session of {name} ended",
}


def trail(events: Iterable, name: str) -> list[dict]:
    """The events of the account log `events` that concern the account `name`, each as
    {seq, at, type, actor, auth, what, data} (data without hashes)."""
    tokens: set[str] = set()
    sessions: dict[str, str] = {}
    out = []
    for e in events:
        d = e.data
        if e.type == "TokenCreated" and d.get("owner") == name:
            tokens.add(d["id"])
        if e.type == "SessionStarted":
            sessions[d["id"]] = d["name"]
        whose = d.get("name") or d.get("owner") or sessions.get(d.get("id", ""))
        if e.type == "TokenRevoked" and d.get("id") in tokens:
            whose = name
        if whose != name and e.actor != name:
            continue
        shown = {k: v for k, v in d.items() if k not in HIDDEN}
        words = WORDS.get(e.type, e.type)
        try:
            what = words.format(**{"name": whose or "?", **shown})
        except (KeyError, IndexError):
            what = e.type
        out.append({"seq": e.seq, "at": e.at, "type": e.type, "actor": e.actor, "auth": d.get("auth"),
                    "what": what, "data": shown})
    return out
