"""The ``user`` and ``token`` command groups (attached to ``playbook`` by cli.py).

Run on the server host, against its database: whoever may write the database is its
administrator, so these commands need no sign-in; ``--as NAME`` (default
``$PLAYBOOK_ACTOR``, else the login name) is recorded as the asserted actor of every
change in the account log. Passwords are read from a hidden prompt with confirmation,
or from the first line of standard input with ``--password-stdin``; never from an
argument, where the process list and the shell's history would show them.

Like every command, errors are the engine's (printed with their exit code by the main
group), and the engine's modules are imported inside the commands.
"""

from __future__ import annotations

import click

from engine.cli.common import app, as_option, db_option, json_option, local, print_json, who

stdin_option = click.option("--password-stdin", is_flag=True,
                            help="Read the password from the first line of standard input (for scripts).")


def _accounts(ctx: click.Context, db: str | None, *, writes: bool = True):
    """The accounts of the database (engine.accounts.Accounts), the application handle's
    clock's time, and the handle. A listing never creates a database (App.store)."""
    from engine.accounts import Accounts

    handle = app(ctx, db)
    store = handle.store() if writes else handle.store(read_only=True)
    return Accounts(store, hasher=(ctx.find_root().obj or {}).get("hasher")), handle.clock.now(), handle


def _password(name: str, from_stdin: bool) -> str:
    from engine.errors import UsageError

    if from_stdin:
        import sys

        try:
            line = sys.stdin.readline()
        except UnicodeDecodeError:
            raise UsageError("--password-stdin: the password is not valid UTF-8 text") from None
        if not line:
            raise UsageError("--password-stdin: standard input is empty; give the password on its first line")
        return line.rstrip("\r\n")
    return click.prompt(f"New password for {name}", hide_input=True, confirmation_prompt=True,
                        show_default=False, err=True)


def _say(ctx: click.Context, text: str, *, err: bool = False) -> None:
    click.echo(local(ctx, text), err=err)


def _user_line(u: dict) -> str:
    state = "disabled" if u["disabled"] else f"locked until {u['locked_until']}" if u["locked"] else "active"
    state += ", admin" if u.get("admin") else ""
    return f"{u['name']:<20} {state:<36} {u['display_name']}" + (f" <{u['email']}>" if u["email"] else "")


# -- user ---------------------------------------------------------------------------


@click.group()
def user() -> None:
    """People's accounts on the team server (run on the server host)."""


@user.command(name="add")
@click.argument("name")
@click.option("--display-name", metavar="TEXT", help="The name shown to others (default: NAME).")
@click.option("--email", metavar="ADDRESS", help="The person's email address (optional).")
@stdin_option
@db_option
@as_option
@json_option
@click.pass_context
def user_add(ctx, name, display_name, email, password_stdin, db, actor, as_json):
    """Create the account NAME. The password (at least 12 characters, not the name) is
    asked for twice, hidden, or read with --password-stdin."""
    from engine.names import check_person

    accounts, now, handle = _accounts(ctx, db)
    by = who(handle, actor)
    checked = check_person("account name", name)  # before asking for a password
    added = accounts.add_user(by, checked, _password(checked, password_stdin), now,
                              display_name=display_name, email=email)
    if as_json:
        return print_json(added)
    _say(ctx, f"added account {added['name']} ({added['display_name']})")


@user.command(name="list")
@db_option
@json_option
@click.pass_context
def user_list(ctx, db, as_json):
    """Every account: name, whether it may sign in, display name and email."""
    accounts, now, _ = _accounts(ctx, db, writes=False)
    users = accounts.users(now)
    if as_json:
        return print_json(users)
    if not users:
        return _say(ctx, "No accounts. Create the first with: playbook user add NAME")
    for u in users:
        _say(ctx, _user_line(u))


def _toggle(ctx, name, db, actor, as_json, *, disable: bool):
    accounts, now, handle = _accounts(ctx, db)
    by = who(handle, actor)
    changed = (accounts.disable if disable else accounts.enable)(by, name, now)
    if as_json:
        return print_json(changed)
    _say(ctx, f"{'disabled' if disable else 'enabled'} account {changed['name']}")


@user.command(name="disable")
@click.argument("name")
@db_option
@as_option
@json_option
@click.pass_context
def user_disable(ctx, name, db, actor, as_json):
    """Disable the account NAME: it can no longer sign in, and its tokens stop working."""
    _toggle(ctx, name, db, actor, as_json, disable=True)


@user.command(name="enable")
@click.argument("name")
@db_option
@as_option
@json_option
@click.pass_context
def user_enable(ctx, name, db, actor, as_json):
    """Enable the account NAME again (this also lifts a lockout)."""
    _toggle(ctx, name, db, actor, as_json, disable=False)


def _admin_change(ctx, name, db, actor, as_json, *, grant: bool):
    accounts, now, handle = _accounts(ctx, db)
    by = who(handle, actor)
    changed = (accounts.grant_admin if grant else accounts.revoke_admin)(by, name, now)
    if as_json:
        return print_json(changed)
    _say(ctx, f"{changed['name']} is {'now' if grant else 'no longer'} an administrator")


@user.command(name="grant-admin")
@click.argument("name")
@db_option
@as_option
@json_option
@click.pass_context
def user_grant_admin(ctx, name, db, actor, as_json):
    """Make NAME an administrator: on the web app (/admin) and the API (/api/v1/admin) they
    may add, disable and enable accounts, reset passwords and revoke tokens."""
    _admin_change(ctx, name, db, actor, as_json, grant=True)


@user.command(name="revoke-admin")
@click.argument("name")
@db_option
@as_option
@json_option
@click.pass_context
def user_revoke_admin(ctx, name, db, actor, as_json):
    """NAME is no longer an administrator."""
    _admin_change(ctx, name, db, actor, as_json, grant=False)


@user.command(name="passwd")
@click.argument("name")
@stdin_option
@db_option
@as_option
@click.pass_context
def user_passwd(ctx, name, password_stdin, db, actor):
    """Set a new password for NAME (asked for twice, hidden, or --password-stdin)."""
    accounts, now, handle = _accounts(ctx, db)
    by = who(handle, actor)
    accounts.user(name)  # an unknown name is reported before a password is asked for
    accounts.set_password(by, name, _password(name, password_stdin), now)
    _say(ctx, f"password of {name} changed")


# -- token --------------------------------------------------------------------------


@click.group()
def token() -> None:
    """Personal API tokens for the command line and integrations (run on the server host)."""


@token.command(name="create")
@click.argument("owner")
@click.option("--label", required=True, metavar="TEXT", help="What the token is for (e.g. 'laptop CLI').")
@click.option("--scope", type=click.Choice(["read", "act", "approve", "admin"]), default="read", show_default=True,
              help="The most the token allows; each scope includes the ones before it.")
@click.option("--expires-in", "lifetime", default="90d", show_default=True, metavar="DURATION",
              help="How long the token lives (at most 365d).")
@db_option
@as_option
@json_option
@click.pass_context
def token_create(ctx, owner, label, scope, lifetime, db, actor, as_json):
    """Issue a token for the account OWNER. The secret is printed once, alone on standard
    output; it is not stored and cannot be shown again."""
    from datetime import timedelta

    from engine.cli.common import seconds

    life = timedelta(seconds=seconds(lifetime, "--expires-in"))
    accounts, now, handle = _accounts(ctx, db)
    secret, made = accounts.create_token(who(handle, actor), owner, label, scope, now, lifetime=life)
    if as_json:
        return print_json({"secret": secret, "token": made})
    _say(ctx, f"token {made['id']} for {made['owner']} ({made['label']}), scope {made['scope']}, "
              f"expires {made['expires_at']}", err=True)
    click.echo(secret)
    _say(ctx, "Copy it now: it is not stored and will not be shown again.", err=True)


@token.command(name="list")
@click.option("--owner", metavar="NAME", help="Only the tokens of this account.")
@db_option
@json_option
@click.pass_context
def token_list(ctx, owner, db, as_json):
    """Every token (never its secret): id, owner, label, scope, status, expiry, last use."""
    accounts, now, _ = _accounts(ctx, db, writes=False)
    found = accounts.tokens(now, owner)
    if as_json:
        return print_json(found)
    if not found:
        return _say(ctx, "No tokens.")
    for t in found:
        used = t["last_used_at"] or "never"
        _say(ctx, f"{t['id']}  {t['owner']:<16} {t['scope']:<8} {t['status']:<8} expires {t['expires_at']}  "
                  f"last used {used}  {t['label']}")


@token.command(name="revoke")
@click.argument("token_id", metavar="ID")
@db_option
@as_option
@json_option
@click.pass_context
def token_revoke(ctx, token_id, db, actor, as_json):
    """Revoke the token ID (see: playbook token list); it stops working at once."""
    accounts, now, handle = _accounts(ctx, db)
    revoked = accounts.revoke_token(who(handle, actor), token_id, now)
    if as_json:
        return print_json(revoked)
    _say(ctx, f"revoked token {revoked['id']} of {revoked['owner']} ({revoked['label']})")
