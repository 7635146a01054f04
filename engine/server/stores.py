"""One store per worker thread (a SQLite connection belongs to the thread that opened
it); a PostgreSQL store, whose connection pool is thread-safe, is shared."""

from __future__ import annotations

import threading


class StorePerThread:
    def __init__(self, location) -> None:
        from engine.store import is_server_url

        self.location = location
        self._shared = is_server_url(location) or location == "memory:"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list = []
        self._one = None

    def get(self):
        from engine.store import open_store

        if self._shared:
            with self._lock:
                if self._one is None:
                    self._one = open_store(self.location)
                return self._one
        store = getattr(self._local, "store", None)
        if store is None:
            store = open_store(self.location)
            self._local.store = store
            with self._lock:
                self._all.append(store)
        return store

    def close(self) -> None:
        with self._lock:
            stores, self._all = self._all + ([self._one] if self._one else []), []
            self._one = None
            self._local = threading.local()  # an app started again opens new stores, not these
        for store in stores:
            try:
                store.close()
            except Exception:  # noqa: BLE001 - a SQLite connection closes with its thread anyway
                pass
