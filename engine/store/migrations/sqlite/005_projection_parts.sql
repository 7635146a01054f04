-- Parts of a projection kept apart from its snapshot row, so that a write rewrites only
-- what changed: the incident's plan (compiled from its pinned playbook, 6 to 13 kB, never
-- changed by a fold) is stored once per incident here, and the snapshot's state holds
-- {"$part": "plan"} in its place. A snapshot written before this migration keeps its
-- whole state (plan included) and is read as it is until the incident's next write.
CREATE TABLE projection_parts (
    incident TEXT NOT NULL,
    part TEXT NOT NULL,       -- which part of the state: plan
    key TEXT NOT NULL,        -- '' for a part stored whole
    body TEXT NOT NULL,       -- canonical JSON of the part
    PRIMARY KEY (incident, part, key)) WITHOUT ROWID;
