"""The team server's SQLite stores, one per worker thread, live as long as their thread:
a server whose thread pool lets workers go and starts new ones keeps a bounded number of
open database files (it used to keep every store it ever opened, and after enough
threads a request could no longer open the database: 503)."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

import pytest

from engine.server.stores import StorePerThread
from engine.store import open_store


def open_files(path: Path) -> int:
    """How many file descriptors of this process are open on `path` (or its WAL files)."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        found += target.startswith(str(path))
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc")
def test_the_stores_of_finished_worker_threads_are_closed(tmp_path):
    db = tmp_path / "incidents.db"
    open_store(db).close()
    stores = StorePerThread(str(db))

    def request():
        assert stores.get().incidents() == []

    try:
        for _ in range(60):  # one worker thread after another, as an idle pool prunes and regrows
            worker = threading.Thread(target=request)
            worker.start()
            worker.join()
        gc.collect()
        assert open_files(db) <= 3  # a store's database and WAL files at most, not 60 stores' worth
        kept = threading.Thread(target=request)  # a live worker's store still works, and close() closes it
        kept.start()
        kept.join()
        request()
        assert stores.get() is stores.get()  # the same thread gets its own store again
    finally:
        stores.close()
        gc.collect()
    assert open_files(db) == 0
