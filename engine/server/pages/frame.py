"""What every page shares: the templates, the signed-in person, the CSRF token, and
errors shown as pages.

A page is an adapter like the JSON API: it authenticates the request with
:func:`engine.server.auth.principal` (a session cookie, or a token), calls the
application layer (:mod:`engine.app`) and renders the result with Jinja2
(autoescaping on: every title, note, input and post text is shown as text).

* Not signed in (or the session expired): a GET is sent to the sign-in page, which
  brings the person back afterwards; a form sent without a valid session shows the
  sign-in page with what was typed, so nothing is lost.
* A form is refused (403) unless it carries the session's CSRF token (field ``csrf``).
* A refusal of the engine (a role not held, a guard not met) is shown on a page with
  its reasons and the HTTP status of the API's problem detail.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Callable
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from engine.app.principal import Principal
from engine.errors import AuthenticationFailed, PlaybookError

#: Form fields kept and shown back when a form arrives without a valid session.
KEPT_FIELDS = ("text", "reason", "title")

@lru_cache(maxsize=1)
def templates():
    """The pages' Jinja2 environment (autoescaping everything, strict about names), made once."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("engine.server.pages", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["ago"] = ago
    env.filters["left"] = left
    env.filters["duration"] = duration
    env.globals["quote"] = lambda s: quote(str(s), safe="")
    return env


def app_of(request: Request):
    """The application layer's handle for this request (as the JSON API builds it)."""
    from engine.app.context import App

    from ..auth import accounts

    state = request.app.state
    book = accounts(request)  # with the server's password hasher and lockout policy
    return App(state.config, state.clock, shared_store=book.store, directory=book)


def now_of(request: Request) -> datetime:
    return request.app.state.clock.now()


def csrf_of(request: Request) -> str:
    from engine.accounts.sessions import csrf_token

    from ..auth import SESSION_COOKIE

    sid = request.cookies.get(SESSION_COOKIE)
    return csrf_token(sid) if sid else ""


def page(request: Request, template: str, status: int = 200, who: Principal | None = None, **context) -> HTMLResponse:
    """The page `template` rendered for `who` (None: nobody signed in)."""
    from engine.app.admin import is_admin

    context.setdefault("done", None)
    html = templates().get_template(template).render(
        who=who, csrf=csrf_of(request) if who else "", sso=request.app.state.oidc is not None,
        path=request.url.path, admin=bool(who) and is_admin(app_of(request), who), **context)
    return HTMLResponse(html, status_code=status)


def viewer(request: Request) -> Principal:
    """The signed-in person of a page read (GET)."""
    from ..auth import principal

    return principal(request)


async def poster(request: Request) -> tuple[Principal, dict]:
    """The signed-in person of a form and the form's fields (the CSRF token checked)."""
    from ..auth import principal

    form = await request.form()
    fields = {k: form.getlist(k) if len(form.getlist(k)) > 1 else form.get(k) for k in form.keys()}
    request.state.csrf_form = form.get("csrf") or ""
    request.state.form_fields = fields
    return principal(request), fields


def field(form: dict, name: str, default: str | None = None) -> str | None:
    value = form.get(name, default)
    if isinstance(value, list):
        value = value[-1]
    return value if isinstance(value, str) else default


def fields(form: dict, name: str) -> list[str]:
    value = form.get(name, [])
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]


def back(to: str, note: str | None = None) -> RedirectResponse:
    """After a form: back to a page (303), with a short notice for the person."""
    page, hash_, anchor = to.partition("#")  # the notice goes in the query, before the anchor
    return RedirectResponse(page + (f"?done={quote(note)}" if note else "") + hash_ + anchor, status_code=303)


class PageRoute(APIRoute):
    """A route whose errors are pages: sign-in for a missing or expired session, the
    refusal and its reasons for anything the engine refuses."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def guarded(request: Request):
            try:
                return await handler(request)
            except AuthenticationFailed as e:
                if e.http_status == 401:
                    return _sign_in_again(request, e)
                return refusal(request, e)
            except PlaybookError as e:
                return refusal(request, e)
        return guarded


def refusal(request: Request, error: PlaybookError) -> HTMLResponse:
    who = _quiet_principal(request)
    return page(request, "refused.html.j2", status=error.http_status, who=who,
                message=error.message, reasons=getattr(error, "reasons", []),
                problems=[d.format() for d in getattr(error, "diagnostics", [])][:20])


def _quiet_principal(request: Request) -> Principal | None:
    from ..auth import SESSION_COOKIE
    from ..auth import accounts

    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return None
    try:
        return accounts(request).session_principal(sid, now_of(request))
    except PlaybookError:
        return None


def _sign_in_again(request: Request, error: PlaybookError):
    target = request.url.path
    if request.method == "GET":
        return RedirectResponse(f"/signin?then={quote(target)}", status_code=303)
    typed = getattr(request.state, "form_fields", {}) or {}
    kept = {k: field(typed, k) for k in KEPT_FIELDS if field(typed, k)}
    from .signin import sign_in_page

    return sign_in_page(request, status=401, then=target, kept=kept,
                message="Your session has ended: sign in again. What you typed is below; copy it "
                        "before you sign in, then send the form again.")


def ago(ts: str | None, now: datetime) -> str:
    """How long ago an ISO timestamp was, as people say it (``3h 05m``)."""
    if not ts:
        return "-"
    from engine.format.durations import format_duration
    from engine.incidents.events import parse_iso

    return format_duration(max(now - parse_iso(ts), timedelta(0)))


def duration(seconds: float) -> str:
    """A number of seconds as people say it (``3h 05m``)."""
    from engine.format.durations import format_duration

    return format_duration(timedelta(seconds=max(seconds, 0)))


def left(seconds: float) -> str:
    from engine.format.durations import format_duration

    if seconds < 0:
        return "OVERDUE by " + format_duration(timedelta(seconds=-seconds))
    return format_duration(timedelta(seconds=seconds)) + " left"
