"""The event store's interface, shared by every backend.

A store keeps, per database:

* the **events** of every incident: an append-only, hash-chained log
  (``seq`` 1, 2, 3 ... per incident; see :mod:`engine.incidents.events`);
* one **snapshot** per incident: the projection (state) the service folded
  from the events, with the seq and hash of the last event folded in. It is
  written in the same transaction as the events, so it never disagrees with
  the log unless someone edits the database behind the store's back (which
  :func:`engine.audit.integrity.verify` reports). From schema 5 its plan (most of a
  new incident's state, never changed by a fold) is kept apart, once per incident
  (``projection_parts``), and written only when it changes: see :func:`stored_parts`;
  every read puts it back, so callers always see the whole state;
* signed **checkpoints** (:mod:`engine.audit.integrity`), append-only as well;
* **streams** that are logs like an incident's but not incidents (:mod:`engine.store.streams`:
  the account log of :mod:`engine.accounts`): the same chain, snapshot and write lock, read
  by their id, and kept out of every incident listing (``incidents``, ``snapshots``,
  ``summaries``, ``due_before``, ``count_incidents``); ``rows()`` streams them too, so
  ``verify`` checks their chains;
* two small tables the account domain updates in place (schema 3): failed sign-ins per
  name in the lockout window, and when each API token was last used.

Backends: :mod:`engine.store.sqlite` (the default) and
:mod:`engine.store.memory` (for tests). Everything backend-specific (SQL
included) stays in the backend's module; the chain arithmetic lives here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from dataclasses import dataclass, field
from typing import Protocol

from engine.errors import IntegrityError
from engine.incidents.events import Event, NewEvent, canonical, genesis, hashed_text
from engine.store.parts import (PLAN, PLAN_REF, LazyParts, Stored, has_parts, is_ref, loaded_parts,  # noqa: F401
                                plan_of, stored_parts, whole)
from engine.store.projection import CLOCKS_COLUMN, CORE, PART, digests_of
from engine.store.streams import ACCOUNT_TABLES, ACCOUNTS, NOT_A_STREAM, STREAMS, check_stream  # noqa: F401

# A stored event in its raw form: (incident, seq, type, at, actor, data_text,
# prev, hash), where data_text is the canonical JSON text of ``data``.
Row = tuple[str, int, str, str, str, str, str, str]
# A stored event as verify hashes it: (incident, seq, type, at, actor, data bytes, data
# value, prev, hash), where data bytes are the UTF-8 bytes of data_text as stored, or None
# where the stored value is not text, and the data value is then the stored value itself
# (None where the data bytes are given); see :meth:`Store.hash_rows`.
HashRow = tuple[str, int, str, str, str, bytes | None, object, str, str]


@dataclass(frozen=True)
class Snapshot:
    """The projection of one incident, as of event ``seq``."""

    incident: str
    seq: int  # last event seq folded into state
    head: str  # hash of that event
    state: dict  # the projection (JSON) the service computed; the store does not interpret it
    #: the stored text of the plan kept apart (see :func:`stored_parts`), None when there is none
    plan_text: str | None = field(default=None, repr=False, compare=False)


class Transaction(Protocol):
    """The exclusive writer for one incident, for the duration of a with-block."""

    snapshot: Snapshot | None  # read inside the lock; None before the incident's first event

    def append(self, events: list[NewEvent], state: dict, summary: dict | None = None) -> list[Event]:
        """Assign seq (snapshot.seq + 1 ...), prev and hash; insert the events; upsert the
        snapshot with ``state``, the new seq and head, and the incident's index row with
        ``summary`` -- all in this transaction. May be called once per transaction.

        ``summary`` is the domain's small digest of ``state`` (see :func:`index_row`);
        without one the incident has no index row, so readers read it in full."""
        ...

    def rewrite_projection(self, state: dict, summary: dict | None = None) -> None:
        """Replace the stored projection with ``state`` (refolded from the log by a newer
        version of the fold) and the index row with ``summary``; the log and the
        snapshot's seq and head stay as they are."""
        ...


class Store(Protocol):
    """An append-only event store (see the module docstring)."""

    database_id: str  # random per database (uuid4 hex), created with the schema

    def transaction(self, incident: str, *, stream: bool = False) -> AbstractContextManager[Transaction]:
        """Exclusive write access: commit on normal exit, roll back on exception. Waits at
        most ``busy_timeout`` seconds for another writer, then raises StoreError. A stream
        (:data:`STREAMS`) is written only with ``stream=True``; as an incident id it is
        NotFound, so no incident command can write to it."""
        ...

    def grouped(self, max_seconds: float = 0.2) -> AbstractContextManager[None]:
        """A block whose transactions may share commits (at most ``max_seconds`` apart),
        for a command that writes to many incidents at once (``due``'s first run). Each
        transaction still succeeds or fails alone; all is committed by the block's end,
        even when an exception ends it. A backend may commit each transaction at once."""
        ...

    def snapshot(self, incident: str) -> Snapshot | None:
        """The projection row of ``incident`` (cheap: independent of history length);
        None for a stream, which is not an incident (see :meth:`stream`)."""
        ...

    def stream(self, name: str) -> Snapshot | None:
        """The projection row of the stream ``name`` (one of :data:`STREAMS`)."""
        ...

    def snapshots(self) -> list[Snapshot]:
        """Every incident's projection, in creation order."""
        ...

    def heads(self) -> list[tuple[str, int, str]]:
        """(incident, seq, head) of every incident's snapshot (the streams left out), in
        creation order, without its state:
        what a checkpoint signs and verify compares with the log, in flat memory."""
        ...

    def events(self, incident: str, after: int = 0) -> Iterator[Event]:
        """The events of ``incident`` with seq > ``after``, streamed in seq order."""
        ...

    def log_ends(self) -> dict[str, tuple[int, str]]:
        """Id -> (seq, hash) of the last event in the log of every incident and stream that
        has a snapshot and events: one statement, an index lookup per incident, nothing
        parsed (what a checkpoint compares each snapshot's head with)."""
        ...

    def rows(self, incident: str | None = None) -> Iterator[Row]:
        """Stored events in raw form (data as canonical text), streamed ordered by
        incident then seq; all incidents when ``incident`` is None. For verification
        and export: no JSON parsing, no objects per event."""
        ...

    def hash_rows(self, incident: str | None = None) -> Iterator[HashRow]:
        """:meth:`rows` as verify hashes them (:data:`HashRow`): the data column as the
        bytes stored where it is stored as text (no decoding to a string and encoding back,
        which costs more than the hash for long non-ASCII texts), else as the stored value
        itself, for verify to treat exactly as :meth:`rows` gives it."""
        ...

    def incidents(self) -> list[str]:
        """Ids of the incidents that have events, in creation order."""
        ...

    def due_before(self, moment: str) -> list[str]:
        """Ids, in creation order, of the open incidents whose index row's ``next_due_at``
        is at or before ``moment`` (UTC ISO 8601, as the summaries store it), and of every
        incident without an index row (written before the index existed): an index
        range, no projection read."""
        ...

    def due_summaries(self, moment: str) -> list[tuple[str, dict | None]]:
        """(id, summary) of the incidents :meth:`due_before` names, in the same order;
        None where the incident has no index row. Reads the index only."""
        ...

    def summaries(self, *, clocks: bool = True) -> list[tuple[str, dict | None]]:
        """(id, summary) of every incident in creation order; None where the incident has
        no index row yet. Reads the index only, never a projection. ``clocks=False``
        leaves out the summaries' ``clocks`` where the index keeps them apart (schema 4
        on): what a listing reads."""
        ...

    def count_incidents(self, prefix: str) -> int:
        """How many incident ids start with ``prefix`` (an index range, not a scan)."""
        ...

    def reading(self) -> AbstractContextManager[None]:
        """A consistent view for several reads (one read transaction in SQLite).
        Do not open a write transaction inside it."""
        ...

    def add_checkpoint(self, cp: dict, keep: int | None = None) -> None:
        """Store a signed checkpoint (append-only). With ``keep``, also remove every stored
        checkpoint but the newest ``keep`` (this one included), in the same transaction:
        the retention rule of :func:`engine.audit.checkpoints.checkpoint`. A backend whose
        checkpoints its role may not delete (PostgreSQL) keeps them all."""
        ...

    def schema_version(self) -> int:
        """The newest schema migration applied to this database."""
        ...

    def upgrade(self) -> list[int]:
        """Apply the schema migrations not applied yet; return their numbers."""
        ...

    def load(self, incident: str, rows: Iterable[Row], state_text: str, summary: dict | None = None) -> int:
        """Insert an incident's stored rows exactly as given (``db copy``), with its
        projection and index row, in one transaction; refused when the incident exists.
        The schema still checks order and links. Returns the number of rows."""
        ...

    def checkpoints(self) -> list[dict]:
        """Every stored checkpoint, oldest first."""
        ...

    def projection_digests(self) -> dict[str, str]:
        """Incident (or stream) id -> :func:`projection_digest` of everything stored as its
        projection (the state text, the index row's texts and every row of it kept apart in
        ``projection_parts``), for every snapshot, streamed (flat memory), no state parsed.
        A signed checkpoint keeps these for the incidents a verify refolded, so a later
        verify refolds only those whose head or projection changed since."""
        ...

    def count_failure(self, name: str, at: str, window_start: str) -> int:
        """Count one failed sign-in of ``name`` at ``at`` and return the failures in its
        window: the count starts again at 1 when the window's first failure is older than
        ``window_start``. One atomic statement, so processes signing in at once never lose
        a count. UTC times like 2026-03-14T10:00:00.000Z."""
        ...

    def clear_failures(self, name: str) -> None:
        """Forget ``name``'s failed sign-ins (a successful one, or a lockout recorded)."""
        ...

    def token_used(self, token: str, at: str) -> None:
        """Record that the token with id ``token`` was used at ``at`` (kept if later)."""
        ...

    def token_uses(self) -> dict[str, str]:
        """Token id -> when it was last used, for every token used since schema 3."""
        ...

    def close(self) -> None: ...


# --- shared by the backends -------------------------------------------------------


class Closing:
    """``with open_store(...) as store:`` closes the store at the end of the block."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


COLUMNS = "incident, seq, type, at, actor, data, prev, hash"


class SqlReads:
    """The reads both SQL backends make in the same words. A backend gives ``_fetch``
    (all rows of one query) and ``_stream`` (rows a batch at a time), and its parameter
    marker; the SQL here is written with ``?``."""

    PARAM = "?"

    def _fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    def _stream(self, sql: str, params: tuple) -> Iterator[tuple]:
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        return sql if self.PARAM == "?" else sql.replace("?", self.PARAM)

    def _parts(self) -> bool:
        """Whether this database keeps parts of projections apart (``projection_parts``)."""
        return True

    def _snapshot_sql(self, where: str) -> str:
        """SELECT of (incident, seq, head, state, plan text) rows of ``snapshots`` (alias s)
        matching ``where``: one statement, so state and plan come from one read."""
        if not self._parts():
            return f"SELECT incident, seq, head, state, NULL FROM snapshots s WHERE {where}"
        return self._q("SELECT s.incident, s.seq, s.head, s.state, p.body FROM snapshots s "
                       "LEFT JOIN projection_parts p ON p.incident = s.incident AND p.part = 'plan' "
                       f"AND p.key = '' WHERE {where}")

    def _consistent(self) -> AbstractContextManager[None]:
        """A block whose reads see one state of the database (the open transaction, or a
        read view opened for it)."""
        raise NotImplementedError

    def _snapshot(self, incident: str) -> Snapshot | None:
        """The incident's projection read whole (plain JSON)."""
        with self._consistent():
            rows = self._fetch(self._snapshot_sql(self._q("s.incident = ?")), (incident,))
            if not rows:
                return None
            found: dict[str, dict[str, str]] = {}
            if self._parts() and has_parts(rows[0][3]):
                for part, key, body in self._fetch(self._q(
                        "SELECT part, key, body FROM projection_parts WHERE incident = ? AND part <> 'plan'"),
                        (incident,)):
                    found.setdefault(part, {})[key] = body
        return snapshot_of(rows[0], found)

    def _tx_snapshot(self, row: tuple | None, is_open: Callable[[], bool]) -> Snapshot | None:
        """The projection a write transaction read (``row``, from :meth:`_snapshot_sql`), its
        parts stored per entry read on demand while ``is_open()``."""
        if row is None:
            return None
        incident = row[0]

        def fetch(part: str, keys: list[str]) -> dict[str, str]:
            if not is_open():
                raise RuntimeError(f"incident {incident}: its {part} were read in a write transaction "
                                   "that is over; read the incident again (store.snapshot) to see them")
            out: dict[str, str] = {}
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                out.update(self._fetch(self._q(
                    "SELECT key, body FROM projection_parts WHERE incident = ? AND part = ? AND key IN ("
                    + ", ".join("?" * len(chunk)) + ")"), (incident, part, *chunk)))
            return out

        return snapshot_of(row, fetch)

    def snapshot(self, incident: str) -> Snapshot | None:
        return None if incident in STREAMS else self._snapshot(incident)

    def stream(self, name: str) -> Snapshot | None:
        return self._snapshot(check_stream(name, True))

    def count_incidents(self, prefix: str) -> int:
        return self._fetch(self._q(f"SELECT count(*) FROM snapshots WHERE incident >= ? AND incident < ? "
                                   f"AND {NOT_A_STREAM}"), (prefix, prefix + "\U0010ffff"))[0][0]

    def token_uses(self) -> dict[str, str]:
        if self._account_tables():
            return dict(self._fetch("SELECT token, last_used_at FROM token_uses"))
        return {}

    def _account_tables(self) -> bool:
        return self.schema_version() >= ACCOUNT_TABLES

    def events(self, incident: str, after: int = 0) -> Iterator[Event]:
        sql = self._q(f"SELECT {COLUMNS} FROM events WHERE incident = ? AND seq > ? ORDER BY seq")
        for row in self._stream(sql, (incident, after)):
            yield row_event(row)

    def log_ends(self) -> dict[str, tuple[int, str]]:
        return {inc: (seq, h) for inc, seq, h in self._fetch(
            "SELECT s.incident, e.seq, e.hash FROM snapshots s JOIN events e ON e.incident = s.incident "
            "AND e.seq = (SELECT max(seq) FROM events WHERE incident = s.incident)")}

    def rows(self, incident: str | None = None) -> Iterator[Row]:
        if incident is None:
            return self._stream(f"SELECT {COLUMNS} FROM events ORDER BY incident, seq", ())
        return self._stream(self._q(f"SELECT {COLUMNS} FROM events WHERE incident = ? ORDER BY seq"),
                            (incident,))

    def hash_rows(self, incident: str | None = None) -> Iterator[HashRow]:
        return as_hash_rows(self.rows(incident))

    def checkpoints(self) -> list[dict]:
        return checkpoints_of(self._fetch("SELECT id, body FROM checkpoints ORDER BY id"))

    def projection_digests(self) -> dict[str, str]:
        # One statement (one view of the database): each snapshot's row, then its parts.
        version = self.schema_version()
        texts = "s.state, " + ("i.summary, " if version >= 2 else "NULL, ") + (
            "i.clocks" if version >= CLOCKS_COLUMN else "NULL")
        join = " LEFT JOIN incident_index i ON i.incident = s.incident" if version >= 2 else ""
        sql = f"SELECT s.incident, {CORE}, {texts} FROM snapshots s{join}"
        if self._parts():
            sql += f" UNION ALL SELECT incident, {PART}, part, key, body FROM projection_parts"
        return digests_of(self._stream(sql + " ORDER BY 1, 2", ()))


S_NOT_A_STREAM = NOT_A_STREAM.replace("incident", "s.incident", 1)  # in a query joining snapshots as s


def snapshot_of(row: tuple, parts=None) -> Snapshot:
    """A Snapshot from a stored (incident, seq, head, state text[, plan text]) row, with the
    parts kept apart put back in their places: the plan, and each mapping stored one row per
    entry (engine.store.parts), from ``parts``: a dict {part: {key: text}} of its rows (read
    whole), or a function ``fetch(part, keys)`` reading them on demand (in a transaction)."""
    incident, seq, head, text, *rest = row
    plan_text = rest[0] if rest else None
    try:
        state = json.loads(text)
    except (TypeError, ValueError):
        raise IntegrityError(f"incident {incident}: its stored state is not valid JSON (modified?)") from None
    if type(state) is not dict:
        return Snapshot(incident, seq, head, state)
    if state.get(PLAN) == PLAN_REF:
        if plan_text is None:
            raise IntegrityError(f"incident {incident}: its stored plan is missing (deleted?); run verify")
        state[PLAN] = plan_of(incident, plan_text)
    else:
        plan_text = None  # stored whole (before the parts, or a stream): nothing kept apart
    for key, value in state.items():
        if is_ref(value) and value["$part"] == key:
            if callable(parts):
                state[key] = LazyParts(incident, key, value["keys"], partial(parts, key))
            else:
                state[key] = whole(incident, key, value, (parts or {}).get(key, {}))
    return Snapshot(incident, seq, head, state, plan_text)


def index_row(summary: dict | None) -> tuple[str, str | None, str, str | None] | None:
    """(status, next_due_at, canonical text, clocks) of a summary, as the index stores it;
    None for no summary. The summary's ``clocks`` text (what only ``due`` parses) is kept
    apart from the canonical text of the rest (see :func:`joined` for a schema without
    its column). The store reads these keys only, and checks them: ``status`` is
    ``open`` or ``closed``, ``next_due_at`` a UTC time like ``2026-03-14T10:00:00.000Z``
    (text order is time order) or None, ``clocks`` a text or absent."""
    if summary is None:
        return None
    if not isinstance(summary, dict):
        raise TypeError(f"a summary is a dict, not {type(summary).__name__}")
    status, due = summary.get("status"), summary.get("next_due_at")
    if status not in ("open", "closed"):
        raise ValueError(f"a summary's status is 'open' or 'closed', not {status!r}")
    if due is not None and not (isinstance(due, str) and _UTC.fullmatch(due)):
        raise ValueError(f"a summary's next_due_at is a UTC time like 2026-03-14T10:00:00.000Z "
                         f"or None, not {due!r}")
    clocks = summary.get("clocks")
    if clocks is not None and not isinstance(clocks, str):
        raise ValueError(f"a summary's clocks are a JSON text, not {type(clocks).__name__}")
    rest = {k: v for k, v in summary.items() if k != "clocks"} if clocks is not None else summary
    return status, due, canonical(rest).decode("utf-8"), clocks


def check_moment(moment: str) -> str:
    if not (isinstance(moment, str) and _UTC.fullmatch(moment)):
        raise ValueError(f"due_before takes a UTC time like 2026-03-14T10:00:00.000Z, not {moment!r}")
    return moment


def summary_of(incident: str, text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise IntegrityError(f"incident {incident}: its stored summary is not valid JSON (modified?)") from None


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while thousands of containers are made
    that cannot form a cycle (parsed JSON): otherwise it walks them again and again as
    they pile up, which makes reading N summaries cost more than N times one. Reference
    counting still frees them; the collector is restarted only if it was running."""
    import gc

    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()


def summaries_of(pairs: list[tuple], clocks: bool = True) -> list[tuple[str, dict | None]]:
    """(id, parsed summary) of stored (id, summary text or None[, clocks text or None])
    rows. The texts are parsed as one JSON array (one call instead of one per incident);
    should that not give one object per text, each is parsed alone, so a damaged one is
    named. A clocks text kept in its own column is put back as the summary's ``clocks``
    (unless ``clocks`` is false: a listing, which never reads them)."""
    if pairs and len(pairs[0]) == 3:
        found = summaries_of([(i, t) for i, t, _ in pairs])
        if clocks:
            for (_, row), (_, _, c) in zip(found, pairs):
                if c is not None and row is not None:
                    row["clocks"] = c
        return found
    texts = [t for _, t in pairs if t is not None]
    try:
        with collector_paused():
            parsed = json.loads("[" + ",".join(texts) + "]")
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or len(parsed) != len(texts) or not all(type(p) is dict for p in parsed):
        return [(i, summary_of(i, t)) for i, t in pairs]
    found = iter(parsed)
    return [(i, None if t is None else next(found)) for i, t in pairs]


def in_order(indexed: list[tuple], unindexed: list[tuple]) -> list[tuple]:
    """(ord, ...) rows of the index and of incidents it lacks, merged by creation order."""
    return sorted(indexed + unindexed, key=lambda r: r[0])


_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def checkpoints_of(rows) -> list[dict]:
    """Stored (id, body text) checkpoint rows, parsed, oldest first."""
    out = []
    for id_, body in rows:
        try:
            out.append(json.loads(body))
        except (TypeError, ValueError):
            raise IntegrityError(f"stored checkpoint #{id_} is not valid JSON (modified?)") from None
    return out


def busy_message(timeout: float, where: str) -> str:
    return (
        f"database is busy: another writer held it for more than {timeout:g} s; "
        f"try again ({where})"
    )


def conflict_message(incident: str) -> str:
    return f"incident {incident} was changed by someone else at the same time; run the command again"


def chain_rows(
    database_id: str, incident: str, snapshot: Snapshot | None, last: tuple[int, str] | None,
    events: list[NewEvent],
) -> list[Row]:
    """Number and hash ``events`` after ``snapshot``; ``last`` is (seq, hash) of the log's
    last event as the backend read it inside its lock, to check the projection is current."""
    import hashlib  # here, not at the top: reads (`status`) never hash; OpenSSL loads in ms

    if not events:
        raise ValueError("append needs at least one event")
    for ev in events:
        if not isinstance(ev, NewEvent):
            raise TypeError(f"append takes NewEvent records, not {type(ev).__name__}")
    seen = (snapshot.seq, snapshot.head) if snapshot else None
    if seen != last:
        # Both were read under the writer's lock, so this is not a race: the database
        # was edited behind the store's back.
        raise IntegrityError(
            f"incident {incident}: its projection (seq {seen[0] if seen else 0}) does not "
            f"match its log (seq {last[0] if last else 0}); run verify"
        )
    seq, prev = seen if seen else (0, genesis(database_id, incident))
    rows: list[Row] = []
    for ev in events:
        seq += 1
        data_text = canonical(ev.data).decode("utf-8")
        h = hashlib.sha256(
            hashed_text(database_id, incident, seq, ev.type, ev.at, ev.actor, data_text, prev)
            .encode("utf-8")
        ).hexdigest()
        rows.append((incident, seq, ev.type, ev.at, ev.actor, data_text, prev, h))
        prev = h
    return rows


def loaded_head(incident: str, count: int, last: Row | None) -> tuple[int, str]:
    """(seq, hash) of the last row ``load`` inserted; a copy of nothing is refused."""
    if last is None or count == 0:
        raise IntegrityError(f"incident {incident}: the source has a projection but no events")
    return last[1], last[7]


def as_hash_rows(rows: Iterable[Row]) -> Iterator[HashRow]:
    """:data:`HashRow` of rows read as :meth:`Store.rows` gives them (data as its stored value)."""
    for inc, seq, typ, at, actor, data, prev, h in rows:
        yield inc, seq, typ, at, actor, None, data, prev, h


def row_event(row: Row) -> Event:
    """An Event from a raw row (parses ``data``)."""
    incident, seq, type_, at, actor, data_text, prev, h = row
    try:
        data = json.loads(data_text)
    except (TypeError, ValueError):
        raise IntegrityError(
            f"incident {incident} event {seq}: stored data is not valid JSON (modified?)"
        ) from None
    return Event(incident, seq, type_, at, actor, data, prev, h)
