"""Text that could deceive a reader, and names that could pass for someone else's.

Control characters and bidirectional overrides are refused where text comes in (post
text, titles, names, inputs), naming the field and the character; whatever still
reaches a text view is shown as a visible \\uXXXX. A person's name is one visible
spelling: no look-alikes of another person in the incident, of the reserved
``system:`` prefix, and no empty ``--as``. Where the installation makes the
environment's identity final, ``--as`` cannot change who is acting.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import VIRAL_START

INC = "INC-20260314-001"
ESC_HIDE = "We are sorry.\x1b[8m The nurse on duty was asleep.\x1b[0m"


def _events(db) -> list:
    from engine.store import open_store

    if not db.exists():
        return []
    s = open_store(db)
    try:
        return [e for i in s.incidents() for e in s.events(i)]
    finally:
        s.close()


def _refused(cli, db, code: int, *args: str) -> str:
    before = len(_events(db))
    result = cli(*args)
    assert result.exit_code == code, (args, result.output)
    assert result.output.startswith("error: "), result.output
    assert len(_events(db)) == before, "a refused command wrote to the log"
    assert "\x1b" not in result.output and "\u202e" not in result.output
    return result.output


@pytest.fixture
def drafting(cli):
    """The viral-complaint incident in acknowledge, with carol's draft public_ack/x/en v1."""
    for args in (VIRAL_START,
                 ("assign", INC, "social_media", "carol", "--as", "alice"),
                 ("task", INC, "confirm_post", "--as", "alice"),
                 ("advance", INC, "acknowledge", "--as", "alice"),
                 ("render", INC, "public_ack", "--channel", "x", "--lang", "en", "--as", "carol")):
        result = cli(*args)
        assert result.exit_code == 0, result.output
    return cli


# -- control characters and bidirectional overrides are refused on the way in -------------------


@pytest.mark.parametrize("text, char", [
    (ESC_HIDE, "U+001B (ESCAPE)"),
    ("We are sorry.\u202e.peelsa saw ytud no esrun ehT", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("We are sorry.\u2066 hidden\u2069", "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
    ("We are sorry.\x9b8m hidden", "U+009B (CONTROL SEQUENCE INTRODUCER)"),
    ("We are sorry.\x00", "U+0000 (NULL)"),
    ("We are\rsorry.", "U+000D (CARRIAGE RETURN)"),
])
def test_an_edit_with_a_hiding_character_is_refused_naming_it(drafting, db, text, char):
    out = _refused(drafting, db, 2, "edit", INC, "public_ack/x/en", "--text", text, "--as", "carol")
    assert f"error: the edited text contains {char}" in out


def test_an_edit_keeps_newlines_and_tabs_and_windows_line_ends(drafting, db):
    result = drafting("edit", INC, "public_ack/x/en", "--text", "We are sorry.\r\n\tWe will call you.", "--as", "carol")
    assert result.exit_code == 0, result.output
    assert _events(db)[-1].data["text"] == "We are sorry.\n\tWe will call you."


def test_a_template_that_renders_an_escape_sequence_is_refused(cli, db, tmp_path):
    path = tmp_path / "esc.yaml"
    path.write_text('''id: esc
name: Escapes
version: "1"
roles:
  lead: {title: Lead, required: true}
  spokesperson: {title: Spokesperson, required: true}
stages:
  respond: {title: Respond, templates: [statement]}
  closed: {title: Closed, terminal: true}
transitions:
  close: {from: respond, to: closed, roles: [lead]}
templates:
  statement:
    approval: {all_of: [spokesperson]}
    channels:
      x: {en: "We are sorry.\\e[8m The nurse was asleep.\\e[0m"}
''', encoding="utf-8")
    assert cli("start", str(path), "--title", "T", "--assign", "lead=alice", "--assign", "spokesperson=bob").exit_code == 0
    out = _refused(cli, db, 5, "render", INC, "statement", "--as", "alice")
    assert "error: statement/x/en: the rendered text contains U+001B (ESCAPE)" in out
    assert "nothing was recorded" in out


def test_a_title_name_or_input_with_a_hiding_character_is_refused_and_nothing_starts(cli, db):
    def start(*replace):
        args = list(VIRAL_START)
        for old, new in replace:
            args[args.index(old)] = new
        return args

    out = _refused(cli, db, 2, *start(("ER wait time complaint", "ER wait\x1b[8m time")))
    assert "error: --title contains U+001B (ESCAPE)" in out
    out = _refused(cli, db, 2, *start(("spokesperson=bob", "spokesperson=bo\u202eb")))
    assert "--assign spokesperson= 'bo\\u202eb' contains U+202E (RIGHT-TO-LEFT OVERRIDE)" in out
    out = _refused(cli, db, 2, *start(("complaint_channel=x", "complaint_channel=x\x1b")))
    assert "input 'complaint_channel'" in out and "U+001B (ESCAPE)" in out
    assert not _events(db)


def test_assigning_or_acting_as_a_name_with_a_control_character_is_refused(drafting, db):
    out = _refused(drafting, db, 2, "assign", INC, "social_media", "dan\x1b[8m", "--as", "alice")
    assert "U+001B (ESCAPE)" in out
    out = _refused(drafting, db, 2, "note", INC, "hello", "--as", "alice\x1b[8m")
    assert "--as 'alice\\x1b[8m' contains U+001B (ESCAPE)" in out


# -- whatever still reaches a terminal is shown, not obeyed -------------------------------------


def test_a_note_with_an_escape_sequence_is_logged_as_typed_but_shown_escaped(drafting, db):
    assert drafting("note", INC, "see\x1b[8m hidden\x1b[0m", "--as", "alice").exit_code == 0
    assert _events(db)[-1].data["text"] == "see\x1b[8m hidden\x1b[0m"  # the record keeps what was typed
    for args in (("log", INC), ("log", INC, "--json")):
        out = drafting(*args).output
        assert "\x1b" not in out and "\\u001b[8m hidden" in out


def test_every_text_view_escapes_what_it_prints():
    from datetime import datetime, timezone

    from engine.incidents import views

    hostile = "Plan\x1b[8m B\u202e"
    state = {"id": INC, "title": hostile, "drill": False, "status": "open", "stage": "s", "severity": "high",
             "stage_entered_at": "2026-03-14T09:00:00Z", "started_at": "2026-03-14T09:00:00Z", "closed_at": None,
             "roles": {"lead": [hostile]}, "tasks": {}, "inputs": {}, "posts": {}, "published": {}, "approved": {},
             "public_posts": {"count": 0, "first_at": None, "last_at": None, "last_in_stage_at": None},
             "plan": {"id": "p", "name": hostile, "version": "1", "sha256": "0" * 64, "initial": "s",
                      "roles": {"lead": {"title": "Lead", "required": True}}, "inputs": {},
                      "stages": {"s": {"title": hostile, "tasks": {}, "templates": [], "terminal": False,
                                       "deadline": None, "updates": None}},
                      "transitions": {}, "targets": {"first_public_post": None}, "templates": {}}}
    now = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)
    post = {"id": "t/x/en", "version": 1, "status": "draft", "channel": "x", "sha256": "0" * 64,
            "count": {"used": 1, "limit": 280, "unit": "weighted characters", "fits": True, "detail": ""},
            "author": hostile, "drafted_at": "2026-03-14T09:00:00Z", "hits": [], "approvals": [],
            "policy": {"all_of": ["lead"], "any_of": [], "min": 1}, "text": hostile}

    class Event:
        seq, at, actor, type, data = 2, "2026-03-14T09:00:00Z", hostile, "NoteAdded", {"text": hostile}

    for shown in (views.headline(state), views.incident_row(state, now), views.status_text(state, now, hostile),
                  views.post_block(post), views.event_line(Event())):
        assert "\x1b" not in shown and "\u202e" not in shown, shown
        assert "Plan\\u001b[8m B\\u202e" in shown


def test_json_output_escapes_bidirectional_overrides_and_stays_json(drafting, db):
    assert drafting("reject", INC, "public_ack/x/en", "--reason", "no\u202e", "--as", "bob").exit_code == 0
    out = drafting("drafts", INC, "--json").output
    assert "\u202e" not in out and json.loads(out)[0]["rejection"]["reason"] == "no\u202e"


# -- names: one visible spelling per person -------------------------------------------------------


@pytest.mark.parametrize("name, message", [
    ("c\u0430rol", "mixes letters of several scripts (CYRILLIC, LATIN)"),  # Cyrillic a beside carol
    ("Carol", "looks like 'carol', who is already in this incident"),
    ("\u0441\u0430r\u043el", "mixes letters of several scripts"),
])
def test_a_look_alike_of_someone_in_the_incident_cannot_be_assigned(drafting, db, name, message):
    out = _refused(drafting, db, 2, "assign", INC, "spokesperson", name, "--as", "alice")
    assert message in out


def test_a_whole_script_look_alike_is_refused_too(cli, db):
    """'соре' in Cyrillic letters only is one script, but it looks exactly like 'cope'."""
    args = list(VIRAL_START) + ["--assign", "social_media=cope"]
    assert cli(*args).exit_code == 0
    out = _refused(cli, db, 2, "assign", INC, "spokesperson", "\u0441\u043e\u0440\u0435", "--as", "alice")
    assert "looks like 'cope'" in out


def test_two_look_alikes_cannot_be_assigned_at_start(cli, db):
    args = list(VIRAL_START) + ["--assign", "social_media=b\u043eb"]
    out = _refused(cli, db, 2, *args)
    assert "--assign social_media=" in out and "mixes letters" in out
    args = list(VIRAL_START) + ["--assign", "social_media=BOB"]
    assert "looks like 'bob'" in _refused(cli, db, 2, *args)


@pytest.mark.parametrize("name, message", [
    ("", "--as needs a person's name (it is empty)"),
    ("  ", "--as needs a person's name (it is empty)"),
    ("\u0455ystem:x", "mixes letters"),
    ("system\uff1ax", "reserved for the engine"),
    ("SYSTEM:clock", "reserved for the engine"),
])
def test_an_empty_or_reserved_looking_actor_is_refused(drafting, db, name, message):
    out = _refused(drafting, db, 2, "note", INC, "hello", "--as", name)
    assert message in out


# -- the environment's identity can be made final -------------------------------------------------


def _run(db, clock, env: dict, *args: str):
    from cli import main

    return CliRunner().invoke(main, list(args), obj={"clock": clock},
                              env={"PLAYBOOK_DB": str(db), **env}, catch_exceptions=False)


def test_with_playbook_actor_final_a_different_as_is_refused(drafting, db, clock):
    final = {"PLAYBOOK_ACTOR": "bob", "PLAYBOOK_ACTOR_FINAL": "1"}
    before = len(_events(db))
    result = _run(db, clock, final, "approve", INC, "public_ack/x/en", "--version", "1", "--as", "alice")
    assert result.exit_code == 5, result.output
    assert ("error: --as 'alice': this installation fixes who is acting (PLAYBOOK_ACTOR_FINAL); "
            "you are signed in as 'bob'") in result.output
    assert len(_events(db)) == before
    assert _run(db, clock, final, "note", INC, "same person", "--as", "bob").exit_code == 0
    assert _run(db, clock, final, "note", INC, "no --as").exit_code == 0
    assert [e.actor for e in _events(db)[-2:]] == ["bob", "bob"]


def test_playbook_actor_final_without_an_actor_is_refused(drafting, db, clock):
    result = _run(db, clock, {"PLAYBOOK_ACTOR_FINAL": "1", "PLAYBOOK_ACTOR": ""}, "note", INC, "x")
    assert result.exit_code == 2 and "PLAYBOOK_ACTOR_FINAL is set but PLAYBOOK_ACTOR is empty" in result.output


def test_without_playbook_actor_final_as_still_overrides(drafting, db, clock):
    result = _run(db, clock, {"PLAYBOOK_ACTOR": "bob", "PLAYBOOK_ACTOR_FINAL": "0"}, "note", INC, "x", "--as", "alice")
    assert result.exit_code == 0 and _events(db)[-1].actor == "alice"
