"""Benchmark: `playbook due` (steady) and `playbook list` at 100 and 1,000 open incidents.

Each database holds N open viral-complaint incidents built through the store (one
incident started through ``service.start``, its events reused under N ids, each
appended with its folded state and its index summary): ``--overdue`` of them
(default 10) started 20 minutes ago, so their triage deadline is overdue, the
others a minute ago, so nothing of theirs is due yet. One uncounted ``due`` records
the breaches; the timed runs are the steady state (nothing new to record).

``--before DIR`` also times a tree of the code before the incident index (for
example ``git archive main | tar -x -C DIR``) on the same databases without the
index (schema 1, which that code reads), interleaved with this tree's runs.

Every process is ``sys.executable -m cli ...`` started in the tree it times; the
figures are medians of ``--runs`` runs and the ratios are taken within one run.

    python3 bench/due.py [--runs N] [--overdue N] [--before DIR] [--sizes SMALL LARGE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from status import machine  # noqa: E402  (bench/status.py's machine line)

PLAYBOOK = ROOT / "playbooks" / "viral-complaint.yaml"
INPUTS = {"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"}
PEOPLE = {"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"}
SIZES = (100, 1000)  # --sizes changes them: two counts, the smaller first


def template_events(at: datetime):
    from engine.incidents import service
    from engine.clock import FixedClock
    from engine.format.loader import load_playbook
    from engine.store import open_store

    store = open_store("memory:")
    state = service.start(store, FixedClock(at), "alice", load_playbook(PLAYBOOK), title="ER wait time complaint",
                          inputs=INPUTS, assign=PEOPLE)
    return list(store.events(state["id"]))


def build(path: Path, count: int, overdue: int, now: datetime) -> None:
    from engine.incidents.events import NewEvent
    from engine.incidents.state import replay
    from engine.incidents.index import summary
    from engine.store import open_store

    late, fresh = template_events(now - timedelta(minutes=20)), template_events(now - timedelta(minutes=1))
    store = open_store(path)
    try:
        for n in range(1, count + 1):
            incident = f"INC-BENCH-{n:05d}"
            source = late if n <= overdue else fresh
            events = [NewEvent(e.type, e.at, e.actor, {**e.data, "incident": incident} if e.seq == 1 else e.data)
                      for e in source]
            state = replay(events)
            with store.transaction(incident) as tx:
                tx.append(events, state, summary(state))
    finally:
        store.close()


def without_index(src: Path, dst: Path) -> None:
    shutil.copy(src, dst)
    raw = sqlite3.connect(dst)
    raw.execute("DROP TABLE incident_index")
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()


def run(tree: Path, db: Path, *args: str) -> float:
    env = {**os.environ, "PLAYBOOK_DB": str(db), "PLAYBOOK_ACTOR": "bench"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cli", *args], cwd=tree, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 9):
        raise SystemExit(f"{tree}: playbook {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--overdue", type=int, default=10)
    parser.add_argument("--before", type=Path, help="a tree of the code before the index, to compare")
    parser.add_argument("--sizes", type=int, nargs=2, default=SIZES, metavar=("SMALL", "LARGE"),
                        help="the two numbers of open incidents (default: 100 1000)")
    opts = parser.parse_args()
    sizes = tuple(opts.sizes)
    if not 0 < sizes[0] < sizes[1]:
        raise SystemExit(f"--sizes {sizes[0]} {sizes[1]}: give two positive counts, the smaller first")
    if opts.before is not None and not (opts.before / "cli.py").is_file():
        raise SystemExit(f"--before {opts.before}: no cli.py there (give a tree of the project's code)")
    trees = {"after": ROOT, **({"before": opts.before.resolve()} if opts.before else {})}
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="bench-due-") as tmp:
        dbs = {}
        for n in sizes:
            dbs["after", n] = Path(tmp) / f"after-{n}.db"
            build(dbs["after", n], n, min(opts.overdue, n), now)
            if "before" in trees:
                dbs["before", n] = Path(tmp) / f"before-{n}.db"
                without_index(dbs["after", n], dbs["before", n])
        for (name, n), db in dbs.items():
            run(trees[name], db, "due")  # records the breaches: what follows is the steady state
        times: dict[tuple, list[float]] = {}
        for _ in range(opts.runs):
            for (name, n), db in dbs.items():
                for command in ("due", "list"):
                    times.setdefault((name, command, n), []).append(run(trees[name], db, command))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"machine: {machine()}, "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {opts.runs} runs, {opts.overdue} overdue")
    for name in trees:
        for command in ("due", "list"):
            small, large = med[name, command, sizes[0]], med[name, command, sizes[1]]
            print(f"{command} {sizes[0]} {name} s: {small:.3f}")
            print(f"{command} {sizes[1]} {name} s: {large:.3f}")
            print(f"{command} {sizes[1]}/{sizes[0]} {name}: {large / small:.2f}x")



if __name__ == "__main__":
    main()
