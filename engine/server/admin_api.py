"""The administrators' JSON API (``/api/v1/admin/...``): what the admin pages do.

Each endpoint calls one use case of :mod:`engine.app.admin`, which asks the one policy
(an administrator's session, or a token of scope ``admin`` of an administrator). No
response holds a password hash or a token's hash; a token's secret is in the answer
that issued it and nowhere else.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import Field

from engine.app.principal import Principal

from .auth import Signed, accounts
from .bodies import Body, Name, Short
from .errors import COMMON

router = APIRouter(prefix="/admin", tags=["admin"], responses=COMMON)


class NewUserBody(Body):
    name: Name
    password: Short
    display_name: Short | None = None
    email: Short | None = None


class PasswordBody(Body):
    password: Short


class NewTokenBody(Body):
    label: Short
    scope: Literal["read", "act", "approve", "admin"] = "read"
    days: int = Field(90, ge=1, le=365)


def _app(request: Request):
    from engine.app.context import App

    state = request.app.state
    book = accounts(request)
    return App(state.config, state.clock, shared_store=book.store, directory=book)


@router.get("/users", summary="Every account (never a password hash)")
def users(request: Request, who: Principal = Signed) -> list[dict]:
    from engine.app import admin

    return admin.users(_app(request), who)


@router.post("/users", status_code=201, summary="Add an account")
def add_user(body: NewUserBody, request: Request, who: Principal = Signed) -> dict:
    from engine.app import admin

    return admin.add_user(_app(request), who, body.name, body.password, display_name=body.display_name,
                          email=body.email)


@router.post("/users/{name}/disable", summary="Disable an account (its sessions end, its tokens stop)")
def disable(name: str, request: Request, who: Principal = Signed) -> dict:
    from engine.app import admin

    return admin.set_disabled(_app(request), who, name, True)


@router.post("/users/{name}/enable", summary="Enable an account (and lift a lockout)")
def enable(name: str, request: Request, who: Principal = Signed) -> dict:
    from engine.app import admin

    return admin.set_disabled(_app(request), who, name, False)


@router.post("/users/{name}/password", summary="Set a new password (signs the account out everywhere)")
def password(name: str, body: PasswordBody, request: Request, who: Principal = Signed) -> dict:
    from engine.app import admin

    return admin.set_password(_app(request), who, name, body.password)


@router.post("/users/{name}/grant-admin", summary="Make an account an administrator")
def grant_admin(name: str, request: Request, who: Principal = Signed) -> dict:
    from engine.app import admin

    return admin.set_admin(_app(request), who, name, True)


@router.post("/users/{name}/revoke-admin", summary="An account is no longer an administrator")
def revoke_admin(name: str, request: Request, who: Principal = Signed) -> dict:
    from engine.app import admin

    return admin.set_admin(_app(request), who, name, False)


@router.get("/users/{name}/trail", summary="The account log's events about an account, oldest first")
def trail(name: str, request: Request, who: Principal = Signed) -> list[dict]:
    from engine.app import admin

    return admin.trail(_app(request), who, name)


@router.get("/tokens", summary="Every token (never its secret or hash)")
def tokens(request: Request, who: Principal = Signed) -> list[dict]:
    from engine.app import admin

    return admin.tokens(_app(request), who)


@router.post("/tokens", status_code=201, summary="Issue a token for oneself; its secret is in this answer only")
def create_token(body: NewTokenBody, request: Request, who: Principal = Signed) -> dict:
    from engine.app import admin

    secret, made = admin.create_own_token(_app(request), who, body.label, body.scope, body.days)
    return {"secret": secret, "token": made}


@router.post("/tokens/{token_id}/revoke", summary="Revoke a token")
def revoke_token(token_id: str, request: Request, who: Principal = Signed) -> dict:
    from engine.app import admin

    return admin.revoke_token(_app(request), who, token_id)
