"""The `indexer` command: a click group whose commands each call one library function.

Start-up is part of every command (and of every `watch` restart): this package and the command
modules import only click and the standard library at the top. Library modules, numpy and Pillow
are imported inside the command that uses them (tests/test_startup.py checks it in a fresh process).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import sys

import click

from ..errors import IndexerError
from .common import version


# Each command's module, imported when the command is looked up: a command pays for its own
# options and imports only (click's lazy-subcommand pattern; all of them cost ~30 ms).
COMMANDS = {
    "scan": "scan", "reroot": "scan", "watch": "watch", "status": "status", "export": "export",
    "select": "select", "selections": "select", "buckets": "select", "duplicates": "duplicates",
    "similar": "duplicates", "labels": "labels", "report": "report", "embed": "embed", "models": "embed",
}


class IndexerGroup(click.Group):
    """Turns library errors into one-line messages and exit code 1, never a traceback; loads each
    command's module when the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            import importlib
            importlib.import_module(f"{__name__}.{COMMANDS[cmd_name]}")  # registers it on `cli`
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except IndexerError as exc:
            raise click.ClickException(str(exc)) from exc
        except sqlite3.Error as exc:
            from ..db.guard import corruption_error, is_corruption
            if is_corruption(exc):
                raise click.ClickException(str(corruption_error(ctx.params.get("db_path") or "index.db", exc)))
            raise click.ClickException(f"database error: {exc}") from exc
        except UnicodeEncodeError as exc:  # an argument with bytes that are not UTF-8 text
            raise click.ClickException(f"an argument is not valid UTF-8 text ({exc.reason} at position "
                                       f"{exc.start}); check the terminal's or script's encoding") from exc
        except BrokenPipeError:  # `indexer export | head`
            _silence_stdout()
            ctx.exit(0)


@click.group(cls=IndexerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, help="Show the version and exit.",
              callback=lambda ctx, param, value: _print_version(ctx, value))
@click.option("-v", "--verbose", count=True, help="More messages on stderr (-vv for debug).")
def cli(verbose: int) -> None:
    """Index camera-trap image archives into SQLite and pick diverse subsets from the index."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")


def _print_version(ctx: click.Context, value: bool) -> None:
    """--version, looked up only when asked (importlib.metadata costs ~15 ms at every start)."""
    if value and not ctx.resilient_parsing:
        click.echo(f"indexer, version {version()}")
        ctx.exit()


def run(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code. Ctrl-C and SIGTERM anywhere give exit 130."""
    try:
        result = cli.main(args=argv, prog_name="indexer", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt):
            click.echo("Interrupted.", err=True)
            return 130
        click.echo("Aborted!", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return result if isinstance(result, int) else 0


def _silence_stdout() -> None:
    """The reader of stdout went away: send what is left to /dev/null (no error at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def all_commands() -> dict[str, click.Command]:
    """Every command, by name (imports every command module)."""
    for name in COMMANDS:
        cli.get_command(click.Context(cli), name)
    return dict(cli.commands)


__all__ = ["COMMANDS", "all_commands", "cli", "run"]
