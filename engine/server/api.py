"""The JSON API: every use case of the command line, for an authenticated principal.

Each endpoint calls one function of the application layer (:mod:`engine.app`); the
principal comes from :mod:`engine.server.auth`, never from the request's data. Post
ids (``public_ack/x/en``) hold slashes, so post actions take the post in the body.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from engine.app.principal import Principal

from . import admin_api, bodies as b
from .auth import Signed, accounts
from .errors import COMMON, documented

router = APIRouter(prefix="/api/v1", responses=COMMON)


def _app(request: Request):
    from engine.app.context import App

    state = request.app.state
    store = state.stores.get()
    from engine.accounts.book import Accounts

    return App(state.config, state.clock, shared_store=store, directory=Accounts(store))


def _now(request: Request):
    return request.app.state.clock.now()


#: ``?full=true``: the incident's whole state (what the command line's views take, for
#: a client that shows them itself) as ``{"state": ...}`` instead of its status view
Full = Query(False, description="return the incident's whole state as {\"state\": ...} (the command line's views)")


def _status(request: Request, state: dict, who: Principal, full: bool = False) -> dict:
    from engine.incidents.views import status_json

    if full:
        return {"state": state}
    return status_json(state, _now(request), who.name)


# -- playbooks and incidents -------------------------------------------------------


@router.get("/playbooks", tags=["incidents"], summary="The playbooks of the server's library")
def playbooks(request: Request, who: Principal = Signed) -> list[dict]:
    import hashlib
    from pathlib import Path

    from engine.app import incidents
    from engine.format.loader import load_playbook

    out = []
    for name, path in incidents.library(_app(request)).items():
        pb = load_playbook(path).playbook
        out.append({"name": name, "id": pb.id, "title": pb.name, "version": pb.version,
                    "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
                    "inputs": {k: {"type": v.type, "required": v.required, "confidential": v.confidential}
                               for k, v in pb.inputs.items()},
                    "roles": {k: {"title": v.title, "required": v.required} for k, v in pb.roles.items()},
                    "severities": list(pb.severities)})
    return out


def _start(request: Request, body: b.StartBody, who: Principal, *, drill: bool, full: bool = False):
    from engine.app import incidents

    app = _app(request)
    started = incidents.start(app, who, incidents.StartRequest(
        playbook=incidents.library_playbook(app, body.playbook), title=body.title, severity=body.severity,
        inputs=dict(body.inputs), assign=dict(body.assign), drill=drill,
        scenario_text=getattr(body, "scenario", None)))
    return {**_status(request, started.state, who, full),
            "warnings": [{"field": f, "confidential_input": n} for f, n in started.echoes]}


@router.post("/incidents", status_code=201, tags=["incidents"], summary="Start an incident")
def start(body: b.StartBody, request: Request, full: bool = Full, who: Principal = Signed) -> dict:
    return _start(request, body, who, drill=False, full=full)


@router.post("/drills", status_code=201, tags=["drills"], summary="Start a drill (simulated clock)")
def drill(body: b.DrillBody, request: Request, full: bool = Full, who: Principal = Signed) -> dict:
    return _start(request, body, who, drill=True, full=full)


@router.get("/incidents", tags=["incidents"], summary="List incidents (open ones unless all=true)")
def listing(request: Request, all: bool = False, stage: str | None = Query(None, max_length=200),
            playbook: str | None = Query(None, max_length=200),
            full: bool = Query(False, description="each listed incident's whole state"),
            who: Principal = Signed) -> list[dict]:
    from engine.app import incidents

    return incidents.listing(_app(request), who, include_closed=all, stage=stage, playbook=playbook, full=full)


@router.get("/incidents/{incident}", tags=["incidents"], summary="An incident's status")
def status(incident: str, request: Request, full: bool = Full, who: Principal = Signed) -> dict:
    from engine.app import incidents

    return _status(request, incidents.status(_app(request), who, incident), who, full)


@router.post("/incidents/{incident}/assign", tags=["incidents"], summary="Give a role to an account")
def assign(incident: str, body: b.RoleBody, request: Request, full: bool = Full, who: Principal = Signed) -> dict:
    from engine.app import incidents

    return _status(request, incidents.assign(_app(request), who, incident, body.role, body.person), who, full)


@router.post("/incidents/{incident}/unassign", tags=["incidents"], summary="Take a role from an account")
def unassign(incident: str, body: b.RoleBody, request: Request, full: bool = Full, who: Principal = Signed) -> dict:
    from engine.app import incidents

    return _status(request, incidents.unassign(_app(request), who, incident, body.role, body.person), who, full)


@router.post("/incidents/{incident}/tasks/{task}", tags=["incidents"], summary="Tick off (or reopen) a task")
def task(incident: str, task: str, body: b.TaskBody, request: Request, full: bool = Full,
         who: Principal = Signed) -> dict:
    from engine.app import incidents

    return _status(request, incidents.task(_app(request), who, incident, task, done=body.done), who, full)


@router.post("/incidents/{incident}/notes", tags=["incidents"], summary="Add a note to the log")
def note(incident: str, body: b.NoteBody, request: Request, full: bool = Full, who: Principal = Signed) -> dict:
    from engine.app import incidents

    return _status(request, incidents.note(_app(request), who, incident, body.text), who, full)


@router.post("/incidents/{incident}/inputs", tags=["incidents"], summary="Set or correct input values")
def set_inputs(incident: str, body: b.InputsBody, request: Request, full: bool = Full, who: Principal = Signed) -> dict:
    from engine.app import incidents

    return _status(request, incidents.set_inputs(_app(request), who, incident, dict(body.values)), who, full)


@router.post("/incidents/{incident}/advance", tags=["incidents"], summary="Fire a transition")
def advance(incident: str, body: b.AdvanceBody, request: Request, full: bool = Full, who: Principal = Signed) -> dict:
    from engine.app import incidents

    return _status(request, incidents.advance(_app(request), who, incident, body.trigger, body.reason), who, full)


@router.post("/incidents/{incident}/close", tags=["incidents"], summary="Close the incident")
def close(incident: str, body: b.CloseBody, request: Request, full: bool = Full, who: Principal = Signed) -> dict:
    from engine.app import incidents

    return _status(request, incidents.close(_app(request), who, incident, body.trigger, body.reason), who, full)


@router.post("/incidents/{incident}/reopen", tags=["incidents"], summary="Reopen a closed incident")
def reopen(incident: str, body: b.CloseBody, request: Request, full: bool = Full, who: Principal = Signed) -> dict:
    from engine.app import incidents

    return _status(request, incidents.reopen(_app(request), who, incident, body.trigger, body.reason), who, full)


@router.get("/incidents/{incident}/log", tags=["audit"], summary="The incident's audit log, oldest first")
def log(incident: str, request: Request, who: Principal = Signed) -> list[dict]:
    from engine.app import incidents

    return [e.to_json() for e in incidents.log(_app(request), who, incident)]


# -- posts ----------------------------------------------------------------------------


@router.post("/incidents/{incident}/render", tags=["posts"], summary="Render a template into draft posts")
def render(incident: str, body: b.RenderBody, request: Request, who: Principal = Signed) -> list[dict]:
    from engine.app import releases

    return releases.render(_app(request), who, releases.RenderRequest(
        incident=incident, template=body.template, channels=tuple(body.channels), langs=tuple(body.langs),
        overrides=dict(body.overrides),
        recipients=[(ref, dict(values)) for ref, values in body.recipients] if body.recipients is not None else None))


@router.get("/incidents/{incident}/posts", tags=["posts"], summary="The incident's posts and what each needs")
def drafts(incident: str, request: Request, who: Principal = Signed) -> list[dict]:
    from engine.app import releases

    return releases.drafts(_app(request), who, incident)


@router.post("/incidents/{incident}/edit", tags=["posts"], summary="Hand-edit a post (a new version)")
def edit(incident: str, body: b.EditBody, request: Request, who: Principal = Signed) -> dict:
    from engine.app import releases

    return releases.edit(_app(request), who, incident, body.post, text=body.text, subject=body.subject)


@router.post("/incidents/{incident}/approve", tags=["posts"],
             summary="Approve a version: an electronic signature by someone who signed in within 5 minutes")
def approve(incident: str, body: b.ApproveBody, request: Request, who: Principal = Signed) -> dict:
    from engine.app import releases

    if body.password is not None:  # signing again in the same step (a session older than 5 minutes)
        again = accounts(request).authenticate_password(who.name, body.password, _now(request))
        who = again.replace(scope=who.scope)
    result = releases.approve(_app(request), who, incident, body.post, version=body.version, role=body.role,
                              override=body.override_identifiers)
    return {**result.post, "missing": result.missing}


@router.post("/incidents/{incident}/reject", tags=["posts"], summary="Reject the current version of a post")
def reject(incident: str, body: b.RejectBody, request: Request, who: Principal = Signed) -> dict:
    from engine.app import releases

    return releases.reject(_app(request), who, incident, body.post, body.reason, body.version)


@router.post("/incidents/{incident}/publish", tags=["posts"], responses=documented(502),
             summary="Publish a fully approved post (then deliver it, for a real incident)")
def publish(incident: str, body: b.PostBody, request: Request, who: Principal = Signed) -> dict:
    from engine.app import releases

    try:
        result = releases.publish(_app(request), who, incident, body.post)
    except releases.DeliveryAfterPublish as e:  # published, then the delivery failed: say what went out
        e.fields["published"] = {**e.published.post, "outbox": e.published.outbox}
        raise
    return {**result.post, "outbox": result.outbox, "deliveries": result.deliveries}


@router.post("/incidents/{incident}/deliver", tags=["posts"], responses=documented(502),
             summary="Deliver (or retry) a published post")
def deliver(incident: str, body: b.PostBody, request: Request, who: Principal = Signed) -> list[dict]:
    from engine.app import releases

    return releases.deliver(_app(request), who, incident, body.post)


@router.post("/outbox/rebuild", tags=["posts"], summary="Re-create missing or altered outbox files")
def rebuild_outbox(request: Request, incident: str | None = Query(None, max_length=200),
                   who: Principal = Signed) -> list[dict]:
    from engine.app import releases

    return releases.rebuild_outbox(_app(request), who, incident)


# -- clocks and drills -----------------------------------------------------------------


def _within(text: str) -> int:
    from engine.format.durations import parse_duration
    from engine.errors import UsageError

    if text in ("0", "0s"):
        return 0
    try:
        return int(parse_duration(text).total_seconds())
    except ValueError as e:
        raise UsageError(f"within: {e}") from None


@router.get("/due", tags=["clocks"], summary="What is due or overdue (only looks)")
def due(request: Request, within: str = Query("0s", max_length=40), who: Principal = Signed) -> dict:
    from engine.app import clocks

    result = clocks.due(_app(request), who, _within(within), record=False)
    return {**result.to_json(), "overdue": result.overdue}


@router.post("/due", tags=["clocks"], summary="Check the clocks: record missed deadlines, escalate, notify")
def check_due(request: Request, within: str = Query("0s", max_length=40), who: Principal = Signed) -> dict:
    from engine.app import clocks

    result = clocks.due(_app(request), who, _within(within), record=True)
    return {**result.to_json(), "overdue": result.overdue}


@router.get("/response-time", tags=["clocks"],
            summary="The live response time: median time to first reply over the last hour, share within target")
def response_time(request: Request, who: Principal = Signed) -> dict:
    from engine.app import inbound

    return inbound.response_time(_app(request), who)


@router.post("/incidents/{incident}/advance-clock", tags=["drills"], summary="Move a drill's clock forward")
def advance_clock(incident: str, body: b.ClockBody, request: Request, full: bool = Full,
                  who: Principal = Signed) -> dict:
    from engine.app import clocks

    result = clocks.advance_clock(_app(request), who, incident, _within(body.duration) or 0)
    return {"status": _status(request, result["state"], who, full), "recorded": result["recorded"],
            "injects": result["injects"]}


@router.post("/incidents/{incident}/ack", tags=["clocks"],
             summary="Acknowledge a climbing escalation: its ladder stops paging")
def acknowledge(incident: str, body: b.AckBody, request: Request, full: bool = Full,
                who: Principal = Signed) -> dict:
    from engine.app import clocks

    result = clocks.acknowledge(_app(request), who, incident, body.clock, body.note)
    return {**result.to_json(), "status": _status(request, result.state, who, full)}


@router.get("/incidents/{incident}/drill-summary", tags=["drills"], summary="A drill's debrief")
def drill_summary(incident: str, request: Request, who: Principal = Signed) -> dict:
    from engine.app import clocks

    return clocks.drill_summary(_app(request), who, incident)


# -- audit -------------------------------------------------------------------------------


@router.post("/verify", tags=["audit"], summary="Verify the audit log (one incident, or all)")
def verify(body: b.VerifyBody, request: Request, who: Principal = Signed) -> dict:
    from engine.app import audit

    verified = audit.verify(_app(request), who, audit.VerifyRequest(incident=body.incident, fast=body.fast,
                                                                         full=body.full))
    return verified.report.to_json()


@router.post("/checkpoints", tags=["audit"],
             summary="Verify every incident, then sign a checkpoint of them all (what verify -o keeps)")
def checkpoint(request: Request, who: Principal = Signed) -> dict:
    from engine.app import audit

    app = _app(request)
    return audit.sign_checkpoint(app, who, audit.verify(app, who, audit.VerifyRequest()))


@router.get("/incidents/{incident}/report", tags=["audit"], summary="The auditor's report",
            responses={200: {"content": {"application/json": {}, "text/markdown": {}, "text/html": {}}}})
def report(incident: str, request: Request, format: b.Format = "json", who: Principal = Signed) -> Response:
    from engine.app import audit

    text = audit.report(_app(request), who, incident, format)
    media = {"md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8",
             "json": "application/json"}[format]
    return Response(text, media_type=media)


@router.get("/incidents/{incident}/export", tags=["audit"], summary="The events as JSON Lines or CSV",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}})
def export(incident: str, request: Request, format: b.ExportFormat = "jsonl", who: Principal = Signed):
    import tempfile

    from engine.app import audit

    app = _app(request)
    audit.require_incident(app, who, incident)
    # spooled to disk past 1 MB, then sent in chunks: memory stays flat however long the log
    out = tempfile.SpooledTemporaryFile(max_size=2**20, mode="w+", encoding="utf-8", newline="")
    count = audit.export(app, who, incident, format, out)
    out.seek(0)

    def chunks():
        with out:
            while block := out.read(2**16):
                yield block

    media = "application/x-ndjson" if format == "jsonl" else "text/csv; charset=utf-8"
    return StreamingResponse(chunks(), media_type=media, headers={"X-Event-Count": str(count)})


@router.get("/incidents/{incident}/bundle", tags=["audit"], summary="The auditor's bundle (a zip file)",
            response_class=Response, responses={200: {"content": {"application/zip": {}}}})
def bundle(incident: str, request: Request, who: Principal = Signed) -> Response:
    import shutil
    import tempfile
    from pathlib import Path

    from fastapi.responses import FileResponse
    from starlette.background import BackgroundTask

    from engine.app import audit

    folder = tempfile.mkdtemp(prefix="playbook-bundle-")
    try:
        path = Path(folder) / f"{incident}.zip"
        audit.bundle(_app(request), who, incident, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # sent from the file, then the file removed: a long incident's bundle is not held in memory
    return FileResponse(path, media_type="application/zip", filename=f"{incident}.bundle.zip",
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


@router.get("/key", tags=["audit"], summary="The public key that signs checkpoints", response_class=PlainTextResponse)
def key(request: Request, who: Principal = Signed) -> str:
    from engine.app import audit

    return audit.public_key(_app(request))


@router.get("/healthz", tags=["server"], summary="The server answers and its database opens")
def healthz(request: Request) -> dict:
    request.app.state.stores.get().schema_version()
    return {"ok": True}


@router.get("/queue", tags=["posts"], summary="The drafts awaiting an approval I can give, oldest first")
def queue(request: Request, who: Principal = Signed) -> list[dict]:
    from engine.app import releases

    return releases.awaiting(_app(request), who)


router.include_router(admin_api.router)  # /api/v1/admin/...: the administrators' use cases
