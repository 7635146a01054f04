"""The incident report: every metric from the log, three formats, safe HTML, streamed exports."""

from __future__ import annotations

import csv
import io
import json
import re
import time
import tracemalloc
from datetime import timedelta

import pytest

from conftest import T0, VIRAL
from engine.audit.report import build_report, export_events, render_report
from engine.errors import NotFound, UsageError
from engine.incidents import service
from engine.incidents.events import NewEvent, canonical, utc_now_iso
from engine.posts import versions as posts, release

M, H = 60, 3600
XSS = "<script>alert(1)</script>"


def started(store, clock, viral, *, drill: bool = False) -> str:
    state = service.start(
        store, clock, "alice", viral, title="ER wait time complaint", drill=drill,
        inputs={"complaint_url": "https://x.com/patient/status/1", "complaint_channel": "x"},
        assign={"incident_lead": "alice", "spokesperson": "bob", "compliance": "cora", "patient_relations": "petra"})
    service.assign(store, clock, "alice", state["id"], "social_media", "carol")
    service.assign(store, clock, "alice", state["id"], "compliance", "dave")
    return state["id"]


def at(clock, seconds: int) -> None:
    """Move the fixed clock to T0 + seconds."""
    clock.advance(T0 + timedelta(seconds=seconds) - clock.now())


def post(store, clock, iid: str, template: str, approvers: list[tuple[int, str]], published: int, outbox) -> None:
    pid = f"{template}/x/en"
    for t, who in approvers:
        at(clock, t)
        posts.approve(store, clock, who, iid, pid, version=store.snapshot(iid).state["posts"][pid]["version"])
    at(clock, published)
    release.publish(store, clock, "carol", iid, pid, outbox)


def render(store, clock, iid: str, template: str, t: int) -> None:
    at(clock, t)
    posts.render(store, clock, "carol", iid, template, channels=("x",), langs=("en",))


@pytest.fixture
def scripted(store, clock, viral, tmp_path):
    """The viral-complaint incident, walked through with known times, then closed at 8h10m."""
    outbox = tmp_path / "outbox"
    iid = started(store, clock, viral)
    at(clock, 5 * M); service.task(store, clock, "alice", iid, "confirm_post")
    at(clock, 10 * M); service.advance(store, clock, "alice", iid, "acknowledge")
    render(store, clock, iid, "public_ack", 12 * M)
    at(clock, 15 * M)
    posts.reject(store, clock, "bob", iid, "public_ack/x/en", "too stiff")
    service.note(store, clock, "alice", iid, XSS)
    render(store, clock, iid, "public_ack", 17 * M)
    post(store, clock, iid, "public_ack", [(22 * M, "bob")], 25 * M, outbox)
    at(clock, 30 * M); service.advance(store, clock, "alice", iid, "take_private")
    at(clock, 1 * H); service.task(store, clock, "alice", iid, "contact_patient")
    at(clock, 5 * H); service.advance(store, clock, "alice", iid, "investigate")
    render(store, clock, iid, "holding_update", 6 * H)
    post(store, clock, iid, "holding_update", [(6 * H + 10 * M, "bob")], 6 * H + 20 * M, outbox)
    at(clock, 6 * H + 30 * M)
    service.task(store, clock, "alice", iid, "gather_facts")
    service.task(store, clock, "alice", iid, "privacy_review")
    at(clock, 7 * H); service.advance(store, clock, "alice", iid, "respond")
    render(store, clock, iid, "public_response", 7 * H + 5 * M)
    post(store, clock, iid, "public_response", [(7 * H + 30 * M, "bob"), (7 * H + 45 * M, "dave")], 8 * H, outbox)
    at(clock, 8 * H + 10 * M); service.close(store, clock, "alice", iid)
    at(clock, 10 * H)
    return iid


def test_time_to_first_public_post_counts_from_the_start(store, clock, scripted):
    m = build_report(store, scripted, clock.now())["metrics"]
    assert m["time_to_first_public_post_seconds"] == 25 * M
    assert m["first_public_post_at"] == "2026-03-14T09:25:00.000Z"


def test_time_in_each_stage_stops_at_closing(store, clock, scripted):
    m = build_report(store, scripted, clock.now())["metrics"]
    assert {s["stage"]: s["seconds"] for s in m["stage_times"]} == {
        "triage": 10 * M, "acknowledge": 20 * M, "private_outreach": 4 * H + 30 * M,
        "investigate": 2 * H, "respond": H + 10 * M, "resolved": 0}
    assert m["duration_seconds"] == 8 * H + 10 * M  # not until `now` (10h): the incident closed
    assert [v["trigger_in"] for v in m["stage_visits"]] == [
        None, "acknowledge", "take_private", "investigate", "respond", "resolve"]


def test_approval_latency_per_post_version(store, clock, scripted):
    m = build_report(store, scripted, clock.now())["metrics"]
    latency = {(a["post"], a["version"]): a["seconds"] for a in m["approval_latency"]}
    assert latency == {
        ("public_ack/x/en", 1): None,  # rejected, never approved
        ("public_ack/x/en", 2): 5 * M,
        ("holding_update/x/en", 1): 10 * M,
        ("public_response/x/en", 1): 40 * M,  # fully approved only when compliance approved too
    }


def test_deadlines_met_and_missed_per_stage_visit(store, clock, scripted):
    m = build_report(store, scripted, clock.now())["metrics"]
    result = {d["key"]: (d["outcome"], d["due_at"], d["met_at"], d["late_seconds"]) for d in m["deadlines"]}
    assert result == {
        "target:first_public_post": ("met_on_time", "2026-03-14T10:00:00.000Z", "2026-03-14T09:25:00.000Z", 0),
        "stage:triage:deadline": ("met_on_time", "2026-03-14T09:15:00.000Z", "2026-03-14T09:10:00.000Z", 0),
        "stage:acknowledge:deadline": ("met_on_time", "2026-03-14T09:55:00.000Z", "2026-03-14T09:25:00.000Z", 0),
        "stage:private_outreach:deadline": ("met_late", "2026-03-14T13:30:00.000Z", "2026-03-14T14:00:00.000Z",
                                            30 * M),
        # the cadence counts from the last public post (09:25), not from entering investigate
        "stage:investigate:update": ("met_late", "2026-03-14T19:20:00.000Z", None, 0),
        "stage:respond:deadline": ("met_on_time", "2026-03-14T18:00:00.000Z", "2026-03-14T17:00:00.000Z", 0),
    }
    assert (m["deadlines_met_on_time"], m["deadlines_met_late"], m["deadlines_missed"], m["deadlines_open"]) == (
        4, 2, 0, 0)
    [updates] = [d for d in m["deadlines"] if d["kind"] == "updates"]
    assert updates["longest_gap_seconds"] == 5 * H + 55 * M and updates["late_updates"] == 1


def test_public_updates_and_the_longest_gap_between_them(store, clock, scripted):
    m = build_report(store, scripted, clock.now())["metrics"]
    assert m["public_updates"] == 3
    assert m["longest_gap_between_public_updates"] == {
        "seconds": 5 * H + 55 * M, "from_at": "2026-03-14T09:25:00.000Z", "from_post": "public_ack/x/en",
        "to_at": "2026-03-14T15:20:00.000Z", "to_post": "holding_update/x/en"}
    assert m["breaches"] == {"count": 0, "items": []} and m["escalations"]["count"] == 0


def test_posts_carry_every_version_approval_rejection_and_publication(store, clock, scripted):
    r = build_report(store, scripted, clock.now())
    ack = next(p for p in r["posts"] if p["id"] == "public_ack/x/en")
    assert (ack["status"], ack["version"], ack["public"]) == ("published", 2, True)
    assert ack["text"].startswith("We're sorry to hear how you're feeling")
    v1, v2 = ack["versions"]
    assert (v1["status"], v1["drafted_by"], v1["drafted_at"]) == ("rejected", "carol", "2026-03-14T09:12:00.000Z")
    assert v1["rejection"] == {"by": "bob", "at": "2026-03-14T09:15:00.000Z", "reason": "too stiff"}
    assert v2["approvals"] == [{"by": "bob", "role": "spokesperson", "at": "2026-03-14T09:22:00.000Z"}]
    [pub] = ack["published"]
    assert (pub["version"], pub["by"], pub["at"]) == (2, "carol", "2026-03-14T09:25:00.000Z")
    assert pub["outbox"].endswith("public_ack.x.en.v2.json") and pub["sha256"] == v2["sha256"]
    response = next(p for p in r["posts"] if p["id"] == "public_response/x/en")
    assert [a["role"] for a in response["versions"][0]["approvals"]] == ["spokesperson", "compliance"]


def test_header_roles_and_timeline_come_from_the_events(store, clock, scripted, viral):
    r = build_report(store, scripted, clock.now())
    assert r["playbook"] == {"id": "viral-complaint", "name": viral.playbook.name, "version": "1.3",
                             "sha256": viral.sha256, "path": str(VIRAL)}
    i = r["incident"]
    assert (i["title"], i["severity"], i["drill"], i["status"], i["stage"]) == (
        "ER wait time complaint", "critical", False, "closed", "resolved")
    assert i["closed_at"] == "2026-03-14T17:10:00.000Z"
    people = {x["role"]: [p["person"] for p in x["people"]] for x in r["roles"]}
    assert people["spokesperson"] == ["bob"] and people["patient_relations"] == ["petra"] and people["staff_welfare"] == []
    events = list(store.events(scripted))
    assert [(t["seq"], t["at"], t["actor"], t["type"]) for t in r["timeline"]] == [
        (e.seq, e.at, e.actor, e.type) for e in events]
    assert "\n" not in "".join(t["what"] for t in r["timeline"])
    assert r["integrity"]["ok"] and r["integrity"]["events"] == len(events)
    assert r["integrity"]["checkpoint"] is None


def test_an_unassignment_is_dated(store, clock, viral):
    iid = started(store, clock, viral)
    at(clock, 3 * M)
    service.unassign(store, clock, "alice", iid, "social_media", "carol")
    [carol] = next(x for x in build_report(store, iid)["roles"] if x["role"] == "social_media")["people"]
    assert (carol["assigned_at"], carol["unassigned_at"], carol["unassigned_by"]) == (
        "2026-03-14T09:00:00.000Z", "2026-03-14T09:03:00.000Z", "alice")


def test_each_holding_of_a_role_is_dated_on_its_own(store, clock, viral):
    iid = started(store, clock, viral)
    for minute, change in ((3, service.unassign), (5, service.assign), (8, service.unassign), (9, service.assign)):
        at(clock, minute * M)
        change(store, clock, "alice", iid, "social_media", "carol")
    held = next(x for x in build_report(store, iid)["roles"] if x["role"] == "social_media")["people"]
    assert [(h["assigned_at"][11:16], (h["unassigned_at"] or "-")[11:16]) for h in held] == [
        ("09:00", "09:03"), ("09:05", "09:08"), ("09:09", "")]


def test_a_new_draft_supersedes_earlier_drafts_and_approvals_not_rejections_or_publications(
        store, clock, viral, tmp_path):
    iid = started(store, clock, viral)
    at(clock, M); service.task(store, clock, "alice", iid, "confirm_post")
    service.advance(store, clock, "alice", iid, "acknowledge")
    render(store, clock, iid, "public_ack", 2 * M)  # v1: rejected
    posts.reject(store, clock, "bob", iid, "public_ack/x/en", "no")
    render(store, clock, iid, "public_ack", 3 * M)  # v2: published
    post(store, clock, iid, "public_ack", [(4 * M, "bob")], 5 * M, tmp_path / "outbox")
    render(store, clock, iid, "public_ack", 6 * M)  # v3: approved, then superseded
    at(clock, 7 * M); posts.approve(store, clock, "bob", iid, "public_ack/x/en", version=3)
    render(store, clock, iid, "public_ack", 8 * M)  # v4: a draft, superseded
    render(store, clock, iid, "public_ack", 9 * M)  # v5: the draft
    [x] = [p for p in build_report(store, iid)["posts"] if p["id"] == "public_ack/x/en"]
    assert [v["status"] for v in x["versions"]] == ["rejected", "published", "superseded", "superseded", "draft"]


def test_an_open_incident_runs_its_clocks_until_now(store, clock, viral):
    iid = started(store, clock, viral)
    at(clock, 10 * M)
    early = build_report(store, iid, clock.now())["metrics"]
    assert {d["key"]: (d["outcome"], d["overdue"]) for d in early["deadlines"]} == {
        "target:first_public_post": ("open", False), "stage:triage:deadline": ("open", False)}
    assert early["stage_times"] == [{"stage": "triage", "title": "Detect and triage", "visits": 1, "seconds": 10 * M}]
    late = build_report(store, iid, T0 + timedelta(hours=2))["metrics"]
    assert {d["key"]: (d["outcome"], d["overdue"]) for d in late["deadlines"]} == {
        "target:first_public_post": ("open", True), "stage:triage:deadline": ("open", True)}
    assert late["stage_times"][0]["seconds"] == 2 * H and late["deadlines_overdue"] == 2
    assert late["time_to_first_public_post_seconds"] is None
    without_now = build_report(store, iid)  # as of the last event: the same log gives the same report
    assert without_now["report"]["as_of"] == "2026-03-14T09:00:00.000Z"


def test_breaches_and_escalations_in_the_log_are_counted(store, clock, viral):
    from engine.clocks import breaches

    iid = started(store, clock, viral)
    at(clock, 2 * H)
    breaches.record(store, clock, breaches.due(store, clock.now()))
    m = build_report(store, iid, clock.now())["metrics"]
    assert m["breaches"]["count"] == 2  # triage deadline, first public post target
    assert {b["label"] for b in m["breaches"]["items"]} == {"first public post", "leave stage triage"}
    assert m["escalations"]["count"] == 2


def test_the_latest_checkpoint_covering_the_incident_is_included(store, clock, scripted, tmp_path):
    from engine.audit.integrity import checkpoint, load_or_create_key, public_key_pem

    key = load_or_create_key(tmp_path / "signing.key")
    checkpoint(store, key, "2026-03-14T18:00:00.000Z")
    cp = checkpoint(store, key, "2026-03-14T19:00:00.000Z")
    assert build_report(store, scripted, clock.now())["integrity"]["checkpoints_unchecked"] == 2
    g = build_report(store, scripted, clock.now(), public_key_pem=public_key_pem(key))["integrity"]
    assert g["ok"] and g["checkpoints_checked"] == 2
    assert g["checkpoint"]["stored"] == 2 and g["checkpoint"]["at"] == "2026-03-14T19:00:00.000Z"
    head = cp["heads"][scripted]
    assert (g["checkpoint"]["seq"], g["checkpoint"]["hash"]) == (head["seq"], head["hash"])
    assert g["checkpoint"]["signature"] == cp["signature"]


# -- formats ------------------------------------------------------------------------


def test_every_format_renders(store, clock, scripted):
    r = build_report(store, scripted, clock.now())
    assert json.loads(render_report(r, "json")) == r
    md = render_report(r, "md")
    assert md.startswith("# Incident report INC-20260314-001: ER wait time complaint")
    for heading in ("## Response times", "## People", "## Posts", "## Timeline", "## Integrity"):
        assert heading in md
    assert "| Time to first public post | 25m from the start (target 1h: met on time) |" in md
    assert "| Public updates (distinct messages) | 3 (3 publications: x/en 3) |" in md
    html = render_report(r, "html")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "@media print" in html and "The audit log verifies" in html


def test_html_is_self_contained(store, clock, scripted):
    html = render_report(build_report(store, scripted, clock.now()), "html")
    assert not re.search(r"<(link|script|img|iframe|object|embed|base)\b", html, re.I)
    assert not re.search(r"\b(src|href)\s*=", html, re.I)
    assert "url(" not in html and "@import" not in html


def test_untrusted_text_is_escaped(store, clock, scripted):
    r = build_report(store, scripted, clock.now())
    html = render_report(r, "html")
    assert XSS not in html and "note: &lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = render_report(r, "md")
    assert "<script>" not in md and "&lt;script>alert(1)&lt;/script>" in md


def test_a_post_text_cannot_break_out_of_its_markdown_block(store, clock, scripted):
    from engine.audit.report import _fence

    assert _fence("a ```` b") == "`````text\na ```` b\n`````"


def test_a_drill_is_marked_on_every_page(store, clock, viral):
    iid = started(store, clock, viral, drill=True)
    assert iid.startswith("DRILL-")
    r = build_report(store, iid)
    assert r["incident"]["drill"] is True
    html = render_report(r, "html")
    assert '<div class="drill-banner"' in html and "DRILL: THIS IS AN EXERCISE" in html
    assert '<div class="running-head drill">DRILL - NOT A REAL INCIDENT' in html  # repeated per printed page
    assert render_report(r, "md").startswith("> **DRILL: THIS IS AN EXERCISE")
    real = build_report(store, started(store, clock, viral))
    assert "drill-banner\"" not in render_report(real, "html")


def test_unknown_incident_and_format(store, clock, scripted):
    with pytest.raises(NotFound, match="INC-19990101-001"):
        build_report(store, "INC-19990101-001")
    with pytest.raises(NotFound):
        export_events(store, "INC-19990101-001", "jsonl", io.StringIO())
    r = build_report(store, scripted)
    with pytest.raises(UsageError, match="pdf"):
        render_report(r, "pdf")
    with pytest.raises(UsageError, match="xml"):
        export_events(store, scripted, "xml", io.StringIO())


# -- exports ------------------------------------------------------------------------


def test_jsonl_export_equals_the_stored_events(store, clock, scripted):
    out = io.StringIO()
    n = export_events(store, scripted, "jsonl", out)
    events = list(store.events(scripted))
    lines = out.getvalue().splitlines()
    assert n == len(events) == len(lines)
    assert [json.loads(line) for line in lines] == [e.to_json() for e in events]
    assert lines == [canonical(e.to_json()).decode("utf-8") for e in events]


def test_csv_export_parses(store, clock, scripted):
    out = io.StringIO(newline="")
    n = export_events(store, scripted, "csv", out)
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert rows[0] == ["incident", "seq", "at", "actor", "type", "data", "prev", "hash"]
    events = list(store.events(scripted))
    assert n == len(events) == len(rows) - 1
    for row, e in zip(rows[1:], events):
        assert row[:5] == [e.incident, str(e.seq), e.at, e.actor, e.type]
        assert json.loads(row[5]) == e.data and row[6:] == [e.prev, e.hash]


def bulk_notes(store, clock, iid: str, n: int, batch: int = 50_000) -> None:
    """Append n NoteAdded events quickly, in large transactions through the store API."""
    stamp = utc_now_iso(clock.now())
    done = 0
    while done < n:
        k = min(batch, n - done)
        with store.transaction(iid) as tx:
            state = dict(tx.snapshot.state)
            state["notes"] += k
            state["events"] += k
            tx.append([NewEvent("NoteAdded", stamp, "carol", {"text": f"note {done + i}: checked the ward roster"})
                       for i in range(k)], state)
        done += k


def test_export_memory_stays_flat_for_a_long_log(store, clock, viral, tmp_path):
    iid = started(store, clock, viral)
    bulk_notes(store, clock, iid, 200_000)
    target = tmp_path / "events.jsonl"
    tracemalloc.start()
    try:
        t = time.perf_counter()
        with open(target, "w", encoding="utf-8") as out:
            n = export_events(store, iid, "jsonl", out)
        elapsed = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"\nexported {n} events in {elapsed:.2f} s, traced peak {peak / 2**20:.1f} MiB")
    assert n == 200_007
    assert peak < 50 * 2**20
    with open(target, encoding="utf-8") as f:
        assert sum(1 for _ in f) == n


def test_a_report_of_ten_thousand_events_is_quick(store, clock, scripted):
    bulk_notes(store, clock, scripted, 10_000 - len(list(store.events(scripted))))
    t = time.perf_counter()
    r = build_report(store, scripted, clock.now())
    built = time.perf_counter() - t
    html = render_report(r, "html")
    rendered = time.perf_counter() - t - built
    print(f"\nreport of {r['incident']['events']} events built in {built:.2f} s, html rendered in {rendered:.2f} s")
    assert r["incident"]["events"] == 10_000 and len(r["timeline"]) == 10_000
    assert built < 10 and html.count("<tr>") > 10_000


def test_identifier_overrides_carry_their_reason(store, clock, viral):
    iid = started(store, clock, viral)
    service.task(store, clock, "alice", iid, "confirm_post")
    service.advance(store, clock, "alice", iid, "acknowledge")
    [drafted] = posts.render(store, clock, "carol", iid, "public_ack", channels=("facebook",), langs=("en",),
                             overrides={"hospital_name": "St Mary's (switchboard +1 415 555 0100)"})
    assert drafted["hits"]
    at(clock, 4 * M)
    posts.approve(store, clock, "bob", iid, "public_ack/facebook/en", override="the public switchboard number", version=1)
    [post] = build_report(store, iid)["posts"]
    [override] = post["versions"][0]["overrides"]
    assert (override["by"], override["reason"]) == ("bob", "the public switchboard number")
    assert override["hits"] == drafted["hits"] and post["status"] == "approved"
    html = render_report(build_report(store, iid), "html")
    assert "identifier warning overridden by bob" in html
