"""Who may do what: the one answer to "may this actor do this action on this incident now".

Every command that changes an incident asks :func:`require` before it builds its
events (inside the write transaction, on the state it is about to change), and
:mod:`engine.audit.rules` asks it again when ``verify`` replays the log. The table
:data:`ACTIONS` names, for each action, who may do it and whether a closed incident
allows it; the README's "Who may do what" section is this table in words.

Who, in order of the checks:

1. ``system:`` names belong to the engine's own actions (breaches, escalations,
   notices): every human action refuses them, here and not only in the CLI, and the
   engine's actions take nothing else.
2. A closed incident refuses the action, except notes, the closing stage's own
   review tasks, and the transitions the playbook marks ``reopen: true``.
3. The action's role rule:

   * ``anyone``: any person (start an incident, read one);
   * ``member``: holds any role in the incident;
   * ``manager``: holds one of the playbook's ``managers:`` (by default the roles
     that may fire a transition); in an incident a monitor opened, while nobody holds
     one, any person (:func:`unmanaged`: the engine assigns nobody);
   * ``transition``: holds one of the transition's ``roles:`` and its guards are met,
     as the state machine decides (:func:`transition` delegates to
     :func:`engine.incidents.machine.fire`);
   * ``approver``: holds a role the post's approval still needs, under the
     separation-of-duties rules; those are stated once, in
     :func:`engine.posts.versions.approve_events`, which calls :func:`require` first for 1-2;
   * ``approving role``: holds one of the roles of the post's approval policy
     (rejecting);
   * ``engine``: a ``system:`` name only.

A refusal raises :class:`~engine.errors.Refused` (exit 5) with the message the
command has always given; nothing is appended.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Refused
from . import state as inc

ANYONE, MEMBER, MANAGER, TRANSITION, APPROVER, APPROVING_ROLE, ENGINE = (
    "anyone", "member", "manager", "transition", "approver", "approving role", "engine")

#: On a closed incident: refused, allowed, or allowed for the closing stage's own tasks
#: (REVIEW) or for a transition the playbook marks ``reopen: true`` (REOPENING).
REFUSED, ALLOWED, REVIEW, REOPENING = "refused", "allowed", "review tasks only", "reopening only"


@dataclass(frozen=True)
class Rule:
    who: str
    closed: str
    #: how a refusal names the action ("cannot assign roles")
    doing: str


ACTIONS: dict[str, Rule] = {
    "start": Rule(ANYONE, ALLOWED, "start an incident"),
    "open": Rule(ENGINE, ALLOWED, "open an incident from a monitor"),
    "assign": Rule(MANAGER, REFUSED, "assign roles"),
    "unassign": Rule(MANAGER, REFUSED, "change roles"),
    "task": Rule(MEMBER, REVIEW, "change tasks"),
    "note": Rule(MEMBER, ALLOWED, "add notes"),
    "set": Rule(MEMBER, REFUSED, "change inputs"),
    "advance": Rule(TRANSITION, REOPENING, "fire {trigger}"),
    "close": Rule(TRANSITION, REFUSED, "close it again"),
    "reopen": Rule(TRANSITION, REOPENING, "reopen it"),
    "render": Rule(MEMBER, REFUSED, "render posts"),
    "edit": Rule(MEMBER, REFUSED, "edit posts"),
    "approve": Rule(APPROVER, REFUSED, "approve posts"),
    "reject": Rule(APPROVING_ROLE, REFUSED, "reject posts"),
    "publish": Rule(MEMBER, REFUSED, "publish posts"),
    "deliver": Rule(MEMBER, ALLOWED, "deliver posts"),
    "advance_clock": Rule(MANAGER, REFUSED, "advance its clock"),
    "record_due": Rule(ENGINE, ALLOWED, "record missed deadlines"),
    "escalate": Rule(ENGINE, ALLOWED, "apply escalations"),
    "read": Rule(ANYONE, ALLOWED, "read it"),
    "receive": Rule(MEMBER, REFUSED, "record inbound messages"),
    "listen": Rule(ENGINE, ALLOWED, "record messages from its sources"),
    "handle": Rule(MEMBER, REFUSED, "mark messages handled"),
    # also whoever a ladder's step paged, from outside the incident (engine.clocks.ladder)
    "acknowledge": Rule(MEMBER, REFUSED, "acknowledge escalations"),
}


#: The least token scope (engine.app.principal.SCOPES) each kind of use case needs:
#: reading, acting on incidents, approving or rejecting text, administering accounts.
SCOPE_OF: dict[str, str] = {
    **{action: "act" for action in ACTIONS},
    "read": "read",
    "approve": "approve",
    "reject": "approve",
    "accounts": "admin",
}


def scope_of(action: str) -> str:
    """The token scope `action` needs (KeyError for an action not in the table)."""
    return SCOPE_OF[action]


def require_admin(actor: str, *, admin: bool) -> None:
    """Refused unless `actor` may administer accounts and tokens on the server (the
    ``accounts`` action, token scope ``admin``): `admin`, an enabled account made an
    administrator (``AdminGranted`` in the account log). The server host's own command
    line (``playbook user``, ``playbook token``) does not ask: whoever may write the
    database file is its administrator."""
    if is_engine(actor):
        raise Refused(f"{actor!r} cannot administer accounts: names starting with 'system:' are the engine's")
    if not admin:
        raise Refused(f"{actor} is not an administrator: only administrators manage accounts and tokens",
                      ["an administrator can make you one; on the server host: playbook user grant-admin "
                       + actor])


def is_engine(actor: str) -> bool:
    """A name reserved for the engine's own actions (``system:``, or a look-alike)."""
    from ..names import reserved

    return reserved(actor)


def managers(state: dict) -> list[str]:
    """The roles that manage the incident: the playbook's ``managers:``, else (a plan
    compiled before that field) the roles that may fire a transition."""
    plan = state["plan"]
    return plan.get("managers") or [
        r for r in plan["roles"] if any(r in tr["roles"] for tr in plan["transitions"].values())]


def require(state: dict | None, actor: str, action: str, *, trigger: str | None = None,
            task: str | None = None, post: dict | None = None, post_id: str | None = None) -> None:
    """Refused unless `actor` may do `action` on the incident in `state` now.

    `trigger` names the transition of ``advance``, `task` the task of ``task``, `post`
    (and `post_id`) the post being rejected: its approval policy names who may. ``transition`` and
    ``approver`` rules check the name and the closed incident here; the roles are
    decided by :func:`transition` and :func:`engine.posts.versions.approve_events`."""
    rule = ACTIONS[action]
    doing = rule.doing.format(trigger=trigger)
    where = f"incident {state['id']}: " if state is not None else ""
    if rule.who == ENGINE:
        if not is_engine(actor):
            raise Refused(f"{where}only the engine may {doing}; {actor} is a person")
        return
    if is_engine(actor):
        raise Refused(f"{where}{actor!r} cannot {doing}: names starting with 'system:' are reserved "
                      "for what the engine does by itself (escalations, missed deadlines)")
    if state is None or rule.who == ANYONE:
        return
    if inc.is_closed(state) and not _closed_allows(state, rule, trigger, task):
        raise Refused(f"incident {state['id']} is closed (stage {state['stage']}); cannot {doing}",
                      ["reopen it first, if the playbook allows: playbook reopen " + state["id"]])
    held = inc.roles_of(state, actor)
    if rule.who == MEMBER and not held:
        raise Refused(f"incident {state['id']}: {actor} holds no role in this incident and "
                      f"cannot {doing}", ["ask the incident lead to assign you a role"])
    if rule.who == MANAGER and not set(managers(state)) & set(held) and not unmanaged(state):
        raise Refused(f"incident {state['id']}: only holders of {', '.join(managers(state))} may {doing}; "
                      f"{actor} holds {', '.join(held) or 'no role'}")
    if rule.who == APPROVING_ROLE and post is not None:
        policy = post["policy"]
        approving = policy["all_of"] + policy["any_of"]
        if not set(approving) & set(held):
            raise Refused(f"incident {state['id']}: {actor} holds none of the approving roles of "
                          f"{post_id} ({', '.join(approving)})")


def unmanaged(state: dict) -> bool:
    """An incident a monitor opened (engine.incidents.monitors) that nobody manages yet:
    until someone holds one of its managing roles, any person may assign them."""
    if not state.get("origin"):
        return False
    wanted = set(managers(state))
    return not any(people for role, people in state["roles"].items() if role in wanted)


def transition(state: dict, actor: str, trigger: str) -> str:
    """The stage `actor` moves the incident to by firing `trigger`, or Refused/NotFound:
    the name and the closed incident are checked here, the transition's roles and
    guards by the state machine."""
    from .machine import fire

    require(state, actor, "advance", trigger=trigger)
    return fire(state, trigger, actor)


def _closed_allows(state: dict, rule: Rule, trigger: str | None, task: str | None) -> bool:
    if rule.closed == ALLOWED:
        return True
    if rule.closed == REVIEW:  # a closed incident's own stage may still have a review checklist
        return task is not None and inc.task_stage(state, task) == state["stage"]
    if rule.closed == REOPENING:
        return trigger is None or bool(state["plan"]["transitions"].get(trigger, {}).get("reopen"))
    return False
