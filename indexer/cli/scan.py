"""`indexer scan` and `indexer reroot`."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import Interrupted
from . import cli
from .common import (cluster_options, db_option, echo_err, indexing_options,
                     open_db, pool_options, quiet_option, roots_argument)

if TYPE_CHECKING:
    from ..scan import ScanSummary


@cli.command("scan")
@roots_argument
@db_option
@indexing_options
@cluster_options
@click.option("--retry-errors", is_flag=True, help="Decode failed files again even if unchanged.")
@click.option("--exif-thumbnails", "thumbnails", is_flag=True,
              help="Take features from the small preview JPEGs embed in their EXIF block where there is a "
                   "usable one (reads ~1/20 of each file; draft decode otherwise). Opt-in: see the README.")
@click.option("--embed", "embed_model", type=click.Path(path_type=Path), default=None, metavar="PATH.onnx",
              help="Also store the vectors of this ONNX image model, from the same decode (see indexer embed).")
@click.option("--embed-preset", type=click.Choice(("dinov2", "clip", "imagenet")), default=None,
              help="With --embed: the model's resize, crop and normalisation [default: imagenet].")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@quiet_option
def scan_cmd(roots: tuple[Path, ...], db_path: Path | None, workers: int | None, batch: int,
             include: tuple[str, ...], exclude: tuple[str, ...], hidden: bool, cluster: str | None,
             worker_roots: tuple[str, ...], retry_errors: bool, thumbnails: bool, embed_model: Path | None,
             embed_preset: str | None, as_json: bool, quiet: bool) -> None:
    """Index the images under ROOTS: new and changed files are decoded, the rest is skipped.

    Re-running the same command resumes an interrupted scan and picks up new, changed and
    deleted files. Source images are opened read-only.
    """
    from ..discover import Filters
    from ..scan import scan
    filters = Filters(include=include, exclude=exclude, hidden=hidden)
    pool = pool_options(cluster, worker_roots, workers)
    job = None
    if embed_model is not None:  # the model is checked before the database is touched
        from ..embed.run import prepare_job
        job = prepare_job(embed_model, preset=embed_preset, workers=pool.get("workers"))  # type: ignore[arg-type]
    elif embed_preset is not None:
        raise click.UsageError("--embed-preset goes with --embed PATH.onnx")
    with open_db(db_path, create=True, check=True) as db:
        try:
            options = dict(batch=batch, filters=filters, **pool, retry_errors=retry_errors,
                           progress=False if quiet else None, thumbnails=thumbnails)
            if job is None:
                summary = scan(db, [str(r) for r in roots], **options)
            else:
                from ..embed.scan_embed import scan_and_embed
                summary, embedded = scan_and_embed(db, [str(r) for r in roots], job, **options)
                echo_err(f"embedded {embedded.counts.embedded} images with {job.info.name} "
                         f"({embedded.counts.failed} failed)")
        except Interrupted as exc:
            summary = exc.args[0]
            _report(summary, as_json)
            echo_err("Interrupted: everything committed so far is kept. "
                     "Run the same command again to resume.")
            raise SystemExit(130) from None
    _report(summary, as_json)


def _report(s: ScanSummary, as_json: bool) -> None:
    c = s.counts
    if as_json:
        click.echo(json.dumps({"run_id": s.run_id, "status": s.status, **c.as_dict(),
                               "elapsed_s": round(s.elapsed, 3), "images_per_s": round(s.rate, 2),
                               "problems": [p.__dict__ for p in s.problems]}))
        return
    for p in s.problems:
        echo_err(f"warning: {p.path}: {p.error}")
    echo_err(f"{s.status}: {c.new} new, {c.changed} changed, {c.unchanged} unchanged, {c.restored} restored, "
             f"{c.moved} moved, {c.missing} missing, {c.failed} failed in {s.elapsed:.1f} s "
             f"({s.rate:.1f} images/s)")
    if c.failed:
        echo_err("See why with: indexer status --errors")


@cli.command("reroot")
@click.argument("old")
@click.argument("new", type=click.Path(file_okay=False, path_type=Path))
@db_option
def reroot_cmd(old: str, new: Path, db_path: Path | None) -> None:
    """Point root OLD at NEW (the archive moved): paths change, no image is decoded again."""
    from ..scan import normalize_root
    with open_db(db_path) as db:
        target = normalize_root(str(new))
        if not os.path.isdir(target):
            echo_err(f"warning: {target} is not a folder here (yet)")
        n = db.move_root(normalize_root(old), target)
    echo_err(f"root {old} -> {target}: {n} images kept their features")
