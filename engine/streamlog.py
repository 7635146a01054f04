"""Folding a stream's log (engine.store.streams): the account log and the listening log.

A stream is a log like an incident's but not an incident. Each stream names its kinds
of event in a registry of :class:`StreamEvent` (the fields its data must hold, its fold,
what it means); :func:`fold` applies one event and :func:`replay` a whole log, with the
same refusals for both streams. The incident log has its own, richer registry
(engine.incidents.event_types).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterable


@dataclass(frozen=True)
class StreamEvent:
    fields: tuple[str, ...]  # what its data must hold
    fold: Callable[[dict, str, str, dict], None]
    description: str


def fold(kinds: dict[str, StreamEvent], log: str, unknown: str, state: dict | None, empty: Callable[[], dict],
         type: str, at: str, actor: str, data: dict, *, in_place: bool = False) -> dict:
    """The projection of the stream ``log`` (its name in messages) after one event: a new
    dict, unless ``in_place``. ValueError for an event it does not know, one that lacks a
    field, or one naming what the log has not recorded (``unknown`` says what that is)."""
    kind = kinds.get(type)
    if kind is None:
        raise ValueError(f"{type} is not an event of the {log}")
    missing = [f for f in kind.fields if f not in data]
    if missing:
        raise ValueError(f"{type} lacks {', '.join(missing)}")
    s = empty() if state is None else state if in_place else copy.deepcopy(state)
    try:
        kind.fold(s, at, actor, data)
    except KeyError as e:
        raise ValueError(f"{type} names {unknown} ({e})") from None
    s["events"] += 1
    return s


def replay(apply: Callable[..., dict], empty: Callable[[], dict], events: Iterable) -> dict:
    """Fold a whole stream log (objects with type, at, actor, data) from nothing, in place:
    one projection for the whole log, not a copy per event."""
    state = empty()
    for e in events:
        state = apply(state, e.type, e.at, e.actor, e.data, in_place=True)
    return state
