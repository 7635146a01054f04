-- The incident index: per incident, the few fields a listing shows and the earliest
-- due time of its running clocks, computed by the domain from the state and written by
-- the store in the same transaction as every append (the store never reads the
-- state). `due` and `watch` read only the incidents whose next_due_at has come, `list`
-- only these rows. An incident without a row (written before this migration) is
-- read in full until `playbook db upgrade` fills its row in.
CREATE TABLE incident_index (
    incident TEXT NOT NULL PRIMARY KEY,
    ord INTEGER NOT NULL,     -- the snapshot's rowid: creation order
    status TEXT NOT NULL,     -- open | closed
    next_due_at TEXT,         -- UTC ISO 8601, NULL: no clock running
    summary TEXT NOT NULL);   -- canonical JSON of the domain's summary

CREATE INDEX incident_index_due ON incident_index (status, next_due_at);

CREATE INDEX incident_index_ord ON incident_index (ord);
