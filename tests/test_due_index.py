"""`due` builds its items from the incident index: the same clocks the state gives, at any moment."""

from __future__ import annotations

import pytest

from conftest import VIRAL_START
from engine.clocks import breaches
from test_clocks import breach_start
from test_figures import LOOP, at, publish

M, H = 60, 3600
INC = "INC-20260314-001"


def shown(items) -> list:
    """What `due` prints and what --json carries, item by item."""
    return [(i.incident, i.title, i.drill, i.recorded, i.clock.label, i.clock.describe(), i.to_json())
            for i in items]


def from_states(store, now, within: int = 0) -> list:
    """`due` on the same incidents read in full: their index rows are dropped first
    (a write without a summary), so due must parse each state, as before the index."""
    items = breaches.due(store, now, within)
    for incident in store.incidents():
        with store.transaction(incident) as tx:
            tx.rewrite_projection(tx.snapshot.state, None)
    assert all(row is None for _, row in store.summaries())
    return breaches.due(store, now, within)


@pytest.fixture
def incidents(cli, clock, tmp_path):
    """A cadence with a finished gap (loop), a drill ahead of real time, a clock from an
    input given with an offset (privacy breach, at critical severity), one breach recorded."""
    loop = tmp_path / "loop.yaml"
    loop.write_text(LOOP, encoding="utf-8")
    assert cli("start", str(loop), "--title", "Loop", "--assign", "lead=alice",
               "--assign", "spokesperson=bob").exit_code == 0
    at(clock, 10 * M); publish(cli, INC, "update", "x/en")
    at(clock, 50 * M); publish(cli, INC, "update", "x/en")
    assert cli("drill", *VIRAL_START[1:]).exit_code == 0
    assert cli("advance-clock", "DRILL-20260314-001", "10m").exit_code == 0
    assert cli(*breach_start("2026-03-12T10:30:00.250+02:00"), "--severity", "critical").exit_code == 0
    at(clock, 70 * M)
    result = cli("due")  # only the drill is overdue: its breach is recorded, and it pages nobody
    assert result.exit_code == 0 and "recorded: DRILL-20260314-001 missed leave stage triage" in result.stdout
    at(clock, 2 * H + 7 * M)


def test_due_items_from_the_index_are_those_the_states_give(incidents, store, clock):
    for within in (0, 30 * M, 48 * H):
        index = breaches.due(store, clock.now(), within)
        assert index, within
        assert {i.clock.kind for i in index} >= {"updates", "target", "stage"}
        assert any(i.recorded for i in index) and any(i.drill for i in index)
    now = clock.now()
    index = {w: shown(breaches.due(store, now, w)) for w in (0, 30 * M, 48 * H)}
    states = {w: shown(from_states(store, now, w)) for w in (0, 30 * M, 48 * H)}
    assert index == states


def test_a_cadence_from_the_index_counts_its_running_gap_at_the_moment_asked(incidents, store, clock):
    [update] = [i for i in breaches.due(store, clock.now()) if i.clock.kind == "updates"]
    assert update.to_json()["longest_gap_seconds"] == 77 * M  # since the 09:50 post, not the 40m gap before
    assert update.clock.describe() == "OVERDUE by 17m (due 2026-03-14T10:50:00.000Z)"


def test_an_index_row_of_another_version_is_not_used(incidents, store, clock, db):
    import sqlite3

    expected = shown(breaches.due(store, clock.now()))
    with sqlite3.connect(db) as raw:  # as if written by an older version: no clocks in it
        raw.execute("UPDATE incident_index SET summary = json_remove(json_set(summary, '$.v', 1), '$.clocks')")
    assert shown(breaches.due(store, clock.now())) == expected


@pytest.mark.parametrize("clocks", ["[[true, \"broken", "[[true]]", "[[true,\"k\",\"l\",\"tomorrow\",null]]", "7"])
def test_an_index_row_whose_clocks_cannot_be_read_is_read_in_full(incidents, cli, store, clock, db, clocks):
    import sqlite3

    expected = shown(breaches.due(store, clock.now()))
    printed = cli("due", "--no-record")
    with sqlite3.connect(db) as raw:  # edited behind the store's back
        raw.execute("UPDATE incident_index SET summary = json_set(summary, '$.clocks', ?)", (clocks,))
    assert shown(breaches.due(store, clock.now())) == expected
    again = cli("due", "--no-record")
    assert (again.exit_code, again.stdout) == (printed.exit_code, printed.stdout)


def test_the_clock_fields_an_index_row_keeps_are_part_of_its_version():
    """A summary keeps each clock as a list of its fields in this order (and rebuilds it
    positionally): another field, or another order, is another shape of summary."""
    from engine.clocks.deadlines import ClockStatus
    from engine.incidents.index import KEPT, SUMMARY_VERSION

    assert (SUMMARY_VERSION, list(ClockStatus._fields)) == (3, [
        "key", "label", "due_at", "met_at", "now", "escalate", "kind", "stage", "visit", "anchor", "anchor_at",
        "closed_at", "every_seconds", "late_updates", "gap_seconds", "result"]), "bump SUMMARY_VERSION"
    assert KEPT == tuple(n for n in ClockStatus._fields if n not in ("now", "escalate"))


@pytest.mark.parametrize("moment, count", [
    ("2026-03-14T09:29:59.999999+00:00", 0), ("2026-03-14T09:30:00+00:00", 0),  # due, not overdue
    ("2026-03-14T09:30:00.000500+00:00", 1), ("2026-03-14T09:30:00.001+00:00", 1),
    ("2026-03-14T11:50:00+02:00", 2), ("2026-03-15T00:00:00+00:00", 3)])
def test_a_listing_counts_the_clocks_overdue_at_its_moment_to_the_microsecond(moment, count):
    from datetime import datetime

    from engine.incidents.index import overdue

    row = {"due": ["2026-03-14T09:30:00.000Z", "2026-03-14T09:45:00.000Z", "2026-03-14T10:00:00.001Z"],
           "sim_offset": 0}
    assert overdue(row, datetime.fromisoformat(moment)) == count
