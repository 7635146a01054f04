"""Benchmark: the team server under load, on loopback.

Starts ``playbook serve`` (a real process) on a new SQLite database in a temporary
folder, or with ``--url`` on a new database of that PostgreSQL server; creates the
accounts and their tokens and 20 incidents (viral-complaint, in stage acknowledge),
then runs 50 concurrent clients for 60 s, each with its own HTTP connection, doing a
fixed mix of requests:

* status reads (``GET /api/v1/incidents/{id}``) by every account;
* notes (``POST .../notes``), each with a text of its own;
* the release cycle on the incident a client owns (clients 0..19, one incident each,
  so their versions do not race): carol renders ``public_ack`` for x in English, then
  bob (the spokesperson) approves exactly that version;
* two no-op baselines on the same server: ``GET /api/v1/healthz`` (no sign-in, one
  query) and ``GET /api/v1/me`` (a token checked, nothing else read).

Afterwards the server is stopped and the database read directly: every note, render
and approval a client saw acknowledged (HTTP 200/201) must be in the log, once;
``playbook verify`` must pass. Latencies are measured by the clients (a request's
wall time, including the client's own share of the machine), and reported as ratios
to the no-op baselines of the same run, because the machine is shared and noisy.

Prints one ``NAME: VALUE`` line per figure. Accounts get test-sized Argon2id
parameters (only account creation hashes a password; clients use tokens).

    python3 bench/server_load.py [--seconds 60] [--clients 50] [--incidents 20] [--url URL]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from status import machine  # noqa: E402

LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
PEOPLE = ("alice", "bob", "carol", "cora", "petra", "dave")
START = {"playbook": "viral-complaint", "inputs": {"complaint_url": "https://x.com/patient/status/1",
                                                   "complaint_channel": "x"},
         "assign": {"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora",
                    "patient_relations": "petra"}}
POST = "public_ack/x/en"
#: (kind, weight) of a client's next request; "release" is a render and its approval.
MIX = (("status", 50), ("note", 25), ("healthz", 10), ("me", 10), ("release", 5))


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYBOOK_")}
    env.update(PLAYBOOK_KEY=str(home / "signing.key"), PLAYBOOK_OUTBOX=str(home / "outbox"), PYTHONPATH=str(ROOT))
    return env


class Server:
    """``playbook serve --port 0`` in its own process group; its log lines kept."""

    def __init__(self, db: str, home: Path) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", "0", "--db", db], cwd=ROOT,
                                     env=environment(home), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        ready, self.port = threading.Event(), 0

        def read():
            for line in self.proc.stderr:
                self.lines.append(line)
                found = LISTENING.search(line)
                if found:
                    self.port = int(found.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60) or not self.port:
            self.stop()
            sys.exit("the server did not start:\n" + "".join(self.lines))
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


def make_people(db: str) -> dict[str, str]:
    from argon2 import PasswordHasher

    from engine.accounts.book import Accounts
    from engine.app.principal import Principal
    from engine.clock import SystemClock
    from engine.store import open_store

    store = open_store(db)
    try:
        book = Accounts(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        admin, now, tokens = Principal.asserted("admin"), SystemClock().now(), {}
        for name in PEOPLE:
            book.add_user(admin, name, "correct horse battery staple", now)
            tokens[name], _ = book.create_token(admin, name, "load benchmark", "approve", now)
        return tokens
    finally:
        store.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def start_incidents(url: str, tokens: dict[str, str], count: int) -> list[str]:
    import httpx

    ids = []
    with httpx.Client(base_url=url + "/api/v1", timeout=60, headers=auth(tokens["alice"])) as client:
        for n in range(count):
            r = client.post("/incidents", json={**START, "title": f"ER wait time complaint {n}"})
            r.raise_for_status()
            inc = r.json()["id"]
            for path, body in ((f"/incidents/{inc}/assign", {"role": "social_media", "person": "carol"}),
                               (f"/incidents/{inc}/tasks/confirm_post", {"done": True}),
                               (f"/incidents/{inc}/advance", {"trigger": "acknowledge"})):
                client.post(path, json=body).raise_for_status()
            ids.append(inc)
    return ids


class Load:
    """The clients and what each of their requests got."""

    def __init__(self, url: str, tokens: dict[str, str], incidents: list[str], clients: int, seed: int) -> None:
        self.url, self.tokens, self.incidents, self.clients, self.seed = url, tokens, incidents, clients, seed
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter = Counter()  # (kind, status or error name)
        self.acked: list[tuple] = []  # ("note", incident, text) | ("render"|"approve", incident, version)
        self.failures: list[str] = []  # the first 5xx answers, as "kind status: title"
        self.stop = threading.Event()

    def client(self, n: int) -> None:
        import httpx

        rng = random.Random(self.seed * 1000 + n)
        kinds, weights = zip(*MIX)
        own = self.incidents[n] if n < len(self.incidents) else None
        readers = list(PEOPLE)
        with httpx.Client(base_url=self.url + "/api/v1", timeout=120) as http:

            def send(kind: str, method: str, path: str, who: str | None, body=None):
                began = time.perf_counter()
                try:
                    r = http.request(method, path, json=body, headers=auth(self.tokens[who]) if who else None)
                except httpx.HTTPError as e:
                    self.statuses[(kind, type(e).__name__)] += 1
                    return None
                self.latency[kind].append(time.perf_counter() - began)
                self.statuses[(kind, r.status_code)] += 1
                if r.status_code >= 500 and len(self.failures) < 10:
                    self.failures.append(f"{kind} {r.status_code}: {r.text[:300]}")
                return r

            i = 0
            while not self.stop.is_set():
                kind = rng.choices(kinds, weights)[0]
                inc = rng.choice(self.incidents)
                if kind == "status":
                    send("status", "GET", f"/incidents/{inc}", rng.choice(readers))
                elif kind == "note":
                    text = f"client {n} note {i}: ward manager called back"
                    r = send("note", "POST", f"/incidents/{inc}/notes", rng.choice(("alice", "petra")), {"text": text})
                    if r is not None and r.status_code == 200:
                        self.acked.append(("note", inc, text))
                elif kind == "healthz":
                    send("healthz", "GET", "/healthz", None)
                elif kind == "me":
                    send("me", "GET", "/me", rng.choice(readers))
                elif own is not None:
                    self.release(send, own)
                i += 1

    def release(self, send, inc: str) -> None:
        r = send("render", "POST", f"/incidents/{inc}/render", "carol",
                 {"template": "public_ack", "channels": ["x"], "langs": ["en"]})
        if r is None or r.status_code != 200:
            return
        version = r.json()[0]["version"]
        self.acked.append(("render", inc, version))
        r = send("approve", "POST", f"/incidents/{inc}/approve", "bob", {"post": POST, "version": version})
        if r is not None and r.status_code == 200:
            self.acked.append(("approve", inc, version))

    def run(self, seconds: float) -> float:
        threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(self.clients)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds)
        self.stop.set()
        for t in threads:
            t.join(300)
        return time.perf_counter() - began


def lost_writes(db: str, incidents: list[str], acked: list[tuple]) -> tuple[int, int]:
    """(acknowledged writes missing from the log, notes logged more than once)."""
    from engine.store import open_store

    store = open_store(db)
    try:
        logged, notes = set(), Counter()
        for inc in incidents:
            for e in store.events(inc):
                if e.type == "NoteAdded":
                    logged.add(("note", inc, e.data["text"]))
                    notes[(inc, e.data["text"])] += 1
                elif e.type == "PostDrafted" and e.data["post"] == POST:
                    logged.add(("render", inc, e.data["version"]))
                elif e.type == "PostApproved" and e.data["post"] == POST:
                    logged.add(("approve", inc, e.data["version"]))
    finally:
        store.close()
    return sum(1 for a in acked if a not in logged), sum(1 for c in notes.values() if c > 1)


def quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the clients run (default 60)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--incidents", type=int, default=20)
    ap.add_argument("--url", help="a PostgreSQL URL whose user may create databases (a new one is made)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="playbook-bench-server-"))
    server = None
    try:
        if args.url:
            from append_postgres import fresh_database

            db = fresh_database(args.url)
        else:
            db = str(home / "incidents.db")
        tokens = make_people(db)
        server = Server(db, home)
        incidents = start_incidents(server.url, tokens, args.incidents)
        load = Load(server.url, tokens, incidents, args.clients, args.seed)
        elapsed = load.run(args.seconds)
        server.stop()
        internal = [line for line in server.lines if "internal error" in line or "Traceback" in line]
        server = None
        lost, doubled = lost_writes(db, incidents, load.acked)
        verified = subprocess.run([sys.executable, "-m", "cli", "verify", "--db", db], cwd=ROOT,
                                  env=environment(home), capture_output=True, text=True)
    finally:
        if server:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)

    total = sum(load.statuses.values())
    server_errors = sum(c for (_, s), c in load.statuses.items() if isinstance(s, int) and s >= 500)
    transport = sum(c for (_, s), c in load.statuses.items() if not isinstance(s, int))
    refused = {f"{k} {s}": c for (k, s), c in sorted(load.statuses.items(), key=str)
               if isinstance(s, int) and 400 <= s < 500}
    failed = {f"{k} {s}": c for (k, s), c in sorted(load.statuses.items(), key=str) if not isinstance(s, int)
              or s >= 500}
    lines = [
        ("machine", machine()),
        ("store", "PostgreSQL" if args.url else "SQLite"),
        ("clients", args.clients), ("incidents", args.incidents), ("seconds", round(elapsed, 1)),
        ("requests", total), ("requests/s", round(total / elapsed, 1)),
        ("acknowledged writes", len(load.acked)),
        ("lost acknowledged writes", lost), ("notes logged twice", doubled),
        ("5xx", server_errors), ("connection errors", transport),
        ("5xx and connection errors by request", ", ".join(f"{k}: {c}" for k, c in failed.items()) or 0),
        ("internal errors in the server log", len(internal)),
        ("4xx", ", ".join(f"{k}: {c}" for k, c in refused.items()) or 0),
        ("verify ok", "yes" if verified.returncode == 0 else
         f"NO (exit {verified.returncode}) {verified.stdout[-300:]}"),
    ]
    for kind in ("healthz", "me", "status", "note", "render", "approve"):
        values = load.latency.get(kind, [])
        lines.append((f"{kind} count", len(values)))
        for q in (0.5, 0.99):
            lines.append((f"{kind} p{round(q * 100)} ms", round(quantile(values, q) * 1000, 2)))
        lines.append((f"{kind} max ms", round(max(values, default=float("nan")) * 1000, 2)))
    for kind in ("status", "approve", "note"):
        for base in ("healthz", "me"):
            for q in (0.5, 0.99):
                ratio = quantile(load.latency.get(kind, []), q) / quantile(load.latency.get(base, []), q)
                lines.append((f"{kind} p{round(q * 100)} / {base} p{round(q * 100)}", round(ratio, 2)))
    for name, value in lines:
        print(f"{name}: {value}")
    for failure in load.failures:
        print(f"5xx answer: {failure}")
    if lost or doubled or server_errors or verified.returncode != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
