"""The incident's clocks: what is due, when, and what is overdue.

Computed from the incident state and a given ``now`` (never the system time), so
``status``, ``due`` and drills all agree and tests can pin the moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .durations import format_duration


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ClockStatus:
    key: str  # stable id, e.g. "target:first_public_post", "stage:acknowledge:deadline"
    label: str
    due_at: datetime
    met_at: str | None
    now: datetime
    escalate: dict | None = None

    @property
    def overdue(self) -> bool:
        return self.met_at is None and self.now > self.due_at

    @property
    def left(self) -> timedelta:
        return self.due_at - self.now

    def describe(self) -> str:
        due = _iso(self.due_at)
        if self.met_at is not None:
            late = _parse(self.met_at) > self.due_at
            return f"{'met late' if late else 'met'} at {self.met_at} (due {due})"
        if self.overdue:
            return f"OVERDUE by {format_duration(-self.left)} (due {due})"
        return f"due {due}, {format_duration(self.left)} left"

    def to_json(self) -> dict:
        return {
            "key": self.key,
            "label": self.label,
            "due_at": _iso(self.due_at),
            "met_at": self.met_at,
            "overdue": self.overdue,
            "seconds_left": int(self.left.total_seconds()),
        }


def clocks(state: dict, now: datetime) -> list[ClockStatus]:
    """The clocks running for an incident now; none once it is closed."""
    if state["status"] == "closed":
        return []
    plan = state["plan"]
    posts = state["public_posts"]
    out: list[ClockStatus] = []
    target = plan["targets"]["first_public_post"]
    if target is not None:
        out.append(ClockStatus(
            "target:first_public_post", "first public post",
            _parse(state["started_at"]) + timedelta(seconds=target["seconds"]),
            posts["first_at"], now, target["escalate"],
        ))
    sid = state["stage"]
    stage = plan["stages"][sid]
    entered = _parse(state["stage_entered_at"])
    deadline = stage["deadline"]
    if deadline is not None:
        if deadline["until"] == "first_public_post":
            label, met = f"first public post in stage {sid}", posts["last_in_stage_at"]
        else:
            label, met = f"leave stage {sid}", None
        out.append(ClockStatus(
            f"stage:{sid}:deadline", label, entered + timedelta(seconds=deadline["seconds"]),
            met, now, deadline["escalate"],
        ))
    updates = stage["updates"]
    if updates is not None:
        last = posts["last_in_stage_at"]
        since = _parse(last) if last else entered
        out.append(ClockStatus(
            f"stage:{sid}:update", "next public update", since + timedelta(seconds=updates["seconds"]),
            None, now, updates["escalate"],
        ))
    return out
