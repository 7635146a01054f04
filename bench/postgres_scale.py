"""Benchmark: `playbook due` and `playbook status` at 10,000 open incidents, PostgreSQL vs SQLite.

The incidents are built once on SQLite with bench/scale.py's builder (the engine's own
start events, started six hours ago, so their clocks are overdue), then moved to a
fresh PostgreSQL database with ``playbook db copy`` (itself timed: it is what a team
runs to move). Then, as whole processes, interleaved: ``due``'s first run on each
(records every breach and escalation), ``due`` at steady state, and ``status
INCIDENT``. Ratios are PostgreSQL / SQLite from the same run.

    python3 bench/postgres_scale.py [--incidents N] [--runs R] [--url postgresql://...]

Without --url it starts a throwaway cluster with .ci/postgres and removes it afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale import Databases, Runner, fresh_copy, machine, med, row  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5, help="interleaved runs of each steady command")
    ap.add_argument("--url", help="a PostgreSQL URL whose user may create databases")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pg-scale-bench-"))
    cluster = None
    url = args.url
    try:
        if url is None:
            cluster = tempfile.mkdtemp(prefix="playbook-bench-pg-")
            url = subprocess.run(["bash", str(ROOT / ".ci" / "postgres"), "start", cluster], check=True,
                                 capture_output=True, text=True).stdout.strip()
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        pg = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
        print(f"machine: {machine()}")
        runner, dbs = Runner(folder), Databases(folder)
        pristine, ids = dbs.open_incidents(args.incidents)
        lite = fresh_copy(pristine, folder / "lite.db")
        t = time.perf_counter()
        copy = runner.run(runner.cli("db", "copy", str(lite), pg))
        print(f"db copy of {args.incidents:,} incidents to PostgreSQL: {copy.wall:.1f} s "
              f"(wall, copy and verify; {time.perf_counter() - t:.1f} s with start-up)")
        first = {"sqlite": runner.run(runner.cli("due"), lite, ok=(0, 9)),
                 "postgres": runner.run(runner.cli("due"), pg, ok=(0, 9))}
        jobs = {}
        for backend, db in (("sqlite", lite), ("postgres", pg)):
            jobs[f"due {backend}"] = (runner.cli("due"), db, (0, 9), None)
            jobs[f"status {backend}"] = (runner.cli("status", ids[0]), db, (0,), None)
        runs = runner.interleaved(jobs, args.runs)
        print(f"\n== {args.incidents:,} open incidents, {args.runs} interleaved runs (medians) ==")
        for label, samples in runs.items():
            print(row(f"playbook {label}", samples))
        n = f"{args.incidents}"
        print(f"\ndue {n} first run postgres/sqlite: {first['postgres'].wall / first['sqlite'].wall:.2f}x "
              f"({first['postgres'].wall:.1f} s vs {first['sqlite'].wall:.1f} s)")
        for what in ("due", "status"):
            a, b = runs[f"{what} postgres"], runs[f"{what} sqlite"]
            print(f"{what} {n} postgres/sqlite: {med(a) / med(b):.2f}x "
                  f"(CPU {med(a, 'cpu') / med(b, 'cpu'):.2f}x; peak {med(a, 'rss'):.0f} vs {med(b, 'rss'):.0f} MB)")
    finally:
        if cluster:
            subprocess.run(["bash", str(ROOT / ".ci" / "postgres"), "stop", cluster], check=False)
            shutil.rmtree(cluster, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
