"""Commands for auditors: verify, report, export, bundle, key."""

from __future__ import annotations

import json
import os
import sys

import click

from .common import app, db_option, json_option, output_folder, print_json, write_or_print

def _reader():
    """Reading names nobody: what an auditor reads is the same for everyone here."""
    from engine.app.principal import Principal

    return Principal.asserted("")


def read_json_file(path: str, what: str) -> dict:
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


def read_public_key(path: str | None) -> str | None:
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


def prepare_output(output: str) -> tuple[int, str]:
    """A temporary file beside `output` (fd, name), or StoreError: checked before signing."""
    import tempfile
    from pathlib import Path

    from engine.errors import StoreError

    target = Path(output)
    output_folder(output)
    try:
        if target.is_dir():
            raise StoreError(f"{output}: is a folder; give a file name (nothing was signed)")
        return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise StoreError(f"{output}: cannot write ({e.strerror or e}); nothing was signed") from None


@click.command()
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
@click.option("--full", is_flag=True,
              help="Refold every incident through the rules, also those unchanged since a checkpoint vouched "
                   "for them.")
@click.option("--checkpoint-dir", "checkpoint_dir", type=click.Path(file_okay=False), envvar="PLAYBOOK_CHECKPOINTS",
              help="A folder outside the database that receives a copy of every checkpoint signed, and "
                   "whose checkpoints the database must still hold. Default: $PLAYBOOK_CHECKPOINTS.")
@db_option
@json_option
@click.pass_context
def verify(ctx, incident, checkpoint_file, public_key_file, output, bundle_file, fast, full, checkpoint_dir, db,
           as_json):
    """Verify the audit log's integrity (all incidents, or one).

    Every event's hash and link is checked; each incident is refolded through the
    rules unless a checkpoint signed here already vouches for its exact head and
    projection (--full: refold all). Verifying every incident also signs and prints
    a new checkpoint (-o FILE to save it). With --bundle FILE, verify an auditor's bundle offline instead.
    Exits 7 if anything was modified, inserted, reordered or removed."""
    from engine.app import audit
    from engine.audit.checkpoints import checkpoint_text
    from engine.errors import IntegrityError, UsageError

    pem = read_public_key(public_key_file)
    if bundle_file:
        from pathlib import Path

        report = audit.verify_bundle(Path(bundle_file), public_key_pem=pem)
        if as_json:
            print_json(report.to_json())
        if not report.ok:
            raise IntegrityError(f"{bundle_file} does NOT verify:\n" + "\n".join(f"  - {p}" for p in report.problems))
        if not as_json:
            click.echo(f"OK: {bundle_file}: {report.events} events verify against the bundle's signed checkpoint"
                       f"{' and the given public key' if pem else ''}.")
        return
    handle = app(ctx, db, checkpoints=checkpoint_dir)
    if incident is not None:
        audit.require_incident(handle, _reader(), incident)
    given = read_json_file(checkpoint_file, "checkpoint") if checkpoint_file else None
    if fast and full:
        raise UsageError("--fast skips the refold that --full asks for every incident: give one of them")
    request = audit.VerifyRequest(incident=incident, checkpoint=given, public_key_pem=pem, fast=fast, full=full)
    if incident is not None and output:
        raise UsageError("a checkpoint covers every incident: run verify without INCIDENT to write one")
    try:
        verified = audit.verify(handle, _reader(), request)
    except audit.VerifyFailed as e:
        if as_json:
            print_json(e.report.to_json())
        raise
    report = verified.report
    against = f" against {report.checkpoints} checkpoint(s)" if report.checkpoints else ""
    if report.unchanged:
        against += (f" ({report.unchanged} unchanged since a checkpoint vouched for them, not refolded; "
                    f"{report.refolded} refolded)")
    if incident is not None:  # only the incident was checked: sign nothing for the others
        if as_json:
            return print_json(report.to_json())
        click.echo(f"OK: {report.events} events of {incident} verify{against}.")
        return
    if not verified.can_sign:  # a reader who may not write the database cannot store a checkpoint in it
        if as_json:
            return print_json({**report.to_json(), "checkpoint": None})
        click.echo(f"OK: {report.events} events in {report.incidents} incident(s) verify{against}.")
        click.echo("No checkpoint signed: the database is read-only for you.")
        return
    out = prepare_output(output) if output else None  # refuse a bad -o before signing anything
    try:
        cp = audit.sign_checkpoint(handle, _reader(), verified)
        if out is not None:
            with os.fdopen(out[0], "w", encoding="utf-8") as f:
                out = (None, out[1])
                f.write(checkpoint_text(cp))
            os.replace(out[1], output)
            out = None
    finally:
        if out is not None:
            if out[0] is not None:
                os.close(out[0])
            from pathlib import Path

            Path(out[1]).unlink(missing_ok=True)
    if as_json:
        return print_json({**report.to_json(), "checkpoint": cp})
    click.echo(f"OK: {report.events} events in {report.incidents} incident(s) verify{against}.")
    click.echo(f"New checkpoint {'written to ' + output if output else 'follows'} "
               "(keep a copy: verify --checkpoint FILE later detects truncation).")
    if not output:
        click.echo(checkpoint_text(cp), nl=False)


@click.command()
@click.argument("incident")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (default: print).")
@db_option
@click.pass_context
def report(ctx, incident, fmt, output, db):
    """The auditor's report: roles, timeline, posts and approvals, metrics, integrity."""
    from engine.app import audit

    write_or_print(audit.report(app(ctx, db), _reader(), incident, fmt), output)


@click.command()
@click.argument("incident")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (default: stdout).")
@db_option
@click.pass_context
def export(ctx, incident, fmt, output, db):
    """Stream the incident's events as JSON Lines or CSV (memory stays flat)."""
    from engine.app import audit
    from engine.errors import StoreError

    handle = app(ctx, db)
    if not output:
        audit.export(handle, _reader(), incident, fmt, sys.stdout)
        return
    audit.require_incident(handle, _reader(), incident)  # unknown incident: fail before creating the file
    output_folder(output)
    try:
        with open(output, "w", encoding="utf-8", newline="") as f:
            n = audit.export(handle, _reader(), incident, fmt, f)
    except OSError as e:
        raise StoreError(f"{output}: cannot write ({e.strerror})") from None
    click.echo(f"{n} events written to {output}", err=True)


@click.command()
@click.argument("incident")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The bundle file to write.")
@db_option
@click.pass_context
def bundle(ctx, incident, output, db):
    """Write one file an auditor can take away: events, pinned playbook, signed
    checkpoint and public key. Check it anywhere with: playbook verify --bundle FILE."""
    from pathlib import Path

    from engine.app import audit

    handle = app(ctx, db)
    audit.require_incident(handle, _reader(), incident)
    output_folder(output)
    manifest = audit.bundle(handle, _reader(), incident, Path(output))
    click.echo(f"{incident}: {manifest.get('events', '?')} events bundled into {output}")


@click.command()
@db_option
@click.pass_context
def key(ctx, db):
    """Print the public key that signs checkpoints (give it to auditors)."""
    from engine.app import audit

    click.echo(audit.public_key(app(ctx, db)), nl=False)
