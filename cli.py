"""The ``playbook`` command line.

Thin by design: each command parses its arguments, calls one function of the
application layer (:mod:`engine.app`) and prints the result. The commands live in
:mod:`engine.cli`, one module per area, imported only when a command of theirs runs
(so ``playbook status`` loads neither the report nor the renderer). Engine errors are
caught in one place (:class:`_Group`) and turned into a message on stderr and the
error's documented exit code.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

import click

from engine.errors import PlaybookError

#: command name -> "module:function" (a module of engine.cli, or a full module path), in
#: the order `--help` lists them.
COMMANDS = {
    "validate": "playbooks:validate", "schema": "playbooks:schema", "graph": "playbooks:graph",
    "show": "playbooks:show", "playbooks": "playbooks:playbooks_", "init": "playbooks:init",
    "start": "incidents:start", "status": "reading:status", "list": "reading:list_",
    "assign": "incidents:assign", "unassign": "incidents:unassign", "task": "incidents:task",
    "note": "incidents:note", "set": "incidents:set_", "advance": "incidents:advance",
    "close": "incidents:close", "reopen": "incidents:reopen", "log": "incidents:log",
    "due": "clocks:due", "watch": "clocks:watch", "drill": "clocks:drill",
    "advance-clock": "clocks:advance_clock", "drill-summary": "clocks:drill_summary",
    "ack": "clocks:ack", "roster": "clocks:roster",
    "db": "db:db", "verify": "audit:verify", "report": "audit:report", "export": "audit:export",
    "bundle": "audit:bundle", "key": "audit:key",
    "render": "posts:render", "drafts": "posts:drafts", "edit": "posts:edit", "approve": "posts:approve",
    "reject": "posts:reject", "publish": "posts:publish", "outbox": "posts:outbox", "deliver": "posts:deliver",
    "inbound": "inbound:inbound", "inbox": "inbound:inbox", "listen": "inbound:listen",
    "serve": "server:serve", "user": "engine.accounts.commands:user", "token": "engine.accounts.commands:token",
    "login": "client:login", "logout": "client:logout", "whoami": "client:whoami",
}


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *sorted(set(self.commands) - set(COMMANDS))]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        where = COMMANDS.get(name)
        if where is None:
            return None
        module, attr = where.split(":")
        return getattr(import_module(module if "." in module else f"engine.cli.{module}"), attr)

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


if __name__ == "__main__":  # pragma: no cover
    main()
