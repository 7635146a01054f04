"""People's names as the engine accepts them: one visible spelling per person.

A name is recorded on every event it acts in, and role checks compare names exactly,
so a name that *looks* like someone else's (``cаrol`` with a Cyrillic ``а`` beside
``carol``, ``ѕystem:x``, ``system：x``) would let one person pass for another in every
log and report. So a name must be non-empty, free of control characters, written in
one script (UTS #39's highly restrictive level), not a look-alike of the reserved
``system:`` prefix, and not a look-alike of another person already in the incident.
"""

from __future__ import annotations

from .errors import UsageError
from .safetext import refuse_unsafe

RESERVED = "system:"


def check_person(field: str, name: str | None) -> str:
    """The name, stripped; or UsageError naming `field` and what is wrong with it."""
    name = (name or "").strip()
    if not name:
        raise UsageError(f"{field} needs a person's name (it is empty)")
    refuse_unsafe(f"{field} {name!r}", name, one_line=True)
    if not name.isascii():
        from .lookalike import mixed_script, scripts

        if mixed_script(name):
            raise UsageError(f"{field} {name!r} mixes letters of several scripts "
                             f"({', '.join(sorted(scripts(name)))}), so it can pass for another "
                             "name; write it in one script")
    if reserved(name):
        raise UsageError(f"{field} {name!r}: names starting with {RESERVED!r} (or anything that "
                         "looks like it) are reserved for the engine")
    return name


def reserved(name: str) -> bool:
    """A name that is, or looks like, one of the engine's own (``system:...``)."""
    name = name.strip()
    if name.isascii():  # the common case, checked without the confusable data
        return name.casefold().startswith(RESERVED)
    from .lookalike import skeleton

    return skeleton(name).startswith(RESERVED)


def lookalike(name: str, people) -> str | None:
    """Another person in `people` whose name looks the same as `name`, if any."""
    from .lookalike import skeleton

    seen = skeleton(name)
    return next((p for p in people if p != name and skeleton(p) == seen), None)


def people(state: dict) -> set[str]:
    """Everyone named in an incident so far: who started it and every role holder."""
    return {state["started_by"], *(p for holders in state["roles"].values() for p in holders)}
