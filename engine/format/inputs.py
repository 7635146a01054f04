"""Typed incident inputs: ``--set name=value`` parsed and checked against the plan."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlparse

from ..errors import UsageError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{6,25}$")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}
MAX_VALUE = 5_000
#: How far in the future a datetime input may be (clocks differ a little between machines).
FUTURE_SKEW = timedelta(minutes=5)


def parse_pairs(pairs: tuple[str, ...] | list[str], option: str) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; malformed -> UsageError."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"{option} expects NAME=VALUE, got {pair!r}")
        if name in out:
            raise UsageError(f"{option} {name} is given twice")
        out[name] = value
    return out


def coerce(name: str, spec: dict, raw: str, now: datetime | None = None) -> object:
    """Check one raw value against its input spec; return the stored JSON value.

    A datetime is stored in UTC; with `now`, one more than a few minutes ahead is
    refused (it is when something happened, and clocks count from it)."""
    kind = spec["type"]
    where = f"input {name!r} ({kind})"
    value = raw.strip()
    if not value:
        raise UsageError(f"{where}: value is empty")
    if len(value) > MAX_VALUE:
        raise UsageError(f"{where}: value is longer than {MAX_VALUE} characters")
    from ..safetext import refuse_unsafe

    refuse_unsafe(where, value)  # newline and tab: string inputs refuse a newline below
    if kind in ("string", "text"):
        if kind == "string" and "\n" in value:
            raise UsageError(f"{where}: must be a single line")
        return value
    if kind == "url":
        parts = urlparse(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"{where}: {raw!r} is not an http(s) URL")
        return value
    if kind == "email":
        if not _EMAIL.match(value):
            raise UsageError(f"{where}: {raw!r} is not an email address")
        return value
    if kind == "phone":
        if not _PHONE.match(value) or sum(c.isdigit() for c in value) < 6:
            raise UsageError(f"{where}: {raw!r} is not a phone number")
        return value
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"{where}: {raw!r} is not a whole number") from None
    if kind == "boolean":
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise UsageError(f"{where}: {raw!r} is not true or false")
    if kind == "enum":
        if value not in spec["values"]:
            raise UsageError(f"{where}: {raw!r} is not one of {', '.join(spec['values'])}")
        return value
    if kind == "date":
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise UsageError(f"{where}: {raw!r} is not a date like 2026-11-22") from None
    if kind == "datetime":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"{where}: {raw!r} is not a date and time like 2026-11-22T09:30:00Z") from None
        if moment.tzinfo is None:
            raise UsageError(f"{where}: {raw!r} has no time zone; add one, e.g. Z or +01:00")
        moment = moment.astimezone(timezone.utc)
        if now is not None and moment > now + FUTURE_SKEW:
            raise UsageError(f"{where}: {raw!r} is in the future (now is "
                             f"{now.isoformat(timespec='seconds').replace('+00:00', 'Z')}); "
                             "it records when something happened")
        return moment.isoformat().replace("+00:00", "Z")
    raise UsageError(f"{where}: unsupported input type")  # pragma: no cover - the model forbids it


def resolve(plan_inputs: dict, raw: dict[str, str], *, fill_defaults: bool,
            now: datetime | None = None, problems: list[str] | None = None) -> dict:
    """Check raw values by name; at start, also apply defaults and require required ones.

    Every problem is found in one pass: with `problems` they are appended there for
    the caller to report with its own; without, they are raised together."""
    found: list[str] = []
    unknown = sorted(set(raw) - set(plan_inputs))
    known = ", ".join(plan_inputs) or "none"
    found += [f"unknown input {name!r} (this playbook's inputs: {known})" for name in unknown]
    values = {}
    for name, value in raw.items():
        if name in plan_inputs:
            try:
                values[name] = coerce(name, plan_inputs[name], value, now)
            except UsageError as e:
                found.append(e.message)
    if fill_defaults:
        for name, spec in plan_inputs.items():
            if name not in values and name not in raw and spec["default"] is not None:
                values[name] = spec["default"]
        missing = [n for n, spec in plan_inputs.items() if spec["required"] and n not in raw]
        if missing:
            flags = " ".join(f"--set {n}=..." for n in missing)
            found.append(f"missing required input(s): {', '.join(missing)} (give {flags})")
    if problems is not None:
        problems.extend(found)
    elif found:
        raise UsageError(found[0] if len(found) == 1 else
                         f"{len(found)} problems:\n" + "\n".join(f"  - {p}" for p in found))
    return values
