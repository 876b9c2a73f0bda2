"""`indexer status`: images by state, roots, recent runs, failed files."""
from __future__ import annotations

import json
from pathlib import Path

import click

from . import cli
from .common import db_option, open_db


@cli.command("status")
@db_option
@click.option("--errors", is_flag=True, help="List every failed file and why it failed.")
@click.option("--runs", "n_runs", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many recent runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def status_cmd(db_path: Path | None, errors: bool, n_runs: int, as_json: bool) -> None:
    """Show what the index holds: images by state, roots, recent runs."""
    from ..status import status
    with open_db(db_path, write=False) as db:
        info = status(db, errors=errors, runs=n_runs)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    s = info["images"]
    click.echo(f"database: {info['db']}  (schema {info['schema_version']})")
    click.echo(f"images: {s['indexed']} indexed, {s['failed']} failed, {s['missing']} missing")
    click.echo("roots:")
    for r in info["roots"]:
        scanned = r["last_scan_at"] or "never completed"
        click.echo(f"  {r['path']}: {r['indexed']} indexed, {r['failed']} failed, {r['missing']} missing"
                   f" (last complete scan {scanned})")
    if info["runs"]:
        click.echo("recent runs:")
    for run in info["runs"]:
        elapsed = f"{run['elapsed_s']:.1f} s" if run["elapsed_s"] is not None else "-"
        state = "running, but its process is gone (killed?); the next scan marks it crashed" \
            if run["holder_gone"] else run["status"]
        click.echo(f"  #{run['id']} {run['command']} {state} started {run['started_at']} ({elapsed}): "
                   f"{run['n_new']} new, {run['n_changed']} changed, {run['n_unchanged']} unchanged, "
                   f"{run['n_missing']} missing, {run['n_failed']} failed")
        for p in run["problems"]:
            click.echo(f"      problem: {p['path']}: {p['error']}")
    if errors:
        click.echo("failed files:" if info["failed_files"] else "failed files: none")
        for f in info["failed_files"]:
            click.echo(f"  {f['path']}\t{f['error']}")
