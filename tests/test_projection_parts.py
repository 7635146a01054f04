"""A projection's plan is stored once per incident, apart from the rest of its state, so a
write re-encodes and rewrites only the small rest; every backend reads the whole state back."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from engine.errors import IntegrityError
from engine.incidents.events import NewEvent
from engine.store import open_store
from engine.store.copy import copy_database

AT = "2026-11-22T11:42:{:02d}.000Z"
PLAN = {"id": "viral", "initial": "detect", "stages": {"detect": {"tasks": {}}}, "roles": {"lead": {}}}


def ev(i: int, type_: str = "NoteAdded") -> NewEvent:
    return NewEvent(type_, AT.format(i), "alice", {"n": i})


def state(notes: int, plan: dict | None = None) -> dict:
    return {"v": 2, "id": "INC-1", "plan": plan if plan is not None else json.loads(json.dumps(PLAN)),
            "notes": notes}


def write(store, incident: str, i: int, new_state) -> None:
    with store.transaction(incident) as tx:
        tx.append([ev(i, "IncidentStarted" if tx.snapshot is None else "NoteAdded")],
                  new_state(tx.snapshot.state if tx.snapshot else None))


def test_the_state_reads_back_whole_with_its_plan_after_every_write(backend):
    write(backend, "INC-1", 1, lambda _: state(0))
    for i in range(2, 5):
        write(backend, "INC-1", i, lambda s: dict(s, notes=s["notes"] + 1))
    assert backend.snapshot("INC-1").state == state(3)
    assert [s.state for s in backend.snapshots()] == [state(3)]


def test_a_changed_plan_is_stored_and_an_unchanged_one_is_kept(backend):
    write(backend, "INC-1", 1, lambda _: state(0))
    changed = dict(PLAN, initial="triage")
    write(backend, "INC-1", 2, lambda s: state(1, changed))
    assert backend.snapshot("INC-1").state["plan"] == changed
    write(backend, "INC-1", 3, lambda s: dict(s, notes=2))  # the plan read, the same object
    assert backend.snapshot("INC-1").state == state(2, changed)


def test_the_digest_of_a_projection_covers_its_plan(backend):
    write(backend, "INC-1", 1, lambda _: state(0))
    write(backend, "INC-2", 1, lambda _: state(0, dict(PLAN, initial="triage")))
    digests = backend.projection_digests()
    assert sorted(digests) == ["INC-1", "INC-2"]
    assert digests["INC-1"] != digests["INC-2"]  # the rows differ only in their plans
    write(backend, "INC-1", 2, lambda s: dict(s, notes=1))
    assert backend.projection_digests()["INC-1"] not in (digests["INC-1"], digests["INC-2"])


def test_db_copy_keeps_every_state_whole(backend, tmp_path):
    write(backend, "INC-1", 1, lambda _: state(0))
    write(backend, "INC-1", 2, lambda s: dict(s, notes=1))
    copy_database(backend, tmp_path / "copy.db", open_store=open_store)
    target = open_store(tmp_path / "copy.db")
    try:
        assert target.snapshot("INC-1").state == state(1)
        assert target.projection_digests() == backend.projection_digests()
    finally:
        target.close()


# --- what SQLite holds -------------------------------------------------------------------


def rows(db, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as raw:
        return raw.execute(sql).fetchall()


def test_sqlite_keeps_the_plan_once_and_a_note_does_not_rewrite_it(tmp_path):
    db = tmp_path / "incidents.db"
    store = open_store(db)
    try:
        write(store, "INC-1", 1, lambda _: state(0))
        (text,), = rows(db, "SELECT state FROM snapshots")
        assert json.loads(text)["plan"] == {"$part": "plan"}
        assert rows(db, "SELECT part, key, body FROM projection_parts") == [
            ("plan", "", json.dumps(PLAN, sort_keys=True, separators=(",", ":")))]
        with sqlite3.connect(db) as raw:  # a mark only a rewrite of the plan would remove
            raw.execute("""UPDATE projection_parts SET body = json_set(body, '$.mark', 1)""")
        write(store, "INC-1", 2, lambda s: dict(s, notes=1))
        assert store.snapshot("INC-1").state["plan"]["mark"] == 1
        assert store.snapshot("INC-1").state["notes"] == 1
    finally:
        store.close()


@pytest.mark.parametrize("damage, message", [
    ("DELETE FROM projection_parts", "incident INC-1: its stored plan is missing (deleted?)"),
    ("UPDATE projection_parts SET body = '{not json'", "incident INC-1: its stored plan is not valid JSON"),
])
def test_a_missing_or_damaged_plan_is_named(tmp_path, damage, message):
    db = tmp_path / "incidents.db"
    store = open_store(db)
    try:
        write(store, "INC-1", 1, lambda _: state(0))
        with sqlite3.connect(db) as raw:
            raw.execute(damage)
        with pytest.raises(IntegrityError, match=re.escape(message)):
            store.snapshot("INC-1")
        with pytest.raises(IntegrityError, match=re.escape(message)):
            with store.transaction("INC-1"):
                pass
    finally:
        store.close()


def test_a_whole_state_stored_before_the_parts_is_read_and_split_at_the_next_write(tmp_path):
    db = tmp_path / "incidents.db"
    store = open_store(db)
    try:
        write(store, "INC-1", 1, lambda _: state(0))
        with sqlite3.connect(db) as raw:  # as the code before migration 005 stored it
            raw.execute("DELETE FROM projection_parts")
            raw.execute("UPDATE snapshots SET state = ?", (json.dumps(state(0)),))
        assert store.snapshot("INC-1").state == state(0)
        write(store, "INC-1", 2, lambda s: dict(s, notes=1))
        assert store.snapshot("INC-1").state == state(1)
        assert [p for p, in rows(db, "SELECT part FROM projection_parts")] == ["plan"]
        assert json.loads(rows(db, "SELECT state FROM snapshots")[0][0])["plan"] == {"$part": "plan"}
    finally:
        store.close()


def test_a_state_without_a_plan_is_stored_whole(tmp_path):
    db = tmp_path / "incidents.db"
    store = open_store(db)
    try:
        write(store, "INC-1", 1, lambda _: {"n": 1})
        assert rows(db, "SELECT state FROM snapshots") == [('{"n":1}',)]
        assert rows(db, "SELECT count(*) FROM projection_parts") == [(0,)]
    finally:
        store.close()


# --- posts and messages, one row per entry ------------------------------------------------


def with_posts(notes: int, **posts) -> dict:
    return dict(state(notes), posts=posts, inbound={}, inbound_keys={})


def post(text: str, published: int = 0) -> dict:
    return {"text": text, "published": [{"version": v, "text": text} for v in range(published)]}


def test_a_state_with_posts_reads_back_whole_everywhere(backend):
    write(backend, "INC-1", 1, lambda _: with_posts(0, a=post("A", 3), b=post("B")))
    write(backend, "INC-1", 2, lambda s: dict(s, notes=1))
    expected = with_posts(1, a=post("A", 3), b=post("B"))
    assert backend.snapshot("INC-1").state == expected
    assert type(backend.snapshot("INC-1").state["posts"]) is dict
    assert [s.state for s in backend.snapshots()] == [expected]


def test_in_a_transaction_posts_are_read_when_looked_up_and_changes_are_kept(backend):
    write(backend, "INC-1", 1, lambda _: with_posts(0, a=post("A", 3), b=post("B")))
    with backend.transaction("INC-1") as tx:
        posts = tx.snapshot.state["posts"]
        assert len(posts) == 2 and "a" in posts and "z" not in posts and sorted(posts) == ["a", "b"]
        assert posts["b"] == post("B") and posts.get("z") is None
        new = dict(tx.snapshot.state, posts=posts.child())
        new["posts"]["b"]["text"] = "B2"  # the copy's own entry: the state read is unchanged
        new["posts"]["c"] = post("C")
        assert posts["b"]["text"] == "B"
        tx.append([ev(2)], new)
    assert backend.snapshot("INC-1").state["posts"] == {"a": post("A", 3), "b": dict(post("B"), text="B2"),
                                                        "c": post("C")}
    with backend.transaction("INC-1") as tx:
        new = dict(tx.snapshot.state, posts=tx.snapshot.state["posts"].child())
        del new["posts"]["a"]
        tx.append([ev(3)], new)
    assert sorted(backend.snapshot("INC-1").state["posts"]) == ["b", "c"]


def test_parts_read_in_a_transaction_are_not_read_once_it_is_over(backend):
    write(backend, "INC-1", 1, lambda _: with_posts(0, a=post("A")))
    with backend.transaction("INC-1") as tx:
        posts = tx.snapshot.state["posts"]
    with pytest.raises(RuntimeError, match="read the incident again"):
        posts["a"]


def test_the_digest_covers_every_post(backend):
    write(backend, "INC-1", 1, lambda _: with_posts(0, a=post("A")))
    before = backend.projection_digests()["INC-1"]
    with backend.transaction("INC-1") as tx:
        new = dict(tx.snapshot.state, posts=tx.snapshot.state["posts"].child())
        new["posts"]["a"]["text"] = "A2"  # a change to the post row only: the keys stay
        tx.append([ev(2)], dict(new, notes=0))
    assert backend.projection_digests()["INC-1"] != before


def test_db_copy_keeps_the_posts(backend, tmp_path):
    write(backend, "INC-1", 1, lambda _: with_posts(0, a=post("A", 2)))
    copy_database(backend, tmp_path / "copy.db", open_store=open_store)
    target = open_store(tmp_path / "copy.db")
    try:
        assert target.snapshot("INC-1").state == with_posts(0, a=post("A", 2))
        assert target.projection_digests() == backend.projection_digests()
    finally:
        target.close()


def test_sqlite_a_note_writes_no_post_and_a_change_to_one_post_writes_only_it(tmp_path):
    db = tmp_path / "incidents.db"
    store = open_store(db)
    try:
        write(store, "INC-1", 1, lambda _: with_posts(0, a=post("A", 50), b=post("B", 50)))
        assert sorted(rows(db, "SELECT part, key FROM projection_parts")) == [
            ("plan", ""), ("posts", "a"), ("posts", "b")]
        with sqlite3.connect(db) as raw:  # marks only a rewrite of a row would remove
            raw.execute("UPDATE projection_parts SET body = json_set(body, '$.mark', 1) WHERE part = 'posts'")
        write(store, "INC-1", 2, lambda s: dict(s, notes=1))
        with store.transaction("INC-1") as tx:
            new = dict(tx.snapshot.state, posts=tx.snapshot.state["posts"].child())
            new["posts"]["a"]["text"] = "A2"
            tx.append([ev(3)], new)
        stored = dict(rows(db, "SELECT key, body FROM projection_parts WHERE part = 'posts'"))
        assert stored["b"].endswith(',"mark":1}')  # as marked: not rewritten
        assert stored["a"] == json.dumps(dict(post("A", 50), text="A2", mark=1), sort_keys=True, separators=(",", ":"))
    finally:
        store.close()


@pytest.mark.parametrize("damage, message", [
    ("DELETE FROM projection_parts WHERE part = 'posts'", "incident INC-1: its stored posts 'a' is missing"),
    ("UPDATE projection_parts SET body = '[' WHERE part = 'posts'", "incident INC-1: its stored posts 'a' is not"),
])
def test_a_missing_or_damaged_post_row_is_named(tmp_path, damage, message):
    db = tmp_path / "incidents.db"
    store = open_store(db)
    try:
        write(store, "INC-1", 1, lambda _: with_posts(0, a=post("A")))
        with sqlite3.connect(db) as raw:
            raw.execute(damage)
        with pytest.raises(IntegrityError, match=re.escape(message)):
            store.snapshot("INC-1")
        with pytest.raises(IntegrityError, match=re.escape(message)):
            with store.transaction("INC-1") as tx:
                tx.snapshot.state["posts"]["a"]
    finally:
        store.close()


def test_a_note_through_the_service_leaves_the_posts_and_verify_passes(cli, db):
    from conftest import VIRAL_START

    inc = "INC-20260314-001"
    for args in (VIRAL_START, ("assign", inc, "social_media", "carol", "--as", "alice"),
                 ("task", inc, "confirm_post", "--as", "alice"), ("advance", inc, "acknowledge", "--as", "alice"),
                 ("render", inc, "public_ack", "--as", "carol")):
        assert cli(*args).exit_code == 0
    before = dict(rows(db, "SELECT key, body FROM projection_parts WHERE part = 'posts'"))
    assert len(before) > 1
    assert cli("note", inc, "called the ward", "--as", "alice").exit_code == 0
    assert dict(rows(db, "SELECT key, body FROM projection_parts WHERE part = 'posts'")) == before
    assert cli("status", inc).exit_code == 0
    store = open_store(db)
    try:
        assert {k: json.loads(v) for k, v in before.items()} == store.snapshot(inc).state["posts"]
        assert store.snapshot(inc).state["notes"] == 1
    finally:
        store.close()
    assert cli("verify").exit_code == 0


def test_a_replaced_message_is_written_and_one_only_read_is_not(tmp_path):
    """Messages are replaced by the folds, never edited (engine.incidents.inbound): the store
    writes exactly the records that are not the ones it read, and the new ones."""
    db = tmp_path / "incidents.db"
    store = open_store(db)
    try:
        write(store, "INC-1", 1, lambda _: dict(with_posts(0), inbound={"M1": {"s": "waiting"}, "M2": {"s": "waiting"}}))
        with sqlite3.connect(db) as raw:
            raw.execute("UPDATE projection_parts SET body = json_set(body, '$.mark', 1) WHERE part = 'inbound'")
        with store.transaction("INC-1") as tx:
            new = dict(tx.snapshot.state, inbound=tx.snapshot.state["inbound"].child())
            assert new["inbound"]["M1"]["mark"] == 1  # read, left as it is
            new["inbound"]["M2"] = {"s": "handled"}
            new["inbound"]["M3"] = {"s": "waiting"}
            tx.append([ev(2)], new)
        stored = dict(rows(db, "SELECT key, body FROM projection_parts WHERE part = 'inbound'"))
        assert stored == {"M1": '{"s":"waiting","mark":1}', "M2": '{"s":"handled"}', "M3": '{"s":"waiting"}'}
    finally:
        store.close()


def test_a_note_from_the_command_line_reads_no_post(cli, request):
    """``playbook note`` shows nothing of the state after it, so it reads none of the
    posts (each holding every version of it): its cost does not grow with them."""
    from conftest import VIRAL_START

    inc = "INC-20260314-001"
    for args in (VIRAL_START, ("task", inc, "confirm_post", "--as", "alice"), ("advance", inc, "acknowledge", "--as", "alice"),
                 ("render", inc, "public_ack", "--as", "alice")):
        assert cli(*args).exit_code == 0
    looked = request.getfixturevalue("parts_read")  # from here on
    assert cli("note", inc, "called the ward", "--as", "alice").stdout == f"{inc}: note added.\n"
    assert looked == []
    assert cli("status", inc, "--json").exit_code == 0  # the API and --json callers still get the whole state
