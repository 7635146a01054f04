"""The commands that read incidents: status and list (their module is all that ``playbook
status`` loads of the command line, so it stays small: the commands that write are in
:mod:`engine.cli.incidents`)."""

from __future__ import annotations

import click

from .common import app, as_option, clock, db_option, json_option, local, print_json, show_state, who


@click.command()
@click.argument("incident", required=False)
@db_option
@as_option
@json_option
@click.pass_context
def status(ctx, incident, db, actor, as_json):
    """Show an incident: stage, roles, tasks, clocks, and what can happen next.

    Without INCIDENT, list the open incidents."""
    from engine.app import reading as incidents

    handle = app(ctx, db)
    if incident is None:
        return show_listing(ctx, handle, as_json)
    person = who(handle, actor)
    show_state(ctx, incidents.status(handle, person, incident), person.name, as_json)


def show_listing(ctx, handle, as_json: bool, **selection) -> None:
    """The listing: from the incidents' summaries alone (engine.incidents.index); ``--json`` prints
    each listed incident's whole status, so it reads their states."""
    from engine.app import reading as incidents
    from engine.app.principal import Principal
    from engine.incidents.views import status_json, summary_rows

    reader = Principal.asserted("")  # reading names nobody: the listing is the same for all
    now = clock(ctx).now()
    if as_json:
        print_json([status_json(s, now, "") for s in incidents.listing(handle, reader, full=True, **selection)])
        return
    rows = incidents.listing(handle, reader, **selection)
    if not rows:
        click.echo("No incidents.")
    else:  # one write: a listing of thousands of incidents is not thousands of writes
        click.echo(local(ctx, summary_rows(rows, now)))


@click.command(name="list")
@click.option("--all", "include_closed", is_flag=True, help="Include closed incidents.")
@click.option("--stage", help="Only incidents in this stage.")
@click.option("--playbook", "playbook_id", metavar="ID", help="Only incidents of this playbook id.")
@db_option
@json_option
@click.pass_context
def list_(ctx, include_closed, stage, playbook_id, db, as_json):
    """List incidents (open ones unless --all)."""
    show_listing(ctx, app(ctx, db), as_json, include_closed=include_closed, stage=stage, playbook=playbook_id)
