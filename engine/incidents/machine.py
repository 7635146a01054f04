"""The state machine of a playbook, built with ``transitions``.

One machine per playbook version per process (cached by the playbook's hash),
built with ``auto_transitions=False`` so there is no ``to_<stage>()`` back door:
a stage can only be entered through a transition the playbook declares. Guards
run as the transition's condition. Replaying a log never fires triggers: the fold
(:mod:`engine.incidents.state`) reads the recorded ``StageChanged`` events instead.
"""

from __future__ import annotations

from functools import lru_cache

from ..errors import NotFound, Refused
from .state import blockers, transitions_from_here


class _Model:
    """The machine's view of one incident for the duration of one command."""

    def __init__(self, state: dict, actor: str) -> None:
        self.incident = state
        self.actor = actor
        self.unmet: list[str] = []

    def guards_met(self, trigger: str) -> bool:
        self.unmet = blockers(self.incident, trigger, self.actor, check_stage=False)
        return not self.unmet


@lru_cache(maxsize=16)
def _machine(sha256: str, spec: tuple):
    from transitions import Machine

    stages, transitions = spec
    machine = Machine(
        model=None,
        states=list(stages),
        initial=None,
        auto_transitions=False,
        ignore_invalid_triggers=False,
        send_event=True,
    )
    for trigger, sources, dest in transitions:
        machine.add_transition(
            trigger, list(sources), dest,
            conditions=[lambda event, t=trigger: event.model.guards_met(t)],
        )
    return machine


def machine_for(plan: dict):
    # Sorted: a plan read back from the store has its keys in another order than the
    # plan compiled at start, and both must find the same machine.
    spec = (
        tuple(sorted(plan["stages"])),
        tuple(sorted((t, tuple(tr["from"]), tr["to"]) for t, tr in plan["transitions"].items())),
    )
    return _machine(plan["sha256"], spec)


def fire(state: dict, trigger: str, actor: str) -> str:
    """Fire `trigger` for the incident; return the new stage or raise Refused/NotFound.

    Nothing is written here: the caller records the move only if this returns.
    """
    from transitions import MachineError

    plan = state["plan"]
    here = state["stage"]
    if trigger not in plan["transitions"]:
        raise NotFound(f"incident {state['id']}: playbook {plan['id']} has no transition "
                       f"{trigger!r} (possible from {here}: "
                       f"{', '.join(transitions_from_here(state)) or 'none'})")
    machine = machine_for(plan)
    model = _Model(state, actor)
    machine.add_model(model, initial=here)
    try:
        try:
            moved = model.trigger(trigger)
        except MachineError:
            raise Refused(
                f"incident {state['id']}: {trigger} cannot be fired from stage {here}",
                [f"it leads from {', '.join(plan['transitions'][trigger]['from'])}",
                 f"possible from {here}: {', '.join(transitions_from_here(state)) or 'none'}"],
            ) from None
        if not moved:
            raise Refused(f"incident {state['id']}: {trigger} is blocked; nothing was changed",
                          model.unmet)
        return model.state
    finally:
        machine.remove_model(model)
