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

import json
import os

import click

DB_HELP = ("Incident database: a SQLite file (or sqlite:///PATH), or postgresql://USER@HOST/DB. "
           "Default: $PLAYBOOK_DB, else ~/.local/share/crisis-playbook/incidents.db.")
db_option = click.option("--db", metavar="PATH|URL", envvar="PLAYBOOK_DB", help=DB_HELP)
as_option = click.option("--as", "actor", metavar="NAME",
                         help="Who is making the change (recorded in the account log). "
                              "Default: $PLAYBOOK_ACTOR, else your login.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
stdin_option = click.option("--password-stdin", is_flag=True,
                            help="Read the password from the first line of standard input (for scripts).")


def _obj(ctx: click.Context) -> dict:
    return ctx.find_root().obj or {}


def _now(ctx: click.Context):
    clock = _obj(ctx).get("clock")  # tests inject theirs, as for every command
    if clock is None:
        from engine.clock import SystemClock

        clock = SystemClock()
    return clock.now()


def _accounts(ctx: click.Context, db: str | None, *, writes: bool = True):
    """The accounts of the database. A listing never creates a database: a missing file
    reads as no accounts, and an existing one is opened read-only."""
    from engine.accounts import Accounts
    from engine.store import default_location, open_store, sqlite_path

    location = db or default_location()
    path = sqlite_path(location)
    if not writes and path is not None and not path.exists():
        store = open_store("memory:")
    else:
        store = open_store(location, read_only=not writes and path is not None)
    ctx.call_on_close(store.close)
    return Accounts(store, hasher=_obj(ctx).get("hasher"))


def _by(name: str | None):
    """The administrator making the change: --as, else $PLAYBOOK_ACTOR, else the login
    name; where $PLAYBOOK_ACTOR_FINAL is set, the environment's name and no other."""
    from engine.app.principal import Principal
    from engine.errors import Refused, UsageError
    from engine.names import check_person

    given = (os.environ.get("PLAYBOOK_ACTOR") or "").strip()
    if os.environ.get("PLAYBOOK_ACTOR_FINAL", "").strip() not in ("", "0"):
        if not given:
            raise UsageError("PLAYBOOK_ACTOR_FINAL is set but PLAYBOOK_ACTOR is empty: "
                             "the wrapper that signs you in must set who you are")
        if name is not None and name.strip() != given:
            raise Refused(f"--as {name!r}: this installation fixes who is acting "
                          f"(PLAYBOOK_ACTOR_FINAL); you are signed in as {given!r}")
    if name is not None and not name.strip():
        raise UsageError("--as needs a person's name (it is empty)")
    name = name or given
    if not name:
        import getpass

        try:
            name = getpass.getuser()
        except Exception:  # no login name (containers): say so rather than guess
            raise UsageError("who is making the change? give --as NAME or set PLAYBOOK_ACTOR") from None
    return Principal.asserted(check_person("--as", name))


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


def _print_json(data) -> None:
    from engine.safetext import for_terminal

    click.echo(for_terminal(json.dumps(data, indent=2, ensure_ascii=False)))


def _say(text: str, *, err: bool = False) -> None:
    from engine.safetext import for_terminal

    click.echo(for_terminal(text), err=err)


def _user_line(u: dict) -> str:
    state = "disabled" if u["disabled"] else f"locked until {u['locked_until']}" if u["locked"] else "active"
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
    by = _by(actor)
    from engine.names import check_person

    checked = check_person("account name", name)  # before asking for a password
    password = _password(checked, password_stdin)
    added = _accounts(ctx, db).add_user(by, checked, password, _now(ctx), display_name=display_name, email=email)
    if as_json:
        return _print_json(added)
    _say(f"added account {added['name']} ({added['display_name']})")


@user.command(name="list")
@db_option
@json_option
@click.pass_context
def user_list(ctx, db, as_json):
    """Every account: name, whether it may sign in, display name and email."""
    users = _accounts(ctx, db, writes=False).users(_now(ctx))
    if as_json:
        return _print_json(users)
    if not users:
        return _say("No accounts. Create the first with: playbook user add NAME")
    for u in users:
        _say(_user_line(u))


def _toggle(ctx, name, db, actor, as_json, *, disable: bool):
    by = _by(actor)
    accounts = _accounts(ctx, db)
    changed = (accounts.disable if disable else accounts.enable)(by, name, _now(ctx))
    if as_json:
        return _print_json(changed)
    _say(f"{'disabled' if disable else 'enabled'} account {changed['name']}")


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


@user.command(name="passwd")
@click.argument("name")
@stdin_option
@db_option
@as_option
@click.pass_context
def user_passwd(ctx, name, password_stdin, db, actor):
    """Set a new password for NAME (asked for twice, hidden, or --password-stdin)."""
    by = _by(actor)
    accounts = _accounts(ctx, db)
    accounts.user(name)  # an unknown name is reported before a password is asked for
    accounts.set_password(by, name, _password(name, password_stdin), _now(ctx))
    _say(f"password of {name} changed")


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
    from engine.durations import parse_duration
    from engine.errors import UsageError

    by = _by(actor)
    try:
        life = parse_duration(lifetime)
    except ValueError as e:
        raise UsageError(f"--expires-in: {e}") from None
    secret, made = _accounts(ctx, db).create_token(by, owner, label, scope, _now(ctx), lifetime=life)
    if as_json:
        return _print_json({"secret": secret, "token": made})
    _say(f"token {made['id']} for {made['owner']} ({made['label']}), scope {made['scope']}, "
         f"expires {made['expires_at']}", err=True)
    click.echo(secret)
    _say("Copy it now: it is not stored and will not be shown again.", err=True)


@token.command(name="list")
@click.option("--owner", metavar="NAME", help="Only the tokens of this account.")
@db_option
@json_option
@click.pass_context
def token_list(ctx, owner, db, as_json):
    """Every token (never its secret): id, owner, label, scope, status, expiry, last use."""
    found = _accounts(ctx, db, writes=False).tokens(_now(ctx), owner)
    if as_json:
        return _print_json(found)
    if not found:
        return _say("No tokens.")
    for t in found:
        used = t["last_used_at"] or "never"
        _say(f"{t['id']}  {t['owner']:<16} {t['scope']:<8} {t['status']:<8} expires {t['expires_at']}  "
             f"last used {used}  {t['label']}")


@token.command(name="revoke")
@click.argument("token_id", metavar="ID")
@db_option
@as_option
@json_option
@click.pass_context
def token_revoke(ctx, token_id, db, actor, as_json):
    """Revoke the token ID (see: playbook token list); it stops working at once."""
    by = _by(actor)
    revoked = _accounts(ctx, db).revoke_token(by, token_id, _now(ctx))
    if as_json:
        return _print_json(revoked)
    _say(f"revoked token {revoked['id']} of {revoked['owner']} ({revoked['label']})")
