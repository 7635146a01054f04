"""Who is asking: a personal API token (``Authorization: Bearer ...``) or a browser
session (a cookie set at sign-in, by password or single sign-on).

* The server never accepts an asserted name: no header, field or parameter says who
  one is.
* Sessions are kept in the account log (engine.accounts.sessions), so every server on
  the database knows them and a sign-out ends them everywhere. The cookie is
  ``Secure`` (unless the server runs on loopback without TLS for a test), ``HttpOnly``
  and ``SameSite=Strict``; a new session id is issued at every sign-in (no fixation).
* A state-changing request made with the session cookie must carry the session's CSRF
  token (header ``X-CSRF-Token`` or form field ``csrf``), which only pages of this
  server can read.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request, Response

from engine.app.principal import Principal
from engine.errors import AuthenticationFailed

from .bodies import LoginBody
from .errors import COMMON

SESSION_COOKIE = "playbook_session"
CSRF_COOKIE = "playbook_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

router = APIRouter(prefix="/api/v1", tags=["sign-in"], responses=COMMON)


def accounts(request: Request):
    from engine.accounts.book import Accounts

    state = request.app.state
    return Accounts(state.stores.get(), hasher=state.hasher, lockout=state.lockout)


def now(request: Request):
    return request.app.state.clock.now()


class NotSignedIn(AuthenticationFailed):
    MESSAGE = "sign in first: send a personal API token (Authorization: Bearer ...) or sign in in the browser"


class CsrfRefused(AuthenticationFailed):
    """Not a failed sign-in: the person is known, the request is not theirs to make (403)."""

    STATUS = 403
    MESSAGE = "this request needs the session's CSRF token (X-CSRF-Token header or csrf form field)"


def principal(request: Request) -> Principal:
    """The authenticated principal of the request, or 401."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotSignedIn()
        return accounts(request).authenticate_token(secret.strip(), now(request))
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        from engine.accounts.sessions import csrf_token

        who = accounts(request).session_principal(sid, now(request))
        if request.method not in SAFE_METHODS:
            given = request.headers.get("x-csrf-token") or getattr(request.state, "csrf_form", None) or ""
            if not hmac.compare_digest(given.encode(), csrf_token(sid).encode()):
                raise CsrfRefused()
        return who
    raise NotSignedIn()


Signed = Depends(principal)


def secure_cookies(request: Request) -> bool:
    """Cookies are Secure except on a plain-HTTP loopback server (tests, a laptop)."""
    host = (request.url.hostname or "").lower()
    return request.url.scheme == "https" or host not in ("127.0.0.1", "localhost", "::1")


def set_session(request: Request, response: Response, sid: str, expires_in: int) -> str:
    from engine.accounts.sessions import csrf_token

    secure = secure_cookies(request)
    response.set_cookie(SESSION_COOKIE, sid, max_age=expires_in, httponly=True, secure=secure,
                        samesite="strict", path="/")
    token = csrf_token(sid)
    response.set_cookie(CSRF_COOKIE, token, max_age=expires_in, httponly=False, secure=secure,
                        samesite="strict", path="/")
    return token


@router.post("/session", summary="Sign in with a password; sets the session cookie")
def sign_in(body: LoginBody, request: Request, response: Response) -> dict:
    book = accounts(request)
    at = now(request)
    who = book.authenticate_password(body.name, body.password, at)
    sid, session = book.start_session(who, at)
    csrf = set_session(request, response, sid, session["lifetime_s"])
    return {"name": who.name, "auth": who.auth, "expires_at": session["expires_at"], "csrf": csrf}


@router.delete("/session", summary="Sign out: ends the session on every server")
def sign_out(request: Request, response: Response, who: Principal = Signed) -> dict:
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        accounts(request).end_session(sid, now(request))
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return {"signed_out": who.name}


@router.get("/me", summary="Who the request is authenticated as")
def me(who: Principal = Signed) -> dict:
    from engine.incidents.events import utc_now_iso

    return {"name": who.name, "auth": who.auth, "scope": who.scope,
            "authenticated_at": utc_now_iso(who.authenticated_at) if who.authenticated_at else None}
