"""Commands on clocks: due, watch, drills and their simulated clocks."""

from __future__ import annotations

import click

from .common import app, as_option, clock, db_option, json_option, local, print_json, seconds, show_state, who
from .incidents import start_options, start_request


def check_due(ctx, handle, within: int, record: bool, as_json: bool) -> None:
    from engine.app import clocks
    from engine.app.principal import Principal
    from engine.errors import Overdue

    result = clocks.due(handle, Principal.asserted(""), within, record=record)
    items = result.items
    if as_json:
        print_json(result.to_json())
    elif not items:
        click.echo("Nothing is due" + (" in that window." if within else " or overdue."))
    if items and not as_json:  # one write: thousands of overdue items are not thousands of writes
        click.echo(local(ctx, due_lines(items)))
    for r in ([] if as_json else recorded_lines(result.recorded)):
        click.echo(f"recorded: {r['incident']} missed {r['label']}")
        for why in r.get("undelivered", []):
            click.echo(f"!! not delivered: {r['incident']} {r['label']}: {why}")
    for c in ([] if as_json else result.climbed):
        step = f"step {c['step'] + 1} of {c['of']}" + (f" (repeat {c['round']})" if c["round"] else "")
        who = "; ".join(f"{r} ({', '.join(p) or 'nobody'})" for r, p in c["notify"].items())
        click.echo(local(ctx, f"escalated: {c['incident']} {'DRILL ' if c['drill'] else ''}{c['label']}: {step}, "
                              f"notify {who}"))
        for why in c["undelivered"]:
            click.echo(local(ctx, f"!! not delivered: {c['incident']} {c['label']} {step}: {why}"))
    for n in ([] if as_json else result.notified):
        click.echo(f"notified: {n['incident']} {n['label']} -> {n['target']}" if n["ok"] else
                   f"!! notice for {n['incident']} {n['label']} to {n['target']} FAILED (retried next check): {n['error']}")
    if result.overdue:
        raise Overdue(f"{result.overdue} item(s) overdue")


def recorded_lines(recorded: list[dict]) -> list[dict]:
    """What ``due`` says it recorded: each missed clock, but an incident's missed messages
    as one (a burst is thousands; ``--json`` lists every one), where the first of them was."""
    lines: dict = {}  # in the order recorded: a clock by its place, an incident's messages by its id
    for n, r in enumerate(recorded):
        lines.setdefault(("messages", r["incident"]) if r["clock"].startswith("message:") else n, []).append(r)
    shown = []
    for group in lines.values():
        if len(group) == 1:
            shown.append(group[0])
            continue
        ids = sorted((g["clock"][len("message:"):] for g in group), key=lambda m: (len(m), m))  # M2 before M10
        named = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        shown.append({"incident": group[0]["incident"], "label": f"the reply target of {len(ids)} messages ({named})",
                      "undelivered": [w for g in group for w in g.get("undelivered", [])]})
    return shown


def due_lines(items) -> str:
    """``due``'s lines, one per item, as one text. The padded label texts are made once per
    distinct label: thousands of items share a few labels."""
    labels: dict[str, str] = {}
    lines = []
    for i in items:
        c = i.clock
        label = labels.get(c.label)
        if label is None:
            label = labels[c.label] = f"{c.label:<36} "
        lines.append(f"{i.incident:<18} {'DRILL ' if i.drill else ''}{label}{c.describe()}")
    return "\n".join(lines)


@click.command()
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
    within_s = 0 if within in ("0", "0s") else seconds(within, "--within")
    check_due(ctx, app(ctx, db), within_s, record, as_json)


@click.command()
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

    pause, within_s = seconds(interval, "--interval"), seconds(within, "--within")
    handle, n = app(ctx, db), 0
    while count is None or n < count:
        n += 1
        click.echo(f"-- check {n} at {clock(ctx).now().isoformat(timespec='seconds')}")
        try:
            check_due(ctx, handle, within_s, True, False)
        except Overdue as e:
            click.echo(f"!! {e}")
        if count is None or n < count:
            time.sleep(pause)


@click.command()
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
    from engine.app import incidents

    handle = app(ctx, db)
    request = start_request(playbook, title, severity, inputs, assign, drill=True, scenario=scenario)
    person = who(handle, actor)
    started = incidents.start(handle, person, request)
    state = started.state
    if not as_json:
        scripted = len(state.get("injects") or [])
        click.echo(f"Started drill {state['id']}" + (f" with {scripted} scripted inject(s)" if scripted else "") + ".\n")
        for inject in state["injects"]:
            if inject["delivered_at"]:
                click.echo(f">> INJECT (at the start): {inject['message']}")
    show_state(ctx, state, person.name, as_json)


@click.command(name="advance-clock")
@click.argument("incident")
@click.argument("duration")
@db_option
@as_option
@click.pass_context
def advance_clock(ctx, incident, duration, db, actor):
    """Move a drill's simulated clock forward by DURATION (e.g. 45m).

    Injects fall due, missed deadlines are recorded and escalated. Refused for
    real incidents."""
    from engine.app import clocks

    handle = app(ctx, db)
    me = who(handle, actor)
    result = clocks.advance_clock(handle, me, incident, seconds(duration, "DURATION"))
    for inject in result["injects"]:
        click.echo(local(ctx, f">> INJECT (scheduled {inject['at_seconds'] // 60}m after start): {inject['message']}"))
    for r in result["recorded"]:
        click.echo(f"!! missed: {r['label']}")
    click.echo("")
    show_state(ctx, result["state"], me.name, False)


@click.command(name="drill-summary")
@click.argument("incident")
@db_option
@json_option
@click.pass_context
def drill_summary(ctx, incident, db, as_json):
    """The drill's debrief: each clock (due, met at, how late), the first public post
    against its target, and each inject beside what the team did next."""
    from engine.app import clocks
    from engine.app.principal import Principal
    from engine.incidents.views import drill_text

    result = clocks.drill_summary(app(ctx, db), Principal.asserted(""), incident)
    if as_json:
        return print_json(result)
    click.echo(local(ctx, drill_text(result)), nl=False)


@click.command()
@click.argument("incident")
@click.argument("clock", required=False)
@click.option("--note", default="", help="What you are doing about it (logged).")
@db_option
@as_option
@json_option
@click.pass_context
def ack(ctx, incident, clock, note, db, actor, as_json):
    """Acknowledge INCIDENT's climbing escalation: its ladder stops paging.

    CLOCK (a clock's key as `due --json` shows it, such as target:first_public_post, or a
    message id such as M3) picks one escalation; without it, every climbing one. A member of
    the incident may acknowledge, and so may anyone a step of the ladder paged."""
    from engine.app import clocks

    handle = app(ctx, db)
    result = clocks.acknowledge(handle, who(handle, actor), incident, clock, note)
    if as_json:
        return print_json(result.to_json())
    for a in result.acknowledged:
        step = "" if a["step"] is None else f" (after step {a['step'] + 1})"
        click.echo(local(ctx, f"Acknowledged: {incident} {a['label']}{step}; its escalation stops climbing."))


@click.command()
@click.option("--at", "moment", metavar="TIME", help="Who is on call at this UTC time (default: now), "
              "e.g. 2026-03-14T22:00:00Z.")
@db_option
@json_option
@click.pass_context
def roster(ctx, moment, db, as_json):
    """Who holds each on-call role now (from the roster file), and whether a destination
    reaches them: the people an escalation ladder pages from outside the incident.

    Exits 0 when everyone listed is reachable, 10 when someone is not (or nobody holds a
    role), so a check before a crisis can run it."""
    from engine.app import clocks
    from engine.app.principal import Principal
    from engine.errors import DeliveryFailed, UsageError
    from engine.incidents.events import parse_iso

    at = None
    if moment:
        try:
            at = parse_iso(moment)
        except (ValueError, OverflowError):
            at = None
        if at is None or at.tzinfo is None:
            raise UsageError(f"--at: {moment!r} is not a time with its zone, such as 2026-03-14T22:00:00Z")
    handle = app(ctx, db)
    rows = clocks.on_call(handle, Principal.asserted(""), at)
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo(f"No on-call roster (expected at {handle.config.roster}).")
    for r in ([] if as_json else rows):
        if r["person"] is None:
            click.echo(f"!! {r['role']:<22} nobody on call")
            continue
        until = f" until {r['until']}" if r["until"] else ""
        reach = "" if r["reachable"] else "   !! not reachable: " + (
            f"{r['destination']} is not in the destinations file" if r["destination"] else "no destination")
        click.echo(local(ctx, f"   {r['role']:<22} {r['person']} ({r['shift']}{until}){reach}"))
    unreachable = [r for r in rows if not r["reachable"]]
    if unreachable:
        raise DeliveryFailed(f"{len(unreachable)} on-call role(s) or person(s) cannot be reached")
