"""Use cases that read incidents: one incident's state, and the listing.

They were in :mod:`engine.app.incidents`, which still exports them; here, ``playbook status``
loads neither the other use cases nor the domain service they call.
"""

from __future__ import annotations

from .context import App, acting
from .principal import Principal


def status(app: App, who: Principal, incident: str) -> dict:
    if app.remote is not None:
        return app.remote.status(incident)
    from ..incidents.reading import read_state  # not the service: status loads no writing code

    with acting(who, "read"):
        return read_state(app.store(read_only=True), incident)


def listing(app: App, who: Principal, *, include_closed: bool = False, stage: str | None = None,
            playbook: str | None = None, full: bool = False) -> list:
    """The incidents' listing rows (engine.incidents.index), or with `full` their whole states."""
    if app.remote is not None:
        return app.remote.listing(include_closed=include_closed, stage=stage, playbook=playbook, full=full)
    from ..incidents.index import listed

    with acting(who, "read"):
        store = app.store(read_only=True)
        if full:
            from ..incidents import service

            return service.list_incidents(store, include_closed=include_closed, stage=stage, playbook=playbook)
        return listed(store, include_closed=include_closed, stage=stage, playbook=playbook)
