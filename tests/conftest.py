"""Shared fixtures: a fixed clock, a store in tmp_path, the CLI with that clock."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ROOT / "playbooks"
VIRAL = PLAYBOOKS / "viral-complaint.yaml"
T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=timezone.utc)

#: Everything `playbook start` needs for the viral-complaint playbook.
VIRAL_START = [
    "start", str(VIRAL), "--title", "ER wait time complaint",
    "--set", "complaint_url=https://x.com/patient/status/1",
    "--set", "complaint_channel=x",
    "--assign", "incident_lead=alice", "--assign", "spokesperson=bob",
    "--assign", "compliance=cora", "--assign", "patient_relations=petra",
    "--as", "alice",
]


@pytest.fixture
def clock():
    from engine.clock import FixedClock

    return FixedClock(T0)


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "incidents.db"


@pytest.fixture
def store(db):
    from engine.store import open_store

    s = open_store(db)
    yield s
    s.close()


@pytest.fixture
def viral():
    from engine.loader import load_playbook

    return load_playbook(VIRAL)


class Cli:
    """Runs `playbook ...` in-process with a fixed clock and a tmp database."""

    def __init__(self, db: Path, clock) -> None:
        self.db, self.clock = db, clock
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        from cli import main

        result = self.runner.invoke(
            main, [*args], obj={"clock": self.clock}, input=input,
            env={"PLAYBOOK_DB": str(self.db), "PLAYBOOK_ACTOR": "alice"},
            catch_exceptions=False,
        )
        assert "Traceback" not in result.output
        return result


@pytest.fixture
def cli(db, clock) -> Cli:
    return Cli(db, clock)
