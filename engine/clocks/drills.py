"""Drills: tabletop exercises on a simulated clock.

A drill is an incident started with ``drill: true`` (its id starts with ``DRILL-``
and every view, log, report and export says so; it is never delivered to real
services). Its clock can be moved forward with :func:`advance_clock`: the move is
itself an event (``ClockAdvanced``), every later event of the drill carries the
simulated time, scripted injects ("a journalist calls at +25m") fall due as the
clock passes them, and missed deadlines are recorded and escalated exactly as in
a real incident, so a team sees what would have been overdue.

A real incident's clock can never be moved.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from ..errors import Diagnostic, NotFound, PlaybookInvalid, Refused
from ..format.durations import parse_duration
from ..incidents import state as inc
from ..incidents.events import NewEvent, utc_now_iso
from .deadlines import OUTCOMES

MAX_INJECTS = 200
MAX_OFFSET = timedelta(days=30)


def load_scenario(path: str | Path) -> list[dict]:
    """Read a scenario file of timed injects; every problem with its file:line:col."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{p}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PlaybookInvalid([Diagnostic(str(p), 0, 0, "", f"cannot read the scenario: {e}")]) from None
    return parse_scenario(text, str(p))


def parse_scenario(text: str, where: str = "<scenario>") -> list[dict]:
    """The injects of a scenario's YAML text; every problem with its line:col."""
    from ..format.yamlsource import parse_yaml

    data, smap, problems = parse_yaml(text, where)
    if not isinstance(data, dict) or set(data) != {"injects"} or not isinstance(data["injects"], list):
        raise PlaybookInvalid([smap.diagnostic((), "a scenario is a mapping with one key, injects:, "
                                               "holding a list of {at: +10m, message: ...}")])
    injects, previous = [], timedelta(0)
    for i, item in enumerate(data["injects"][:MAX_INJECTS + 1]):
        loc = ("injects", i)
        if i == MAX_INJECTS:
            problems.append(smap.diagnostic(loc, f"more than {MAX_INJECTS} injects"))
            break
        if not isinstance(item, dict) or set(item) - {"at", "message"}:
            problems.append(smap.diagnostic(loc, "an inject has exactly two keys: at: (+10m) and message:"))
            continue
        message, at = item.get("message"), item.get("at")
        if not isinstance(message, str) or not message.strip():
            problems.append(smap.diagnostic(loc + ("message",), "message: must be non-empty text"))
        if not isinstance(at, str) or not at.startswith("+"):
            problems.append(smap.diagnostic(loc + ("at",), f"at: must be a time after the start such "
                                            f"as +10m or +1h30m, got {at!r}"))
            continue
        try:  # +0m is the post that starts the drill
            offset = timedelta(0) if re.fullmatch(r"0+[smhd]?", at[1:].strip()) else parse_duration(at[1:])
        except ValueError as e:
            problems.append(smap.diagnostic(loc + ("at",), str(e)))
            continue
        if offset > MAX_OFFSET:
            problems.append(smap.diagnostic(loc + ("at",), "at: is more than 30 days after the start"))
        elif offset < previous:
            problems.append(smap.diagnostic(loc + ("at",), f"at: {at} comes before the previous inject "
                                            "(list injects in time order)"))
        previous = max(previous, offset)
        injects.append({"at_seconds": int(offset.total_seconds()), "message": str(message).strip()})
    if problems:
        raise PlaybookInvalid(problems)
    return injects


def advance_clock(store, clock, actor: str, incident: str, seconds: int) -> dict:
    """Move a drill's simulated clock forward; deliver due injects; record missed deadlines."""
    from ..incidents import policy
    from ..incidents.act import act, event_time
    from .breaches import due, record

    if seconds <= 0:
        raise Refused("the clock only moves forward")

    def build(state):
        if not state["drill"]:
            raise Refused(f"incident {incident} is a real incident: its clock cannot be advanced",
                          ["only drills (playbook drill ...) run on a simulated clock"])
        policy.require(state, actor, "advance_clock")
        if state.get("sim_offset", 0) + seconds > MAX_OFFSET.total_seconds():
            raise Refused(f"incident {incident}: a drill's clock runs at most 30 days ahead")
        moved = {**state, "sim_offset": state.get("sim_offset", 0) + seconds}
        now = event_time(clock, moved)
        events = [NewEvent("ClockAdvanced", now, actor, {"seconds": seconds, "simulated_now": now})]
        started = inc.parse_time(state["started_at"])
        for i, inject in enumerate(state["injects"]):
            when = started + timedelta(seconds=inject["at_seconds"])
            if inject["delivered_at"] is None and utc_now_iso(when) <= now:
                events.append(NewEvent("InjectDelivered", now, actor, {
                    "index": i, "message": inject["message"], "scheduled_at": utc_now_iso(when)}))
        return events

    state = act(store, incident, build)
    items = due(store, clock.now(), incident=incident)
    recorded = record(store, clock, items)
    return {"state": inc.current_state(store, store.snapshot(incident)) if recorded else state, "recorded": recorded,
            "injects": [i for i in state["injects"] if i["delivered_at"] == state["updated_at"]]}


def summary(store, incident: str, now) -> dict:
    """A debrief from the drill's own log: every clock (due, met at, how late), the time
    to the first public post against its target, and each inject beside what the team
    did until the next one. The clocks are the report's (one implementation)."""
    from ..audit.report import build_report
    from ..incidents.service import status

    state = status(store, incident)
    if not state["drill"]:
        raise Refused(f"incident {incident} is a real incident, not a drill; see playbook report")
    report = build_report(store, incident, inc.effective_now(state, now))
    m = report["metrics"]
    buckets: dict[str, list[dict]] = {o: [] for o in OUTCOMES}
    for d in m["deadlines"]:
        buckets[d["outcome"]].append(d)
    started = inc.parse_time(state["started_at"])
    scheduled = [utc_now_iso(started + timedelta(seconds=i["at_seconds"])) for i in state["injects"]]
    people = [e for e in report["timeline"] if not e["actor"].startswith("system:")
              and e["type"] not in ("InjectDelivered", "ClockAdvanced", "IncidentStarted")]
    injects = []
    for n, inject in enumerate(state["injects"]):
        since = inject["delivered_at"]
        until = state["injects"][n + 1]["delivered_at"] if n + 1 < len(state["injects"]) else None
        after = [] if since is None else [
            {"at": e["at"], "actor": e["actor"], "what": e["what"]}
            for e in people if e["at"] >= since and (until is None or e["at"] < until)]
        injects.append({**inject, "scheduled_at": scheduled[n], "team_actions_after": after})
    return {"incident": incident, "title": state["title"], "as_of": report["report"]["as_of"],
            "first_public_post": m["first_public_post"],
            "time_to_first_public_post_seconds": m["time_to_first_public_post_seconds"],
            "outcome": buckets, "injects": injects, "breaches": m["breaches"]["count"],
            "escalations": m["escalations"]["count"]}
