"""The logs in a store that are not incidents (streams), and the tables accounts keep.

A stream (:data:`STREAMS`: the account log of :mod:`engine.accounts`, the listening log of
:mod:`engine.incidents.monitors`) is stored like an
incident's log (the same ``events`` chain, snapshot and write lock) but is read by its
id only and kept out of every incident listing. Schema 3 adds two tables that the
account domain updates in place: failed sign-ins per name in the lockout window, and
when each API token was last used. The SQL here is written with ``?`` (PostgreSQL's
store substitutes its marker).
"""

from __future__ import annotations

import re

from engine.errors import NotFound, StoreError

#: The reserved id of the account log (engine.accounts); no incident id takes it (they
#: are INC-... and DRILL-...).
ACCOUNTS = "ACCOUNTS"
#: The reserved id of the listening log (engine.incidents.monitors): inbound messages no
#: open incident took yet, and what the playbooks' monitors did about them.
LISTENING = "LISTENING"
#: Every log in ``events`` that is not an incident.
STREAMS = (ACCOUNTS, LISTENING)
#: SQL that keeps the streams out of a query over incidents (constant text, no input).
NOT_A_STREAM = "incident NOT IN (" + ", ".join(f"'{s}'" for s in STREAMS) + ")"
#: The first schema with the account tables (sign_in_failures, token_uses).
ACCOUNT_TABLES = 3


#: Count a failed sign-in (see Store.count_failure); parameters: name, at, at, window start twice.
COUNT_FAILURE = """INSERT INTO sign_in_failures (name, failures, first_at, last_at) VALUES (?, 1, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
        failures = CASE WHEN sign_in_failures.first_at < ? THEN 1 ELSE sign_in_failures.failures + 1 END,
        first_at = CASE WHEN sign_in_failures.first_at < ? THEN excluded.first_at
                        ELSE sign_in_failures.first_at END,
        last_at = excluded.last_at
    RETURNING failures"""
CLEAR_FAILURES = "DELETE FROM sign_in_failures WHERE name = ?"
TOKEN_USED = """INSERT INTO token_uses (token, last_used_at) VALUES (?, ?)
    ON CONFLICT (token) DO UPDATE SET last_used_at = excluded.last_used_at
    WHERE token_uses.last_used_at < excluded.last_used_at"""
_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def check_stream(incident: str, stream: bool) -> str:
    """``incident``, if it is a stream exactly when ``stream`` says so. An incident command
    naming a stream finds no incident there (NotFound, as for any unknown id)."""
    if incident in STREAMS and not stream:
        raise NotFound(f"no incident {incident!r} in this database (see: playbook list --all)")
    if stream and incident not in STREAMS:
        raise ValueError(f"{incident!r} is not a stream (streams: {', '.join(STREAMS)})")
    return incident


def failure_params(name: str, at: str, window_start: str) -> tuple:
    """The parameters of COUNT_FAILURE, the times checked."""
    for moment in (at, window_start):
        if not (isinstance(moment, str) and _UTC.fullmatch(moment)):
            raise ValueError(f"a sign-in time is a UTC time like 2026-03-14T10:00:00.000Z, not {moment!r}")
    return (name, at, at, window_start, window_start)


def no_account_tables(where: str, version: int) -> StoreError:
    return StoreError(f"{where} has schema {version}; accounts need schema {ACCOUNT_TABLES}: "
                      "run playbook db upgrade")
