"""Benchmark: a burst of inbound messages through the webhook, duplicates mixed in.

Starts an incident of the viral-complaint playbook (with response clocks) in a fresh
SQLite database in a temporary folder, then POSTs N signed messages to the team
server's webhook in-process (about one in ten a repeat of an earlier one, as a
bridge re-delivers; a message answered with a 5xx is sent again, up to three times,
as a bridge retries). Reports: messages lost and duplicated (both must be 0), the
ingest rate beside raw sqlite3 single-row commits in the same run, and the time
`status` and `due` take every N/5 messages during the burst.

    python3 bench/inbound.py [--messages N]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from append import raw_sqlite  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=timezone.utc)
SECRET = "a-benchmark-secret-of-length"
#: how often a message answered with a 5xx is sent again (a bridge retries)
RETRIES = 3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    n = parser.parse_args().messages

    from fastapi.testclient import TestClient

    from engine.app import clocks, incidents
    from engine.app.config import Config
    from engine.app.context import App
    from engine.app.principal import Principal
    from engine.clock import FixedClock
    from engine.server.app import create_app
    from engine.sources.webhook import sign

    folder = Path(tempfile.mkdtemp())
    try:
        pb = folder / "viral-complaint.yaml"
        text = (ROOT / "playbooks" / "viral-complaint.yaml").read_text()
        if "\ninbound:" not in text:  # response clocks, if the shipped playbook has none
            text = text.replace("\ntargets:", "\ninbound:\n  respond_within: {default: 60m}\ntargets:", 1)
        pb.write_text(text)
        (folder / "sources.yaml").write_text(f"bridge:\n  kind: webhook\n  secret: {SECRET}\n  channel: x\n"
                                             "  playbook: viral-complaint\n")
        clock = FixedClock(T0)
        config = Config.resolve({}, db=str(folder / "incidents.db"))
        app = App(config, clock)
        who = Principal.asserted("alice")
        incident = incidents.start(app, who, incidents.StartRequest(
            playbook=str(pb), title="Burst", inputs={"complaint_url": "https://x.com/p/1", "complaint_channel": "x"},
            assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora",
                    "patient_relations": "petra"})).state["id"]
        client = TestClient(create_app(config, clock), base_url="http://127.0.0.1")
        rng = random.Random(18)
        sent_ids, unique, statuses, latencies, problems = [], set(), {}, [], {}
        t = time.perf_counter()
        for i in range(n):
            repeat = sent_ids and rng.random() < 0.1
            sid = rng.choice(sent_ids) if repeat else str(1_000_000 + i)
            body = json.dumps({"source_id": sid, "author": f"@user{i % 997}", "text": f"Repost {i}: six hours in the ER",
                               "posted_at": "2026-03-14T08:30:00Z"}).encode()
            for attempt in range(RETRIES + 1):  # as a bridge does: a 5xx is sent again
                stamp = str(int(clock.now().timestamp()))
                r = client.post("/webhooks/bridge", content=body, headers={
                    "X-Playbook-Timestamp": stamp, "X-Playbook-Signature-256": sign(SECRET, stamp, body)})
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code < 500:
                    break
                problems.setdefault(r.status_code, r.json().get("detail"))
            if not repeat:
                sent_ids.append(sid)
            unique.add(sid)
            if (i + 1) % max(n // 5, 1) == 0:
                a = time.perf_counter()
                incidents.status(app, who, incident)
                b = time.perf_counter()
                clocks.due(app, who, record=False)
                c = time.perf_counter()
                latencies.append((i + 1, round((b - a) * 1000, 1), round((c - b) * 1000, 1)))
                t += c - a  # the reads are not part of the ingest rate
        elapsed = time.perf_counter() - t
        store = app.store(read_only=True)
        recorded = [e.data["source_id"] for e in store.events(incident) if e.type == "MessageReceived"]
        raw = raw_sqlite(folder / "raw.db", min(n, 2000))
        rate = n / elapsed
        print(f"messages sent {n} ({n - len(unique)} repeats); answers {statuses}")
        for code, detail in problems.items():
            print(f"first {code} answer (sent again): {detail}")
        print(f"recorded {len(recorded)}: lost {len(unique - set(recorded))}, duplicated {len(recorded) - len(set(recorded))}")
        print(f"ingest {rate:.0f} messages/s; raw sqlite3 commits {raw:.0f}/s; ratio {rate / raw:.3f}")
        for count, status_ms, due_ms in latencies:
            print(f"after {count:>6} messages: status {status_ms} ms, due {due_ms} ms")
        app.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
