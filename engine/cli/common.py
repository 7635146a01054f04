"""What the commands share: the resolved configuration, the acting person, options, output."""

from __future__ import annotations

import json
import os

import click

db_option = click.option(
    "--db", metavar="PATH|URL", envvar="PLAYBOOK_DB",
    help="Incident database: a SQLite file (or sqlite:///PATH), or postgresql://USER@HOST/DB. "
         "Default: $PLAYBOOK_DB, else ~/.local/share/crisis-playbook/incidents.db.")
as_option = click.option(
    "--as", "actor", metavar="NAME",
    help="Who is acting (recorded on every event). Default: $PLAYBOOK_ACTOR, else your login.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def print_json(data) -> None:
    from engine.safetext import for_terminal  # JSON escapes C0 itself; C1 and bidi as \\uXXXX too

    click.echo(for_terminal(json.dumps(data, indent=2, ensure_ascii=False, default=str)))


def local(ctx: click.Context, text: str) -> str:
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


def clock(ctx: click.Context):
    obj = ctx.find_root().obj or {}
    if "clock" in obj:  # tests and drills inject their clock here
        return obj["clock"]
    from engine.clock import SystemClock

    return SystemClock()


def app(ctx: click.Context, db: str | None = None, *, outbox: str | None = None,
        checkpoints: str | None = None):
    """The application handle for this command: the configuration resolved once from
    the options and the environment (engine.app.config), the clock, the store."""
    from engine.app.config import Config
    from engine.app.context import App

    handle = App(Config.resolve(os.environ, db=db, outbox=outbox, checkpoints=checkpoints, client=True),
                 clock(ctx))
    ctx.call_on_close(handle.close)
    return handle


def who(handle, actor: str | None):
    """The person acting on the local command line: asserted (engine.app.identity)."""
    from engine.app.identity import local_principal

    return local_principal(handle.config, actor)


def show_state(ctx: click.Context, state: dict, actor: str, as_json: bool) -> None:
    from engine.incidents.views import status_json, status_text

    now = clock(ctx).now()
    if as_json:
        print_json(status_json(state, now, actor))
    else:
        click.echo(local(ctx, status_text(state, now, actor)), nl=False)


def done(ctx, state: dict, message: str, as_json: bool, actor: str) -> None:
    if as_json:
        from engine.incidents.views import status_json

        print_json(status_json(state, clock(ctx).now(), actor))
    else:
        click.echo(message)


def seconds(text: str, option: str) -> int:
    from engine.format.durations import parse_duration
    from engine.errors import UsageError

    try:
        return int(parse_duration(text).total_seconds())
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None


def output_folder(output: str) -> None:
    """-o into a folder that does not exist is the user's to fix (exit 4), not a store failure."""
    from pathlib import Path

    from engine.errors import NotFound

    folder = Path(output).expanduser().parent
    if not folder.is_dir():
        raise NotFound(f"{output}: the folder {folder} does not exist (create it first, or choose another -o)")


def write_or_print(text: str, output: str | None) -> None:
    from engine.errors import StoreError

    if not output:
        from engine.safetext import for_terminal

        click.echo(for_terminal(text), nl=not text.endswith("\n"))
        return
    output_folder(output)
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise StoreError(f"{output}: cannot write ({e.strerror})") from None
    click.echo(f"written to {output}")
