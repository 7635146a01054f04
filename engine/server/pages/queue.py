"""My approval queue: every draft awaiting an approval I can give, oldest first; approve
several versions in one step (each its own signed approval) or reject one with a reason.

Which drafts are listed is the application layer's answer
(:func:`engine.app.releases.awaiting`, also ``GET /api/v1/queue``); whether an approval
is allowed is decided by the engine when it is given (:func:`engine.app.releases.approve`),
never here.
"""

from __future__ import annotations


from fastapi import APIRouter, Depends, Request

from .frame import PageRoute, app_of, back, field, fields, now_of, page, poster, viewer

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def awaiting(app, who) -> list[dict]:
    """The drafts awaiting an approval `who` could give, oldest first
    (:func:`engine.app.releases.awaiting`), each with its preview and form key."""
    from engine.app import incidents, releases

    from .preview import earlier_versions, preview

    items, logs = [], {}
    for it in releases.awaiting(app, who):
        if it["incident"] not in logs:
            logs[it["incident"]] = list(incidents.log(app, who, it["incident"]))
        items.append({**it, "preview": preview(it["draft"], earlier_versions(logs[it["incident"]], it["post"])),
                      "key": f"{it['incident']}|{it['post']}|{it['version']}"})
    return items


def messages(items: list[dict]) -> list[dict]:
    """The queue's drafts grouped by message (incident and template), for approving every
    channel and language version of one message with one button; each button carries
    the exact versions shown."""
    groups: dict[tuple[str, str], dict] = {}
    for it in items:
        key = (it["incident"], it["template"])
        group = groups.setdefault(key, {"incident": key[0], "template": key[1], "keys": []})
        group["keys"].append(it["key"])
    return [g for g in groups.values() if len(g["keys"]) > 1]


@router.get("/queue")
def queue(request: Request, done: str | None = None, who=Depends(viewer)):
    now = now_of(request)
    items = awaiting(app_of(request), who)
    return page(request, "queue.html.j2", who=who, items=items, groups=messages(items), now=now,
                done=done, fresh=_fresh(who, now))


def _fresh(who, now) -> bool:
    """Whether the person signed in recently enough to sign without their password."""
    from engine.posts.versions import SIGNATURE_WINDOW_S

    return who.authenticated_at is not None and (now - who.authenticated_at).total_seconds() <= SIGNATURE_WINDOW_S


@router.post("/queue/approve")
def approve(request: Request, signed=Depends(poster)):
    """Approve every ticked version: one approval (and signature) per version, in order;
    the first refusal stops and is shown, the approvals before it stand."""
    from engine.app import releases
    from engine.errors import PlaybookError, Refused, UsageError

    from ..auth import accounts

    who, form = signed
    picked = fields(form, "pick") + [k for group in fields(form, "group") for k in group.split("\n") if k]
    picked = list(dict.fromkeys(picked))
    if not picked:
        raise UsageError("tick at least one draft to approve")
    password = field(form, "password") or ""
    if password:
        again = accounts(request).authenticate_password(who.name, password, now_of(request))
        who = again.replace(scope=who.scope)
    app = app_of(request)
    done = []
    for key in picked:
        incident, post, version = _key(key)
        role = field(form, f"role:{key}") or None
        override = field(form, f"override:{key}") or None
        try:
            releases.approve(app, who, incident, post, version=version, role=role, override=override)
        except PlaybookError as e:
            if not done:
                raise
            raise Refused(f"approved {', '.join(done)}; {post} v{version} was not: {e.message}",
                          list(getattr(e, "reasons", []))) from e
        done.append(f"{post} v{version}")
    return back("/queue", f"approved {', '.join(done)}")


@router.post("/queue/reject")
def reject(request: Request, signed=Depends(poster)):
    from engine.app import releases

    from engine.errors import UsageError

    who, form = signed
    incident, post, version = _key(field(form, "key") or "")
    if not (field(form, "reason") or "").strip():
        raise UsageError("Reason to reject: a rejection needs a reason")
    releases.reject(app_of(request), who, incident, post, field(form, "reason") or "", version)
    return back("/queue", f"rejected {post} v{version}")


def _key(key: str) -> tuple[str, str, int]:
    from engine.errors import UsageError

    incident, _, rest = key.partition("|")
    post, _, version = rest.rpartition("|")
    if not incident or not post or not version.isdigit():
        raise UsageError(f"not a draft of the queue: {key[:200]!r}")
    return incident, post, int(version)
