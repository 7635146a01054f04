"""Frozen, past-tense event records, their canonical JSON and their hashes.

An incident's audit log is a hash chain. Event ``n`` stores ``prev`` (the hash
of event ``n - 1``; for event 1 a *genesis* value derived from the database id
and the incident id) and ``hash``, the SHA-256 of the canonical JSON of::

    {"db": database_id, "incident": ..., "seq": n, "type": ..., "at": ...,
     "actor": ..., "data": {...}, "prev": ...}

Canonical JSON is ``json.dumps`` with sorted keys, no whitespace, UTF-8 (no
``\\u`` escapes beyond those JSON requires) and no NaN or infinities. Only plain
JSON values are accepted (dict with str keys, list, str, int, float, bool,
None), so what is read back is exactly what was written.

Timestamps are UTC ISO 8601 strings with millisecond precision and a ``Z``
suffix (``2026-11-22T11:42:59.123Z``); they sort as text in time order.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from json.encoder import encode_basestring as _quote  # the C encoder json.dumps uses

__all__ = [
    "Event",
    "NewEvent",
    "canonical",
    "event_hash",
    "genesis",
    "hashed_text",
    "parse_iso",
    "utc_now_iso",
]

# --- time -------------------------------------------------------------------


def utc_now_iso(dt: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (truncated to ms)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"timestamp {dt!r} has no time zone; pass an aware datetime")
    u = dt.astimezone(timezone.utc)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond // 1000:03d}Z"
    )


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp with an explicit zone (``Z`` or ``+HH:MM``) into aware UTC."""
    if not isinstance(text, str):
        raise TypeError(f"timestamp must be a string, not {type(text).__name__}")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"timestamp {text!r} is not ISO 8601 (expected e.g. 2026-11-22T11:42:59.123Z)"
        ) from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"timestamp {text!r} has no time zone (add Z for UTC)")
    return dt.astimezone(timezone.utc)


def _check_at(at: str) -> None:
    if not isinstance(at, str) or utc_now_iso(parse_iso(at)) != at:
        raise ValueError(
            f"event time {at!r} is not in the log's form YYYY-MM-DDTHH:MM:SS.mmmZ (UTC)"
        )


# --- canonical JSON -----------------------------------------------------------


def _plain(obj: object) -> bool:
    """Whether ``obj`` is made of plain JSON values only: the check below without the
    path of each value (building those paths was most of the cost of every write)."""
    t = type(obj)
    if t is dict:
        for key, value in obj.items():
            if type(key) is not str:
                return False
            tv = type(value)
            if not (tv is str or tv is int or tv is bool or value is None) and not _plain(value):
                return False
        return True
    if t is list:
        for value in obj:
            tv = type(value)
            if not (tv is str or tv is int or tv is bool or value is None) and not _plain(value):
                return False
        return True
    if t is float:
        return math.isfinite(obj)
    return obj is None or t is str or t is bool or t is int


def _check_plain(obj: object, where: str = "value") -> None:
    """Raise TypeError/ValueError unless ``obj`` is made of plain JSON values only."""
    if _plain(obj):
        return
    _explain_plain(obj, where)


def _explain_plain(obj: object, where: str) -> None:
    """The same check, naming where the first value that is not plain JSON sits."""
    t = type(obj)
    if obj is None or t is str or t is bool or t is int:
        return
    if t is float:
        if not math.isfinite(obj):
            raise ValueError(f"{where}: {obj!r} is not a JSON number")
        return
    if t is dict:
        for key, value in obj.items():
            if type(key) is not str:
                raise TypeError(f"{where}: key {key!r} is not a string")
            _explain_plain(value, f"{where}.{key}")
        return
    if t is list:
        for i, value in enumerate(obj):
            _explain_plain(value, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {t.__name__} is not a plain JSON value")


def canonical(obj: object) -> bytes:
    """The one byte form of a JSON value that every hash and signature is taken over."""
    _check_plain(obj)
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


# --- hashing ----------------------------------------------------------------


def genesis(database_id: str, incident: str) -> str:
    """The ``prev`` of an incident's first event: ties the chain to this database."""
    import hashlib  # here, not at the top: `status` never hashes, and loading OpenSSL costs ms

    return hashlib.sha256(canonical({"db": database_id, "genesis": incident})).hexdigest()


def hashed_text(
    database_id: str, incident: str, seq: int, type: str, at: str, actor: str,
    data_text: str, prev: str,
) -> str:
    """The canonical JSON text an event's hash covers, built from already-canonical data.

    Equal to ``canonical({...}).decode()`` when ``data_text`` is ``canonical(data)``
    (the tests hold this), but without walking ``data`` again. ``prev`` is
    inserted as is: a hash chain that checks out only contains hex there.
    """
    return (
        f'{{"actor":{_quote(actor)},"at":{_quote(at)},"data":{data_text},'
        f'"db":{_quote(database_id)},"incident":{_quote(incident)},"prev":"{prev}",'
        f'"seq":{seq},"type":{_quote(type)}}}'
    )


def event_hash(
    database_id: str, incident: str, seq: int, type: str, at: str, actor: str,
    data: dict, prev: str,
) -> str:
    """Hex SHA-256 of the canonical JSON of an event's content (see module docstring)."""
    import hashlib  # see genesis()

    return hashlib.sha256(
        canonical(
            {
                "db": database_id,
                "incident": incident,
                "seq": seq,
                "type": type,
                "at": at,
                "actor": actor,
                "data": data,
                "prev": prev,
            }
        )
    ).hexdigest()


# --- records ----------------------------------------------------------------


@dataclass(frozen=True)
class NewEvent:
    """What a use case asks the store to append (the store assigns seq and hashes)."""

    type: str  # past tense: "IncidentStarted", "RoleAssigned", "PostApproved", ...
    at: str  # UTC ISO string from the injected clock, see utc_now_iso()
    actor: str
    data: dict

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type:
            raise ValueError(f"event type must be a non-empty string, not {self.type!r}")
        if not isinstance(self.actor, str):
            raise TypeError(f"event actor must be a string, not {type(self.actor).__name__}")
        _check_at(self.at)
        if type(self.data) is not dict:
            raise TypeError(f"event data must be a dict, not {type(self.data).__name__}")
        _check_plain(self.data, "data")


@dataclass(frozen=True)
class Event:
    """One stored event of an incident's log."""

    incident: str
    seq: int  # 1, 2, 3 ... contiguous per incident
    type: str
    at: str
    actor: str
    data: dict
    prev: str  # hash of event seq - 1, or genesis(database_id, incident) for seq 1
    hash: str

    def to_json(self) -> dict:
        return asdict(self)
