"""What reading an incident needs, without the writing code of :mod:`engine.incidents.act`.

:func:`read_state` is the state a read sees; :data:`authenticated_as` is the principal the
current use case runs as, which the application layer sets for reads and writes alike
(engine.app.context.acting). Both were in :mod:`engine.incidents.act`, which still
exports them; they live here so that ``playbook status`` does not load the event
builders, the index row and the escalation ladders to read one projection.
"""

from __future__ import annotations

from contextvars import ContextVar

from ..errors import NotFound
from . import state as inc

#: The authenticated principal the current use case runs as (set by the application
#: layer, engine.app.context.acting; None for an asserted name). Its events record how
#: that person was authenticated.
authenticated_as: ContextVar = ContextVar("authenticated_as", default=None)


def read_state(store, incident: str) -> dict:
    """The incident's current state for reading, or NotFound."""
    snap = store.snapshot(incident)
    if snap is None:
        raise NotFound(f"no incident {incident!r} in this database (see: playbook list --all)")
    return inc.current_state(store, snap)
