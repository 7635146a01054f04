"""Missed clocks: record each breach once and apply the playbook's escalation.

``check`` runs from ``playbook due`` (cron, monitoring) or ``playbook watch``. Inside
each incident's write transaction it compares the running clocks with ``now``;
a clock that is overdue and not yet recorded for that due time gets one
``DeadlineBreached`` event, so checking twice records one breach. The clock's
escalation is then applied and logged: the roles to notify (and the people
holding them) in ``EscalationApplied``, and a move to the escalation stage through
the playbook's own transition (its guards still apply; only the role check is
waived, because the playbook itself is acting). A notice that no destination can
carry is recorded as not delivered (``undelivered``), so that nobody reads it as sent.
An escalation with a ladder starts it instead, and the same transaction climbs the
incident's ladders (engine.clocks.ladder).
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from ..incidents import state as inc
from ..incidents import policy
from ..incidents.events import NewEvent, utc_now_iso
from ..incidents.index import SUMMARY_VERSION, late_messages, running_clocks
from .deadlines import ClockStatus, breach_key, clocks
from .ladder import Routes, unacknowledged

#: The actor recorded for what the clock does by itself.
SYSTEM = "system:clock"


class DueItem(NamedTuple):
    incident: str
    title: str
    drill: bool
    clock: ClockStatus
    recorded: bool = False  # an overdue clock whose breach is in the log already
    ladder: bool = False  # the incident has an escalation ladder not acknowledged yet
    count: int | None = None  # the late messages' item: how many (see late_item)

    def to_json(self) -> dict:
        return {"incident": self.incident, "title": self.title, "drill": self.drill, **self.clock.to_json(),
                **({"count": self.count} if self.count is not None else {})}


#: The key of an incident's one item for its late messages (see :func:`late_item`).
LATE_MESSAGES = "messages:late"


def late_item(incident: str, title: str, drill: bool, count: int, due_at, moment, ladder: bool,
              recorded: bool = True) -> DueItem:
    """One item for the `count` overdue waiting messages of an incident (a burst can leave
    thousands: they are one line, not thousands), overdue since the minute the first of
    them fell due (`due_at`); `recorded`: the breach of every one is in the log already."""
    label = "1 message past its reply target" if count == 1 else f"{count} messages past their reply target"
    clock = ClockStatus(LATE_MESSAGES, label, due_at, None, moment, None,
                        kind="messages", anchor="the first of them posted")
    return DueItem(incident, title, drill, clock, recorded, ladder, count)


def due(store, now, within_seconds: int = 0, incident: str | None = None) -> list[DueItem]:
    """Every open incident's (or one incident's) unmet clocks overdue or due within the window.

    Only the incidents the index says are due by then (engine.incidents.index; and those it does
    not know yet) are looked at, in one index range, and their clocks come from their
    index rows: a projection is parsed only for an incident without a current row."""
    from ..store.base import collector_paused

    # a second of margin: the index stores milliseconds; the clocks below decide
    horizon = utc_now_iso(now + timedelta(seconds=within_seconds + 1))
    rows = store.due_summaries(horizon) if incident is None else [(incident, None)]
    with collector_paused():  # thousands of clocks and items, no cycles among them
        return sorted(_items(store, rows, now, within_seconds, horizon), key=lambda i: i.clock.due_at)


def _items(store, rows, now, within_seconds: int, horizon: str) -> list[DueItem]:
    items = []
    for iid, row in rows:
        if row is not None and row.get("v") == SUMMARY_VERSION:
            found = _from_row(row, now, within_seconds, horizon)
            if found is not None:
                items.extend(found)
                continue
        snap = store.snapshot(iid)
        if snap is None:
            continue
        items.extend(_from_state(inc.current_state(store, snap), now, within_seconds))
    return items


def _from_row(row: dict, now, within_seconds: int, horizon: str) -> list[DueItem] | None:
    """The items of a current index row; None where the incident must be read in full: a
    message of it falls due by `horizon` (its breach may be new), or the row is damaged."""
    try:
        messages = row.get("messages")
        if messages and messages["next"] is not None and messages["next"] <= horizon:
            return None
        climbing = bool(row.get("ladders"))  # a row written before ladders existed: none
        found = [DueItem(row["id"], row["title"], row["drill"], c, c.overdue and recorded, climbing)
                 for c, recorded in running_clocks(row, now) if c.left.total_seconds() <= within_seconds]
        count, first = late_messages(row)
        if count:
            moment = now + timedelta(seconds=row["sim_offset"])
            found.append(late_item(row["id"], row["title"], row["drill"], count, first, moment, climbing))
        return found
    except (LookupError, TypeError, ValueError):  # a damaged row (verify names it): read in full
        return None


def _from_state(state: dict, now, within_seconds: int) -> list[DueItem]:
    """The items of an incident read in full: its overdue messages as one item, as the row gives."""
    seen = state.get("breaches", {})
    running = clocks(state, inc.effective_now(state, now))
    climbing = unacknowledged(state, running)
    items, late, recorded = [], [], True
    for c in running:
        if c.met_at is None and c.left.total_seconds() <= within_seconds:
            if c.overdue and c.kind == "message":
                late.append(c)
                recorded = recorded and breach_key(c) in seen
            else:
                items.append(DueItem(state["id"], state["title"], state["drill"], c,
                                     c.overdue and breach_key(c) in seen, climbing))
    if late:
        first = min(c.due_at for c in late).replace(second=0, microsecond=0)  # as the row's minutes
        items.append(late_item(state["id"], state["title"], state["drill"], len(late), first, late[0].now,
                               climbing, recorded))
    return items


def record(store, clock, items: list[DueItem], routes: Routes | None = None,
           climbed: list[dict] | None = None) -> list[dict]:
    """Record breaches (once each), apply escalations and climb escalation ladders (see
    engine.clocks.ladder; `routes`: the destinations and roster that say who is reachable,
    None in a drill); return what was newly recorded, and add the ladder steps reached to
    `climbed`."""
    recorded: list[dict] = []
    climbed = [] if climbed is None else climbed
    # an incident whose overdue clocks are all recorded already (and whose ladders are not
    # climbing) gets no write transaction; the others' transactions share commits (a first
    # run after an outage can be thousands)
    with store.grouped():
        for incident in sorted({i.incident for i in items if i.clock.overdue and (not i.recorded or i.ladder)}):
            _record_one(store, clock, incident, recorded, routes, climbed)
    return recorded


def _record_one(store, clock, incident: str, recorded: list[dict], routes, climbed: list[dict]) -> None:
    """Record one incident's new breaches, apply their escalations and climb its ladders, in
    its own transaction."""
    from ..incidents.act import act
    from .ladder import climb_events

    # this incident's reports go after everyone else's; a retried transaction builds again,
    # and what it reports is the last build's (cut back to here: not a scan of the list)
    mine, climbing = len(recorded), len(climbed)

    def build(state):
        policy.require(state, SYSTEM, "record_due")
        now = inc.effective_now(state, clock.now())
        at = utc_now_iso(now)
        seen = state.get("breaches", {})
        events, started, found, messages = [], {}, [], []
        for c in clocks(state, now):
            if not c.overdue or breach_key(c) in seen:
                continue
            events.append(NewEvent("DeadlineBreached", at, SYSTEM, {
                "clock": c.key, "label": c.label, "key": breach_key(c),
                "due_at": utc_now_iso(c.due_at), "detected_at": at,
                "overdue_seconds": int(-c.left.total_seconds()),
            }))
            found.append({"incident": state["id"], "clock": c.key, "label": c.label})
            if c.escalate and c.kind == "message" and not _laddered(state, c):
                messages.append((c, found[-1]))  # one escalation for all of them, below
            elif c.escalate:
                _escalated(events, found[-1], _escalate(state, c, at, routes, started, now))
        if messages:  # a burst: one notice saying how many, not one per message; named by the first due
            (c, first), more = min(messages, key=lambda m: (m[0].due_at, len(m[0].key), m[0].key)), len(messages) - 1
            label = f"{c.label} and {more} other message(s)" if more else c.label
            _escalated(events, first, _escalate(state, c._replace(label=label), at, routes, started, now))
        steps = climb_events(state, now, at, routes, events)
        del recorded[mine:], climbed[climbing:]
        recorded.extend(found)
        climbed.extend({"incident": state["id"], "drill": state["drill"], **{k: e.data[k] for k in (
            "clock", "label", "step", "of", "round", "notify", "undelivered")}} for e in steps)
        return events + steps
    act(store, incident, build)


def _spec(state: dict, c: ClockStatus) -> dict:
    """The escalation that applies to missed clock `c` at the incident's severity."""
    return c.escalate.get("by_severity", {}).get(state["severity"], c.escalate)


def _laddered(state: dict, c: ClockStatus) -> bool:
    return bool(_spec(state, c).get("ladder"))


def _escalated(events: list[NewEvent], found: dict, escalation: list[NewEvent]) -> None:
    if escalation[0].data.get("undelivered"):
        found["undelivered"] = escalation[0].data["undelivered"]
    events.extend(escalation)


def _escalate(state: dict, c: ClockStatus, at: str, routes=None, started=None, now=None) -> list[NewEvent]:
    from .ladder import ladder_data

    policy.require(state, SYSTEM, "escalate")
    esc = _spec(state, c)
    people = {role: state["roles"].get(role, []) for role in esc["notify"]}
    data = {"clock": c.key, "key": breach_key(c), "label": c.label, "notify": people, "move_to": esc["move_to"]}
    if esc.get("ladder"):
        data["ladder"] = ladder_data(state, c, esc, {} if started is None else started, now or c.now)
    elif routes is not None and not state["drill"]:
        # said loudly instead of "escalated: notify ..." when no notice can go anywhere
        dest = routes.destinations
        undelivered = [f"no destination for {role}" for role in esc["notify"]
                       if not (dest.get(f"escalation.{role}") or dest.get("escalation"))]
        if undelivered:
            data["undelivered"] = undelivered
    events = [NewEvent("EscalationApplied", at, SYSTEM, data)]
    target = esc["move_to"]
    if target and target != state["stage"] and not inc.is_closed(state):
        plan = state["plan"]
        blocked = {}
        for trigger, tr in plan["transitions"].items():  # the first open one, in playbook order
            if tr["to"] == target and state["stage"] in tr["from"]:
                # the playbook acts: no role check; the reasons go into the log, so no hints
                unmet = inc.blockers(state, trigger, None, hints=False)
                if not unmet:
                    events.append(NewEvent("StageChanged", at, SYSTEM, {
                        "trigger": trigger, "from": state["stage"], "to": target,
                        "reason": f"escalation: {c.label} overdue"}))
                    break
                blocked[trigger] = unmet
        else:
            for trigger, unmet in blocked.items():
                events.append(NewEvent("EscalationBlocked", at, SYSTEM,
                                       {"clock": c.key, "trigger": trigger, "reasons": unmet}))
    return events


def notify(store, clock, destinations: dict[str, list[str]], rows=None) -> list[dict]:
    """Send pending escalation notices through the configured destinations.

    Destinations (the same file as for posts) ``escalation`` receive every notice,
    ``escalation.ROLE`` the notices for that role. Each attempt is logged; a failed
    one is tried again at the next check. Drills never notify anyone.
    """
    from ..posts.delivery import redact, send
    from ..incidents.act import act

    urls_for = lambda roles, keys=(): list(dict.fromkeys(  # noqa: E731 - small and local
        destinations.get("escalation", []) + [u for r in roles for u in destinations.get(f"escalation.{r}", [])]
        + [u for k in keys for u in destinations.get(k, [])]))
    report: list[dict] = []
    # only incidents that have escalation notices (or that the index does not know yet);
    # `rows`: the index summaries, when the caller has read them already
    for incident, row in (store.summaries(clocks=False) if rows is None else rows):
        if row is not None and (row["drill"] or not row.get("notices")):
            continue
        snap = store.snapshot(incident)
        if snap is None:
            continue
        state = inc.current_state(store, snap)
        if state["drill"]:
            continue
        for key, pending in state.get("notifications", {}).items():
            if pending.get("ladder") and state["ladders"][pending["ladder"]]["acked"]:
                continue  # someone has it: a failed page is not sent again
            urls = [u for u in urls_for(pending["notify"], pending.get("targets", ()))
                    if redact(u) not in pending["delivered_to"]]
            if not urls:
                continue
            people = "; ".join(f"{r}: {', '.join(p) or 'nobody assigned'}" for r, p in pending["notify"].items())
            step = f" Escalation {pending['step']}: acknowledge with playbook ack {state['id']}." \
                if pending.get("step") else ""
            message = (f"[{state['id']}] MISSED: {pending['label']}. Escalated to {people}.{step} "
                       f"Incident: {state['title']} (stage {state['stage']}).")
            attempts = [send(u, {"subject": f"[{state['id']}] missed: {pending['label']}", "body": message})
                        for u in urls]

            def build(current, key=key, attempts=attempts):
                at = utc_now_iso(inc.effective_now(current, clock.now()))
                return [NewEvent("EscalationNotified", at, SYSTEM, {
                    "key": key, "target": a.target, "ok": a.ok, "error": a.error}) for a in attempts]
            act(store, state["id"], build)
            report += [{"incident": state["id"], "label": pending["label"], "target": a.target,
                        "ok": a.ok, "error": a.error} for a in attempts]
    return report
