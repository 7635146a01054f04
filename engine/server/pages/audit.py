"""The auditor's view: the HTML report, the verify result, and downloads of the bundle
and the exports (the API's own endpoints, reached with the session cookie)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from .frame import PageRoute, app_of, page, viewer

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/incidents/{incident}/audit")
def audit_page(incident: str, request: Request, who=Depends(viewer)):
    from engine.app import audit, incidents

    app = app_of(request)
    state = incidents.status(app, who, incident)
    try:
        verified = audit.verify(app, who, audit.VerifyRequest(incident=incident))
        result = verified.report.to_json()
    except audit.VerifyFailed as e:
        result = e.report.to_json()
    return page(request, "audit.html.j2", who=who, state=state, verify=result)


@router.get("/incidents/{incident}/report")
def report(incident: str, request: Request, who=Depends(viewer)):
    """The HTML report as the command line writes it (it has no scripts, no external assets)."""
    from engine.app import audit

    return HTMLResponse(audit.report(app_of(request), who, incident, "html"))
