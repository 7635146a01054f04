"""Escalation ladders: steps with delays, climbed and repeated until someone acknowledges.

A playbook's escalation may give ``ladder:`` steps instead of a one-off ``notify:``::

    escalate:
      ladder:
        - {after: 0m, notify: [incident_lead]}
        - {after: 15m, notify: [head_of_comms]}
        - {after: 30m, notify: [executive_on_call], repeat: 30m}

``after`` counts from the missed clock's due time. When a clock with a ladder is missed,
``EscalationApplied`` starts a ladder (its steps copied into the log, so the log alone
says what was due when). Each ``due`` run then records, inside the incident's write
transaction, every step whose time has come and that is not recorded yet
(``EscalationStepReached``, once each: concurrent or repeated runs record it once), and the
last step again every ``repeat``; a run after a long pause records the latest repeat only
(``skipped`` says how many it passed over). The ladder stops when someone acknowledges
(``EscalationAcknowledged``: ``playbook ack``) or once none of its missed clocks is overdue
any more (the message answered, the post published, the stage left, the incident closed).

Inbound messages share one ladder per incident: a message that waits too long while a
ladder for the incident's messages is climbing joins it instead of starting another, so
twelve unanswered tweets page the executive once, not twelve times.

A step names roles: a role of the playbook reaches the people holding it in the incident
(through ``escalation.ROLE`` or ``escalation`` destinations); a role nobody holds there,
or an on-call role, reaches who holds it in the roster now (engine.clocks.roster), through
their own destination. A role that none of these reach is recorded as *not delivered*, with
why, and ``due``, ``status`` and the log say so. A drill records its ladder but never pages.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from ..errors import NotFound, Refused, UsageError
from ..incidents.events import NewEvent, parse_iso, utc_now_iso
from .deadlines import breach_key, clocks

if TYPE_CHECKING:  # the roster module is loaded where a ladder is climbed, not by every status
    from .roster import Roster

SYSTEM = "system:clock"
MAX_NOTE = 1_000
#: the ladder all of an incident's inbound messages share
INBOUND = "inbound"


class Routes(NamedTuple):
    """Where notices can go: the destinations file and the on-call roster."""

    destinations: dict[str, list[str]]
    roster: Roster | None = None


# -- starting and joining a ladder (at a breach) -----------------------------------------


def ladder_data(state: dict, c, esc: dict, started: dict[str, str], now: datetime) -> dict:
    """The ``ladder`` of an ``EscalationApplied`` for missed clock `c`: a new ladder, or for
    an inbound message, joining the incident's climbing one. `started` maps a group to the
    ladder this batch of events started for it (the state does not hold it yet)."""
    group = INBOUND if c.kind == "message" else None
    if group is not None:
        joined = started.get(group) or next(
            (k for k, lad in state.get("ladders", {}).items()
             if lad.get("group") == group and lad["acked"] is None and _running(state, lad, now)), None)
        if joined is not None:
            started[group] = joined  # the rest of the batch joins it without looking again
            return {"key": joined, "joined": True}
        started[group] = breach_key(c)
    return {"key": breach_key(c), "group": group, "start_at": utc_now_iso(c.due_at),
            "steps": [dict(s) for s in esc["ladder"]]}


def _running(state: dict, lad: dict, now: datetime) -> bool:
    return any(c.overdue and breach_key(c) in lad["breaches"] for c in clocks(state, now))


# -- climbing -----------------------------------------------------------------------------


def climb_events(state: dict, now: datetime, at: str, routes: Routes | None,
                 new: list[NewEvent] = ()) -> list[NewEvent]:
    """The steps of the incident's ladders (those in `state` and those `new` events start)
    that are due at `now` and not recorded yet."""
    ladders = {k: dict(v, breaches=list(v["breaches"])) for k, v in state.get("ladders", {}).items()}
    for e in new:
        if e.type == "EscalationApplied" and e.data.get("ladder"):
            fold_ladder(ladders, e.data)
    if not ladders:
        return []
    overdue = {breach_key(c) for c in clocks(state, now) if c.overdue}
    events = []
    for key, lad in ladders.items():
        if lad["acked"] is not None or not overdue & set(lad["breaches"]):
            continue
        for step, rnd, skipped in due_steps(lad, now):
            events.append(_step_event(state, key, lad, step, rnd, skipped, now, at, routes))
    return events


def due_steps(lad: dict, now: datetime) -> list[tuple[int, int, int]]:
    """(step, round, rounds skipped) of each step of `lad` due at `now` and not reached."""
    elapsed = (now - parse_iso(lad["start_at"])).total_seconds()
    reached = {(r["step"], r["round"]) for r in lad["reached"]}
    steps, out = lad["steps"], []
    for i, step in enumerate(steps):
        if elapsed >= step["after"] and (i, 0) not in reached:
            out.append((i, 0, 0))
    last = steps[-1]
    if last["repeat"] and elapsed >= last["after"]:
        rnd = int((elapsed - last["after"]) // last["repeat"])
        before = max((r for s, r in reached if s == len(steps) - 1), default=0)
        if rnd >= 1 and rnd > before:
            out.append((len(steps) - 1, rnd, rnd - before - 1))
    return out


def _step_event(state, key, lad, step, rnd, skipped, now, at, routes) -> NewEvent:
    roles = lad["steps"][step]["notify"]
    notify, targets, undelivered = reach(state, roles, now, routes)
    return NewEvent("EscalationStepReached", at, SYSTEM, {
        "key": key, "clock": lad["clock"], "label": lad["label"], "step": step, "of": len(lad["steps"]),
        "round": rnd, "skipped": skipped, "notify": notify, "targets": targets, "undelivered": undelivered})


def reach(state: dict, roles: list[str], now: datetime, routes: Routes | None) -> tuple[dict, list, list]:
    """({role: people}, the roster's destination keys, why each unreached role is not reached).

    A role of the incident with people is reached through ``escalation.ROLE`` or
    ``escalation``; otherwise the roster's holders now, each through their destination (or
    ``escalation.ROLE``). A drill is never delivered, so nothing is reported undelivered."""
    dest = routes.destinations if routes else {}
    from .roster import Roster

    roster = routes.roster if routes and routes.roster else Roster()
    incident_roles = state["plan"]["roles"]
    notify: dict[str, list[str]] = {}
    targets: list[str] = []
    why: list[str] = []
    for role in roles:
        people = list(state["roles"].get(role, [])) if role in incident_roles else []
        if people:
            notify[role] = people
            if not (dest.get(f"escalation.{role}") or dest.get("escalation")):
                why.append(f"no destination for {role}")
            continue
        shifts = roster.holders(role, now)
        notify[role] = [s.person for s in shifts]
        if not shifts:
            where = "in the incident or the on-call roster" if role in incident_roles else "in the on-call roster"
            why.append(f"nobody holds {role} {where}")
            continue
        for s in shifts:
            if s.destination and dest.get(s.destination):
                targets.append(s.destination)
            elif not dest.get(f"escalation.{role}"):
                why.append(f"no destination for {role} ({s.person}"
                           + (f": {s.destination} is not in the destinations file)" if s.destination else ")"))
    return notify, list(dict.fromkeys(targets)), ([] if state["drill"] else why)


def unacknowledged(state: dict, running: list) -> bool:
    """Whether a ladder of the incident nobody acknowledged has a missed clock among the
    `running` (unmet) ones: kept in the incident's index row, so that ``due`` climbs only
    those incidents' ladders. A clock's breach key does not depend on the moment asked at."""
    ladders = state.get("ladders")
    if not ladders:
        return False
    keys = {breach_key(c) for c in running if c.met_at is None and c.closed_at is None}
    return any(lad["acked"] is None and keys & set(lad["breaches"]) for lad in ladders.values())


# -- acknowledging ------------------------------------------------------------------------


def climbing(state: dict, now: datetime) -> dict[str, dict]:
    """The incident's ladders that are climbing now (not acknowledged, a clock still overdue)."""
    ladders = state.get("ladders") or {}
    if not ladders:
        return {}
    overdue = {breach_key(c) for c in clocks(state, now) if c.overdue}
    return {k: lad for k, lad in ladders.items() if lad["acked"] is None and overdue & set(lad["breaches"])}


def ack_events(state: dict, actor: str, clock: str | None, note: str, now: datetime, at: str) -> list[NewEvent]:
    """`actor` acknowledging the incident's climbing ladders (or the one of `clock`), or
    Refused / NotFound. Who may: a member of the incident, or someone a step paged."""
    from ..incidents import policy
    from ..safetext import refuse_unsafe

    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise UsageError(f"--note: at most {MAX_NOTE} characters")
    refuse_unsafe("--note", note)
    paged = {p for lad in (state.get("ladders") or {}).values() for p in lad["paged"]}
    if policy.is_engine(actor) or actor not in paged:
        policy.require(state, actor, "acknowledge")
    active = climbing(state, now)
    if not active:
        raise Refused(f"incident {state['id']}: no escalation is climbing, so there is nothing to acknowledge",
                      ["playbook status " + state["id"] + " shows its clocks and escalations"])
    if clock is not None:
        wanted = f"message:{clock}" if clock[:1] == "M" and clock[1:].isdigit() else clock
        active = {k: lad for k, lad in active.items()
                  if wanted in (lad["clock"], *(b.split("@", 1)[0] for b in lad["breaches"]))}
        if not active:
            names = ", ".join(sorted({lad["clock"] for lad in climbing(state, now).values()}))
            raise NotFound(f"incident {state['id']}: clock {clock!r} has no climbing escalation "
                           f"(climbing: {names})")
    return [NewEvent("EscalationAcknowledged", at, actor, {
        "key": k, "clock": lad["clock"], "label": lad["label"], "note": note,
        "step": max((r["step"] for r in lad["reached"]), default=None)}) for k, lad in active.items()]


# -- folds (see engine.incidents.event_types) ------------------------------------------------


def fold_ladder(ladders: dict, d: dict) -> None:
    """An ``EscalationApplied``'s ladder into `ladders` (started, or a breach joining one)."""
    lad = d["ladder"]
    if lad.get("joined"):
        ladders[lad["key"]]["breaches"].append(d["key"])
        return
    ladders[lad["key"]] = {"clock": d["clock"], "label": d["label"], "group": lad.get("group"),
                           "start_at": lad["start_at"], "steps": lad["steps"], "breaches": [d["key"]],
                           "reached": [], "acked": None, "paged": [], "undelivered": []}


def fold_step(s: dict, at: str, actor: str, d: dict) -> None:
    lad = s["ladders"][d["key"]]
    lad["reached"].append({"step": d["step"], "round": d["round"], "at": at})
    lad["paged"] = sorted({*lad["paged"], *(p for ps in d["notify"].values() for p in ps)})
    lad["undelivered"] = list(d["undelivered"])
    if any(d["notify"].values()) or d["targets"]:
        s.setdefault("notifications", {})[f"{d['key']}#{d['step']}.{d['round']}"] = {
            "label": d["label"], "notify": d["notify"], "delivered_to": [], "targets": list(d["targets"]),
            "ladder": d["key"],  # once it is acknowledged, a notice not sent yet is not retried
            "step": f"step {d['step'] + 1} of {d['of']}" + (f", repeat {d['round']}" if d["round"] else "")}


def fold_ack(s: dict, at: str, actor: str, d: dict) -> None:
    s["ladders"][d["key"]]["acked"] = {"by": actor, "at": at, "note": d.get("note", "")}


def describe_step(d: dict) -> str:
    who = "; ".join(f"{r} ({', '.join(ps) or 'nobody'})" for r, ps in d["notify"].items())
    head = (f"escalation step {d['step'] + 1} of {d['of']}" + (f" (repeat {d['round']})" if d["round"] else "")
            + f" for {d['label']}")
    if d["undelivered"]:
        return f"{head}: NOT DELIVERED: {'; '.join(d['undelivered'])} (notify {who})"
    return f"{head}: notify {who}"


def describe_ack(d: dict) -> str:
    return f"acknowledged the escalation for {d['label']}" + (f": {d['note']}" if d.get("note") else "")


# -- how it reads --------------------------------------------------------------------------


def status_lines(state: dict, now: datetime) -> list[str]:
    """Each ladder of the incident in a line or two (for ``status``)."""
    from ..format.durations import format_duration

    out = []
    active = climbing(state, now)
    for key, lad in (state.get("ladders") or {}).items():
        last = lad["reached"][-1] if lad["reached"] else None
        steps = lad["steps"]
        where = (f"step {last['step'] + 1} of {len(steps)} reached at {last['at']}"
                 f" ({', '.join(steps[last['step']]['notify'])})" if last else "no step reached yet")
        if lad["acked"]:
            state_text = f"acknowledged by {lad['acked']['by']} at {lad['acked']['at']}"
        elif key in active:
            nxt = _next_at(lad, now)
            state_text = ("CLIMBING, not acknowledged" + (f"; next step at {utc_now_iso(nxt)}" if nxt else "")
                          + f" (playbook ack {state['id']})")
        else:
            state_text = "stopped: no longer overdue"
        repeat = steps[-1]["repeat"]
        out.append(f"  {lad['label']:<34} {where}; {state_text}"
                   + (f"; repeats every {format_duration(timedelta(seconds=repeat))}" if repeat and key in active else ""))
        for why in lad["undelivered"]:
            out.append(f"  !! not delivered: {why}")
    return out


def ladders_json(state: dict, now: datetime) -> list[dict]:
    """Each ladder of the incident as ``status --json`` and the API show it."""
    active = climbing(state, now)
    out = []
    for key, lad in (state.get("ladders") or {}).items():
        nxt = _next_at(lad, now) if key in active else None
        out.append({"clock": lad["clock"], "label": lad["label"], "started_at": lad["start_at"],
                    "steps": lad["steps"], "reached": lad["reached"], "climbing": key in active,
                    "acknowledged": lad["acked"], "next_step_at": utc_now_iso(nxt) if nxt else None,
                    "undelivered": lad["undelivered"]})
    return out


def _next_at(lad: dict, now: datetime) -> datetime | None:
    start = parse_iso(lad["start_at"])
    reached = {r["step"] for r in lad["reached"]}
    for i, step in enumerate(lad["steps"]):
        if i not in reached:
            return start + timedelta(seconds=step["after"])
    last = lad["steps"][-1]
    if not last["repeat"]:
        return None
    rounds = max(r["round"] for r in lad["reached"] if r["step"] == len(lad["steps"]) - 1)
    return start + timedelta(seconds=last["after"] + (rounds + 1) * last["repeat"])
