"""Auditor benchmarks: report of a 10,000-event incident, export of 1,000,000 events.

Targets (issue "Auditors"): the report in under 2 s of whole-process time; the
export streams with peak memory under 100 MB. Both are measured here as whole
processes (`python -m cli ...`) and compared, in the same run, with the cost of a
bare `python -c "import click, sqlite3"` so a noisy machine shows up in the ratio.

    python3 bench/audit.py            # 10,000-event report, 1,000,000-event export
    python3 bench/audit.py --quick    # 10,000 / 100,000
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from status import build, machine  # noqa: E402  (same incident builder as the status benchmark)


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB of the child) for one whole-process run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def peak_rss(cmd: list[str]) -> float:
    """Peak RSS (MB) of one child, measured in a fresh helper process so earlier
    children's peaks do not mask it."""
    probe = ("import resource, subprocess, sys; "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return int(out.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="export 100,000 events instead of 1,000,000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    export_events = 100_000 if args.quick else 1_000_000
    py = sys.executable
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small, big = tmp / "report.db", tmp / "export.db"
        t = time.perf_counter()
        incident = build(small, 10_000)
        print(f"built 10,000 events in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        build(big, export_events)
        print(f"built {export_events:,} events in {time.perf_counter() - t:.1f} s")

        base = [py, "-c", "import click, sqlite3"]
        report = {fmt: [py, "-m", "cli", "report", incident, "--db", str(small), "--format", fmt,
                        "-o", str(tmp / f"r.{fmt}")] for fmt in ("md", "html", "json")}
        runs: dict[str, list[float]] = {"baseline": [], **{f: [] for f in report}}
        for _ in range(args.runs):
            runs["baseline"].append(timed(base)[0])
            for fmt, cmd in report.items():
                runs[fmt].append(timed(cmd)[0])
        b = statistics.median(runs["baseline"])
        print(f"\nbaseline `import click, sqlite3`: median {b * 1000:.0f} ms")
        for fmt in report:
            m = statistics.median(runs[fmt])
            verdict = "met" if m < 2.0 else "NOT met"
            print(f"report --format {fmt:<4} (10,000 events): median {m:.2f} s "
                  f"({m / b:.1f}x baseline) -> target < 2 s {verdict}")

        export = [py, "-m", "cli", "export", incident, "--db", str(big), "--format", "jsonl",
                  "-o", str(tmp / "events.jsonl")]
        started = time.perf_counter()
        rss = peak_rss(export)
        wall = time.perf_counter() - started
        base_rss = peak_rss(base)
        size = (tmp / "events.jsonl").stat().st_size / 2**20
        verdict = "met" if rss < 100 else "NOT met"
        print(f"\nexport jsonl ({export_events:,} events, {size:.0f} MB written): {wall:.1f} s, "
              f"peak RSS {rss:.0f} MB (baseline process {base_rss:.0f} MB) -> target < 100 MB {verdict}")


if __name__ == "__main__":
    main()
