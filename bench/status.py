"""Benchmark: `playbook status INCIDENT` start-up cost, and its independence from history.

Two targets, each measured as a ratio within one run (the machine is shared and noisy):

1. Whole-process wall time of ``playbook status INCIDENT`` <= 1.5 x that of
   ``python -c "import click, sqlite3"`` (also reported: ``playbook --help``).
2. ``status`` of an incident with 100,000 events <= 1.2 x that of one with 10 events,
   whole-process and in-process (``service.status`` + ``views.status_text``).

Every process is started with ``sys.executable`` itself (never a shim found on PATH),
as ``python -m cli ...`` from the repository root (the uncached mode below: from a
copy of it), and the commands are interleaved (A, B, C, D, A, B, ...)
so that load from other users of the machine falls on all of them alike; medians and
the ratio of medians are reported.

Python's bytecode cache matters for a short-lived process: without one, the project's
modules are compiled from source on every start. So the process figures are taken in
two modes:

* ``cached``: every module's bytecode cached, as after ``pip install`` or any earlier
  run; the cache lives in a temporary folder (PYTHONPYCACHEPREFIX), so nothing is
  written into the repository;
* ``uncached``: the worst case for the project: ``cli.py`` and ``engine/`` are copied
  (without any ``__pycache__``) to a temporary folder and run from there with
  PYTHONDONTWRITEBYTECODE=1, so they are compiled on every start, while installed
  libraries such as click use their bytecode as installed.

Wall time is what the targets are about; CPU time (user + system) of each process is
printed beside it because it is less disturbed by other load on the machine.

The databases are built in a temporary folder and removed afterwards.

    python3 bench/status.py [--quick] [--runs N] [--iterations N] [--events N]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=timezone.utc)
PLAYBOOK = ROOT / "playbooks" / "viral-complaint.yaml"
INPUTS = {"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"}
PEOPLE = {"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"}
NOTE = "Call with the ward manager; waiting times on the night of the 12th confirmed."
CHUNK = 5_000  # events per transaction while building the large history
HEAVY = ("pydantic", "yaml", "jinja2", "transitions", "cryptography", "twitter_text", "regex")
SMALL_EVENTS = 10


# --- building the databases --------------------------------------------------------


def build(path: Path, total: int) -> str:
    """A database holding one viral-complaint incident with exactly ``total`` events."""
    from engine.incidents import state as inc
    from engine.incidents import service
    from engine.clock import FixedClock
    from engine.incidents.events import NewEvent, utc_now_iso
    from engine.format.loader import load_playbook
    from engine.store import open_store

    store = open_store(path)
    try:
        state = service.start(store, FixedClock(T0), "alice", load_playbook(PLAYBOOK),
                              title="ER wait time complaint", inputs=dict(INPUTS), assign=dict(PEOPLE))
        incident, done = state["id"], state["events"]
        if total < done:
            raise SystemExit(f"--events must be at least {done}")
        while done < total:
            events = [NewEvent("NoteAdded", utc_now_iso(T0 + timedelta(seconds=n)), "alice",
                               {"text": f"{NOTE} ({n})"})
                      for n in range(done + 1, min(done + CHUNK, total) + 1)]
            with store.transaction(incident) as tx:
                tx.append(events, _fold_notes(inc, tx.snapshot.state, events))
            done += len(events)
        snap = store.snapshot(incident)
        if snap.seq != total or snap.state["events"] != total:
            raise SystemExit(f"built {snap.seq} events, wanted {total}")
        if total <= 1000 and inc.replay(store.events(incident)) != snap.state:
            raise SystemExit("the projection does not match the replayed log")
        return incident
    finally:
        store.close()


def _fold_notes(inc, state: dict, events: list) -> dict:
    """``inc.apply`` over a run of NoteAdded events, without one deep copy per event:
    apply the first for real, then count the rest as apply would (notes, events, updated_at)."""
    first, last = events[0], events[-1]
    state = inc.apply(state, first.type, first.at, first.actor, first.data)
    state["notes"] += len(events) - 1
    state["events"] += len(events) - 1
    state["updated_at"] = last.at
    return state


# --- measuring ----------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{cpus} CPUs (nproc), {model}; Python {platform.python_version()} "
            f"({platform.python_implementation()}, {platform.system()}); {when}")


def modes(tmp: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    """Mode name -> (folder to run from, environment); see the module docstring."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PLAYBOOK_")}
    base.pop("PYTHONPATH", None)
    cached = dict(base, PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    cached.pop("PYTHONDONTWRITEBYTECODE", None)
    copy = tmp / "src"
    copy.mkdir()
    shutil.copy2(ROOT / "cli.py", copy / "cli.py")
    shutil.copytree(ROOT / "engine", copy / "engine", ignore=shutil.ignore_patterns("__pycache__"))
    uncached = dict(base, PYTHONDONTWRITEBYTECODE="1")
    uncached.pop("PYTHONPYCACHEPREFIX", None)
    return {"cached": (ROOT, cached), "uncached": (copy, uncached)}


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one process."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:])} failed ({p.returncode}): {err.decode()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime


def interleaved(cmds: dict[str, list[str]], cwd: Path, env: dict[str, str], runs: int):
    """Run the commands in turn ``runs`` times; name -> (wall times, CPU times)."""
    for cmd in cmds.values():  # warm-up (page cache, bytecode cache): not counted
        run(cmd, cwd, env)
        run(cmd, cwd, env)
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            wall, cpu = run(cmd, cwd, env)
            times[name][0].append(wall)
            times[name][1].append(cpu)
    return times


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return f"{q[0] * 1e3:.1f}..{q[2] * 1e3:.1f}"


def verdict(value: float, limit: float) -> str:
    return f"{value:.2f} (target <= {limit}: {'met' if value <= limit else 'NOT met'})"


def heavy_imports(incident: str, db: Path, cwd: Path, env: dict[str, str]) -> tuple[str, list[str]]:
    """Where ``cli`` was loaded from, and the heavy libraries imported by `status`."""
    code = (
        "import sys, cli\n"
        f"cli.main({['status', incident, '--db', str(db)]!r}, standalone_mode=False)\n"
        f"print('@@', cli.__file__, *(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
    marked = [line for line in out.stdout.splitlines() if line.startswith("@@ ")]
    if out.returncode != 0 or not marked:
        raise SystemExit(f"status failed: {out.stderr[-500:]}")
    where, *heavy = marked[-1].split()[1:]
    if Path(where).resolve().parent != cwd.resolve():
        raise SystemExit(f"cli was imported from elsewhere than {cwd}")
    return where, heavy


def in_process(dbs: dict[str, Path], incident: str, iterations: int) -> dict[str, list[float]]:
    from engine.incidents import service, views
    from engine.clock import SystemClock
    from engine.store import open_store

    now = SystemClock().now()
    stores = {name: open_store(path) for name, path in dbs.items()}
    times: dict[str, list[float]] = {f"{name} {kind}": [] for name in dbs for kind in ("read", "open+read")}
    try:
        for i in range(iterations):
            for name, path in dbs.items():
                t = time.perf_counter()
                views.status_text(service.status(stores[name], incident), now, "alice")
                times[f"{name} read"].append(time.perf_counter() - t)
                if i % 4 == 0:  # open + read + close, less often: it is slower
                    t = time.perf_counter()
                    s = open_store(path)
                    views.status_text(service.status(s, incident), now, "alice")
                    s.close()
                    times[f"{name} open+read"].append(time.perf_counter() - t)
    finally:
        for s in stores.values():
            s.close()
    return times


def release_check(path: Path, incident: str, runs: int = 5) -> list[float]:
    """Seconds of the log check the release commands run inside their write transaction."""
    from engine.audit.rules import audit
    from engine.store import open_store

    store = open_store(path)
    try:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            with store.transaction(incident):
                state, problems = audit(store.events(incident))
            times.append(time.perf_counter() - t)
            if problems:
                raise SystemExit(f"the rules refused events of the benchmark's log: {problems[:3]}")
        return times
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs (10 per command, 300 in-process)")
    ap.add_argument("--runs", type=int, help="whole-process runs per command and mode (default 30)")
    ap.add_argument("--iterations", type=int, help="in-process iterations per database (default 2000)")
    ap.add_argument("--events", type=int, default=100_000, help="events in the long incident")
    args = ap.parse_args()
    runs = args.runs or (10 if args.quick else 30)
    iterations = args.iterations or (300 if args.quick else 2000)
    long_name = f"{args.events:,} events"
    short_name = f"{SMALL_EVENTS} events"

    print(f"machine: {machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="status-bench-"))
    try:
        t = time.perf_counter()
        dbs = {short_name: tmp / "short.db", long_name: tmp / "long.db"}
        incident = build(dbs[short_name], SMALL_EVENTS)
        if build(dbs[long_name], args.events) != incident:
            raise SystemExit("the two databases hold different incident ids")
        print(f"built {incident} twice ({SMALL_EVENTS} and {args.events:,} events) "
              f"in {time.perf_counter() - t:.1f} s; long database "
              f"{dbs[long_name].stat().st_size / 1e6:.1f} MB")

        py = sys.executable
        cmds = {
            "python -c 'import click, sqlite3'": [py, "-c", "import click, sqlite3"],
            "playbook --help": [py, "-m", "cli", "--help"],
            f"playbook status ({short_name})": [py, "-m", "cli", "status", incident, "--db", str(dbs[short_name])],
            f"playbook status ({long_name})": [py, "-m", "cli", "status", incident, "--db", str(dbs[long_name])],
        }
        base, help_, short, long_ = cmds
        for mode, (cwd, env) in modes(tmp).items():
            _, heavy = heavy_imports(incident, dbs[short_name], cwd, env)
            print(f"\n== whole process, bytecode {mode}: {runs} interleaved runs each ==")
            print(f"heavy libraries imported by status: {', '.join(heavy) if heavy else 'none'}")
            times = interleaved(cmds, cwd, env, runs)
            print(f"  {'':<38} {'wall median':>11} {'(quartiles)':>13} {'CPU median':>11}")
            for name, (wall, cpu) in times.items():
                print(f"  {name:<38} {med(wall) * 1e3:8.1f} ms {spread(wall):>13} {med(cpu) * 1e3:8.1f} ms")
            for label, a, b, limit in (("status / baseline", short, base, 1.5),
                                       ("--help / baseline", help_, base, 1.5),
                                       ("status long / short", long_, short, 1.2)):
                wall = med(times[a][0]) / med(times[b][0])
                cpu = med(times[a][1]) / med(times[b][1])
                print(f"  {label:<22} wall {verdict(wall, limit)};  CPU {cpu:.2f}")

        print(f"\n== in process: service.status + views.status_text, {iterations} interleaved iterations ==")
        times = in_process(dbs, incident, iterations)
        for name, xs in times.items():
            print(f"  {name:<26} median {statistics.median(xs) * 1e6:8.1f} us  ({len(xs)} runs)")
        for kind in ("read", "open+read"):
            value = med(times[f"{long_name} {kind}"]) / med(times[f"{short_name} {kind}"])
            print(f"  {kind + ', long / short':<24} {verdict(value, 1.2)}")

        print("\n== in process: the check approve, publish and deliver add (refold + rules, engine.audit.rules.audit) ==")
        for name, path in dbs.items():
            print(f"  {name:<26} median {statistics.median(release_check(path, incident)) * 1e3:9.2f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
