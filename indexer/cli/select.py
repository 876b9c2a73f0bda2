"""`indexer select`, `selections` and `buckets` (`labels` is in cli/labels.py)."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import cli
from .common import FORMATS, LABEL_FORMATS, METHOD_NAMES, db_option, echo_err, open_db, sources_note

if TYPE_CHECKING:
    from ..selection import Selection

PER_HELP = "Group by a column of image_view (folder, class, root, sequence ...), level:N, or any SQL expression."


@cli.command("select")
@db_option
@click.option("--target", type=click.IntRange(min=1), metavar="N",
              help="Images per group with --per, else in all.")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), metavar="F",
              help="This share of every group (rounded, at least one).")
@click.option("--total", type=click.IntRange(min=1), metavar="N",
              help="N in all, spread over the --per groups in proportion to their size (one at least each).")
@click.option("--balance", is_flag=True, help="With --total: spread evenly, capped by group size.")
@click.option("--per", metavar="EXPR", help=PER_HELP)
@click.option("--where", metavar="SQL", help="Only images for which this SQL expression over image_view is true.")
@click.option("--method", type=click.Choice(METHOD_NAMES), default=None,
              help="How to choose inside a group [default: diverse].")
@click.option("--seed", type=int, default=None, help="Same inputs and seed, same selection [default: 0].")
@click.option("--features", default=None, metavar="hash|embedding[:MODEL]",
              help="What diverse and kcenter compare: the hashes, or the vectors of `indexer embed` (cosine) "
                   "[default: hash].")
@click.option("--burst-gap", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Frames of a folder at most this far apart are one burst (sequence) [default: 60].")
@click.option("--save", metavar="NAME", help="Store the selection and its parameters in the database.")
@click.option("--extend", metavar="NAME",
              help="Keep every image of saved selection NAME and add the most different new ones "
                   "(indexed since it was saved); --target etc. count the new images.")
@click.option("--only-new", is_flag=True, help="With --extend: output only the images added now.")
@click.option("--exclude-selection", multiple=True, metavar="NAME", help="Leave out the members of NAME (repeatable).")
@click.option("--against", metavar="NAME",
              help="Never pick a member of saved selection NAME (a test set), an image within --min-distance of one, "
                   "or a frame of a burst that has one.")
@click.option("--min-distance", type=int, default=None, metavar="BITS",
              help="With --against: images at most this many pHash bits from a member are left out [default: 6].")
@click.option("--stats", is_flag=True, help="Diversity figures against a random subset (stderr, or in the JSON).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="paths", show_default=True,
              help="Absolute paths one per line, CSV, or JSON; or md, coco, camtrapdp, timelapse: the subset as a "
                   "label file of that format (needs -o; a new folder for camtrapdp), paths as --copy-to lays "
                   "them out.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the list here instead of stdout.")
@click.option("--copy-to", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Copy the images here, rebuilding their folders below the scan root.")
@click.option("--link-to", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Hard-link them there instead (same file system).")
@click.option("--symlink-to", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Symlink them there instead.")
@click.option("-q", "--quiet", is_flag=True, help="No notes or summary on stderr.")
def select_cmd(db_path: Path | None, target: int | None, fraction: float | None, total: int | None, balance: bool,
               per: str | None, where: str | None, method: str | None, seed: int | None, features: str | None,
               burst_gap: float | None, save: str | None, extend: str | None, only_new: bool, exclude_selection: tuple[str, ...],
               against: str | None, min_distance: int | None,
               stats: bool, fmt: str, output: Path | None, copy_to: Path | None, link_to: Path | None,
               symlink_to: Path | None, quiet: bool) -> None:
    """Choose a diverse subset of the indexed images, per group, from the stored features.

    \b
    indexer select --target 500 --per class
    indexer select --fraction 0.1 --per level:2 --where "is_gray = 0"
    indexer select --total 2000 --per folder --balance --save train-v1
    indexer select --extend train-v1 --target 50 --per folder --only-new --copy-to new/
    """
    given = sum(x is not None for x in (target, fraction, total))
    if given > 1 or (given == 0 and extend is None):
        raise click.UsageError("give exactly one of --target N, --fraction F or --total N")
    if balance and total is None:
        raise click.UsageError("--balance goes with --total N")
    if save and extend:
        raise click.UsageError("--save and --extend cannot be combined (--extend stores into NAME)")
    if min_distance is not None and against is None:
        raise click.UsageError("--min-distance goes with --against NAME")
    if only_new and not extend:
        raise click.UsageError("--only-new goes with --extend NAME")
    dests = [(m, d) for m, d in (("copy", copy_to), ("link", link_to), ("symlink", symlink_to)) if d is not None]
    if len(dests) > 1:
        raise click.UsageError("choose one of --copy-to, --link-to and --symlink-to")
    if fmt in LABEL_FORMATS and output is None:
        raise click.UsageError(f"--format {fmt} writes a label file: give -o PATH"
                               + (" (a new folder)" if fmt == "camtrapdp" else ""))
    if output is not None:  # refuse an unusable -o before select() saves anything
        folder = output.parent if str(output.parent) else Path(".")
        if output.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
            raise click.ClickException(f"cannot write -o {output}: not a writable file in an existing folder")
    from ..output import write_listing
    from ..selection import select
    with open_db(db_path, write=True if (save or extend) else None) as db:
        if dests and (root := _root_holding(db, dests[0][1])) is not None:
            raise click.ClickException(
                f"--{dests[0][0]}-to {dests[0][1]} is inside the scan root {root}: the next scan would "
                "index the copies; choose a folder outside the archive")
        result = select(db, target=target, fraction=fraction, total=total, per=per, balance=balance, where=where,
                        method=method, seed=seed, burst_gap=burst_gap, save=save, extend=extend,
                        exclude_selections=exclude_selection, stats=stats, against=against,
                        min_distance=min_distance, features=features)
        source_note = sources_note(db.features_sources())
        if only_new:
            result = dataclasses.replace(result, images=[im for im in result.images if im.new])
        exported = _export_labels(db, result, fmt, output) if fmt in LABEL_FORMATS else None
    if exported is not None:
        if not quiet:
            echo_err(f"wrote {exported.images} images and {exported.records} records as {fmt}: "
                     f"{', '.join(exported.files)}")
    elif output is not None:
        with output.open("w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            write_listing(result, fmt, f)
    else:
        write_listing(result, fmt, sys.stdout)
    if not quiet:
        if source_note:
            echo_err(f"note: {source_note}")
        _report(result, stats and fmt != "json")
    if dests:
        _materialize(result, *dests[0], quiet)


def _export_labels(db: Any, result: Selection, fmt: str, output: Path | None) -> Any:
    from ..output import export_subset
    return export_subset(db, result.images, fmt, output or Path("."))


def _root_holding(db: Any, folder: Path) -> str | None:
    from ..scan import root_holding
    return root_holding(db, folder)


def _report(result: Selection, stats: bool) -> None:
    for note in result.notes:
        echo_err(f"note: {note}")
    pool = sum(g.pool for g in result.groups)
    kept = sum(g.kept for g in result.groups)
    what = f"{len(result.groups)} groups" if len(result.groups) != 1 or result.groups[0].key is not None else "1 pool"
    line = (f"selected {sum(g.picked for g in result.groups)} of {pool} images in {what} "
            f"({result.method}, seed {result.seed})")
    if kept or result.round and result.round > 1:
        line += f"; kept {kept} from {result.saved!r}"
    if result.saved:
        line += f"; saved as {result.saved!r} round {result.round}"
    echo_err(line)
    if stats and result.stats:
        for text in stats_lines(result.stats):
            echo_err(text)


def stats_lines(stats: dict[str, Any], max_groups: int = 20) -> list[str]:
    """The --stats figures as text: chosen (random of the same size in brackets)."""
    lines = ["diversity, chosen (random of the same size): coverage = combined distance from a pool image "
             "to its nearest pick, bits = its dHash Hamming distance; redundancy = share of picks with "
             "another pick within 6 bits or in the same burst"]

    def fmt(label: str, s: dict[str, Any]) -> str:
        c, r = s["chosen"], s["random"]
        sampled = f" (measured on {s['sampled']} sampled)" if s.get("sampled") else ""
        return (f"  {label}: pool {s['pool']}, picks {s['picks']}{sampled}; coverage mean {c['coverage_mean']:.1f} "
                f"({r['coverage_mean']:.1f}) max {c['coverage_max']:.0f} ({r['coverage_max']:.0f}); "
                f"bits mean {c['hamming_mean']:.1f} ({r['hamming_mean']:.1f}) max {c['hamming_max']:.0f} "
                f"({r['hamming_max']:.0f}); redundancy {c['redundancy']:.2f} ({r['redundancy']:.2f}); "
                f"buckets {c['buckets_covered']}/{s['buckets_in_pool']} ({r['buckets_covered']})")

    groups = stats.get("groups", [])
    for g in groups[:max_groups]:
        lines.append(fmt(str(g["group"]), g))
        if "embedding" in g:
            e = g["embedding"]
            lines.append(f"  {g['group']} by embedding: cosine coverage mean {e['cosine_mean']:.3f} "
                         f"({e['random_cosine_mean']:.3f}) max {e['cosine_max']:.3f} ({e['random_cosine_max']:.3f})")
    if len(groups) > max_groups:
        lines.append(f"  ... and {len(groups) - max_groups} more groups (all of them with --format json)")
    if "overall" in stats and len(groups) > 1:
        lines.append(fmt("all groups", stats["overall"]))
    return lines


def _materialize(result: Selection, mode: str, folder: Path, quiet: bool) -> None:
    from ..output import materialize
    done = materialize(result.images, folder, mode)
    verb = {"copy": "copied", "link": "hard-linked", "symlink": "symlinked"}[mode]
    if not quiet:
        echo_err(f"{verb} {done.created} files into {folder} ({done.existing} already there)")
    for f in done.failed[:20]:
        echo_err(f"warning: {f}")
    if done.conflicts:
        more = len(done.conflicts) - 3
        shown = "; ".join(done.conflicts[:3]) + (f" and {more} more" if more > 0 else "")
        raise click.ClickException(f"{len(done.conflicts)} files not written: a different file is already there "
                                   f"({shown})")
    if done.failed:
        raise click.ClickException(f"{len(done.failed)} files could not be written (see the warnings above)")


@cli.command("selections")
@db_option
@click.option("--paths", "show", metavar="NAME", default=None, help="Print the paths of NAME's live members.")
@click.option("--delete", metavar="NAME", default=None, help="Delete saved selection NAME (not the images).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def selections_cmd(db_path: Path | None, show: str | None, delete: str | None, as_json: bool) -> None:
    """List saved selections (select --save), print one's paths, or delete one."""
    from ..saved import delete_selection, list_selections, selection_paths
    with open_db(db_path, write=True if delete is not None else False) as db:
        if delete is not None:
            delete_selection(db, delete)
            echo_err(f"deleted selection {delete!r}")
            return
        if show is not None:
            for p in selection_paths(db, show):
                click.echo(p)
            return
        rows = list_selections(db)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        echo_err("no saved selections (make one with: indexer select ... --save NAME)")
    flags = {"count": "--target", "fraction": "--fraction", "total": "--total", "balance": "--balance"}
    for r in rows:
        p = r["params"]
        spec = [flags[k] if v is True else f"{flags[k]} {v}" for k, v in p.get("target", {}).items()]
        spec += [f"--{k} {json.dumps(p[k])}" for k in ("per", "where") if p.get(k)]
        click.echo(f"{r['name']}: {r['live_members']} images ({r['members']} members), rounds {r['rounds']}, "
                   f"{r['method']} seed {r['seed']}, {' '.join(spec)}; created {r['created_at']}, "
                   f"updated {r['updated_at']}")


@cli.command("buckets")
@db_option
@click.option("--per", metavar="EXPR", help=PER_HELP)
@click.option("--where", metavar="SQL", help="Only images for which this SQL expression over image_view is true.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def buckets_cmd(db_path: Path | None, per: str | None, where: str | None, as_json: bool) -> None:
    """The 32 smartdownsample buckets (key, meaning, images) of each group."""
    from ..bucket_table import bucket_table
    with open_db(db_path, write=None) as db:
        table, notes = bucket_table(db, per=per, where=where)
    if as_json:
        click.echo(json.dumps([g.as_dict() for g in table], indent=2, default=str))
    else:
        for g in table:
            click.echo(f"{g.group}: {g.images} images in {len(g.buckets)} buckets")
            for b in g.buckets:
                click.echo(f"  {b.key:>2}  {b.count:>8}  {b.meaning}")
    for note in notes:
        echo_err(f"note: {note}")
