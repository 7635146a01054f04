"""The incident page (stage, roles, tasks, transitions and what blocks each, posts,
notes, timeline) and its forms, each calling one use case of :mod:`engine.app`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from .frame import PageRoute, app_of, back, field, fields, now_of, page, poster, viewer

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/incidents/{incident}")
def incident_page(incident: str, request: Request, done: str | None = None, who=Depends(viewer)):
    from engine.incidents import state as inc
    from engine.app import inbound, incidents, releases
    from engine.incidents.views import describe, status_json

    from .preview import earlier_versions, preview

    app, now = app_of(request), now_of(request)
    state = incidents.status(app, who, incident)
    status = status_json(state, now, who.name)
    events = list(incidents.log(app, who, incident))
    posts = [{**p, "preview": preview(p, earlier_versions(events, p["id"]))}
             for p in releases.drafts(app, who, incident)]
    plan = state["plan"]
    stage = plan["stages"][state["stage"]]
    timeline = [{"seq": e.seq, "at": e.at, "actor": e.actor, "type": e.type, "what": describe(e.type, e.data)}
                for e in events]
    return page(request, "incident.html.j2", who=who, s=status, state=state, now=inc.effective_now(state, now),
                done=done, messages=[_shown(m) for m in inbound.inbox(app, who, incident)],
                may_handle=inbound.may(who, state, "handle"), may_reply=inbound.may(who, state, "render"),
                reasons=inbound.REASONS,
                tasks=inc.stage_tasks(state), templates=stage["templates"], posts=posts,
                timeline=list(reversed(timeline)), notes=[t for t in timeline if t["type"] == "NoteAdded"],
                role_titles={r: plan["roles"][r].get("title", r) for r in plan["roles"]})


def _shown(row: dict) -> dict:
    """An inbox row (engine.app.inbound.inbox) with its wait and target as people say them."""
    from datetime import timedelta

    from engine.format.durations import format_duration

    target = row["target_seconds"]
    return {**row, "waited": format_duration(timedelta(seconds=row["waiting_seconds"])),
            "target": format_duration(timedelta(seconds=target)) if target is not None else None}


def _to(incident: str, anchor: str = "") -> str:
    from urllib.parse import quote

    return f"/incidents/{quote(incident, safe='')}" + (f"#{anchor}" if anchor else "")


@router.post("/incidents/{incident}/assign")
def assign(incident: str, request: Request, signed=Depends(poster)):
    from engine.app import incidents

    who, form = signed
    role, person = field(form, "role") or "", (field(form, "person") or "").strip()
    if field(form, "remove"):
        incidents.unassign(app_of(request), who, incident, role, person)
        return back(_to(incident), f"removed {person} from {role}")
    incidents.assign(app_of(request), who, incident, role, person)
    return back(_to(incident), f"assigned {person} to {role}")


@router.post("/incidents/{incident}/tasks")
def tasks(incident: str, request: Request, signed=Depends(poster)):
    """The stage's checklist as sent: each task whose box changed is ticked or reopened."""
    from engine.incidents import state as inc
    from engine.app import incidents

    who, form = signed
    app = app_of(request)
    state = incidents.status(app, who, incident)
    ticked = set(fields(form, "done"))
    changed = []
    for task in inc.stage_tasks(state):
        was = state["tasks"].get(task) is not None
        if (task in ticked) != was:
            incidents.task(app, who, incident, task, done=task in ticked)
            changed.append(task)
    return back(_to(incident), ("updated " + ", ".join(changed)) if changed else "no task changed")


@router.post("/incidents/{incident}/advance")
def advance(incident: str, request: Request, signed=Depends(poster)):
    from engine.app import incidents

    who, form = signed
    trigger = field(form, "trigger") or ""
    incidents.advance(app_of(request), who, incident, trigger, field(form, "reason") or None)
    return back(_to(incident), f"fired {trigger}")


@router.post("/incidents/{incident}/notes")
def note(incident: str, request: Request, signed=Depends(poster)):
    from engine.app import incidents

    who, form = signed
    incidents.note(app_of(request), who, incident, field(form, "text") or "")
    return back(_to(incident), "note added")


@router.post("/incidents/{incident}/render")
def render(incident: str, request: Request, signed=Depends(poster)):
    from engine.app import releases

    who, form = signed
    drafted = releases.render(app_of(request), who, releases.RenderRequest(
        incident=incident, template=field(form, "template") or ""))
    return back(_to(incident, "posts"), f"rendered {len(drafted)} draft(s)")


@router.post("/incidents/{incident}/edit")
def edit(incident: str, request: Request, signed=Depends(poster)):
    from engine.app import releases

    who, form = signed
    post = field(form, "post") or ""
    result = releases.edit(app_of(request), who, incident, post, text=field(form, "text") or "",
                           subject=field(form, "subject"))
    return back(_to(incident, "posts"), f"{post} is now v{result['version']}")


@router.post("/incidents/{incident}/publish")
def publish(incident: str, request: Request, signed=Depends(poster)):
    from engine.app import releases

    who, form = signed
    post = field(form, "post") or ""
    releases.publish(app_of(request), who, incident, post)
    return back(_to(incident, "posts"), f"published {post}")


@router.post("/incidents/{incident}/inbox/handle")
def handle_message(incident: str, request: Request, signed=Depends(poster)):
    """Mark an inbound message as needing no published reply, with the reason."""
    from engine.app import inbound

    who, form = signed
    message, reason = field(form, "message") or "", field(form, "reason") or ""
    inbound.handle(app_of(request), who, incident, message, reason, field(form, "note") or "")
    return back(_to(incident, "inbox"), f"marked {message} handled ({inbound.REASONS.get(reason, reason)})")


@router.post("/incidents/{incident}/inbox/reply")
def reply(incident: str, request: Request, signed=Depends(poster)):
    """Draft a reply to an inbound message from a template of the stage (on the message's channel)."""
    from engine.app import releases

    who, form = signed
    message = field(form, "message") or ""
    drafted = releases.render(app_of(request), who, releases.RenderRequest(
        incident=incident, template=field(form, "template") or "", reply_to=message))
    return back(_to(incident, "posts"), f"drafted a reply to {message}: " + ", ".join(d["id"] for d in drafted))
