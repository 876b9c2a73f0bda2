"""`indexer export`: one row per image with every stored feature, as CSV or JSON lines."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from . import cli
from .common import db_option, open_db


@cli.command("export")
@db_option
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True,
              help="CSV with a header row, or one JSON object per line.")
@click.option("--where", metavar="SQL", help="Filter with an SQL expression over the image_files view.")
@click.option("--all", "include_all", is_flag=True, help="Also export failed and missing files.")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8", errors="surrogateescape"), default="-",
              help="Write here instead of stdout.")
def export_cmd(db_path: Path | None, fmt: str, where: str | None, include_all: bool, output: object) -> None:
    """Export indexed images with absolute paths and features (hashes as 16-digit hex)."""
    from ..export import export_rows
    with open_db(db_path, write=False) as db:
        columns, rows = export_rows(db, where=where, include_all=include_all)
        out = output if output is not None else sys.stdout
        if fmt == "csv":
            writer = csv.writer(out, lineterminator="\n")  # type: ignore[arg-type]
            writer.writerow(columns)
            writer.writerows(rows)
        else:
            for row in rows:
                out.write(json.dumps(dict(zip(columns, row)), ensure_ascii=False) + "\n")  # type: ignore[attr-defined]
