"""verify replays inbound messages through the rules: a message recorded twice, out of its
number, over the limits or by someone without a role; a message handled that did not wait;
a reply to a message that did not exist or was answered. Each is a forged event with a
valid hash chain (appended by a writer of the store, or inserted with the chain
recomputed), which only the rules can find."""

from __future__ import annotations

import pytest

from test_integrity import attacker, rehash_from
from test_x_bridge import INCIDENT, REPLYING

MESSAGE = {"source": "x", "source_id": "1001", "kind": "mention", "author": "@patient",
           "text": "Waited 6 hours in your ER", "lang": None, "url": None, "posted_at": "2026-03-14T08:30:00.000Z"}


def _ok(cli, *args):
    result = cli(*args)
    assert result.exit_code == 0, (args, result.output)
    return result


@pytest.fixture
def incident(cli, tmp_path):
    """M1 (x, 1001) answered by answer/x/en/M1; M2 (x, 1002) waiting; M3 handled as spam."""
    pb = tmp_path / "replying-x.yaml"
    pb.write_text(REPLYING, encoding="utf-8")
    _ok(cli, "start", str(pb), "--title", "Complaints on X", "--assign", "lead=alice", "--assign", "spokesperson=bob")
    for n in (1, 2, 3):
        _ok(cli, "inbound", "add", INCIDENT, "--source", "x", "--source-id", f"100{n}", "--author", "@patient",
            "--text", f"Waited 6 hours in your ER ({n})", "--posted-at", "2026-03-14T08:30:00Z")
    _ok(cli, "render", INCIDENT, "answer", "--reply-to", "M1")
    _ok(cli, "approve", INCIDENT, "answer/x/en/M1", "--version", "1", "--as", "bob")
    _ok(cli, "publish", INCIDENT, "answer/x/en/M1")
    _ok(cli, "inbound", "handle", INCIDENT, "M3", "--reason", "spam")
    assert _ok(cli, "verify").exit_code == 0
    return INCIDENT


def _append(db, clock, actor: str, type_: str, data: dict) -> None:
    """What any writer of the store can do: append an event (the chain extended, the
    projection kept in step where it folds) without the commands' rules."""
    from engine.incidents import state as inc
    from engine.incidents.events import NewEvent, utc_now_iso
    from engine.store import open_store

    store = open_store(db)
    try:
        with store.transaction(INCIDENT) as tx:
            at = utc_now_iso(clock.now())
            try:
                state = inc.apply(tx.snapshot.state, type_, at, actor, data)
            except LookupError:  # an event about a message that does not exist does not fold
                state = tx.snapshot.state
            tx.append([NewEvent(type_, at, actor, data)], state)
    finally:
        store.close()


def _drafted(store, post: str) -> dict:
    return [e.data for e in store.events(INCIDENT) if e.type == "PostDrafted" and e.data["post"] == post][-1]


def _refused(cli) -> str:
    result = cli("verify")
    assert result.exit_code == 7, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize("actor, data, reason", [
    ("alice", {"message": "M4", **MESSAGE},
     "its source delivered it before, as M1 (a message is recorded once)"),
    ("alice", {"message": "M9", **MESSAGE, "source_id": "2001"}, "it is numbered M9; the next message is M4"),
    ("alice", {"message": "M4", **MESSAGE, "source_id": "2001", "text": "x" * 5001},
     "the message checks refuse it: text: 5001 characters; at most 5000"),
    ("alice", {"message": "M4", **MESSAGE, "source_id": "2001", "text": "safe \u202egnp.exe", "url": "javascript:x"},
     "the message checks refuse it: text contains U+202E (RIGHT-TO-LEFT OVERRIDE) at character 6"),
    ("alice", {"message": "M4", **MESSAGE, "source_id": "2001", "posted_at": "2026-03-15T08:30:00.000Z"},
     "posted_at: 2026-03-15T08:30:00.000Z is in the future"),
    ("alice", {"message": "M4", **MESSAGE, "source_id": "2001", "text": "  padded  "},
     "its text is not what the checks record (text '  padded  ')"),
    ("dave", {"message": "M4", **MESSAGE, "source_id": "2001"}, "dave holds no role in this incident"),
    ("alice", {"message": "M9", "reason": "spam", "note": ""}, "no message 'M9' (messages: M1, M2, M3)"),
    ("alice", {"message": "M1", "reason": "spam", "note": ""}, "message M1 is already answered"),
    ("alice", {"message": "M3", "reason": "duplicate", "note": ""}, "message M3 is already handled"),
    ("alice", {"message": "M2", "reason": "bored", "note": ""}, "'bored' is not one of spam, duplicate"),
])
def test_verify_reports_an_inbound_event_the_rules_refuse(cli, db, clock, incident, actor, data, reason):
    kind = "MessageReceived" if "source" in data else "MessageHandled"
    _append(db, clock, actor, kind, data)
    shown = _refused(cli)
    assert f"incident {INCIDENT} event " in shown and f"({kind} by {actor}): refused by the rules: " in shown
    assert reason in shown


def test_a_forged_message_can_hold_every_problem_at_once(cli, db, clock, incident):
    _append(db, clock, "alice", "MessageReceived", {"message": "M4", **MESSAGE, "source_id": "2001",
                                                    "text": "x" * 5001, "url": "ftp://files.example"})
    shown = _refused(cli)
    assert "refused by the rules: the message checks refuse it: text: 5001 characters; at most 5000; url: " in shown


@pytest.mark.parametrize("change, reason", [
    ({"post": "answer/x/en/M9", "reply_to": "M9", "version": 1}, "no message 'M9' (messages: M1, M2, M3)"),
    ({"version": 2}, "message M1 is already answered"),
    ({"post": "answer/x/en/M3", "reply_to": "M3", "version": 1}, "message M3 is already handled"),
    ({"version": 2, "edited": True, "reply_to": "M2"}, "an edit makes it answer M2 instead of M1"),
])
def test_verify_reports_a_reply_to_a_message_that_did_not_wait(cli, db, clock, store, incident, change, reason):
    _append(db, clock, "alice", "PostDrafted", {**_drafted(store, "answer/x/en/M1"), **change})
    shown = _refused(cli)
    assert "(PostDrafted by alice): refused by the rules: " in shown and reason in shown


def test_a_lawful_reply_and_its_edit_pass_the_rules(cli, store, incident):
    _ok(cli, "render", INCIDENT, "answer", "--reply-to", "M2")
    _ok(cli, "edit", INCIDENT, "answer/x/en/M2", "--text", "@patient We are sorry. Please send us a message.")
    assert [e.data.get("edited") for e in store.events(INCIDENT) if e.type == "PostDrafted"][-1] is True
    assert _ok(cli, "verify").exit_code == 0


def test_a_duplicate_inserted_in_the_middle_with_the_chain_recomputed_is_reported(cli, db, store, incident):
    """The attacker inserts a second copy of M1 before the reply, renumbers and rehashes
    what follows: every hash matches its content; the rules (and the checkpoint that
    publishing stored) find it."""
    from engine.incidents.events import canonical

    types = [e.type for e in store.events(INCIDENT)]
    at = types.index("PostDrafted") + 1  # the forged event's sequence number
    with attacker(db) as raw:
        later = raw.execute("SELECT seq, type, at, actor, data FROM events WHERE incident = ? AND seq >= ? "
                            "ORDER BY seq", (INCIDENT, at)).fetchall()
        raw.execute("DELETE FROM events WHERE incident = ? AND seq >= ?", (INCIDENT, at))
        forged = canonical({"message": "M4", **MESSAGE}).decode()
        rows = [(at, "MessageReceived", later[0][2], "alice", forged)] + [(seq + 1, *rest) for seq, *rest in later]
        raw.executemany("INSERT INTO events (incident, seq, type, at, actor, data, prev, hash) "
                        "VALUES (?, ?, ?, ?, ?, ?, '', '')", [(INCIDENT, *r) for r in rows])
        rehash_from(raw, store.database_id, INCIDENT, at)
    shown = _refused(cli)
    assert (f"incident {INCIDENT} event {at} (MessageReceived by alice): refused by the rules: its source "
            "delivered it before, as M1") in shown
    assert "hash does not match its content" not in shown
