"""The PostgreSQL event store (psycopg 3 and its connection pool).

The same guarantees as :mod:`engine.store.sqlite`, from the schema up:

* ``events`` has PRIMARY KEY (incident, seq); a BEFORE INSERT trigger refuses an
  event that is not the next seq of its incident or does not link to its
  predecessor's hash; BEFORE UPDATE / DELETE / TRUNCATE triggers refuse any change.
  ``playbook_meta`` and ``checkpoints`` are protected the same way.
* Event data is stored as the exact canonical text that is hashed (``text``, not
  ``jsonb``, which would reorder keys and change the bytes).
* Writers of one incident are serialised by a transaction-scoped advisory lock on
  the incident id, taken before the projection is read, so two writers never fork
  a history or lose an update; writers of different incidents run in parallel. A
  writer waits at most ``busy_timeout`` seconds (``lock_timeout``).
* ``synchronous_commit`` is ``on``: a commit that returned is durable.
* The schema is created and upgraded by the numbered migrations in
  :mod:`engine.store.migrations`; a database written by a newer version, or one
  that belongs to another program, is refused untouched.

Every psycopg error is translated here, once, into the engine's errors; an
unreachable or stopped server is "store unavailable" (exit 8), and the pool
reconnects by itself when the server is back.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine.errors import Conflict, NotFound, PlaybookError, StoreError
from engine.incidents.events import Event, NewEvent, canonical, utc_now_iso
from engine.store.base import (COLUMNS, S_NOT_A_STREAM, Closing, Snapshot, SqlReads, busy_message, chain_rows,
                               check_moment, conflict_message, in_order, index_row, loaded_head, loaded_parts,
                               row_event, snapshot_of, stored_parts, summaries_of)
from engine.store.projection import CLOCKS_COLUMN, move_clocks
from engine.store.streams import (CLEAR_FAILURES, COUNT_FAILURE, NOT_A_STREAM, STREAMS, TOKEN_USED, check_stream,
                                  failure_params)
from engine.store.migrations import APPLICATION, latest_version, migrations

ORDER_MESSAGE = "events are append-only: a new event must be the next seq of its incident"
INSERT_EVENT = f"INSERT INTO events ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
UPSERT_SNAPSHOT = """INSERT INTO snapshots (incident, seq, head, state, updated_at)
    VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT (incident) DO UPDATE SET
        seq = excluded.seq, head = excluded.head,
        state = excluded.state, updated_at = excluded.updated_at"""
UPSERT_INDEX = """INSERT INTO incident_index (incident, ord, status, next_due_at, summary, clocks)
    VALUES (%s, (SELECT ord FROM snapshots WHERE incident = %s), %s, %s, %s, %s)
    ON CONFLICT (incident) DO UPDATE SET
        status = excluded.status, next_due_at = excluded.next_due_at, summary = excluded.summary,
        clocks = excluded.clocks"""
DELETE_INDEX = "DELETE FROM incident_index WHERE incident = %s"
UPSERT_PART = """INSERT INTO projection_parts (incident, part, key, body) VALUES (%s, %s, %s, %s)
    ON CONFLICT (incident, part, key) DO UPDATE SET body = excluded.body"""
DELETE_PART = "DELETE FROM projection_parts WHERE incident = %s AND part = %s AND key = %s"
#: Advisory-lock namespace of incident writers ("CrBb"), the other key is hashtext(id).
LOCK_SPACE = 0x43724262
BATCH = 512


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresTransaction:
    def __init__(self, store: PostgresStore, conn, incident: str) -> None:
        self._store, self._conn = store, conn
        self.incident = incident
        self.snapshot: Snapshot | None = None
        self._last: tuple[int, str] | None = None  # the log's head, read under the lock
        self._open = True
        self._used = False

    def append(self, events: list[NewEvent], state: dict, summary: dict | None = None) -> list[Event]:
        if not self._open:
            raise RuntimeError("this transaction is over; open a new one")
        if self._used:
            raise RuntimeError("append may be called once per transaction")
        store, incident = self._store, self.incident
        rows = chain_rows(store.database_id, incident, self.snapshot, self._last, list(events))
        stored = stored_parts(self.snapshot, state)
        indexed = index_row(summary)
        _, seq, _, at, _, _, _, head = rows[-1]
        with store._guard(incident), self._conn.pipeline():  # one round trip
            for row in rows:
                self._conn.execute(INSERT_EVENT, row)
            self._conn.execute(UPSERT_SNAPSHOT, (incident, seq, head, stored.state_text, at))
            _write_parts(self._conn, incident, stored)
            _write_index(self._conn, incident, indexed)
        self._used = True
        return [row_event(r) for r in rows]

    def rewrite_projection(self, state: dict, summary: dict | None = None) -> None:
        if not self._open or self.snapshot is None:
            raise RuntimeError("rewrite_projection needs an open transaction on an existing incident")
        indexed = index_row(summary)
        stored = stored_parts(self.snapshot, state)
        with self._store._guard(self.incident):
            self._conn.execute("UPDATE snapshots SET state = %s WHERE incident = %s",
                               (stored.state_text, self.incident))
            _write_parts(self._conn, self.incident, stored)
            _write_index(self._conn, self.incident, indexed)


class PostgresStore(SqlReads, Closing):
    """An incident database in a PostgreSQL database (see the module docstring)."""

    PARAM = "%s"

    def __init__(self, url: str, *, busy_timeout: float = 10.0, create: bool = True,
                 database_id: str | None = None, migrate: bool = False, pool_size: int = 4) -> None:
        self.url = url
        self._new_id = database_id
        self._migrate = migrate
        self.applied_on_open: list[int] = []
        self.where = redact(url)
        self.busy_timeout = float(busy_timeout)
        self._local = threading.local()
        self._pool = None
        try:
            self._connect(pool_size)
            self._open(create)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    # --- errors ---------------------------------------------------------------

    def _translate(self, e: Exception, incident: str | None = None) -> PlaybookError:
        import psycopg
        from psycopg import errors as pge
        from psycopg_pool import PoolTimeout

        if isinstance(e, PoolTimeout):
            return StoreError(f"cannot reach the PostgreSQL server at {self.where} within "
                              f"{self.busy_timeout:g} s; is it running? (the tool reconnects by "
                              "itself once it is back)")
        if isinstance(e, (pge.LockNotAvailable, pge.DeadlockDetected, pge.QueryCanceled)):
            return StoreError(busy_message(self.busy_timeout, self.where))
        if isinstance(e, (pge.UniqueViolation, pge.RaiseException)) and incident is not None and (
                isinstance(e, pge.UniqueViolation) and "events_pkey" in str(e) or ORDER_MESSAGE in str(e)):
            return Conflict(conflict_message(incident))
        if isinstance(e, (pge.IntegrityError, pge.RaiseException)):
            return StoreError(f"{self.where}: the database refused the change: {_first_line(e)}")
        if isinstance(e, pge.InsufficientPrivilege):
            return StoreError(f"{self.where}: permission denied ({_first_line(e)})")
        if isinstance(e, (psycopg.OperationalError, psycopg.InterfaceError)):
            return StoreError(f"the PostgreSQL server at {self.where} is unavailable "
                              f"({_first_line(e)}); try again once it is back")
        return StoreError(f"database error on {self.where}: {_first_line(e)}")

    @contextmanager
    def _guard(self, incident: str | None = None) -> Iterator[None]:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            yield
        except (psycopg.Error, PoolTimeout) as e:
            raise self._translate(e, incident) from e

    # --- connections --------------------------------------------------------------

    def _connect(self, pool_size: int) -> None:
        try:
            import psycopg  # noqa: F401
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise StoreError("PostgreSQL needs the 'postgres' extra: pip install "
                             "'crisis-playbook[postgres]'") from None

        def configure(conn) -> None:
            conn.autocommit = True
            ms = int(self.busy_timeout * 1000)
            conn.execute(f"SET lock_timeout = {ms}")
            conn.execute("SET synchronous_commit = on")
            conn.execute("SET TIME ZONE 'UTC'")

        self._pool = ConnectionPool(
            self.url, min_size=1, max_size=max(1, pool_size), open=False,
            timeout=self.busy_timeout, configure=configure, reconnect_timeout=self.busy_timeout,
            check=ConnectionPool.check_connection, name="playbook-store",
            kwargs={"connect_timeout": max(1, int(self.busy_timeout))},
        )
        with self._guard():
            self._pool.open(wait=True, timeout=self.busy_timeout)

    @contextmanager
    def _conn(self) -> Iterator:
        """The connection of the open transaction or read on this thread, else one
        borrowed from the pool for the duration of the block."""
        bound = getattr(self._local, "conn", None)
        if bound is not None:
            yield bound
            return
        if self._pool is None:
            raise StoreError(f"the store for {self.where} is closed")
        with self._guard():
            with self._pool.connection() as conn:
                yield conn

    @contextmanager
    def _bound(self, *, write: bool, first: Callable | None = None) -> Iterator:
        """A connection bound to this thread inside one database transaction; yields
        (connection, what ``first(connection)`` returned). ``first`` queues its
        statements in one pipeline with the BEGIN: a single round trip."""
        if getattr(self._local, "conn", None) is not None:
            raise StoreError("a transaction is already open on this store; finish it first")
        with self._conn() as conn:
            begin = ("BEGIN ISOLATION LEVEL READ COMMITTED" if write
                     else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            with self._guard():
                if first is None:
                    conn.execute(begin)
                    queued = None
                else:
                    with conn.pipeline():
                        conn.execute(begin)
                        queued = first(conn)
            self._local.conn = conn
            try:
                yield conn, queued
            except BaseException:
                self._local.conn = None
                _rollback(conn)
                raise
            self._local.conn = None
            if write:
                try:
                    conn.execute("COMMIT")
                except Exception as e:
                    _rollback(conn)
                    raise self._translate(e) from e
            else:
                _rollback(conn)

    # --- opening --------------------------------------------------------------------

    def _open(self, create: bool) -> None:
        with self._conn() as conn, self._guard():
            kind, version = self._inspect(conn)
            if kind == "empty" and not create:
                raise NotFound(f"{self.where} holds no incident database yet")
            if kind == "empty" or (kind == "ours" and self._migrate and version < latest_version("postgres")):
                self.applied_on_open = self.upgrade()
                kind, version = self._inspect(conn)
            if kind != "ours":
                raise StoreError(f"{self.where}: {kind}; left it untouched")
            if version < latest_version("postgres"):
                raise StoreError(f"{self.where}: the database has schema {version}, this version of "
                                 f"the tool needs {latest_version('postgres')}: run playbook db upgrade")
            meta = conn.execute("SELECT database_id FROM playbook_meta WHERE id = 1").fetchone()
        if meta is None:
            raise StoreError(f"{self.where}: the database's meta row is missing or damaged")
        self.database_id: str = meta[0]

    def _inspect(self, conn) -> tuple[str, int]:
        """('empty' | 'ours' | why not usable, schema version), without writing."""
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "ORDER BY table_name")]
        if "playbook_meta" not in tables:
            if not tables:
                return "empty", 0
            names = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            return f"a database that belongs to another program (tables: {names})", 0
        row = conn.execute("SELECT application FROM playbook_meta WHERE id = 1").fetchone()
        if row is None or row[0] != APPLICATION or "schema_migrations" not in tables:
            return "a database whose playbook_meta table is not ours", 0
        version = conn.execute("SELECT COALESCE(max(version), 0) FROM schema_migrations").fetchone()[0]
        if version > latest_version("postgres"):
            return (f"written by a newer version of this tool (schema {version}; this one reads up "
                    f"to {latest_version('postgres')}): upgrade the tool before using it"), version
        return "ours", int(version)

    def schema_version(self) -> int:
        with self._conn() as conn, self._guard():
            return self._inspect(conn)[1]

    def upgrade(self) -> list[int]:
        """Apply the migrations this database has not had yet, in order, in one
        transaction, serialised against other processes doing the same. Returns the
        versions applied."""
        applied = []
        with self._bound(write=True) as (conn, _):
            with self._guard():
                conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_SPACE,))
                kind, version = self._inspect(conn)
                if kind not in ("empty", "ours"):
                    raise StoreError(f"{self.where}: {kind}; left it untouched")
                for number, sql in migrations("postgres"):
                    if number <= version:
                        continue
                    conn.execute(sql)
                    if number == 1:
                        conn.execute("INSERT INTO playbook_meta (id, application, database_id, created_at) "
                                     "VALUES (1, %s, %s, %s)", (APPLICATION, self._new_id or uuid.uuid4().hex, _now()))
                    conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                                 (number, _now()))
                    applied.append(number)
                if CLOCKS_COLUMN in applied:
                    move_clocks(conn.execute("SELECT incident, summary FROM incident_index WHERE clocks IS NULL"
                                             ).fetchall(),
                                lambda params: conn.execute(
                                    "UPDATE incident_index SET summary = %s, clocks = %s WHERE incident = %s",
                                    params))
        return applied

    # --- writing ----------------------------------------------------------------

    @contextmanager
    def transaction(self, incident: str, *, stream: bool = False) -> Iterator[PostgresTransaction]:
        check_stream(incident, stream)
        def lock_and_read(conn):
            # Queued behind BEGIN, in one round trip: the lock, then (READ COMMITTED takes
            # a new snapshot per statement, so after the lock is held) the projection and
            # the log's head as they are now.
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_SPACE, incident))
            return (conn.execute(self._snapshot_sql("s.incident = %s"), (incident,)),
                    conn.execute("SELECT seq, hash FROM events WHERE incident = %s ORDER BY seq DESC LIMIT 1",
                                 (incident,)))

        with self._bound(write=True, first=lock_and_read) as (conn, (snap, last)):
            tx = PostgresTransaction(self, conn, incident)
            try:
                with self._guard(incident):
                    row, head = snap.fetchone(), last.fetchone()
                tx.snapshot = self._tx_snapshot(row, lambda: tx._open)
                tx._last = None if head is None else (head[0], head[1])
                yield tx
            finally:
                tx._open = False

    def load(self, incident: str, rows, state_text: str, summary: dict | None = None) -> int:
        indexed = index_row(summary)
        stored = loaded_parts(incident, state_text)
        with self._bound(write=True) as (conn, _):
            with self._guard(incident):
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_SPACE, incident))
                if self._snapshot(incident) is not None:
                    raise StoreError(f"incident {incident} exists already in {self.where}")
                count, last = 0, None
                with conn.cursor() as cur, cur.copy(f"COPY events ({COLUMNS}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        count, last = count + 1, row
                seq, head = loaded_head(incident, count, last)
                conn.execute(UPSERT_SNAPSHOT, (incident, seq, head, stored.state_text, last[3]))
                _write_parts(conn, incident, stored)
                _write_index(conn, incident, indexed)
        return count

    def add_checkpoint(self, cp: dict, keep: int | None = None) -> None:
        # ``keep`` is not applied here: the triggers forbid deleting checkpoints, and lifting
        # them takes the table's owner, which a server's role need not be; every checkpoint
        # stays (verify accepts either).
        body = canonical(cp).decode("utf-8")
        with self._bound(write=True) as (conn, _), self._guard():
            conn.execute("INSERT INTO checkpoints (at, body) VALUES (%s, %s)", (str(cp.get("at", "")), body))

    def _write_one(self, sql: str, params: tuple) -> list[tuple]:
        with self._bound(write=True) as (conn, _), self._guard():
            cur = conn.execute(self._q(sql), params)
            return cur.fetchall() if cur.description else []

    def _account_tables(self) -> bool:
        return True  # a database older than the code is refused when opened

    def count_failure(self, name: str, at: str, window_start: str) -> int:
        return self._write_one(COUNT_FAILURE, failure_params(name, at, window_start))[0][0]

    def clear_failures(self, name: str) -> None:
        self._write_one(CLEAR_FAILURES, (name,))

    def token_used(self, token: str, at: str) -> None:
        self._write_one(TOKEN_USED, (token, at))

    # --- reading ----------------------------------------------------------------

    @contextmanager
    def grouped(self, max_seconds: float = 0.2) -> Iterator[None]:
        """Each transaction still commits on its own here: a server's writers are many,
        and each incident's advisory lock is held until its transaction commits."""
        yield

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._bound(write=False):
            yield

    def _fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._conn() as conn, self._guard():
            return conn.execute(sql, params).fetchall()

    @contextmanager
    def _consistent(self) -> Iterator[None]:
        if getattr(self._local, "conn", None) is not None:
            yield
        else:
            with self.reading():
                yield

    def snapshots(self) -> list[Snapshot]:
        with self._consistent(), self._conn() as conn, self._guard():
            rows = conn.execute(self._snapshot_sql(f"{S_NOT_A_STREAM} ORDER BY s.ord")).fetchall()
            found: dict[str, dict] = {}
            for incident, part, key, body in conn.execute(
                    "SELECT incident, part, key, body FROM projection_parts WHERE part <> 'plan'"):
                found.setdefault(incident, {}).setdefault(part, {})[key] = body
        return [snapshot_of(r, found.get(r[0], {})) for r in rows]

    def heads(self) -> list[tuple[str, int, str]]:
        with self._conn() as conn, self._guard():
            return [tuple(r) for r in conn.execute(f"SELECT incident, seq, head FROM snapshots WHERE {NOT_A_STREAM} "
                                                   "ORDER BY ord")]

    def incidents(self) -> list[str]:
        with self._conn() as conn, self._guard():
            return [r[0] for r in conn.execute(f"SELECT incident FROM snapshots WHERE {NOT_A_STREAM} ORDER BY ord")]

    def _unindexed(self, conn) -> list[tuple[int, str]]:
        """(ord, id) of the incidents without an index row (none unless counts differ)."""
        have = conn.execute("SELECT (SELECT count(*) FROM snapshots) - (SELECT count(*) FROM incident_index) "
                            "- (SELECT count(*) FROM snapshots WHERE incident = ANY(%s))", (list(STREAMS),)
                            ).fetchone()[0]
        if not have:
            return []
        return [tuple(r) for r in conn.execute(
            "SELECT s.ord, s.incident FROM snapshots s LEFT JOIN incident_index i USING (incident) "
            f"WHERE i.incident IS NULL AND s.{NOT_A_STREAM}")]

    def due_before(self, moment: str) -> list[str]:
        return [i for i, _, _ in self._due(moment, "NULL, NULL")]

    def due_summaries(self, moment: str) -> list[tuple[str, dict | None]]:
        return summaries_of(self._due(moment, "summary, clocks"))

    def _due(self, moment: str, columns: str) -> list[tuple[str, str | None, str | None]]:
        check_moment(moment)
        with self._conn() as conn, self._guard():
            due = [tuple(r) for r in conn.execute(
                f"SELECT ord, incident, {columns} FROM incident_index WHERE status = 'open' AND next_due_at <= %s",
                (moment,))]
            missing = [(o, i, None, None) for o, i in self._unindexed(conn)]
        return [(i, text, clocks) for _, i, text, clocks in in_order(due, missing)]

    def summaries(self, *, clocks: bool = True) -> list[tuple[str, dict | None]]:
        with self._conn() as conn, self._guard():
            rows = [tuple(r) for r in conn.execute(
                f"SELECT ord, incident, summary, {'clocks' if clocks else 'NULL'} FROM incident_index")]
            missing = [(o, i, None, None) for o, i in self._unindexed(conn)]
        return summaries_of([(i, text, c) for _, i, text, c in in_order(rows, missing)], clocks)

    def _stream(self, sql: str, params: tuple) -> Iterator[tuple]:
        """Rows of ``sql`` a batch at a time through a server-side cursor: flat memory."""
        with self._conn() as conn:
            own = getattr(self._local, "conn", None) is None
            with self._guard():
                if own:
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                with self._guard(), conn.cursor(name=f"rows_{uuid.uuid4().hex[:12]}") as cur:
                    cur.itersize = BATCH
                    cur.execute(sql, params)
                    while True:
                        batch = cur.fetchmany(BATCH)
                        if not batch:
                            return
                        for row in batch:
                            yield tuple(row)
            finally:
                if own:
                    _rollback(conn)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                pool.close(timeout=1)
            except Exception:  # noqa: BLE001 - closing a pool to a dead server must not fail
                pass


def _write_parts(conn, incident: str, stored) -> None:
    """The rows kept apart that engine.store.base.stored_parts says changed."""
    if stored.plan_text is not None:
        conn.execute(UPSERT_PART, (incident, "plan", "", stored.plan_text))
    for part, key, text in stored.writes:
        conn.execute(UPSERT_PART, (incident, part, key, text))
    for part, key in stored.deletes:
        conn.execute(DELETE_PART, (incident, part, key))


def _write_index(conn, incident: str, indexed: tuple | None) -> None:
    if indexed is None:
        conn.execute(DELETE_INDEX, (incident,))
    else:
        conn.execute(UPSERT_INDEX, (incident, incident, *indexed))


def _rollback(conn) -> None:
    try:
        conn.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - the connection is gone; the pool discards it
        pass


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _now() -> str:
    from engine.clock import SystemClock  # creation time is metadata only, never hashed

    return utc_now_iso(SystemClock().now())

