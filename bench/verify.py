"""Benchmark: verify the audit log vs sha256sum over the same events as JSON Lines.

Builds a database of N events (default 1,000,000) spread over incidents, with a
realistic mix of event types and sizes, through the store's own append path
(large transactions). Exports the events as JSON Lines, times ``sha256sum`` on
that file and ``engine.audit.integrity.verify`` on the database (best of --repeat
runs each, warm page cache for both) and prints both and the ratio, then the
peak Python memory of one more verify run.
Target: verify <= 4 x sha256sum.

    python3 bench/verify.py [--events N] [--incidents K] [--repeat R]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from json.encoder import encode_basestring as quote
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.audit.integrity import verify  # noqa: E402
from engine.incidents.events import NewEvent, utc_now_iso  # noqa: E402
from engine.store import open_store  # noqa: E402

T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=timezone.utc)
PEOPLE = ["alice", "bob", "carol@example.org", "dr. müller", "إيمان", "陈医生"]
ROLES = ["incident_lead", "spokesperson", "legal", "privacy", "social_media"]
STAGES = ["detect", "acknowledge", "investigate", "update", "resolve", "review"]
WORDS = (
    "we are aware of the concerns raised about waiting times in our emergency department "
    "and are looking into them urgently patients safety comes first update follows soon"
).split()


def sample_event(rng: random.Random, at: str) -> NewEvent:
    """One event of a realistic mix: short role/stage events, notes, long post texts."""
    actor = rng.choice(PEOPLE)
    kind = rng.random()
    if kind < 0.25:
        return NewEvent("RoleAssigned", at, actor, {"role": rng.choice(ROLES), "person": rng.choice(PEOPLE)})
    if kind < 0.45:
        return NewEvent("StageChanged", at, actor, {
            "from": rng.choice(STAGES), "to": rng.choice(STAGES), "trigger": "advance", "reason": None})
    if kind < 0.70:
        words = rng.randint(5, 30)
        return NewEvent("NoteAdded", at, actor, {"text": " ".join(rng.choices(WORDS, k=words))})
    if kind < 0.85:
        text = " ".join(rng.choices(WORDS, k=rng.randint(20, 45)))[:280]
        return NewEvent("PostRendered", at, actor, {
            "post": f"p-{rng.randint(1, 999)}", "template": "acknowledge", "channel": "x",
            "language": rng.choice(["en", "de", "ar"]), "text": text,
            "text_hash": f"{rng.getrandbits(256):064x}"})
    return NewEvent("PostApproved", at, actor, {
        "post": f"p-{rng.randint(1, 999)}", "role": rng.choice(ROLES),
        "text_hash": f"{rng.getrandbits(256):064x}"})


def build(store, events: int, incidents: int, chunk: int = 5000) -> None:
    rng = random.Random(20261122)
    per = -(-events // incidents)
    made = 0
    for i in range(incidents):
        incident = f"INC-2026-{i + 1:04d}"
        n = min(per, events - made)
        done = 0
        while done < n:
            k = min(chunk, n - done)
            batch = [
                sample_event(rng, utc_now_iso(T0 + timedelta(seconds=made + done + j)))
                for j in range(k)
            ]
            with store.transaction(incident) as tx:
                tx.append(batch, {"events": done + k})
            done += k
        made += n
        if made >= events:
            break


def export_jsonl(store, path: Path) -> int:
    """Every event as one canonical JSON object per line (data already canonical)."""
    size = 0
    with open(path, "w", encoding="utf-8") as out:
        for inc, seq, typ, at, actor, data, prev, h in store.rows():
            line = (
                f'{{"actor":{quote(actor)},"at":{quote(at)},"data":{data},"hash":"{h}",'
                f'"incident":{quote(inc)},"prev":"{prev}","seq":{seq},"type":{quote(typ)}}}\n'
            )
            size += out.write(line)
    return size


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--incidents", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("sha256sum"):
        sys.exit("sha256sum is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="verify-bench-"))
    try:
        store = open_store(tmp / "bench.db")
        t = time.perf_counter()
        build(store, args.events, args.incidents)
        built = time.perf_counter() - t
        db_size = (tmp / "bench.db").stat().st_size
        jsonl = tmp / "events.jsonl"
        size = export_jsonl(store, jsonl)
        print(f"built {args.events:,} events in {args.incidents} incidents in {built:.1f} s "
              f"({args.events / built:,.0f} events/s); database {db_size / 1e6:.0f} MB; "
              f"JSON Lines {size / 1e6:.0f} MB ({size / args.events:.0f} bytes/event)")

        def sha():
            subprocess.run(["sha256sum", str(jsonl)], check=True, stdout=subprocess.DEVNULL)

        reports = []

        def ver():
            reports.append(verify(store))

        t_sha = best(sha, args.repeat)
        t_ver = best(ver, args.repeat)
        report = reports[-1]
        assert report.ok and report.events == args.events, report
        print(f"sha256sum over JSON Lines: {t_sha:.2f} s")
        print(f"verify over the database:  {t_ver:.2f} s ({args.events / t_ver:,.0f} events/s)")
        print(f"ratio verify / sha256sum:  {t_ver / t_sha:.2f} (target <= 4)")
        tracemalloc.start()  # one more, untimed run: how much Python memory verify holds
        verify(store)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"peak Python memory during verify: {peak / 1e6:.1f} MB (flat: rows are streamed)")
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
