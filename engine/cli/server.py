"""``playbook serve``: the team server (needs the ``server`` extra)."""

from __future__ import annotations

import click

from .common import db_option


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (put a TLS reverse proxy in front for other machines).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@db_option
def serve(host, port, db):
    """Serve the web app and the API to people who sign in (accounts: playbook user add; tokens:
    playbook token create).

    The web app is at /, the API under /api/v1 (its OpenAPI document at /openapi.json). Every
    request is authenticated: a personal API token (Authorization: Bearer ...) or a browser session
    after signing in."""
    import os

    from engine.app.config import Config
    from engine.errors import UsageError

    try:
        import uvicorn
    except ImportError:
        raise UsageError("the team server needs the server extra: pip install 'crisis-playbook[server]'") from None
    from engine.server.app import create_app

    config = Config.resolve(os.environ, db=db)
    app = create_app(config)
    app.state.stores.get().schema_version()  # a database that cannot be opened stops the start, not a request
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=True, proxy_headers=True,
                server_header=False, date_header=True)
