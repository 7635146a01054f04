"""Commands on databases: schema upgrades, copies (to PostgreSQL, say)."""

from __future__ import annotations

import click


@click.group()
def db() -> None:
    """Manage incident databases: schema upgrades, moving to PostgreSQL."""


@db.command(name="upgrade")
@click.option("--db", "location", metavar="PATH|URL", envvar="PLAYBOOK_DB",
              help="The database to upgrade (default: $PLAYBOOK_DB, else the default SQLite file).")
def db_upgrade(location: str | None) -> None:
    """Apply the schema migrations the database has not had yet (creating it if new), and
    rebuild from the log the projections an older version of the tool stored."""
    import os

    from engine.app.config import database_location
    from engine.incidents.state import rebuild_stale
    from engine.store import open_store

    store = open_store(database_location(os.environ, location), create=True, migrate=True)
    try:
        applied = getattr(store, "applied_on_open", []) + store.upgrade()
        version = store.schema_version()
        rebuilt = rebuild_stale(store)
    finally:
        store.close()
    if applied:
        click.echo(f"applied migration(s) {', '.join(map(str, applied))}; schema is now {version}")
    else:
        click.echo(f"schema {version} is current")
    click.echo(f"rebuilt {len(rebuilt)} incident projection(s) from the log" if rebuilt
               else "every incident projection is current")


@db.command(name="copy")
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DST")
def db_copy(source: str, target: str) -> None:
    """Copy every incident from SRC to a new, empty DST, byte for byte, then verify DST.

    For example: playbook db copy incidents.db postgresql://playbook@db.internal/playbook
    """
    from engine.errors import IntegrityError
    from engine.incidents.state import replay
    from engine.audit.integrity import verify
    from engine.store import open_store
    from engine.store.copy import copy_database

    src = open_store(source, create=False)
    try:
        counts = copy_database(src, target, open_store=open_store)
    finally:
        src.close()
    click.echo(f"copied {counts['incidents']} incident(s), {counts['events']} event(s) and "
               f"{counts['checkpoints']} checkpoint(s) (database id {counts['database_id']})")
    dst = open_store(target, create=False)
    try:
        result = verify(dst, replay=replay)
    finally:
        dst.close()
    if not result.ok:
        raise IntegrityError(f"the copy at {target} does NOT verify:\n  " + "\n  ".join(result.problems))
    click.echo(f"verified at the destination: {result.events} events of {result.incidents} incident(s), "
               f"against {result.checkpoints} checkpoint(s)")
