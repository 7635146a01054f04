"""Commands that run incidents: start, status, list, roles, tasks, notes, inputs, stages, log."""

from __future__ import annotations

import json

import click

from .common import app, as_option, db_option, json_option, local, show_state, who
from .common import done as done_
from .reading import list_, show_listing, status  # noqa: F401  (their home is engine.cli.reading)


def start_options(f):
    """What starting an incident or a drill takes (shared by `start` and `drill`)."""
    for option in reversed([
        click.argument("playbook", type=click.Path()),
        click.option("--title", required=True, help="A short name for the incident."),
        click.option("--severity", help="One of the playbook's severities (default: the highest)."),
        click.option("--set", "inputs", multiple=True, metavar="NAME=VALUE", help="An input value (repeatable)."),
        click.option("--assign", multiple=True, metavar="ROLE=PERSON", help="A role holder (repeatable)."),
        db_option,
        as_option,
    ]):
        f = option(f)
    return f


def start_request(playbook, title, severity, inputs, assign, **more):
    from engine.app.incidents import StartRequest
    from engine.format.inputs import parse_pairs

    return StartRequest(playbook=playbook, title=title, severity=severity, inputs=parse_pairs(inputs, "--set"),
                        assign=parse_pairs(assign, "--assign"), **more)


def warn_confidential(state: dict, echoes) -> None:
    """A confidential value typed into the title or a non-confidential input can reach a
    public post from there: say so now, not when an approver is refused."""
    for field, name in echoes:
        where = "the title" if field == "title" else f"input {field}"
        click.echo(f"warning: {state['id']}: {where} contains the value of confidential input {name}; "
                   "a public post showing it can never be approved", err=True)


@click.command()
@start_options
@json_option
@click.pass_context
def start(ctx, playbook, title, severity, inputs, assign, db, actor, as_json):
    """Start an incident from PLAYBOOK and print its status."""
    from engine.app import incidents

    handle = app(ctx, db)
    request = start_request(playbook, title, severity, inputs, assign)
    person = who(handle, actor)
    started = incidents.start(handle, person, request)
    if not as_json:
        click.echo(f"Started {started.state['id']}.\n")
    warn_confidential(started.state, started.echoes)
    show_state(ctx, started.state, person.name, as_json)


@click.command()
@click.argument("incident")
@click.argument("role")
@click.argument("person")
@db_option
@as_option
@json_option
@click.pass_context
def assign(ctx, incident, role, person, db, actor, as_json):
    """Assign PERSON to ROLE in INCIDENT."""
    from engine.app import incidents

    handle = app(ctx, db)
    me = who(handle, actor)
    state = incidents.assign(handle, me, incident, role, person)
    done_(ctx, state, f"{incident}: {person} now holds {role}.", as_json, me.name)


@click.command()
@click.argument("incident")
@click.argument("role")
@click.argument("person")
@db_option
@as_option
@json_option
@click.pass_context
def unassign(ctx, incident, role, person, db, actor, as_json):
    """Remove PERSON from ROLE in INCIDENT."""
    from engine.app import incidents

    handle = app(ctx, db)
    me = who(handle, actor)
    state = incidents.unassign(handle, me, incident, role, person)
    done_(ctx, state, f"{incident}: {person} no longer holds {role}.", as_json, me.name)


@click.command()
@click.argument("incident")
@click.argument("name")
@click.option("--done/--undone", default=True, help="Mark the task done (default) or open again.")
@db_option
@as_option
@json_option
@click.pass_context
def task(ctx, incident, name, done, db, actor, as_json):
    """Tick off (or reopen) a task of the current stage."""
    from engine.app import incidents

    handle = app(ctx, db)
    me = who(handle, actor)
    state = incidents.task(handle, me, incident, name, done=done)
    done_(ctx, state, f"{incident}: task {name} {'done' if done else 'reopened'}.", as_json, me.name)


@click.command()
@click.argument("incident")
@click.argument("text")
@db_option
@as_option
@click.pass_context
def note(ctx, incident, text, db, actor):
    """Add a note to the incident's log."""
    from engine.app import incidents

    handle = app(ctx, db)
    incidents.note(handle, who(handle, actor), incident, text, answer=False)
    click.echo(f"{incident}: note added.")


@click.command(name="set")
@click.argument("incident")
@click.argument("values", nargs=-1, required=True, metavar="NAME=VALUE...")
@db_option
@as_option
@click.pass_context
def set_(ctx, incident, values, db, actor):
    """Set or correct input values of a running incident.

    `severity=LEVEL` changes the incident's severity (logged; clocks whose allowance
    depends on the severity follow it). Every bad value is reported; nothing is
    changed unless all are good."""
    from engine.app import incidents
    from engine.format.inputs import parse_pairs
    from engine.posts.leaks import echoes

    handle = app(ctx, db)
    state = incidents.set_inputs(handle, who(handle, actor), incident, parse_pairs(values, "set"))
    click.echo(f"{incident}: inputs updated.")
    warn_confidential(state, echoes(state))


@click.command()
@click.argument("incident")
@click.argument("trigger")
@click.option("--reason", help="Why (recorded in the log).")
@db_option
@as_option
@json_option
@click.pass_context
def advance(ctx, incident, trigger, reason, db, actor, as_json):
    """Fire TRIGGER: move the incident along one of the playbook's transitions.

    Refused, with every unmet condition listed, unless all guards hold."""
    from engine.app import incidents

    handle = app(ctx, db)
    me = who(handle, actor)
    state = incidents.advance(handle, me, incident, trigger, reason)
    if not as_json:
        click.echo(f"{incident}: {trigger} -> {state['stage']}.\n")
    show_state(ctx, state, me.name, as_json)


@click.command()
@click.argument("incident")
@click.option("--trigger", help="Which closing transition, when there are several.")
@click.option("--reason", help="Why (recorded in the log).")
@db_option
@as_option
@click.pass_context
def close(ctx, incident, trigger, reason, db, actor):
    """Close the incident through the playbook's transition into a terminal stage."""
    from engine.app import incidents

    handle = app(ctx, db)
    state = incidents.close(handle, who(handle, actor), incident, trigger, reason)
    click.echo(f"{incident}: closed (stage {state['stage']}).")


@click.command()
@click.argument("incident")
@click.option("--trigger", help="Which reopening transition, when there are several.")
@click.option("--reason", help="Why (recorded in the log).")
@db_option
@as_option
@click.pass_context
def reopen(ctx, incident, trigger, reason, db, actor):
    """Reopen a closed incident, where the playbook allows it."""
    from engine.app import incidents

    handle = app(ctx, db)
    state = incidents.reopen(handle, who(handle, actor), incident, trigger, reason)
    click.echo(f"{incident}: reopened (stage {state['stage']}).")


@click.command()
@click.argument("incident")
@db_option
@json_option
@click.pass_context
def log(ctx, incident, db, as_json):
    """Print the incident's audit log, oldest first."""
    from engine.app import incidents
    from engine.app.principal import Principal
    from engine.safetext import for_terminal
    from engine.incidents.views import event_line

    for e in incidents.log(app(ctx, db), Principal.asserted(""), incident):
        if as_json:
            click.echo(for_terminal(json.dumps(e.to_json(), ensure_ascii=False)))
            continue
        if e.seq == 1:
            drill = "  DRILL: an exercise, not a real incident" if e.data.get("drill") else ""
            click.echo(f"Audit log of {incident}{drill}")
        click.echo(local(ctx, event_line(e)))
