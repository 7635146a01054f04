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


if __name__ == "__main__":  # pragma: no cover
    main()
