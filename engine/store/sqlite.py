"""The SQLite event store (standard library ``sqlite3`` only).

Append-only is a property of the schema, not of this code:

* ``events`` has PRIMARY KEY (incident, seq), so two writers collide instead of
  forking an incident's history; a BEFORE INSERT trigger refuses an event that
  is not the next seq of its incident or does not link to its predecessor's
  hash; BEFORE UPDATE / DELETE triggers refuse any change.
* ``meta`` (schema version, database id, creation time) and ``checkpoints``
  are protected the same way. ``snapshots`` (the projection) is updated.
* ``PRAGMA application_id`` marks the file as ours and ``user_version`` holds
  the schema version, so a foreign or newer database is refused untouched.

Writes run in ``BEGIN IMMEDIATE`` (one writer at a time, waiting at most
``busy_timeout`` seconds) with ``journal_mode=WAL`` and ``synchronous=FULL``:
a commit that returned is on disk. Every ``sqlite3`` error is translated here,
once, into the engine's errors with a message naming the database file.

A SqliteStore holds one connection and belongs to the thread that opened it.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import Conflict, NotFound, PlaybookError, StoreError
from engine.incidents.events import Event, NewEvent, canonical, utc_now_iso
from engine.store.base import (COLUMNS, S_NOT_A_STREAM, Closing, HashRow, Snapshot, SqlReads, busy_message, chain_rows,
                               check_moment, conflict_message, in_order, index_row, loaded_head, loaded_parts,
                               row_event, snapshot_of, stored_parts, summaries_of)
from engine.store.projection import CLOCKS_COLUMN, joined, move_clocks
from engine.store.streams import (ACCOUNT_TABLES, CLEAR_FAILURES, COUNT_FAILURE, NOT_A_STREAM, STREAMS, TOKEN_USED,
                                  check_stream, failure_params, no_account_tables)
from engine.store.migrations import latest_version, migrations, number_of

APPLICATION_ID = 0x43724262  # "CrBb": crisis playbook incident database
#: The newest schema this code reads and writes (PRAGMA user_version); the schema
#: itself is the numbered SQL files in engine/store/migrations/sqlite.
SCHEMA_VERSION = latest_version("sqlite")
#: The first schema with the incident index (summaries for listings and the cron path).
INDEXED = 2
#: The first schema that keeps parts of projections apart (the plan, in projection_parts).
PARTS = number_of("sqlite", "projection_parts")
SQLITE_HEADER = b"SQLite format 3\x00"
ORDER_MESSAGE = "events are append-only: a new event must be the next seq of its incident"

INSERT_EVENT = f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
UPSERT_SNAPSHOT = """INSERT INTO snapshots (incident, seq, head, state, updated_at)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (incident) DO UPDATE SET
        seq = excluded.seq, head = excluded.head,
        state = excluded.state, updated_at = excluded.updated_at"""
UPSERT_INDEX = """INSERT INTO incident_index (incident, ord, status, next_due_at, summary, clocks)
    VALUES (?, (SELECT rowid FROM snapshots WHERE incident = ?), ?, ?, ?, ?)
    ON CONFLICT (incident) DO UPDATE SET
        status = excluded.status, next_due_at = excluded.next_due_at, summary = excluded.summary,
        clocks = excluded.clocks"""
#: the same before schema 4 (CLOCKS_COLUMN): the clocks inside the summary's text
UPSERT_INDEX_WHOLE = """INSERT INTO incident_index (incident, ord, status, next_due_at, summary)
    VALUES (?, (SELECT rowid FROM snapshots WHERE incident = ?), ?, ?, ?)
    ON CONFLICT (incident) DO UPDATE SET
        status = excluded.status, next_due_at = excluded.next_due_at, summary = excluded.summary"""
UPSERT_PART = """INSERT INTO projection_parts (incident, part, key, body) VALUES (?, ?, ?, ?)
    ON CONFLICT (incident, part, key) DO UPDATE SET body = excluded.body"""
DELETE_PART = "DELETE FROM projection_parts WHERE incident = ? AND part = ? AND key = ?"
BATCH = 512


class SqliteTransaction:
    def __init__(self, store: SqliteStore, incident: str) -> None:
        self._store = store
        self.incident = incident
        self.snapshot: Snapshot | None = None
        self._open = True
        self._used = False

    def append(self, events: list[NewEvent], state: dict, summary: dict | None = None) -> list[Event]:
        if not self._open:
            raise RuntimeError("this transaction is over; open a new one")
        if self._used:
            raise RuntimeError("append may be called once per transaction")
        store, incident = self._store, self.incident
        with store._guard(incident):
            last = store._conn.execute(
                "SELECT seq, hash FROM events WHERE incident = ? ORDER BY seq DESC LIMIT 1",
                (incident,),
            ).fetchone()
        rows = chain_rows(store.database_id, incident, self.snapshot, last, list(events))
        stored = stored_parts(self.snapshot, state, store._parts())
        indexed = index_row(summary)
        _, seq, _, at, _, _, _, head = rows[-1]
        with store._guard(incident):
            store._conn.executemany(INSERT_EVENT, rows)
            store._conn.execute(UPSERT_SNAPSHOT, (incident, seq, head, stored.state_text, at))
            store._write_parts(incident, stored)
            store._write_index(incident, indexed)
        self._used = True
        return [row_event(r) for r in rows]

    def rewrite_projection(self, state: dict, summary: dict | None = None) -> None:
        if not self._open or self.snapshot is None:
            raise RuntimeError("rewrite_projection needs an open transaction on an existing incident")
        indexed = index_row(summary)
        stored = stored_parts(self.snapshot, state, self._store._parts())
        with self._store._guard(self.incident):
            self._store._conn.execute("UPDATE snapshots SET state = ? WHERE incident = ?",
                                      (stored.state_text, self.incident))
            self._store._write_parts(self.incident, stored)
            self._store._write_index(self.incident, indexed)


class SqliteStore(SqlReads, Closing):
    """An incident database in one SQLite file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, *, busy_timeout: float = 10.0, create: bool = True,
                 database_id: str | None = None, read_only: bool = False):
        self.path = Path(path)
        self.busy_timeout = float(busy_timeout)
        self._new_id = database_id
        self.read_only = read_only
        self._conn: sqlite3.Connection | None = None
        self._group: dict | None = None  # see grouped()
        try:
            self._open(create)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # --- errors ---------------------------------------------------------------

    def _translate(self, e: sqlite3.Error, incident: str | None = None) -> PlaybookError:
        where = shown(self.path)
        primary = _primary_code(e)
        text = str(e)
        if _is_busy(e):
            return StoreError(busy_message(self.busy_timeout, where))
        if primary == 19 or isinstance(e, sqlite3.IntegrityError):  # SQLITE_CONSTRAINT
            if incident is not None and ("UNIQUE constraint failed: events" in text or ORDER_MESSAGE in text):
                return Conflict(conflict_message(incident))
            return StoreError(f"{where}: the database refused the change: {text}")
        if primary in (11, 26):  # SQLITE_CORRUPT, SQLITE_NOTADB
            return StoreError(f"{where} is damaged or is not a database ({text}); restore it from a backup")
        if primary == 8 and self.read_only:
            return StoreError(f"{where} was opened read-only, for a command that only reads")
        if primary == 8:  # SQLITE_READONLY
            return StoreError(f"{where} cannot be written ({text}): is the file or its folder read-only?")
        if primary == 14:  # SQLITE_CANTOPEN
            return StoreError(f"cannot open the database {where} ({text}): missing folder or no permission?")
        if primary == 13:  # SQLITE_FULL
            return StoreError(f"the disk holding {where} is full ({text})")
        if primary == 10:  # SQLITE_IOERR
            return StoreError(f"disk I/O error on {where} ({text})")
        return StoreError(f"database error on {where}: {text}")

    @contextmanager
    def _guard(self, incident: str | None = None) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise self._translate(e, incident) from e

    @property
    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store for {self.path} is closed")
        return self._conn

    # --- opening ----------------------------------------------------------------

    def _connect(self, immutable: bool = False) -> sqlite3.Connection:
        if not self.read_only:
            return sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        from urllib.parse import quote

        uri = f"file:{quote(str(self.path.absolute()))}?mode=ro" + ("&immutable=1" if immutable else "")
        return sqlite3.connect(uri, uri=True, timeout=self.busy_timeout, isolation_level=None)

    def _open_read_only(self) -> str:
        """Inspect the database through a read-only connection.

        Reading a WAL database needs its shared-memory file (``-shm``): while a writer
        has the database open it exists and is shared; when none does and this user may
        not create it (a read-only folder), the file is read as immutable, which is safe
        only because no write-ahead log (``-wal``) holds committed pages outside it."""
        try:
            self._c.execute("BEGIN")
            try:
                return self._inspect()
            finally:
                self._c.execute("ROLLBACK")
        except sqlite3.OperationalError as e:
            wal = self.path.with_name(self.path.name + "-wal")
            if _primary_code(e) not in (8, 14) or wal.exists():
                raise
        self._conn.close()
        self._conn = self._connect(immutable=True)
        self._c.execute("BEGIN")
        try:
            return self._inspect()
        finally:
            self._c.execute("ROLLBACK")

    def _open(self, create: bool) -> None:
        where = shown(self.path)
        try:
            if self.path.is_dir():
                raise StoreError(f"{where} is a folder, not a database file")
            exists = self.path.exists()
            if not exists and not create:
                raise NotFound(f"no incident database at {where}")
            if exists:
                with open(self.path, "rb") as f:
                    header = f.read(len(SQLITE_HEADER))
            else:
                header = b""
                self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot use {where}: {e.strerror or e}") from e
        if header and header != SQLITE_HEADER:
            raise StoreError(f"{where} is not a SQLite database (some other kind of file); left it untouched")
        with self._guard():
            self._conn = self._connect()
            if self.read_only:
                kind = self._open_read_only()
                if kind == "empty":
                    raise NotFound(f"{where} holds no incident database yet")
                if kind != "ours":
                    raise StoreError(f"{where}: {kind}; left it untouched")
                meta = self._c.execute("SELECT schema_version, database_id FROM meta WHERE id = 1").fetchone()
                if meta is None:
                    raise StoreError(f"{where}: the database's meta row is missing or damaged")
                self.database_id = meta[1]
                self.version = self._c.execute("PRAGMA user_version").fetchone()[0]
                return
            self._c.execute("BEGIN")  # one read snapshot for all of the inspection
            try:
                kind = self._inspect()
            finally:
                self._c.execute("ROLLBACK")
            if kind == "empty":
                if not create:
                    raise NotFound(f"{where} holds no incident database yet")
                if self._c.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._switch_to_wal()
                self._c.execute("BEGIN IMMEDIATE")
                try:
                    kind = self._inspect()  # another process may have created it meanwhile
                    if kind == "empty":
                        self._create_schema()
                        kind = "ours"
                    self._c.execute("COMMIT")
                except BaseException:
                    self._c.execute("ROLLBACK")
                    raise
            if kind != "ours":
                raise StoreError(f"{where}: {kind}; left it untouched")
            if self._c.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                mode = self._switch_to_wal()
                if mode != "wal":
                    raise StoreError(f"{where}: cannot switch the database to WAL mode (got {mode})")
            self._c.execute("PRAGMA synchronous=FULL")
            meta = self._c.execute(
                "SELECT schema_version, database_id FROM meta WHERE id = 1"
            ).fetchone()
            self.version = self._c.execute("PRAGMA user_version").fetchone()[0]
        if meta is None:
            raise StoreError(f"{where}: the database's meta row is missing or damaged")
        self.database_id: str = meta[1]

    def _switch_to_wal(self) -> str:
        """``PRAGMA journal_mode=WAL``, waiting up to ``busy_timeout`` for other writers.

        The switch writes the database header from inside its own read transaction,
        and SQLite does not wait for a lock a reader is upgrading (that could
        deadlock): while another connection holds the write lock -- another process
        creating the same new database, say -- it fails with "database is locked"
        at once, whatever the busy timeout. So it is retried here until the timeout.
        """
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.001
        while True:
            try:
                return self._c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as e:
                left = deadline - time.monotonic()
                if not _is_busy(e) or left <= 0:
                    raise
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)

    def _inspect(self) -> str:
        """'empty', 'ours', or why the file is not usable -- without writing to it."""
        tables = [  # read first: starts the read transaction the pragmas below share
            r[0]
            for r in self._c.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        app_id = self._c.execute("PRAGMA application_id").fetchone()[0]
        version = self._c.execute("PRAGMA user_version").fetchone()[0]
        if app_id == APPLICATION_ID:
            if version > SCHEMA_VERSION:
                return (
                    f"written by a newer version of this tool (schema {version}; this one "
                    f"reads up to {SCHEMA_VERSION}): upgrade before using it"
                )
            if version < 1 or "meta" not in tables:
                return f"an incident database with a damaged schema (version {version}, tables {tables})"
            return "ours"
        if not tables and app_id == 0:
            return "empty"
        names = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        return f"a SQLite database that belongs to another program (tables: {names or 'none'})"

    def _create_schema(self) -> None:
        """Schema 1, the meta row (``meta.schema_version`` is the schema the database was
        created with: 1, as it always was), then every later migration."""
        self._apply(1)
        self._c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        from engine.clock import SystemClock  # creation time is metadata only, never hashed

        self._c.execute(
            "INSERT INTO meta (id, schema_version, database_id, created_at) VALUES (1, ?, ?, ?)",
            (1, self._new_id or uuid.uuid4().hex, utc_now_iso(SystemClock().now())),
        )
        for number in range(2, SCHEMA_VERSION + 1):
            self._apply(number)
        self._c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self.version = SCHEMA_VERSION

    def _apply(self, number: int) -> None:
        """Run migration ``number``, statement by statement, in the open transaction
        (``executescript`` would commit it)."""
        for statement in statements(dict(migrations("sqlite"))[number]):
            self._c.execute(statement)

    def schema_version(self) -> int:
        with self._guard():
            return self._c.execute("PRAGMA user_version").fetchone()[0]

    def upgrade(self) -> list[int]:
        """Apply the migrations this database has not had yet, in order, in one
        transaction (``BEGIN IMMEDIATE``: another process upgrading at the same time
        waits, then finds nothing left to do). Returns the numbers applied. A database
        that is not upgraded keeps working at its schema (see :attr:`indexed`)."""
        if self.read_only:
            raise StoreError(f"{shown(self.path)} was opened read-only; cannot upgrade it")
        self._begin()
        applied = []
        try:
            with self._guard():
                version = self._c.execute("PRAGMA user_version").fetchone()[0]
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    self._apply(number)
                    applied.append(number)
                if CLOCKS_COLUMN in applied and version >= INDEXED:
                    move_clocks(self._c.execute("SELECT incident, summary FROM incident_index WHERE clocks IS NULL"
                                                ).fetchall(),
                                lambda params: self._c.execute(
                                    "UPDATE incident_index SET summary = ?, clocks = ? WHERE incident = ?", params))
                if applied:
                    self._c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self._end(False)
            raise
        self._end(True)
        self.version = max(self.version, SCHEMA_VERSION) if applied else self.version
        return applied

    def _parts(self) -> bool:
        return self.version >= PARTS

    def _write_parts(self, incident: str, stored) -> None:
        """The rows kept apart that :func:`engine.store.base.stored_parts` says changed
        (inside the caller's transaction and guard)."""
        if stored.plan_text is not None:
            self._c.execute(UPSERT_PART, (incident, "plan", "", stored.plan_text))
        if stored.writes:
            self._c.executemany(UPSERT_PART, [(incident, *w) for w in stored.writes])
        if stored.deletes:
            self._c.executemany(DELETE_PART, [(incident, *d) for d in stored.deletes])

    @contextmanager
    def _consistent(self) -> Iterator[None]:
        if self._c.in_transaction:
            yield
        else:
            with self.reading():
                yield

    def _read_tx_snapshot(self, tx: SqliteTransaction) -> None:
        rows = self._fetch(self._snapshot_sql("s.incident = ?"), (tx.incident,))
        tx.snapshot = self._tx_snapshot(rows[0] if rows else None, lambda: tx._open)

    @property
    def indexed(self) -> bool:
        """Whether this database keeps the incident index (schema 2 on)."""
        return self.version >= INDEXED

    # --- writing ----------------------------------------------------------------

    def _begin(self) -> None:
        if self._c.in_transaction:
            raise StoreError("a transaction is already open on this store; finish it first")
        with self._guard():
            self._c.execute("BEGIN IMMEDIATE")

    def _end(self, commit: bool, incident: str | None = None) -> None:
        conn = self._c
        if commit:
            try:
                conn.execute("COMMIT")
                return
            except sqlite3.Error as e:
                err = self._translate(e, incident)
                self._rollback()
                raise err from e
        self._rollback()

    def _rollback(self) -> None:
        if self._c.in_transaction:
            try:
                self._c.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite rolled back already (e.g. after an I/O error)

    @contextmanager
    def transaction(self, incident: str, *, stream: bool = False) -> Iterator[SqliteTransaction]:
        check_stream(incident, stream)
        if self._group is not None:
            with self._grouped_transaction(incident) as tx:
                yield tx
            return
        self._begin()
        tx = SqliteTransaction(self, incident)
        try:
            self._read_tx_snapshot(tx)
            yield tx
        except BaseException:
            tx._open = False
            self._end(False)
            raise
        tx._open = False
        self._end(True, incident)

    @contextmanager
    def grouped(self, max_seconds: float = 0.2) -> Iterator[None]:
        """The transactions opened in this block share commits: each is a savepoint of
        one SQLite transaction that commits when it has been open ``max_seconds`` (so
        other writers wait no longer than that, and nothing is lost but what a crash
        before that commit would lose in any case: writes nobody was told about yet)
        and at the end of the block, even when it ends by an exception."""
        if self._group is not None or self._c.in_transaction:
            raise StoreError("a transaction is already open on this store; finish it first")
        self._group = {"limit": float(max_seconds), "since": None, "open": False}
        try:
            yield
        finally:
            try:
                if self._c.in_transaction:
                    self._end(True)
            finally:
                self._group = None

    @contextmanager
    def _grouped_transaction(self, incident: str) -> Iterator[SqliteTransaction]:
        group = self._group
        if group["open"]:
            raise StoreError("a transaction is already open on this store; finish it first")
        if not self._c.in_transaction:
            self._begin()
            group["since"] = time.monotonic()
        tx = SqliteTransaction(self, incident)
        group["open"] = True
        try:
            with self._guard(incident):
                self._c.execute("SAVEPOINT incident")
            self._read_tx_snapshot(tx)
            yield tx
        except BaseException:
            tx._open = False
            try:
                self._c.execute("ROLLBACK TO incident")
                self._c.execute("RELEASE incident")
            except sqlite3.Error:  # SQLite ended the whole transaction itself (an I/O error, say)
                self._rollback()
            raise
        finally:
            group["open"] = False
        tx._open = False
        with self._guard(incident):
            self._c.execute("RELEASE incident")
        if time.monotonic() - group["since"] >= group["limit"]:
            self._end(True, incident)

    def load(self, incident: str, rows, state_text: str, summary: dict | None = None) -> int:
        indexed = index_row(summary)
        stored = loaded_parts(incident, state_text, self._parts())
        self._begin()
        try:
            with self._guard(incident):
                if self._snapshot(incident) is not None:
                    raise StoreError(f"incident {incident} exists already in {self.path}")
                count, last = 0, None
                for batch in _batches(rows):
                    self._c.executemany(INSERT_EVENT, batch)
                    count, last = count + len(batch), batch[-1]
                seq, head = loaded_head(incident, count, last)
                self._c.execute(UPSERT_SNAPSHOT, (incident, seq, head, stored.state_text, last[3]))
                self._write_parts(incident, stored)
                self._write_index(incident, indexed)
        except BaseException:
            self._end(False)
            raise
        self._end(True, incident)
        return count

    def add_checkpoint(self, cp: dict, keep: int | None = None) -> None:
        body = canonical(cp).decode("utf-8")
        if keep is None:
            self._write_one("INSERT INTO checkpoints (at, body) VALUES (?, ?)", (str(cp.get("at", "")), body))
            return
        if type(keep) is not int or keep < 1:
            raise ValueError(f"keep must be a positive number of checkpoints, not {keep!r}")
        self._begin()
        try:
            with self._guard():
                c = self._c
                c.execute("INSERT INTO checkpoints (at, body) VALUES (?, ?)", (str(cp.get("at", "")), body))
                # The trigger that keeps checkpoints append-only stops accidents; retention lifts
                # it for its own statement only, in this transaction, and puts it back as it was.
                trigger = c.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                                    "AND name = 'checkpoints_no_delete'").fetchone()
                if trigger is not None:
                    c.execute("DROP TRIGGER checkpoints_no_delete")
                c.execute("DELETE FROM checkpoints WHERE id NOT IN "
                          "(SELECT id FROM checkpoints ORDER BY id DESC LIMIT ?)", (keep,))
                if trigger is not None:
                    c.execute(trigger[0])
        except BaseException:
            self._end(False)
            raise
        self._end(True)

    def _write_one(self, sql: str, params: tuple) -> list[tuple]:
        """One statement in its own write transaction; the rows it returns."""
        self._begin()
        try:
            with self._guard():
                rows = self._c.execute(sql, params).fetchall()
        except BaseException:
            self._end(False)
            raise
        self._end(True)
        return rows

    def _account_tables(self) -> bool:
        return self.version >= ACCOUNT_TABLES

    def _accounts_write(self, sql: str, params: tuple) -> list[tuple]:
        if not self._account_tables():
            raise no_account_tables(shown(self.path), self.version)
        return self._write_one(sql, params)

    def count_failure(self, name: str, at: str, window_start: str) -> int:
        return self._accounts_write(COUNT_FAILURE, failure_params(name, at, window_start))[0][0]

    def clear_failures(self, name: str) -> None:
        self._accounts_write(CLEAR_FAILURES, (name,))

    def token_used(self, token: str, at: str) -> None:
        self._accounts_write(TOKEN_USED, (token, at))

    # --- reading ----------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[None]:
        if self._c.in_transaction:
            raise StoreError("a transaction is already open on this store; finish it first")
        with self._guard():
            self._c.execute("BEGIN")  # deferred: one read snapshot from the first read on
        try:
            yield
        finally:
            self._end(False)

    def _fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._guard():
            return self._c.execute(sql, params).fetchall()

    def snapshots(self) -> list[Snapshot]:
        with self._guard():
            with self._consistent():
                rows = self._c.execute(self._snapshot_sql(f"{S_NOT_A_STREAM} ORDER BY s.rowid")).fetchall()
                found: dict[str, dict] = {}
                if self._parts():
                    for incident, part, key, body in self._c.execute(
                            "SELECT incident, part, key, body FROM projection_parts WHERE part <> 'plan'"):
                        found.setdefault(incident, {}).setdefault(part, {})[key] = body
        return [snapshot_of(r, found.get(r[0], {})) for r in rows]

    def heads(self) -> list[tuple[str, int, str]]:
        with self._guard():
            return self._c.execute(f"SELECT incident, seq, head FROM snapshots WHERE {NOT_A_STREAM} "
                                   "ORDER BY rowid").fetchall()

    def hash_rows(self, incident: str | None = None) -> Iterator[HashRow]:
        # The data column as its stored UTF-8 bytes where it is text (what every writer
        # stores): a long non-ASCII text is then neither decoded nor encoded again. Any other
        # stored value comes as it is, beside, for verify to treat exactly as rows() gives it.
        sql = ("SELECT incident, seq, type, at, actor, CASE WHEN typeof(data) = 'text' THEN CAST(data AS BLOB) END, "
               "CASE WHEN typeof(data) <> 'text' THEN data END, prev, hash FROM events")
        if incident is None:
            return self._stream(f"{sql} ORDER BY incident, seq", ())
        return self._stream(f"{sql} WHERE incident = ? ORDER BY seq", (incident,))

    def log_ends(self) -> dict[str, tuple[int, str]]:
        # CROSS JOIN keeps snapshots as the outer loop (SQLite's documented way to fix the
        # join order): without statistics the planner otherwise scans every event and looks
        # the snapshot up per event (1.2 s of the 3 s a verify --fast of 200,000 events took).
        with self._guard():
            return {inc: (seq, h) for inc, seq, h in self._c.execute(
                "SELECT s.incident, e.seq, e.hash FROM snapshots s CROSS JOIN events e ON e.incident = s.incident "
                "AND e.seq = (SELECT max(seq) FROM events WHERE incident = s.incident)")}

    def incidents(self) -> list[str]:
        with self._guard():
            return [r[0] for r in self._c.execute(f"SELECT incident FROM snapshots WHERE {NOT_A_STREAM} "
                                                  "ORDER BY rowid")]

    def _write_index(self, incident: str, indexed: tuple | None) -> None:
        """The incident's index row (inside the caller's transaction and guard); a write
        without a summary removes it, so the incident is read in full. A database not
        upgraded to the index (schema 1) has none to write."""
        if not self.indexed:
            return
        if indexed is None:
            self._c.execute("DELETE FROM incident_index WHERE incident = ?", (incident,))
        elif self.version >= CLOCKS_COLUMN:
            self._c.execute(UPSERT_INDEX, (incident, incident, *indexed))
        else:
            self._c.execute(UPSERT_INDEX_WHOLE, (incident, incident, indexed[0], indexed[1], joined(indexed)))

    def _unindexed(self) -> list[tuple[int, str]]:
        """(rowid, id) of the incidents without an index row: all of them before schema 2;
        after it, none unless counts differ (two small index counts, no scan)."""
        if not self.indexed:
            return self._c.execute(f"SELECT rowid, incident FROM snapshots WHERE {NOT_A_STREAM}").fetchall()
        (have,), (streams,), (indexed,) = (
            self._c.execute("SELECT count(*) FROM snapshots").fetchone(),
            self._c.execute(f"SELECT count(*) FROM snapshots WHERE incident IN ({', '.join('?' * len(STREAMS))})",
                            STREAMS).fetchone(),
            self._c.execute("SELECT count(*) FROM incident_index").fetchone())
        if have - streams == indexed:
            return []
        return self._c.execute(f"SELECT rowid, incident FROM snapshots WHERE {NOT_A_STREAM} AND incident NOT IN "
                               "(SELECT incident FROM incident_index)").fetchall()

    def due_before(self, moment: str) -> list[str]:
        return [i for i, _, _ in self._due(moment, "NULL, NULL")]

    def due_summaries(self, moment: str) -> list[tuple[str, dict | None]]:
        return summaries_of(self._due(moment, f"summary, {self._clocks}"))

    @property
    def _clocks(self) -> str:
        """The index's clocks column where the schema has one (else inside the summary)."""
        return "clocks" if self.version >= CLOCKS_COLUMN else "NULL"

    def _due(self, moment: str, columns: str) -> list[tuple[str, str | None, str | None]]:
        check_moment(moment)
        with self._guard():
            due = [] if not self.indexed else self._c.execute(
                f"SELECT ord, incident, {columns} FROM incident_index WHERE status = 'open' AND next_due_at <= ?",
                (moment,)).fetchall()
            missing = [(o, i, None, None) for o, i in self._unindexed()]
        return [(i, text, clocks) for _, i, text, clocks in in_order(due, missing)]

    def summaries(self, *, clocks: bool = True) -> list[tuple[str, dict | None]]:
        with self._guard():
            rows = [] if not self.indexed else self._c.execute(
                f"SELECT ord, incident, summary, {self._clocks if clocks else 'NULL'} FROM incident_index").fetchall()
            missing = [(o, i, None, None) for o, i in self._unindexed()]
        return summaries_of([(i, text, c) for _, i, text, c in in_order(rows, missing)], clocks)

    def _stream(self, sql: str, params: tuple) -> Iterator[tuple]:
        """Rows of ``sql`` a batch at a time from one cursor: flat memory, any length."""
        with self._guard():
            cur = self._c.execute(sql, params)
        try:
            while True:
                with self._guard():
                    batch = cur.fetchmany(BATCH)
                if not batch:
                    return
                yield from batch
        finally:
            cur.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
        except sqlite3.Error:
            pass


def statements(script: str) -> Iterator[str]:
    """The SQL statements of a migration file, one at a time (a trigger's body keeps its
    semicolons); comment lines between statements are dropped."""
    buffer: list[str] = []
    for line in script.splitlines():
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer.append(line)
        text = "\n".join(buffer)
        if sqlite3.complete_statement(text):
            yield text.strip().rstrip(";").rstrip()
            buffer = []
    if buffer and "\n".join(buffer).strip():
        raise ValueError(f"a migration ends with an incomplete statement: {buffer[0][:60]!r}")


def _batches(rows) -> Iterator[list[tuple]]:
    batch = []
    for row in rows:
        batch.append(tuple(row))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def shown(path: str | os.PathLike) -> str:
    """A path for a message: a very long one (a mistake, or an attack) is shortened."""
    text = str(path)
    return text if len(text) <= 200 else f"{text[:120]}...({len(text)} characters)...{text[-40:]}"


def _primary_code(e: sqlite3.Error) -> int | None:
    code = getattr(e, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _is_busy(e: sqlite3.Error) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds a lock we need."""
    return _primary_code(e) in (5, 6) or "locked" in str(e)

