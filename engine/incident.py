"""Incident state, folded from its events, and the questions asked of it.

:func:`apply` is the only way state changes: the service folds the events it is
about to append onto the current state and stores the result as the projection in
the same transaction; :func:`replay` folds a whole log from nothing, and the
tests check that both always agree. State is plain JSON and its size does not grow
with the length of the log (notes are counted, not copied).
"""

from __future__ import annotations

import copy
from typing import Iterable


def apply(state: dict | None, type: str, at: str, actor: str, data: dict) -> dict:
    """The state after one event. Never mutates its input."""
    if type == "IncidentStarted":
        plan = data["plan"]
        return {
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
            "inputs": dict(data["inputs"]),
            "roles": {},
            "tasks": {},
            "notes": 0,
            "posts": {},
            "published": {},
            "approved": {},
            "public_posts": {"count": 0, "first_at": None, "last_at": None, "last_in_stage_at": None},
            "closed_at": None,
            "updated_at": at,
            "events": 1,
        }
    if state is None:
        raise ValueError(f"event {type} before IncidentStarted")
    s = copy.deepcopy(state)
    s["updated_at"] = at
    s["events"] = s.get("events", 0) + 1
    if type == "RoleAssigned":
        holders = s["roles"].setdefault(data["role"], [])
        if data["person"] not in holders:
            holders.append(data["person"])
    elif type == "RoleUnassigned":
        holders = s["roles"].get(data["role"], [])
        if data["person"] in holders:
            holders.remove(data["person"])
        if not holders:
            s["roles"].pop(data["role"], None)
    elif type == "TaskCompleted":
        s["tasks"][data["task"]] = {"by": actor, "at": at}
    elif type == "TaskReopened":
        s["tasks"].pop(data["task"], None)
    elif type == "NoteAdded":
        s["notes"] += 1
    elif type == "InputsSet":
        s["inputs"].update(data["inputs"])
    elif type == "StageChanged":
        s["stage"] = data["to"]
        s["stage_entered_at"] = at
        s["public_posts"]["last_in_stage_at"] = None
        terminal = s["plan"]["stages"][data["to"]]["terminal"]
        s["status"] = "closed" if terminal else "open"
        s["closed_at"] = at if terminal else None
    return s


def replay(events: Iterable) -> dict | None:
    """Fold a whole log (objects with type, at, actor, data) from nothing."""
    state = None
    for e in events:
        state = apply(state, e.type, e.at, e.actor, e.data)
    return state


# -- questions -----------------------------------------------------------------


def roles_of(state: dict, person: str) -> list[str]:
    return [role for role, people in state["roles"].items() if person in people]


def is_closed(state: dict) -> bool:
    return state["status"] == "closed"


def blockers(state: dict, trigger: str, actor: str) -> list[str]:
    """Every reason `actor` may not fire `trigger` now (empty: allowed)."""
    plan = state["plan"]
    tr = plan["transitions"][trigger]
    stage = state["stage"]
    reasons = []
    if stage not in tr["from"]:
        reasons.append(f"it leads from {', '.join(tr['from'])}, and the incident is in {stage}")
    if not set(tr["roles"]) & set(roles_of(state, actor)):
        reasons.append(f"{actor} does not hold a role allowed to fire it ({', '.join(tr['roles'])})")
    req = tr["requires"]
    for task in req["tasks"]:
        if task not in state["tasks"]:
            reasons.append(f"task {task} is not done")
    for template in req["published"]:
        if template not in state["published"]:
            reasons.append(f"no post of template {template} has been published")
    for template in req["approved"]:
        if template not in state["approved"]:
            reasons.append(f"no post of template {template} has been approved")
    for name in req["inputs"]:
        if state["inputs"].get(name) in (None, ""):
            reasons.append(f"input {name} has no value (playbook set {state['id']} {name}=...)")
    return reasons


def transitions_from_here(state: dict) -> list[str]:
    stage = state["stage"]
    return [t for t, tr in state["plan"]["transitions"].items() if stage in tr["from"]]


def stage_tasks(state: dict) -> dict[str, str]:
    return state["plan"]["stages"][state["stage"]]["tasks"]


def task_stage(state: dict, task: str) -> str | None:
    for sid, stage in state["plan"]["stages"].items():
        if task in stage["tasks"]:
            return sid
    return None
