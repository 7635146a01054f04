"""What starting an incident (or a drill) takes and gives: the request and result types
of :func:`engine.app.incidents.start`, kept apart so that the commands that start nothing
never build them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StartRequest:
    """What starting an incident (or a drill) takes."""

    playbook: str  # a path to the playbook file (see library_playbook)
    title: str
    severity: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    assign: dict[str, str] = field(default_factory=dict)
    drill: bool = False
    scenario: str | None = None  # a drill's scenario file
    scenario_text: str | None = None  # or its YAML text


@dataclass(frozen=True)
class Started:
    state: dict
    #: (field, confidential input) pairs: a confidential value typed where a public post
    #: can show it (engine.posts.leaks.echoes)
    echoes: list[tuple[str, str]]
