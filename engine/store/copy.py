"""Copy a whole incident database from one store to another, byte for byte.

``playbook db copy SRC DST`` moves a team from SQLite to PostgreSQL (or back): every
event's exact stored text, the projections, the signed checkpoints and the
database id (which every hash includes) are copied, and so is the account log (the
reserved stream of :mod:`engine.accounts`), so the chain at the
destination has the same hashes and the same checkpoints verify there.
"""

from __future__ import annotations

from engine.errors import Refused
from engine.incidents.events import canonical
from engine.store.streams import STREAMS

__all__ = ["copy_database"]


def copy_database(source, target_location, *, open_store) -> dict:
    """Copy ``source`` (an open store) into a new, empty store at ``target_location``.

    The target is created with the source's database id; an existing target that
    already holds incidents or checkpoints is refused untouched. Returns counts.
    """
    with source.reading():
        incidents = source.incidents()
        streams = [s for s in STREAMS if source.stream(s) is not None]
        checkpoints = source.checkpoints()
        summaries = dict(source.summaries())  # the index rows travel as they are
    target = open_store(target_location, database_id=source.database_id)
    try:
        if (target.database_id != source.database_id or target.incidents() or target.checkpoints()
                or any(target.stream(s) is not None for s in STREAMS)):
            raise Refused(f"{target_location}: the destination already holds an incident database; "
                          "copy only into a new, empty one")
        events = 0
        with source.reading():
            for incident in incidents:
                snap = source.snapshot(incident)
                events += target.load(incident, source.rows(incident), canonical(snap.state).decode("utf-8"),
                                      summaries.get(incident))
            for stream in streams:  # no index row: a stream is not an incident
                snap = source.stream(stream)
                events += target.load(stream, source.rows(stream), canonical(snap.state).decode("utf-8"))
        for cp in checkpoints:
            target.add_checkpoint(cp)
    finally:
        target.close()
    return {"incidents": len(incidents), "events": events, "checkpoints": len(checkpoints),
            "database_id": source.database_id}
