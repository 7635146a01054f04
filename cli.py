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
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Arguments that are not valid UTF-8 reach Python as lone surrogates, which no
        # database, hash or file name can hold: refuse them before anything runs.
        values = [("argument", a) for a in args]
        values += [(name, v) for name, v in os.environ.items() if name.startswith("PLAYBOOK_")]
        for where, value in values:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                shown = value.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
                raise click.UsageError(f"{where} {shown[:80]!r} is not valid UTF-8 text") from None
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except PlaybookError as e:
            from engine.safetext import for_terminal

            click.echo(for_terminal(f"error: {e}"), err=True)
            ctx.exit(e.exit_code)
        except MemoryError:
            from engine.errors import StoreError

            click.echo("error: out of memory: the input is too large to process; nothing was changed", err=True)
            ctx.exit(StoreError.exit_code)
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
    from engine.safetext import for_terminal  # JSON escapes C0 itself; C1 and bidi as \\uXXXX too

    click.echo(for_terminal(json.dumps(data, indent=2, ensure_ascii=False, default=str)))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crisis-playbook", prog_name="playbook")
@click.option("--tz", metavar="ZONE", envvar="PLAYBOOK_TZ",
              help="Show times in this zone, e.g. Europe/Madrid (stored times are always UTC).")
@click.pass_context
def main(ctx: click.Context, tz: str | None) -> None:
    """Crisis communication playbooks: validate them, run incidents through them,
    publish only approved posts, and keep a tamper-evident audit log.

    Exit codes: 0 ok, 1 internal error, 2 usage, 3 invalid playbook or scenario,
    4 not found, 5 refused, 6 conflict (retry), 7 integrity failure, 8 store
    unavailable, 9 overdue, 10 delivery failed.
    """
    ctx.ensure_object(dict)
    if tz:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from engine.errors import UsageError

        try:
            ctx.obj["tz"] = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"--tz: unknown time zone {tz!r} (use a name like Europe/Madrid or UTC)") from None


def _local(ctx: click.Context, text: str) -> str:
    """Human output for the terminal: control characters shown, not obeyed, and the UTC
    timestamps rewritten into the --tz zone, if one was given."""
    from engine.safetext import for_terminal

    zone = (ctx.find_root().obj or {}).get("tz")
    if zone is None:
        return for_terminal(text)
    import re
    from datetime import datetime

    def convert(m: "re.Match") -> str:
        try:
            moment = datetime.fromisoformat(m.group(1) + "+00:00").astimezone(zone)
        except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00:00Z in a note: shown as written
            return m.group(0)
        return moment.isoformat(timespec="milliseconds" if "." in m.group(1) else "seconds")

    return for_terminal(re.sub(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?)(?:Z|\+00:00)", convert, text))


# -- playbooks -----------------------------------------------------------------


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--strict", is_flag=True,
              help="Warnings of the public-text check are errors (exit 3).")
def validate(paths: tuple[str, ...], as_json: bool, strict: bool) -> None:
    """Check playbooks (files or folders; default: ./playbooks).

    Prints every problem as FILE:LINE:COL: FIELD: MESSAGE and exits 3 if any
    playbook is invalid. The public-text check's findings (texts that confirm
    someone is a patient, admissions, names of the public, shared macros without
    the template's language) are warnings, which leave the exit code alone unless
    --strict is given.
    """
    from engine.loader import validate_files

    results = validate_files(paths or ("playbooks",), strict=strict)
    if as_json:
        _print_json([r.to_json() for r in results])
    else:
        for r in results:
            if r.ok:
                click.echo(f"{r.path}: ok ({r.playbook.id} v{r.playbook.version})")
            for d in r.problems + ([] if strict else r.warnings):
                click.echo(d.format())
        bad = [r for r in results if not r.ok]
        problems = sum(len(r.problems) for r in bad)
        warnings = "" if strict else f", {sum(len(r.warnings) for r in results)} warning(s)"
        click.echo(f"{len(results)} playbook(s) checked: {len(results) - len(bad)} valid, "
                   f"{len(bad)} invalid ({problems} problem(s)){warnings}")
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


@main.command(name="playbooks")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def playbooks_(as_json: bool) -> None:
    """List the playbooks shipped with the tool (copy one with `playbook init`)."""
    from engine.resources import shipped_summaries

    entries = shipped_summaries()
    if as_json:
        _print_json(entries)
        return
    width = max(len(e["name"]) for e in entries)
    for e in entries:
        click.echo(f"{e['name']:<{width}}  {e['title']} (v{e['version']})")
    click.echo("\nCopy one to adapt it: playbook init --from NAME [FILE]")


@main.command()
@click.argument("dest", required=False, type=click.Path())
@click.option("--from", "name", required=True, metavar="NAME",
              help="The shipped playbook to start from (see `playbook playbooks`).")
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists.")
def init(dest: str | None, name: str, force: bool) -> None:
    """Copy a shipped playbook to DEST (a file or folder; default ./NAME.yaml) to adapt.

    The format's JSON Schema is written beside it (playbook.schema.json) for editor
    completion, unless one is there already. Check your edits with `playbook validate`.
    """
    from pathlib import Path

    from engine.resources import copy_shipped

    for path in copy_shipped(name, Path(dest) if dest else None, force=force):
        click.echo(f"wrote {path}")


# -- incidents -------------------------------------------------------------------


def _clock(ctx: click.Context):
    obj = ctx.find_root().obj or {}
    if "clock" in obj:  # tests and drills inject their clock here
        return obj["clock"]
    from engine.clock import SystemClock

    return SystemClock()


def _store(ctx: click.Context, db: str | None, *, read_only: bool = False, writes: bool = False):
    """The incident store. A command that only reads never creates a database: a
    missing file reads as an empty store (so a typo in --db creates nothing), and an
    existing one is opened read-only (so a user who may only read the file can run it).
    `writes`: the command reads mostly but may append (due, watch, bundle)."""
    from engine.store import default_location, open_store, sqlite_path

    location = db or default_location()
    path = sqlite_path(location)
    try:
        missing = path is not None and not path.exists()
    except OSError as e:  # a name too long for the file system, say
        from engine.errors import StoreError
        from engine.store.sqlite import shown

        raise StoreError(f"cannot use the database {shown(path)}: {e.strerror or e}") from None
    store = (open_store("memory:") if read_only and missing
             else open_store(location, read_only=read_only and not writes))
    ctx.call_on_close(store.close)
    return store


def _actor(name: str | None) -> str:
    """Who is acting: --as, else $PLAYBOOK_ACTOR, else the login name. Where the
    installation sets PLAYBOOK_ACTOR_FINAL=1 (a wrapper that signs people in), the
    environment's identity is final and a different --as is refused."""
    from engine.errors import Refused, UsageError
    from engine.names import check_person

    if name is not None and not name.strip():
        raise UsageError("--as needs a person's name (it is empty)")
    given = os.environ.get("PLAYBOOK_ACTOR")
    if os.environ.get("PLAYBOOK_ACTOR_FINAL", "").strip() not in ("", "0"):
        if not (given or "").strip():
            raise UsageError("PLAYBOOK_ACTOR_FINAL is set but PLAYBOOK_ACTOR is empty: "
                             "the wrapper that signs you in must set who you are")
        if name is not None and name.strip() != given.strip():
            raise Refused(f"--as {name!r}: this installation fixes who is acting "
                          f"(PLAYBOOK_ACTOR_FINAL); you are signed in as {given.strip()!r}")
        name = given
    if not name:
        name = given
    if not name:
        import getpass

        try:
            name = getpass.getuser()
        except Exception:  # no login name (containers): say so rather than guess
            raise UsageError("who is acting? give --as NAME or set PLAYBOOK_ACTOR") from None
    return check_person("--as", name)


db_option = click.option(
    "--db", metavar="PATH|URL", envvar="PLAYBOOK_DB",
    help="Incident database: a SQLite file (or sqlite:///PATH), or postgresql://USER@HOST/DB. "
         "Default: $PLAYBOOK_DB, else ~/.local/share/crisis-playbook/incidents.db.")
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
        click.echo(_local(ctx, status_text(state, now, actor)), nl=False)


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


@main.command()
@start_options
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
        region=os.environ.get("PLAYBOOK_REGION"),
    )
    if not as_json:
        click.echo(f"Started {state['id']}.\n")
    _warn_confidential(state)
    _show_state(ctx, state, actor, as_json)


def _warn_confidential(state: dict) -> None:
    """A confidential value typed into the title or a non-confidential input can reach a
    public post from there: say so now, not when an approver is refused."""
    from engine.leaks import echoes

    for field, name in echoes(state):
        where = "the title" if field == "title" else f"input {field}"
        click.echo(f"warning: {state['id']}: {where} contains the value of confidential input {name}; "
                   "a public post showing it can never be approved", err=True)


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

    store = _store(ctx, db, read_only=True)
    if incident is None:
        return _list(ctx, store, as_json)
    _show_state(ctx, service.status(store, incident), _actor(actor), as_json)


def _list(ctx, store, as_json: bool, **selection) -> None:
    """The listing: from the incidents' summaries alone (engine.index); ``--json`` prints
    each listed incident's whole status, so it reads their states."""
    from engine import service
    from engine.index import listed
    from engine.views import status_json, summary_row

    now = _clock(ctx).now()
    if as_json:
        _print_json([status_json(s, now, "") for s in service.list_incidents(store, **selection)])
        return
    rows = listed(store, **selection)
    if not rows:
        click.echo("No incidents.")
    else:  # one write: a listing of thousands of incidents is not thousands of writes
        click.echo("\n".join(_local(ctx, summary_row(row, now)) for row in rows))


@main.command(name="list")
@click.option("--all", "include_closed", is_flag=True, help="Include closed incidents.")
@click.option("--stage", help="Only incidents in this stage.")
@click.option("--playbook", "playbook_id", metavar="ID", help="Only incidents of this playbook id.")
@db_option
@json_option
@click.pass_context
def list_(ctx, include_closed, stage, playbook_id, db, as_json):
    """List incidents (open ones unless --all)."""
    _list(ctx, _store(ctx, db, read_only=True), as_json, include_closed=include_closed,
          stage=stage, playbook=playbook_id)


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
    """Set or correct input values of a running incident.

    `severity=LEVEL` changes the incident's severity (logged; clocks whose allowance
    depends on the severity follow it). Every bad value is reported; nothing is
    changed unless all are good."""
    from engine import service
    from engine.inputs import parse_pairs

    state = service.set_inputs(_store(ctx, db), _clock(ctx), _actor(actor), incident, parse_pairs(values, "set"))
    click.echo(f"{incident}: inputs updated.")
    _warn_confidential(state)


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
    from engine.safetext import for_terminal
    from engine.views import event_line

    for e in service.log(_store(ctx, db, read_only=True), incident):
        if as_json:
            click.echo(for_terminal(json.dumps(e.to_json(), ensure_ascii=False)))
            continue
        if e.seq == 1:
            drill = "  DRILL: an exercise, not a real incident" if e.data.get("drill") else ""
            click.echo(f"Audit log of {incident}{drill}")
        click.echo(_local(ctx, event_line(e)))


# -- clocks ----------------------------------------------------------------------


def _seconds(text: str, option: str) -> int:
    from engine.durations import parse_duration
    from engine.errors import UsageError

    try:
        return int(parse_duration(text).total_seconds())
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None


def _check_due(ctx, store, within: int, record: bool, as_json: bool, db: str | None = None) -> None:
    from engine import breaches
    from engine.errors import Overdue

    clock = _clock(ctx)
    items = breaches.due(store, clock.now(), within)
    recorded = breaches.record(store, clock, items) if record else []
    destinations = _destinations(db) if record else {}
    notices = breaches.notify(store, clock, destinations) if destinations else []
    overdue = [i for i in items if i.clock.overdue and not i.drill]  # a drill never pages anyone
    if as_json:
        _print_json({"items": [i.to_json() for i in items], "recorded": recorded, "notified": notices})
    elif not items:
        click.echo("Nothing is due" + (" in that window." if within else " or overdue."))
    for i in ([] if as_json else items):
        drill = "DRILL " if i.drill else ""
        click.echo(_local(ctx, f"{i.incident:<18} {drill}{i.clock.label:<36} {i.clock.describe()}"))
    for r in ([] if as_json else recorded):
        click.echo(f"recorded: {r['incident']} missed {r['label']}")
    for n in ([] if as_json else notices):
        click.echo(f"notified: {n['incident']} {n['label']} -> {n['target']}" if n["ok"] else
                   f"!! notice for {n['incident']} {n['label']} to {n['target']} FAILED (retried next check): {n['error']}")
    if overdue:
        raise Overdue(f"{len(overdue)} item(s) overdue")


@main.command()
@click.option("--within", default="0s", metavar="DURATION",
              help="Also list what falls due within this time (e.g. 30m).")
@click.option("--record/--no-record", default=True,
              help="Record newly missed deadlines and apply escalations (default), or only look.")
@db_option
@json_option
@click.pass_context
def due(ctx, within, record, db, as_json):
    """What is due or overdue across open incidents, most urgent first.

    Exits 9 while anything in a real incident is overdue (drills are listed but
    never page anyone); records each missed deadline once and applies the
    playbook's escalation, sending notices to the configured destinations."""
    within_s = 0 if within in ("0", "0s") else _seconds(within, "--within")
    _check_due(ctx, _store(ctx, db, read_only=True, writes=record), within_s, record, as_json, db)


@main.command()
@click.option("--interval", default="60s", metavar="DURATION", help="Time between checks.")
@click.option("--within", default="30m", metavar="DURATION", help="Also show what falls due within this time.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many checks.")
@db_option
@click.pass_context
def watch(ctx, interval, within, count, db):
    """Check the clocks periodically (like `due`), until interrupted.

    Safe beside other commands: each check is a few short transactions."""
    import time

    from engine.errors import Overdue

    pause, within_s = _seconds(interval, "--interval"), _seconds(within, "--within")
    store, n = _store(ctx, db, read_only=True, writes=True), 0
    while count is None or n < count:
        n += 1
        click.echo(f"-- check {n} at {_clock(ctx).now().isoformat(timespec='seconds')}")
        try:
            _check_due(ctx, store, within_s, True, False, db)
        except Overdue as e:
            click.echo(f"!! {e}")
        if count is None or n < count:
            time.sleep(pause)


# -- drills ----------------------------------------------------------------------


@main.command()
@start_options
@click.option("--scenario", type=click.Path(dir_okay=False),
              help="YAML file of timed injects: {injects: [{at: +10m, message: ...}]}.")
@json_option
@click.pass_context
def drill(ctx, playbook, title, severity, inputs, assign, scenario, db, actor, as_json):
    """Start a tabletop exercise (a DRILL incident on a simulated clock).

    Move its clock with `playbook advance-clock DRILL-... 45m`; see the outcome with
    `playbook drill-summary DRILL-...`. Injects at +0m are delivered at the start. Drills are marked everywhere and never
    delivered to real services."""
    from engine import service
    from engine.drills import load_scenario
    from engine.inputs import parse_pairs
    from engine.loader import load_playbook

    loaded = load_playbook(playbook)
    injects = load_scenario(scenario) if scenario else None
    actor = _actor(actor)
    state = service.start(
        _store(ctx, db), _clock(ctx), actor, loaded, title=title, severity=severity,
        inputs=parse_pairs(inputs, "--set"), assign=parse_pairs(assign, "--assign"),
        region=os.environ.get("PLAYBOOK_REGION"),
        drill=True, scenario=injects,
    )
    if not as_json:
        click.echo(f"Started drill {state['id']}" + (f" with {len(injects)} scripted inject(s)" if injects else "") + ".\n")
        for inject in state["injects"]:
            if inject["delivered_at"]:
                click.echo(f">> INJECT (at the start): {inject['message']}")
    _show_state(ctx, state, actor, as_json)


@main.command(name="advance-clock")
@click.argument("incident")
@click.argument("duration")
@db_option
@as_option
@click.pass_context
def advance_clock(ctx, incident, duration, db, actor):
    """Move a drill's simulated clock forward by DURATION (e.g. 45m).

    Injects fall due, missed deadlines are recorded and escalated. Refused for
    real incidents."""
    from engine.drills import advance_clock as advance

    actor = _actor(actor)
    result = advance(_store(ctx, db), _clock(ctx), actor, incident, _seconds(duration, "DURATION"))
    for inject in result["injects"]:
        click.echo(_local(ctx, f">> INJECT (scheduled {inject['at_seconds'] // 60}m after start): {inject['message']}"))
    for r in result["recorded"]:
        click.echo(f"!! missed: {r['label']}")
    click.echo("")
    _show_state(ctx, result["state"], actor, False)


@main.command(name="drill-summary")
@click.argument("incident")
@db_option
@json_option
@click.pass_context
def drill_summary(ctx, incident, db, as_json):
    """The drill's debrief: each clock (due, met at, how late), the first public post
    against its target, and each inject beside what the team did next."""
    from engine.drills import summary
    from engine.views import drill_text

    result = summary(_store(ctx, db, read_only=True), incident, _clock(ctx).now())
    if as_json:
        return _print_json(result)
    click.echo(_local(ctx, drill_text(result)), nl=False)


# -- databases -------------------------------------------------------------------


@main.group()
def db() -> None:
    """Manage incident databases: schema upgrades, moving to PostgreSQL."""


@db.command(name="upgrade")
@click.option("--db", "location", metavar="PATH|URL", envvar="PLAYBOOK_DB",
              help="The database to upgrade (default: $PLAYBOOK_DB, else the default SQLite file).")
def db_upgrade(location: str | None) -> None:
    """Apply the schema migrations the database has not had yet (creating it if new), and
    rebuild from the log the projections an older version of the tool stored."""
    from engine.incident import rebuild_stale
    from engine.store import default_location, open_store

    store = open_store(location or default_location(), create=True, migrate=True)
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
    from engine.incident import replay
    from engine.integrity import verify
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


# -- integrity -------------------------------------------------------------------


def _key_path(db: str | None):
    from engine.integrity import KEY_FILE, default_key_path

    from engine.store import local_folder

    if db and not os.environ.get("PLAYBOOK_KEY"):
        return local_folder(db) / KEY_FILE
    return default_key_path()


def _read_json_file(path: str, what: str) -> dict:
    from engine.errors import IntegrityError, NotFound

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such {what} file") from None
    except (OSError, ValueError) as e:
        raise IntegrityError(f"{path}: not a readable {what} ({e})") from None
    if not isinstance(data, dict):
        raise IntegrityError(f"{path}: not a {what} (expected a JSON object)")
    return data


@main.command()
@click.argument("incident", required=False)
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False),
              help="A checkpoint taken earlier: also detect a truncated or recomputed log.")
@click.option("--public-key", "public_key_file", type=click.Path(dir_okay=False),
              help="The signer's public key (PEM), obtained independently, to check checkpoints with.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the new checkpoint to this file (default: print it).")
@click.option("--bundle", "bundle_file", type=click.Path(dir_okay=False),
              help="Verify an incident bundle (playbook bundle) without the database.")
@click.option("--fast", is_flag=True,
              help="Skip refolding each incident's log through the rules (faster on huge logs).")
@click.option("--checkpoint-dir", "checkpoint_dir", type=click.Path(file_okay=False), envvar="PLAYBOOK_CHECKPOINTS",
              help="A folder outside the database that receives a copy of every checkpoint signed, and "
                   "whose checkpoints the database must still hold. Default: $PLAYBOOK_CHECKPOINTS.")
@db_option
@json_option
@click.pass_context
def verify(ctx, incident, checkpoint_file, public_key_file, output, bundle_file, fast, checkpoint_dir, db, as_json):
    """Verify the audit log's integrity (all incidents, or one).

    Verifying every incident also signs and prints a new checkpoint (-o FILE to
    save it). With --bundle FILE, verify an auditor's bundle offline instead.
    Exits 7 if anything was modified, inserted, reordered or removed."""
    from engine import integrity
    from engine.errors import IntegrityError
    from engine.events import utc_now_iso

    pem = _read_public_key(public_key_file)
    if bundle_file:
        from pathlib import Path

        from engine.bundle import verify_bundle

        report = verify_bundle(Path(bundle_file), public_key_pem=pem)
        if as_json:
            _print_json(report.to_json())
        if not report.ok:
            raise IntegrityError(f"{bundle_file} does NOT verify:\n" + "\n".join(f"  - {p}" for p in report.problems))
        if not as_json:
            click.echo(f"OK: {bundle_file}: {report.events} events verify against the bundle's signed checkpoint"
                       f"{' and the given public key' if pem else ''}.")
        return
    store = _store(ctx, db, read_only=True)
    if incident is not None and store.snapshot(incident) is None:
        from engine.errors import NotFound

        raise NotFound(f"no incident {incident!r} in this database (see: playbook list --all)")
    given = _read_json_file(checkpoint_file, "checkpoint") if checkpoint_file else None
    if incident is not None and output:
        from engine.errors import UsageError

        raise UsageError("a checkpoint covers every incident: run verify without INCIDENT to write one")
    from pathlib import Path

    from engine.rules import audit

    key_path = _key_path(db)
    folder = Path(checkpoint_dir) if checkpoint_dir else None
    trusted = pem or integrity.trusted_public_key(key_path)
    report = integrity.verify(store, incident, checkpoint=given, public_key_pem=trusted,
                              audit=None if fast else audit, checkpoint_dir=folder)
    if report.unchecked:
        report.ok = False
        report.problems.append(
            f"{report.unchecked} checkpoint(s) cannot be checked: the signing key {key_path} is missing or "
            "unreadable (restore it, or give the signer's public key with --public-key FILE)")
    if not report.ok:
        if as_json:
            _print_json(report.to_json())
        raise IntegrityError("the audit log does NOT verify:\n" + "\n".join(f"  - {p}" for p in report.problems))
    against = f" against {report.checkpoints} checkpoint(s)" if report.checkpoints else ""
    if incident is not None:  # only the incident was checked: sign nothing for the others
        if as_json:
            return _print_json(report.to_json())
        click.echo(f"OK: {report.events} events of {incident} verify{against}.")
        return
    db_path = _sqlite_file(db)
    if db_path is not None and (not db_path.exists() or not os.access(db_path, os.W_OK)):
        # a reader who may not write the database cannot store a checkpoint in it
        if as_json:
            return _print_json({**report.to_json(), "checkpoint": None})
        click.echo(f"OK: {report.events} events in {report.incidents} incident(s) verify{against}.")
        click.echo("No checkpoint signed: the database is read-only for you.")
        return
    out = _prepare_output(output) if output else None  # refuse a bad -o before signing anything
    try:
        signer = _store(ctx, db)
        cp = integrity.checkpoint(signer, integrity.load_or_create_key(key_path),
                                  utc_now_iso(_clock(ctx).now()), folder)
        if out is not None:
            with os.fdopen(out[0], "w", encoding="utf-8") as f:
                out = (None, out[1])
                json.dump(cp, f, indent=2)
                f.write("\n")
            os.replace(out[1], output)
            out = None
    finally:
        if out is not None:
            if out[0] is not None:
                os.close(out[0])
            Path(out[1]).unlink(missing_ok=True)
    if as_json:
        return _print_json({**report.to_json(), "checkpoint": cp})
    click.echo(f"OK: {report.events} events in {report.incidents} incident(s) verify{against}.")
    click.echo(f"New checkpoint {'written to ' + output if output else 'follows'} "
               "(keep a copy: verify --checkpoint FILE later detects truncation).")
    if not output:
        click.echo(json.dumps(cp, indent=2))


def _sqlite_file(db: str | None):
    """The SQLite file --db names (None for a server database)."""
    from engine.store import default_location, sqlite_path

    return sqlite_path(db or default_location())


def _prepare_output(output: str) -> tuple[int, str]:
    """A temporary file beside `output` (fd, name), or StoreError: checked before signing."""
    import tempfile
    from pathlib import Path

    from engine.errors import StoreError

    target = Path(output)
    _output_folder(output)
    try:
        if target.is_dir():
            raise StoreError(f"{output}: is a folder; give a file name (nothing was signed)")
        return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise StoreError(f"{output}: cannot write ({e.strerror or e}); nothing was signed") from None


def _read_public_key(path: str | None) -> str | None:
    from engine.errors import IntegrityError

    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            pem = f.read()
    except OSError as e:
        raise IntegrityError(f"{path}: cannot read the public key ({e.strerror})") from None
    except UnicodeDecodeError:
        raise IntegrityError(f"{path}: not a PEM public key (not text)") from None
    if "-----BEGIN PUBLIC KEY-----" not in pem:
        raise IntegrityError(f"{path}: not a PEM public key (no BEGIN PUBLIC KEY line)")
    return pem


@main.command()
@click.argument("incident")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (default: print).")
@db_option
@click.pass_context
def report(ctx, incident, fmt, output, db):
    """The auditor's report: roles, timeline, posts and approvals, metrics, integrity."""
    from engine.report import build_report, render_report

    from engine.integrity import trusted_public_key

    text = render_report(build_report(_store(ctx, db, read_only=True), incident, _clock(ctx).now(),
                                      public_key_pem=trusted_public_key(_key_path(db))), fmt)
    _write_or_print(text, output)


def _output_folder(output: str) -> None:
    """-o into a folder that does not exist is the user's to fix (exit 4), not a store failure."""
    from pathlib import Path

    from engine.errors import NotFound

    folder = Path(output).expanduser().parent
    if not folder.is_dir():
        raise NotFound(f"{output}: the folder {folder} does not exist (create it first, or choose another -o)")


def _write_or_print(text: str, output: str | None) -> None:
    from engine.errors import StoreError

    if not output:
        from engine.safetext import for_terminal

        click.echo(for_terminal(text), nl=not text.endswith("\n"))
        return
    _output_folder(output)
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise StoreError(f"{output}: cannot write ({e.strerror})") from None
    click.echo(f"written to {output}")


@main.command()
@click.argument("incident")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (default: stdout).")
@db_option
@click.pass_context
def export(ctx, incident, fmt, output, db):
    """Stream the incident's events as JSON Lines or CSV (memory stays flat)."""
    from engine.errors import StoreError
    from engine.report import export_events

    store = _store(ctx, db, read_only=True)
    if not output:
        export_events(store, incident, fmt, sys.stdout)
        return
    from engine.service import status

    status(store, incident)  # unknown incident: fail before creating the file
    _output_folder(output)
    try:
        with open(output, "w", encoding="utf-8", newline="") as f:
            n = export_events(store, incident, fmt, f)
    except OSError as e:
        raise StoreError(f"{output}: cannot write ({e.strerror})") from None
    click.echo(f"{n} events written to {output}", err=True)


@main.command()
@click.argument("incident")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The bundle file to write.")
@db_option
@click.pass_context
def bundle(ctx, incident, output, db):
    """Write one file an auditor can take away: events, pinned playbook, signed
    checkpoint and public key. Check it anywhere with: playbook verify --bundle FILE."""
    from pathlib import Path

    from engine.bundle import write_bundle
    from engine.integrity import load_or_create_key

    from engine.service import status

    store = _store(ctx, db, read_only=True, writes=True)
    status(store, incident)  # an unknown incident: refuse before a signing key is created
    _output_folder(output)
    manifest = write_bundle(store, incident, Path(output), load_or_create_key(_key_path(db)),
                            now=_clock(ctx).now())
    click.echo(f"{incident}: {manifest.get('events', '?')} events bundled into {output}")


@main.command()
@db_option
def key(db):
    """Print the public key that signs checkpoints (give it to auditors)."""
    from engine.integrity import load_or_create_key, public_key_pem

    click.echo(public_key_pem(load_or_create_key(_key_path(db))), nl=False)


# -- posts -----------------------------------------------------------------------


@main.command()
@click.argument("incident")
@click.argument("template")
@click.option("--channel", "channels", multiple=True, help="Only this channel (repeatable; default: all).")
@click.option("--lang", "langs", multiple=True, help="Only this language (repeatable; default: all).")
@click.option("--set", "values", multiple=True, metavar="NAME=VALUE", help="Input value for this render only.")
@click.option("--recipient", metavar="REF",
              help="For a per_recipient template: the recipient's reference (not their name); "
                   "their values with --set.")
@click.option("--recipients", "recipients_file", type=click.File("r", encoding="utf-8"),
              help="For a per_recipient template: a CSV file with a 'recipient' column and one column "
                   "per input; one post per row, all drafted or none.")
@db_option
@as_option
@json_option
@click.pass_context
def render(ctx, incident, template, channels, langs, values, recipient, recipients_file, db, actor, as_json):
    """Render TEMPLATE (of the current stage) into draft posts, with their lengths.

    An input the template uses but the incident has no value for can be given for
    this render only with --set NAME=VALUE (or for the incident with playbook set)."""
    from engine import posts
    from engine.inputs import parse_pairs
    from engine.views import post_block

    overrides = parse_pairs(values, "--set")
    recipients = None
    if recipient is not None and recipients_file is not None:
        from engine.errors import UsageError

        raise UsageError("give --recipient or --recipients, not both")
    if recipient is not None:
        recipients = [(recipient, {})]
    elif recipients_file is not None:
        recipients = _read_recipients(recipients_file)
    drafted = posts.render(_store(ctx, db), _clock(ctx), _actor(actor), incident, template,
                           channels=channels, langs=langs, overrides=overrides, recipients=recipients)
    if as_json:
        return _print_json(drafted)
    for post in drafted:
        click.echo(post_block(post) + "\n")


def _read_recipients(f) -> list[tuple[str, dict[str, str]]]:
    import csv

    from engine.errors import UsageError

    try:
        rows = list(csv.DictReader(f))
    except (csv.Error, UnicodeDecodeError) as e:
        raise UsageError(f"{f.name}: not a readable CSV file ({e})") from None
    if not rows or "recipient" not in rows[0]:
        raise UsageError(f"{f.name}: needs a header row with a 'recipient' column and at least one row")
    out = []
    for n, row in enumerate(rows, 2):
        if None in row or any(v is None for v in row.values()):
            raise UsageError(f"{f.name}:{n}: this row does not have one value per column")
        ref = row.pop("recipient").strip()
        out.append((ref, {k.strip(): v for k, v in row.items() if v.strip()}))
    return out


@main.command()
@click.argument("incident")
@db_option
@json_option
@click.pass_context
def drafts(ctx, incident, db, as_json):
    """List the incident's posts, their state and what each still needs."""
    from engine import posts
    from engine.views import post_block

    found = posts.drafts(_store(ctx, db, read_only=True), incident)
    if as_json:
        return _print_json(found)
    if not found:
        click.echo(f"{incident}: no posts yet (playbook render {incident} TEMPLATE).")
    for post in found:
        click.echo(post_block(post) + "\n")


@main.command()
@click.argument("incident")
@click.argument("post")
@click.option("--text", "text", help="The new text (for email: the body).")
@click.option("--file", "file", type=click.File("r", encoding="utf-8"), help="Read the new text from a file ('-': stdin).")
@click.option("--subject", help="A new subject (email only).")
@db_option
@as_option
@click.pass_context
def edit(ctx, incident, post, text, file, subject, db, actor):
    """Hand-edit POST: a new version, measured and scanned, that needs approval again."""
    from engine import posts
    from engine.errors import UsageError
    from engine.views import post_block

    if (text is None) == (file is None):
        raise UsageError("give the new text with exactly one of --text or --file")
    if file is not None:
        try:
            text = file.read()
        except UnicodeDecodeError:
            raise UsageError(f"{file.name}: not UTF-8 text") from None
    result = posts.edit(_store(ctx, db), _clock(ctx), _actor(actor), incident, post, text=text, subject=subject)
    click.echo(post_block(result))


@main.command()
@click.argument("incident")
@click.argument("post")
@click.option("--role", help="The role you approve as, when you hold several that are needed.")
@click.option("--version", type=int, required=True,
              help="The version you reviewed (see `drafts`); refused if it is not the current one.")
@click.option("--override-identifiers", "override", metavar="REASON",
              help="Approve although possible identifiers were found (the reason is logged).")
@db_option
@as_option
@click.pass_context
def approve(ctx, incident, post, role, version, override, db, actor):
    """Approve version --version of POST (e.g. public_ack/x/en) as one of your roles."""
    from engine import posts
    from engine.incident import approval_missing

    result = posts.approve(_store(ctx, db), _clock(ctx), _actor(actor), incident, post,
                           role=role, version=version, override=override)
    missing = approval_missing(result)
    tail = "fully approved; ready to publish" if not missing else "still needs " + ", ".join(missing)
    click.echo(f"{incident}: {post} v{result['version']} approved ({tail}).")


@main.command()
@click.argument("incident")
@click.argument("post")
@click.option("--reason", required=True, help="Why (recorded in the log).")
@click.option("--version", type=int, help="The version you reviewed.")
@db_option
@as_option
@click.pass_context
def reject(ctx, incident, post, reason, version, db, actor):
    """Reject the current version of POST; render again to make a new one."""
    from engine import posts

    result = posts.reject(_store(ctx, db), _clock(ctx), _actor(actor), incident, post, reason, version)
    click.echo(f"{incident}: {post} v{result['version']} rejected.")


@main.command()
@click.argument("incident")
@click.argument("post")
@click.option("--outbox", type=click.Path(file_okay=False), envvar="PLAYBOOK_OUTBOX",
              help="Outbox folder. Default: $PLAYBOOK_OUTBOX, else 'outbox' beside the database.")
@db_option
@as_option
@click.pass_context
def publish(ctx, incident, post, outbox, db, actor):
    """Publish POST: only a fully approved, unchanged version is written to the outbox."""
    from pathlib import Path

    from engine import release
    from engine.store import default_location

    store, clock, actor = _store(ctx, db), _clock(ctx), _actor(actor)
    folder = Path(outbox) if outbox else release.default_outbox(db or default_location())
    result = release.publish(store, clock, actor, incident, post, folder)
    click.echo(f"{incident}: {post} v{result['version']} published to {result['published'][-1]['outbox']}")
    destinations = _destinations(db)
    if destinations.get(result["channel"]) and not store.snapshot(incident).state["drill"]:
        _report_deliveries(incident, post, release.deliver(store, clock, actor, incident, post, destinations))


@main.group()
def outbox() -> None:
    """The outbox folder of published posts."""


@outbox.command()
@click.argument("incident", required=False)
@click.option("--outbox", "folder", type=click.Path(file_okay=False), envvar="PLAYBOOK_OUTBOX",
              help="Outbox folder. Default: $PLAYBOOK_OUTBOX, else 'outbox' beside the database.")
@db_option
@click.pass_context
def rebuild(ctx, incident, folder, db):
    """Re-create the outbox files of every publication in the log (of INCIDENT, or all).

    Missing or altered files are written again from the log; identical ones are left alone."""
    from pathlib import Path

    from engine import release
    from engine.store import default_location

    target = Path(folder) if folder else release.default_outbox(db or default_location())
    done = release.rebuild_outbox(_store(ctx, db, read_only=True), target, incident)
    for d in done:
        click.echo(f"{d['incident']}: {d['post']} v{d['version']} "
                   f"{'written to' if d['written'] else 'already in'} {d['path']}")
    click.echo(f"{sum(d['written'] for d in done)} of {len(done)} outbox file(s) written.")


def _destinations(db: str | None) -> dict:
    from engine.delivery import destinations_path, load_destinations
    from engine.store import default_location

    return load_destinations(destinations_path(db or default_location()))


def _report_deliveries(incident: str, post: str, attempts: list[dict]) -> None:
    for a in attempts:
        click.echo(f"{incident}: {post} delivered to {a['target']}")


@main.command()
@click.argument("incident")
@click.argument("post")
@db_option
@as_option
@click.pass_context
def deliver(ctx, incident, post, db, actor):
    """Send a published POST to its channel's configured destinations (retries failures).

    Destinations (apprise URLs per channel) are read from $PLAYBOOK_DESTINATIONS, else
    destinations.yaml beside the database. Exits 10 if any delivery failed."""
    from engine import release

    attempts = release.deliver(_store(ctx, db), _clock(ctx), _actor(actor), incident, post, _destinations(db))
    if not attempts:
        click.echo(f"{incident}: {post} was already delivered to every destination.")
    _report_deliveries(incident, post, attempts)


if __name__ == "__main__":  # pragma: no cover
    main()
