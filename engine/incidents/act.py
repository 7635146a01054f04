"""How a use case acts on one incident: read its state, build events, append them.

Every command that writes goes through :func:`act`: inside the store's write
transaction it reads the incident's current state, asks `build` for the events
(`build` raises to refuse, and then nothing is appended), folds them and appends
them with the new projection. :func:`event_time` is the timestamp an event of that
incident carries (a drill's simulated time), :func:`read_state` the state a read
sees. Who may act is asked of :mod:`engine.incidents.policy` inside `build`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from ..errors import NotFound
from . import state as inc
from .events import NewEvent, utc_now_iso
from .index import summary
from .reading import authenticated_as, read_state  # noqa: F401  (their home is engine.incidents.reading)


def stamped(events: list[NewEvent]) -> list[NewEvent]:
    """`events` with ``auth`` (how their actor was authenticated) in the data of those
    the authenticated principal caused; unchanged for an asserted name. An event that
    already says how (a signature) keeps what it says."""
    who = authenticated_as.get()
    if who is None:
        return events
    return [replace(e, data={**e.data, "auth": who.auth}) if e.actor == who.name and "auth" not in e.data
            else e for e in events]


def event_time(clock, state: dict) -> str:
    """Timestamp for an event of this incident (simulated time for a drill)."""
    return utc_now_iso(inc.effective_now(state, clock.now()))


def apply_all(state: dict | None, events: list[NewEvent]) -> dict:
    """`state` after `events`, folded as the log will fold them. The caller's state is
    copied once, then the copy is folded in place (not one copy per event)."""
    ours = False
    for e in events:
        state = inc.apply(state, e.type, e.at, e.actor, e.data, in_place=ours)
        ours = state is not None
    return state


def act(store, incident: str, build: Callable[[dict], list[NewEvent]], *, from_log: bool = False,
        read: Callable[[dict], object] = inc.plain):
    """Run `build` on the incident's state under the write lock and append its events;
    return `read` of the state after them (by default the whole state, read inside the
    transaction; a command on an incident of thousands of messages that shows one of
    them reads only that one).

    With `from_log` (the commands that release text), that state is folded from the log
    and every logged event replayed through the rules (engine.audit.rules) inside the same
    transaction, so an edited projection or a logged action the rules refuse stops the
    command instead of being relied on."""
    with store.transaction(incident) as tx:
        if tx.snapshot is None:
            raise NotFound(f"no incident {incident!r} in this database (see: playbook list --all)")
        if from_log:
            current = checked_state(store, incident, tx.snapshot.state)
        else:
            current = inc.current_state(store, tx.snapshot)
        events = stamped(build(current))
        if not events:
            return read(current)
        state = apply_all(current, events)
        tx.append(events, state, summary(state))
        return read(state)  # inside the transaction: what the caller shows


def checked_state(store, incident: str, projection: dict) -> dict:
    """The incident's state folded from its log, after checking that every logged event
    obeys the rules and that the stored projection agrees (when it has this version's
    shape; an older one is simply replaced); IntegrityError otherwise."""
    from ..errors import IntegrityError
    from .events import canonical
    from ..audit.rules import audit

    state, problems = audit(store.events(incident))
    if problems:
        shown = problems[:5] + ([f"... and {len(problems) - 5} more"] if len(problems) > 5 else [])
        raise IntegrityError(f"incident {incident}: its log records actions the rules refuse, so nothing "
                             "is released; run playbook verify:\n" + "\n".join(f"  - {p}" for p in shown))
    if state is None or (inc.is_current(projection) and canonical(state) != canonical(inc.plain(projection))):
        raise IntegrityError(f"incident {incident}: its stored state differs from the state folded from its "
                             "log (edited?), so nothing is released; run playbook verify")
    return state
