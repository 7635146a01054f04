"""Sign in (password, or single sign-on when the server has it) and sign out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from ..auth import secure_cookies
from .frame import PageRoute, back, now_of, page, poster

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _then(target: str | None) -> str:
    """Only a path on this server (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


#: The cookie holding the sign-in form's own CSRF token (there is no session yet to
#: bind one to): a form posted from another site cannot carry it (login CSRF).
SIGNIN_COOKIE = "playbook_signin"


def sign_in_page(request: Request, *, status: int = 200, then: str = "/", kept: dict | None = None,
                 name: str = "", message: str | None = None):
    """The sign-in page, with a new form token in its field and in a cookie."""
    import secrets

    token = secrets.token_urlsafe(24)
    response = page(request, "signin.html.j2", status=status, then=_then(then), kept=kept or {}, name=name,
                    message=message, signin_token=token)
    response.set_cookie(SIGNIN_COOKIE, token, max_age=3600, httponly=True, secure=secure_cookies(request),
                        samesite="strict", path="/signin")
    return response


@router.get("/signin")
def sign_in_form(request: Request, then: str = "/"):
    return sign_in_page(request, then=then)


@router.post("/signin")
async def sign_in(request: Request):
    import hmac

    from starlette.concurrency import run_in_threadpool

    form = await request.form()
    name, password = str(form.get("name") or ""), str(form.get("password") or "")
    then = _then(str(form.get("then") or "/"))
    expected, given = request.cookies.get(SIGNIN_COOKIE) or "", str(form.get("csrf") or "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return sign_in_page(request, status=403, then=then, name=name,
                            message="This sign-in form has expired or came from another site: sign in again here.")
    return await run_in_threadpool(_password_sign_in, request, name, password, then)


def _password_sign_in(request: Request, name: str, password: str, then: str):
    """Check the password (Argon2id: slow on purpose, so off the event loop) and start
    the session."""
    from engine.errors import AuthenticationFailed

    from ..auth import accounts, set_session

    book = accounts(request)
    at = now_of(request)
    try:
        who = book.authenticate_password(name, password, at)
    except AuthenticationFailed as e:
        return sign_in_page(request, status=e.http_status, then=then, name=name, message=e.message)
    sid, session = book.start_session(who, at)
    response = RedirectResponse(then, status_code=303)
    set_session(request, response, sid, session["lifetime_s"])
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
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


