"""Benchmark: single-event transactions through the store vs raw sqlite3 commits.

Both sides use the same pragmas (journal_mode=WAL, synchronous=FULL) and one
commit (one fsync of the WAL) per event, in the same run, in fresh databases in
a temporary folder. The store additionally reads the snapshot, checks the log's
head, chains and hashes the event and upserts the projection in the same
transaction. Target: store >= 0.5 x raw.

    python3 bench/append.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.incidents.events import NewEvent, canonical, utc_now_iso  # noqa: E402
from engine.store import open_store  # noqa: E402

T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=timezone.utc)
DATA = {"text": "We are aware of the concerns raised about waiting times and are looking into them."}


def through_store(path: Path, n: int) -> float:
    store = open_store(path)
    state: dict = {"events": 0}
    t = time.perf_counter()
    for i in range(n):
        event = NewEvent("NoteAdded", utc_now_iso(T0 + timedelta(seconds=i)), "alice", DATA)
        with store.transaction("INC-1") as tx:
            state = {"events": (tx.snapshot.state["events"] if tx.snapshot else 0) + 1}
            tx.append([event], state)
    elapsed = time.perf_counter() - t
    store.close()
    return n / elapsed


def raw_sqlite(path: Path, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE events (incident TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, "
        "at TEXT NOT NULL, actor TEXT NOT NULL, data TEXT NOT NULL, prev TEXT NOT NULL, "
        "hash TEXT NOT NULL, PRIMARY KEY (incident, seq)) WITHOUT ROWID"
    )
    data = canonical(DATA).decode()
    fake_hash = "0" * 64
    t = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ("INC-1", i + 1, "NoteAdded", utc_now_iso(T0 + timedelta(seconds=i)), "alice", data,
             fake_hash, fake_hash),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t
    conn.close()
    return n / elapsed


def compare(raw, store, raw_at, store_at, events: int, rounds: int, label: str) -> None:
    """Alternate raw and store rounds (so disk weather hits both alike); print medians."""
    store_rates, raw_rates = [], []
    for r in range(rounds):
        raw_rates.append(raw(raw_at(r), events))
        store_rates.append(store(store_at(r), events))
    store_rate = sorted(store_rates)[len(store_rates) // 2]
    raw_rate = sorted(raw_rates)[len(raw_rates) // 2]
    print(f"{events} single-event transactions{label}, {rounds} rounds (median)")
    print(f"raw commits:         {raw_rate:,.0f} /s   (rounds: {', '.join(f'{x:,.0f}' for x in raw_rates)})")
    print(f"store transactions:  {store_rate:,.0f} /s   (rounds: {', '.join(f'{x:,.0f}' for x in store_rates)})")
    print(f"ratio store / raw:   {store_rate / raw_rate:.2f} (target >= 0.5)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="append-bench-"))
    try:
        compare(raw_sqlite, through_store, lambda r: tmp / f"raw-{r}.db", lambda r: tmp / f"store-{r}.db",
                args.events, args.rounds, " on SQLite")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
