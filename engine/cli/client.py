"""The command line as a client of a team server: login, logout, whoami.

After ``playbook login --server URL`` every incident, post, clock and audit command
goes to that server (engine.app.remote), as the account the token belongs to. The
token is saved for this user only (file mode 0600) and never printed.
"""

from __future__ import annotations

import os

import click

from .common import app


@click.command()
@click.option("--server", required=True, metavar="URL",
              help="The team server, e.g. https://playbook.hospital.example (plain http on this machine only).")
@click.option("--token-stdin", is_flag=True,
              help="Read the personal API token from the first line of standard input (for scripts).")
def login(server, token_stdin):
    """Sign in to a team server with a personal API token (playbook token create, on the server).

    The token is checked with the server, then saved with the server's address in
    $XDG_CONFIG_HOME/crisis-playbook/client.json (default ~/.config/...), readable by you
    only. From then on the commands work against the server, as the token's account."""
    from engine.app.config import client_file
    from engine.app.login import check_server_url, check_token, save_login
    from engine.errors import UsageError

    url = check_server_url(server)
    if token_stdin:
        import sys

        try:
            token = sys.stdin.readline().strip()
        except UnicodeDecodeError:
            raise UsageError("--token-stdin: the token is not valid UTF-8 text") from None
    else:
        token = click.prompt("Personal API token", hide_input=True, default="", show_default=False).strip()
    if not token:
        raise UsageError("no token given: create one on the server with: playbook token create NAME --scope SCOPE")
    me = check_token(url, token)
    path = client_file(os.environ)
    save_login(path, url, token, me["name"])
    click.echo(f"Signed in to {url} as {me['name']} (token scope {me.get('scope') or 'any'}); "
               f"saved in {path}, readable by you only.")


@click.command()
def logout():
    """Forget the saved sign-in (the token keeps working until it is revoked on the server)."""
    from engine.app.config import client_file
    from engine.app.login import remove_login

    path = client_file(os.environ)
    if remove_login(path):
        click.echo(f"Signed out: the token was removed from {path}. It keeps working until it is revoked "
                   "(on the server: playbook token revoke ID).")
    else:
        click.echo("Not signed in: no saved sign-in to remove.")
    if os.environ.get("PLAYBOOK_SERVER", "").strip():
        click.echo("Note: PLAYBOOK_SERVER is set, so commands still go to that server.")


@click.command()
@click.pass_context
def whoami(ctx):
    """Who the commands act as: the signed-in account on the server, or the local name."""
    from engine.app.identity import local_principal

    handle = app(ctx)
    if handle.remote is None:
        me = local_principal(handle.config, None)
        click.echo(f"{me.name} (asserted, not authenticated: the local database {handle.config.db})")
        return
    me = handle.remote.me()
    click.echo(f"{me['name']} on {handle.remote.server} (signed in by {me['auth']}, "
               f"token scope {me.get('scope') or 'any'})")
