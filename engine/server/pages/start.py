"""Start an incident from a playbook of the server's library, through a form built from
the playbook's typed inputs (confidential ones marked, their values never shown back)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from .frame import PageRoute, app_of, back, field, page, poster, viewer

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: The HTML input type for each input type of the playbook format.
HTML_TYPES = {"url": "url", "email": "email", "phone": "tel", "datetime": "datetime-local", "date": "date",
              "integer": "number"}


def _as_typed(kind: str, value: str) -> str:
    """A browser's date-and-time field has no time zone; the form labels it UTC."""
    import re

    if kind == "datetime" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?", value):
        return value + "Z"
    return value


def _library(app) -> list[dict]:
    from engine.app import incidents
    from engine.format.loader import load_playbook

    out = []
    for name, path in incidents.library(app).items():
        pb = load_playbook(path).playbook
        out.append({"name": name, "title": pb.name, "version": pb.version, "pb": pb})
    return out


def _one(app, name: str):
    from engine.errors import NotFound

    for entry in _library(app):
        if entry["name"] == name:
            return entry
    raise NotFound(f"no playbook {name!r} in the library")


@router.get("/start")
def choose(request: Request, who=Depends(viewer)):
    return page(request, "start.html.j2", who=who, library=_library(app_of(request)), chosen=None,
                html_types=HTML_TYPES)


@router.get("/start/{name}")
def form(name: str, request: Request, who=Depends(viewer)):
    return page(request, "start.html.j2", who=who, library=[], chosen=_one(app_of(request), name),
                html_types=HTML_TYPES)


@router.post("/start/{name}")
def start(name: str, request: Request, signed=Depends(poster)):
    from engine.app import incidents

    who, form = signed
    app = app_of(request)
    pb = _one(app, name)["pb"]
    inputs = {k: _as_typed(spec.type, v) for k, spec in pb.inputs.items()
              if (v := (field(form, f"input:{k}") or "").strip())}
    assign = {r: v for r in pb.roles if (v := (field(form, f"role:{r}") or "").strip())}
    started = incidents.start(app, who, incidents.StartRequest(
        playbook=incidents.library_playbook(app, name), title=(field(form, "title") or "").strip(),
        severity=field(form, "severity") or None, inputs=inputs, assign=assign,
        drill=field(form, "drill") == "on"))
    state = started.state
    from urllib.parse import quote

    warned = "; ".join(f"the value of confidential input {name} also appears in {where}: a public post "
                       "showing it will be refused" for where, name in started.echoes)
    return back(f"/incidents/{quote(state['id'], safe='')}", f"started {state['id']}" + (f". Warning: {warned}"
                                                                                          if warned else ""))
