"""The incident's clocks: what is due, when, and how each one ended.

One implementation for every reader: ``status`` and ``due`` show :func:`clocks`
(the clocks of the current stage and the incident-wide targets), the report and
``drill-summary`` show :func:`ledger` (every clock of every stage visit), and both
come from the same rules below, applied to the same folded state. Nothing here
reads the system time: ``now`` is given, so tests can pin the moment.

A clock counts from an *anchor* (``from:``): the incident's start (targets), the
stage entry (stage deadlines), or an input of type datetime such as
``discovered_at`` (when an unset input is named, the default anchor is used and
the label says so). Its allowance (``within:``) may depend on the incident's
severity (``within: {critical: 30m, high: 60m}``): the severity in force when the
clock is met or its window closes, else now; a severity the mapping does not name
has no such clock.

Outcomes: ``met_on_time``, ``met_late``, ``missed`` (its window closed unmet: the
stage was left or the incident closed), ``open`` (still running; ``overdue``
once its due time has passed).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import NamedTuple

from ..format.durations import format_duration
from ..incidents.events import utc_now_iso

OUTCOMES = ("met_on_time", "met_late", "missed", "open")
WORDS = {"met_on_time": "met on time", "met_late": "met late", "missed": "missed", "open": "still open"}


def parse_ts(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def iso_ms(dt: datetime) -> str:
    """``dt`` as ``2026-03-14T09:15:00.000Z``: to the millisecond (truncated), a zone
    other than UTC kept as its offset."""
    if dt.tzinfo is not timezone.utc:
        return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # UTC, the usual case (``due`` prints thousands): the same text from the days and
    # seconds since the epoch, the day's text cached, the rest looked up (about half the
    # cost of isoformat's)
    t = dt - _EPOCH
    m, s = divmod(t.seconds, 60)
    h, m = divmod(m, 60)
    ms = t.microseconds // 1000
    return f"{_utc_day(t.days)}{_TWO[h]}:{_TWO[m]}:{_TWO[s]}.{_DIGIT[ms // 100]}{_TWO[ms % 100]}Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TWO = [f"{n:02d}" for n in range(100)]
_DIGIT = "0123456789"


@lru_cache(maxsize=1024)
def _utc_day(days: int) -> str:
    """``2026-03-14T``: the date ``days`` after 1970-01-01 (bounded: the days a process
    shows are few)."""
    return (_EPOCH + timedelta(days=days)).date().isoformat() + "T"


class ClockStatus(NamedTuple):
    """One clock as it stands at ``now``. Immutable; a named tuple rather than a frozen
    dataclass because ``due`` makes tens of thousands (one-sixth of the cost to make)."""

    key: str  # stable id, e.g. "target:first_public_post", "stage:acknowledge:deadline"
    label: str
    due_at: datetime
    met_at: str | None
    now: datetime
    escalate: dict | None = None
    kind: str = "target"  # target | stage | updates | message
    stage: str | None = None
    visit: int | None = None  # which visit of that stage (1 = the first time it was entered)
    anchor: str = "the incident's start"
    anchor_at: str | None = None
    closed_at: str | None = None  # the window closed unmet at this time
    every_seconds: int | None = None
    late_updates: int = 0
    gap_seconds: float | None = None  # a cadence's longest gap between public posts so far
    result: str | None = None  # a cadence's outcome, decided from its gaps

    @property
    def outcome(self) -> str:
        if self.result is not None:
            return self.result
        if self.met_at is not None:
            return "met_on_time" if parse_ts(self.met_at) <= self.due_at else "met_late"
        return "missed" if self.closed_at is not None else "open"

    @property
    def overdue(self) -> bool:
        return self.outcome == "open" and self.now > self.due_at

    @property
    def left(self) -> timedelta:
        return self.due_at - self.now

    @property
    def longest_gap_seconds(self) -> int | float | None:
        """A cadence's longest gap, the one still running (until its window closed, or now)
        included; computed here so that a clock depends on ``now`` only through ``now``."""
        if self.kind != "updates":
            return None
        final = ((parse_ts(self.closed_at) if self.closed_at else self.now) - parse_ts(self.anchor_at)).total_seconds()
        longest = final if self.gap_seconds is None else max(self.gap_seconds, final)
        return int(longest) if longest == int(longest) else round(longest, 3)

    @property
    def late_seconds(self) -> int:
        """How late: met late by, missed by (until its window closed), or overdue by now."""
        end = self.met_at or self.closed_at
        moment = parse_ts(end) if end else self.now
        return max(int((moment - self.due_at).total_seconds()), 0)

    def describe(self) -> str:
        if self.result is not None:
            return (f"{WORDS[self.result]}: {self.late_updates} late update(s), longest gap "
                    f"{format_duration(timedelta(seconds=self.longest_gap_seconds or 0))}")
        due, outcome = iso_ms(self.due_at), self.outcome
        if outcome == "met_on_time":
            return f"met on time at {self.met_at} (due {due})"
        if outcome == "met_late":
            late = format_duration(timedelta(seconds=self.late_seconds))
            return f"met late at {self.met_at}, {late} late (due {due})"
        if outcome == "missed":
            return f"missed (due {due}; window closed at {self.closed_at})"
        if self.now > self.due_at:  # overdue: late by now - due_at (late_seconds, without its rounding trip)
            return f"OVERDUE by {format_duration(self.now - self.due_at)} (due {due})"
        return f"due {due}, {format_duration(self.left)} left"

    def to_json(self) -> dict:
        return {
            "key": self.key,
            "label": self.label,
            "kind": self.kind,
            "stage": self.stage,
            "visit": self.visit,
            "from": self.anchor,
            "from_at": self.anchor_at,
            "due_at": iso_ms(self.due_at),
            "met_at": self.met_at,
            "closed_at": self.closed_at,
            "outcome": self.outcome,
            "overdue": self.overdue,
            "late_seconds": self.late_seconds,
            "seconds_left": int(self.left.total_seconds()),
            **({"every_seconds": self.every_seconds, "late_updates": self.late_updates,
                "longest_gap_seconds": self.longest_gap_seconds} if self.kind == "updates" else {}),
        }


def breach_key(clock: ClockStatus) -> str:
    """The key a missed clock's breach is recorded under: once per clock and due time."""
    return f"{clock.key}@{utc_now_iso(clock.due_at)}"


# -- what the state says happened ---------------------------------------------------


def visits(state: dict) -> list[dict]:
    """Every stage visit: stage, entered_at, left_at, first_public_at."""
    found = state.get("visits")
    if found:
        return found
    return [{"stage": state["stage"], "entered_at": state["stage_entered_at"], "left_at": None,
             "first_public_at": state["public_posts"].get("last_in_stage_at")}]


def public_times(state: dict) -> list[str] | None:
    """When each public publication happened, oldest first; None when the fold kept what
    the update clocks need of them in each visit (engine.incidents.event_types: a state
    whose moments came in time order), so that no clock reads the posts."""
    if state.get("cadence") is not None and state.get("visits"):
        return None
    return _scanned_public_times(state)


def _scanned_public_times(state: dict) -> list[str]:
    return sorted(p["at"] for post in state["posts"].values() if post["public"] for p in post["published"])


def severity_at(state: dict, moment: str | None) -> str:
    """The severity in force at `moment` (None: now)."""
    history = state.get("severity_history")
    if moment is None or not history:
        return state["severity"]
    level = history[0]["severity"]
    for h in history:
        if h["at"] <= moment:
            level = h["severity"]
    return level


def allowance(spec: dict, severity: str) -> int | None:
    """Seconds a clock allows at this severity; None: no such clock at this severity."""
    by = spec.get("by_severity")
    if by:
        return by.get(severity)
    return spec["seconds"]


def start_anchor(state: dict) -> tuple[str, str]:
    """What the incident-wide clocks count from: the start, or for an incident a monitor
    opened, when the first of the messages that opened it was posted (the time to
    detect counts against the team, not in its favour)."""
    origin = state.get("origin")
    if origin and origin.get("origin_at"):
        return origin["origin_at"], "the first message"
    return state["started_at"], "the incident's start"


def _anchor(state: dict, spec: dict, default_at: str, default_label: str) -> tuple[str, str]:
    name = spec.get("from")
    if name is None or name == "entry":
        return default_at, default_label
    if name == "start":
        return start_anchor(state)
    value = state["inputs"].get(name)
    if value in (None, ""):
        return default_at, f"{default_label}; {name} not set"
    return str(value), name


def _clock(state, spec, now, *, key, label, anchor_at, anchor, met, closed, **kw) -> ClockStatus | None:
    seconds = allowance(spec, severity_at(state, met or closed))
    if seconds is None:
        return None
    due = parse_ts(anchor_at) + timedelta(seconds=seconds)
    return ClockStatus(key, label, due, met, now, spec.get("escalate"), anchor=anchor, anchor_at=anchor_at,
                       closed_at=None if met else closed, **kw)


def _until(state: dict, until) -> tuple[str | None, str]:
    """When a target's condition was first met, and its wording."""
    if until in (None, "first_public_post"):
        return state["public_posts"]["first_at"], "first public post"
    if "published" in until:
        t = until["published"]
        first = state.get("first_published")
        if first is not None:  # kept by the fold
            return first.get(t), f"{t} published"
        times = [p["at"] for post in state["posts"].values() if post["template"] == t for p in post["published"]]
        return (min(times) if times else None), f"{t} published"
    stage = until["reached"]
    entered = [v["entered_at"] for v in visits(state) if v["stage"] == stage]
    return (entered[0] if entered else None), f"stage {stage} reached"


def _targets(state: dict, now: datetime) -> list[ClockStatus]:
    out = []
    closed = state.get("closed_at")
    for name, spec in state["plan"]["targets"].items():
        if spec is None:
            continue
        met, what = _until(state, spec.get("until"))
        anchor_at, anchor = _anchor(state, spec, *start_anchor(state))
        label = spec.get("title") or what
        c = _clock(state, spec, now, key=f"target:{name}", label=label, anchor_at=anchor_at,
                   anchor=anchor, met=met, closed=closed)
        if c is not None:
            out.append(c)
    return out


def _stage_clocks(state: dict, now: datetime, n: int, visit: dict, count: int,
                  pubs: list[str] | None) -> list[ClockStatus]:
    """The clocks of one stage visit; `pubs`: :func:`public_times`."""
    plan = state["plan"]
    sid = visit["stage"]
    stage = plan["stages"][sid]
    if stage["terminal"]:
        return []
    out = []
    end = visit["left_at"] or state.get("closed_at")
    deadline = stage["deadline"]
    if deadline is not None:
        entry_at, entry = visit["entered_at"], f"entering {sid}"
        if n == 0 and state.get("origin"):
            # opened by a monitor: the first stage began when the first message was posted,
            # so its deadline counts the time to detect against the team, like the targets
            entry_at, entry = start_anchor(state)
        anchor_at, anchor = _anchor(state, deadline, entry_at, entry)
        if deadline["until"] == "first_public_post":
            label, met = f"first public post in stage {sid}", visit["first_public_at"]
        else:
            label, met = f"leave stage {sid}", visit["left_at"]
        c = _clock(state, deadline, now, key=f"stage:{sid}:deadline", label=label, anchor_at=anchor_at,
                   anchor=anchor, met=met, closed=end, kind="stage", stage=sid, visit=count)
        if c is not None:
            out.append(c)
    updates = stage["updates"]
    if updates is not None:
        every = updates["seconds"]
        kept = visit.get("updates") if pubs is None else None
        if kept is None:  # not kept by the fold: from every public publication
            kept = cadence(visit["entered_at"], end, every, _scanned_public_times(state) if pubs is None else pubs)
        last = kept["last"] or kept["before"] or visit["entered_at"]  # the last mark: what the next counts from
        final = (parse_ts(end) if end else now) - parse_ts(last)
        since = "the last public update" if kept["last"] or kept["before"] else f"entering {sid}"
        result = None
        if end is not None:
            result = "missed" if final.total_seconds() > every else ("met_late" if kept["late"] else "met_on_time")
        out.append(ClockStatus(
            f"stage:{sid}:update", f"next public update (every {format_duration(timedelta(seconds=every))})",
            parse_ts(last) + timedelta(seconds=every), None, now, updates["escalate"], kind="updates",
            stage=sid, visit=count, anchor=since, anchor_at=last,
            closed_at=end if end else None, every_seconds=every, late_updates=kept["late"],
            gap_seconds=kept["gap"], result=result))
    return out


def cadence(entered: str, end: str | None, every: int, pubs: list[str]) -> dict:
    """What a visit's update clock needs of the public publications `pubs` (oldest first),
    in the shape the fold keeps it (engine.incidents.event_types ``visit["updates"]``): the
    last one before the visit was entered, the last during it (entry to `end`, both
    included), the longest gap between the marks (that one before, else the entry, then
    each during) and how many gaps were longer than `every`."""
    before = [t for t in pubs if t < entered]
    start = before[-1] if before else entered
    during = [t for t in pubs if entered <= t and (end is None or t <= end)]
    marks = [start, *during]
    gaps = [(parse_ts(b) - parse_ts(a)).total_seconds() for a, b in zip(marks, marks[1:])]
    return {"before": before[-1] if before else None, "last": during[-1] if during else None,
            "gap": max(gaps) if gaps else None, "late": sum(1 for g in gaps if g > every)}


def ledger(state: dict, now: datetime) -> list[ClockStatus]:
    """Every clock of the incident so far: the targets, then each stage visit's clocks."""
    out = _targets(state, now)
    pubs = public_times(state)
    seen: dict[str, int] = {}
    for n, visit in enumerate(visits(state)):
        seen[visit["stage"]] = seen.get(visit["stage"], 0) + 1
        out.extend(_stage_clocks(state, now, n, visit, seen[visit["stage"]], pubs))
    return out + _message_clocks(state, now)


def clocks(state: dict, now: datetime, *, messages: bool = True) -> list[ClockStatus]:
    """The clocks running for an incident now (targets and the current stage's, and each
    inbound message's unless not `messages`); none once closed."""
    if state["status"] == "closed":
        return []
    out = _targets(state, now)
    history = visits(state)
    count = sum(1 for v in history if v["stage"] == history[-1]["stage"])
    out += _stage_clocks(state, now, len(history) - 1, history[-1], count, public_times(state))
    return out + _message_clocks(state, now) if messages else out


def _message_clocks(state: dict, now: datetime) -> list[ClockStatus]:
    """Each inbound message's response clock (engine.incidents.inbound); none without messages."""
    if not state.get("inbound"):
        return []
    from ..incidents.inbound import message_clocks

    return message_clocks(state, now)
