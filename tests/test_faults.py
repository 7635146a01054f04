"""Crashes and concurrent writers: no acknowledged event is lost, the log always verifies.

Writers are separate Python processes (the way two people, or a killed command,
meet the database in real life).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from engine.audit.integrity import verify
from engine.store import open_store

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

# Appends one event per transaction, forever, printing each seq once it is committed.
APPEND_FOREVER = """
import sys
from engine.incidents.events import NewEvent
from engine.store import open_store

store = open_store(sys.argv[1])
while True:
    with store.transaction("INC-1") as tx:
        n = tx.snapshot.seq if tx.snapshot else 0
        tx.append([NewEvent("NoteAdded", "2026-11-22T11:42:59.123Z", "alice", {"n": n + 1})], {"n": n + 1})
    print(n + 1, flush=True)
"""

# Appends `count` events, one per transaction, reading the state inside the lock.
APPEND_COUNT = """
import sys
from engine.incidents.events import NewEvent
from engine.store import open_store

path, incident, count, who = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
store = open_store(path)
for i in range(count):
    with store.transaction(incident) as tx:
        n = tx.snapshot.state["n"] if tx.snapshot else 0
        tx.append([NewEvent("NoteAdded", "2026-11-22T11:42:59.123Z", who, {"i": i})], {"n": n + 1})
store.close()
"""

# APPEND_COUNT once the parent says go (a line on stdin): every writer has started
# up by then, so they all meet the new database at the same moment.
TOGETHER = """
import sys
import engine.incidents.events, engine.store
print("ready", flush=True)
sys.stdin.readline()
""" + APPEND_COUNT


@contextmanager
def running(script: str, *args: str) -> Iterator[subprocess.Popen]:
    """A writer process; killed on the way out whatever happens in the test."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=ROOT, env=ENV, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    with child:
        try:
            yield child
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


def run_all(script: str, argvs: list[list[str]], timeout: float, together: bool = False) -> list[tuple[int, str]]:
    """Start one writer per argv at once; (exit code, stderr) of each. ``together``: the
    script is TOGETHER, released once every writer has printed "ready"."""
    with ExitStack() as stack:
        children = [stack.enter_context(running(script, *argv)) for argv in argvs]
        if together:
            for c in children:
                assert c.stdout.readline() == "ready\n", c.communicate(timeout=timeout)[1]
            for c in children:
                c.stdin.write("go\n")
                c.stdin.flush()
        errs = [c.communicate(timeout=timeout)[1] for c in children]
        return [(c.returncode, err) for c, err in zip(children, errs)]


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path) -> str:
    """The database each crash test runs on: a SQLite file, or a PostgreSQL database."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "incidents.db")


def test_sigkill_at_any_moment_loses_no_acknowledged_event(location):
    """40 writers killed with SIGKILL at random moments, one after another, on one database."""
    db = location
    rng = random.Random(20261122)
    acknowledged = 0
    deadline = time.monotonic() + 60
    for run in range(40):
        with running(APPEND_FOREVER, str(db)) as child:
            first = child.stdout.readline()
            assert first, f"run {run}: the writer died before appending: {child.stderr.read()}"
            time.sleep(rng.uniform(0, 0.05))
            child.send_signal(signal.SIGKILL)
            rest = child.stdout.read()  # what it printed before dying
            child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        seen = [int(line) for line in [first, *rest.splitlines()] if line.strip()]
        assert seen == list(range(acknowledged + 1, acknowledged + 1 + len(seen)))
        acknowledged = seen[-1]

        store = open_store(db)
        # A server (PostgreSQL) finishes what a killed client sent before it died, its
        # last COMMIT included: taking the incident's write lock waits for that to end.
        with store.transaction("INC-1"):
            pass
        with store.reading():
            seqs = [e.seq for e in store.events("INC-1")]
            snapshot = store.snapshot("INC-1")
        assert seqs == list(range(1, len(seqs) + 1)), f"run {run}: a gap in the log"
        assert len(seqs) >= acknowledged, f"run {run}: acknowledged {acknowledged}, stored {len(seqs)}"
        assert len(seqs) <= acknowledged + 1  # at most the one in flight, committed unacknowledged
        assert snapshot.state == {"n": len(seqs)}
        report = verify(store)
        assert report.ok, report.problems
        store.close()
        acknowledged = len(seqs)
        assert time.monotonic() < deadline, "the crash test is taking too long"


def test_four_processes_appending_to_one_incident_serialise(location):
    db = location
    open_store(db).close()
    results = run_all(APPEND_COUNT, [[str(db), "INC-1", "50", f"writer-{k}"] for k in range(4)], 120)
    for code, err in results:
        assert code == 0, err
        assert "locked" not in err and "busy" not in err
    store = open_store(db)
    events = list(store.events("INC-1"))
    assert [e.seq for e in events] == list(range(1, 201))
    assert sorted(e.actor for e in events) == sorted(f"writer-{k}" for k in range(4) for _ in range(50))
    assert store.snapshot("INC-1").state == {"n": 200}
    assert verify(store).ok
    store.close()


@pytest.mark.parametrize("round_", range(3))
def test_processes_creating_the_database_at_once_agree_on_it(tmp_path, round_):
    """Writers released at one moment on a database that does not exist yet: none may fail
    (switching a new file to WAL used to say "database is locked" at once, ignoring
    busy_timeout, if another process was writing the file), all use one database."""
    for run in range(5):
        db = tmp_path / f"new-{run}" / "incidents.db"
        argvs = [[str(db), f"INC-{k}", "5", f"writer-{k}"] for k in range(4)]
        for code, err in run_all(TOGETHER, argvs, 60, together=True):
            assert code == 0, f"run {run}: {err}"
        store = open_store(db)
        assert sorted(store.incidents()) == [f"INC-{k}" for k in range(4)]
        report = verify(store)
        assert report.ok and report.events == 20, report.problems
        store.close()
