"""The incident use cases: start, assign, tasks, notes, inputs, advance, close, reopen.

Each function takes the store, the clock and the acting person as arguments, checks
the incident's current state inside the store's write transaction (who may act is
asked of :mod:`engine.incidents.policy`), and appends events (:func:`engine.incidents.act.act`).
Nothing else writes state. A refused action raises before anything is appended,
so it changes nothing.
"""

from __future__ import annotations

from ..errors import NotFound, Refused, UsageError
from . import state as inc
from . import policy
from .act import act, apply_all, event_time, read_state, stamped
from .events import NewEvent, utc_now_iso
from .index import summary

MAX_NOTE = 10_000
MAX_TITLE = 200


# -- start ----------------------------------------------------------------------


def start(store, clock, actor: str, loaded, *, title: str, severity: str | None = None,
          inputs: dict[str, str] | None = None, assign: dict[str, str] | None = None,
          drill: bool = False, scenario: list[dict] | None = None, region: str | None = None,
          origin: dict | None = None) -> dict:
    """Create an incident from a loaded playbook; pin its exact text; return its state.

    `region` (PLAYBOOK_REGION) is the organisation's country for reading phone numbers,
    used when the playbook names none; the incident keeps it in its plan. `origin` is
    what a monitor that opens the incident records (engine.incidents.monitors: the
    monitor, when its first message was posted): only the engine opens one, and its
    required roles and inputs are left for the team to fill."""
    from ..format.inputs import resolve
    from ..format.plan import compile_plan, writing_plan

    from ..safetext import refuse_unsafe

    policy.require(None, actor, "open" if origin else "start")
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
    values = resolve(plan["inputs"], inputs or {}, fill_defaults=origin is None, now=clock.now(), problems=problems)
    if origin is not None:  # a monitor fills what the messages say; the defaults apply, the team does the rest
        values = {**{n: s["default"] for n, s in plan["inputs"].items() if s["default"] is not None}, **values}
    people = _assignments(plan, assign or {}, problems, others=[actor])
    missing = [r for r, spec in plan["roles"].items() if spec["required"] and r not in people and origin is None]
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
                "writing": writing_plan(pb),
                **({"scenario": scenario} if drill and scenario else {}),
                **({"origin": origin} if origin else {}),
            })]
            events += [NewEvent("RoleAssigned", now, actor, {"role": r, "person": p})
                       for r, p in people.items()]
            events += [NewEvent("InjectDelivered", now, actor, {"index": i, "message": inject["message"],
                                                                 "scheduled_at": now})
                       for i, inject in enumerate(scenario or []) if drill and inject["at_seconds"] == 0]
            events = stamped(events)
            state = apply_all(None, events)
            tx.append(events, state, summary(state))
            return state
    raise Refused("could not allocate an incident id; try again")  # pragma: no cover


def _assignments(plan: dict, assign: dict[str, str], problems: list[str] | None = None,
                 others=()) -> dict[str, str]:
    """Checked role -> person; a person may not look like another (in `others`, or another
    person assigned here) without being them. Problems go to `problems` when given."""
    from ..names import check_person, lookalike

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
    policy.require(state, actor, "assign")
    from ..names import people

    _assignments(state["plan"], {role: person}, others=people(state))
    if person.strip() in state["roles"].get(role, []):
        granted_by = state.get("granted", {}).get(role, {}).get(person.strip())
        if not (granted_by == person.strip() and actor != person.strip()):
            raise Refused(f"incident {state['id']}: {person} already holds {role}")
        # another manager confirms a self-granted role: recorded as a new grant
    return [NewEvent("RoleAssigned", at, actor, {"role": role, "person": person.strip()})]


def unassign_events(state: dict, actor: str, role: str, person: str, at: str) -> list[NewEvent]:
    """`actor` taking `role` from `person`, or Refused (also replayed by verify)."""
    policy.require(state, actor, "unassign")
    if role not in state["plan"]["roles"]:
        _assignments(state["plan"], {role: person})  # the unknown-role message
    if person not in state["roles"].get(role, []):
        raise Refused(f"incident {state['id']}: {person} does not hold {role}")
    if state["plan"]["roles"][role]["required"] and len(state["roles"][role]) == 1:
        raise Refused(f"incident {state['id']}: {role} is a required role and {person} is its "
                      "only holder", [f"assign someone else first: playbook assign {state['id']} {role} NAME"])
    return [NewEvent("RoleUnassigned", at, actor, {"role": role, "person": person})]


def assign(store, clock, actor: str, incident: str, role: str, person: str) -> dict:
    return act(store, incident, lambda state: assign_events(state, actor, role, person, event_time(clock, state)))


def unassign(store, clock, actor: str, incident: str, role: str, person: str) -> dict:
    return act(store, incident, lambda state: unassign_events(state, actor, role, person, event_time(clock, state)))


def task(store, clock, actor: str, incident: str, name: str, *, done: bool = True) -> dict:
    def build(state):
        policy.require(state, actor, "task", task=name)
        owner = inc.task_stage(state, name)
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
        return [NewEvent(kind, event_time(clock, state), actor, {"task": name})]
    return act(store, incident, build)


def note(store, clock, actor: str, incident: str, text: str, *, answer: bool = True) -> dict | None:
    """Add a note; the incident's state after it, or None without `answer` (the command
    line shows nothing of it: a note then reads none of the incident's posts or messages)."""
    text = text.strip()
    if not text or len(text) > MAX_NOTE:
        raise UsageError(f"a note must be 1 to {MAX_NOTE} characters")

    def build(state):
        policy.require(state, actor, "note")  # closed incidents still take notes (reviews)
        return [NewEvent("NoteAdded", event_time(clock, state), actor, {"text": text})]
    return act(store, incident, build) if answer else act(store, incident, build, read=lambda state: None)


def set_inputs(store, clock, actor: str, incident: str, raw: dict[str, str]) -> dict:
    """Set or correct inputs; ``severity=LEVEL`` changes the incident's severity (logged as
    SeverityChanged) unless the playbook declares an input of that name."""
    from ..format.inputs import resolve

    if not raw:
        raise UsageError("give at least one NAME=VALUE")

    def build(state):
        policy.require(state, actor, "set")
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
        at = event_time(clock, state)
        events = []
        if level is not None:
            events.append(NewEvent("SeverityChanged", at, actor, {"from": state["severity"], "to": level}))
        if checked:
            events.append(NewEvent("InputsSet", at, actor, {"inputs": checked}))
        return events
    return act(store, incident, build)


# -- moving through stages ----------------------------------------------------------


def advance(store, clock, actor: str, incident: str, trigger: str, reason: str | None = None) -> dict:
    def build(state):
        to = policy.transition(state, actor, trigger)
        return [NewEvent("StageChanged", event_time(clock, state), actor, {
            "trigger": trigger, "from": state["stage"], "to": to, "reason": reason or "",
        })]
    return act(store, incident, build)


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
    state = read_state(store, incident)
    policy.require(state, actor, "close")
    stages = state["plan"]["stages"]
    closing = [t for t in inc.transitions_from_here(state)
               if stages[state["plan"]["transitions"][t]["to"]]["terminal"]]
    return advance(store, clock, actor, incident, _pick(state, closing, "closes", trigger), reason)


def reopen(store, clock, actor: str, incident: str, trigger: str | None = None,
           reason: str | None = None) -> dict:
    state = read_state(store, incident)
    policy.require(state, actor, "reopen")
    if not inc.is_closed(state):
        raise Refused(f"incident {incident} is not closed (stage {state['stage']})")
    reopening = [t for t in inc.transitions_from_here(state) if state["plan"]["transitions"][t]["reopen"]]
    return advance(store, clock, actor, incident, _pick(state, reopening, "reopens", trigger), reason)


# -- reading --------------------------------------------------------------------


def status(store, incident: str) -> dict:
    return read_state(store, incident)


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
    read_state(store, incident)
    return store.events(incident)


def writing_of(store, incident: str) -> dict:
    """What rendering the incident's posts needs (engine.format.plan.writing_plan): recorded
    when it started, or for an older incident built from its pinned playbook."""
    read_state(store, incident)
    first = next(iter(store.events(incident)))
    written = first.data.get("writing")
    if written is None:
        from ..format.loader import load_playbook_text
        from ..format.plan import writing_plan

        pinned = first.data["playbook"]
        written = writing_plan(load_playbook_text(pinned["text"], f"{incident}:{pinned['path']}").playbook)
    # in the playbook's order again (recorded as lists): templates, channels, languages
    return {**written, "templates": {tid: {**spec, "channels": {ch: dict(texts) for ch, texts in spec["channels"]}}
                                     for tid, spec in written["templates"]}}


def pinned_playbook(store, incident: str):
    """The exact playbook text the incident started from, loaded and checked."""
    from ..format.loader import load_playbook_text

    read_state(store, incident)
    first = next(iter(store.events(incident)))
    pb = first.data["playbook"]
    return load_playbook_text(pb["text"], f"{incident}:{pb['path']}")
