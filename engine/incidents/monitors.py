"""Monitors: messages that no open incident takes, kept and counted until a rule fires.

A source that feeds a playbook (engine.sources: ``playbook: NAME``) records its messages
on that playbook's open incident. While none is open, a message is kept in the store's
reserved stream :data:`LISTENING` (``MessageHeld``: the same hash chain, write lock and
``verify`` as an incident's log, deduplicated by playbook, source and source id) with
the names of the playbook's monitors (engine.format.monitors) it matches. When a
monitor's spike is reached (``count`` matching messages posted within ``within``), the
stream records ``MonitorFired``, and then, outside the stream's lock:

* ``open``: the engine (:data:`SYSTEM`) starts an incident of the playbook
  (:func:`open_incident`) whose ``origin`` names the monitor and when the first of
  those messages was posted (its incident-wide clocks count from then: see
  :func:`engine.clocks.deadlines.start_anchor`); the matching messages kept since
  then are moved into it (:func:`claim` records ``MessagesAttached`` in the stream,
  :func:`attach` their ``MessageReceived`` in the incident);
* ``page``: the roles the monitor names are notified through the destinations file
  (``MonitorPaged``, one per attempt, or one saying that nobody could be reached).

Drills (a drill source, ``inbound add --drill``) are kept on the playbook's drill
:func:`track`, open DRILL incidents and page nobody.

Firing once: the decision is taken under the stream's write lock, so of two messages
arriving at once only one fires; one that arrives while the incident is being opened
is kept and moved with the others, and one that arrives after is sent to that
incident. A firing whose opener died is taken over after :data:`LEASE`. A ``page``
fires again only after its window has passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Iterable

from ..store.streams import LISTENING
from ..streamlog import StreamEvent, fold
from ..streamlog import replay as replay_stream
from .events import NewEvent, parse_iso, utc_now_iso

#: Who acts for the monitors (a ``system:`` name: no person can act under it).
SYSTEM = "system:monitor"
#: How long a firing may wait for its incident before another message takes it over.
LEASE = timedelta(minutes=2)
PROJECTION_VERSION = 1
#: How long a kept message stays in the projection (the log keeps it for ever; its
#: source id is remembered for ever, so it is never kept twice): longer than any spike.
KEPT_FOR = timedelta(days=8)
#: The message fields moved from the stream into the incident.
FIELDS = ("source", "source_id", "kind", "author", "text", "lang", "url", "posted_at", "reach", "via",
          "reported_by")


def empty() -> dict:
    return {"v": PROJECTION_VERSION, "kind": "listening", "messages": {}, "keys": {}, "openings": {},
            "count": 0, "events": 0}


def track(playbook: str, drill: bool = False) -> str:
    """What the listening log groups messages by: the playbook's id, or for drills its
    drill track (``drill:ID``, which no playbook id can be), counted and opened apart."""
    return f"drill:{playbook}" if drill else playbook


def key_of(playbook: str, source: str, source_id: str | None) -> str | None:
    return None if source_id is None else f"{playbook}\x1f{source}\x1f{source_id}"


# -- matching ---------------------------------------------------------------------------


def matches(spec: dict, message: dict) -> bool:
    """Whether `message` (checked fields) matches the compiled monitor `spec`: its source,
    its author's reach, and any keyword as whole words, case and accents ignored."""
    if spec["sources"] and message["source"] not in spec["sources"]:
        return False
    from ..format.monitors import words  # here: status and the views need none of the format

    reach = message.get("reach")
    if spec["min_reach"] is not None and (reach is None or reach < spec["min_reach"]):
        return False
    text = " " + " ".join(words(message["text"])) + " "
    return any(" " + " ".join(k) + " " in text for k in spec["keywords"])


def spike(state: dict, playbook: str, spec: dict) -> list[str]:
    """The kept messages of `playbook` matching `spec` from the first one of its earliest
    spike on (posted-at order), or [] when the spike is not reached."""
    found = sorted((m["posted_at"], mid) for mid, m in state["messages"].items()
                   if m["playbook"] == playbook and m["attached"] is None and spec["name"] in m["monitors"])
    need, within = spec["count"], timedelta(seconds=spec["within"])
    for i in range(len(found) - need + 1):
        if parse_iso(found[i + need - 1][0]) - parse_iso(found[i][0]) <= within:
            return [mid for _, mid in found[i:]]
    return []


# -- the stream's events ---------------------------------------------------------------


def _held(s: dict, at: str, actor: str, d: dict) -> None:
    horizon = utc_now_iso(parse_iso(at) - KEPT_FOR)
    for old in [mid for mid, m in s["messages"].items() if m["received_at"] < horizon]:
        del s["messages"][old]
    s["count"] = s.get("count", 0) + 1
    s["messages"][d["message"]] = {**{k: d.get(k) for k in FIELDS}, "playbook": d["playbook"],
                                   "monitors": list(d["monitors"]), "received_at": at, "attached": None}
    key = key_of(d["playbook"], d["source"], d.get("source_id"))
    if key is not None:
        s["keys"][key] = d["message"]
    opening = s["openings"].get(d["playbook"])
    if d["monitors"] and opening is not None and opening["action"] == "open" and opening["incident"] is None:
        opening["messages"].append(d["message"])  # kept while its incident is being opened: goes with it


def _fired(s: dict, at: str, actor: str, d: dict) -> None:
    s["openings"][d["playbook"]] = {"monitor": d["monitor"], "action": d["action"], "fired_at": at,
                                    "origin_at": d["origin_at"], "messages": list(d["messages"]),
                                    "incident": None, "paged": []}


def _attached(s: dict, at: str, actor: str, d: dict) -> None:
    for mid in d["messages"]:
        s["messages"][mid] = {**s["messages"][mid], "attached": d["incident"]}
    opening = s["openings"].get(d["playbook"])
    if opening is not None and opening["action"] == "open" and opening["incident"] is None:
        opening["incident"] = d["incident"]


def _paged(s: dict, at: str, actor: str, d: dict) -> None:
    s["openings"][d["playbook"]]["paged"].append({k: d[k] for k in ("target", "ok", "error")} | {"at": at})


EVENTS: dict[str, StreamEvent] = {
    "MessageHeld": StreamEvent(("message", "playbook", "monitors", "source", "text", "posted_at"), _held,
                             "a message no open incident took was kept, with the monitors it matches"),
    "MonitorFired": StreamEvent(("playbook", "monitor", "action", "messages", "origin_at"), _fired,
                              "a monitor's spike was reached: it opens an incident or pages someone"),
    "MessagesAttached": StreamEvent(("playbook", "incident", "messages"), _attached,
                                  "kept messages were moved into an incident of their playbook"),
    "MonitorPaged": StreamEvent(("playbook", "monitor", "target", "ok", "error"), _paged,
                              "someone was notified that a monitor fired (or nobody could be)"),
}


def apply(state: dict | None, type: str, at: str, actor: str, data: dict, *, in_place: bool = False) -> dict:
    """The projection after one event (a new dict, unless ``in_place``); ValueError for an
    event it does not know."""
    return fold(EVENTS, "listening log", "a message or firing the log has not recorded", state, empty,
                type, at, actor, data, in_place=in_place)


def replay(events: Iterable) -> dict:
    return replay_stream(apply, empty, events)


def disagreement(events: Iterable, stored: dict) -> str | None:
    """Why the stored projection of the listening log disagrees with its events (verify)."""
    from .events import canonical

    try:
        folded = replay(events)
    except (LookupError, TypeError, ValueError, AttributeError) as e:
        return f"the listening log cannot be folded ({type(e).__name__}: {e})"
    if isinstance(stored, dict) and stored.get("v") != PROJECTION_VERSION:
        return None
    if canonical(folded) != canonical(stored):
        return "the listening log: the stored messages and firings differ from those folded from its events (edited?)"
    return None


def _current(store, snapshot) -> dict:
    if snapshot is None:
        return empty()
    if snapshot.state.get("v") != PROJECTION_VERSION:
        return replay(store.events(LISTENING))
    return snapshot.state


def read(store) -> dict:
    """The listening log's projection (empty before its first event)."""
    return _current(store, store.stream(LISTENING))


# -- use cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    message: str | None  # its id in the listening log (L1, ...); None: it goes to `attach_to`
    new: bool
    attach_to: str | None = None  # the open incident a monitor opened: record it there instead
    fired: dict | None = None  # the MonitorFired data, when this message made a monitor fire
    monitors: list[str] = field(default_factory=list)


def _is_open(store, incident: str) -> bool:
    snap = store.snapshot(incident)
    return snap is not None and snap.state.get("status") == "open"


def _idle(state: dict, playbook: str, specs: dict, now) -> bool:
    opening = state["openings"].get(playbook)
    if opening is None or opening["incident"] is not None:
        return True  # never fired, or its incident is closed (an open one took the message)
    since = now - parse_iso(opening["fired_at"])
    if opening["action"] == "page":
        return since >= timedelta(seconds=(specs.get(opening["monitor"]) or {}).get("within", 3600))
    return since >= LEASE  # its opener died before the incident was opened: take it over


def hold(store, clock, playbook: str, specs: dict[str, dict], message: dict) -> Held:
    """Keep a checked message of `playbook` (no incident of it open) and fire the first
    of its monitors whose spike it completes, all under the stream's write lock."""
    now = clock.now()
    at = utc_now_iso(now)
    with store.transaction(LISTENING, stream=True) as tx:
        state = _current(store, tx.snapshot)
        opening = state["openings"].get(playbook)
        if opening and opening["incident"] and _is_open(store, opening["incident"]):
            return Held(None, False, attach_to=opening["incident"])
        key = key_of(playbook, message["source"], message.get("source_id"))
        if key is not None and key in state["keys"]:
            mid = state["keys"][key]
            return Held(mid, False, monitors=state["messages"].get(mid, {}).get("monitors", []))
        matched = [name for name, spec in specs.items() if matches(spec, message)]
        mid = f"L{state['count'] + 1}"
        events = [NewEvent("MessageHeld", at, SYSTEM, {"message": mid, "playbook": playbook, "monitors": matched,
                                                       **message})]
        state = apply(state, events[0].type, at, SYSTEM, events[0].data)
        fired = None
        if matched and _idle(state, playbook, specs, now):
            for name in matched:
                found = spike(state, playbook, specs[name])
                if found:
                    fired = {"playbook": playbook, "monitor": name, "action": specs[name]["action"],
                             "messages": found, "origin_at": state["messages"][found[0]]["posted_at"]}
                    events.append(NewEvent("MonitorFired", at, SYSTEM, fired))
                    state = apply(state, "MonitorFired", at, SYSTEM, fired)
                    fired = {**fired, "fired_at": at}
                    break
        tx.append(events, state)
    return Held(mid, True, fired=fired, monitors=matched)


def kept(store, playbook: str, source: str, source_id: str | None) -> str | None:
    """The id of the message of `playbook` the listening log kept from that source and
    not moved into an incident yet, if any."""
    state = read(store)
    mid = state["keys"].get(key_of(playbook, source, source_id) or "")
    m = state["messages"].get(mid or "")
    return mid if m is not None and m["attached"] is None else None


def claim(store, clock, playbook: str, incident: str, *, fired: bool = False, also: str | None = None) -> list[dict]:
    """Mark kept messages of `playbook` as moved into `incident` and return them (oldest
    first) for :func:`attach`: with `fired`, those of the firing being opened (its spike,
    and those kept while it was being opened); else every one that matched a monitor;
    and the kept message `also` in any case."""
    def pending(state: dict) -> bool:
        opening = state["openings"].get(playbook)
        return opening is not None and opening["action"] == "open" and opening["incident"] is None

    def waiting(state: dict) -> list[tuple[str, str]]:
        firing = set(state["openings"][playbook]["messages"]) if fired and pending(state) else set()
        return sorted((m["posted_at"], mid) for mid, m in state["messages"].items()
                      if m["playbook"] == playbook and m["attached"] is None
                      and ((mid in firing) if fired else bool(m["monitors"]) or mid == also))

    seen = read(store)  # most messages find nothing to move: no write lock for them
    if not waiting(seen) and not pending(seen):
        return []
    at = utc_now_iso(clock.now())
    with store.transaction(LISTENING, stream=True) as tx:
        if tx.snapshot is None:
            return []
        state = _current(store, tx.snapshot)
        ids = waiting(state)
        if not ids and not pending(state):
            return []
        data = {"playbook": playbook, "incident": incident, "messages": [mid for _, mid in ids]}
        state = apply(state, "MessagesAttached", at, SYSTEM, data)
        tx.append([NewEvent("MessagesAttached", at, SYSTEM, data)], state)
    return [{**state["messages"][mid], "held": mid} for _, mid in ids]


def attach(store, clock, incident: str, messages: list[dict]) -> tuple[dict, dict[str, str]]:
    """Record moved messages on `incident` (each once: an incident deduplicates by source
    and source id), each naming the kept message it was (``held``): (the incident's
    state, kept id -> the id it has in the incident)."""
    from . import inbound
    from .act import act, apply_all, event_time

    ids: dict[str, str] = {}

    def build(state):
        at, events, current = event_time(clock, state), [], state
        for m in messages:
            fields = {k: m[k] for k in FIELDS if m.get(k) is not None or k in ("source_id", "author", "lang", "url")}
            new = inbound.receive_events(current, SYSTEM, {**fields, "held": m["held"]}, at)
            if new:
                current = apply_all(current, new)
                events += new
                ids[m["held"]] = new[0].data["message"]
            else:
                ids[m["held"]] = inbound.known(current, m["source"], m.get("source_id"))
        return events

    return act(store, incident, build), ids


def open_incident(store, clock, loaded, spec: dict, fired: dict, first: dict, *, region: str | None = None,
                  drill: bool = False) -> dict:
    """Start the incident a monitor's firing opens, as the engine; its inputs copied from
    the first message where they fit (those that do not are named in its origin)."""
    from ..errors import UsageError
    from ..format.inputs import coerce
    from ..format.plan import compile_plan
    from . import service

    plan_inputs = compile_plan(loaded.playbook, loaded.sha256)["inputs"]
    values, skipped = {}, []
    for name, source in spec["inputs"].items():
        value = first.get(source)
        if value is None:
            continue
        try:
            coerce(name, plan_inputs[name], str(value), clock.now())
            values[name] = str(value)
        except UsageError as e:
            skipped.append(e.message)
    origin = {"monitor": spec["name"], "origin_at": fired["origin_at"], "messages": len(fired["messages"]),
              "fired_at": fired["fired_at"], **({"inputs_skipped": skipped} if skipped else {})}
    title = spec["title"] or f"{loaded.playbook.name}: monitor {spec['name']}"
    return service.start(store, clock, SYSTEM, loaded, title=title[:200], severity=spec["severity"],
                         inputs=values, region=region, origin=origin, drill=drill)


def detection(state: dict) -> dict | None:
    """How an incident a monitor opened was detected: the monitor, how many messages, when
    the first was posted, and the time to detect (opened - first posted); None otherwise."""
    origin = state.get("origin")
    if not origin:
        return None
    seconds = (parse_iso(state["started_at"]) - parse_iso(origin["origin_at"])).total_seconds()
    return {**origin, "opened_at": state["started_at"], "time_to_detect_seconds": max(int(seconds), 0)}


def detection_text(state: dict) -> str | None:
    found = detection(state)
    if found is None:
        return None
    from ..format.durations import format_duration

    return (f"Opened:   by monitor {found['monitor']} from {found['messages']} matching message(s), the first "
            f"posted {found['origin_at']}; time to detect "
            f"{format_duration(timedelta(seconds=found['time_to_detect_seconds']))}")


def page_text(playbook, spec: dict, fired: dict) -> dict:
    """The notice a firing sends: what fired, since when, and what to do."""
    n = len(fired["messages"])
    verb = "opened an incident" if spec["action"] == "open" else "asks you to confirm"
    body = (f"Monitor {spec['name']} of playbook {playbook.id} {verb}: {n} matching message(s), "
            f"the first posted {fired['origin_at']}. "
            + ("See: playbook list." if spec["action"] == "open" else
               f"To open an incident: playbook start {playbook.id}.yaml ... (the messages: playbook inbox --kept)"))
    return {"subject": f"[{playbook.id}] monitor {spec['name']}: {n} message(s)", "body": body}


def record_pages(store, clock, playbook: str, monitor: str, attempts: list[dict]) -> None:
    """Log who was notified of a firing (target redacted, ok, error), one event each."""
    at = utc_now_iso(clock.now())
    with store.transaction(LISTENING, stream=True) as tx:
        state = _current(store, tx.snapshot)
        events = []
        for a in attempts:
            data = {"playbook": playbook, "monitor": monitor, "target": a["target"], "ok": a["ok"],
                    "error": a["error"]}
            state = apply(state, "MonitorPaged", at, SYSTEM, data)
            events.append(NewEvent("MonitorPaged", at, SYSTEM, data))
        if events:
            tx.append(events, state)
