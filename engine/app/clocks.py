"""Use cases on clocks: what is due, drills and their simulated clocks.

"A drill never pages anyone" is decided here: a drill's overdue clock is listed but
does not count towards :attr:`Due.overdue`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..incidents.policy import scope_of
from .context import App, acting
from .principal import Principal


@dataclass(frozen=True)
class Due:
    items: list  # engine.clocks.breaches.DueItem, most urgent first
    recorded: list[dict]  # deadlines newly recorded as missed
    notified: list[dict]  # notices sent (or failed) for escalations
    #: real incidents' overdue clocks (drills excluded)
    overdue: int
    #: escalation ladder steps newly reached: incident, label, step, of, round, notify, undelivered
    climbed: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"items": [i.to_json() for i in self.items], "recorded": self.recorded, "notified": self.notified,
                "climbed": self.climbed}


def due(app: App, who: Principal, within_seconds: int = 0, *, record: bool = True) -> Due:
    """What is due or overdue across open incidents. With `record`, missed deadlines
    are recorded once and escalations applied by the engine itself (``system:``), and
    notices sent to the configured destinations: `who` asks for the check (a token needs
    the act scope to record, read to look)."""
    if app.remote is not None:
        return app.remote.due(within_seconds, record=record)
    from ..clocks import breaches
    from .releases import destinations

    with acting(who, "act" if record else "read"):
        return _due(app, within_seconds, record, breaches, destinations)


def _due(app: App, within_seconds: int, record: bool, breaches, destinations) -> Due:
    store = app.store(read_only=True, writes=record)
    now = app.clock.now()
    items = breaches.due(store, now, within_seconds)
    climbed: list[dict] = []
    targets = {}
    if record:
        targets = destinations(app)
        recorded = breaches.record(store, app.clock, items, routes(app, targets), climbed)
    else:
        recorded = []
    notices = []
    if targets:  # one read of the index (after the breaches recorded above) for both kinds of notice
        from .releases import resend_notices

        rows = store.summaries(clocks=False)
        notices = breaches.notify(store, app.clock, targets, rows)
        if record:  # approval notices that failed earlier, sent again
            notices += [{**n, "label": "approval request (sent again)"} for n in resend_notices(app, targets, rows)]
    overdue = sum(i.count or 1 for i in items if i.clock.overdue and not i.drill)  # each late message counts
    return Due(items, recorded, notices, overdue, climbed)


def routes(app: App, targets: dict):
    """Who escalation notices can reach: the destinations, and the on-call roster (read
    only when a ladder may need it: its file exists)."""
    from ..clocks.ladder import Routes
    from ..clocks.roster import load_roster

    return Routes(targets, load_roster(app.config.roster) if app.config.roster is not None else None)


@dataclass(frozen=True)
class Acknowledged:
    state: dict
    #: the escalations acknowledged: clock, label, step (the last step reached, 0-based)
    acknowledged: list[dict]

    def to_json(self) -> dict:
        return {"acknowledged": self.acknowledged}


def acknowledge(app: App, who: Principal, incident: str, clock: str | None = None, note: str = "") -> Acknowledged:
    """Stop the incident's climbing escalation ladders (or the one of `clock`): a member of
    the incident, or someone a step paged, says they have it (engine.clocks.ladder)."""
    if app.remote is not None:
        return app.remote.acknowledge(incident, clock, note)
    from ..clocks.ladder import ack_events
    from ..incidents import state as inc
    from ..incidents.act import act, event_time

    made: list = []
    with acting(who, scope_of("acknowledge")) as actor:
        def build(state):
            made[:] = ack_events(state, actor, clock, note, inc.effective_now(state, app.clock.now()),
                                 event_time(app.clock, state))
            return made
        state = act(app.store(), incident, build)
    return Acknowledged(state, [{k: e.data[k] for k in ("clock", "label", "step")} for e in made])


def advance_clock(app: App, who: Principal, incident: str, seconds: int) -> dict:
    """Move a drill's simulated clock: {state, recorded, injects} (engine.clocks.drills)."""
    if app.remote is not None:
        return app.remote.advance_clock(incident, seconds)
    from ..clocks.drills import advance_clock as advance

    with acting(who, scope_of("advance_clock")) as actor:
        return advance(app.store(), app.clock, actor, incident, seconds)


def drill_summary(app: App, who: Principal, incident: str) -> dict:
    if app.remote is not None:
        return app.remote.drill_summary(incident)
    from ..clocks.drills import summary

    with acting(who, "read"):
        return summary(app.store(read_only=True), incident, app.clock.now())


def on_call(app: App, who: Principal, at=None) -> list[dict]:
    """Who holds each on-call role of the roster at `at` (default now), and whether a
    destination reaches them: role, person, destination, reachable, shift (range, week,
    standing), until. A role nobody holds then is listed with person None."""
    from ..errors import UsageError

    if app.remote is not None:
        raise UsageError("the on-call roster is kept beside the team server's database; "
                         "run playbook roster on the server")
    from ..clocks.roster import load_roster
    from ..incidents.events import utc_now_iso
    from .releases import destinations

    with acting(who, "read"):
        roster = load_roster(app.config.roster) if app.config.roster is not None else None
        if roster is None or not roster.shifts:
            return []
        targets = destinations(app)
        moment = at or app.clock.now()
        rows = []
        for role in roster.roles:
            shifts = roster.holders(role, moment)
            rows.extend({"role": role, "person": s.person, "destination": s.destination,
                         "reachable": bool((s.destination and targets.get(s.destination))
                                           or targets.get(f"escalation.{role}")),
                         "shift": s.kind, "until": utc_now_iso(s.end) if s.end else None} for s in shifts)
            if not shifts:
                rows.append({"role": role, "person": None, "destination": None, "reachable": False,
                             "shift": None, "until": None})
        return rows
