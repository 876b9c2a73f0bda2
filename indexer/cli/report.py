"""`indexer report`."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import cli
from .common import METHOD_NAMES, db_option, echo_err, open_db, quiet_option
from .select import PER_HELP

if TYPE_CHECKING:
    from ..report import ReportSummary


@cli.command("report")
@db_option
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, metavar="DIR",
              help="Write DIR/index.html and DIR/thumbs/ here (outside the archive).")
@click.option("--per", metavar="EXPR", help=PER_HELP)
@click.option("--where", metavar="SQL", help="Only images for which this SQL expression over image_view is true.")
@click.option("--selection", metavar="NAME", help="Show saved selection NAME (its --per and --where by default).")
@click.option("--target", type=click.IntRange(min=0), metavar="N", help="Show a selection made now: N per group.")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), metavar="F",
              help="Show a selection made now: this share of every group.")
@click.option("--total", type=click.IntRange(min=0), metavar="N",
              help="Show a selection made now: N in all, spread over the groups.")
@click.option("--balance", is_flag=True, help="With --total: spread evenly, capped by group size.")
@click.option("--method", type=click.Choice(METHOD_NAMES), default=None,
              help="How the selection made now chooses [default: diverse].")
@click.option("--seed", type=int, default=None, help="Seed of the selection made now [default: 0].")
@click.option("--burst-gap", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Frames of a folder at most this far apart are one burst [default: 60].")
@click.option("--pairs", type=click.IntRange(min=0), default=24, show_default=True,
              help="Verification pairs (excluded image beside its nearest kept image) to show.")
@click.option("--thumb-size", type=click.IntRange(16, 1024), default=160, show_default=True, metavar="PX",
              help="Longest side of the thumbnails.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Thumbnail processes [default: number of cores].")
@click.option("--png", is_flag=True, help="Also write smartdownsample-style PNG charts (needs indexer[plots]).")
@click.option("--duplicates", "dups", is_flag=True,
              help="Add the groups of near copies, the kept image of each marked (as `indexer duplicates`).")
@click.option("--max-distance", type=int, default=None, metavar="BITS",
              help="With --duplicates or --across: the bound in pHash bits [default: 6].")
@click.option("--keep", default=None, metavar="RULE[,RULE]", help="With --duplicates: the keep rules [default: largest].")
@click.option("--across", nargs=2, default=None, metavar="A B",
              help="Add a leakage section: near pairs between A and B (saved selections, folders or SQL).")
@quiet_option
def report_cmd(db_path: Path | None, out: Path, per: str | None, where: str | None, selection: str | None,
               target: int | None, fraction: float | None, total: int | None, balance: bool, method: str | None,
               seed: int | None, burst_gap: float | None, pairs: int, thumb_size: int, workers: int | None,
               png: bool, dups: bool, max_distance: int | None, keep: str | None, across: tuple[str, str] | None,
               quiet: bool) -> None:
    """Write a report of the index (and a selection) that opens in any browser from disk.

    \b
    indexer report --out report/ --per level:2
    indexer report --out report/ --selection train-v1
    indexer report --out report/ --per class --target 100 --method kcenter
    """
    if sum(x is not None for x in (target, fraction, total)) > 1:
        raise click.UsageError("give at most one of --target N, --fraction F or --total N")
    from ..report import make_report
    with open_db(db_path, write=None) as db:
        summary = make_report(db, out, per=per, where=where, selection=selection, target=target, fraction=fraction,
                              total=total, balance=balance, method=method, seed=seed, burst_gap=burst_gap,
                              pairs=pairs, thumb_size=thumb_size, workers=workers, png=png,
                              progress=False if quiet else None,
                              duplicates={"max_distance": max_distance, "keep": keep, "where": where} if dups else None,
                              across={"a": across[0], "b": across[1], "max_distance": max_distance} if across else None)
    click.echo(summary.index)
    if not quiet:
        _summary(summary)


def _summary(s: ReportSummary) -> None:
    for note in s.notes:
        echo_err(f"note: {note}")
    t = s.thumbs
    kept = f", {s.kept} kept" if s.kept is not None else ""
    echo_err(f"report: {s.images} images in {s.groups} groups{kept}; thumbnails {t.made} made, {t.cached} cached, "
             f"{t.placeholders} placeholders in {s.seconds:.1f} s")
