"""Sign in (password, or single sign-on when the server has it) and sign out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from .frame import PageRoute, back, now_of, page, poster

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _then(target: str | None) -> str:
    """Only a path on this server (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/signin")
def sign_in_form(request: Request, then: str = "/"):
    return page(request, "signin.html.j2", then=_then(then), kept={}, name="", message=None)


@router.post("/signin")
async def sign_in(request: Request):
    from engine.errors import AuthenticationFailed

    from ..auth import accounts, set_session

    form = await request.form()
    name, password = str(form.get("name") or ""), str(form.get("password") or "")
    then = _then(str(form.get("then") or "/"))
    book = accounts(request)
    at = now_of(request)
    try:
        who = book.authenticate_password(name, password, at)
    except AuthenticationFailed as e:
        return page(request, "signin.html.j2", status=e.http_status, then=then, kept={}, name=name,
                    message=e.message)
    sid, session = book.start_session(who, at)
    response = RedirectResponse(then, status_code=303)
    set_session(request, response, sid, session["lifetime_s"])
    return response


@router.post("/signout")
def sign_out(request: Request, signed=Depends(poster)):
    from ..auth import CSRF_COOKIE, SESSION_COOKIE, accounts

    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        accounts(request).end_session(sid, now_of(request))
    response = back("/signin")
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


