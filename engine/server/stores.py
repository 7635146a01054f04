"""One store per worker thread (a SQLite connection belongs to the thread that opened
it); a PostgreSQL store, whose connection pool is thread-safe, is shared.

The SQLite stores of one server take turns to write through one lock of the process
before SQLite's own: SQLite's busy handler polls with growing sleeps, so under a
steady queue of writers an unlucky one could wait out the whole busy timeout (a 503)
while others kept getting in; threads waiting on a lock are served in turn. Other
processes on the database still queue in SQLite.

A worker thread's store lives as long as its thread: the server's thread pool lets idle
workers go and starts new ones under load, so the stores are held weakly and a server
busy for months does not run out of file descriptors. (A finished thread's connection
closes when Python's cyclic collector next runs, not at once: sqlite3 keeps a reference
cycle inside each connection. With the collector running as usual, 3,000 thread
turnovers left at most about 65 connections open at any time.)
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager

#: The writing methods of a store that take SQLite's write lock.
WRITES = frozenset({"add_checkpoint", "count_failure", "clear_failures", "token_used", "upgrade", "load"})


class StorePerThread:
    def __init__(self, location) -> None:
        from engine.store import is_server_url

        self.location = location
        self._shared = is_server_url(location) or location == "memory:"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: weakref.WeakSet = weakref.WeakSet()  # the live threads' stores, for close()
        self._one = None
        self._writers = threading.RLock()

    def get(self):
        from engine.store import open_store

        if self._shared:
            with self._lock:
                if self._one is None:
                    self._one = open_store(self.location)
                return self._one
        store = getattr(self._local, "store", None)
        if store is None:
            store = TakingTurns(open_store(self.location), self._writers)
            self._local.store = store
            with self._lock:
                self._all.add(store)
        return store

    def close(self) -> None:
        with self._lock:
            stores, self._all = [*self._all, *([self._one] if self._one else [])], weakref.WeakSet()
            self._one = None
            self._local = threading.local()  # an app started again opens new stores, not these
        for store in stores:
            try:
                store.close()
            except Exception:  # noqa: BLE001 - a SQLite connection closes with its thread anyway
                pass


class TakingTurns:
    """A SQLite store whose writes (a transaction, a group of them, or one of
    :data:`WRITES`) first take `writers`, shared by the server's stores of that
    database; the rest is the store's."""

    def __init__(self, store, writers) -> None:
        self._store, self._writers = store, writers

    def __getattr__(self, name):
        found = getattr(self._store, name)
        if name not in WRITES:
            return found

        def write(*args, **kw):
            with self._turn():
                return found(*args, **kw)

        return write

    @contextmanager
    def transaction(self, *args, **kw):
        with self._turn(), self._store.transaction(*args, **kw) as tx:
            yield tx

    @contextmanager
    def grouped(self, *args, **kw):
        """Transactions sharing commits keep SQLite's lock between them: the turn is
        held for the whole block (the lock is re-entrant for its transactions)."""
        with self._turn(), self._store.grouped(*args, **kw):
            yield

    @contextmanager
    def _turn(self):
        from engine.errors import StoreError
        from engine.store.base import busy_message
        from engine.store.sqlite import shown

        if not self._writers.acquire(timeout=self._store.busy_timeout):
            raise StoreError(busy_message(self._store.busy_timeout, shown(self._store.path)))
        try:
            yield
        finally:
            self._writers.release()
