"""Monitors: messages for a playbook with no open incident are kept (tamper-evident,
deduplicated) and counted; a spike opens one incident whose clocks start when the first
message was posted, or pages someone to confirm; later messages join the incident."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import ThreadingHTTPServer

import pytest

INCIDENT = "INC-20260314-001"
SPIKY = """\
id: spiky
name: Complaints on social media
version: "1"
roles:
  lead: {title: Lead, required: true}
  spokesperson: {title: Spokesperson}
inbound:
  respond_within: {default: 60m}
monitors:
  complaints:
    title: Complaints are spreading
    keywords: [waited hours, rude, négligence]
    spike: {count: 3, within: 30m}
    action: open
    inputs: {post_url: url}
targets:
  first_public_post: {within: 60m}
inputs:
  post_url: {type: url}
stages:
  open:
    title: Answer
    templates: [answer]
  closed: {title: Closed, terminal: true}
transitions:
  close: {from: open, to: closed, roles: [lead]}
templates:
  answer:
    approval: {all_of: [spokesperson]}
    channels:
      x:
        en: "We are sorry to hear this. Please contact us privately so that we can help."
"""


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A library folder holding the spiky playbook (edit it with `write`)."""
    folder = tmp_path / "library"
    folder.mkdir()

    def write(text=SPIKY):
        (folder / "spiky.yaml").write_text(text, encoding="utf-8")
        return folder / "spiky.yaml"

    write()
    monkeypatch.setenv("PLAYBOOK_LIBRARY", str(folder))
    monkeypatch.setenv("PLAYBOOK_DESTINATIONS", str(tmp_path / "destinations.yaml"))
    library.write = write
    return write


def _add(cli, text, minutes_ago, n, *more, source="x"):
    posted = (cli.clock.now() - timedelta(minutes=minutes_ago)).isoformat()
    return cli("inbound", "add", "--playbook", "spiky", "--source", source, "--text", text, "--posted-at", posted,
               "--source-id", str(n), "--url", f"https://x.com/p/status/{n}", *more)


def _listening(store):
    from engine.incidents import monitors

    return monitors.read(store)


def test_a_spike_opens_one_incident_whose_clocks_start_at_the_first_message(cli, store, library):
    first = _add(cli, "I WAITED hours in your ER", 25, 1)
    assert first.exit_code == 0, first.output
    assert "Kept L1 for spiky (no incident open; matches complaints)" in first.stdout
    assert "Kept L2" in _add(cli, "Lovely nurses, thank you", 20, 2).stdout  # kept, matching nothing
    assert "Kept L3" in _add(cli, "so rude!", 15, 3).stdout
    third = _add(cli, "Négligence pure", 1, 4)
    assert third.exit_code == 0, third.output
    assert f"Monitor complaints opened {INCIDENT} from 3 matching message(s)." in third.stdout
    assert f"Recorded M3 on {INCIDENT}" in third.stdout
    assert store.incidents() == [INCIDENT]
    state = json.loads(cli("status", INCIDENT, "--json").stdout)
    assert state["opened_by_monitor"]["monitor"] == "complaints"
    assert state["opened_by_monitor"]["time_to_detect_seconds"] == 25 * 60
    target = next(c for c in state["clocks"] if c["key"] == "target:first_public_post")
    assert (target["from"], target["from_at"]) == ("the first message", "2026-03-14T08:35:00.000Z")
    assert target["due_at"] == "2026-03-14T09:35:00.000Z"
    shown = cli("status", INCIDENT).stdout
    assert "Opened:   by monitor complaints from 3 matching message(s), the first posted " \
           "2026-03-14T08:35:00.000Z; time to detect 25m" in shown
    received = [e for e in store.events(INCIDENT) if e.type == "MessageReceived"]
    assert [(e.actor, e.data["text"], e.data["held"]) for e in received] == [
        ("system:monitor", "I WAITED hours in your ER", "L1"), ("system:monitor", "so rude!", "L3"),
        ("system:monitor", "Négligence pure", "L4")]
    assert received[0].data["reported_by"] == "alice"
    started = next(iter(store.events(INCIDENT)))
    assert started.actor == "system:monitor" and started.data["inputs"] == {"post_url": "https://x.com/p/status/1"}
    assert "by monitor complaints (3 matching message(s), the first posted 2026-03-14T08:35:00.000Z)" \
        in cli("log", INCIDENT).stdout
    report = cli("report", INCIDENT).stdout
    assert "Time to detect (first message posted to incident opened): 25m" in report
    assert ("| Opened by | monitor complaints: 3 matching message(s), the first posted 2026-03-14T08:35:00.000Z; "
            "time to detect 25m |") in report
    html = cli("report", INCIDENT, "--format", "html").stdout
    assert "<dt>Opened by</dt><dd>monitor complaints: 3 matching message(s)" in html
    kept = _listening(store)["messages"]
    assert kept["L2"]["attached"] is None and kept["L1"]["attached"] == INCIDENT
    assert cli("verify").exit_code == 0


def test_below_the_spike_no_incident_opens_and_every_message_is_kept_once(cli, store, library):
    assert _add(cli, "waited hours", 120, 1).exit_code == 0  # too long ago to count with the others
    assert _add(cli, "rude staff", 10, 2).exit_code == 0
    again = _add(cli, "rude staff", 10, 2)
    assert again.exit_code == 0 and "already kept as L2 (same source id); nothing added" in again.stdout
    assert _add(cli, "waited hours again", 5, 3).exit_code == 0
    assert store.incidents() == []
    kept = _listening(store)["messages"]
    assert sorted(kept) == ["L1", "L2", "L3"]
    assert all(m["attached"] is None and m["monitors"] == ["complaints"] for m in kept.values())
    verified = cli("verify")
    assert verified.exit_code == 0, verified.output


def test_later_messages_join_the_incident_the_monitor_opened(cli, store, library):
    for n, minutes in ((1, 9), (2, 8), (3, 7)):
        assert _add(cli, "waited hours", minutes, n).exit_code == 0
    refused = _add(cli, "thanks for nothing", 2, 4)
    assert refused.exit_code == 5 and "alice holds no role in this incident" in refused.stderr
    assert cli("assign", INCIDENT, "lead", "alice").exit_code == 0
    joined = _add(cli, "thanks for nothing", 1, 4)  # joins even without a keyword: the incident is open
    assert f"Recorded M4 on {INCIDENT}" in joined.stdout
    assert store.incidents() == [INCIDENT]
    assert len(json.loads(cli("inbox", INCIDENT, "--json").stdout)) == 4


def test_messages_kept_before_someone_opens_the_incident_by_hand_join_it(cli, store, library):
    assert _add(cli, "so rude", 30, 1).exit_code == 0
    assert _add(cli, "nothing to see", 29, 2).exit_code == 0
    started = cli("start", str(library()), "--title", "By hand", "--assign", "lead=alice")
    assert started.exit_code == 0, started.output
    assert f"Recorded M1 on {INCIDENT}" in _add(cli, "still rude", 1, 3).stdout
    texts = [e.data["text"] for e in store.events(INCIDENT) if e.type == "MessageReceived"]
    assert texts == ["still rude", "so rude"]  # the one that matched a monitor joins; the other stays kept
    assert _listening(store)["messages"]["L2"]["attached"] is None
    assert cli("verify").exit_code == 0


def test_the_time_to_detect_also_counts_from_a_posted_at_given_by_hand(cli, store):
    """A manual start keeps its datetime anchor: --set complaint_posted_at=... (`from:`)."""
    from conftest import VIRAL_START

    assert cli(*VIRAL_START, "--set", "complaint_posted_at=2026-03-14T05:00:00Z").exit_code == 0
    clocks = {c["key"]: c for c in json.loads(cli("status", INCIDENT, "--json").stdout)["clocks"]}
    assert clocks["target:first_public_post"]["from_at"] == "2026-03-14T05:00:00Z"
    assert "opened_by_monitor" not in json.loads(cli("status", INCIDENT, "--json").stdout)


def test_an_incident_a_monitor_opened_is_staffed_by_whoever_comes_first(cli, store, library):
    for n in (1, 2, 3):
        _add(cli, "rude", 4 - n, n)
    assert cli("assign", INCIDENT, "lead", "alice", "--as", "alice").exit_code == 0
    refused = cli("assign", INCIDENT, "spokesperson", "bob", "--as", "bob")
    assert refused.exit_code == 5 and "only holders of lead may assign roles" in refused.stderr
    assert cli("assign", INCIDENT, "spokesperson", "bob", "--as", "alice").exit_code == 0
    assert cli("verify").exit_code == 0


def test_only_the_engine_opens_an_incident_from_a_monitor(store, clock, viral):
    from engine.errors import Refused
    from engine.incidents import service

    with pytest.raises(Refused, match="only the engine may open an incident from a monitor"):
        service.start(store, clock, "alice", viral, title="T", origin={"monitor": "m", "origin_at": "x",
                                                                        "messages": 1, "fired_at": "x"})


def test_a_page_monitor_notifies_the_roles_it_names_once_per_window(cli, store, library, tmp_path):
    from test_delivery import Hook

    library(SPIKY.replace("action: open", "action: page\n    notify: [lead]"))
    with Hook() as hook:
        (tmp_path / "destinations.yaml").write_text(f"escalation.lead: ['{hook.url}']\n", encoding="utf-8")
        for n in (1, 2):
            _add(cli, "rude", 10 - n, n)
        paged = _add(cli, "rude", 5, 3)
        assert paged.exit_code == 0, paged.output
        assert "Monitor complaints fired (3 matching message(s)): paging to confirm." in paged.stdout
        assert "paged json://127.0.0.1" in paged.stdout
        assert "fired" not in _add(cli, "rude", 4, 4).stdout  # within its window: not paged again
        cli.clock.advance(timedelta(minutes=31))
        assert "paging to confirm" in _add(cli, "rude", 0, 5).stdout
    assert store.incidents() == []
    assert len(hook.received) == 2
    assert "Monitor complaints of playbook spiky asks you to confirm: 3 matching message(s), the first posted " \
           "2026-03-14T08:51:00.000Z" in hook.received[0]["message"]
    pages = [e.data for e in store.events("LISTENING") if e.type == "MonitorPaged"]
    assert [p["ok"] for p in pages] == [True, True] and pages[0]["target"].startswith("json://127.0.0.1")
    assert cli("verify").exit_code == 0


def test_a_page_with_no_destination_says_loudly_that_nobody_was_paged(cli, store, library):
    library(SPIKY.replace("action: open", "action: page\n    notify: [lead]"))
    for n in (1, 2):
        _add(cli, "rude", 10 - n, n)
    paged = _add(cli, "rude", 5, 3)
    assert "!! NOBODY WAS PAGED: no destination configured (escalation, escalation.lead in destinations.yaml)" \
        in paged.stdout
    [page] = [e.data for e in store.events("LISTENING") if e.type == "MonitorPaged"]
    assert page["ok"] is False and "NOBODY WAS PAGED" in page["error"]


def test_a_monitor_with_min_reach_counts_only_authors_that_wide(cli, store, library):
    library(SPIKY.replace("spike: {count: 3, within: 30m}", "min_reach: 10000"))
    assert "matches no monitor" in _add(cli, "rude", 3, 1).stdout  # its source did not say
    assert "matches no monitor" in _add(cli, "rude", 2, 2, "--reach", "9999").stdout
    opened = _add(cli, "rude", 1, 3, "--reach", "250000")
    assert f"Monitor complaints opened {INCIDENT} from 1 matching message(s)." in opened.stdout
    [m] = [e.data for e in store.events(INCIDENT) if e.type == "MessageReceived"]
    assert m["reach"] == 250000


@pytest.mark.parametrize("text, matches", [
    ("RUDE!", True), ("they were rude.", True), ("prudent people", False), ("rudeness", False),
    ("I waited   hours", True), ("waited two hours", False), ("NEGLIGENCE", True), ("négligence", True),
    ("négligencé", True), ("hours waited", False),
])
def test_keywords_match_whole_words_ignoring_case_and_accents(text, matches):
    from engine.format.monitors import Monitor, compiled
    from engine.incidents.monitors import matches as matching

    [spec] = compiled({"m": Monitor(keywords=["rude", "waited hours", "Négligence"])}).values()
    assert matching(spec, {"source": "x", "text": text}) is matches


@pytest.mark.parametrize("block, where, message", [
    ("keywords: ['a.*b']", "monitors.m.keywords[0]", "is not a word or phrase"),
    ("keywords: ['(a|b)+']", "monitors.m.keywords[0]", "keywords are not patterns"),
    ("keywords: [rude, RUDE]", "monitors.m.keywords", "'RUDE' is the same keyword as 'rude'"),
    ("keywords: []", "monitors.m.keywords", "at least 1 item"),
    ("keywords: [rude]\n    spike: {count: 3, within: 10s}", "monitors.m.spike.within", "between 1m and 7d"),
    ("keywords: [rude]\n    spike: {count: 0}", "monitors.m.spike.count", "greater than or equal to 1"),
    ("keywords: [rude]\n    action: shout", "monitors.m.action", "'open' or 'page'"),
    ("keywords: [rude]\n    min_reach: -5", "monitors.m.min_reach", "greater than or equal to 0"),
    ("keywords: [rude]\n    regex: '.*'", "monitors.m.regex", "unknown key 'regex'"),
    ("keywords: [rude]\n    severity: urgent", "monitors.m.severity", "unknown severity 'urgent'"),
    ("keywords: [rude]\n    notify: [boss]", "monitors.m.notify[0]", "unknown role 'boss'"),
    ("keywords: [rude]\n    inputs: {nothere: url}", "monitors.m.inputs.nothere", "unknown input 'nothere'"),
    ("keywords: [rude]\n    inputs: {post_url: posted_at}", "monitors.m.inputs.post_url",
     "posted_at goes into a datetime"),
    ("keywords: [rude]\n    inputs: {post_url: colour}", "monitors.m.inputs.post_url", "input should be"),
])
def test_a_bad_monitor_is_reported_with_its_file_line_and_field(cli, tmp_path, block, where, message):
    text = SPIKY.split("monitors:")[0] + "monitors:\n  m:\n    " + block + "\ntargets:" + SPIKY.split("targets:")[1]
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    result = cli("validate", str(path))
    assert result.exit_code == 3, result.output
    key = where.split(".")[2].split("[")[0]
    line = next(n for n, ln in enumerate(text.splitlines(), 1) if ln.startswith(f"    {key}:"))
    assert f"{path}:{line}:" in result.output and f": {where}: " in result.output and message in result.output


def test_a_confidential_input_is_never_filled_from_a_message(cli, tmp_path):
    text = SPIKY.replace("inputs: {post_url: url}", "inputs: {secret_name: author}").replace(
        "  post_url: {type: url}", "  post_url: {type: url}\n  secret_name: {type: string, confidential: true}")
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    result = cli("validate", str(path))
    assert result.exit_code == 3 and "monitors.complaints.inputs.secret_name: input 'secret_name' is confidential" \
        in result.output


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "give INCIDENT, or --playbook NAME"),
    ([INCIDENT, "--playbook", "spiky"], 2, "give INCIDENT or --playbook NAME"),
    (["--playbook", "nosuch"], 4, "--playbook: no playbook 'nosuch' in the library (there are: spiky)"),
    (["--playbook", "spiky", "--reach", "-1"], 2, "--reach"),
])
def test_inbound_add_needs_an_incident_or_a_playbook_of_the_library(cli, store, library, args, code, message):
    result = cli("inbound", "add", *args, "--source", "x", "--text", "rude")
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert store.stream("LISTENING") is None


def test_a_bad_message_for_a_playbook_is_refused_and_nothing_is_kept(cli, store, library):
    result = cli("inbound", "add", "--playbook", "spiky", "--source", "x", "--text", "rude",
                 "--posted-at", "2027-01-01T00:00:00Z")
    assert result.exit_code == 2 and "posted_at: 2027-01-01T00:00:00Z is in the future" in result.stderr
    assert store.stream("LISTENING") is None


def test_an_edited_listening_log_fails_verify(cli, store, db, library):
    import sqlite3

    assert _add(cli, "rude", 1, 1).exit_code == 0
    with sqlite3.connect(db) as c:
        c.execute("DROP TRIGGER IF EXISTS snapshots_no_update")
        c.execute("UPDATE snapshots SET state = replace(state, 'rude', 'nice') WHERE incident = 'LISTENING'")
    result = cli("verify")
    assert result.exit_code != 0
    assert "the listening log: the stored messages and firings differ" in result.output


def test_a_firing_whose_opener_died_is_taken_over_after_the_lease(cli, store, clock, library):
    """The firing is logged before the incident is opened; if the opener dies in between,
    a message arriving after the lease opens the incident instead of waiting for ever."""
    from engine.format.loader import load_playbook
    from engine.format.monitors import compiled
    from engine.incidents import monitors
    from engine.incidents.inbound import check_message

    specs = compiled(load_playbook(library()).playbook.monitors)
    for n in (1, 2, 3):  # as an opener would, up to the firing, then nothing
        raw = {"source": "x", "source_id": str(n), "text": "rude", "posted_at": f"2026-03-14T08:5{n}:00Z"}
        held = monitors.hold(store, clock, "spiky", specs, check_message(raw, clock.now()))
    assert held.fired is not None and store.incidents() == []
    assert "Kept L4" in _add(cli, "rude", 0, 4).stdout  # within the lease: the opener may still be at work
    clock.advance(monitors.LEASE)
    taken = _add(cli, "rude", 0, 5)
    assert f"Monitor complaints opened {INCIDENT} from 5 matching message(s)." in taken.stdout, taken.output
    assert [e.type for e in store.events("LISTENING")].count("MonitorFired") == 2
    assert len([e for e in store.events(INCIDENT) if e.type == "MessageReceived"]) == 5
    assert cli("verify").exit_code == 0


def test_the_listening_log_forgets_old_messages_but_never_keeps_one_twice(cli, store, clock, library):
    from engine.incidents import monitors

    assert _add(cli, "hello", 0, 1).exit_code == 0
    clock.advance(monitors.KEPT_FOR + timedelta(minutes=1))
    assert _add(cli, "hello again", 0, 2).exit_code == 0
    assert list(_listening(store)["messages"]) == ["L2"]
    assert "already kept as L1" in _add(cli, "hello", 0, 1).stdout
    assert [e.data["message"] for e in store.events("LISTENING") if e.type == "MessageHeld"] == ["L1", "L2"]
    assert cli("verify").exit_code == 0


def test_the_readmes_monitor_is_a_valid_block_of_the_shipped_playbook(tmp_path):
    import re

    from conftest import ROOT, VIRAL
    from engine.format.loader import load_playbook

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S) if b.startswith("monitors:")]
    text = VIRAL.read_text(encoding="utf-8")
    start, end = text.index("\nmonitors:\n"), text.index("\ntargets:")
    path = tmp_path / "viral-complaint.yaml"
    path.write_text(text[:start + 1] + block + text[end:], encoding="utf-8")
    loaded = load_playbook(path)
    assert loaded.playbook.monitors["complaint_spike"].spike.count == 3


def test_inbox_kept_lists_the_messages_waiting_for_a_monitor(cli, store, library):
    assert cli("inbox", "--kept").stdout.strip() == "No messages kept."
    _add(cli, "so rude", 20, 1, "--author", "@pat")
    _add(cli, "hello", 10, 2)
    shown = cli("inbox", "--kept")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("L2 ") and "matches no monitor" in lines[0]
    assert lines[2].startswith("L1 ") and "@pat" in lines[2] and "matches complaints" in lines[2]
    assert [r["id"] for r in json.loads(cli("inbox", "--kept", "--json").stdout)] == ["L2", "L1"]


def test_a_drill_spike_opens_a_drill_apart_from_real_messages_and_pages_nobody(cli, store, library, tmp_path):
    library(SPIKY.replace("action: open", "action: open\n    notify: [lead]"))
    (tmp_path / "destinations.yaml").write_text("escalation: ['json://127.0.0.1:9/never']\n", encoding="utf-8")
    assert "Kept L1 for spiky" in _add(cli, "rude", 5, 1).stdout  # a real one: not counted by the drill
    for n in (2, 3):
        assert "Kept" in _add(cli, "rude", 5 - n, n, "--drill").stdout
    opened = _add(cli, "rude", 0, 4, "--drill")
    assert opened.exit_code == 0, opened.output
    assert "Monitor complaints opened DRILL-20260314-001 from 3 matching message(s)." in opened.stdout
    assert "!! a drill pages nobody" in opened.stdout
    assert store.incidents() == ["DRILL-20260314-001"]
    assert _listening(store)["messages"]["L1"]["attached"] is None
    assert "Kept L5 for spiky" in _add(cli, "rude", 0, 5).stdout  # a real message never joins a drill
    refused = cli("inbound", "add", INCIDENT, "--drill", "--source", "x", "--text", "rude")
    assert refused.exit_code == 2 and "--drill goes with --playbook NAME" in refused.stderr
    assert cli("verify").exit_code == 0


@pytest.mark.parametrize("text, message", [
    ("r:\n  kind: feed\n  url: https://f.example\n  playbook: p\n  drill: yes please\n", "r.drill: true or false"),
    ("r:\n  kind: feed\n  url: https://f.example\n  incident: X\n  drill: true\n", "r.drill: a drill source feeds"),
])
def test_a_bad_drill_setting_in_the_sources_file_is_refused(cli, tmp_path, text, message):
    (tmp_path / "sources.yaml").write_text(text, encoding="utf-8")
    result = cli("listen", "--count", "1", "--db", str(tmp_path / "incidents.db"))
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_a_page_the_destination_refuses_is_logged_as_failed(cli, store, library, tmp_path):
    from test_delivery import Hook

    library(SPIKY.replace("action: open", "action: page\n    notify: [lead]"))
    with Hook(status=500) as hook:
        (tmp_path / "destinations.yaml").write_text(f"escalation: ['{hook.url}']\n", encoding="utf-8")
        for n in (1, 2, 3):
            paged = _add(cli, "rude", 10 - n, n)
    assert paged.exit_code == 0, paged.output
    assert "!! json://127.0.0.1" in paged.stdout
    [page] = [e.data for e in store.events("LISTENING") if e.type == "MonitorPaged"]
    assert page["ok"] is False and page["error"]


def test_a_source_whose_library_playbook_is_broken_is_reported_and_polled_again(cli, store, tmp_path, monkeypatch):
    from test_listen import StandIn, _sources

    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "spiky.yaml").write_text(SPIKY.replace("keywords: [waited hours, rude, négligence]", "keywords: [a.*]"),
                                       encoding="utf-8")
    monkeypatch.setenv("PLAYBOOK_LIBRARY", str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _sources(tmp_path, f"reviews:\n  kind: feed\n  url: http://127.0.0.1:{server.server_address[1]}/feed.atom\n"
                           "  playbook: spiky\n")
        result = cli("listen", "--count", "1")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    assert "!! reviews: " in result.stdout and "monitors.complaints.keywords[0]" in result.stdout
    assert "(polled again next time)" in result.stdout
    assert store.stream("LISTENING") is None


def test_a_page_reaches_whoever_holds_the_role_on_the_on_call_roster(cli, store, library, tmp_path, monkeypatch):
    from test_delivery import Hook

    library(SPIKY.replace("action: open", "action: page\n    notify: [lead]"))
    (tmp_path / "roster.yaml").write_text("lead:\n  - person: dana\n    destination: pager.dana\n", encoding="utf-8")
    monkeypatch.setenv("PLAYBOOK_ROSTER", str(tmp_path / "roster.yaml"))
    with Hook() as hook:
        (tmp_path / "destinations.yaml").write_text(f"pager.dana: ['{hook.url}']\n", encoding="utf-8")
        for n in (1, 2, 3):
            paged = _add(cli, "rude", 10 - n, n)
    assert paged.exit_code == 0, paged.output
    assert "paged json://127.0.0.1" in paged.stdout
    assert len(hook.received) == 1 and "asks you to confirm" in hook.received[0]["message"]
