"""Incident state, folded from its events, and the questions asked of it.

:func:`apply` is the only way state changes: the service folds the events it is
about to append onto the current state and stores the result as the projection in
the same transaction; :func:`replay` folds a whole log from nothing, and the
tests check that both always agree. State is plain JSON and its size does not grow
with the length of the log (notes are counted, not copied).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable


#: The shape of the state this code folds. A stored projection of another version
#: (0.1 stored none) is never trusted or compared: it is refolded from the log, which
#: is the source of truth, and rewritten at the incident's next write (or by
#: ``playbook db upgrade``). Bump it whenever ``apply`` changes what it produces.
#: 3: what the clocks need, kept by the fold: of publications (engine.incidents.event_types:
#: ``cadence``, ``first_published``, each visit's ``updates``) and the messages' clocks as
#: counts (``inbound_clock``, engine.incidents.inbound); and failed approval notices
#: (``approval_notices``), which ``due`` sends again.
PROJECTION_VERSION = 3


def apply(state: dict | None, type: str, at: str, actor: str, data: dict, *, in_place: bool = False) -> dict:
    """The state after one event. Never mutates its input, unless `in_place` (replay)."""
    if type == "IncidentStarted":
        plan = data["plan"]
        from .event_types import visit_updates

        cadence = {"upto": at, "last": None, "prior": None}
        return {
            "v": PROJECTION_VERSION,
            "id": data["incident"],
            "title": data["title"],
            "severity": data["severity"],
            "drill": data["drill"],
            "status": "open",
            "plan": plan,
            "started_at": at,
            "started_by": actor,
            "stage": plan["initial"],
            "stage_entered_at": at,
            "visits": [{"stage": plan["initial"], "entered_at": at, "left_at": None, "first_public_at": None,
                        **visit_updates(plan, plan["initial"], at, cadence)}],
            "severity_history": [{"at": at, "severity": data["severity"]}],
            "inputs": dict(data["inputs"]),
            "roles": {},
            "tasks": {},
            "notes": 0,
            "posts": {},
            "published": {},
            "approved": {},
            "public_posts": {"count": 0, "first_at": None, "last_at": None, "last_in_stage_at": None},
            "first_published": {},
            "cadence": cadence,
            "closed_at": None,
            "breaches": {},
            "sim_offset": 0,
            "injects": [dict(i, delivered_at=None) for i in data.get("scenario", [])],
            "escalations": 0,
            "updated_at": at,
            "events": 1,
            # opened by a monitor (engine.incidents.monitors): when its first message was posted
            **({"origin": dict(data["origin"])} if data.get("origin") else {}),
        }
    if state is None:
        raise ValueError(f"event {type} before IncidentStarted")
    from .event_types import event_type

    kind = event_type(type)  # ValueError for a kind of event this version does not know
    missing = [f for f in kind.fields if f not in data]
    if missing:
        raise ValueError(f"{type} lacks {', '.join(missing)}")
    s = state if in_place else _copy(state)
    s["updated_at"] = at
    s["events"] = s.get("events", 0) + 1
    kind.fold(s, at, actor, data)
    return s


def _counted(post: dict) -> tuple[set[str], set[str]]:
    """What the approvals so far count for: each approval counts once, for its role in
    ``all_of`` if that is still unfilled, else towards ``any_of`` (distinct roles).
    So with all_of [legal] and any_of [legal, privacy], one legal approval fills
    all_of, and any_of needs another approver."""
    policy, filled, towards_any = post["policy"], set(), set()
    for a in post["approvals"]:
        if a["role"] in policy["all_of"] and a["role"] not in filled:
            filled.add(a["role"])
        elif a["role"] in policy["any_of"]:
            towards_any.add(a["role"])
    return filled, towards_any


def approval_missing(post: dict) -> list[str]:
    """What the post's approval policy still needs (empty: fully approved)."""
    policy = post["policy"]
    filled, towards_any = _counted(post)
    missing = [f"approval by {role}" for role in policy["all_of"] if role not in filled]
    if policy["any_of"]:
        have = len(towards_any)
        if have < policy["min"]:
            besides = " besides the all_of approvals" if set(policy["all_of"]) & set(policy["any_of"]) else ""
            missing.append(f"{policy['min'] - have} more approval(s) from {', '.join(policy['any_of'])}{besides}")
    return missing


def recipients(state: dict) -> dict[str, dict]:
    """Per-recipient templates: who was reached (published and delivered) and who not, and why."""
    out: dict[str, dict] = {}
    for pid, post in sorted(state["posts"].items()):
        ref = post.get("recipient")
        if ref is None:
            continue
        row = out.setdefault(post["template"], {"reached": [], "not_reached": []})
        delivered = post["published"] and any(
            d["ok"] and d["version"] == post["published"][-1]["version"] for d in post["deliveries"])
        if delivered:
            row["reached"].append({"recipient": ref, "post": pid})
        else:
            why = "published, not delivered" if post["published"] else post["status"]
            row["not_reached"].append({"recipient": ref, "post": pid, "state": why})
    return out


def approval_wanted(post: dict) -> list[str]:
    """Roles whose approval would count now, each once, in the policy's order."""
    policy = post["policy"]
    filled, towards_any = _counted(post)
    wanted = [r for r in policy["all_of"] if r not in filled]
    if len(towards_any) < policy["min"] and policy["any_of"]:
        wanted += [r for r in policy["any_of"] if r not in towards_any]
    return list(dict.fromkeys(wanted))


def replay(events: Iterable) -> dict | None:
    """Fold a whole log (objects with type, at, actor, data) from nothing.

    The state is built once and updated in place (no copy per event), so replaying
    a long log costs about as much as reading it."""
    state = None
    for e in events:
        state = apply(state, e.type, e.at, e.actor, e.data, in_place=state is not None)
    return state


def _copy(state: dict) -> dict:
    """A copy to fold onto. The plan (most of a new incident's state) is never changed by
    a fold, so the copy shares it instead of copying it at every event. State is plain
    JSON (every stored projection is checked to be), so its dicts and lists are copied
    by :func:`plain_copy`, several times faster than ``copy.deepcopy``; anything else
    in it is immutable and shared."""
    s = {k: v if k in _SHARED or type(v) not in _CONTAINERS else plain_copy(v) for k, v in state.items()}
    for key in ("inbound", "inbound_keys"):
        if type(state.get(key)) is dict:  # copy-on-write: a fold replaces a message's record, never edits it
            s[key] = dict(state[key])
    for key, value in state.items():
        if hasattr(value, "child"):  # read lazily in a write transaction (engine.store.parts)
            s[key] = value.child()
    return s


def plain(state: dict | None) -> dict | None:
    """The state with every part read in a write transaction (engine.store.parts) read in
    full, as plain JSON (for ``canonical``, comparisons and callers outside the store)."""
    if state is None or not any(hasattr(v, "plain") for v in state.values()):
        return state
    return {k: v.plain() if hasattr(v, "plain") else v for k, v in state.items()}


_CONTAINERS = (dict, list)
#: Parts of the state a copy shares rather than copies: the plan, and the inbound
#: messages' records, which grow with a burst of them (engine.incidents.inbound; shallow-copied above).
_SHARED = frozenset({"plan", "inbound", "inbound_keys"})


def plain_copy(value: dict | list) -> dict | list:
    """A copy of a plain JSON container: its dicts and lists copied, everything else shared."""
    if type(value) is dict:
        return {k: v if type(v) not in _CONTAINERS else plain_copy(v) for k, v in value.items()}
    return [v if type(v) not in _CONTAINERS else plain_copy(v) for v in value]


def is_current(state: dict | None) -> bool:
    """Whether a stored projection has the shape this code folds."""
    return isinstance(state, dict) and state.get("v") == PROJECTION_VERSION


def current_state(store, snapshot) -> dict:
    """The incident's state from its stored projection, or refolded from its log when
    the projection was stored by another version of the tool."""
    if is_current(snapshot.state):
        return snapshot.state
    return replay(store.events(snapshot.incident))


def rebuild_stale(store) -> list[str]:
    """Refold and rewrite every projection stored by another version, and fill in the
    index row (engine.incidents.index) of every incident that has none; returns the ids whose
    projection was rebuilt."""
    from .index import SUMMARY_VERSION, summary

    rebuilt = []
    for incident, row in store.summaries():
        current = row is not None and row.get("v") == SUMMARY_VERSION
        with store.transaction(incident) as tx:
            if tx.snapshot is None or (current and is_current(tx.snapshot.state)):
                continue
            stale = not is_current(tx.snapshot.state)
            state = replay(store.events(incident)) if stale else plain(tx.snapshot.state)
            tx.rewrite_projection(state, summary(state))
            if stale:
                rebuilt.append(incident)
    return rebuilt


# -- questions -----------------------------------------------------------------


def parse_time(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def effective_now(state: dict, now: datetime) -> datetime:
    """The incident's own 'now': a drill runs on a simulated clock, ahead by its offset."""
    return now + timedelta(seconds=state.get("sim_offset", 0))


def roles_of(state: dict, person: str) -> list[str]:
    return [role for role, people in state["roles"].items() if person in people]


def is_closed(state: dict) -> bool:
    return state["status"] == "closed"


def blockers(state: dict, trigger: str, actor: str | None, *, check_stage: bool = True,
             hints: bool = True) -> list[str]:
    """Every reason `actor` may not fire `trigger` now (empty: allowed).

    Without an actor the role check is skipped (listings, and moves the playbook
    itself makes on escalation); `check_stage=False` leaves the stage to the caller
    (the state machine checks it itself). `hints=False` leaves out what to type next:
    reasons written into the log name facts, never an interface's commands."""
    plan = state["plan"]
    tr = plan["transitions"][trigger]
    stage = state["stage"]
    reasons = []
    if check_stage and stage not in tr["from"]:
        reasons.append(f"it leads from {', '.join(tr['from'])}, and the incident is in {stage}")
    if actor is not None and not set(tr["roles"]) & set(roles_of(state, actor)):
        reasons.append(f"{actor} does not hold a role allowed to fire it ({', '.join(tr['roles'])})")
    req = tr["requires"]
    for task in req["tasks"]:
        if task not in state["tasks"]:
            reasons.append(f"task {task} is not done")
    since = state.get("reopened_at") or ""
    later = " since the incident was reopened" if since else ""
    for template in req["published"]:
        if state["published"].get(template, "") < since or template not in state["published"]:
            reasons.append(f"no post of template {template} has been published{later}")
    for template in req["approved"]:
        if state["approved"].get(template, "") < since or template not in state["approved"]:
            reasons.append(f"no post of template {template} has been approved{later}")
    for name in req["inputs"]:
        if state["inputs"].get(name) in (None, ""):
            reasons.append(f"input {name} has no value" + (f" (playbook set {state['id']} {name}=...)" if hints else ""))
    return reasons


def plan_order(plan: dict) -> dict:
    """The playbook's own order of roles, transitions and each stage's tasks, as lists.

    Stored state is canonical JSON (keys sorted), so a plan's mappings come back in
    alphabetical order; a checklist is read top to bottom, so the order is kept here.
    """
    return {
        "roles": list(plan["roles"]),
        "transitions": list(plan["transitions"]),
        "tasks": {sid: list(stage["tasks"]) for sid, stage in plan["stages"].items()},
    }


def _ordered(mapping: dict, order: list[str] | None) -> list[str]:
    if not order:
        return list(mapping)
    return [k for k in order if k in mapping] + [k for k in mapping if k not in order]


def roles_in_order(plan: dict) -> list[str]:
    return _ordered(plan["roles"], plan.get("order", {}).get("roles"))


def transitions_from_here(state: dict) -> list[str]:
    stage, plan = state["stage"], state["plan"]
    return [t for t in _ordered(plan["transitions"], plan.get("order", {}).get("transitions"))
            if stage in plan["transitions"][t]["from"]]


def stage_tasks(state: dict) -> dict[str, str]:
    plan, stage = state["plan"], state["stage"]
    tasks = plan["stages"][stage]["tasks"]
    return {t: tasks[t] for t in _ordered(tasks, plan.get("order", {}).get("tasks", {}).get(stage))}


def task_stage(state: dict, task: str) -> str | None:
    for sid, stage in state["plan"]["stages"].items():
        if task in stage["tasks"]:
            return sid
    return None
