"""The administrators' pages: accounts (add, disable, enable, reset a password, make an
administrator or no longer one), tokens (list, revoke, issue one for oneself, shown
once) and each account's trail from the account log.

Every page and form calls :mod:`engine.app.admin`, which asks the one policy
(:func:`engine.incidents.policy.require_admin`): someone who is not an administrator
gets the refusal page (403), and nothing is written. Forms carry the session's CSRF
token like every other form.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request

from .frame import PageRoute, app_of, back, field, page, poster, viewer

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _user_to(name: str) -> str:
    return f"/admin/users/{quote(name, safe='')}"


def _password(form: dict) -> str:
    """The new password typed twice in the form (UsageError if the two differ)."""
    from engine.errors import UsageError

    password = field(form, "password") or ""
    if password != (field(form, "confirm") or ""):
        raise UsageError("New password: the two passwords typed differ; type the same one twice")
    return password


@router.get("/admin")
def users_page(request: Request, done: str | None = None, who=Depends(viewer)):
    from engine.app import admin

    return page(request, "admin_users.html.j2", who=who, users=admin.users(app_of(request), who), done=done)


@router.get("/admin/users/{name}")
def user_page(name: str, request: Request, done: str | None = None, who=Depends(viewer)):
    from engine.app import admin

    app = app_of(request)
    trail = admin.trail(app, who, name)
    shown = next(u for u in admin.users(app, who) if u["name"] == name)
    return page(request, "admin_user.html.j2", who=who, user=shown, trail=list(reversed(trail)), done=done)


@router.post("/admin/users")
def add_user(request: Request, signed=Depends(poster)):
    from engine.app import admin

    who, form = signed
    added = admin.add_user(app_of(request), who, (field(form, "name") or "").strip(), _password(form),
                           display_name=field(form, "display_name"), email=field(form, "email"))
    return back("/admin", f"added account {added['name']}")


@router.post("/admin/users/{name}/{change}")
def change_user(name: str, change: str, request: Request, signed=Depends(poster)):
    """disable, enable, grant-admin, revoke-admin or password (a reset)."""
    from engine.app import admin
    from engine.errors import NotFound

    who, form = signed
    app = app_of(request)
    if change in ("disable", "enable"):
        admin.set_disabled(app, who, name, change == "disable")
        return back("/admin", f"{change}d account {name}")
    if change in ("grant-admin", "revoke-admin"):
        admin.set_admin(app, who, name, change == "grant-admin")
        return back("/admin", f"{name} is {'now' if change == 'grant-admin' else 'no longer'} an administrator")
    if change == "password":
        admin.set_password(app, who, name, _password(form))
        return back(_user_to(name), f"password of {name} set anew; {name} is signed out everywhere")
    raise NotFound(f"no account change {change!r} (disable, enable, grant-admin, revoke-admin, password)")


@router.get("/admin/tokens")
def tokens_page(request: Request, done: str | None = None, who=Depends(viewer)):
    from engine.app import admin
    from engine.app.principal import SCOPES

    return page(request, "admin_tokens.html.j2", who=who, tokens=admin.tokens(app_of(request), who),
                scopes=SCOPES, secret=None, made=None, done=done)


@router.post("/admin/tokens")
def create_token(request: Request, signed=Depends(poster)):
    """A token for oneself: its secret is on this response's page only (never stored)."""
    from engine.app import admin
    from engine.app.principal import SCOPES
    from engine.errors import UsageError

    who, form = signed
    days = (field(form, "days") or "90").strip()
    if not days.isdigit() or not 1 <= int(days[:6]) <= 365:
        raise UsageError(f"Days: the lifetime is a whole number of days (1 to 365), not {days[:20]!r}")
    app = app_of(request)
    secret, made = admin.create_own_token(app, who, field(form, "label") or "", field(form, "scope") or "read",
                                          int(days))
    return page(request, "admin_tokens.html.j2", who=who, tokens=admin.tokens(app, who), scopes=SCOPES,
                secret=secret, made=made, done=f"token {made['id']} issued")


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token(token_id: str, request: Request, signed=Depends(poster)):
    from engine.app import admin

    who, _ = signed
    revoked = admin.revoke_token(app_of(request), who, token_id)
    return back("/admin/tokens", f"revoked token {revoked['id']} of {revoked['owner']}")
