"""The `indexer` command: a click group whose commands each call one library function."""
from __future__ import annotations

import logging
import sqlite3

import click

from ..errors import IndexerError
from .common import VERSION


class IndexerGroup(click.Group):
    """Turns library errors into one-line messages and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except IndexerError as exc:
            raise click.ClickException(str(exc)) from exc
        except sqlite3.Error as exc:
            raise click.ClickException(f"database error: {exc}") from exc
        except BrokenPipeError:  # `indexer export | head`
            ctx.exit(0)


@click.group(cls=IndexerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="indexer")
@click.option("-v", "--verbose", count=True, help="More messages on stderr (-vv for debug).")
def cli(verbose: int) -> None:
    """Index camera-trap image archives into SQLite and pick diverse subsets from the index."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")


from . import export, report, scan, select, status, watch  # noqa: E402  (registers the commands)

__all__ = ["cli", "export", "report", "scan", "select", "status", "watch"]
