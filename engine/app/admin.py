"""Use cases of the administrators: accounts, tokens and their audit trail, for the web
app's admin pages and ``/api/v1/admin``.

Each asks the one policy first (:func:`engine.incidents.policy.require_admin`, with the
token scope of the ``accounts`` action): an enabled account made an administrator in
the account log. The server host's command line (``playbook user ...``) works on the
accounts directly: whoever may write the database file is its administrator. Every
change is an event of the account log naming the administrator and how they signed in.
"""

from __future__ import annotations

from datetime import timedelta

from ..incidents.policy import require_admin, scope_of
from .context import App, acting
from .principal import Principal


def _book(app: App):
    from ..errors import UsageError

    book = app.directory
    if book is None:  # the local command line has no directory: it uses `playbook user`
        raise UsageError("administering accounts needs the team server; on the server host use: playbook user")
    return book


def _admin(app: App, who: Principal):
    """The accounts, once `who` is allowed to administer them (else Refused)."""
    book = _book(app)
    require_admin(who.name, admin=book.is_admin(who.name))
    return book


def is_admin(app: App, who: Principal) -> bool:
    """Whether `who` may administer accounts now (what the pages show a link for)."""
    if not who.allows(scope_of("accounts")) or app.directory is None:
        return False
    return app.directory.is_admin(who.name)


def users(app: App, who: Principal) -> list[dict]:
    with acting(who, scope_of("accounts")):
        return _admin(app, who).users(app.clock.now())


def add_user(app: App, who: Principal, name: str, password: str, *, display_name: str | None = None,
             email: str | None = None) -> dict:
    with acting(who, scope_of("accounts")):
        return _admin(app, who).add_user(who, name, password, app.clock.now(), display_name=display_name,
                                         email=email)


def set_disabled(app: App, who: Principal, name: str, disabled: bool) -> dict:
    """Disable (or enable) the account `name`; an administrator cannot disable their own."""
    from ..errors import Refused

    with acting(who, scope_of("accounts")):
        book = _admin(app, who)
        if disabled and name == who.name:
            raise Refused(f"{who.name}: you cannot disable your own account (another administrator can)")
        change = book.disable if disabled else book.enable
        return change(who, name, app.clock.now())


def set_password(app: App, who: Principal, name: str, password: str) -> dict:
    """Reset the password of `name` (it signs them out everywhere and lifts a lockout)."""
    with acting(who, scope_of("accounts")):
        return _admin(app, who).set_password(who, name, password, app.clock.now())


def set_admin(app: App, who: Principal, name: str, admin: bool) -> dict:
    """Make `name` an administrator, or no longer one (not oneself: another administrator,
    or the server host's command line, does that)."""
    from ..errors import Refused

    with acting(who, scope_of("accounts")):
        book = _admin(app, who)
        if not admin and name == who.name:
            raise Refused(f"{who.name}: you cannot take away your own administrator rights here "
                          "(another administrator can, or on the server host: playbook user revoke-admin)")
        change = book.grant_admin if admin else book.revoke_admin
        return change(who, name, app.clock.now())


def trail(app: App, who: Principal, name: str) -> list[dict]:
    """The account log's events about the account `name`, oldest first."""
    with acting(who, scope_of("accounts")):
        return _admin(app, who).trail(name)


def tokens(app: App, who: Principal) -> list[dict]:
    with acting(who, scope_of("accounts")):
        return _admin(app, who).tokens(app.clock.now())


def revoke_token(app: App, who: Principal, token_id: str) -> dict:
    with acting(who, scope_of("accounts")):
        return _admin(app, who).revoke_token(who, token_id, app.clock.now())


def create_own_token(app: App, who: Principal, label: str, scope: str, days: int | None = None) -> tuple[str, dict]:
    """A token for the administrator themselves: (its secret, shown only now; its entry).
    (A token used for this has the admin scope, which includes every other.)"""
    with acting(who, scope_of("accounts")):
        book = _admin(app, who)
        life = timedelta(days=days) if days is not None else None
        return book.create_token(who, who.name, label, scope, app.clock.now(), lifetime=life)
