"""The auditor's view of an incident: report (timeline, posts, metrics, integrity) and exports.

Everything in a report is derived from the incident's events, streamed once from
the store, and from :func:`engine.audit.integrity.verify` run over the same log: never
from the projection, the outbox or the playbook file, so a report can be rebuilt
from the log alone. Input values are left out (some are confidential); post texts
are in, because what went out and who approved it is the point of the report.

``now`` only ends the clock of an incident that is still open (the current stage's
time, pending deadlines). Without it the report is as of the last event, so the
same log always gives the same report.

Exports stream the stored rows (JSON Lines or CSV) without building a list, so
memory stays flat however long the log is.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from functools import lru_cache
from json.encoder import encode_basestring as _quote
from typing import IO

from ..clocks.deadlines import OUTCOMES
from ..errors import IntegrityError, NotFound, UsageError
from ..format.durations import format_duration
from ..incidents import state as inc
from ..incidents.events import parse_iso, utc_now_iso
from ..incidents.views import describe, post_text

__all__ = ["FORMATS", "EXPORT_FORMATS", "build_report", "render_report", "export_events", "jsonl_line"]

REPORT_VERSION = 2
FORMATS = ("md", "html", "json")
EXPORT_FORMATS = ("jsonl", "csv")
CSV_COLUMNS = ("incident", "seq", "at", "actor", "type", "data", "prev", "hash")
#: A version in one of these states is superseded by the next draft of its post.
SUPERSEDABLE = ("draft", "too_long", "approved")
POST_EVENTS = frozenset({"PostDrafted", "PostApproved", "PostRejected", "IdentifiersOverridden",
                         "PostPublished", "PostDelivered", "DeliveryFailed"})


def _require_incident(store, incident: str) -> None:
    if store.snapshot(incident) is None:
        raise NotFound(f"no incident {incident!r} in this database (see: playbook list --all)")


# -- exports -------------------------------------------------------------------------


def jsonl_line(row) -> str:
    """One stored row as the sorted-key, compact JSON of ``Event.to_json()`` (no newline).

    Built from the row's canonical data text, without parsing it: the line is
    ``canonical(event.to_json())`` for every event the store wrote.
    """
    incident, seq, type_, at, actor, data_text, prev, h = row
    return (f'{{"actor":{_quote(actor)},"at":{_quote(at)},"data":{data_text},"hash":{_quote(h)},'
            f'"incident":{_quote(incident)},"prev":{_quote(prev)},"seq":{int(seq)},"type":{_quote(type_)}}}')


def export_events(store, incident: str, fmt: str, out: IO[str]) -> int:
    """Stream the incident's events to ``out`` as JSON Lines or CSV; return how many.

    ``jsonl``: one event per line (see :func:`jsonl_line`). ``csv``: a header row, then
    incident, seq, at, actor, type, data (canonical JSON), prev, hash; open ``out`` with
    ``newline=""``. JSON Lines are exactly as stored; in CSV a cell that a spreadsheet
    would read as a formula is prefixed with ``'`` (see :func:`csv_cell`).
    """
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (choose one of: {', '.join(EXPORT_FORMATS)})")
    _require_incident(store, incident)
    count = 0
    if fmt == "jsonl":
        batch: list[str] = []
        for row in store.rows(incident):
            batch.append(jsonl_line(row))
            count += 1
            if len(batch) >= 1000:
                out.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            out.write("\n".join(batch) + "\n")
        return count
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    cell = csv_cell
    for inc_, seq, type_, at, actor, data_text, prev, h in store.rows(incident):
        writer.writerow((cell(inc_), seq, cell(at), cell(actor), cell(type_), cell(data_text), cell(prev), cell(h)))
        count += 1
    return count


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: one that would start a formula (= + - @,
    tab or carriage return, as OWASP's CSV injection advice lists) gets a leading '."""
    return "'" + text if text.startswith(_FORMULA_START) else text


# -- the report ----------------------------------------------------------------------


def _secs(start: str | None, end: str | None) -> int | float | None:
    if start is None or end is None:
        return None
    s = (parse_iso(end) - parse_iso(start)).total_seconds()
    return int(s) if s == int(s) else round(s, 3)


class _Fold:
    """Collects what the report needs while the events stream past (one pass)."""

    def __init__(self) -> None:
        self.head: dict | None = None
        self.roles: dict[str, list[dict]] = {}
        self.timeline: list[dict] = []
        self.posts: dict[str, dict] = {}
        self.visits: list[dict] = []
        self.public: list[dict] = []  # published public posts: post, version, at
        self.breaches: list[dict] = []
        self.escalations: list[dict] = []
        self.ladder: list[dict] = []  # escalation ladder steps reached and acknowledgements
        self.closed_at: str | None = None
        self.last_at: str | None = None
        self.state: dict | None = None  # the same fold status reads, for the same clocks
        # what later events update, found without scanning everything before them:
        self._holding: dict[tuple[str, str], list[dict]] = {}  # (role, person) -> open holds
        self._supersedable: dict[str, list[dict]] = {}  # post -> versions a new draft supersedes

    def add(self, e) -> None:
        if self.head is None and e.type != "IncidentStarted":
            raise IntegrityError(f"incident {e.incident}: the log does not begin with IncidentStarted; run verify")
        try:
            self._add(e.seq, e.type, e.at, e.actor, e.data)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, StopIteration) as err:
            raise IntegrityError(f"incident {e.incident} event {e.seq}: its {e.type} record is not as the "
                                 f"engine writes it ({type(err).__name__}: {err}); run verify") from None

    def _add(self, seq: int, type_: str, at: str, actor: str, d: dict) -> None:
        parse_iso(at)
        self.last_at = at
        self.state = inc.apply(self.state, type_, at, actor, d, in_place=self.state is not None)
        self.timeline.append({"seq": seq, "at": at, "actor": actor, "type": type_, "what": describe(type_, d)})
        if type_ == "IncidentStarted":
            self.head = {"data": d, "at": at, "actor": actor}
            self._enter(d["plan"]["initial"], at, None)
        elif type_ == "RoleAssigned":
            held = {"person": d["person"], "assigned_at": at, "assigned_by": actor,
                    "unassigned_at": None, "unassigned_by": None}
            self.roles.setdefault(d["role"], []).append(held)
            self._holding.setdefault((d["role"], d["person"]), []).append(held)
        elif type_ == "RoleUnassigned":
            for held in self._holding.pop((d["role"], d["person"]), []):  # every open hold of it
                held.update(unassigned_at=at, unassigned_by=actor)
        elif type_ == "StageChanged":
            self.visits[-1].update(left_at=at, trigger_out=d["trigger"])
            self._enter(d["to"], at, d["trigger"])
        elif type_ in POST_EVENTS:
            self._post(type_, at, actor, d)
        elif type_ == "DeadlineBreached":
            self.breaches.append({"seq": seq, "at": at, "clock": d.get("clock"), "label": d.get("label"),
                                  "due_at": d.get("due_at"), "overdue_seconds": d.get("overdue_seconds")})
        elif type_ == "EscalationApplied":
            self.escalations.append({"seq": seq, "at": at, "clock": d.get("clock"),
                                     "notify": d.get("notify"), "move_to": d.get("move_to")})
        elif type_ in ("EscalationStepReached", "EscalationAcknowledged"):
            self.ladder.append({"seq": seq, "at": at, "actor": actor, "type": type_, "clock": d.get("clock"),
                                "step": d.get("step"), "round": d.get("round"), "notify": d.get("notify"),
                                "undelivered": d.get("undelivered", []), "what": describe(type_, d)})

    def _enter(self, stage: str, at: str, trigger: str | None) -> None:
        spec = self.head["data"]["plan"]["stages"][stage]
        self.closed_at = at if spec["terminal"] else None
        visit = 1 + sum(1 for v in self.visits if v["stage"] == stage)
        self.visits.append({"stage": stage, "title": spec["title"], "entered_at": at, "left_at": None,
                            "trigger_in": trigger, "trigger_out": None, "terminal": spec["terminal"],
                            "visit": visit})

    def _post(self, type_: str, at: str, actor: str, d: dict) -> None:
        pid = d["post"]
        if type_ == "PostDrafted":
            post = self.posts.setdefault(pid, {
                "id": pid, "template": d["template"], "channel": d["channel"], "lang": d["lang"],
                "public": d["public"], "versions": [], "published": [], "deliveries": []})
            # every earlier version still a draft (or too long, or approved) is superseded; the
            # versions that may be are listed as their status is set, not found by a scan
            for old in self._supersedable.pop(pid, []):
                if old["status"] in SUPERSEDABLE:
                    old["status"] = "superseded"
            post["versions"].append({
                "version": d["version"], "sha256": d["sha256"], "text": d["text"],
                "drafted_by": actor, "drafted_at": at,
                "status": "draft" if d["count"]["fits"] else "too_long",
                "count": d["count"], "hits": d.get("hits", []), "policy": d["policy"],
                "approvals": [], "approved_at": None, "approval_latency_seconds": None,
                "rejection": None, "overrides": []})
            self._supersedable.setdefault(pid, []).append(post["versions"][-1])
            return
        post = self.posts[pid]
        version = next(v for v in reversed(post["versions"]) if v["version"] == d["version"])
        if type_ == "PostApproved":
            version["approvals"].append({"by": actor, "role": d["role"], "at": at})
            if version["approved_at"] is None and not inc.approval_missing(version):
                version.update(approved_at=at, status="approved",
                               approval_latency_seconds=_secs(version["drafted_at"], at))
                self._supersedable.setdefault(pid, []).append(version)
        elif type_ == "PostRejected":
            version.update(status="rejected", rejection={"by": actor, "at": at, "reason": d["reason"]})
        elif type_ == "IdentifiersOverridden":
            version["overrides"].append({"by": actor, "at": at, "reason": d["reason"], "hits": d.get("hits", [])})
        elif type_ == "PostPublished":
            version["status"] = "published"
            post["published"].append({"version": d["version"], "sha256": d["sha256"], "at": at,
                                      "by": actor, "outbox": d["outbox"]})
            if post["public"]:
                # a message is a template's n-th publication: the n-th time any of its
                # channel x language (or recipient) posts goes out
                n = len(post["published"])
                self.public.append({"post": pid, "version": d["version"], "at": at,
                                    "template": post["template"], "channel": post["channel"],
                                    "lang": post["lang"], "message": f"{post['template']}#{n}"})
        else:
            post["deliveries"].append({"version": d["version"], "at": at, "by": actor,
                                       "ok": type_ == "PostDelivered",
                                       "target": d.get("target", ""), "error": d.get("error", "")})


def _dur(seconds) -> str:
    return "-" if seconds is None else format_duration(timedelta(seconds=seconds))


def _public_messages(f: _Fold) -> list[dict]:
    """Distinct public messages, each with when it first went out and where."""
    messages: dict[str, dict] = {}
    for p in f.public:
        m = messages.setdefault(p["message"], {"message": p["message"], "template": p["template"],
                                               "first_at": p["at"], "first_post": p["post"], "versions": []})
        m["versions"].append(f"{p['channel']}/{p['lang']}")
    return sorted(messages.values(), key=lambda m: m["first_at"])


def _metrics(f: _Fold, plan: dict, started: str, as_of: str) -> dict:
    from ..clocks.deadlines import ledger

    end = f.closed_at or as_of
    stages: dict[str, dict] = {}
    for v in f.visits:
        v_end = v["left_at"] or (v["entered_at"] if v["terminal"] else end)
        v["seconds"] = max(_secs(v["entered_at"], v_end), 0)
        row = stages.setdefault(v["stage"], {"stage": v["stage"], "title": v["title"], "visits": 0, "seconds": 0})
        row["visits"] += 1
        row["seconds"] += v["seconds"]
    messages = _public_messages(f)
    gap = None
    for a, b in zip(messages, messages[1:]):
        s = _secs(a["first_at"], b["first_at"])
        if gap is None or s > gap["seconds"]:
            gap = {"seconds": s, "from_at": a["first_at"], "from_post": a["first_post"],
                   "to_at": b["first_at"], "to_post": b["first_post"]}
    by_version: dict[str, int] = {}
    for p in f.public:
        key = f"{p['channel']}/{p['lang']}"
        by_version[key] = by_version.get(key, 0) + 1
    deadlines = [c.to_json() for c in ledger(f.state, parse_iso(as_of))]
    count = {o: sum(1 for d in deadlines if d["outcome"] == o) for o in OUTCOMES}
    first = next((d for d in deadlines if d["key"] == "target:first_public_post"), None)
    first_at = f.public[0]["at"] if f.public else None
    return {
        "duration_seconds": _secs(started, end),
        "time_to_first_public_post_seconds": _secs(started, first_at),
        "first_public_post_at": first_at,
        "first_public_post": None if first is None else {
            "at": first_at, "from": first["from"], "from_at": first["from_at"],
            "seconds": _secs(first["from_at"], first_at), "due_at": first["due_at"],
            "target_seconds": _secs(first["from_at"], first["due_at"]),
            "outcome": first["outcome"], "late_seconds": first["late_seconds"]},
        "stage_times": list(stages.values()),
        "stage_visits": [{k: v[k] for k in ("stage", "title", "visit", "entered_at", "left_at", "trigger_in",
                                            "trigger_out", "seconds")} for v in f.visits],
        "approval_latency": [
            {"post": p["id"], "version": v["version"], "drafted_at": v["drafted_at"],
             "approved_at": v["approved_at"], "seconds": v["approval_latency_seconds"]}
            for p in f.posts.values() for v in p["versions"]],
        "deadlines": deadlines,
        "deadlines_met_on_time": count["met_on_time"],
        "deadlines_met_late": count["met_late"],
        "deadlines_missed": count["missed"],
        "deadlines_open": count["open"],
        "deadlines_overdue": sum(1 for d in deadlines if d["overdue"]),
        "public_updates": len(messages),
        "public_messages": messages,
        "public_publications": len(f.public),
        "public_publications_by_channel_lang": dict(sorted(by_version.items())),
        "longest_gap_between_public_updates": gap,
        "recipients": inc.recipients(f.state),
        "breaches": {"count": len(f.breaches), "items": f.breaches},
        "escalations": {"count": len(f.escalations), "items": f.escalations},
        **({"escalation_ladder": f.ladder} if f.ladder else {}),
        **_inbound(f.state, as_of),
    }


def _inbound(state: dict, as_of: str) -> dict:
    """The inbound messages' figures (engine.incidents.inbound), for an incident that has any."""
    if not state.get("inbound"):
        return {}
    from ..incidents.inbound import report_section

    return {"inbound": report_section(state, parse_iso(as_of))}


def _integrity(store, incident: str, public_key_pem: str | None) -> dict:
    from .integrity import verify
    from .rules import audit

    result = verify(store, incident, public_key_pem=public_key_pem, audit=audit)
    problems = list(result.problems)
    latest = None
    try:
        stored = store.checkpoints()
    except IntegrityError as e:
        problems.append(str(e))
        stored = []
    from .checkpoints import removed_before

    for n, cp in enumerate(stored, 1 + removed_before(stored)):  # numbered as verify names them
        heads = cp.get("heads") if isinstance(cp, dict) else None
        if isinstance(heads, dict) and isinstance(heads.get(incident), dict):
            latest = {"stored": n, "at": cp.get("at"), "database": cp.get("database"),
                      "seq": heads[incident].get("seq"), "hash": heads[incident].get("hash"),
                      "public_key": cp.get("public_key"), "signature": cp.get("signature")}
    return {"ok": result.ok and not problems, "events": result.events, "checkpoints_checked": result.checkpoints,
            "checkpoints_unchecked": result.unchecked,
            "problems": problems, "checkpoint": latest}


def build_report(store, incident: str, now: datetime | None = None, public_key_pem: str | None = None) -> dict:
    """Everything an auditor asks about ``incident``, derived from its events (see module doc).
    Stored checkpoints count only when signed by ``public_key_pem`` (the signing key's public half)."""
    _require_incident(store, incident)
    fold = _Fold()
    for e in store.events(incident):
        fold.add(e)
    if fold.head is None:
        raise NotFound(f"incident {incident!r} has no events in this database")
    try:
        as_of = utc_now_iso(now) if now is not None else fold.last_at
    except ValueError as err:
        raise UsageError(f"report time: {err}") from None
    as_of = max(as_of, fold.last_at)
    d, started = fold.head["data"], fold.head["at"]
    plan = d["plan"]
    order = plan.get("order", {}).get("roles") or list(plan["roles"])
    roles = [{"role": r, "title": plan["roles"][r]["title"], "required": plan["roles"][r]["required"],
              "people": fold.roles.get(r, [])} for r in order if r in plan["roles"]]
    roles += [{"role": r, "title": r, "required": False, "people": people}
              for r, people in fold.roles.items() if r not in plan["roles"]]
    try:
        metrics = _metrics(fold, plan, started, as_of)
    except (KeyError, TypeError, ValueError) as err:
        raise IntegrityError(f"incident {incident}: its plan or times are not as the engine writes them "
                             f"({type(err).__name__}: {err}); run verify") from None
    posts = []
    for p in fold.posts.values():
        final = p["versions"][-1]
        posts.append({**p, "status": final["status"], "version": final["version"],
                      "sha256": final["sha256"], "text": final["text"]})
    last = fold.visits[-1]
    return {
        "report": {"version": REPORT_VERSION, "as_of": as_of, "source": "events"},
        "incident": {"id": incident, "title": d["title"], "severity": fold.state["severity"],
                     "severity_history": fold.state.get("severity_history", []), "drill": bool(d["drill"]),
                     "status": "closed" if fold.closed_at else "open", "stage": last["stage"],
                     "stage_title": last["title"], "started_at": started, "started_by": fold.head["actor"],
                     "closed_at": fold.closed_at, "events": len(fold.timeline), "last_event_at": fold.last_at,
                     **({"origin": _origin(d["origin"], started)} if d.get("origin") else {})},
        "playbook": {"id": d["playbook"]["id"], "name": plan.get("name"), "version": d["playbook"]["version"],
                     "sha256": d["playbook"]["sha256"], "path": d["playbook"].get("path")},
        "roles": roles,
        "timeline": fold.timeline,
        "posts": posts,
        "metrics": metrics,
        "integrity": _integrity(store, incident, public_key_pem),
    }


def _origin(origin: dict, started: str) -> dict:
    """How a monitor opened the incident, with its time to detect (opened - first posted)."""
    seconds = (parse_iso(started) - parse_iso(origin["origin_at"])).total_seconds()
    return {**origin, "time_to_detect_seconds": max(int(seconds), 0)}


# -- rendering ------------------------------------------------------------------------


def _md(text) -> str:
    """Inline Markdown text: one line, no raw HTML, no table breaks, no links or code spans."""
    s = " ".join(str("" if text is None else text).split())
    for ch in "\\`[]|":
        s = s.replace(ch, "\\" + ch)
    return s.replace("&", "&amp;").replace("<", "&lt;")


def _fence(text) -> str:
    """A fenced Markdown code block that the text cannot close early."""
    body = post_text(text)
    run = longest = 0
    for ch in body:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


@lru_cache(maxsize=2)
def _environment(html: bool):
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from ..resources import shipped_folder

    env = Environment(loader=FileSystemLoader(str(shipped_folder("templates"))), autoescape=html, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    from ..clocks.deadlines import WORDS

    env.filters.update(dur=_dur, post_text=post_text, md=_md, fence=_fence, outcome=lambda o: WORDS.get(o, o),
                       short=lambda h, n=12: str(h or "")[:n])
    return env


def render_report(report: dict, fmt: str) -> str:
    """The report as ``json`` (the dict), ``md`` (Markdown) or ``html`` (one self-contained page)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown report format {fmt!r} (choose one of: {', '.join(FORMATS)})")
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    name = "report.html.j2" if fmt == "html" else "report.md.j2"
    return _environment(fmt == "html").get_template(name).render(r=report)
