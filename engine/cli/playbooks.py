"""Commands on playbook files: validate, schema, graph, show, the shipped playbooks, init."""

from __future__ import annotations

import sys

import click

from .common import print_json


@click.command()
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
    from engine.format.loader import validate_files

    results = validate_files(paths or ("playbooks",), strict=strict)
    if as_json:
        print_json([r.to_json() for r in results])
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


@click.command()
def schema() -> None:
    """Print the playbook format's JSON Schema (for editor completion)."""
    from engine.format.playbook import json_schema

    print_json(json_schema())


@click.command()
@click.argument("playbook", type=click.Path())
def graph(playbook: str) -> None:
    """Print the stage diagram as Mermaid (paste into any Markdown viewer)."""
    from engine.format.describe import mermaid
    from engine.format.loader import load_playbook

    click.echo(mermaid(load_playbook(playbook).playbook), nl=False)


@click.command()
@click.argument("playbook", type=click.Path())
def show(playbook: str) -> None:
    """Summarise a playbook's roles, inputs, stages, transitions and templates."""
    from engine.format.describe import summary
    from engine.format.loader import load_playbook

    click.echo(summary(load_playbook(playbook).playbook), nl=False)


@click.command(name="playbooks")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def playbooks_(as_json: bool) -> None:
    """List the playbooks shipped with the tool (copy one with `playbook init`)."""
    from engine.resources import shipped_summaries

    entries = shipped_summaries()
    if as_json:
        print_json(entries)
        return
    width = max(len(e["name"]) for e in entries)
    for e in entries:
        click.echo(f"{e['name']:<{width}}  {e['title']} (v{e['version']})")
    click.echo("\nCopy one to adapt it: playbook init --from NAME [FILE]")


@click.command()
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
