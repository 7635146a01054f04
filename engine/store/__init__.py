"""The append-only event store: open one with :func:`open_store`.

``open_store("memory:")`` gives an in-memory store (tests); any other location
is a SQLite file (see :mod:`engine.store.sqlite`). The interface every backend
implements is in :mod:`engine.store.base`.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.store.base import Snapshot, Store, Transaction

__all__ = ["Snapshot", "Store", "Transaction", "default_db_path", "open_store"]

MEMORY = "memory:"


def open_store(
    location: str | os.PathLike, *, busy_timeout: float = 10.0, create: bool = True
) -> Store:
    """Open (and by default create) the store at ``location``.

    A file that is not SQLite, a SQLite database that belongs to another
    program, or one written by a newer version raises StoreError and is left
    untouched. With ``create=False`` a missing database raises NotFound.
    """
    if isinstance(location, str) and location == MEMORY:
        from engine.store.memory import MemoryStore

        return MemoryStore(busy_timeout=busy_timeout)
    from engine.store.sqlite import SqliteStore

    return SqliteStore(location, busy_timeout=busy_timeout, create=create)


def default_db_path() -> Path:
    """``$PLAYBOOK_DB`` if set, else ``$XDG_DATA_HOME/crisis-playbook/incidents.db``
    (``XDG_DATA_HOME`` defaults to ``~/.local/share``)."""
    explicit = os.environ.get("PLAYBOOK_DB")
    if explicit:
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME")
    # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    base = Path(data_home) if data_home and os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / "crisis-playbook" / "incidents.db"
