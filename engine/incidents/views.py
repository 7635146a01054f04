"""Text and JSON views of incidents and their logs, for people and for scripts.

Every text view passes what it prints through :func:`engine.safetext.for_terminal`, so
a control character or a bidirectional override in a title, a name, a note or a post
is shown, never obeyed by the terminal.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..clocks.deadlines import clocks
from ..format.durations import format_duration
from ..safetext import for_terminal
from . import state as inc


def _since(ts: str, now: datetime) -> str:
    then = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return format_duration(now - then)


def headline(state: dict) -> str:
    drill = "  [DRILL]" if state["drill"] else ""
    return for_terminal(f"{state['id']}  {state['title']}  ({state['plan']['id']}, {state['severity']}){drill}")


def incident_row(state: dict, now: datetime) -> str:
    from .index import summary

    return summary_row(summary(state), now)


def summary_row(row: dict, now: datetime) -> str:
    """One line of ``list``, from the incident's summary (engine.incidents.index) alone."""
    return summary_rows([row], now)


def summary_rows(rows: list[dict], now: datetime) -> str:
    """The lines of ``list`` as one text: :func:`summary_row` of each summary, with what
    the rows share worked out once (a listing can be thousands of rows): the moment on
    each simulated clock, the padded status and stage texts, the escaping."""
    from .index import overdue

    moments = {0: now}  # sim_offset -> the moment on that clock
    padded: dict[tuple, str] = {}  # (status, stage) -> their padded texts (a few distinct ones)
    lines = []
    for row in rows:
        count = overdue(row, now)
        offset = row["sim_offset"]
        moment = moments.get(offset)
        if moment is None:
            moment = moments[offset] = now + timedelta(seconds=offset)
        status, stage = row["status"], row["stage"]
        middle = padded.get((status, stage))
        if middle is None:
            middle = padded[(status, stage)] = f"{status:<6} {stage:<18} "
        late = f"  {count} overdue" if count else ""
        lines.append(f"{row['id']:<18} {'DRILL ' if row['drill'] else ''}{middle}"
                     f"{_since(row['stage_entered_at'], moment):>7}  {row['title']}{late}")
    # escaped once, as a whole: for_terminal escapes characters one by one and leaves a
    # newline alone, so this is each line escaped, joined
    return for_terminal("\n".join(lines))


def _detection(state: dict) -> dict:
    from .monitors import detection  # only for an incident a monitor opened (status imports it lazily)

    return detection(state)


def status_json(state: dict, now: datetime, actor: str) -> dict:
    now = inc.effective_now(state, now)
    plan = state["plan"]
    return {
        "id": state["id"],
        "title": state["title"],
        "drill": state["drill"],
        "severity": state["severity"],
        "status": state["status"],
        "playbook": {"id": plan["id"], "version": plan["version"], "sha256": plan["sha256"]},
        "stage": state["stage"],
        "stage_title": plan["stages"][state["stage"]]["title"],
        "stage_entered_at": state["stage_entered_at"],
        "started_at": state["started_at"],
        **({"opened_by_monitor": _detection(state)} if state.get("origin") else {}),
        "roles": {r: state["roles"].get(r, []) for r in inc.roles_in_order(plan)},
        "tasks": {t: (state["tasks"].get(t)) for t in inc.stage_tasks(state)},
        "clocks": [c.to_json() for c in clocks(state, now)],
        "transitions": {
            t: {"to": plan["transitions"][t]["to"], "blocked_by": inc.blockers(state, t, actor or None)}
            for t in inc.transitions_from_here(state)
        },
        "recipients": inc.recipients(state),
        "events": state.get("events"),
        **({"inbound": {"messages": len(state["inbound"]),
                        "waiting": sum(1 for m in state["inbound"].values() if m["status"] == "waiting")}}
           if state.get("inbound") else {}),
        **({"ladders": _ladders_json(state, now)} if state.get("ladders") else {}),
    }


def _ladders_json(state: dict, now: datetime) -> list[dict]:
    from ..clocks.ladder import ladders_json

    return ladders_json(state, now)


#: How many waiting messages' response clocks ``status`` lists (the inbox lists them all).
SHOWN_REPLIES = 5


def status_text(state: dict, now: datetime, actor: str) -> str:
    now = inc.effective_now(state, now)
    plan = state["plan"]
    stage = plan["stages"][state["stage"]]
    out = [headline(state)]
    if state["drill"]:
        ahead = state.get("sim_offset", 0)
        out.append("THIS IS A DRILL: nothing here is a real incident."
                   + (f" Simulated clock: {now.isoformat(timespec='seconds')} "
                      f"({format_duration(timedelta(seconds=ahead))} ahead)" if ahead else ""))
    out.append(f"Playbook: {plan['name']} v{plan['version']} (sha256 {plan['sha256'][:12]})")
    closed = f", closed at {state['closed_at']}" if state["closed_at"] else ""
    out.append(f"Stage:    {state['stage']} - {stage['title']} (for "
               f"{_since(state['stage_entered_at'], now)}, since {state['stage_entered_at']}{closed})")
    if state.get("origin"):
        from .monitors import detection_text  # only for an incident a monitor opened

        out.append(detection_text(state))
    out.append("\nRoles:")
    for role in inc.roles_in_order(plan):
        people = ", ".join(state["roles"].get(role, [])) or "(unassigned)"
        out.append(f"  {role:<22} {people}")
    tasks = inc.stage_tasks(state)
    if tasks:
        out.append(f"\nTasks in {state['stage']}:")
        for task, text in tasks.items():
            done = state["tasks"].get(task)
            mark = f"[x] {task}: {text}  ({done['by']}, {done['at']})" if done else f"[ ] {task}: {text}"
            out.append(f"  {mark}")
    running = clocks(state, now)
    replies = [c for c in running if c.kind == "message" and c.met_at is None]
    running = [c for c in running if c.kind != "message"] + sorted(replies, key=lambda c: c.due_at)[:SHOWN_REPLIES]
    if state.get("breaches"):
        out.append(f"\nMissed deadlines recorded: {len(state['breaches'])} "
                   f"(escalations applied: {state.get('escalations', 0)})")
    if state.get("ladders"):
        from ..clocks.ladder import status_lines

        out.append("\nEscalation ladders:")
        out.extend(status_lines(state, now))
    if running:
        out.append("\nClocks:")
        for c in running:
            out.append(f"  {c.label:<34} {c.describe()}")
    messages = state.get("inbound") or {}
    if messages:
        waiting = sum(1 for m in messages.values() if m["status"] == "waiting")
        late = sum(1 for c in replies if c.overdue)
        out.append(f"\nInbound messages: {len(messages)} ({waiting} waiting for an answer"
                   + (f", {late} over their response time" if late else "") + ")"
                   + (f"; the {SHOWN_REPLIES} most urgent are among the clocks" if len(replies) > SHOWN_REPLIES else ""))
    if stage["templates"]:
        out.append(f"\nTemplates for this stage: {', '.join(stage['templates'])}")
    for template, row in inc.recipients(state).items():
        total = len(row["reached"]) + len(row["not_reached"])
        out.append(f"\nRecipients of {template}: {len(row['reached'])} of {total} reached")
        if row["not_reached"]:
            out.append("  not reached: " + ", ".join(f"{r['recipient']} ({r['state']})" for r in row["not_reached"]))
    moves = inc.transitions_from_here(state)
    out.append(f"\nNext (as {actor}):" if moves else "\nNo transitions lead out of this stage.")
    for t in moves:
        tr = plan["transitions"][t]
        why = inc.blockers(state, t, actor)
        if why:
            out.append(f"  {t} -> {tr['to']}: blocked")
            out.extend(f"      - {w}" for w in why)
        else:
            out.append(f"  {t} -> {tr['to']}: ready  (playbook advance {state['id']} {t})")
    return for_terminal("\n".join(out) + "\n")


def describe(type_: str, data: dict) -> str:
    """A one-line human description of an event (untrusted text, not escaped), as its
    kind's entry in engine.incidents.event_types words it; a kind this version does not know is
    named as such rather than guessed at."""
    from .event_types import EVENT_TYPES, describe as worded

    if type_ not in EVENT_TYPES:
        return f"{type_} (a kind of event this version does not know)"
    return worded(type_, data)


def event_line(e) -> str:
    return for_terminal(f"{e.seq:>5}  {e.at}  {e.actor:<16} {e.type:<16} {describe(e.type, e.data)}")


def post_text(text) -> str:
    """A post's text for display: email as Subject + body."""
    if isinstance(text, dict):
        return f"Subject: {text.get('subject', '')}\n\n{text.get('body', '')}"
    return str(text)


def post_block(post: dict) -> str:
    """A draft with its count against the channel limit, hits, approvals and text."""
    c = post["count"]
    fit = "" if c["fits"] else "  TOO LONG: cannot be approved"
    lines = [f"== {post['id']} v{post['version']}  [{post['status']}]  "
             f"{post['channel']}: {c['used']}/{c['limit']} {c['unit']}{fit}"]
    if c.get("detail"):
        lines.append(f"   ({c['detail']})")
    lines.append(f"   sha256 {post['sha256'][:16]}  drafted by {post['author']} at {post['drafted_at']}")
    for name in post.get("leaks", []):
        lines.append(f"   !! CONFIDENTIAL input {name} appears in this public text: it cannot be approved")
    for hit in post["hits"]:
        lines.append(f"   ! possible {hit['kind']}: {hit['text']!r}")
    for a in post["approvals"]:
        lines.append(f"   approved by {a['by']} as {a['role']} at {a['at']}")
    if post["status"] == "draft":
        lines.append(f"   needs: {', '.join(inc.approval_missing(post))}")
    if post.get("rejection"):
        lines.append(f"   rejected by {post['rejection']['by']}: {post['rejection']['reason']}")
    lines.extend("   | " + line for line in post_text(post["text"]).splitlines())
    return for_terminal("\n".join(lines))


def drill_text(result: dict) -> str:
    """The drill debrief (see :func:`engine.clocks.drills.summary`) for people."""
    from ..clocks.deadlines import WORDS

    dur = lambda s: "-" if s is None else format_duration(timedelta(seconds=s))  # noqa: E731
    out = [f"Drill {result['incident']}: {result['title']}  (as of {result['as_of']})"]
    first = result["first_public_post"]
    if first is not None:
        took = (f"{dur(first['seconds'])} after {first['from']} ({first['from_at']})"
                if first["at"] else "never")
        late = f", {dur(first['late_seconds'])} late" if first["late_seconds"] else ""
        out.append(f"First public post: {took}; target {dur(first['target_seconds'])}: "
                   f"{WORDS[first['outcome']]}{late}")
    elif result["time_to_first_public_post_seconds"] is not None:
        out.append(f"First public post: {dur(result['time_to_first_public_post_seconds'])} after the start")
    for outcome, items in result["outcome"].items():
        out.append(f"\n{WORDS[outcome].capitalize()} ({len(items)}):")
        for d in items:
            where = f" [{d['stage']} visit {d['visit']}]" if d.get("stage") else ""
            if d["kind"] == "updates":
                out.append(f"  - {d['label']}{where}: {d['late_updates']} late update(s), longest gap "
                           f"{dur(d['longest_gap_seconds'])}" + (", OVERDUE now" if d["overdue"] else ""))
                continue
            head = f"  - {d['label']}{where}: due {d['due_at']} (from {d['from']})"
            late = dur(d["late_seconds"])
            if outcome == "open":
                out.append(head + (f", not met yet: OVERDUE by {late}" if d["overdue"] else ", not met yet"))
            elif outcome == "missed":
                out.append(head + f", never met (window closed at {d['closed_at']}, {late} after due)")
            else:
                out.append(head + f", met at {d['met_at']}" + (f", {late} late" if d["late_seconds"] else ""))
    if result["injects"]:
        delivered = [i for i in result["injects"] if i["delivered_at"]]
        out.append(f"\nInjects delivered: {len(delivered)} of {len(result['injects'])}")
        for i in result["injects"]:
            out.append(f"  >> {i['scheduled_at']}: {i['message']}"
                       + ("" if i["delivered_at"] else "  (not reached yet)"))
            for a in i["team_actions_after"]:
                out.append(f"       {a['at']}  {a['actor']}: {a['what']}")
            if i["delivered_at"] and not i["team_actions_after"]:
                out.append("       (the team did nothing before the next inject)")
    out.append(f"\nMissed deadlines recorded: {result['breaches']}; escalations: {result['escalations']}")
    return for_terminal("\n".join(out) + "\n")
