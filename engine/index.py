"""The incident index: a small summary of each incident, kept by the store beside it.

Every write passes :func:`summary` of the new state to the store, which keeps it in
the same transaction as the events (``incident_index``: status and next due time in
indexed columns, the rest as a small JSON text) without ever reading the state. So
``due`` and ``watch`` read in full only the incidents whose next clock has come (and
those written before the index existed), and ``list`` reads only the summaries.

``next_due_at`` is in real time: a drill's clocks run ahead by its ``sim_offset``,
which changes only by an event (``ClockAdvanced``), so its simulated due time minus
the offset stays exact until the next write, which recomputes it.

A change to what :func:`summary` computes (or to the clocks or fields it reads) must
come with a store migration that empties the index, so the rows written by the old
code are read in full until ``playbook db upgrade`` fills them in again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .deadlines import _iso, _parse, clocks

#: The shape of a summary; see the module docstring before changing it.
SUMMARY_VERSION = 1


def summary(state: dict) -> dict:
    """The index row of an incident: what a listing shows and when its clocks fall due.

    Due times of the running clocks do not depend on the moment they are asked at (only
    whether one is overdue does), so they are computed once per write."""
    offset = timedelta(seconds=state.get("sim_offset", 0))
    any_moment = _parse(state["started_at"])
    due = sorted(_iso(c.due_at - offset) for c in clocks(state, any_moment) if c.met_at is None)
    return {
        "v": SUMMARY_VERSION,
        "id": state["id"],
        "title": state["title"],
        "drill": state["drill"],
        "status": state["status"],
        "stage": state["stage"],
        "stage_entered_at": state["stage_entered_at"],
        "started_at": state["started_at"],
        "playbook": state["plan"]["id"],
        "sim_offset": state.get("sim_offset", 0),
        "due": due,
        "next_due_at": due[0] if due else None,
        "notices": bool(state.get("notifications")),
    }


def overdue(row: dict, now: datetime) -> int:
    """How many of the incident's running clocks are overdue at ``now`` (real time)."""
    return sum(1 for d in row["due"] if now > _parse(d))


def rows(store) -> list[dict]:
    """Every incident's summary, in creation order: from the index, or computed from the
    incident's state where it has no index row yet (or one of another shape)."""
    from .incident import current_state

    out = []
    for incident, row in store.summaries():
        if row is None or row.get("v") != SUMMARY_VERSION:
            snap = store.snapshot(incident)
            if snap is None:
                continue
            row = summary(current_state(store, snap))
        out.append(row)
    return out


def listed(store, *, include_closed: bool = False, stage: str | None = None,
           playbook: str | None = None) -> list[dict]:
    """The summaries ``list`` shows, oldest first (the same selection as
    :func:`engine.service.list_incidents`)."""
    out = [r for r in rows(store)
           if (include_closed or r["status"] != "closed")
           and (stage is None or r["stage"] == stage)
           and (playbook is None or r["playbook"] == playbook)]
    return sorted(out, key=lambda r: r["started_at"])
