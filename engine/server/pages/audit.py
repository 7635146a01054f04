"""The auditor's view: the HTML report (styled by a style sheet this server serves), the
verify result, and downloads of the bundle and the exports (the API's own endpoints,
reached with the session cookie)."""

from __future__ import annotations

import re
from functools import lru_cache

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

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


#: The report's one inline style sheet (the standalone file keeps it inline, to be self-contained).
STYLE = re.compile(r"<style>(.*?)</style>", re.S)
REPORT_CSS = "/report.css"


@router.get("/incidents/{incident}/report")
def report(incident: str, request: Request, who=Depends(viewer)):
    """The HTML report as the command line writes it (no scripts, no external assets),
    its inline style sheet replaced by a link to the same rules served by this server:
    the content policy (``style-src 'self'``) blocks inline styles, on every page."""
    from engine.app import audit

    html = audit.report(app_of(request), who, incident, "html")
    return HTMLResponse(STYLE.sub(lambda m: f'<link rel="stylesheet" href="{REPORT_CSS}">', html, count=1))


@router.get(REPORT_CSS)
def report_css():
    """The report's style sheet, taken from the shipped report template (one source)."""
    return Response(report_style(), media_type="text/css; charset=utf-8")


@lru_cache(maxsize=1)
def report_style() -> str:
    from engine.resources import shipped_folder

    source = (shipped_folder("templates") / "report.html.j2").read_text(encoding="utf-8")
    found = STYLE.search(source)
    return found.group(1).strip() + "\n" if found else ""
