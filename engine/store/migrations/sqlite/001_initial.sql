-- The incident database (SQLite): an append-only, hash-chained event log per incident,
-- the projection written in the same transaction, and signed checkpoints. Schema 1 is
-- exactly what the first releases created (PRAGMA user_version 1); later migrations
-- are applied by `playbook db upgrade`.

CREATE TABLE meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        schema_version INTEGER NOT NULL,
        database_id TEXT NOT NULL,
        created_at TEXT NOT NULL);

CREATE TABLE events (
        incident TEXT NOT NULL,
        seq INTEGER NOT NULL CHECK (seq >= 1),
        type TEXT NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        data TEXT NOT NULL,
        prev TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (incident, seq)) WITHOUT ROWID;

CREATE TABLE snapshots (
        incident TEXT NOT NULL PRIMARY KEY,
        seq INTEGER NOT NULL,
        head TEXT NOT NULL,
        state TEXT NOT NULL,
        updated_at TEXT NOT NULL);

CREATE TABLE checkpoints (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        body TEXT NOT NULL);

CREATE TRIGGER events_append_in_order BEFORE INSERT ON events
        WHEN NEW.seq IS NOT 1 + COALESCE((SELECT max(seq) FROM events WHERE incident = NEW.incident), 0)
          OR (NEW.seq > 1 AND NEW.prev IS NOT
              (SELECT hash FROM events WHERE incident = NEW.incident AND seq = NEW.seq - 1))
        BEGIN SELECT RAISE(ABORT, 'events are append-only: a new event must be the next seq of its incident'); END;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed'); END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed'); END;

CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta BEGIN SELECT RAISE(ABORT, 'meta are append-only: UPDATE is not allowed'); END;

CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta BEGIN SELECT RAISE(ABORT, 'meta are append-only: DELETE is not allowed'); END;

CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: UPDATE is not allowed'); END;

CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: DELETE is not allowed'); END;
