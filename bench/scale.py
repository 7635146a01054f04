"""Benchmark: the scale targets of issue 14, as whole processes, one ``NAME: VALUE`` line each.

What it measures (targets from the issue; every ratio is taken between two figures of
the same run, because these machines are shared and noisy):

* ``due 10000/100``: steady-state ``playbook due`` (everything overdue is already
  recorded) at 10,000 open incidents vs at 100 (target <= 3x); its peak memory
  (``due 10000 peak MB``, < 100); the first run at 10,000, which records every breach
  and escalation (``due 10000 first run s``, < 10);
* ``list 10000/100``: ``playbook list`` (target <= 2x);
* ``report 100k/10k``: ``playbook report`` of one incident with a realistic mix of
  events (target <= 12x) and ``report 10k s`` (< 2);
* ``append realistic/raw``: single-event transactions through the store on an incident
  holding 1,000 published post versions vs raw sqlite3 single-row commits at the same
  durability (target >= 0.5); ``note realistic/raw`` is the whole ``service.note`` use case as ``playbook note`` runs it;
* ``verify 1M/sha256sum``: plain ``playbook verify`` (every hash and link, and the
  refold and rules replay of the incidents changed since the last checkpoint) of
  1,000,000 events vs ``sha256sum`` over the same events as JSON Lines (target <= 4),
  measured on the usual case: a database verified before (its checkpoint signed then),
  with new events since in 5 of its 200 incidents; ``verify 1M first/sha256sum`` is the
  first verify (no checkpoint: every incident refolded), ``--fast`` the chain alone;
  ``verify 10000 incidents s`` the same usual case over 10,000 small incidents (50
  changed since), ``verify 10000 incidents first s`` the first, and the peak memory of
  the two (< 3 s, < 150 MB);
* ``status/baseline nobytecode``: ``playbook status INCIDENT`` vs
  ``python -c "import click, sqlite3"``, the project's code copied without
  ``__pycache__`` and run with PYTHONDONTWRITEBYTECODE=1 (target <= 1.5; the cached
  figure is printed too).

How. The databases are built in a temporary folder (removed at the end; nothing is
written into the repository, bytecode included) through the engine's own functions:
one real incident runs through ``service`` and ``posts`` (start, tasks, a stage change,
renders, approval, publication, rejection, roles, notes, inputs) with a fixed clock;
its events are then reused, with distinct incident ids, for thousands of incidents,
and extended with a repeating realistic mix of the same event types, appended through
``store.transaction`` (in large transactions for long logs) with projections folded by
``engine.incidents.state.apply``, so every projection is the one the engine would hold and
plain ``verify`` (which refolds) passes. Incidents for ``due`` start six hours before
the moment they are built, so their first-public-post target and triage deadline are
overdue when ``due`` runs with the system clock.

Every command runs as a whole process, ``sys.executable -m cli ...`` from the
repository root with PLAYBOOK_DB set, interleaved (A, B, A, B, ...) after an uncounted
warm-up run, and medians are reported. Peak memory is the command's own maximum
resident set size as GNU time reports it (``/usr/bin/time -f %M``; see Runner). Commands
that write (``due``'s first run, ``verify``, which stores a checkpoint) start each
run from a fresh copy of the database, made outside the timing.

    python3 bench/scale.py                 # full run, about 15 minutes on 2 CPUs
    python3 bench/scale.py --quick         # smaller sizes, fewer runs (about a minute)
    python3 bench/scale.py --only due list # targets whose name starts with these words
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.dont_write_bytecode = True  # the benchmark itself leaves no __pycache__ in the repository
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from append import raw_sqlite, through_store  # noqa: E402  (bench/append.py's two sides)
from status import machine, modes  # noqa: E402  (bench/status.py's machine line and bytecode modes)
from engine.incidents.index import summary  # noqa: E402  (the index row service writes with every append)

PLAYBOOK = ROOT / "playbooks" / "viral-complaint.yaml"
INPUTS = {"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"}
PEOPLE = {"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"}
NOTE = "Call with the ward manager; waiting times on the night of the 12th confirmed."
T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=timezone.utc)  # histories (report, verify, append)
CHUNK = 5_000  # events per transaction while building long logs
PER_INCIDENT = 5_000  # events per incident in the verify database (1M = 200 x 5,000)
DUE_AGE = timedelta(hours=6)  # how long ago the incidents for due/list started
APPEND_HISTORY = 10_530  # events of the realistic mix that hold 1,000 published post versions
# "yesterday's" databases for verify: verified once, then new events in a few incidents
VERIFY_TOUCHED, VERIFY_NOTES = 40, 20  # every 40th incident gets 20 notes: 5 of the 200 of 5,000 events
VERIFY_INCIDENTS_TOUCHED = 200  # every 200th small incident gets one note: 50 of 10,000

TARGETS = {  # name -> (comparison, limit, unit)
    "due 10000/100": ("<=", 3, "x"),
    "due 10000 peak MB": ("<", 100, " MB"),
    "due 10000 first run s": ("<", 10, " s"),
    "list 10000/100": ("<=", 2, "x"),
    "report 100k/10k": ("<=", 12, "x"),
    "report 10k s": ("<", 2, " s"),
    "append realistic/raw": (">=", 0.5, "x"),
    "note realistic/raw": (">=", 0.5, "x"),
    "verify 1M/sha256sum": ("<=", 4, "x"),
    "verify 1M first/sha256sum": ("<=", 4, "x"),
    "verify --fast 1M/sha256sum": ("<=", 4, "x"),
    "verify 10000 incidents s": ("<", 3, " s"),
    "verify 10000 incidents first s": ("<", 3, " s"),
    "verify 10000 incidents peak MB": ("<", 150, " MB"),
    "status/baseline nobytecode": ("<=", 1.5, "x"),
    "status/baseline cached": ("<=", 1.5, "x"),
}
GROUPS = {  # measurement -> the targets it produces (Bench.<measurement>)
    "due": ["due 10000/100", "due 10000 peak MB", "due 10000 first run s"],
    "list_": ["list 10000/100"],
    "report": ["report 100k/10k", "report 10k s"],
    "append": ["append realistic/raw", "note realistic/raw"],
    "verify": ["verify 1M/sha256sum", "verify 1M first/sha256sum", "verify --fast 1M/sha256sum"],
    "verify_incidents": ["verify 10000 incidents s", "verify 10000 incidents first s",
                         "verify 10000 incidents peak MB"],
    "status": ["status/baseline nobytecode", "status/baseline cached"],
}


@dataclass(frozen=True)
class Sizes:
    quick: bool
    incidents: tuple[int, ...]  # due and list; the last is the headline, compared with 100
    report: tuple[int, int]  # events: (small, large)
    verify_events: int
    verify_incidents: int
    appends: int  # single-event transactions per round and side
    append_rounds: int
    steady_runs: int
    first_runs: int
    report_runs: int
    verify_runs: int
    status_runs: int

    @property
    def big(self) -> int:
        return self.incidents[-1]


FULL = Sizes(False, (1, 100, 1_000, 10_000), (10_000, 100_000), 1_000_000, 10_000,
             300, 5, 5, 3, 5, 3, 20)
QUICK = Sizes(True, (1, 100, 1_000), (1_000, 10_000), 100_000, 1_000,
              100, 2, 3, 1, 3, 2, 10)


# --- the realistic incident ------------------------------------------------------------


class Seed:
    """One real viral-complaint incident run through the engine's use cases with a fixed
    clock; its events are the templates every database here is made of."""

    def __init__(self, folder: Path) -> None:
        from engine.posts import versions as posts, release
        from engine.incidents import service
        from engine.clock import FixedClock
        from engine.format.loader import load_playbook
        from engine.store import open_store

        store = open_store(folder / "seed.db")
        clock = FixedClock(T0)
        outbox = folder / "outbox"
        try:
            state = service.start(store, clock, "alice", load_playbook(PLAYBOOK), title="ER wait time complaint",
                                  inputs=dict(INPUTS), assign=dict(PEOPLE))
            iid = self.incident = state["id"]
            self.start_events = len(state["roles"]) + 1  # IncidentStarted + one RoleAssigned per role
            steps = [
                lambda: service.task(store, clock, "alice", iid, "confirm_post"),
                lambda: service.advance(store, clock, "alice", iid, "acknowledge"),
                lambda: posts.render(store, clock, "alice", iid, "public_ack"),
                lambda: posts.approve(store, clock, "bob", iid, "public_ack/x/en", version=1),
                lambda: release.publish(store, clock, "alice", iid, "public_ack/x/en", outbox),
                lambda: service.assign(store, clock, "alice", iid, "social_media", "sam"),
                lambda: service.note(store, clock, "sam", iid, NOTE),
                lambda: service.task(store, clock, "sam", iid, "reply_in_thread"),
                lambda: posts.reject(store, clock, "bob", iid, "public_ack/facebook/en", "Too long for a reply"),
                lambda: service.set_inputs(store, clock, "alice", iid, {"hospital_name": "St Mary's Hospital"}),
                lambda: service.unassign(store, clock, "alice", iid, "social_media", "sam"),
                lambda: service.task(store, clock, "alice", iid, "reply_in_thread", done=False),
            ]
            for action in steps:
                clock.advance(timedelta(seconds=30))
                action()
            self.events = list(store.events(iid))
            self.state = store.snapshot(iid).state
        finally:
            store.close()
        self.end = clock.now()
        first = {}
        for e in self.events:
            first.setdefault((e.type, e.data.get("post")), e)
        self.posts = [e.data["post"] for e in self.events if e.type == "PostDrafted"]
        self.drafts = {p: first[("PostDrafted", p)].data for p in self.posts}
        self.inputs_set = first[("InputsSet", None)].data
        # the data shapes of the real approval, publication and rejection (whatever fields
        # the engine records with them), re-addressed to other posts and versions below
        self.approved = first[("PostApproved", "public_ack/x/en")].data
        self.published = first[("PostPublished", "public_ack/x/en")].data
        self.rejected = first[("PostRejected", "public_ack/facebook/en")].data
        self.outbox = str(Path(first[("PostPublished", "public_ack/x/en")].data["outbox"]).parent.parent)

    def start(self, incident: str, at: str) -> list:
        """The events of ``service.start`` for another incident id at another time."""
        from engine.incidents.events import NewEvent

        out = []
        for e in self.events[:self.start_events]:
            data = dict(e.data, incident=incident) if e.type == "IncidentStarted" else e.data
            out.append(NewEvent(e.type, at, e.actor, data))
        return out

    def history(self, incident: str, total: int):
        """Exactly ``total`` events: the seed's own (re-addressed to ``incident``), then
        a repeating realistic mix of 21 events: 24% notes, 14% drafts, 10% approvals,
        10% publications, 5% rejections, 10% deliveries (attempt and outcome), 10% task
        ticks, 10% role changes, 5% inputs. Post versions follow on from the seed's;
        every event is one the fold, the report and the rules (``verify``) accept: the
        incident lead drafts and publishes, the spokesperson approves and rejects."""
        from engine.incidents.events import NewEvent, utc_now_iso

        made = 0
        for e in self.events:
            if made == total:
                return
            data = e.data
            if e.type == "IncidentStarted":
                data = dict(data, incident=incident)
            elif e.type == "PostPublished":
                data = dict(data, outbox=data["outbox"].replace(self.incident, incident))
            yield NewEvent(e.type, e.at, e.actor, data)
            made += 1
        versions = {p: self.state["posts"][p]["version"] for p in self.posts}
        t, n, k = self.end, 0, 0

        def ev(type_, actor, data):
            nonlocal t
            t += timedelta(seconds=7)
            return NewEvent(type_, utc_now_iso(t), actor, data)

        def draft(pid):
            versions[pid] += 1
            d = self.drafts[pid]
            return ev("PostDrafted", "alice", dict(d, version=versions[pid]))

        def approval(pid):
            return ev("PostApproved", "bob", dict(self.approved, post=pid, version=versions[pid],
                                                  sha256=self.drafts[pid]["sha256"]))

        def publication(pid):
            name = f"{pid.replace('/', '.')}.v{versions[pid]}.json"
            return ev("PostPublished", "alice", dict(self.published, post=pid, version=versions[pid],
                                                     sha256=self.drafts[pid]["sha256"],
                                                     outbox=f"{self.outbox}/{incident}/{name}"))

        def delivery(type_, pid):  # an attempt, then its outcome, as release.deliver logs them
            outcome = {} if type_ == "DeliveryAttempted" else {"error": ""}
            return ev(type_, "alice", {"post": pid, "version": versions[pid], "sha256": self.drafts[pid]["sha256"],
                                       "target": "x://****/", **outcome})

        def note():
            nonlocal n
            n += 1
            return ev("NoteAdded", "alice", {"text": f"{NOTE} ({n})"})

        while True:
            a, b, c = (self.posts[(k + i) % len(self.posts)] for i in (0, 3, 5))
            k += 1
            cycle = [
                note, note, note,
                lambda: ev("TaskCompleted", "alice", {"task": "reply_in_thread"}),
                note,
                lambda: draft(a), lambda: approval(a), lambda: publication(a),
                lambda: delivery("DeliveryAttempted", a), lambda: delivery("PostDelivered", a),
                lambda: ev("RoleAssigned", "alice", {"role": "social_media", "person": "sam"}),
                note,
                lambda: draft(b), lambda: approval(b), lambda: publication(b),
                lambda: ev("TaskReopened", "alice", {"task": "reply_in_thread"}),
                lambda: draft(c),
                lambda: ev("PostRejected", "bob", dict(self.rejected, post=c, version=versions[c],
                                                       sha256=self.drafts[c]["sha256"],
                                                       reason="Wait for the ward manager's confirmation")),
                lambda: ev("RoleUnassigned", "alice", {"role": "social_media", "person": "sam"}),
                note,
                lambda: ev("InputsSet", "alice", self.inputs_set),
            ]
            for make in cycle:
                if made == total:
                    return
                yield make()
                made += 1


def append_log(store, incident: str, events) -> dict:
    """Append a stream of events to a new incident, CHUNK per transaction, each
    transaction's projection folded by the engine's own ``apply`` (in place, as replay
    does; one state for the whole log)."""
    from engine.incidents import state as inc

    state, batch = None, []

    def flush():
        nonlocal state
        with store.transaction(incident) as tx:
            if (tx.snapshot is None) != (state is None):
                raise SystemExit(f"{incident}: the store and the builder disagree about its state")
            for e in batch:
                state = inc.apply(state, e.type, e.at, e.actor, e.data, in_place=state is not None)
            tx.append(batch, state, summary(state))
        batch.clear()

    for e in events:
        batch.append(e)
        if len(batch) == CHUNK:
            flush()
    if batch:
        flush()
    return state


class Databases:
    """Databases built on demand, once per run, in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seed: Seed | None = None
        self._built: dict[tuple, tuple] = {}

    @property
    def seed(self) -> Seed:
        if self._seed is None:
            (self.folder / "seed").mkdir()
            self._seed = Seed(self.folder / "seed")
        return self._seed

    def _open(self, name: str):
        from engine.store import open_store

        return open_store(self.folder / name)

    def open_incidents(self, n: int) -> tuple[Path, list[str]]:
        """``n`` open viral-complaint incidents as ``service.start`` makes them, started
        six hours ago (0.1 s apart), one transaction each."""
        key = ("open", n)
        if key not in self._built:
            from engine.incidents import state as inc
            from engine.incidents.events import utc_now_iso

            t = time.perf_counter()
            name = f"open-{n}.db"
            store = self._open(name)
            first = datetime.now(timezone.utc) - DUE_AGE
            ids = []
            try:
                for i in range(n):
                    at = first + timedelta(milliseconds=100 * i)
                    incident = f"INC-{at:%Y%m%d}-{i + 1:03d}"
                    events = self.seed.start(incident, utc_now_iso(at))
                    with store.transaction(incident) as tx:
                        state = inc.replay(events)
                        tx.append(events, state, summary(state))  # as service.start writes it
                    ids.append(incident)
            finally:
                store.close()
            path = self.folder / name
            print(f"  built {n:,} open incidents ({n * self.seed.start_events:,} events) in "
                  f"{time.perf_counter() - t:.1f} s; {path.stat().st_size / 1e6:.1f} MB", flush=True)
            self._built[key] = (path, ids)
        return self._built[key]

    def history(self, events: int) -> tuple[Path, str]:
        """One incident with exactly ``events`` events of the realistic mix."""
        key = ("history", events)
        if key not in self._built:
            from engine.audit.rules import audit

            t = time.perf_counter()
            name = f"history-{events}.db"
            incident = self.seed.incident
            store = self._open(name)
            try:
                state = append_log(store, incident, self.seed.history(incident, events))
                if events <= 20_000:  # what plain verify will check, said early and plainly
                    folded, refused = audit(store.events(incident))
                    if refused:
                        raise SystemExit("the rules refuse the built log:\n" + "\n".join(refused[:5]))
                    if folded != store.snapshot(incident).state:
                        raise SystemExit("the built projection does not match the replayed log")
            finally:
                store.close()
            published = sum(len(p["published"]) for p in state["posts"].values())
            path = self.folder / name
            print(f"  built one incident of {events:,} events ({published:,} published post versions) "
                  f"in {time.perf_counter() - t:.1f} s; {path.stat().st_size / 1e6:.1f} MB", flush=True)
            self._built[key] = (path, incident)
        return self._built[key]

    def histories(self, events: int) -> Path:
        """``events`` events in incidents of PER_INCIDENT events of the realistic mix."""
        key = ("histories", events)
        if key not in self._built:
            t = time.perf_counter()
            name = f"histories-{events}.db"
            store = self._open(name)
            try:
                made, i = 0, 0
                while made < events:
                    i += 1
                    incident = f"INC-20260314-{i:03d}"
                    n = min(PER_INCIDENT, events - made)
                    append_log(store, incident, self.seed.history(incident, n))
                    made += n
            finally:
                store.close()
            path = self.folder / name
            print(f"  built {events:,} events in {i} incidents in {time.perf_counter() - t:.1f} s; "
                  f"{path.stat().st_size / 1e6:.0f} MB", flush=True)
            self._built[key] = (path, i)
        return self._built[key][0]


def fresh_copy(src: Path, dst: Path) -> Path:
    """``dst`` as an exact copy of the (closed) database ``src``."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --- whole processes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds
    rss: float  # the child's peak resident set, MB


class Runner:
    """Runs whole processes and reads their wall time, CPU time and peak memory.

    Peak memory comes from GNU time (``/usr/bin/time -f %M``), which reports the
    command's own maximum resident set. The rusage this process gets from ``os.wait4``
    would not do: a child started from a large process inherits that process's
    resident high-water mark when it execs, so every figure would read at least this
    benchmark's own size. Without GNU time the peaks are shown as unknown.
    """

    TIME = "/usr/bin/time"

    def __init__(self, folder: Path) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("PLAYBOOK_")}
        base.pop("PYTHONPATH", None)
        base.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env = dict(base, PYTHONPYCACHEPREFIX=str(folder / "pycache"),
                        PLAYBOOK_KEY=str(folder / "signing.key"), PLAYBOOK_ACTOR="alice")
        self.peak_file = folder / "peak.txt"
        self.gnu_time = os.access(self.TIME, os.X_OK) and subprocess.run(
            [self.TIME, "-f", "%M", "-o", str(self.peak_file), "true"], capture_output=True).returncode == 0
        if not self.gnu_time:
            print("  (GNU time is not installed at /usr/bin/time: peak memory is not measured)")

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cli", *args]

    def run(self, cmd: list[str], db: Path | None = None, *, ok=(0,), cwd: Path = ROOT,
            env: dict | None = None) -> Sample:
        env = dict(env or self.env)
        if db is not None:
            env["PLAYBOOK_DB"] = str(db)
        if self.gnu_time:
            cmd = [self.TIME, "-f", "%M", "-o", str(self.peak_file), *cmd]
        t = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)  # CPU: the child's and its waited-for children's
        wall = time.perf_counter() - t
        p.stderr.close()
        p.returncode = code = os.waitstatus_to_exitcode(status)
        if code not in ok:
            raise SystemExit(f"{' '.join(cmd)} failed ({code}): {err.decode()[-800:]}")
        peak = float("nan")
        if self.gnu_time:
            peak = int(self.peak_file.read_text().split()[-1]) / 1024  # last line: "%M" in kB
        return Sample(wall, usage.ru_utime + usage.ru_stime, peak)

    def interleaved(self, jobs: dict, runs: int, warmup: int = 1) -> dict[str, list[Sample]]:
        """jobs: name -> (cmd, db, ok, prepare or None); run A, B, A, B, ... ``runs`` times
        after ``warmup`` uncounted rounds; ``prepare`` (untimed) runs before each run."""
        out: dict[str, list[Sample]] = {name: [] for name in jobs}
        for r in range(warmup + runs):
            for name, (cmd, db, ok, prepare) in jobs.items():
                if prepare:
                    prepare()
                s = self.run(cmd, db, ok=ok)
                if r >= warmup:
                    out[name].append(s)
        return out


def med(samples: list[Sample], field: str = "wall") -> float:
    return statistics.median(getattr(s, field) for s in samples)


def row(label: str, samples: list[Sample]) -> str:
    walls = [s.wall for s in samples]
    return (f"  {label:<44} {med(samples):8.3f} s  (min {min(walls):.3f}, max {max(walls):.3f})  "
            f"CPU {med(samples, 'cpu'):7.3f} s  peak {med(samples, 'rss'):6.1f} MB  [{len(samples)} runs]")


# --- the measurements --------------------------------------------------------------------


class Bench:
    def __init__(self, sizes: Sizes, folder: Path, wanted: set[str]) -> None:
        self.sizes, self.folder, self.wanted = sizes, folder, wanted
        self.dbs = Databases(folder)
        self.runner = Runner(folder)
        self.results: dict[str, tuple[float, str]] = {}  # name -> (value, note)
        self.steady: dict[int, Path] = {}
        self.first: dict[int, list[Sample]] = {}  # due's first runs, by number of incidents
        self.due_runs: dict[int, list[Sample]] = {}
        self.list_runs: dict[int, list[Sample]] = {}

    def result(self, name: str, value: float, note: str = "") -> None:
        if name in self.wanted:
            self.results[name] = (value, note)

    def quick_note(self, text: str) -> str:
        return f"quick: {text}" if self.sizes.quick else ""

    def ratio(self, name: str, a: list[Sample], b: list[Sample], note: str = "") -> None:
        """The wall-time ratio of medians, with the CPU-time ratio beside it (CPU time is
        less disturbed by other load on a shared machine)."""
        cpu = f"CPU {med(a, 'cpu') / med(b, 'cpu'):.2f}x"
        self.result(name, med(a) / med(b), f"{cpu}; {note}" if note else cpu)

    # due ---------------------------------------------------------------------------

    def steady_dbs(self) -> dict[int, Path]:
        """Per size: a database on which ``due`` has run once (every breach recorded),
        made by the first runs, which are timed on the way."""
        if self.steady:
            return self.steady
        sz, r = self.sizes, self.runner
        print(f"\n== due, first run (records breaches and escalations): {sz.first_runs} run(s) per size, "
              "each on a fresh copy ==", flush=True)
        pristine = {n: self.dbs.open_incidents(n)[0] for n in sz.incidents}
        first: dict[int, list[Sample]] = {n: [] for n in sz.incidents}
        r.run(r.cli("due"), fresh_copy(pristine[1], self.folder / "warm-up.db"), ok=(0, 9))  # bytecode
        remove_db(self.folder / "warm-up.db")
        for k in range(sz.first_runs):
            for n in sz.incidents:
                db = fresh_copy(pristine[n], self.folder / f"due-{n}.db")
                first[n].append(r.run(r.cli("due"), db, ok=(0, 9)))
        for n in sz.incidents:
            print(row(f"playbook due, first run, {n:,} incidents", first[n]))
            self.steady[n] = self.folder / f"due-{n}.db"
        self._check_recorded(self.steady[sz.big], self.dbs.open_incidents(sz.big)[1][-1])
        self.first = first
        return self.steady

    def _check_recorded(self, db: Path, incident: str) -> None:
        from engine.store import open_store

        store = open_store(db)
        try:
            state = store.snapshot(incident).state
        finally:
            store.close()
        if len(state["breaches"]) < 2 or state["escalations"] < 2:
            raise SystemExit(f"due's first run recorded no breaches for {incident}: the incidents are not overdue")
        print(f"  (checked: {incident} holds {len(state['breaches'])} breaches and "
              f"{state['escalations']} escalations after the first run)")

    def due(self) -> None:
        sz, r = self.sizes, self.runner
        steady = self.steady_dbs()
        print(f"\n== due, steady state (nothing new to record): {sz.steady_runs} interleaved runs ==", flush=True)
        jobs = {n: (r.cli("due"), steady[n], (0, 9), None) for n in sz.incidents}
        runs = r.interleaved(jobs, sz.steady_runs)
        for n in sz.incidents:
            print(row(f"playbook due, {n:,} incidents", runs[n]))
        big = sz.big
        self.due_runs = runs
        note = self.quick_note(f"{big:,}/100 incidents")
        self.ratio("due 10000/100", runs[big], runs[100], note)
        self.result("due 10000 peak MB", med(runs[big], "rss"), note)
        self.result("due 10000 first run s", med(self.first[big]), self.quick_note(f"{big:,} incidents"))

    def list_(self) -> None:
        sz, r = self.sizes, self.runner
        steady = self.steady_dbs()
        print(f"\n== list: {sz.steady_runs} interleaved runs ==", flush=True)
        runs = r.interleaved({n: (r.cli("list"), steady[n], (0,), None) for n in sz.incidents}, sz.steady_runs)
        for n in sz.incidents:
            print(row(f"playbook list, {n:,} incidents", runs[n]))
        self.list_runs = runs
        self.ratio("list 10000/100", runs[sz.big], runs[100], self.quick_note(f"{sz.big:,}/100"))

    def table(self) -> None:
        """The intermediate figures, laid out as the issue's table."""
        rows = [(label, runs) for label, runs in (("`playbook due` (steady)", self.due_runs),
                                                  ("`playbook due` (first run)", self.first),
                                                  ("`playbook list`", self.list_runs)) if runs]
        if not rows:
            return
        ns = self.sizes.incidents
        print("\n== due and list by number of open incidents (medians: wall s, peak MB) ==")
        print("| figure | " + " | ".join(f"{n:,}" for n in ns) + " |")
        print("|---|" + "---|" * len(ns))
        for label, runs in rows:
            print(f"| {label} | " + " | ".join(f"{med(runs[n]):.2f} s, {med(runs[n], 'rss'):.0f} MB"
                                                for n in ns) + " |")

    # report ------------------------------------------------------------------------

    def report(self) -> None:
        sz, r = self.sizes, self.runner
        small, large = sz.report
        print(f"\n== report of one incident, realistic mix: {sz.report_runs} interleaved runs ==", flush=True)
        jobs = {}
        for n in (small, large):
            db, incident = self.dbs.history(n)
            jobs[n] = (r.cli("report", incident), db, (0,), None)
        runs = r.interleaved(jobs, sz.report_runs)
        for n in (small, large):
            print(row(f"playbook report, {n:,} events", runs[n]))
        self.ratio("report 100k/10k", runs[large], runs[small], self.quick_note(f"{large:,}/{small:,} events"))
        if small == 10_000 or large == 10_000:
            self.result("report 10k s", med(runs[10_000]))

    # append ------------------------------------------------------------------------

    def append(self) -> None:
        from engine.incidents import state as inc
        from engine.incidents import service
        from engine.clock import FixedClock
        from engine.incidents.events import NewEvent, canonical, utc_now_iso
        from engine.store import open_store

        sz = self.sizes
        src, incident = self.dbs.history(APPEND_HISTORY)
        n = sz.appends
        print(f"\n== appends, in process: {sz.append_rounds} alternating rounds of {n} single-event "
              "transactions, WAL + synchronous=FULL on both sides ==", flush=True)
        rates: dict[str, list[float]] = {"raw": [], "tiny": [], "realistic": [], "note": []}
        start = datetime.now(timezone.utc)
        for k in range(sz.append_rounds):
            rates["raw"].append(raw_sqlite(self.folder / f"raw-{k}.db", n))
            rates["tiny"].append(through_store(self.folder / f"tiny-{k}.db", n))
            db = fresh_copy(src, self.folder / "append.db")
            store = open_store(db)
            try:
                state = store.snapshot(incident).state
                size = len(canonical(state))
                published = sum(len(p["published"]) for p in state["posts"].values())
                t = time.perf_counter()
                for i in range(n):
                    at = utc_now_iso(start + timedelta(seconds=i))
                    event = NewEvent("NoteAdded", at, "alice", {"text": f"{NOTE} ({i})"})
                    with store.transaction(incident) as tx:
                        state = inc.apply(tx.snapshot.state, event.type, event.at, event.actor, event.data,
                                          in_place=True)
                        tx.append([event], state)
                rates["realistic"].append(n / (time.perf_counter() - t))
                clock = FixedClock(start)
                t = time.perf_counter()
                for i in range(n):
                    service.note(store, clock, "alice", incident, f"{NOTE} (note {i})", answer=False)  # as the CLI
                rates["note"].append(n / (time.perf_counter() - t))
            finally:
                store.close()
            remove_db(db)
            for name in (f"raw-{k}.db", f"tiny-{k}.db"):
                remove_db(self.folder / name)
        labels = {"raw": "raw sqlite3 single-row commits",
                  "tiny": "store, tiny state (bench/append.py)",
                  "realistic": f"store, state after {published:,} published ({size / 1e3:.0f} kB)",
                  "note": "service.note, same state"}
        raw = statistics.median(rates["raw"])
        for key, label in labels.items():
            m = statistics.median(rates[key])
            print(f"  {label:<46} {m:8,.0f} /s  ({m / raw:.2f}x raw; rounds: "
                  f"{', '.join(f'{x:,.0f}' for x in rates[key])})")
        self.result("append realistic/raw", statistics.median(rates["realistic"]) / raw)
        self.result("note realistic/raw", statistics.median(rates["note"]) / raw)

    # verify ------------------------------------------------------------------------

    def yesterday(self, src: Path, name: str, incidents: list[str], notes: int) -> Path:
        """A copy of ``src`` as it is the day after a verify: plain ``playbook verify`` ran
        once (untimed; it signed a checkpoint vouching for every incident), then
        ``notes`` notes were added to each of ``incidents`` through the store (folded by
        the engine, index row written), so those have new events since the checkpoint."""
        from engine.incidents import state as inc
        from engine.incidents.events import NewEvent, utc_now_iso
        from engine.store import open_store

        dst = fresh_copy(src, self.folder / name)
        self.runner.run(self.runner.cli("verify"), dst)
        store = open_store(dst)
        start = datetime.now(timezone.utc)
        try:
            for k, incident in enumerate(incidents):
                with store.transaction(incident) as tx:
                    state = tx.snapshot.state
                    events = [NewEvent("NoteAdded", utc_now_iso(start + timedelta(seconds=k, milliseconds=i)),
                                       "alice", {"text": f"{NOTE} (since the checkpoint, {i})"})
                              for i in range(notes)]
                    for e in events:
                        state = inc.apply(state, e.type, e.at, e.actor, e.data, in_place=True)
                    tx.append(events, state, summary(state))
        finally:
            store.close()
        return dst

    def verify(self) -> None:
        from engine.audit.report import jsonl_line
        from engine.store import open_store

        sz, r = self.sizes, self.runner
        if not shutil.which("sha256sum"):
            raise SystemExit("sha256sum is not installed")
        src = self.dbs.histories(sz.verify_events)
        jsonl = self.folder / "events.jsonl"
        store = open_store(src)
        t = time.perf_counter()
        try:
            ids = store.incidents()
            with open(jsonl, "w", encoding="utf-8") as out:
                for line_row in store.rows():
                    out.write(jsonl_line(line_row) + "\n")
        finally:
            store.close()
        print(f"  exported {sz.verify_events:,} events as JSON Lines ({jsonl.stat().st_size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - t:.1f} s")
        touched = ids[::VERIFY_TOUCHED]
        old = self.yesterday(src, "verify-yesterday.db", touched, VERIFY_NOTES)
        print(f"  verified once (checkpoint signed), then {VERIFY_NOTES} notes added to each of "
              f"{len(touched)} of the {len(ids)} incidents")
        work = self.folder / "verify.db"
        print(f"\n== verify {sz.verify_events:,} events vs sha256sum: {sz.verify_runs} interleaved runs ==",
              flush=True)
        jobs = {
            "sha256sum": (["sha256sum", str(jsonl)], None, (0,), None),
            "verify": (r.cli("verify"), work, (0,), lambda: fresh_copy(old, work)),
            "verify, first": (r.cli("verify"), work, (0,), lambda: fresh_copy(src, work)),
            "verify --fast": (r.cli("verify", "--fast"), work, (0,), lambda: fresh_copy(src, work)),
        }
        runs = r.interleaved(jobs, sz.verify_runs)
        labels = {"verify": f"verify, checkpoint before, {len(touched)} incidents changed since",
                  "verify, first": "verify, first (no checkpoint)"}
        for name in jobs:
            print(row(f"{labels.get(name, name)}, {sz.verify_events:,} events", runs[name]))
        note = self.quick_note(f"{sz.verify_events:,} events")
        self.ratio("verify 1M/sha256sum", runs["verify"], runs["sha256sum"],
                   f"{note + '; ' if note else ''}checkpoint before, {len(touched)}/{len(ids)} incidents changed")
        self.ratio("verify 1M first/sha256sum", runs["verify, first"], runs["sha256sum"], note)
        self.ratio("verify --fast 1M/sha256sum", runs["verify --fast"], runs["sha256sum"], note)
        remove_db(work)
        remove_db(old)
        jsonl.unlink()

    def verify_incidents(self) -> None:
        sz, r = self.sizes, self.runner
        src, ids = self.dbs.open_incidents(sz.big)
        work = self.folder / "verify-incidents.db"
        events = len(ids) * self.dbs.seed.start_events
        touched = ids[::VERIFY_INCIDENTS_TOUCHED]
        old = self.yesterday(src, "verify-incidents-yesterday.db", touched, 1)
        print(f"\n== verify {len(ids):,} incidents ({events:,} events): {sz.verify_runs} runs each, after a "
              f"checkpoint with {len(touched)} incidents changed since, and first ==", flush=True)
        runs = r.interleaved({"verify": (r.cli("verify"), work, (0,), lambda: fresh_copy(old, work)),
                              "first": (r.cli("verify"), work, (0,), lambda: fresh_copy(src, work))},
                             sz.verify_runs)
        print(row(f"playbook verify, {len(ids):,} incidents, checkpoint before", runs["verify"]))
        print(row(f"playbook verify, {len(ids):,} incidents, first", runs["first"]))
        note = self.quick_note(f"{len(ids):,} incidents")
        changed = f"checkpoint before, {len(touched)}/{len(ids)} incidents changed"
        self.result("verify 10000 incidents s", med(runs["verify"]), f"{note + '; ' if note else ''}{changed}")
        self.result("verify 10000 incidents first s", med(runs["first"]), note)
        self.result("verify 10000 incidents peak MB", max(med(runs["verify"], "rss"), med(runs["first"], "rss")),
                    f"{note + '; ' if note else ''}the larger of the two")
        remove_db(work)
        remove_db(old)

    # status ------------------------------------------------------------------------

    def status(self) -> None:
        sz, r = self.sizes, self.runner
        src, ids = self.dbs.open_incidents(1)
        db = fresh_copy(src, self.folder / "status.db")
        folder = self.folder / "status"
        folder.mkdir()
        base_cmd = [sys.executable, "-c", "import click, sqlite3"]
        print(f"\n== status INCIDENT vs `python -c \"import click, sqlite3\"`: {sz.status_runs} interleaved "
              "runs each ==", flush=True)
        for mode, (cwd, env) in modes(folder).items():
            env = dict(env, PLAYBOOK_DB=str(db), PLAYBOOK_ACTOR="alice")
            times: dict[str, list[Sample]] = {"baseline": [], "status": []}
            for k in range(2 + sz.status_runs):
                for name, cmd in (("baseline", base_cmd), ("status", r.cli("status", ids[0]))):
                    s = r.run(cmd, cwd=cwd, env=env)
                    if k >= 2:
                        times[name].append(s)
            for name, samples in times.items():
                print(row(f"{name} (bytecode {mode})", samples))
            self.ratio("status/baseline nobytecode" if mode == "uncached" else "status/baseline cached",
                       times["status"], times["baseline"])


def verdict(name: str, value: float) -> str:
    op, limit, unit = TARGETS[name]
    if value != value:  # NaN: not measured
        return f"target {op} {limit}{unit}: not measured"
    met = {"<=": value <= limit, "<": value < limit, ">=": value >= limit}[op]
    return f"target {op} {limit}{unit}: {'met' if met else 'NOT met'}"


def fmt(name: str, value: float) -> str:
    unit = TARGETS[name][2]
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.1f}{unit}" if unit == " MB" else f"{value:.2f}{unit}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smaller sizes and fewer runs (1,000 incidents, 100,000 events to verify)")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="only the targets whose name starts with one of these (e.g. due, 'verify 1M', status)")
    args = ap.parse_args()
    sizes = QUICK if args.quick else FULL
    wanted = {name for name in TARGETS
              if not args.only or any(name.lower().startswith(w.lower()) for w in args.only)}
    if not wanted:
        raise SystemExit(f"--only matches no target; the targets are: {', '.join(TARGETS)}")

    began = time.perf_counter()
    print(f"machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"mode: {'quick' if sizes.quick else 'full'}; targets: {', '.join(n for n in TARGETS if n in wanted)}")
    folder = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    try:
        bench = Bench(sizes, folder, wanted)
        for group, names in GROUPS.items():
            if wanted & set(names):
                getattr(bench, group)()
        bench.table()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"\n== results ({'QUICK: smaller sizes, not comparable with a full run' if sizes.quick else 'full'}; "
          f"{time.perf_counter() - began:.0f} s; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}) ==")
    for name in TARGETS:
        if name in bench.results:
            value, note = bench.results[name]
            print(f"{name}: {fmt(name, value)}  ({verdict(name, value)}{'; ' + note if note else ''})")


if __name__ == "__main__":
    main()
