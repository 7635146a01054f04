"""Use cases on incidents: start, read, list, roles, tasks, notes, inputs, stages, log.

Each takes the :class:`~engine.app.context.App` and the acting
:class:`~engine.app.principal.Principal` and returns what an interface shows; the
rules themselves are in the domain (:mod:`engine.incidents.service`, :mod:`engine.incidents.policy`).
"""

from __future__ import annotations

from pathlib import Path

from .context import App, acting
from .principal import Principal
from .reading import listing, status  # noqa: F401  (their home is engine.app.reading)


def __getattr__(name: str):
    """StartRequest and Started, made only by the commands that start something (a
    frozen dataclass costs about a millisecond to build, and ``status`` needs neither)."""
    if name in ("StartRequest", "Started"):
        from . import starting

        return getattr(starting, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def start(app: App, who: Principal, request: StartRequest) -> Started:
    from ..incidents import service
    from ..incidents.policy import scope_of

    if app.remote is not None:
        return app.remote.start(request)
    from .starting import Started
    from ..clocks.drills import load_scenario
    from ..posts.leaks import echoes
    from ..format.loader import load_playbook

    from ..clocks.drills import parse_scenario

    app.check_people(request.assign.values())
    loaded = load_playbook(request.playbook)
    injects = (load_scenario(request.scenario) if request.scenario else
               parse_scenario(request.scenario_text) if request.scenario_text is not None else None)
    with acting(who, scope_of("start")) as actor:
        state = service.start(
            app.store(), app.clock, actor, loaded, title=request.title, severity=request.severity,
            inputs=dict(request.inputs), assign=dict(request.assign), region=app.config.region,
            drill=request.drill, scenario=injects)
    return Started(state, list(echoes(state)))


def library(app: App) -> dict[str, "Path"]:
    """The playbooks people may start on a server, by name: the configured library
    folder's ``*.yaml`` files, else the shipped playbooks."""
    from ..resources import shipped_playbooks

    folder = app.config.playbooks
    if folder is None:
        return shipped_playbooks()
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def library_playbook(app: App, name: str) -> str:
    """The file of the library playbook `name`, or NotFound naming those there are."""
    from ..errors import NotFound

    found = library(app).get(name[:-5] if name.endswith(".yaml") else name)
    if found is None:
        raise NotFound(f"no playbook {name!r} in the library (there are: {', '.join(library(app)) or 'none'})")
    return str(found)


def assign(app: App, who: Principal, incident: str, role: str, person: str) -> dict:
    from ..incidents import service
    from ..incidents.policy import scope_of

    if app.remote is not None:
        return app.remote.assign(incident, role, person)
    app.check_people([person])
    with acting(who, scope_of("assign")) as actor:
        return service.assign(app.store(), app.clock, actor, incident, role, person)


def unassign(app: App, who: Principal, incident: str, role: str, person: str) -> dict:
    from ..incidents import service
    from ..incidents.policy import scope_of

    if app.remote is not None:
        return app.remote.unassign(incident, role, person)
    with acting(who, scope_of("unassign")) as actor:
        return service.unassign(app.store(), app.clock, actor, incident, role, person)


def task(app: App, who: Principal, incident: str, name: str, *, done: bool = True) -> dict:
    from ..incidents import service
    from ..incidents.policy import scope_of

    if app.remote is not None:
        return app.remote.task(incident, name, done=done)
    with acting(who, scope_of("task")) as actor:
        return service.task(app.store(), app.clock, actor, incident, name, done=done)


def note(app: App, who: Principal, incident: str, text: str, *, answer: bool = True) -> dict | None:
    """Add a note; the state after it (None without `answer`, where the caller shows none)."""
    from ..incidents import service
    from ..incidents.policy import scope_of

    if app.remote is not None:
        return app.remote.note(incident, text)
    with acting(who, scope_of("note")) as actor:
        return service.note(app.store(), app.clock, actor, incident, text, answer=answer)


def set_inputs(app: App, who: Principal, incident: str, values: dict[str, str]) -> dict:
    from ..incidents import service
    from ..incidents.policy import scope_of

    if app.remote is not None:
        return app.remote.set_inputs(incident, values)
    with acting(who, scope_of("set")) as actor:
        return service.set_inputs(app.store(), app.clock, actor, incident, values)


def advance(app: App, who: Principal, incident: str, trigger: str, reason: str | None = None) -> dict:
    from ..incidents import service
    from ..incidents.policy import scope_of

    if app.remote is not None:
        return app.remote.advance(incident, trigger, reason)
    with acting(who, scope_of("advance")) as actor:
        return service.advance(app.store(), app.clock, actor, incident, trigger, reason)


def close(app: App, who: Principal, incident: str, trigger: str | None = None,
          reason: str | None = None) -> dict:
    from ..incidents import service
    from ..incidents.policy import scope_of

    if app.remote is not None:
        return app.remote.close_incident(incident, trigger, reason)
    with acting(who, scope_of("close")) as actor:
        return service.close(app.store(), app.clock, actor, incident, trigger, reason)


def reopen(app: App, who: Principal, incident: str, trigger: str | None = None,
           reason: str | None = None) -> dict:
    from ..incidents import service
    from ..incidents.policy import scope_of

    if app.remote is not None:
        return app.remote.reopen(incident, trigger, reason)
    with acting(who, scope_of("reopen")) as actor:
        return service.reopen(app.store(), app.clock, actor, incident, trigger, reason)


def log(app: App, who: Principal, incident: str):
    """The incident's events, oldest first (an iterator: memory stays flat)."""
    from ..incidents import service

    if app.remote is not None:
        return app.remote.log(incident)
    with acting(who, "read"):
        return service.log(app.store(read_only=True), incident)
