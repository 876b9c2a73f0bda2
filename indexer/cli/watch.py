"""`indexer watch`."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import Interrupted
from . import cli
from .common import (cluster_options, db_option, echo_err, indexing_options,
                     open_db, pool_options, quiet_option, roots_argument)


@cli.command("watch")
@roots_argument
@db_option
@indexing_options
@cluster_options
@click.option("--settle", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="Seconds a file must stop changing before it is indexed.")
@click.option("--polling", is_flag=True,
              help="Poll the file system instead of native events (network shares, some mounts).")
@click.option("--poll-interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between polls with --polling.")
@click.option("--exif-thumbnails", "thumbnails", is_flag=True,
              help="Features from the preview JPEGs embed in their EXIF block where usable, as scan --exif-thumbnails.")
@quiet_option
def watch_cmd(roots: tuple[Path, ...], db_path: Path | None, workers: int | None, batch: int, settle: float,
              polling: bool, poll_interval: float, include: tuple[str, ...], exclude: tuple[str, ...],
              hidden: bool, cluster: str | None, worker_roots: tuple[str, ...], thumbnails: bool, quiet: bool) -> None:
    """Catch up like `scan`, then index new and changed images under ROOTS as they arrive.

    Runs until Ctrl-C or SIGTERM; what is decoded by then is committed. Other processes
    (`indexer select`, `indexer status`, sqlite3) can read the database meanwhile.
    """
    from ..discover import Filters
    from ..watch import watch
    filters = Filters(include=include, exclude=exclude, hidden=hidden)
    pool = pool_options(cluster, worker_roots, workers)
    with open_db(db_path, create=True, check=True) as db:
        try:
            watch(db, [str(r) for r in roots], batch=batch, **pool, settle=settle, polling=polling,
                  poll_interval=poll_interval, filters=filters, progress=False if quiet else None, report=echo_err,
                  thumbnails=thumbnails)
        except Interrupted as exc:
            c = exc.args[0].counts
            echo_err(f"watch stopped: {c.new} new, {c.changed} changed, {c.moved} moved, {c.missing} missing, "
                     f"{c.failed} failed; everything decoded was committed")
