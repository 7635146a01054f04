"""The incident index: a small summary of each incident, kept by the store beside it.

Every write passes :func:`summary` of the new state to the store, which keeps it in
the same transaction as the events (``incident_index``: status and next due time in
indexed columns, the rest as a small JSON text) without ever reading the state. So
``due`` and ``watch`` read only the rows of the incidents whose next clock has come
(and in full only those written before the index existed), and ``list`` reads only
the summaries.

``next_due_at`` is in real time: a drill's clocks run ahead by its ``sim_offset``,
which changes only by an event (``ClockAdvanced``), so its simulated due time minus
the offset stays exact until the next write, which recomputes it.

The running clocks themselves are kept too (``clocks``: every field of each unmet
clock but the moment it is asked at, and whether its breach is recorded): a clock's
fields do not depend on that moment (see engine.clocks.deadlines), so ``due`` rebuilds the
clocks of an overdue incident from its row, exactly as the state would give them,
without parsing the state. They are kept as one JSON text inside the summary, parsed
only by ``due``: a listing reads every summary and needs none of them (``due``, the
real-time due times, gives its overdue count).

Inbound messages' clocks are not kept one by one (a viral burst brings thousands to one
incident, and every write recomputes the row): the row keeps the counts the fold keeps
(``messages``, see engine.incidents.inbound ``tally``), per minute in which waiting
messages fall due, with and without a recorded breach, and the first such minute with
one unrecorded (``next``, real time, also in ``next_due_at``). ``due`` reads the incident
in full when that minute comes; a listing counts a message overdue once its breach is
recorded or the whole minute it fell due in has passed (``status`` and ``due`` are exact).

A change to what :func:`summary` computes (or to the clocks or fields it reads) bumps
``SUMMARY_VERSION``: rows of another version are never used (their incidents are
read in full, and ``playbook db upgrade`` or the incident's next write replaces
them). A change to what ``next_due_at`` means must also come with a store migration
that empties the index, because the store selects rows by it whatever their version.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from ..clocks.deadlines import ClockStatus, breach_key, clocks, iso_ms, parse_ts
from ..clocks.ladder import unacknowledged
from .events import canonical

#: The shape of a summary; see the module docstring before changing it.
#: 2: the running clocks (``clocks``, a JSON text). 3: messages' clocks as counts (``messages``).
SUMMARY_VERSION = 3
#: The fields of a clock a summary keeps, in this order (a list per clock, after whether
#: its breach is recorded): all but the moment asked at, and the escalation (applied
#: from the state, never from the index). A list, not a mapping, because ``due`` parses
#: thousands of them; so a change to ClockStatus's fields changes the summary's shape.
KEPT = tuple(name for name in ClockStatus._fields if name not in ("now", "escalate"))


def summary(state: dict) -> dict:
    """The index row of an incident: what a listing shows and when its clocks fall due.

    Due times of the running clocks do not depend on the moment they are asked at (only
    whether one is overdue does), so they are computed once per write."""
    offset = timedelta(seconds=state.get("sim_offset", 0))
    running = [c for c in clocks(state, parse_ts(state["started_at"]), messages=False) if c.met_at is None]
    due = sorted(iso_ms((c.due_at - offset).astimezone(timezone.utc)) for c in running)  # UTC texts: see overdue
    seen = state.get("breaches", {})
    messages = _messages(state, offset)
    first = min(filter(None, (due[0] if due else None, *_message_times(messages, offset))), default=None)
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
        "next_due_at": first,
        "notices": bool(state.get("notifications")),
        # only when true: an approval notice that failed, sent again by ``due``
        **({"approvals_unsent": True} if state.get("approval_notices") and state["status"] != "closed" else {}),
        # only when true, so that every row written before ladders existed stays current
        **({"ladders": True} if unacknowledged(state, running) or _message_ladder(state, messages) else {}),
        **({"messages": messages} if messages else {}),
        "clocks": _text([_kept(c, breach_key(c) in seen) for c in running]),
    }


def _messages(state: dict, offset: timedelta) -> dict | None:
    """The counts of the waiting messages' clocks, by the minute they fall due in (the
    incident's own time): ``waiting`` (no breach recorded yet) and ``late`` (recorded),
    and ``next``: the first minute with a waiting one, in real time. None without any."""
    from .inbound import tally

    counts = tally(state) if state["status"] != "closed" else []
    if not counts:
        return None
    waiting = [[minute, a] for minute, a, _ in counts if a]
    return {"next": iso_ms(parse_ts(waiting[0][0]) - offset) if waiting else None, "waiting": waiting,
            "late": [[minute, b] for minute, _, b in counts if b]}


def _message_times(messages: dict | None, offset: timedelta) -> tuple:
    """When the messages' counts next matter to ``due`` (real time): the first minute with
    one waiting, and the first with one late (overdue clocks stay due until they end)."""
    if not messages:
        return ()
    late = messages["late"]
    return messages["next"], late and iso_ms(parse_ts(late[0][0]) - offset)


def _message_ladder(state: dict, messages: dict | None) -> bool:
    """Whether a ladder nobody acknowledged may be climbing for a late message: one holds
    a message's breach while some waiting message's breach is recorded. (It may be
    another message's, answered since: then ``due`` opens the incident and climbs nothing.)"""
    if not messages or not messages["late"]:
        return False
    return any(lad["acked"] is None and any(b.startswith("message:") for b in lad["breaches"])
               for lad in (state.get("ladders") or {}).values())


def late_messages(row: dict) -> tuple[int, datetime | None]:
    """How many waiting messages of a summary have their breach recorded, and the start of
    the first minute one of them fell due in (the incident's own time)."""
    late = (row.get("messages") or {}).get("late") or []
    return sum(n for _, n in late), (parse_ts(late[0][0]) if late else None)


def _text(value) -> str:
    return canonical(value).decode("utf-8")


def _kept(c: ClockStatus, recorded: bool) -> list:
    # due_at in full (microseconds, offset), so that it round-trips exactly
    return [recorded, *(c.due_at.isoformat() if name == "due_at" else getattr(c, name) for name in KEPT)]


def running_clocks(row: dict, now: datetime) -> list[tuple[ClockStatus, bool]]:
    """(clock, breach recorded) of each running clock of a current summary, at ``now``
    (real time; a drill's clocks at its simulated time): equal to the unmet clocks
    engine.clocks.deadlines.clocks gives for the state at that moment, but for the escalation,
    which is left out."""
    moment = now + timedelta(seconds=row["sim_offset"])
    # positional (fast): key, label, due_at, met_at, now, escalate, then the rest of KEPT
    return [(ClockStatus(key, label, datetime.fromisoformat(due), met, moment, None, *rest), recorded)
            for recorded, key, label, due, met, *rest in json.loads(row["clocks"])]


def overdue(row: dict, now: datetime) -> int:
    """How many of the incident's running clocks are overdue at ``now`` (real time): each
    message's counted once its breach is recorded or the minute it fell due in is over."""
    due, messages = row["due"], row.get("messages")
    count = 0
    if messages:
        # minutes are in the incident's own time; a waiting one counts once it is over
        ended = iso_ms(now.astimezone(timezone.utc) + timedelta(seconds=row["sim_offset"] - 60))
        count = sum(n for _, n in messages["late"]) + sum(n for m, n in messages["waiting"] if m <= ended)
    if not due:
        return count
    # The due times are sorted UTC texts of one width (iso_ms, see summary), so text order
    # is time order: a listing of thousands bisects texts instead of parsing each time. A
    # due time equal to ``now``'s milliseconds is overdue when ``now`` is past them.
    text, exact = _moment(now)
    return count + (bisect_left if exact else bisect_right)(due, text)


@lru_cache(maxsize=4)
def _moment(now: datetime) -> tuple[str, bool]:
    """(``now`` as a due time's text, whether that text is exactly ``now``)."""
    return iso_ms(now.astimezone(timezone.utc)), now.microsecond % 1000 == 0


def rows(store, *, clocks: bool = True) -> list[dict]:
    """Every incident's summary, in creation order: from the index, or computed from the
    incident's state where it has no index row yet (or one of another shape). Without
    ``clocks`` the summaries may lack their ``clocks`` (what a listing never reads)."""
    from .state import current_state

    out = []
    for incident, row in store.summaries(clocks=clocks):
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
    :func:`engine.incidents.service.list_incidents`)."""
    out = [r for r in rows(store, clocks=False)
           if (include_closed or r["status"] != "closed")
           and (stage is None or r["stage"] == stage)
           and (playbook is None or r["playbook"] == playbook)]
    return sorted(out, key=lambda r: r["started_at"])
