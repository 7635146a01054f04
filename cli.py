"""The ``playbook`` command line.

Thin by design: each command parses its arguments, calls one engine function and
prints the result. Engine errors are caught in one place (:class:`_Group`) and
turned into a message on stderr and the error's documented exit code.
Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import json
import os
import sys

import click

from engine.errors import PlaybookError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except PlaybookError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(e.exit_code)
        except BrokenPipeError:  # output piped into head/less that closed early
            sys.stderr.close()
            ctx.exit(0)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as e:  # a bug: say so plainly, keep the traceback for debugging
            if os.environ.get("PLAYBOOK_DEBUG"):
                raise
            click.echo(f"internal error: {type(e).__name__}: {e}\n"
                       "This is a bug; run again with PLAYBOOK_DEBUG=1 for details.", err=True)
            ctx.exit(1)


def _print_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crisis-playbook", prog_name="playbook")
def main() -> None:
    """Crisis communication playbooks: validate them, run incidents through them,
    publish only approved posts, and keep a tamper-evident audit log.

    Exit codes: 0 ok, 1 internal error, 2 usage, 3 invalid playbook, 4 not found,
    5 refused, 6 conflict (retry), 7 integrity failure, 8 store unavailable,
    9 overdue, 10 delivery failed.
    """


# -- playbooks -----------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def validate(paths: tuple[str, ...], as_json: bool) -> None:
    """Check playbooks (files or folders; default: ./playbooks).

    Prints every problem as FILE:LINE:COL: FIELD: MESSAGE and exits 3 if any
    playbook is invalid.
    """
    from engine.loader import validate_files

    results = validate_files(paths or ("playbooks",))
    if as_json:
        _print_json([r.to_json() for r in results])
    else:
        for r in results:
            if r.ok:
                click.echo(f"{r.path}: ok ({r.playbook.id} v{r.playbook.version})")
            for d in r.diagnostics:
                click.echo(d.format())
        bad = [r for r in results if not r.ok]
        problems = sum(len(r.diagnostics) for r in bad)
        click.echo(f"{len(results)} playbook(s) checked: {len(results) - len(bad)} valid, "
                   f"{len(bad)} invalid ({problems} problem(s))")
    if not results or any(not r.ok for r in results):
        sys.exit(3)


@main.command()
def schema() -> None:
    """Print the playbook format's JSON Schema (for editor completion)."""
    from engine.playbook import json_schema

    _print_json(json_schema())


@main.command()
@click.argument("playbook", type=click.Path())
def graph(playbook: str) -> None:
    """Print the stage diagram as Mermaid (paste into any Markdown viewer)."""
    from engine.describe import mermaid
    from engine.loader import load_playbook

    click.echo(mermaid(load_playbook(playbook).playbook), nl=False)


@main.command()
@click.argument("playbook", type=click.Path())
def show(playbook: str) -> None:
    """Summarise a playbook's roles, inputs, stages, transitions and templates."""
    from engine.describe import summary
    from engine.loader import load_playbook

    click.echo(summary(load_playbook(playbook).playbook), nl=False)


# -- incidents -------------------------------------------------------------------


def _clock(ctx: click.Context):
    obj = ctx.find_root().obj or {}
    if "clock" in obj:  # tests and drills inject their clock here
        return obj["clock"]
    from engine.clock import SystemClock

    return SystemClock()


def _store(ctx: click.Context, db: str | None):
    from engine.store import default_db_path, open_store

    store = open_store(db or default_db_path())
    ctx.call_on_close(store.close)
    return store


def _actor(name: str | None) -> str:
    if name:
        return name
    if os.environ.get("PLAYBOOK_ACTOR"):
        return os.environ["PLAYBOOK_ACTOR"]
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): say so rather than guess
        from engine.errors import UsageError

        raise UsageError("who is acting? give --as NAME or set PLAYBOOK_ACTOR") from None


db_option = click.option(
    "--db", metavar="PATH", envvar="PLAYBOOK_DB",
    help="Incident database (SQLite file). Default: $PLAYBOOK_DB, else "
         "~/.local/share/crisis-playbook/incidents.db.")
as_option = click.option(
    "--as", "actor", metavar="NAME",
    help="Who is acting (recorded on every event). Default: $PLAYBOOK_ACTOR, else your login.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _show_state(ctx: click.Context, state: dict, actor: str, as_json: bool) -> None:
    from engine.views import status_json, status_text

    now = _clock(ctx).now()
    if as_json:
        _print_json(status_json(state, now, actor))
    else:
        click.echo(status_text(state, now, actor), nl=False)


@main.command()
@click.argument("playbook", type=click.Path())
@click.option("--title", required=True, help="A short name for the incident.")
@click.option("--severity", help="One of the playbook's severities (default: the highest).")
@click.option("--set", "inputs", multiple=True, metavar="NAME=VALUE", help="An input value (repeatable).")
@click.option("--assign", multiple=True, metavar="ROLE=PERSON", help="A role holder (repeatable).")
@db_option
@as_option
@json_option
@click.pass_context
def start(ctx, playbook, title, severity, inputs, assign, db, actor, as_json):
    """Start an incident from PLAYBOOK and print its status."""
    from engine import service
    from engine.inputs import parse_pairs
    from engine.loader import load_playbook

    loaded = load_playbook(playbook)
    actor = _actor(actor)
    state = service.start(
        _store(ctx, db), _clock(ctx), actor, loaded, title=title, severity=severity,
        inputs=parse_pairs(inputs, "--set"), assign=parse_pairs(assign, "--assign"),
    )
    if not as_json:
        click.echo(f"Started {state['id']}.\n")
    _show_state(ctx, state, actor, as_json)


@main.command()
@click.argument("incident", required=False)
@db_option
@as_option
@json_option
@click.pass_context
def status(ctx, incident, db, actor, as_json):
    """Show an incident: stage, roles, tasks, clocks, and what can happen next.

    Without INCIDENT, list the open incidents."""
    from engine import service

    store = _store(ctx, db)
    if incident is None:
        return _list(ctx, service.list_incidents(store), as_json)
    _show_state(ctx, service.status(store, incident), _actor(actor), as_json)


def _list(ctx, states: list[dict], as_json: bool) -> None:
    from engine.views import incident_row, status_json

    now = _clock(ctx).now()
    if as_json:
        _print_json([status_json(s, now, "") for s in states])
        return
    if not states:
        click.echo("No incidents.")
    for s in states:
        click.echo(incident_row(s, now))


@main.command(name="list")
@click.option("--all", "include_closed", is_flag=True, help="Include closed incidents.")
@click.option("--stage", help="Only incidents in this stage.")
@click.option("--playbook", "playbook_id", metavar="ID", help="Only incidents of this playbook id.")
@db_option
@json_option
@click.pass_context
def list_(ctx, include_closed, stage, playbook_id, db, as_json):
    """List incidents (open ones unless --all)."""
    from engine import service

    _list(ctx, service.list_incidents(_store(ctx, db), include_closed=include_closed,
                                      stage=stage, playbook=playbook_id), as_json)


def _done(ctx, state: dict, message: str, as_json: bool, actor: str) -> None:
    if as_json:
        from engine.views import status_json

        _print_json(status_json(state, _clock(ctx).now(), actor))
    else:
        click.echo(message)


@main.command()
@click.argument("incident")
@click.argument("role")
@click.argument("person")
@db_option
@as_option
@json_option
@click.pass_context
def assign(ctx, incident, role, person, db, actor, as_json):
    """Assign PERSON to ROLE in INCIDENT."""
    from engine import service

    actor = _actor(actor)
    state = service.assign(_store(ctx, db), _clock(ctx), actor, incident, role, person)
    _done(ctx, state, f"{incident}: {person} now holds {role}.", as_json, actor)


@main.command()
@click.argument("incident")
@click.argument("role")
@click.argument("person")
@db_option
@as_option
@json_option
@click.pass_context
def unassign(ctx, incident, role, person, db, actor, as_json):
    """Remove PERSON from ROLE in INCIDENT."""
    from engine import service

    actor = _actor(actor)
    state = service.unassign(_store(ctx, db), _clock(ctx), actor, incident, role, person)
    _done(ctx, state, f"{incident}: {person} no longer holds {role}.", as_json, actor)


@main.command()
@click.argument("incident")
@click.argument("name")
@click.option("--done/--undone", default=True, help="Mark the task done (default) or open again.")
@db_option
@as_option
@json_option
@click.pass_context
def task(ctx, incident, name, done, db, actor, as_json):
    """Tick off (or reopen) a task of the current stage."""
    from engine import service

    actor = _actor(actor)
    state = service.task(_store(ctx, db), _clock(ctx), actor, incident, name, done=done)
    _done(ctx, state, f"{incident}: task {name} {'done' if done else 'reopened'}.", as_json, actor)


@main.command()
@click.argument("incident")
@click.argument("text")
@db_option
@as_option
@click.pass_context
def note(ctx, incident, text, db, actor):
    """Add a note to the incident's log."""
    from engine import service

    service.note(_store(ctx, db), _clock(ctx), _actor(actor), incident, text)
    click.echo(f"{incident}: note added.")


@main.command(name="set")
@click.argument("incident")
@click.argument("values", nargs=-1, required=True, metavar="NAME=VALUE...")
@db_option
@as_option
@click.pass_context
def set_(ctx, incident, values, db, actor):
    """Set or correct input values of a running incident."""
    from engine import service
    from engine.inputs import parse_pairs

    service.set_inputs(_store(ctx, db), _clock(ctx), _actor(actor), incident, parse_pairs(values, "set"))
    click.echo(f"{incident}: inputs updated.")


@main.command()
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
    from engine import service

    actor = _actor(actor)
    state = service.advance(_store(ctx, db), _clock(ctx), actor, incident, trigger, reason)
    if not as_json:
        click.echo(f"{incident}: {trigger} -> {state['stage']}.\n")
    _show_state(ctx, state, actor, as_json)


@main.command()
@click.argument("incident")
@click.option("--trigger", help="Which closing transition, when there are several.")
@click.option("--reason", help="Why (recorded in the log).")
@db_option
@as_option
@click.pass_context
def close(ctx, incident, trigger, reason, db, actor):
    """Close the incident through the playbook's transition into a terminal stage."""
    from engine import service

    state = service.close(_store(ctx, db), _clock(ctx), _actor(actor), incident, trigger, reason)
    click.echo(f"{incident}: closed (stage {state['stage']}).")


@main.command()
@click.argument("incident")
@click.option("--trigger", help="Which reopening transition, when there are several.")
@click.option("--reason", help="Why (recorded in the log).")
@db_option
@as_option
@click.pass_context
def reopen(ctx, incident, trigger, reason, db, actor):
    """Reopen a closed incident, where the playbook allows it."""
    from engine import service

    state = service.reopen(_store(ctx, db), _clock(ctx), _actor(actor), incident, trigger, reason)
    click.echo(f"{incident}: reopened (stage {state['stage']}).")


@main.command()
@click.argument("incident")
@db_option
@json_option
@click.pass_context
def log(ctx, incident, db, as_json):
    """Print the incident's audit log, oldest first."""
    from engine import service
    from engine.views import event_line

    for e in service.log(_store(ctx, db), incident):
        click.echo(json.dumps(e.to_json(), ensure_ascii=False) if as_json else event_line(e))


if __name__ == "__main__":  # pragma: no cover
    main()
