"""Every backend digests each incident's stored projection (state and index row) the same
way, so a checkpoint's claims mean the same thing on SQLite, PostgreSQL and in memory."""

from __future__ import annotations

import pytest

from engine.incidents.events import NewEvent
from engine.store.projection import projection_digest

AT = "2026-03-14T09:00:00.000Z"
SUMMARY = {"v": 2, "id": "INC-1", "status": "open", "next_due_at": "2026-03-14T09:30:00.000Z", "title": "T", "clocks": "[]"}


def _append(store, incident, state, summary=None):
    with store.transaction(incident) as tx:
        tx.append([NewEvent("NoteAdded", AT, "alice", {"text": "x"})], state, summary)


def test_the_digest_covers_the_state_and_the_index_row(backend):
    _append(backend, "INC-1", {"n": 1}, SUMMARY)
    _append(backend, "INC-2", {"n": 1})
    digests = backend.projection_digests()
    rest = '{"id":"INC-1","next_due_at":"2026-03-14T09:30:00.000Z","status":"open","title":"T","v":2}'
    assert digests == {"INC-1": projection_digest('{"n":1}', rest, "[]"),
                       "INC-2": projection_digest('{"n":1}', None, None)}
    assert digests["INC-1"] != digests["INC-2"]

    with backend.transaction("INC-2") as tx:
        tx.rewrite_projection({"n": 2})
    assert backend.projection_digests()["INC-2"] == projection_digest('{"n":2}')
    assert backend.projection_digests()["INC-1"] == digests["INC-1"]


def test_the_summary_clocks_come_back_whole_and_a_listing_can_leave_them_out(backend):
    _append(backend, "INC-1", {"n": 1}, SUMMARY)
    assert backend.summaries() == [("INC-1", SUMMARY)]
    assert backend.summaries(clocks=False) == [("INC-1", {k: v for k, v in SUMMARY.items() if k != "clocks"})]
    assert backend.due_summaries("2026-03-14T10:00:00.000Z") == [("INC-1", SUMMARY)]


def test_parts_are_length_prefixed_so_moving_text_between_them_changes_the_digest():
    assert projection_digest("ab", "c") != projection_digest("a", "bc")
    assert projection_digest("a", None, "b") != projection_digest("a", "b", None)
    assert projection_digest("a", "", None) != projection_digest("a", None, None)


def test_a_summary_whose_clocks_are_not_text_is_refused_before_anything_is_written(backend):
    with pytest.raises(ValueError, match="clocks are a JSON text"):
        _append(backend, "INC-1", {"n": 1}, dict(SUMMARY, clocks=[]))
    assert backend.snapshot("INC-1") is None


def test_log_ends_are_each_log_s_last_event_without_parsing_it(backend):
    assert backend.log_ends() == {}
    _append(backend, "INC-1", {"n": 1})
    _append(backend, "INC-2", {"n": 1})
    with backend.transaction("INC-1") as tx:
        (event,) = tx.append([NewEvent("NoteAdded", AT, "alice", {"text": "y"})], {"n": 2})
    ends = backend.log_ends()
    assert ends["INC-1"] == (2, event.hash) == (backend.snapshot("INC-1").seq, backend.snapshot("INC-1").head)
    assert ends["INC-2"] == (1, backend.snapshot("INC-2").head) and set(ends) == {"INC-1", "INC-2"}
