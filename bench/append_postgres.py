"""Benchmark: single-event transactions through the PostgreSQL store vs raw psycopg commits.

Both sides commit once per event with ``synchronous_commit = on`` (a commit that
returned is on disk), over one connection to the same server, in fresh databases,
alternating rounds. The store additionally takes the incident's advisory lock,
reads the projection, checks the log's head, chains and hashes the event (and the
schema's trigger checks its order) and upserts the projection in the same
transaction. Target: store >= 0.5 x raw.

    python3 bench/append_postgres.py [--url postgresql://...] [--events N] [--rounds R]

Without --url it starts a throwaway cluster with .ci/postgres (needs PostgreSQL's
server binaries) and removes it afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from append import DATA, T0, compare, through_store  # noqa: E402
from engine.incidents.events import canonical, utc_now_iso  # noqa: E402


def raw_psycopg(url: str, n: int) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = on")
        conn.execute("CREATE TABLE events (incident text NOT NULL, seq integer NOT NULL, type text NOT NULL, "
                     "at text NOT NULL, actor text NOT NULL, data text NOT NULL, prev text NOT NULL, "
                     "hash text NOT NULL, PRIMARY KEY (incident, seq))")
        data, fake_hash = canonical(DATA).decode(), "0" * 64
        t = time.perf_counter()
        for i in range(n):
            with conn.transaction():
                conn.execute("INSERT INTO events VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                             ("INC-1", i + 1, "NoteAdded", utc_now_iso(T0 + timedelta(seconds=i)), "alice",
                              data, fake_hash, fake_hash))
        return n / (time.perf_counter() - t)


def fresh_database(admin_url: str) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a PostgreSQL URL whose user may create databases")
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    args = ap.parse_args()
    folder = None
    url = args.url
    if url is None:
        folder = tempfile.mkdtemp(prefix="playbook-bench-pg-")
        url = subprocess.run(["bash", str(ROOT / ".ci" / "postgres"), "start", folder], check=True,
                             capture_output=True, text=True).stdout.strip()
    try:
        compare(raw_psycopg, through_store, lambda _: fresh_database(url), lambda _: fresh_database(url),
                args.events, args.rounds, " on PostgreSQL")
    finally:
        if folder:
            subprocess.run(["bash", str(ROOT / ".ci" / "postgres"), "stop", folder], check=False)
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
