"""The clocks that count publications (the stage update cadence, the ``published:``
targets) read what the fold keeps of them, never the posts, and give exactly the clocks
the old scan of every publication of every post gave: kept here as the reference."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from conftest import VIRAL_START
from engine.clocks import deadlines as dl
from engine.incidents import state as inc
from engine.incidents.events import utc_now_iso

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=timezone.utc)
INC = "INC-20260314-001"


# -- the reference: the clocks as they were computed from every publication ----------


def old_public_times(state: dict) -> list[str]:
    return sorted(p["at"] for post in state["posts"].values() if post["public"] for p in post["published"])


def old_until(state: dict, until):
    if until in (None, "first_public_post"):
        return state["public_posts"]["first_at"], "first public post"
    if "published" in until:
        t = until["published"]
        times = [p["at"] for post in state["posts"].values() if post["template"] == t for p in post["published"]]
        return (min(times) if times else None), f"{t} published"
    stage = until["reached"]
    entered = [v["entered_at"] for v in dl.visits(state) if v["stage"] == stage]
    return (entered[0] if entered else None), f"stage {stage} reached"


def old_targets(state: dict, now: datetime) -> list:
    out = []
    for name, spec in state["plan"]["targets"].items():
        if spec is None:
            continue
        met, what = old_until(state, spec.get("until"))
        anchor_at, anchor = dl._anchor(state, spec, *dl.start_anchor(state))
        c = dl._clock(state, spec, now, key=f"target:{name}", label=spec.get("title") or what,
                      anchor_at=anchor_at, anchor=anchor, met=met, closed=state.get("closed_at"))
        if c is not None:
            out.append(c)
    return out


def old_stage_clocks(state: dict, now: datetime, n: int, visit: dict, count: int, pubs: list[str]) -> list:
    parse_ts, ClockStatus = dl.parse_ts, dl.ClockStatus
    stage = state["plan"]["stages"][visit["stage"]]
    sid = visit["stage"]
    if stage["terminal"]:
        return []
    end = visit["left_at"] or state.get("closed_at")
    # the stage deadline counts no publication: the code's own (checked against itself)
    out = [c for c in dl._stage_clocks(state, now, n, visit, count, pubs) if c.kind == "stage"]
    updates = stage["updates"]
    if updates is not None:
        entered = visit["entered_at"]
        before = [t for t in pubs if t < entered]
        start = before[-1] if before else entered
        during = [t for t in pubs if entered <= t and (end is None or t <= end)]
        marks = [start, *during]
        gaps = [(parse_ts(b) - parse_ts(a)).total_seconds() for a, b in zip(marks, marks[1:])]
        final = (parse_ts(end) if end else now) - parse_ts(marks[-1])
        every = updates["seconds"]
        late = sum(1 for g in gaps if g > every)
        since = "the last public update" if len(marks) > 1 or before else f"entering {sid}"
        result = None
        if end is not None:
            result = "missed" if final.total_seconds() > every else ("met_late" if late else "met_on_time")
        out.append(ClockStatus(
            f"stage:{sid}:update", f"next public update (every {dl.format_duration(timedelta(seconds=every))})",
            parse_ts(marks[-1]) + timedelta(seconds=every), None, now, updates["escalate"], kind="updates",
            stage=sid, visit=count, anchor=since, anchor_at=marks[-1],
            closed_at=end if end else None, every_seconds=every, late_updates=late,
            gap_seconds=max(gaps) if gaps else None, result=result))
    return out


def old_ledger(state: dict, now: datetime) -> list:
    out = old_targets(state, now)
    pubs = old_public_times(state)
    seen: dict[str, int] = {}
    for n, visit in enumerate(dl.visits(state)):
        seen[visit["stage"]] = seen.get(visit["stage"], 0) + 1
        out.extend(old_stage_clocks(state, now, n, visit, seen[visit["stage"]], pubs))
    return out


def old_clocks(state: dict, now: datetime) -> list:
    if state["status"] == "closed":
        return []
    history = dl.visits(state)
    count = sum(1 for v in history if v["stage"] == history[-1]["stage"])
    return old_targets(state, now) + old_stage_clocks(state, now, len(history) - 1, history[-1], count,
                                                      old_public_times(state))


# -- logs -----------------------------------------------------------------------------


def _plan() -> dict:
    def stage(title, *, updates=None, deadline=None, terminal=False):
        return {"title": title, "tasks": {}, "templates": [], "terminal": terminal, "deadline": deadline,
                "updates": None if updates is None else {"seconds": updates, "escalate": None}}

    return {
        "id": "pubs", "name": "Publications", "version": "1", "sha256": "0" * 64, "initial": "triage",
        "severities": ["high"], "region": None, "roles": {}, "managers": [], "inputs": {},
        "stages": {
            "triage": stage("Triage", updates=600, deadline={"seconds": 120, "until": "first_public_post",
                                                             "from": None, "escalate": None}),
            "respond": stage("Respond", updates=300),
            "monitor": stage("Monitor"),
            "closed": stage("Closed", updates=60, terminal=True),
        },
        "transitions": {"reopen": {"from": ["closed"], "to": "respond", "title": "Reopen", "roles": [],
                                   "requires": {"tasks": [], "published": [], "approved": [], "inputs": []},
                                   "reopen": True}},
        "targets": {
            "first_post": {"seconds": 900, "until": None},
            "statement_out": {"seconds": 3600, "until": {"published": "statement"}},
            "holding_out": {"seconds": 120, "until": {"published": "holding"}, "title": "holding line"},
            "monitoring": {"seconds": 7200, "until": {"reached": "monitor"}},
        },
    }


TEMPLATES = {"statement": [("x", True), ("email", False)], "holding": [("x", True)], "memo": [("email", False)]}
STEPS = [0, 0, 0.001, 1, 59, 60, 61, 299, 300, 301, 599, 600, 601, 1800, 3600]


def random_log(rng: random.Random) -> list[tuple]:
    """(type, at, actor, data) of a log: stage changes (re-entered stages, closing and
    reopening), public and private publications before, within and after visits, at
    the same moment as a stage change or each other, drill clock moves; now and then a
    clock set back, a post redrafted as another template or from public to private."""
    at = T0
    versions: dict[str, int] = {}
    public: dict[str, bool] = {}
    stage = "triage"
    skewed = rng.random() < 0.15  # a log whose clock is set back now and then
    odd = rng.random() < 0.15  # a log whose posts are redrafted as another template or privacy
    log = [("IncidentStarted", at, "alice", {"incident": INC, "title": "T", "severity": "high",
                                             "drill": rng.random() < 0.3, "inputs": {},
                                             "playbook": {"id": "pubs", "version": "1"}, "plan": _plan()})]
    for _ in range(rng.randrange(5, 60)):
        roll = rng.random()
        if skewed and rng.random() < 0.05:
            at -= timedelta(seconds=rng.choice([1, 30, 700]))  # a clock set back
        else:
            at += timedelta(seconds=rng.choice(STEPS))
        if roll < 0.25:
            to = "respond" if stage == "closed" else rng.choice(["triage", "respond", "monitor", "closed"])
            trigger = "reopen" if stage == "closed" else "move"
            log.append(("StageChanged", at, "alice", {"trigger": trigger, "from": stage, "to": to}))
            stage = to
        elif roll < 0.35:
            log.append(("ClockAdvanced", at, "alice", {"seconds": 1800, "simulated_now": utc_now_iso(at)}))
            at += timedelta(seconds=1800)
        else:
            template = rng.choice(sorted(TEMPLATES))
            channel, is_public = rng.choice(TEMPLATES[template])
            pid = f"{template}/{channel}/en"
            roll = rng.random() if odd else 1
            if pid in versions and roll < 0.05:
                is_public = not public[pid]  # the same post, now private (or public)
            if pid in versions and 0.05 <= roll < 0.1:
                template = "memo" if template != "memo" else "holding"  # the same post, another template
            versions[pid] = versions.get(pid, 0) + 1
            public[pid] = is_public
            sha = f"{versions[pid]:064d}"
            log.append(("PostDrafted", at, "alice", {
                "post": pid, "template": template, "channel": channel, "lang": "en", "version": versions[pid],
                "sha256": sha, "text": f"text {versions[pid]}", "public": is_public,
                "count": {"fits": True}, "hits": [], "policy": {"all_of": [], "any_of": [], "min": 0}}))
            if rng.random() < 0.8:
                if rng.random() < 0.5:
                    at += timedelta(seconds=rng.choice(STEPS))
                log.append(("PostPublished", at, "alice", {"post": pid, "version": versions[pid], "sha256": sha,
                                                           "outbox": f"out/{pid}.v{versions[pid]}.json"}))
    return [(t, utc_now_iso(a), actor, d) for t, a, actor, d in log]


def _moments(state: dict, rng: random.Random) -> list[datetime]:
    last = dl.parse_ts(state["updated_at"])
    return [last, last + timedelta(seconds=rng.choice(STEPS)), last + timedelta(hours=5),
            last - timedelta(seconds=30)]


def _same(state: dict, moments) -> None:
    for now in moments:
        assert dl.ledger(state, now) == old_ledger(state, now)
        assert [c.to_json() for c in dl.ledger(state, now)] == [c.to_json() for c in old_ledger(state, now)]
        assert [c for c in dl.clocks(state, now) if c.kind != "message"] == old_clocks(state, now)


def test_the_kept_publications_give_the_clocks_the_scan_of_every_publication_gave():
    rng = random.Random(14)
    kept = scanned = 0
    for _ in range(200):
        state = None
        for type_, at, actor, data in random_log(rng):
            state = inc.apply(state, type_, at, actor, data)
            _same(state, _moments(state, rng))
        stored = json.loads(json.dumps(state))  # as a stored projection reads back
        _same(stored, _moments(stored, rng))
        if state["cadence"] is not None and state["first_published"] is not None:
            kept += 1
            assert dl.public_times(state) is None  # the clocks read no post
        else:
            scanned += 1
    assert kept > 120 and scanned > 10  # both ways were taken, mostly the kept one


def test_a_publication_at_the_moment_of_a_stage_change_counts_in_both_visits():
    plan_log = random_log(random.Random(0))[:1]
    at = "2026-03-14T09:10:00.000Z"
    log = plan_log + [
        ("PostDrafted", at, "alice", {"post": "holding/x/en", "template": "holding", "channel": "x", "lang": "en",
                                      "version": 1, "sha256": "1" * 64, "text": "t", "public": True,
                                      "count": {"fits": True}, "hits": [],
                                      "policy": {"all_of": [], "any_of": [], "min": 0}}),
        ("PostPublished", at, "alice", {"post": "holding/x/en", "version": 1, "sha256": "1" * 64, "outbox": "o"}),
        ("PostPublished", at, "alice", {"post": "holding/x/en", "version": 1, "sha256": "1" * 64, "outbox": "o"}),
        ("StageChanged", at, "alice", {"trigger": "move", "from": "triage", "to": "respond"}),
        ("PostPublished", at, "alice", {"post": "holding/x/en", "version": 1, "sha256": "1" * 64, "outbox": "o"}),
        ("StageChanged", "2026-03-14T09:20:00.000Z", "alice", {"trigger": "move", "from": "respond", "to": "triage"}),
    ]
    state = None
    for type_, a, actor, data in log:
        state = inc.apply(state, type_, a, actor, data)
    assert state["cadence"] is not None
    now = dl.parse_ts("2026-03-14T10:00:00.000Z")
    _same(state, [now])
    respond = [c for c in dl.ledger(state, now) if c.key == "stage:respond:update"][0]
    assert (respond.anchor_at, respond.gap_seconds, respond.outcome) == (at, 0.0, "missed")


# -- through the commands --------------------------------------------------------------


def _acknowledged_in_public(cli, clock) -> None:
    """The viral complaint acknowledged and its public acknowledgement published at +10m."""
    from test_figures import at, publish

    assert cli(*VIRAL_START).exit_code == 0
    cli("task", INC, "confirm_post")
    cli("advance", INC, "acknowledge")
    at(clock, 10 * 60)
    publish(cli, INC, "public_ack", "x/en")
    at(clock, 11 * 60)


def test_the_index_row_of_a_write_reads_no_post(cli, db, store, clock, monkeypatch, request):
    """The index row every write computes (its clocks) needs no post: inside the write
    transaction, the posts' rows (each holding every published version) are not read."""
    from engine.incidents.events import NewEvent
    from engine.incidents.index import summary
    from engine.store import parts

    _acknowledged_in_public(cli, clock)
    looked = request.getfixturevalue("parts_read")  # from here on
    with store.transaction(INC) as tx:
        state = tx.snapshot.state
        assert isinstance(state["posts"], parts.LazyParts) and len(state["posts"]) == 1
        event = NewEvent("NoteAdded", utc_now_iso(clock.now()), "alice", {"text": "still waiting"})
        state = inc.apply(state, event.type, event.at, event.actor, event.data)
        row = summary(state)
        assert [k for part, k in looked if part == "posts"] == []
        tx.append([event], state, row)
    monkeypatch.undo()
    assert row == summary(inc.plain(store.snapshot(INC).state))
    assert cli("verify").exit_code == 0


def _make_old(db, incident: str) -> None:
    """The incident's stored projection as version 2 stored it: without what the fold now keeps."""
    with sqlite3.connect(db) as raw:
        (text,) = raw.execute("SELECT state FROM snapshots WHERE incident = ?", (incident,)).fetchone()
        state = json.loads(text)
        state["v"] = 2
        for key in ("cadence", "first_published"):
            state.pop(key)
        for v in state["visits"]:
            v.pop("updates", None)
        raw.execute("UPDATE snapshots SET state = ? WHERE incident = ?", (json.dumps(state), incident))


@pytest.mark.parametrize("upgrade", [False, True])
def test_a_version_2_projection_is_refolded_with_its_publications_kept(cli, db, clock, upgrade):
    _acknowledged_in_public(cli, clock)
    report = json.loads(cli("report", INC, "--format", "json").stdout)
    status = json.loads(cli("status", INC, "--json").stdout)["clocks"]
    _make_old(db, INC)
    assert json.loads(cli("status", INC, "--json").stdout)["clocks"] == status
    assert json.loads(cli("report", INC, "--format", "json").stdout) == report
    if upgrade:
        assert "rebuilt 1 incident projection(s)" in cli("db", "upgrade", "--db", str(db)).output
    else:
        assert cli("note", INC, "after the upgrade").exit_code == 0
    with sqlite3.connect(db) as raw:
        (text,) = raw.execute("SELECT state FROM snapshots WHERE incident = ?", (INC,)).fetchone()
    state = json.loads(text)
    assert state["v"] == inc.PROJECTION_VERSION == 3
    assert state["cadence"]["last"] == state["public_posts"]["first_at"]
    assert state["first_published"] == {"public_ack": state["public_posts"]["first_at"]}
    assert json.loads(cli("status", INC, "--json").stdout)["clocks"] == status
    result = cli("verify")
    assert result.exit_code == 0, result.output
