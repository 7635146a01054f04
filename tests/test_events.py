"""Event records, canonical JSON, timestamps and the hashes the audit log is chained with."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.incidents.events import (
    Event,
    NewEvent,
    canonical,
    event_hash,
    genesis,
    hashed_text,
    parse_iso,
    utc_now_iso,
)

DB = "0123456789abcdef0123456789abcdef"
AT = "2026-11-22T11:42:59.123Z"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)

# --- canonical JSON -----------------------------------------------------------------


def test_canonical_sorts_keys_and_has_no_whitespace():
    assert canonical({"b": 1, "a": [1, 2, {"d": None, "c": True}]}) == b'{"a":[1,2,{"c":true,"d":null}],"b":1}'


def test_canonical_keeps_non_ascii_as_utf8():
    assert canonical({"name": "Dr. Müller 陈 😀"}) == '{"name":"Dr. Müller 陈 😀"}'.encode("utf-8")


def test_canonical_escapes_what_json_requires():
    assert canonical('a"b\\c\nd\x01') == b'"a\\"b\\\\c\\nd\\u0001"'


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), {1: "x"}, ("a", "b"), {"a"}, b"bytes", datetime(2026, 1, 1), object()],
    ids=["nan", "inf", "int-key", "tuple", "set", "bytes", "datetime", "object"],
)
def test_canonical_rejects_values_that_are_not_plain_json(value):
    with pytest.raises((TypeError, ValueError)):
        canonical({"v": value})


@given(json_values)
def test_canonical_round_trips(value):
    assert json.loads(canonical(value)) == value


# --- hashes -------------------------------------------------------------------------


def test_genesis_is_stable_and_tied_to_database_and_incident():
    assert genesis(DB, "INC-1") == "27fffb96c57ed63407771a265a754ab3687bb03d834613570cdecfdbfd89cf75"
    assert genesis(DB, "INC-2") != genesis(DB, "INC-1")
    assert genesis("f" * 32, "INC-1") != genesis(DB, "INC-1")


def test_event_hash_is_stable_across_runs():
    """A golden value: changing it breaks every existing audit log."""
    h = event_hash(DB, "INC-1", 1, "IncidentStarted", AT, "alice",
                   {"title": "ER wait time complaint", "lang": "de", "ü": [1, 2.5, None]},
                   genesis(DB, "INC-1"))
    assert h == "f20ecec8960ab77a6a9fc7d7e1c932bf339e915b473fac6289c58f5d440cc29d"


def test_genesis_hashes_a_documented_text():
    text = b'{"db":"0123456789abcdef0123456789abcdef","genesis":"INC-1"}'
    assert genesis(DB, "INC-1") == hashlib.sha256(text).hexdigest()


def test_event_hash_is_the_sha256_of_the_canonical_content():
    data = {"role": "spokesperson", "person": "bob"}
    expected = hashlib.sha256(canonical({
        "db": DB, "incident": "INC-1", "seq": 2, "type": "RoleAssigned", "at": AT,
        "actor": "alice", "data": data, "prev": "ab" * 32,
    })).hexdigest()
    assert event_hash(DB, "INC-1", 2, "RoleAssigned", AT, "alice", data, "ab" * 32) == expected


@pytest.mark.parametrize("field", ["incident", "seq", "type", "at", "actor", "data", "prev"])
def test_every_field_is_covered_by_the_hash(field):
    base = dict(database_id=DB, incident="INC-1", seq=3, type="NoteAdded", at=AT, actor="bob",
                data={"text": "hi"}, prev="00" * 32)
    changed = dict(base, **{field: {"incident": "INC-2", "seq": 4, "type": "NoteEdited",
                                    "at": "2026-11-22T11:42:59.124Z", "actor": "eve",
                                    "data": {"text": "hi!"}, "prev": "01" * 32}[field]})
    assert event_hash(**base) != event_hash(**changed)


@given(
    incident=st.text(min_size=1), type_=st.text(min_size=1), actor=st.text(),
    data=st.dictionaries(st.text(), json_values, max_size=5), seq=st.integers(1, 10**12),
)
def test_hashed_text_is_the_canonical_form(incident, type_, actor, data, seq):
    """The fast text form used by append and verify equals canonical() of the dict."""
    prev = "cd" * 32
    text = hashed_text(DB, incident, seq, type_, AT, actor, canonical(data).decode(), prev)
    assert text.encode("utf-8") == canonical({
        "db": DB, "incident": incident, "seq": seq, "type": type_, "at": AT,
        "actor": actor, "data": data, "prev": prev,
    })


# --- time ---------------------------------------------------------------------------


def test_utc_now_iso_has_milliseconds_and_z():
    dt = datetime(2026, 11, 22, 11, 42, 59, 123456, tzinfo=timezone.utc)
    assert utc_now_iso(dt) == "2026-11-22T11:42:59.123Z"


def test_utc_now_iso_converts_to_utc_and_truncates():
    dt = datetime(2026, 11, 22, 12, 42, 59, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert utc_now_iso(dt) == "2026-11-22T11:42:59.999Z"


def test_utc_now_iso_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="time zone"):
        utc_now_iso(datetime(2026, 11, 22, 11, 42, 59))


def test_parse_iso_round_trip():
    parsed = parse_iso(AT)
    assert parsed == datetime(2026, 11, 22, 11, 42, 59, 123000, tzinfo=timezone.utc)
    assert parsed.utcoffset() == timedelta(0)
    assert utc_now_iso(parsed) == AT


@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.just(timezone.utc)))
def test_iso_round_trip_keeps_milliseconds(dt):
    text = utc_now_iso(dt)
    assert parse_iso(text) == dt.replace(microsecond=dt.microsecond // 1000 * 1000)
    assert utc_now_iso(parse_iso(text)) == text


def test_parse_iso_accepts_an_offset():
    assert utc_now_iso(parse_iso("2026-11-22T12:42:59.123+01:00")) == AT


@pytest.mark.parametrize("text", ["2026-11-22T11:42:59.123", "yesterday", "", "2026-13-01T00:00:00Z"])
def test_parse_iso_refuses_zoneless_or_malformed_text(text):
    with pytest.raises(ValueError):
        parse_iso(text)


# --- records ------------------------------------------------------------------------


def test_new_event_checks_its_fields():
    NewEvent("NoteAdded", AT, "alice", {"text": "ok"})
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        NewEvent("NoteAdded", "2026-11-22T11:42:59Z", "alice", {})
    with pytest.raises(ValueError):
        NewEvent("", AT, "alice", {})
    with pytest.raises(TypeError):
        NewEvent("NoteAdded", AT, "alice", ["not", "a", "dict"])
    with pytest.raises(TypeError):
        NewEvent("NoteAdded", AT, "alice", {"when": datetime(2026, 1, 1)})


def test_events_are_frozen_and_serialise_every_field():
    e = Event("INC-1", 1, "IncidentStarted", AT, "alice", {"a": 1}, "00" * 32, "11" * 32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.seq = 2  # type: ignore[misc]
    assert e.to_json() == {
        "incident": "INC-1", "seq": 1, "type": "IncidentStarted", "at": AT, "actor": "alice",
        "data": {"a": 1}, "prev": "00" * 32, "hash": "11" * 32,
    }
