"""The append-only event store: open one with :func:`open_store`.

A store is chosen by its location:

* ``postgresql://user@host/db`` (or ``postgres://``): PostgreSQL, for a team
  (:mod:`engine.store.postgres`; needs the ``postgres`` extra);
* ``sqlite:///path/to/incidents.db``, or a plain file path: an embedded SQLite
  file, the default (:mod:`engine.store.sqlite`);
* ``memory:``: in memory, for tests.

The interface every backend implements is in :mod:`engine.store.base`.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.store.base import Snapshot, Store, Transaction

__all__ = ["MEMORY", "SQLITE_SCHEME", "Snapshot", "Store", "Transaction", "is_server_url",
           "local_folder", "open_store", "sqlite_path"]

MEMORY = "memory:"
SERVER_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite://"


def is_server_url(location: str | os.PathLike) -> bool:
    return isinstance(location, str) and location.startswith(SERVER_SCHEMES)


def sqlite_path(location: str | os.PathLike) -> Path | None:
    """The SQLite file a location names (``sqlite:///abs``, ``sqlite://rel`` or a
    path), or None for a server or in-memory store."""
    if isinstance(location, str):
        if location == MEMORY or is_server_url(location):
            return None
        if location.startswith(SQLITE_SCHEME):
            rest = location[len(SQLITE_SCHEME):]
            return Path(rest[1:] if rest.startswith("//") else rest).expanduser()
    return Path(location).expanduser()


def local_folder(location: str | os.PathLike) -> Path:
    """The folder of a SQLite database's file, where the files that belong with it live
    by default (outbox, signing key, destinations; see :mod:`engine.app.config`)."""
    path = sqlite_path(location)
    if path is None:
        raise ValueError(f"{location!r} is not a SQLite file")
    return path.resolve().parent


def open_store(
    location: str | os.PathLike, *, busy_timeout: float = 10.0, create: bool = True,
    database_id: str | None = None, migrate: bool = False, read_only: bool = False,
) -> Store:
    """Open (and by default create) the store at ``location``.

    A file that is not SQLite, a SQLite database that belongs to another
    program, or one written by a newer version raises StoreError and is left
    untouched. With ``create=False`` a missing database raises NotFound.
    ``database_id`` is the id a *new* database gets (``db copy`` keeps the source's).
    A database with an older schema is refused unless ``migrate`` (``db upgrade``).
    ``read_only`` opens an existing database without write access (never creating
    one); writing through it raises StoreError.
    """
    if isinstance(location, str) and location == MEMORY:
        from engine.store.memory import MemoryStore

        return MemoryStore(busy_timeout=busy_timeout, database_id=database_id)
    if is_server_url(location):
        from engine.store.postgres import PostgresStore

        return PostgresStore(str(location), busy_timeout=busy_timeout, create=create,
                             database_id=database_id, migrate=migrate)
    from engine.store.sqlite import SqliteStore

    return SqliteStore(sqlite_path(location), busy_timeout=busy_timeout, create=create and not read_only,
                       database_id=database_id, read_only=read_only)
