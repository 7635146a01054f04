"""Numbered, plain SQL migrations per backend: ``<backend>/NNN_what.sql``.

A database records every migration applied to it (``schema_migrations``); opening
it with an older tool than its newest migration is refused, and ``playbook db
upgrade`` applies the missing ones in order, each in its own transaction.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

#: Marks a database as one of ours (PostgreSQL: the ``playbook_meta.application`` column).
APPLICATION = "crisis-playbook"
_NAME = re.compile(r"(\d{3})_[a-z0-9_]+\.sql")


@lru_cache(maxsize=None)
def migrations(backend: str) -> tuple[tuple[int, str], ...]:
    """(number, SQL text) of every migration of ``backend``, in order."""
    # the package's own folder (installed as files by the wheel): importlib.resources would
    # cost every command that opens a database ~15 ms of imports (tempfile, inspect)
    folder = Path(__file__).resolve().parent / backend
    found = []
    for entry in folder.iterdir():
        m = _NAME.fullmatch(entry.name)
        if m:
            found.append((int(m.group(1)), entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"{backend} migrations are not numbered 1..n: {numbers}")
    return tuple(found)


def latest_version(backend: str) -> int:
    return len(migrations(backend))


@lru_cache(maxsize=None)
def number_of(backend: str, name: str) -> int:
    """The number of the migration ``NNN_<name>.sql`` of ``backend``, so that code asking
    whether a database has it does not depend on where it sits in the sequence."""
    folder = Path(__file__).resolve().parent / backend
    for entry in folder.iterdir():
        m = _NAME.fullmatch(entry.name)
        if m and entry.name[4:-4] == name:
            return int(m.group(1))
    raise LookupError(f"no {backend} migration named {name}")
