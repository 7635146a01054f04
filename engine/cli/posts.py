"""Commands on posts: render, drafts, edit, approve, reject, publish, outbox, deliver."""

from __future__ import annotations

import click

from .common import app, as_option, db_option, json_option, print_json, who


@click.command()
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
@click.option("--reply-to", metavar="MESSAGE",
              help="The inbound message this post answers (M3, see playbook inbox): published, it "
                   "marks the message answered; it goes to the message's channel.")
@db_option
@as_option
@json_option
@click.pass_context
def render(ctx, incident, template, channels, langs, values, recipient, recipients_file, reply_to, db, actor,
           as_json):
    """Render TEMPLATE (of the current stage) into draft posts, with their lengths.

    An input the template uses but the incident has no value for can be given for
    this render only with --set NAME=VALUE (or for the incident with playbook set)."""
    from engine.app import releases
    from engine.format.inputs import parse_pairs
    from engine.incidents.views import post_block

    overrides = parse_pairs(values, "--set")
    recipients = None
    if recipient is not None and recipients_file is not None:
        from engine.errors import UsageError

        raise UsageError("give --recipient or --recipients, not both")
    if recipient is not None:
        recipients = [(recipient, {})]
    elif recipients_file is not None:
        recipients = read_recipients(recipients_file)
    handle = app(ctx, db)
    request = releases.RenderRequest(incident=incident, template=template, channels=channels, langs=langs,
                                     overrides=overrides, recipients=recipients, reply_to=reply_to)
    drafted = releases.render(handle, who(handle, actor), request)
    if as_json:
        return print_json(drafted)
    for post in drafted:
        click.echo(post_block(post) + "\n")


def read_recipients(f) -> list[tuple[str, dict[str, str]]]:
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


@click.command()
@click.argument("incident")
@db_option
@json_option
@click.pass_context
def drafts(ctx, incident, db, as_json):
    """List the incident's posts, their state and what each still needs."""
    from engine.app import releases
    from engine.app.principal import Principal
    from engine.incidents.views import post_block

    found = releases.drafts(app(ctx, db), Principal.asserted(""), incident)
    if as_json:
        return print_json(found)
    if not found:
        click.echo(f"{incident}: no posts yet (playbook render {incident} TEMPLATE).")
    for post in found:
        click.echo(post_block(post) + "\n")


@click.command()
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
    from engine.app import releases
    from engine.errors import UsageError
    from engine.incidents.views import post_block

    if (text is None) == (file is None):
        raise UsageError("give the new text with exactly one of --text or --file")
    if file is not None:
        try:
            text = file.read()
        except UnicodeDecodeError:
            raise UsageError(f"{file.name}: not UTF-8 text") from None
    handle = app(ctx, db)
    click.echo(post_block(releases.edit(handle, who(handle, actor), incident, post, text=text, subject=subject)))


@click.command()
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
    from engine.app import releases

    handle = app(ctx, db)
    result = releases.approve(handle, who(handle, actor), incident, post, role=role, version=version,
                              override=override)
    tail = "fully approved; ready to publish" if not result.missing else "still needs " + ", ".join(result.missing)
    click.echo(f"{incident}: {post} v{result.post['version']} approved ({tail}).")


@click.command()
@click.argument("incident")
@click.argument("post")
@click.option("--reason", required=True, help="Why (recorded in the log).")
@click.option("--version", type=int, help="The version you reviewed.")
@db_option
@as_option
@click.pass_context
def reject(ctx, incident, post, reason, version, db, actor):
    """Reject the current version of POST; render again to make a new one."""
    from engine.app import releases

    handle = app(ctx, db)
    result = releases.reject(handle, who(handle, actor), incident, post, reason, version)
    click.echo(f"{incident}: {post} v{result['version']} rejected.")


def report_deliveries(incident: str, post: str, attempts: list[dict]) -> None:
    for a in attempts:
        click.echo(f"{incident}: {post} delivered to {a['target']}")


@click.command()
@click.argument("incident")
@click.argument("post")
@click.option("--outbox", type=click.Path(file_okay=False), envvar="PLAYBOOK_OUTBOX",
              help="Outbox folder. Default: $PLAYBOOK_OUTBOX, else 'outbox' beside the database.")
@db_option
@as_option
@click.pass_context
def publish(ctx, incident, post, outbox, db, actor):
    """Publish POST: only a fully approved, unchanged version is written to the outbox."""
    from engine.app import releases

    handle = app(ctx, db, outbox=outbox)
    me = who(handle, actor)
    try:
        result = releases.publish(handle, me, incident, post)
    except releases.DeliveryAfterPublish as e:  # published; the delivery that follows failed
        click.echo(f"{incident}: {post} v{e.published.post['version']} published to {e.published.outbox}")
        raise e.failure from None
    click.echo(f"{incident}: {post} v{result.post['version']} published to {result.outbox}")
    report_deliveries(incident, post, result.deliveries)


@click.group()
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
    from engine.app import releases
    from engine.app.principal import Principal

    done = releases.rebuild_outbox(app(ctx, db, outbox=folder), Principal.asserted(""), incident)
    for d in done:
        click.echo(f"{d['incident']}: {d['post']} v{d['version']} "
                   f"{'written to' if d['written'] else 'already in'} {d['path']}")
    click.echo(f"{sum(d['written'] for d in done)} of {len(done)} outbox file(s) written.")


@click.command()
@click.argument("incident")
@click.argument("post")
@db_option
@as_option
@click.pass_context
def deliver(ctx, incident, post, db, actor):
    """Send a published POST to its channel's configured destinations (retries failures).

    Destinations (apprise URLs per channel) are read from $PLAYBOOK_DESTINATIONS, else
    destinations.yaml beside the database. Exits 10 if any delivery failed."""
    from engine.app import releases

    handle = app(ctx, db)
    attempts = releases.deliver(handle, who(handle, actor), incident, post)
    if not attempts:
        click.echo(f"{incident}: {post} was already delivered to every destination.")
    report_deliveries(incident, post, attempts)
