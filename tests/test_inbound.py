"""Inbound messages: recorded in the log, deduplicated, answered by a reply or handled,
each with its own response clock that `due` pages on."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from conftest import VIRAL

INCIDENT = "INC-20260314-001"
LISTENING = """\
inbound:
  respond_within: {default: 60m, phone: 30m}
  escalate: {notify: [incident_lead]}
"""


def listening_text() -> str:
    """The viral-complaint playbook's text with LISTENING as its inbound: block (in place
    of the shipped one and its escalation ladder)."""
    text = VIRAL.read_text(encoding="utf-8")
    shipped = text.find("\ninbound:")
    if shipped != -1:
        text = text[:shipped] + text[text.index("\ninitial:", shipped):]
    return text.replace("\ntargets:", "\n" + LISTENING + "targets:", 1)


@pytest.fixture
def playbook(tmp_path):
    """The viral-complaint playbook with response clocks for inbound messages."""
    path = tmp_path / "listening.yaml"
    path.write_text(listening_text(), encoding="utf-8")
    return path


def _start(cli, playbook, command="start"):
    result = cli(command, str(playbook), "--title", "ER wait complaint",
                 "--set", "complaint_url=https://x.com/patient/status/1", "--set", "complaint_channel=x",
                 "--assign", "incident_lead=alice", "--assign", "spokesperson=bob",
                 "--assign", "compliance=cora", "--assign", "patient_relations=petra", "--as", "alice")
    assert result.exit_code == 0, result.output
    return INCIDENT if command == "start" else "DRILL-20260314-001"


def _add(cli, incident=INCIDENT, *more, source="x", text="Waited 6 hours in your ER, nobody cared"):
    return cli("inbound", "add", incident, "--source", source, "--text", text, *more)


def _types(store, incident=INCIDENT):
    return [e.type for e in store.events(incident)]


def test_a_message_is_recorded_in_the_log_with_its_fields(cli, store, playbook):
    _start(cli, playbook)
    result = _add(cli, INCIDENT, "--author", "@patient", "--posted-at", "2026-03-14T08:10:00+00:00",
                  "--source-id", "1001", "--url", "https://x.com/patient/status/1001", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "Recorded M1" in result.stdout
    last = list(store.events(INCIDENT))[-1]
    assert last.type == "MessageReceived"
    assert last.data == {"message": "M1", "source": "x", "source_id": "1001", "kind": "mention",
                         "author": "@patient", "text": "Waited 6 hours in your ER, nobody cared", "lang": "en",
                         "url": "https://x.com/patient/status/1001", "posted_at": "2026-03-14T08:10:00.000Z"}
    assert "message M1 (mention) via x from @patient, posted 2026-03-14T08:10:00.000Z" in cli("log", INCIDENT).stdout
    assert cli("verify").exit_code == 0


def test_the_same_message_from_the_same_source_is_recorded_once(cli, store, playbook):
    _start(cli, playbook)
    assert _add(cli, INCIDENT, "--source-id", "1001").exit_code == 0
    again = _add(cli, INCIDENT, "--source-id", "1001")
    assert again.exit_code == 0 and "already recorded as M1" in again.stdout
    other_source = _add(cli, INCIDENT, "--source-id", "1001", source="mastodon")
    assert "Recorded M2" in other_source.stdout
    assert _types(store).count("MessageReceived") == 2


@pytest.mark.parametrize("args, message", [
    (["--source", "X Twitter", "--text", "hi"], "source: 'X Twitter' is not a source name"),
    (["--source", "x", "--text", "   "], "text: empty"),
    (["--source", "x", "--text", "a" * 5001], "text: 5001 characters; at most 5000"),
    (["--source", "x", "--text", "hidden \x1b[8m text"], "text contains U+001B (ESCAPE)"),
    (["--source", "x", "--text", "bidi \u202e text"], "text contains U+202E"),
    (["--source", "x", "--text", "hi", "--author", "a\nb"], "author contains U+000A (LINE FEED)"),
    (["--source", "x", "--text", "hi", "--posted-at", "yesterday"], "posted_at: timestamp 'yesterday' is not ISO"),
    (["--source", "x", "--text", "hi", "--posted-at", "2026-03-14T08:00:00"], "has no time zone"),
    (["--source", "x", "--text", "hi", "--posted-at", "2026-03-15T09:00:00Z"], "posted_at: 2026-03-15T09:00:00Z is in the future"),
    (["--source", "x", "--text", "hi", "--url", "javascript:alert(1)"], "url: 'javascript:alert(1)' is not an http(s) address"),
    (["--source", "x", "--text", "hi", "--lang", "English!"], "lang: 'English!' is not a language tag"),
])
def test_a_bad_message_is_refused_naming_the_field_and_nothing_is_written(cli, store, playbook, args, message):
    _start(cli, playbook)
    before = _types(store)
    result = cli("inbound", "add", INCIDENT, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert _types(store) == before


def test_every_problem_of_a_message_is_named_at_once(cli, playbook):
    _start(cli, playbook)
    result = cli("inbound", "add", INCIDENT, "--source", "X!", "--text", "hi", "--lang", "??")
    assert result.exit_code == 2
    assert "2 problems" in result.stderr and "source:" in result.stderr and "lang:" in result.stderr


def test_a_message_for_an_unknown_incident_or_from_someone_without_a_role_is_refused(cli, store, playbook):
    _start(cli, playbook)
    missing = _add(cli, "INC-20260314-099")
    assert missing.exit_code == 4 and "no incident 'INC-20260314-099'" in missing.stderr
    outsider = _add(cli, INCIDENT, "--as", "mallory")
    assert outsider.exit_code == 5 and "mallory holds no role" in outsider.stderr
    engine = _add(cli, INCIDENT, "--as", "system:clock")
    assert engine.exit_code == 2 and "system:" in engine.stderr
    assert "MessageReceived" not in _types(store)


def test_the_inbox_lists_the_longest_waiting_first(cli, clock, playbook):
    _start(cli, playbook)
    _add(cli, INCIDENT, "--posted-at", "2026-03-14T08:50:00Z", "--author", "@late", text="second")
    _add(cli, INCIDENT, "--posted-at", "2026-03-14T08:10:00Z", "--author", "@early", text="first")
    _add(cli, INCIDENT, source="phone", text="a call just now")
    out = cli("inbox").stdout.splitlines()
    assert [line.split()[1] for line in out[::2]] == ["M2", "M1", "M3"]
    assert "waiting 50m" in out[0] and "OVERDUE" not in out[0]
    clock.advance(timedelta(minutes=20))
    rows = json.loads(cli("inbox", INCIDENT, "--json").stdout)
    assert [(r["message"], r["waiting_seconds"], r["overdue"]) for r in rows] == [
        ("M2", 70 * 60, True), ("M1", 30 * 60, False), ("M3", 20 * 60, False)]


def test_a_published_reply_answers_the_message_and_stops_its_clock(cli, clock, store, playbook):
    _start(cli, playbook)
    _add(cli, INCIDENT, "--posted-at", "2026-03-14T08:30:00Z", "--author", "@patient")
    cli("task", INCIDENT, "confirm_post")
    cli("advance", INCIDENT, "acknowledge")
    rendered = cli("render", INCIDENT, "public_ack", "--reply-to", "M1")
    assert rendered.exit_code == 0, rendered.output
    assert "== public_ack/x/en/M1 v1" in rendered.stdout  # the message's own channel only
    assert "in reply to M1" in cli("log", INCIDENT).stdout
    cli("approve", INCIDENT, "public_ack/x/en/M1", "--version", "1", "--as", "bob")
    clock.advance(timedelta(minutes=10))
    assert cli("publish", INCIDENT, "public_ack/x/en/M1").exit_code == 0
    row = json.loads(cli("inbox", INCIDENT, "--json").stdout)[0]
    assert row["status"] == "answered" and row["answered"]["post"] == "public_ack/x/en/M1"
    assert row["waiting_seconds"] == 40 * 60
    assert cli("inbox", "--unanswered").stdout == "No messages waiting.\n"
    clocks = json.loads(cli("status", INCIDENT, "--json").stdout)["clocks"]
    assert [c["outcome"] for c in clocks if c["key"] == "message:M1"] == ["met_on_time"]
    assert cli("verify").exit_code == 0


def test_a_reply_is_refused_for_an_unknown_answered_or_channelless_message(cli, store, playbook):
    _start(cli, playbook)
    _add(cli, INCIDENT)
    _add(cli, INCIDENT, source="phone", text="they called")
    cli("task", INCIDENT, "confirm_post")
    cli("advance", INCIDENT, "acknowledge")
    before = _types(store)
    unknown = cli("render", INCIDENT, "public_ack", "--reply-to", "M9")
    assert unknown.exit_code == 4 and "no message 'M9' (messages: M1, M2)" in unknown.stderr
    no_channel = cli("render", INCIDENT, "public_ack", "--reply-to", "M2")
    assert no_channel.exit_code == 2 and "came through phone" in no_channel.stderr and "--channel" in no_channel.stderr
    two = cli("render", INCIDENT, "public_ack", "--reply-to", "M1", "--channel", "x", "--channel", "facebook")
    assert two.exit_code == 2 and "one --channel" in two.stderr
    assert _types(store) == before
    cli("inbound", "handle", INCIDENT, "M1", "--reason", "duplicate")
    done = cli("render", INCIDENT, "public_ack", "--reply-to", "M1")
    assert done.exit_code == 5 and "message M1 is already handled" in done.stderr


def test_handling_a_message_records_the_reason_once(cli, store, playbook):
    _start(cli, playbook)
    _add(cli, INCIDENT, source="phone")
    result = cli("inbound", "handle", INCIDENT, "M1", "--reason", "private", "--note", "called back")
    assert result.exit_code == 0 and "M1 marked handled (private)" in result.stdout
    assert "message M1 needs no reply: private (called back)" in cli("log", INCIDENT).stdout
    again = cli("inbound", "handle", INCIDENT, "M1", "--reason", "spam")
    assert again.exit_code == 5 and "already handled (handled privately, by alice" in again.stderr
    bad = cli("inbound", "handle", INCIDENT, "M1", "--reason", "boring")
    assert bad.exit_code == 2
    missing = cli("inbound", "handle", INCIDENT, "M7", "--reason", "spam")
    assert missing.exit_code == 4 and "no message 'M7'" in missing.stderr
    assert _types(store).count("MessageHandled") == 1


def test_an_unanswered_message_pages_due_from_when_it_was_posted(cli, clock, store, playbook):
    _start(cli, playbook)
    _add(cli, INCIDENT, "--posted-at", "2026-03-14T08:10:00Z", "--author", "@patient")
    assert cli("due").exit_code == 0  # due at 09:10
    clock.advance(timedelta(minutes=20))
    result = cli("due")
    assert result.exit_code == 9
    assert "reply to M1 (x from @patient)" in result.stdout and "OVERDUE by 10m" in result.stdout
    assert "recorded: INC-20260314-001 missed reply to M1" in result.stdout
    assert cli("due").exit_code == 9
    assert [e.data["clock"] for e in store.events(INCIDENT) if e.type == "DeadlineBreached"
            and e.data["clock"].startswith("message:")] == ["message:M1"]
    escalated = [e for e in store.events(INCIDENT) if e.type == "EscalationApplied"
                 and e.data["clock"] == "message:M1"]
    assert escalated[0].data["notify"] == {"incident_lead": ["alice"]}
    status = cli("status", INCIDENT).stdout
    assert "reply to M1 (x from @patient)" in status and "OVERDUE by 10m" in status


def test_the_response_clock_follows_the_source(cli, playbook):
    _start(cli, playbook)
    _add(cli, INCIDENT, source="phone")
    _add(cli, INCIDENT, source="reviews")
    clocks = {c["key"]: c["due_at"] for c in json.loads(cli("status", INCIDENT, "--json").stdout)["clocks"]}
    assert clocks["message:M1"] == "2026-03-14T09:30:00.000Z"  # phone: 30m
    assert clocks["message:M2"] == "2026-03-14T10:00:00.000Z"  # default: 60m


def test_without_respond_within_a_message_has_no_clock(cli, store, tmp_path):
    from conftest import VIRAL_START

    text = VIRAL.read_text(encoding="utf-8")
    shipped = text.find("\ninbound:")  # the shipped playbook's response clocks left out
    bare = tmp_path / "bare.yaml"
    bare.write_text(text[:shipped] + text[text.index("\ninitial:", shipped):], encoding="utf-8")
    cli(*[str(bare) if a == str(VIRAL) else a for a in VIRAL_START])
    _add(cli, INCIDENT, "--posted-at", "2026-03-14T07:00:00Z")
    assert not [c for c in json.loads(cli("status", INCIDENT, "--json").stdout)["clocks"]
                if c["kind"] == "message"]
    assert cli("inbox", "--json").stdout.count('"message": "M1"') == 1


def test_a_drills_overdue_message_is_listed_but_never_pages(cli, playbook):
    drill = _start(cli, playbook, "drill")
    _add(cli, drill, "--posted-at", "2026-03-14T07:00:00Z")
    result = cli("due")
    assert result.exit_code == 0
    assert "DRILL" in result.stdout and "reply to M1" in result.stdout


def test_a_bad_respond_within_is_a_playbook_error(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(VIRAL.read_text(encoding="utf-8").replace(
        "\ntargets:", "\ninbound:\n  respond_within: {default: soon}\n  escalate: {notify: [nobody]}\ntargets:", 1))
    result = cli("validate", str(bad))
    assert result.exit_code == 3
    assert "inbound.respond_within.default" in result.output


def test_status_lists_only_the_most_urgent_replies_and_counts_the_rest(cli, clock, playbook):
    _start(cli, playbook)
    for n in range(8):
        _add(cli, INCIDENT, "--posted-at", f"2026-03-14T08:{n:02d}:00Z", "--author", f"@p{n}")
    clock.advance(timedelta(minutes=3, seconds=30))  # M1..M4 are over their hour
    status = cli("status", INCIDENT).stdout
    assert [f"reply to M{n} " in status for n in range(1, 9)] == [True] * 5 + [False] * 3
    assert "Inbound messages: 8 (8 waiting for an answer, 4 over their response time); the 5 most urgent" in status
    assert len(json.loads(cli("inbox", "--unanswered", "--json").stdout)) == 8


def test_a_closed_incident_takes_no_message_by_hand(cli, store, playbook):
    _start(cli, playbook)
    cli("task", INCIDENT, "confirm_post")
    cli("task", INCIDENT, "check_patient")
    assert cli("advance", INCIDENT, "dismiss").exit_code == 0
    result = _add(cli, INCIDENT)
    assert result.exit_code == 5 and f"incident {INCIDENT} is closed" in result.stderr
    assert "MessageReceived" not in _types(store)


def test_inbound_add_json_gives_the_recorded_message(cli, playbook):
    _start(cli, playbook)
    got = json.loads(_add(cli, INCIDENT, "--json", "--author", "@p").stdout)
    assert (got["incident"], got["message"], got["new"], got["status"], got["author"]) == (
        INCIDENT, "M1", True, "waiting", "@p")
    assert got["received_at"] == got["posted_at"] == "2026-03-14T09:00:00.000Z"


@pytest.mark.parametrize("lang, drafted", [
    ("es", ["public_ack/x/es/M1"]),
    ("en-GB", ["public_ack/x/en/M1"]),  # the language's primary subtag
    ("fr", ["public_ack/x/ar/M1", "public_ack/x/en/M1", "public_ack/x/es/M1"]),  # no text in it: every one
    (None, ["public_ack/x/ar/M1", "public_ack/x/en/M1", "public_ack/x/es/M1"]),
])
def test_a_reply_is_drafted_in_the_messages_language_when_the_template_has_it(cli, store, playbook, lang, drafted):
    _start(cli, playbook)
    _add(cli, INCIDENT, *(("--lang", lang) if lang else ()))
    cli("task", INCIDENT, "confirm_post")
    cli("advance", INCIDENT, "acknowledge")
    assert cli("render", INCIDENT, "public_ack", "--reply-to", "M1").exit_code == 0
    assert sorted(store.snapshot(INCIDENT).state["posts"]) == drafted


def test_a_reply_in_a_language_asked_for_is_drafted_in_it(cli, store, playbook):
    _start(cli, playbook)
    _add(cli, INCIDENT, "--lang", "es")
    cli("task", INCIDENT, "confirm_post")
    cli("advance", INCIDENT, "acknowledge")
    assert cli("render", INCIDENT, "public_ack", "--reply-to", "M1", "--lang", "en").exit_code == 0
    assert sorted(store.snapshot(INCIDENT).state["posts"]) == ["public_ack/x/en/M1"]
