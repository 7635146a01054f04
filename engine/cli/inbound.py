"""Commands on inbound messages: inbound add|handle, and the inbox."""

from __future__ import annotations

import click

from .common import app, as_option, db_option, json_option, local, print_json, who


@click.group()
def inbound() -> None:
    """Inbound messages (mentions, reviews, calls): record one seen by hand, mark one handled."""


@inbound.command(name="add")
@click.argument("incident", required=False)
@click.option("--playbook", "playbook", metavar="NAME", help="Instead of INCIDENT: the library playbook it is "
              "about; recorded on its open incident, else kept for its monitors (which may open one).")
@click.option("--drill", is_flag=True, help="With --playbook: for a drill of it (its monitors open a DRILL "
              "incident and page nobody).")
@click.option("--source", required=True, help="Where it came from: phone, email, x, mastodon, reviews, ...")
@click.option("--text", required=True, help="What the message says (as received).")
@click.option("--author", help="Who sent it: a handle or a reference (it is kept in the log).")
@click.option("--posted-at", metavar="TIME", help="When it was posted (ISO 8601 with a zone, e.g. "
              "2026-03-14T08:10:00Z); its response clock runs from then. Default: now.")
@click.option("--source-id", metavar="ID", help="The source's own id of the message (recorded once per source).")
@click.option("--url", help="Where it can be seen.")
@click.option("--lang", help="Its language, if known (en, es, pt-BR, ...).")
@click.option("--reach", type=click.IntRange(min=0), metavar="N", help="The author's followers, if known.")
@click.option("--kind", default="mention", show_default=True,
              type=click.Choice(["mention", "reply", "direct", "review", "call", "other"]))
@db_option
@as_option
@json_option
@click.pass_context
def add(ctx, incident, playbook, drill, source, text, author, posted_at, source_id, url, lang, reach, kind, db, actor,
        as_json):
    """Record a message someone saw by hand (a phone call, a screenshot) on INCIDENT,
    or with --playbook NAME on that playbook's open incident (else kept for its monitors)."""
    from engine.app import inbound as use
    from engine.errors import UsageError

    if (incident is None) == (playbook is None):
        raise UsageError("give INCIDENT or --playbook NAME (the playbook the message is about), not both"
                         if incident else "give INCIDENT, or --playbook NAME when no incident is named")
    if drill and playbook is None:
        raise UsageError("--drill goes with --playbook NAME (a message for INCIDENT goes to that incident)")
    handle = app(ctx, db)
    raw = {"source": source, "text": text, "author": author, "posted_at": posted_at, "source_id": source_id,
           "url": url, "lang": lang, "kind": kind, **({"reach": reach} if reach is not None else {})}
    if playbook is not None:
        got = use.receive_for(handle, who(handle, actor), playbook, raw, drill=drill)
        incident = got.incident
    else:
        got = use.receive(handle, who(handle, actor), incident, raw)
    if as_json:
        return print_json(got.to_json())
    if got.incident is None:
        return click.echo(local(ctx, kept_text(got, f"a drill of {playbook}" if drill else playbook)))
    if got.opened:
        click.echo(local(ctx, f"Monitor {got.fired['monitor']} opened {got.opened} from "
                              f"{len(got.fired['messages'])} matching message(s)."))
        for line in pages_text(got.pages):
            click.echo(local(ctx, line))
    m = got.record
    if not got.new:
        return click.echo(f"{incident}: already recorded as {got.message} (same {source} id); nothing added.")
    click.echo(local(ctx, f"Recorded {got.message} on {incident} (posted {m['posted_at']})."))


def kept_text(got, playbook: str) -> str:
    """How a message kept for a playbook's monitors (no incident open) is reported."""
    if not got.new:
        return f"{playbook}: already kept as {got.message} (same source id); nothing added."
    matched = ", ".join(got.monitors) or "no monitor"
    text = f"Kept {got.message} for {playbook} (no incident open; matches {matched})."
    if got.note:
        text += f" {got.note}."
    if got.fired:
        text += (f"\nMonitor {got.fired['monitor']} fired ({len(got.fired['messages'])} matching message(s)): "
                 "paging to confirm.")
        text += "".join("\n" + line for line in pages_text(got.pages))
    return text


def pages_text(pages: list[dict]) -> list[str]:
    return [f"  paged {p['target']}" if p["ok"] else f"  !! {p['target'] + ': ' if p['target'] else ''}{p['error']}"
            for p in pages]


@inbound.command(name="handle")
@click.argument("incident")
@click.argument("message")
@click.option("--reason", required=True, type=click.Choice(["spam", "duplicate", "private", "no_reply_needed"]),
              help="Why it needs no published reply.")
@click.option("--note", default="", help="A word on what was done (e.g. called the patient back).")
@db_option
@as_option
@json_option
@click.pass_context
def handle_(ctx, incident, message, reason, note, db, actor, as_json):
    """Mark MESSAGE (M3) of INCIDENT as needing no published reply; its clock stops."""
    from engine.app import inbound as use

    handle = app(ctx, db)
    state = use.handle(handle, who(handle, actor), incident, message, reason, note)
    if as_json:
        return print_json({"incident": incident, "message": message, **state["inbound"][message]})
    click.echo(f"{incident}: {message} marked handled ({reason}).")


@click.command()
@click.argument("incident", required=False)
@click.option("--unanswered", is_flag=True, help="Only the messages still waiting for an answer.")
@click.option("--kept", is_flag=True, help="Instead: the messages kept for the playbooks' monitors (no incident "
              "of their playbook open), newest first.")
@db_option
@json_option
@click.pass_context
def inbox(ctx, incident, unanswered, kept, db, as_json):
    """Inbound messages of INCIDENT (or of every open incident), the longest waiting first."""
    from datetime import timedelta

    from engine.app import inbound as use
    from engine.app.principal import Principal
    from engine.format.durations import format_duration
    from engine.incidents.inbound import answer_text

    if kept:
        rows = use.kept(app(ctx, db), Principal.asserted(""))
        if as_json:
            return print_json(rows)
        if not rows:
            return click.echo("No messages kept.")
        for r in rows:
            matched = ", ".join(r["monitors"]) or "no monitor"
            who_ = r["author"] or "(unknown)"
            click.echo(local(ctx, f"{r['id']:<6} {r['playbook']:<20} {r['source']:<10} {who_:<20} "
                                  f"posted {r['posted_at']}  matches {matched}"))
            text = " ".join(r["text"].split())
            click.echo(local(ctx, "      " + (text if len(text) <= 100 else text[:99] + "\u2026")))
        return None
    rows = use.inbox(app(ctx, db), Principal.asserted(""), incident, unanswered=unanswered)
    if as_json:
        return print_json(rows)
    if not rows:
        return click.echo("No messages waiting." if unanswered else "No messages.")
    for r in rows:
        waited = format_duration(timedelta(seconds=r["waiting_seconds"]))
        if r["status"] == "waiting":
            late = "  OVERDUE" if r["overdue"] else (f"  due {r['due_at']}" if r["due_at"] else "")
            state = f"waiting {waited}{late}"
        else:
            state = f"{answer_text(r)} after {waited}"
        drill = " DRILL" if r["drill"] else ""
        who_ = r["author"] or "(unknown)"
        click.echo(local(ctx, f"{r['incident']}{drill} {r['message']:<5} {r['source']:<10} {who_:<20} {state}"))
        text = " ".join(r["text"].split())
        click.echo(local(ctx, "      " + (text if len(text) <= 100 else text[:99] + "\u2026")))


@click.command()
@click.option("--interval", default="60s", metavar="DURATION", help="Time between polls.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many polls (default: until interrupted).")
@click.option("--timeout", default="10s", metavar="DURATION", help="How long to wait for one source.")
@db_option
@json_option
@click.pass_context
def listen(ctx, interval, count, timeout, db, as_json):
    """Poll the configured feeds, Mastodon and Bluesky accounts, recording new messages.

    Sources are configured in $PLAYBOOK_SOURCES (else sources.yaml beside the
    database), never in playbooks. A source that fails is reported and polled again
    next time; webhooks are received by the team server (playbook serve)."""
    import time

    from engine.app import inbound as use
    from engine.errors import NotFound

    from .common import seconds

    pause, wait = seconds(interval, "--interval"), seconds(timeout, "--timeout")
    handle, n = app(ctx, db), 0
    polled = [s for s in use.sources(handle).values() if s.kind != "webhook"]
    if not polled:
        raise NotFound(f"no feed, mastodon or bluesky source in {handle.config.sources} (see: playbook listen --help)")
    while count is None or n < count:
        n += 1
        rows = use.listen_once(handle, timeout=max(wait, 1))
        if as_json:
            print_json(rows)
        for r in ([] if as_json else rows):
            if r["error"]:
                click.echo(local(ctx, f"!! {r['source']}: {r['error']} (polled again next time)"))
            else:
                where = f" on {r['incident']}" if r["incident"] else ""
                kept = f", {r['kept']} kept for monitors (no incident open)" if r.get("kept") else ""
                click.echo(local(ctx, f"{r['source']}: {r['new']} new of {r['seen']}{where}{kept}"))
            for opened in r.get("opened", []):
                click.echo(local(ctx, f"{r['source']}: a monitor opened {opened}"))
            for why in r["refused"]:
                click.echo(local(ctx, f"!! {r['source']}: refused {why}"))
        if count is None or n < count:
            time.sleep(pause)
