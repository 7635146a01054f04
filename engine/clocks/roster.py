"""The on-call roster: who holds an on-call role (head of comms, executive on call) when.

Kept outside every playbook, like delivery destinations: people change weekly, playbooks
do not. An escalation ladder (engine.clocks.ladder) reaches people outside the incident
through it. The file (``roster.yaml`` beside the database, or ``$PLAYBOOK_ROSTER``)
maps each on-call role to its shifts::

    head_of_comms:
      - person: dana
        destination: pager.dana        # a key of the destinations file
        week: 2026-W49                 # an ISO week, Monday 00:00 UTC to the next Monday
      - person: eli
        destination: pager.eli
        from: 2026-12-05T18:00:00Z     # a time range (UTC timestamps): overrides the week
        until: 2026-12-07T08:00:00Z
    executive_on_call:
      - person: morgan
        destination: pager.morgan      # no week and no range: whenever no other shift applies

At a moment, a role is held by its matching time ranges, else its matching weeks, else
its standing entries (several matching shifts of the same kind: all of them). Every
problem of the file is reported in one :class:`~engine.errors.UsageError` naming the
file and the entry; a missing file is an empty roster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from ..errors import UsageError

ROLE = re.compile(r"^[a-z][a-z0-9_]*$")
WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
KEYS = {"person", "destination", "week", "from", "until"}
MAX_SHIFTS = 10_000


@dataclass(frozen=True)
class Shift:
    role: str
    person: str
    destination: str | None
    start: datetime | None = None  # None: a standing entry
    end: datetime | None = None
    kind: str = "standing"  # range | week | standing

    def covers(self, at: datetime) -> bool:
        return self.start is None or self.start <= at < self.end


@dataclass(frozen=True)
class Roster:
    shifts: tuple[Shift, ...] = ()
    source: str = ""

    @property
    def roles(self) -> list[str]:
        return sorted({s.role for s in self.shifts})

    def holders(self, role: str, at: datetime) -> list[Shift]:
        """Who holds `role` at `at`: the matching ranges, else weeks, else standing entries."""
        matching = [s for s in self.shifts if s.role == role and s.covers(at)]
        for kind in ("range", "week", "standing"):
            found = [s for s in matching if s.kind == kind]
            if found:
                return found
        return []


def load_roster(path: Path) -> Roster:
    """The roster in `path`; an empty one when the file does not exist."""
    if not path.exists():
        return Roster()
    import yaml

    try:
        # every value as text: a timestamp or a week is read as written, never converted
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UsageError(f"{path}: cannot read the on-call roster ({' '.join(str(e).split())})") from None
    return parse_roster(data, str(path))


def parse_roster(data: object, source: str) -> Roster:
    if data in (None, ""):
        return Roster(source=source)
    if not isinstance(data, dict):
        raise UsageError(f"{source}: the on-call roster is a mapping of on-call roles to lists of shifts "
                         "({person: NAME, destination: KEY, week: 2026-W49})")
    problems: list[str] = []
    shifts: list[Shift] = []
    for role, entries in data.items():
        if not ROLE.match(str(role)):
            problems.append(f"{role!r}: not a role name (lower_snake_case, e.g. head_of_comms)")
            continue
        if not isinstance(entries, list) or not entries:
            problems.append(f"{role}: a list of shifts ({{person: NAME, destination: KEY, week: 2026-W49}})")
            continue
        for i, entry in enumerate(entries):
            shift = _shift(role, i, entry, problems)
            if shift is not None:
                shifts.append(shift)
    if len(shifts) > MAX_SHIFTS:
        problems.append(f"more than {MAX_SHIFTS} shifts")
    if problems:
        raise UsageError(f"{source}: the on-call roster has {len(problems)} problem(s); nothing was paged from it\n"
                         + "\n".join(f"  - {p}" for p in problems))
    return Roster(tuple(shifts), source)


def _shift(role: str, i: int, entry: object, problems: list[str]) -> Shift | None:
    where = f"{role}[{i + 1}]"
    if not isinstance(entry, dict):
        problems.append(f"{where}: a shift is a mapping such as {{person: dana, destination: pager.dana, "
                        "week: 2026-W49}")
        return None
    before = len(problems)
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(sorted(KEYS))})")
    person, destination = entry.get("person"), entry.get("destination")
    if not isinstance(person, str) or not person.strip() or len(person) > 200:
        problems.append(f"{where}: person: the account name of who holds {role} (required)")
    if destination is not None and (not isinstance(destination, str) or not destination.strip()):
        problems.append(f"{where}: destination: a key of the destinations file, such as pager.dana")
    start = end = None
    kind = "standing"
    if "week" in entry and ("from" in entry or "until" in entry):
        problems.append(f"{where}: give either week: or from:/until:, not both")
    elif "week" in entry:
        kind = "week"
        start = _week(entry["week"], where, problems)
        end = start + timedelta(days=7) if start else None
    elif "from" in entry or "until" in entry:
        kind = "range"
        start = _moment(entry.get("from"), f"{where}: from", problems)
        end = _moment(entry.get("until"), f"{where}: until", problems)
        if start and end and end <= start:
            problems.append(f"{where}: until: {entry['until']} is not after from: {entry['from']}")
    if len(problems) > before:
        return None
    return Shift(role, person.strip(), destination.strip() if destination else None, start, end, kind)


def _week(value: object, where: str, problems: list[str]) -> datetime | None:
    m = WEEK.match(value) if isinstance(value, str) else None
    try:
        if m is None:
            raise ValueError
        return datetime.combine(date.fromisocalendar(int(m[1]), int(m[2]), 1), datetime.min.time(), timezone.utc)
    except ValueError:
        problems.append(f"{where}: week: {value!r} is not an ISO week such as 2026-W49")
        return None


def _moment(value: object, where: str, problems: list[str]) -> datetime | None:
    if not isinstance(value, str):
        problems.append(f"{where}: a UTC timestamp such as 2026-12-05T18:00:00Z (from: and until: go together)")
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        problems.append(f"{where}: {value!r} is not a timestamp with its time zone, such as 2026-12-05T18:00:00Z")
        return None
    return moment.astimezone(timezone.utc)
