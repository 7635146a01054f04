"""Shared fixtures: a fixed clock, a store in tmp_path, the CLI with that clock."""

from __future__ import annotations

import os
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


def states_made_whole(conn, param: str = "?") -> None:
    """Put every part of a projection kept apart (migration 005, ``projection_parts``) back
    inside its snapshot's state and drop that table: the database as the code before that
    migration stored it. ``conn`` is a sqlite3 or psycopg connection (``param``: "%s")."""
    import json

    parts: dict = {}
    for incident, part, key, body in conn.execute("SELECT incident, part, key, body FROM projection_parts"):
        parts.setdefault(incident, {}).setdefault(part, {})[key] = json.loads(body)
    for incident, text in conn.execute("SELECT incident, state FROM snapshots").fetchall():
        state = json.loads(text)
        for name, value in state.items():
            if isinstance(value, dict) and "$part" in value:
                rows = parts.get(incident, {}).get(name, {})
                state[name] = rows[""] if name == "plan" else {k: rows[k] for k in value["keys"]}
        conn.execute(f"UPDATE snapshots SET state = {param} WHERE incident = {param}", (json.dumps(state), incident))
    conn.execute("DROP TABLE projection_parts")


@pytest.fixture(autouse=True)
def no_saved_sign_in(tmp_path_factory, monkeypatch):
    """The tests never see the developer's own `playbook login` (nor a server in the
    environment): every command works on its test database unless a test says otherwise."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv("PLAYBOOK_SERVER", raising=False)
    monkeypatch.delenv("PLAYBOOK_TOKEN", raising=False)


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
    from engine.format.loader import load_playbook

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


# -- PostgreSQL ----------------------------------------------------------------------
# The PostgreSQL tests run against a real server: the one named by
# $PLAYBOOK_TEST_POSTGRES (a URL to a database the tests may create databases from;
# .ci/run starts one), else a throwaway cluster that .ci/postgres starts for this
# test session where the server binaries are installed. Where neither can be had the
# tests skip with the reason -- except when $PLAYBOOK_REQUIRE_POSTGRES is set (CI),
# where a missing server fails them.

PG_SCRIPT = ROOT / ".ci" / "postgres"


class PostgresCluster:
    def __init__(self, url: str, folder: Path | None = None) -> None:
        self.url, self.folder = url, folder

    def database_url(self, name: str) -> str:
        from urllib.parse import urlsplit, urlunsplit

        return urlunsplit(urlsplit(self.url)._replace(path=f"/{name}"))

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)

    def stop(self, mode: str = "fast") -> None:
        import subprocess

        import shutil

        data = self.folder / "data"
        cmd = [_pg_bindir() + "/pg_ctl", "-D", str(data), "-m", mode, "-w", "stop"]
        if os.geteuid() == 0:
            runuser = shutil.which("runuser", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
            cmd = [runuser or "runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=False, capture_output=True, timeout=60)

    def restart(self) -> None:
        """Start the stopped server again, on the same port and data folder."""
        import subprocess

        result = subprocess.run(["bash", str(PG_SCRIPT), "start", str(self.folder)], capture_output=True,
                                text=True, timeout=180)
        assert result.returncode == 0, result.stderr

    def remove(self) -> None:
        import shutil

        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _pg_bindir() -> str:
    import glob
    import shutil

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return os.path.dirname(found[-1])
    which = shutil.which("pg_ctl")
    return os.path.dirname(which) if which else ""


def start_cluster() -> PostgresCluster:
    """A new cluster in a new folder, started with .ci/postgres (raises if it cannot).
    The folder is outside pytest's private tmp folders: as root the server runs as the
    'postgres' account, which must be able to reach it. ``cluster.remove()`` ends it."""
    import subprocess
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="playbook-pg-"))
    result = subprocess.run(["bash", str(PG_SCRIPT), "start", str(folder)], capture_output=True,
                            text=True, timeout=180)
    if result.returncode != 0:
        raise RuntimeError(f"could not start PostgreSQL: {result.stderr.strip()[-500:]}")
    return PostgresCluster(result.stdout.strip().splitlines()[-1], folder)


def _no_postgres(reason: str):
    if os.environ.get("PLAYBOOK_REQUIRE_POSTGRES"):
        pytest.fail(f"PostgreSQL is required here ($PLAYBOOK_REQUIRE_POSTGRES) but {reason}")
    pytest.skip(f"no PostgreSQL server: {reason}")


@pytest.fixture(scope="session")
def postgres_cluster():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _no_postgres("psycopg is not installed (pip install '.[postgres]')")
    url = os.environ.get("PLAYBOOK_TEST_POSTGRES")
    if url:
        yield PostgresCluster(url)
        return
    if not _pg_bindir():
        _no_postgres("no server binaries (initdb, pg_ctl) and $PLAYBOOK_TEST_POSTGRES is not set")
    try:
        cluster = start_cluster()
    except RuntimeError as e:
        _no_postgres(str(e))
    yield cluster
    cluster.remove()


@pytest.fixture
def pg_url(postgres_cluster):
    """A new, empty database on the test server, dropped afterwards."""
    import uuid

    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres_cluster.admin(f'CREATE DATABASE "{name}"')
    yield postgres_cluster.database_url(name)
    postgres_cluster.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def oidc_idp(clock):
    """An OpenID Connect identity provider on loopback (tests/oidc_idp.py) on the test's
    clock, approving one user; stopped afterwards."""
    from oidc_idp import IdentityProvider

    with IdentityProvider(clock) as idp:
        yield idp


@pytest.fixture
def parts_read(monkeypatch) -> list[tuple[str, str]]:
    """(part, key) of every stored entry a write transaction reads from now on (posts and
    messages are read lazily, engine.store.parts): for tests that a write reads none."""
    from engine.store import parts

    looked: list[tuple[str, str]] = []
    real = parts.LazyParts._load

    def load(self, keys):
        looked.extend((self.part, k) for k in keys)
        return real(self, keys)
    monkeypatch.setattr(parts.LazyParts, "_load", load)
    return looked


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def backend(request, tmp_path):
    """A store of each backend in turn: the tests using it are one conformance suite."""
    from engine.store import open_store

    if request.param == "postgres":
        location = request.getfixturevalue("pg_url")
    else:
        location = tmp_path / "incidents.db" if request.param == "sqlite" else "memory:"
    store = open_store(location)
    yield store
    store.close()
