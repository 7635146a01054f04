-- The incident database: an append-only, hash-chained event log per incident, the
-- projection written in the same transaction, and signed checkpoints.
CREATE TABLE playbook_meta (
    id integer PRIMARY KEY CHECK (id = 1),
    application text NOT NULL,
    database_id text NOT NULL,
    created_at text NOT NULL
);

CREATE TABLE schema_migrations (
    version integer PRIMARY KEY,
    applied_at text NOT NULL
);

-- Incident ids compare byte by byte (COLLATE "C"), as in SQLite, whatever the
-- database's locale: the same order for exports and verification on either backend,
-- and prefix ranges that use the primary key's index.
CREATE TABLE events (
    incident text COLLATE "C" NOT NULL,
    seq integer NOT NULL CHECK (seq >= 1),
    type text NOT NULL,
    at text NOT NULL,
    actor text NOT NULL,
    data text NOT NULL,      -- the exact canonical JSON text that is hashed
    prev text NOT NULL,
    hash text NOT NULL,
    PRIMARY KEY (incident, seq)
);

CREATE TABLE snapshots (
    incident text COLLATE "C" PRIMARY KEY,
    ord bigint GENERATED ALWAYS AS IDENTITY,  -- creation order
    seq integer NOT NULL,
    head text NOT NULL,
    state text NOT NULL,
    updated_at text NOT NULL
);
CREATE UNIQUE INDEX snapshots_ord ON snapshots (ord);

CREATE TABLE checkpoints (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at text NOT NULL,
    body text NOT NULL
);

CREATE FUNCTION playbook_append_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq integer;
    last_hash text;
BEGIN
    SELECT seq, hash INTO last_seq, last_hash FROM events
        WHERE incident = NEW.incident ORDER BY seq DESC LIMIT 1;
    IF NEW.seq IS DISTINCT FROM COALESCE(last_seq, 0) + 1
       OR (NEW.seq > 1 AND NEW.prev IS DISTINCT FROM last_hash) THEN
        RAISE EXCEPTION 'events are append-only: a new event must be the next seq of its incident';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER events_append_in_order BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION playbook_append_in_order();

CREATE FUNCTION playbook_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% are append-only: % is not allowed', TG_TABLE_NAME, TG_OP;
END $$;

CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION playbook_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION playbook_append_only();
CREATE TRIGGER meta_no_update BEFORE UPDATE OR DELETE ON playbook_meta
    FOR EACH ROW EXECUTE FUNCTION playbook_append_only();
CREATE TRIGGER meta_no_truncate BEFORE TRUNCATE ON playbook_meta
    FOR EACH STATEMENT EXECUTE FUNCTION playbook_append_only();
CREATE TRIGGER migrations_no_update BEFORE UPDATE OR DELETE ON schema_migrations
    FOR EACH ROW EXECUTE FUNCTION playbook_append_only();
CREATE TRIGGER migrations_no_truncate BEFORE TRUNCATE ON schema_migrations
    FOR EACH STATEMENT EXECUTE FUNCTION playbook_append_only();
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION playbook_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION playbook_append_only();
