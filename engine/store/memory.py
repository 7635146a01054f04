"""An in-memory event store with the same behaviour as the SQLite one (for tests).

Thread-safe: one lock serialises writers (and guards the dictionaries); a
writer that cannot get it within ``busy_timeout`` gets the same StoreError as
with SQLite. Values are kept in their stored (canonical text) form and parsed
on every read, so callers never share mutable state with the store.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from engine.errors import StoreError
from engine.incidents.events import Event, NewEvent, canonical
from engine.store.base import (Closing, HashRow, Row, Snapshot, as_hash_rows, busy_message, chain_rows, check_moment, index_row,
                               loaded_head, loaded_parts, row_event, snapshot_of, stored_parts, summaries_of)
from engine.store.projection import projection_digest
from engine.store.streams import STREAMS, check_stream, failure_params

WHERE = "memory:"


class MemoryTransaction:
    def __init__(self, store: MemoryStore, incident: str, snapshot: Snapshot | None) -> None:
        self._store = store
        self.incident = incident
        self.snapshot = snapshot
        self._open = True
        self._pending: tuple[list[Row], str] | None = None

    def append(self, events: list[NewEvent], state: dict, summary: dict | None = None) -> list[Event]:
        if not self._open:
            raise RuntimeError("this transaction is over; open a new one")
        if self._pending is not None:
            raise RuntimeError("append may be called once per transaction")
        store = self._store
        log = store._rows.get(self.incident, [])
        last = (log[-1][1], log[-1][7]) if log else None
        rows = chain_rows(store.database_id, self.incident, self.snapshot, last, list(events))
        self._index = index_row(summary)
        self._pending = (rows, stored_parts(self.snapshot, state))
        return [row_event(r) for r in rows]

    def rewrite_projection(self, state: dict, summary: dict | None = None) -> None:
        if not self._open or self.snapshot is None:
            raise RuntimeError("rewrite_projection needs an open transaction on an existing incident")
        self._index = index_row(summary)
        self._rewritten = stored_parts(self.snapshot, state)

    def _commit(self) -> None:
        store = self._store
        rewritten = getattr(self, "_rewritten", None)
        if rewritten is not None or self._pending is not None:
            store._set_index(self.incident, getattr(self, "_index", None))
        if rewritten is not None and self._pending is None:
            seq, head, _, at = store._snapshots[self.incident]
            store._snapshots[self.incident] = (seq, head, rewritten.state_text, at)
            store._set_parts(self.incident, rewritten)
        if self._pending is None:
            return
        rows, stored = self._pending
        store._rows.setdefault(self.incident, []).extend(rows)
        last = rows[-1]
        store._snapshots[self.incident] = (last[1], last[7], stored.state_text, last[3])
        store._set_parts(self.incident, stored)


class MemoryStore(Closing):
    """Events, snapshots and checkpoints in dictionaries; gone when the process ends."""

    def __init__(self, busy_timeout: float = 10.0, database_id: str | None = None) -> None:
        self.database_id = database_id or uuid.uuid4().hex
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._rows: dict[str, list[Row]] = {}  # insertion order = creation order
        self._snapshots: dict[str, tuple[int, str, str, str]] = {}  # seq, head, state, updated_at
        self._checkpoints: list[str] = []
        self._parts: dict[str, dict[tuple[str, str], str]] = {}  # incident -> (part, key) -> text kept apart
        #: incident -> status, next_due_at, summary text, clocks text
        self._index: dict[str, tuple[str, str | None, str, str | None]] = {}
        self._failures: dict[str, tuple[int, str, str]] = {}  # name -> failures, first_at, last_at
        self._uses: dict[str, str] = {}  # token id -> last used at
        self._busy = False  # a write transaction or a read view is open (owner thread)
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStore({self.database_id})"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    @contextmanager
    def _locked(self, timeout: float = -1):
        self._check_open()
        if not self._lock.acquire(timeout=timeout):
            raise StoreError(busy_message(self.busy_timeout, WHERE))
        try:
            yield
        finally:
            self._lock.release()

    def schema_version(self) -> int:
        return 3

    def _incidents(self) -> list[str]:
        """Ids of the incidents with a snapshot (the streams left out), in creation order."""
        return [i for i in self._snapshots if i not in STREAMS]

    def count_failure(self, name: str, at: str, window_start: str) -> int:
        failure_params(name, at, window_start)
        with self._locked(self.busy_timeout):
            count, first, _ = self._failures.get(name, (0, at, at))
            if first < window_start:
                count, first = 0, at
            self._failures[name] = (count + 1, first, at)
            return count + 1

    def clear_failures(self, name: str) -> None:
        with self._locked(self.busy_timeout):
            self._failures.pop(name, None)

    def token_used(self, token: str, at: str) -> None:
        with self._locked(self.busy_timeout):
            if self._uses.get(token, "") < at:
                self._uses[token] = at

    def token_uses(self) -> dict[str, str]:
        with self._locked():
            return dict(self._uses)

    def _set_index(self, incident: str, indexed: tuple | None) -> None:
        if indexed is None:
            self._index.pop(incident, None)
        else:
            self._index[incident] = indexed

    def _set_parts(self, incident: str, stored) -> None:
        rows = self._parts.setdefault(incident, {})
        if stored.plan_text is not None:
            rows[("plan", "")] = stored.plan_text
        for part, key, text in stored.writes:
            rows[(part, key)] = text
        for part, key in stored.deletes:
            rows.pop((part, key), None)

    def due_before(self, moment: str) -> list[str]:
        return [i for i, *_ in self._due(moment)]

    def due_summaries(self, moment: str) -> list[tuple[str, dict | None]]:
        return summaries_of(self._due(moment))

    def _due(self, moment: str) -> list[tuple[str, str | None]]:
        check_moment(moment)
        with self._locked():
            return [(i, *self._index[i][2:]) if i in self._index else (i, None, None) for i in self._incidents()
                    if i not in self._index or (self._index[i][0] == "open" and self._index[i][1] is not None
                                                and self._index[i][1] <= moment)]

    def summaries(self, *, clocks: bool = True) -> list[tuple[str, dict | None]]:
        with self._locked():
            rows = [(i, *self._index[i][2:]) if i in self._index else (i, None, None) for i in self._incidents()]
        return summaries_of(rows, clocks)

    def projection_digests(self) -> dict[str, str]:
        with self._locked():
            return {i: projection_digest(row[2], *(self._index[i][2:] if i in self._index else (None, None)),
                                         [(p, k, t) for (p, k), t in self._parts.get(i, {}).items()])
                    for i, row in self._snapshots.items()}

    def upgrade(self) -> list[int]:
        return []

    def load(self, incident: str, rows, state_text: str, summary: dict | None = None) -> int:
        indexed = index_row(summary)
        stored = loaded_parts(incident, state_text)
        rows = [tuple(r) for r in rows]
        with self._locked(self.busy_timeout):
            if incident in self._rows or incident in self._snapshots:
                raise StoreError(f"incident {incident} exists already; load only into a new store")
            prev_seq, prev_hash = 0, None
            for r in rows:
                if r[0] != incident or r[1] != prev_seq + 1 or (prev_hash is not None and r[6] != prev_hash):
                    raise StoreError(f"incident {incident}: rows out of order at seq {r[1]}")
                prev_seq, prev_hash = r[1], r[7]
            seq, head = loaded_head(incident, len(rows), rows[-1] if rows else None)
            self._rows[incident] = rows
            self._snapshots[incident] = (seq, head, stored.state_text, rows[-1][3])
            self._set_parts(incident, stored)
            self._set_index(incident, indexed)
        return len(rows)

    @contextmanager
    def transaction(self, incident: str, *, stream: bool = False) -> Iterator[MemoryTransaction]:
        check_stream(incident, stream)
        with self._locked(self.busy_timeout):
            if self._busy:
                raise StoreError("a transaction is already open on this store; finish it first")
            self._busy = True
            tx = MemoryTransaction(self, incident, None)
            tx.snapshot = self._snapshot(incident, lambda: tx._open)
            try:
                yield tx
                tx._commit()
            finally:
                tx._open = False
                self._busy = False

    @contextmanager
    def grouped(self, max_seconds: float = 0.2) -> Iterator[None]:
        """Nothing to share: each transaction here commits at once, at no cost."""
        yield

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._locked(self.busy_timeout):
            if self._busy:
                raise StoreError("a transaction is already open on this store; finish it first")
            self._busy = True
            try:
                yield
            finally:
                self._busy = False

    def _snapshot(self, incident: str, is_open=None) -> Snapshot | None:
        """The projection, whole; or with its parts read on demand while ``is_open()``."""
        row = self._snapshots.get(incident)
        if row is None:
            return None
        parts = self._parts.get(incident, {})
        if is_open is None:
            found: dict[str, dict[str, str]] = {}
            for (part, key), text in parts.items():
                found.setdefault(part, {})[key] = text
            return snapshot_of((incident, row[0], row[1], row[2], parts.get(("plan", ""))), found)

        def fetch(part: str, keys: list[str]) -> dict[str, str]:
            if not is_open():
                raise RuntimeError(f"incident {incident}: its {part} were read in a write transaction "
                                   "that is over; read the incident again (store.snapshot) to see them")
            return {k: parts[(part, k)] for k in keys if (part, k) in parts}
        return snapshot_of((incident, row[0], row[1], row[2], parts.get(("plan", ""))), fetch)

    def snapshot(self, incident: str) -> Snapshot | None:
        if incident in STREAMS:
            return None
        with self._locked():
            return self._snapshot(incident)

    def stream(self, name: str) -> Snapshot | None:
        check_stream(name, True)
        with self._locked():
            return self._snapshot(name)

    def snapshots(self) -> list[Snapshot]:
        with self._locked():
            return [self._snapshot(i) for i in self._incidents()]

    def heads(self) -> list[tuple[str, int, str]]:
        with self._locked():
            return [(i, self._snapshots[i][0], self._snapshots[i][1]) for i in self._incidents()]

    def incidents(self) -> list[str]:
        with self._locked():
            return [i for i, log in self._rows.items() if log and i not in STREAMS]

    def count_incidents(self, prefix: str) -> int:
        with self._locked():
            return sum(1 for i, log in self._rows.items() if log and i.startswith(prefix) and i not in STREAMS)

    def events(self, incident: str, after: int = 0) -> Iterator[Event]:
        for row in self._iter_rows(incident, after):
            yield row_event(row)

    def log_ends(self) -> dict[str, tuple[int, str]]:
        with self._locked():
            return {i: (log[-1][1], log[-1][7]) for i, log in self._rows.items() if log and i in self._snapshots}

    def rows(self, incident: str | None = None) -> Iterator[Row]:
        if incident is not None:
            yield from self._iter_rows(incident, 0)
            return
        with self._locked():
            ids = sorted(self._rows)
        for i in ids:
            yield from self._iter_rows(i, 0)

    def hash_rows(self, incident: str | None = None) -> Iterator[HashRow]:
        return as_hash_rows(self.rows(incident))

    def _iter_rows(self, incident: str, after: int) -> Iterator[Row]:
        with self._locked():
            log = self._rows.get(incident, [])
            end = len(log)  # the log only grows: stop where it was when we started
        for k in range(max(after, 0), end):  # seq k + 1 sits at index k
            if log[k][1] > after:
                yield log[k]

    def add_checkpoint(self, cp: dict, keep: int | None = None) -> None:
        if keep is not None and (type(keep) is not int or keep < 1):
            raise ValueError(f"keep must be a positive number of checkpoints, not {keep!r}")
        text = canonical(cp).decode("utf-8")
        with self._locked(self.busy_timeout):
            self._checkpoints.append(text)
            if keep is not None:
                del self._checkpoints[:-keep]

    def checkpoints(self) -> list[dict]:
        with self._locked():
            return [json.loads(t) for t in self._checkpoints]

    def close(self) -> None:
        self._closed = True
