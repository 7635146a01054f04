"""The team server as real processes: killed with SIGKILL while clients write, then
restarted, it has lost no write a client saw acknowledged and its log verifies; two
servers on one database serve interleaved writes to one incident without losing or
doubling an event. SQLite and PostgreSQL alike.

The servers run ``python -m cli serve`` on loopback with the system clock (a real
process cannot take the tests' fixed clock); nothing here asserts a time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from conftest import ROOT  # noqa: E402
from server_support import PASSWORD, PEOPLE, VIRAL_BODY, cheap_hasher  # noqa: E402

LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class ServerProcess:
    """``playbook serve`` in its own process group, on `port` (0: one the OS picks)."""

    def __init__(self, db: str, home: Path, port: int = 0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYBOOK_")}
        env.update(PLAYBOOK_KEY=str(home / "signing.key"), PLAYBOOK_OUTBOX=str(home / "outbox"),
                   PYTHONPATH=str(ROOT))
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), "--db", db], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        ready = threading.Event()
        self.port = 0

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
            self.kill()
            raise AssertionError("the server did not start:\n" + "".join(self.lines))
        self.url = f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL to the server and everything it started (its render workers)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def internal_errors(self) -> list[str]:
        return [line for line in self.lines if "internal error" in line or "Traceback" in line]


def make_people(db: str) -> dict[str, str]:
    """The accounts of server_support.PEOPLE, each with an approve-scope token (name -> secret)."""
    from engine.accounts.book import Accounts
    from engine.app.principal import Principal
    from engine.clock import SystemClock
    from engine.store import open_store

    store = open_store(db)
    try:
        book, admin, now = Accounts(store, hasher=cheap_hasher()), Principal.asserted("admin"), SystemClock().now()
        tokens = {}
        for name in PEOPLE:
            book.add_user(admin, name, PASSWORD, now)
            tokens[name], _ = book.create_token(admin, name, f"{name}-load", "approve", now)
        return tokens
    finally:
        store.close()


def call(client, method: str, path: str, token: str, **kw):
    return client.request(method, "/api/v1" + path, headers={"Authorization": f"Bearer {token}"}, **kw)


def start_incidents(url: str, tokens: dict[str, str], count: int) -> list[str]:
    """`count` viral-complaint incidents in stage acknowledge, carol drafting for social media."""
    ids = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for n in range(count):
            r = call(client, "POST", "/incidents", tokens["alice"], json={**VIRAL_BODY, "title": f"complaint {n}"})
            assert r.status_code == 201, r.text
            inc = r.json()["id"]
            for path, body in ((f"/incidents/{inc}/assign", {"role": "social_media", "person": "carol"}),
                               (f"/incidents/{inc}/tasks/confirm_post", {"done": True}),
                               (f"/incidents/{inc}/advance", {"trigger": "acknowledge"})):
                r = call(client, "POST", path, tokens["alice"], json=body)
                assert r.status_code == 200, (path, r.text)
            ids.append(inc)
    return ids


@dataclass
class Outcome:
    """One request a client made: what it asked, when, and what came back."""

    kind: str  # note | render
    incident: str
    text: str  # the note's text, or the render's client-side label
    began: float
    ended: float
    status: int | None = None  # None: no answer (connection error)
    body: object = None
    error: str | None = None


@dataclass
class Clients:
    """Threads that write notes (and carol's renders) until told to stop."""

    urls: list[str]
    tokens: dict[str, str]
    incidents: list[str]
    threads: int = 6
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, n: int) -> None:
        clients = [httpx.Client(base_url=u, timeout=20) for u in self.urls]
        try:
            i = 0
            while not self.stop.is_set():
                incident = self.incidents[(n + i) % len(self.incidents)]
                client = clients[i % len(clients)]
                if n == 0 and i % 5 == 4:
                    kind, who, path = "render", "carol", f"/incidents/{incident}/render"
                    text, body = f"render {n}-{i}", {"template": "public_ack", "channels": ["x"], "langs": ["en"]}
                else:
                    kind, who, path = "note", "alice" if i % 2 else "petra", f"/incidents/{incident}/notes"
                    text = f"client {n} note {i}"
                    body = {"text": text}
                o = Outcome(kind, incident, text, time.monotonic(), 0.0)
                try:
                    r = call(client, "POST", path, self.tokens[who], json=body)
                    o.status = r.status_code
                    o.body = r.json() if r.headers.get("content-type", "").startswith(
                        ("application/json", "application/problem+json")) else r.text
                except httpx.TransportError as e:
                    o.error = type(e).__name__
                    time.sleep(0.02)  # no server: do not spin
                o.ended = time.monotonic()
                self.outcomes.append(o)  # atomic under the GIL
                i += 1
        finally:
            for c in clients:
                c.close()

    def __enter__(self):
        self.workers = [threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(self.threads)]
        for w in self.workers:
            w.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for w in self.workers:
            w.join(60)


def right_answer(o: Outcome) -> bool:
    """A 200 that answers the request it was given (the incident's status, or the draft)."""
    if o.status != 200:
        return False
    if o.kind == "note":
        return isinstance(o.body, dict) and o.body.get("id") == o.incident
    return (isinstance(o.body, list) and len(o.body) == 1 and o.body[0]["id"] == "public_ack/x/en"
            and o.body[0]["author"] == "carol")


def logged(db: str, incidents: list[str]) -> dict[str, list]:
    from engine.store import open_store

    store = open_store(db)
    try:
        return {inc: list(store.events(inc)) for inc in incidents}
    finally:
        store.close()


def check_log(db: str, incidents: list[str], outcomes: list[Outcome]) -> None:
    """Every acknowledged note is logged once, every acknowledged render's version exists,
    no note is logged twice, and the sequence numbers have no gap."""
    events = logged(db, incidents)
    for inc, evs in events.items():
        assert [e.seq for e in evs] == list(range(1, len(evs) + 1)), inc
    notes = [(inc, e.data["text"]) for inc, evs in events.items() for e in evs if e.type == "NoteAdded"]
    assert len(notes) == len(set(notes)), "a note is logged twice"
    acked = [o for o in outcomes if o.status == 200]
    lost = [o for o in acked if o.kind == "note" and (o.incident, o.text) not in set(notes)]
    assert lost == [], f"{len(lost)} acknowledged notes are not in the log, e.g. {lost[:3]}"
    renders = {(inc, e.data["post"], e.data["version"]) for inc, evs in events.items() for e in evs
               if e.type == "PostDrafted"}
    for o in acked:
        if o.kind == "render":
            assert (o.incident, o.body[0]["id"], o.body[0]["version"]) in renders, o


def verify(db: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYBOOK_")}
    env.update(PLAYBOOK_KEY=str(home / "signing.key"), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "cli", "verify", "--db", db], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def wait_for(predicate, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the clients made no progress"
        time.sleep(0.05)


# -- SIGKILL mid-run ------------------------------------------------------------------


def killed_and_restarted(db: str, home: Path) -> None:
    tokens = make_people(db)
    server = ServerProcess(db, home)
    restarted = None
    try:
        incidents = start_incidents(server.url, tokens, 3)
        with Clients([server.url], tokens, incidents) as clients:
            wait_for(lambda: acknowledged(clients) >= 1)
            time.sleep(1.5)
            killed_at = time.monotonic()
            server.kill()
            time.sleep(0.5)  # clients keep trying against the dead port
            restarted = ServerProcess(db, home, port=server.port)
            ready_at = time.monotonic()
            before = acknowledged(clients, after=ready_at)
            wait_for(lambda: acknowledged(clients, after=ready_at) > before + 20)
        outcomes = clients.outcomes
        assert restarted.internal_errors() == [] and server.internal_errors() == []
    finally:
        server.kill()
        if restarted:
            restarted.kill()
    failed = [o for o in outcomes if o.status != 200]
    wrong = [o for o in failed if not (o.status is None or o.status >= 500)]
    assert wrong == [], f"answers that were neither right nor an outage: {wrong[:3]}"
    outside = [o for o in failed if o.ended < killed_at or o.began > ready_at]
    assert outside == [], f"requests that failed while a server was up: {outside[:3]}"
    assert [o for o in outcomes if o.status == 200 and not right_answer(o)] == []
    assert any(o.status is None for o in failed), "the kill did not interrupt any client"
    assert any(o.status == 200 and o.ended < killed_at for o in outcomes)
    assert any(o.status == 200 and o.began > ready_at for o in outcomes)
    assert any(o.kind == "render" and o.status == 200 for o in outcomes)
    check_log(db, incidents, outcomes)
    result = verify(db, home)
    assert result.returncode == 0, result.stdout + result.stderr


def acknowledged(clients: Clients, after: float = 0.0) -> int:
    return sum(1 for o in clients.outcomes[:] if o.status == 200 and o.began > after)


def test_a_server_killed_mid_run_loses_no_acknowledged_write_sqlite(tmp_path):
    killed_and_restarted(str(tmp_path / "incidents.db"), tmp_path)


def test_a_server_killed_mid_run_loses_no_acknowledged_write_postgresql(tmp_path, pg_url):
    killed_and_restarted(pg_url, tmp_path)


# -- two servers on one database ------------------------------------------------------


def two_servers(db: str, home: Path) -> None:
    tokens = make_people(db)
    first = ServerProcess(db, home)
    second = None
    try:
        second = ServerProcess(db, home)
        incidents = start_incidents(first.url, tokens, 1)
        with Clients([first.url, second.url], tokens, incidents, threads=4) as clients:
            wait_for(lambda: acknowledged(clients) >= 120)
        outcomes = clients.outcomes
        assert first.internal_errors() == [] and second.internal_errors() == []
    finally:
        first.kill()
        if second:
            second.kill()
    assert [o for o in outcomes if not right_answer(o)] == []
    check_log(db, incidents, outcomes)
    notes = [e for e in logged(db, incidents)[incidents[0]] if e.type == "NoteAdded"]
    assert len(notes) == sum(o.kind == "note" for o in outcomes)
    result = verify(db, home)
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_servers_on_one_sqlite_database_interleave_writes_to_one_incident(tmp_path):
    two_servers(str(tmp_path / "incidents.db"), tmp_path)


def test_two_servers_on_one_postgresql_database_interleave_writes_to_one_incident(tmp_path, pg_url):
    two_servers(pg_url, tmp_path)
