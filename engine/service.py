"""The incident use cases: start, assign, tasks, notes, inputs, advance, close, reopen.

Each function takes the store, the clock and the acting person as arguments, checks
the incident's current state inside the store's write transaction, and appends
events. Nothing else writes state. A refused action raises before anything is
appended, so it changes nothing.
"""

from __future__ import annotations

from typing import Callable

from . import incident as inc
from .errors import NotFound, Refused, UsageError
from .events import NewEvent, utc_now_iso

MAX_NOTE = 10_000
MAX_TITLE = 200


def _at(clock, state: dict) -> str:
    """Timestamp for an event of this incident (simulated time for a drill)."""
    return utc_now_iso(inc.effective_now(state, clock.now()))


def _apply_all(state: dict | None, events: list[NewEvent]) -> dict:
    for e in events:
        state = inc.apply(state, e.type, e.at, e.actor, e.data)
    return state


def _act(store, incident: str, build: Callable[[dict], list[NewEvent]], *, from_log: bool = False) -> dict:
    """Run `build` on the incident's state under the write lock and append its events.

    With `from_log` (the commands that release text), that state is folded from the log
    and every logged event replayed through the rules (engine.rules) inside the same
    transaction, so an edited projection or a logged action the rules refuse stops the
    command instead of being relied on."""
    with store.transaction(incident) as tx:
        if tx.snapshot is None:
            raise NotFound(f"no incident {incident!r} in this database (see: playbook list --all)")
        if from_log:
            current = checked_state(store, incident, tx.snapshot.state)
        else:
            current = inc.current_state(store, tx.snapshot)
        events = build(current)
        if not events:
            return current
        state = _apply_all(current, events)
        tx.append(events, state)
    return state


def checked_state(store, incident: str, projection: dict) -> dict:
    """The incident's state folded from its log, after checking that every logged event
    obeys the rules and that the stored projection agrees (when it has this version's
    shape; an older one is simply replaced); IntegrityError otherwise."""
    from .errors import IntegrityError
    from .events import canonical
    from .rules import audit

    state, problems = audit(store.events(incident))
    if problems:
        shown = problems[:5] + ([f"... and {len(problems) - 5} more"] if len(problems) > 5 else [])
        raise IntegrityError(f"incident {incident}: its log records actions the rules refuse, so nothing "
                             "is released; run playbook verify:\n" + "\n".join(f"  - {p}" for p in shown))
    if state is None or (inc.is_current(projection) and canonical(state) != canonical(projection)):
        raise IntegrityError(f"incident {incident}: its stored state differs from the state folded from its "
                             "log (edited?), so nothing is released; run playbook verify")
    return state


def _require_open(state: dict, action: str) -> None:
    if inc.is_closed(state):
        raise Refused(f"incident {state['id']} is closed (stage {state['stage']}); cannot {action}",
                      ["reopen it first, if the playbook allows: playbook reopen " + state["id"]])


def _require_manager(state: dict, actor: str, action: str) -> None:
    """Only holders of the playbook's managing roles change who holds what."""
    plan = state["plan"]
    managers = plan.get("managers") or [
        r for r in plan["roles"] if any(r in tr["roles"] for tr in plan["transitions"].values())]
    if not set(managers) & set(inc.roles_of(state, actor)):
        raise Refused(f"incident {state['id']}: only holders of {', '.join(managers)} may {action}; "
                      f"{actor} holds {', '.join(inc.roles_of(state, actor)) or 'no role'}")


def _require_member(state: dict, actor: str, action: str) -> None:
    if not inc.roles_of(state, actor):
        raise Refused(f"incident {state['id']}: {actor} holds no role in this incident and "
                      f"cannot {action}", ["ask the incident lead to assign you a role"])


# -- start ----------------------------------------------------------------------


def start(store, clock, actor: str, loaded, *, title: str, severity: str | None = None,
          inputs: dict[str, str] | None = None, assign: dict[str, str] | None = None,
          drill: bool = False, scenario: list[dict] | None = None, region: str | None = None) -> dict:
    """Create an incident from a loaded playbook; pin its exact text; return its state.

    `region` (PLAYBOOK_REGION) is the organisation's country for reading phone numbers,
    used when the playbook names none; the incident keeps it in its plan."""
    from .inputs import resolve
    from .plan import compile_plan

    from .safetext import refuse_unsafe

    pb = loaded.playbook
    problems: list[str] = []  # every problem of the command in one run, not one per try
    title = title.strip()
    if not title or len(title) > MAX_TITLE:
        problems.append(f"--title must be 1 to {MAX_TITLE} characters")
    else:
        try:
            refuse_unsafe("--title", title, one_line=True)
        except UsageError as e:
            problems.append(e.message)
    severity = severity or pb.severities[-1]
    if severity not in pb.severities:
        problems.append(f"severity {severity!r} is not one of {', '.join(pb.severities)}")
    plan = compile_plan(pb, loaded.sha256)
    plan["order"] = inc.plan_order(plan)  # survives storage, which sorts mapping keys
    if plan["region"] is None and region:
        import phonenumbers

        if region.strip().upper() not in phonenumbers.SUPPORTED_REGIONS:
            problems.append(f"PLAYBOOK_REGION: unknown region {region!r}: give an ISO 3166 country "
                            "code such as US, GB or ES")
        else:
            plan["region"] = region.strip().upper()
    values = resolve(plan["inputs"], inputs or {}, fill_defaults=True, now=clock.now(), problems=problems)
    people = _assignments(plan, assign or {}, problems, others=[actor])
    missing = [r for r, spec in plan["roles"].items() if spec["required"] and r not in people]
    if missing:
        flags = " ".join(f"--assign {r}=NAME" for r in missing)
        problems.append(f"roles required to start are not filled: {', '.join(missing)} (give {flags})")
    if problems:
        raise UsageError(problems[0] if len(problems) == 1 else
                         f"cannot start: {len(problems)} problems\n" + "\n".join(f"  - {p}" for p in problems))

    now = utc_now_iso(clock.now())
    day = now[:10].replace("-", "")
    prefix = f"{'DRILL' if drill else 'INC'}-{day}-"
    taken = store.count_incidents(prefix)  # a hint: the loop below checks each id under its lock
    for n in range(taken + 1, taken + 1000):
        incident = f"{prefix}{n:03d}"
        with store.transaction(incident) as tx:
            if tx.snapshot is not None:
                continue  # someone started one at the same moment: take the next number
            events = [NewEvent("IncidentStarted", now, actor, {
                "incident": incident,
                "title": title,
                "severity": severity,
                "drill": drill,
                "inputs": values,
                "playbook": {"id": pb.id, "version": pb.version, "sha256": loaded.sha256,
                             "path": loaded.path, "text": loaded.text},
                "plan": plan,
                **({"scenario": scenario} if drill and scenario else {}),
            })]
            events += [NewEvent("RoleAssigned", now, actor, {"role": r, "person": p})
                       for r, p in people.items()]
            events += [NewEvent("InjectDelivered", now, actor, {"index": i, "message": inject["message"],
                                                                 "scheduled_at": now})
                       for i, inject in enumerate(scenario or []) if drill and inject["at_seconds"] == 0]
            state = _apply_all(None, events)
            tx.append(events, state)
            return state
    raise Refused("could not allocate an incident id; try again")  # pragma: no cover


def _assignments(plan: dict, assign: dict[str, str], problems: list[str] | None = None,
                 others=()) -> dict[str, str]:
    """Checked role -> person; a person may not look like another (in `others`, or another
    person assigned here) without being them. Problems go to `problems` when given."""
    from .names import check_person, lookalike

    found, checked = [], {}
    for role, person in assign.items():
        if role not in plan["roles"]:
            found.append(f"unknown role {role!r} (this playbook's roles: {', '.join(plan['roles'])})")
            continue
        try:
            checked[role] = check_person(f"--assign {role}=", person)
        except UsageError as e:
            found.append(e.message)
    known = set(others)
    for role, person in list(checked.items()):
        twin = lookalike(person, known)
        if twin is not None:
            found.append(f"--assign {role}={person!r} looks like {twin!r}, who is already in "
                         "this incident: give the same spelling for the same person, or a "
                         "name that can be told apart")
            del checked[role]
        else:
            known.add(person)
    if problems is not None:
        problems.extend(found)
    elif found:
        raise UsageError(found[0])
    return checked


# -- people, tasks, notes, inputs -------------------------------------------------


def assign_events(state: dict, actor: str, role: str, person: str, at: str) -> list[NewEvent]:
    """`actor` giving `role` to `person`, or Refused (also replayed by verify)."""
    _require_open(state, "assign roles")
    _require_manager(state, actor, "assign roles")
    from .names import people

    _assignments(state["plan"], {role: person}, others=people(state))
    if person.strip() in state["roles"].get(role, []):
        granted_by = state.get("granted", {}).get(role, {}).get(person.strip())
        if not (granted_by == person.strip() and actor != person.strip()):
            raise Refused(f"incident {state['id']}: {person} already holds {role}")
        # another manager confirms a self-granted role: recorded as a new grant
    return [NewEvent("RoleAssigned", at, actor, {"role": role, "person": person.strip()})]


def unassign_events(state: dict, actor: str, role: str, person: str, at: str) -> list[NewEvent]:
    """`actor` taking `role` from `person`, or Refused (also replayed by verify)."""
    _require_open(state, "change roles")
    _require_manager(state, actor, "change roles")
    if role not in state["plan"]["roles"]:
        _assignments(state["plan"], {role: person})  # the unknown-role message
    if person not in state["roles"].get(role, []):
        raise Refused(f"incident {state['id']}: {person} does not hold {role}")
    if state["plan"]["roles"][role]["required"] and len(state["roles"][role]) == 1:
        raise Refused(f"incident {state['id']}: {role} is a required role and {person} is its "
                      "only holder", [f"assign someone else first: playbook assign {state['id']} {role} NAME"])
    return [NewEvent("RoleUnassigned", at, actor, {"role": role, "person": person})]


def assign(store, clock, actor: str, incident: str, role: str, person: str) -> dict:
    return _act(store, incident, lambda state: assign_events(state, actor, role, person, _at(clock, state)))


def unassign(store, clock, actor: str, incident: str, role: str, person: str) -> dict:
    return _act(store, incident, lambda state: unassign_events(state, actor, role, person, _at(clock, state)))


def task(store, clock, actor: str, incident: str, name: str, *, done: bool = True) -> dict:
    def build(state):
        owner = inc.task_stage(state, name)
        if owner != state["stage"]:  # a closed incident's own stage may still have a review checklist
            _require_open(state, "change tasks")
        _require_member(state, actor, "change tasks")
        if owner is None:
            raise NotFound(f"incident {incident}: no task {name!r} in this playbook "
                           f"(tasks of stage {state['stage']}: "
                           f"{', '.join(inc.stage_tasks(state)) or 'none'})")
        if owner != state["stage"]:
            raise Refused(f"incident {incident}: task {name} belongs to stage {owner}, and the "
                          f"incident is in {state['stage']}")
        if done == (name in state["tasks"]):
            raise Refused(f"incident {incident}: task {name} is already {'done' if done else 'open'}")
        kind = "TaskCompleted" if done else "TaskReopened"
        return [NewEvent(kind, _at(clock, state), actor, {"task": name})]
    return _act(store, incident, build)


def note(store, clock, actor: str, incident: str, text: str) -> dict:
    text = text.strip()
    if not text or len(text) > MAX_NOTE:
        raise UsageError(f"a note must be 1 to {MAX_NOTE} characters")

    def build(state):
        _require_member(state, actor, "add notes")  # closed incidents still take notes (reviews)
        return [NewEvent("NoteAdded", _at(clock, state), actor, {"text": text})]
    return _act(store, incident, build)


def set_inputs(store, clock, actor: str, incident: str, raw: dict[str, str]) -> dict:
    """Set or correct inputs; ``severity=LEVEL`` changes the incident's severity (logged as
    SeverityChanged) unless the playbook declares an input of that name."""
    from .inputs import resolve

    if not raw:
        raise UsageError("give at least one NAME=VALUE")

    def build(state):
        _require_open(state, "change inputs")
        _require_member(state, actor, "change inputs")
        plan = state["plan"]
        values = dict(raw)
        level = values.pop("severity", None) if "severity" not in plan["inputs"] else None
        problems: list[str] = []
        if level is not None:
            level = level.strip()
            if level not in plan["severities"]:
                problems.append(f"severity {level!r} is not one of {', '.join(plan['severities'])}")
            elif level == state["severity"]:
                problems.append(f"the severity is already {level}")
        now = inc.effective_now(state, clock.now())
        checked = resolve(plan["inputs"], values, fill_defaults=False, now=now, problems=problems)
        if problems:
            raise UsageError(f"incident {incident}: nothing was changed: " + (
                problems[0] if len(problems) == 1 else "\n" + "\n".join(f"  - {p}" for p in problems)))
        at = _at(clock, state)
        events = []
        if level is not None:
            events.append(NewEvent("SeverityChanged", at, actor, {"from": state["severity"], "to": level}))
        if checked:
            events.append(NewEvent("InputsSet", at, actor, {"inputs": checked}))
        return events
    return _act(store, incident, build)


# -- moving through stages ----------------------------------------------------------


def advance(store, clock, actor: str, incident: str, trigger: str, reason: str | None = None) -> dict:
    from .machine import fire

    def build(state):
        if inc.is_closed(state) and not state["plan"]["transitions"].get(trigger, {}).get("reopen"):
            _require_open(state, f"fire {trigger}")
        to = fire(state, trigger, actor)
        return [NewEvent("StageChanged", _at(clock, state), actor, {
            "trigger": trigger, "from": state["stage"], "to": to, "reason": reason or "",
        })]
    return _act(store, incident, build)


def _pick(state: dict, candidates: list[str], what: str, trigger: str | None) -> str:
    """The transition that does `what` ("closes", "reopens") from the current stage."""
    here, iid = state["stage"], state["id"]
    if trigger is not None:
        if trigger not in candidates:
            raise Refused(f"incident {iid}: {trigger} is not a transition that {what} the "
                          f"incident from stage {here}", [f"those that do: {', '.join(candidates) or 'none'}"])
        return trigger
    if not candidates:
        raise Refused(f"incident {iid}: no transition from stage {here} {what} the incident",
                      [f"possible from {here}: {', '.join(inc.transitions_from_here(state)) or 'none'}"])
    if len(candidates) > 1:
        raise UsageError(f"incident {iid}: several transitions from {here} can do that "
                         f"({', '.join(candidates)}); choose one with --trigger")
    return candidates[0]


def close(store, clock, actor: str, incident: str, trigger: str | None = None,
          reason: str | None = None) -> dict:
    """Close through one of the playbook's transitions into a terminal stage."""
    state = _read(store, incident)
    _require_open(state, "close it again")
    stages = state["plan"]["stages"]
    closing = [t for t in inc.transitions_from_here(state)
               if stages[state["plan"]["transitions"][t]["to"]]["terminal"]]
    return advance(store, clock, actor, incident, _pick(state, closing, "closes", trigger), reason)


def reopen(store, clock, actor: str, incident: str, trigger: str | None = None,
           reason: str | None = None) -> dict:
    state = _read(store, incident)
    if not inc.is_closed(state):
        raise Refused(f"incident {incident} is not closed (stage {state['stage']})")
    reopening = [t for t in inc.transitions_from_here(state) if state["plan"]["transitions"][t]["reopen"]]
    return advance(store, clock, actor, incident, _pick(state, reopening, "reopens", trigger), reason)


# -- reading --------------------------------------------------------------------


def _read(store, incident: str) -> dict:
    snap = store.snapshot(incident)
    if snap is None:
        raise NotFound(f"no incident {incident!r} in this database (see: playbook list --all)")
    return inc.current_state(store, snap)


def status(store, incident: str) -> dict:
    return _read(store, incident)


def list_incidents(store, *, include_closed: bool = False, stage: str | None = None,
                   playbook: str | None = None) -> list[dict]:
    out = []
    for snap in store.snapshots():
        s = inc.current_state(store, snap)
        if not include_closed and inc.is_closed(s):
            continue
        if stage is not None and s["stage"] != stage:
            continue
        if playbook is not None and s["plan"]["id"] != playbook:
            continue
        out.append(s)
    return sorted(out, key=lambda s: s["started_at"])


def log(store, incident: str):
    """The incident's events, oldest first (streamed)."""
    _read(store, incident)
    return store.events(incident)


def pinned_playbook(store, incident: str):
    """The exact playbook text the incident started from, loaded and checked."""
    from .loader import load_playbook_text

    _read(store, incident)
    first = next(iter(store.events(incident)))
    pb = first.data["playbook"]
    return load_playbook_text(pb["text"], f"{incident}:{pb['path']}")
