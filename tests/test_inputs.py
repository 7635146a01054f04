"""Typed incident inputs: ``--set NAME=VALUE`` pairs, checked against the playbook."""

from __future__ import annotations

import pytest

from engine.errors import UsageError
from engine.format.inputs import MAX_VALUE, coerce, parse_pairs, resolve


def spec(kind: str, **extra) -> dict:
    """An input spec as the compiled plan stores it."""
    return {"type": kind, "required": False, "confidential": False, "default": None,
            "values": None, **extra}


# -- parse_pairs -------------------------------------------------------------------


def test_pairs_split_at_the_first_equals_sign():
    assert parse_pairs(["a=1", "b=x=y", "c="], "--set") == {"a": "1", "b": "x=y", "c": ""}


def test_pair_names_are_trimmed_but_values_are_kept_as_given():
    assert parse_pairs([" name = value "], "--set") == {"name": " value "}


def test_no_pairs_is_an_empty_mapping():
    assert parse_pairs((), "--assign") == {}


@pytest.mark.parametrize("pair", ["foo", "", "=value", "  =value"])
def test_a_pair_without_a_name_or_equals_sign_is_a_usage_error(pair):
    with pytest.raises(UsageError, match="--set expects NAME=VALUE") as e:
        parse_pairs(["ok=1", pair], "--set")
    assert e.value.exit_code == 2
    assert repr(pair) in str(e.value)


def test_the_same_name_twice_is_a_usage_error_naming_the_option():
    with pytest.raises(UsageError, match="--assign incident_lead is given twice"):
        parse_pairs(["incident_lead=alice", "incident_lead=carol"], "--assign")


# -- coerce: valid values --------------------------------------------------------------


@pytest.mark.parametrize("kind, extra, raw, stored", [
    ("string", {}, "  St Mary's Hospital  ", "St Mary's Hospital"),
    ("text", {}, "line one\nline two", "line one\nline two"),
    ("url", {}, "https://x.com/patient/status/1", "https://x.com/patient/status/1"),
    ("url", {}, "http://example.org", "http://example.org"),
    ("email", {}, "press@example-hospital.org", "press@example-hospital.org"),
    ("phone", {}, "+44 20 7946 0958", "+44 20 7946 0958"),
    ("phone", {}, "(555) 010-9999", "(555) 010-9999"),
    ("integer", {}, "10", 10),
    ("integer", {}, " -3 ", -3),
    ("boolean", {}, "yes", True),
    ("boolean", {}, "TRUE", True),
    ("boolean", {}, "on", True),
    ("boolean", {}, "1", True),
    ("boolean", {}, "No", False),
    ("boolean", {}, "off", False),
    ("boolean", {}, "0", False),
    ("enum", {"values": ["x", "facebook"]}, "facebook", "facebook"),
    ("date", {}, "2026-11-22", "2026-11-22"),
    ("datetime", {}, "2026-11-22T09:30:00Z", "2026-11-22T09:30:00Z"),
    ("datetime", {}, "2026-11-22T10:30:00+01:00", "2026-11-22T09:30:00Z"),
    ("datetime", {}, "2026-11-22T04:30:00-05:00", "2026-11-22T09:30:00Z"),
])
def test_valid_values_are_stored_in_their_typed_form(kind, extra, raw, stored):
    value = coerce("field", spec(kind, **extra), raw)
    assert value == stored
    assert type(value) is type(stored)


def test_datetimes_are_stored_in_utc_whatever_zone_they_were_given_in():
    a = coerce("when", spec("datetime"), "2026-03-14T23:30:00-02:00")
    assert a == "2026-03-15T01:30:00Z"


# -- coerce: invalid values -------------------------------------------------------------


@pytest.mark.parametrize("kind, extra, raw, says", [
    ("string", {}, "two\nlines", "must be a single line"),
    ("url", {}, "ftp://x", "is not an http(s) URL"),
    ("url", {}, "example.org/page", "is not an http(s) URL"),
    ("url", {}, "https://", "is not an http(s) URL"),
    ("url", {}, "javascript:alert(1)", "is not an http(s) URL"),
    ("email", {}, "press@localhost", "is not an email address"),
    ("email", {}, "not an email", "is not an email address"),
    ("phone", {}, "call me", "is not a phone number"),
    ("phone", {}, "12345", "is not a phone number"),
    ("phone", {}, "+-() ./-", "is not a phone number"),
    ("integer", {}, "ten", "is not a whole number"),
    ("integer", {}, "1.5", "is not a whole number"),
    ("boolean", {}, "maybe", "is not true or false"),
    ("enum", {"values": ["x", "facebook"]}, "tiktok", "is not one of x, facebook"),
    ("enum", {"values": ["x", "facebook"]}, "X", "is not one of x, facebook"),
    ("date", {}, "22/11/2026", "is not a date like 2026-11-22"),
    ("date", {}, "2026-02-30", "is not a date like 2026-11-22"),
    ("datetime", {}, "2026-11-22T09:30:00", "has no time zone"),
    ("datetime", {}, "tomorrow morning", "is not a date and time"),
])
def test_invalid_values_are_usage_errors_naming_the_input_and_its_type(kind, extra, raw, says):
    with pytest.raises(UsageError) as e:
        coerce("field", spec(kind, **extra), raw)
    assert e.value.exit_code == 2
    assert f"input 'field' ({kind})" in str(e.value)
    assert says in str(e.value)


@pytest.mark.parametrize("kind", ["string", "text", "url", "integer", "boolean", "date"])
def test_an_empty_or_blank_value_is_refused_for_every_type(kind):
    with pytest.raises(UsageError, match="value is empty"):
        coerce("field", spec(kind), "   ")


def test_an_overlong_value_is_refused():
    with pytest.raises(UsageError, match=f"longer than {MAX_VALUE} characters"):
        coerce("field", spec("text"), "a" * (MAX_VALUE + 1))
    assert coerce("field", spec("text"), "a" * MAX_VALUE) == "a" * MAX_VALUE


# -- resolve ------------------------------------------------------------------------------


PLAN_INPUTS = {
    "hospital_name": spec("string", default="St Mary's Hospital"),
    "complaint_url": spec("url", required=True),
    "complaint_channel": spec("enum", required=True, values=["x", "facebook"]),
    "patient_name": spec("string", confidential=True),
}


def test_at_start_defaults_fill_the_inputs_not_given():
    values = resolve(PLAN_INPUTS, {"complaint_url": "https://x.com/p/1", "complaint_channel": "x"},
                     fill_defaults=True)
    assert values == {"complaint_url": "https://x.com/p/1", "complaint_channel": "x",
                      "hospital_name": "St Mary's Hospital"}


def test_a_given_value_wins_over_the_default():
    values = resolve(PLAN_INPUTS, {"complaint_url": "https://x.com/p/1", "complaint_channel": "x",
                                   "hospital_name": "General"}, fill_defaults=True)
    assert values["hospital_name"] == "General"


def test_missing_required_inputs_are_all_named_with_the_set_flag_to_give():
    with pytest.raises(UsageError) as e:
        resolve(PLAN_INPUTS, {}, fill_defaults=True)
    message = str(e.value)
    assert "missing required input(s): complaint_url, complaint_channel" in message
    assert "--set complaint_url=..." in message and "--set complaint_channel=..." in message


def test_later_changes_check_only_what_is_given_and_add_no_defaults():
    assert resolve(PLAN_INPUTS, {"patient_name": "Jane Roe"}, fill_defaults=False) == {
        "patient_name": "Jane Roe"}


def test_an_unknown_input_is_a_usage_error_listing_the_known_ones():
    with pytest.raises(UsageError) as e:
        resolve(PLAN_INPUTS, {"hospital": "General"}, fill_defaults=False)
    assert "unknown input 'hospital'" in str(e.value)
    assert "hospital_name, complaint_url, complaint_channel, patient_name" in str(e.value)


def test_a_bad_value_is_reported_before_missing_ones():
    with pytest.raises(UsageError, match="is not an http"):
        resolve(PLAN_INPUTS, {"complaint_url": "ftp://x"}, fill_defaults=True)
