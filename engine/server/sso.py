"""Single sign-on: the browser goes to the hospital's identity provider and comes back
with a session (OpenID Connect, authorization code with PKCE; engine.accounts.oidc).

``GET /auth/sso`` starts a sign-in (``?fresh=true`` asks the provider to authenticate
the person again, for a signature) and redirects to the provider; the sign-in's state,
nonce and PKCE verifier wait in an HttpOnly cookie of this browser (bound to it, never
in a URL). ``GET /auth/callback`` (the redirect URI registered at the provider) checks
the answer, requires an active account of the name the provider gives, and starts a
session exactly as a password sign-in does. Signing in at the provider is not
permission to use this server: the account must exist here and not be disabled.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from engine.errors import NotFound

from .auth import accounts, now, set_session

PENDING_COOKIE = "playbook_sso"

router = APIRouter(prefix="/auth", tags=["sign-in"])


def _client(request: Request):
    client = request.app.state.oidc
    if client is None:
        raise NotFound("single sign-on is not configured on this server (PLAYBOOK_OIDC)")
    return client


@router.get("/sso", summary="Sign in with the identity provider (redirects there)")
def begin(request: Request, fresh: bool = False, then: str = "/") -> RedirectResponse:
    from .auth import secure_cookies

    url, pending = _client(request).begin(now(request), fresh=fresh)
    response = RedirectResponse(url, status_code=303)
    kept = {"pending": pending.to_dict(), "then": then if _local_path(then) else "/"}
    response.set_cookie(PENDING_COOKIE, json.dumps(kept, separators=(",", ":")),
                        max_age=int(request.app.state.oidc.config.sign_in_lifetime), httponly=True,
                        secure=secure_cookies(request), samesite="lax", path="/auth")
    return response


@router.get("/callback", summary="Where the identity provider sends the browser back")
def callback(request: Request) -> RedirectResponse:
    from engine.accounts.oidc import PendingSignIn
    from engine.errors import AuthenticationFailed, SignInFailed

    client = _client(request)
    raw = request.cookies.get(PENDING_COOKIE)
    try:
        kept = json.loads(raw) if raw else None
        pending = PendingSignIn.from_dict(kept["pending"]) if isinstance(kept, dict) else None
    except (ValueError, KeyError, TypeError):
        pending = None
    if pending is None:
        raise SignInFailed("no sign-in was started in this browser (or it took too long): start again",
                           side="request")
    who = client.finish(dict(request.query_params), pending, now(request))
    book = accounts(request)
    if not book.active(who.name):
        raise AuthenticationFailed()
    sid, session = book.start_session(who, now(request))
    response = RedirectResponse(kept.get("then") or "/", status_code=303)
    response.delete_cookie(PENDING_COOKIE, path="/auth")
    set_session(request, response, sid, session["lifetime_s"])
    return response


def _local_path(target: str) -> bool:
    """Only a path on this server (no scheme, no host, no //): no open redirect."""
    return target.startswith("/") and not target.startswith("//") and "\\" not in target
