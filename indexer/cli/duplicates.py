"""`indexer duplicates` and `indexer similar`."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import cli
from .common import db_option, echo_err, open_db

if TYPE_CHECKING:
    from ..duplicates import Duplicates, Leakage

# The choices, declared here without importing numpy (indexer.duplicates.HASH_CHOICES, KEEP_RULES).
HASH_CHOICES = ("phash", "dhash", "ahash", "all")
KEEP_RULES = ("largest", "sharpest", "oldest", "newest", "first-path")
OUT_FORMATS = ("table", "csv", "json")


@cli.command("duplicates")
@db_option
@click.option("--hash", "hash_name", default="phash", show_default=True, metavar="|".join(HASH_CHOICES),
              help="The hash compared; all: every hash within its own bound.")
@click.option("--max-distance", type=float, default=None, metavar="BITS|COS",
              help="Largest Hamming distance of a near copy [default: phash 6, dhash 4, ahash 2]; with --by "
                   "embedding a cosine distance [default: 0.05].")
@click.option("--by", "by", default="hash", show_default=True, metavar="hash|embedding[:MODEL]",
              help="Compare the hashes, or the vectors of `indexer embed` (cosine distance).")
@click.option("--where", metavar="SQL", help="Only images for which this SQL expression over image_view is true.")
@click.option("--per", metavar="EXPR", help="Only group images with the same value (folder, level:N, any SQL expression).")
@click.option("--exact", is_flag=True, help="Only byte-identical files (content hash of candidates with equal size and hashes).")
@click.option("--keep", multiple=True, metavar="RULE[,RULE]",
              help=f"Which image of a group is kept: {', '.join(KEEP_RULES)}; combinable [default: largest].")
@click.option("--move-to", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Move the others there (relative paths kept), with a manifest; never deletes.")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="With --move-to: the manifest CSV [default: DIR/indexer-moves-<time>.csv].")
@click.option("--undo", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="MANIFEST",
              help="Put back every file a --move-to manifest lists.")
@click.option("--across", nargs=2, default=None, metavar="A B",
              help="Leakage: pairs closer than the bound between A and B (saved selections, folders or SQL).")
@click.option("--format", "fmt", type=click.Choice(OUT_FORMATS), default="table", show_default=True,
              help="Output format.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
def duplicates_cmd(db_path: Path | None, hash_name: str, max_distance: float | None, by: str, where: str | None,
                   per: str | None, exact: bool, keep: tuple[str, ...], move_to: Path | None, manifest: Path | None,
                   undo: Path | None, across: tuple[str, str] | None, fmt: str, quiet: bool) -> None:
    """Groups of near-duplicate images from the stored hashes; keep the best, move the rest aside.

    \b
    indexer duplicates                                  # the plan: groups, the keeper of each
    indexer duplicates --keep largest,sharpest --move-to /data/dups
    indexer duplicates --undo /data/dups/indexer-moves-20250101T120000Z.csv
    indexer duplicates --across train-v1 test-v1        # train/test leakage
    """
    if undo is not None:
        if move_to or across:
            raise click.UsageError("--undo goes alone (with --db)")
        from ..moves import undo_moves
        with open_db(db_path, write=True) as db:
            s = undo_moves(db, undo)
        if not quiet:
            echo_err(f"put back {s.restored} files" + (f" ({s.already} were put back before)" if s.already else ""))
        return
    if manifest and not move_to:
        raise click.UsageError("--manifest goes with --move-to DIR")
    max_distance = _bound(max_distance, by)
    if by != "hash" and across:
        raise click.UsageError("--across compares hashes: it does not go with --by embedding")
    if across:
        if move_to:
            raise click.UsageError("--across only reports: it cannot be combined with --move-to")
        from ..duplicates import across as find_across
        with open_db(db_path, write=None) as db:
            leak = find_across(db, across[0], across[1], hash=hash_name, max_distance=max_distance)
        _print_leakage(leak, fmt, quiet)
        return
    from ..duplicates import duplicates
    with open_db(db_path, write=True if move_to else None) as db:
        result = duplicates(db, hash=hash_name, max_distance=max_distance, where=where, per=per, exact=exact,
                            keep=keep or None, by=by)
        moved = None
        if move_to is not None and result.groups:
            from ..moves import move_duplicates
            moved = move_duplicates(db, result, move_to, manifest)  # refusals come before any output
        _print_groups(result, fmt)
        if moved is not None and not quiet:
            echo_err(f"moved {len(moved.moved)} files ({moved.bytes / 1e6:.1f} MB) to {move_to}; manifest "
                     f"{moved.manifest} (undo: indexer duplicates --undo {moved.manifest})")
    if not quiet:
        what = "byte-identical" if result.exact else "near-duplicate"
        bound = ", ".join(f"{h} <= {b}" for h, b in result.max_distance.items())
        unit = f" ({result.hash})" if by != "hash" else " bits"
        for note in result.notes:
            echo_err(f"note: {note}")
        echo_err(f"{len(result.groups)} groups of {what} images ({result.redundant} could go) among "
                 f"{result.images} images ({bound}{unit}; keep {','.join(result.keep)})"
                 + ("" if move_to else "; dry run: nothing moved"))


def _print_groups(result: Duplicates, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=1, ensure_ascii=False))
        return
    if fmt == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["group", "role", "id", "path", "size", "width", "height", "dhash_bits", "phash_bits",
                    "ahash_bits", "reason"])
        for g in result.groups:
            for m in g.members:
                w.writerow([g.number, "keep" if m.keep else "move", m.id, m.path, m.size, m.width, m.height,
                            m.dhash_bits, m.phash_bits, m.ahash_bits, g.reason if m.keep else ""])
        return
    for g in result.groups:
        tag = " (byte-identical)" if g.identical else ""
        click.echo(f"group {g.number}: {len(g.members)} images{tag}, keep by {g.reason}")
        for m in g.members:
            role = "keep" if m.keep else "move"
            cos = f"cos {m.distance:.4f}  " if m.distance is not None else ""
            click.echo(f"  {role}  {cos}d{m.dhash_bits:>2} p{m.phash_bits:>2} a{m.ahash_bits:>2}  "
                       f"{m.width}x{m.height} {m.size:>9}  {m.path}")


def _print_leakage(leak: Leakage, fmt: str, quiet: bool) -> None:
    if fmt == "json":
        click.echo(json.dumps(leak.as_dict(), indent=1, ensure_ascii=False))
    elif fmt == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["a_id", "a_path", "b_id", "b_path", "dhash_bits", "phash_bits", "ahash_bits", "same_image",
                    "same_sequence"])
        for p in leak.pairs:
            w.writerow([p.a, p.a_path, p.b, p.b_path, p.bits["dhash"], p.bits["phash"], p.bits["ahash"],
                        int(p.same_image), int(p.same_sequence)])
    else:
        for p in leak.pairs:
            note = " (same image)" if p.same_image else (" (same burst)" if p.same_sequence else "")
            click.echo(f"{_bits_text(p.bits)}  {p.a_path}  ~  {p.b_path}{note}")
    if not quiet:
        bound = ", ".join(f"{h} <= {b}" for h, b in leak.max_distance.items())
        echo_err(f"{len(leak.pairs)} pairs within {bound} bits between A ({leak.a}, {leak.a_images} images) and "
                 f"B ({leak.b}, {leak.b_images} images): {leak.a_leaking} of A and {leak.b_leaking} of B have a near "
                 f"copy on the other side; {leak.same_images} images in both; {leak.shared_sequences} bursts in both")


def _bits_text(bits: dict[str, Any]) -> str:
    return f"d{bits['dhash']:>2} p{bits['phash']:>2} a{bits['ahash']:>2}"


@cli.command("similar")
@db_option
@click.argument("image_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--id", "image_id", type=int, default=None, help="The query is this indexed image.")
@click.option("--path", "image_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The query is the indexed image at this path (nothing decoded).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many to list.")
@click.option("--max-distance", type=float, default=None, metavar="BITS|COS",
              help="Only images at most this many bits away (a cosine distance with --by embedding) [default: any].")
@click.option("--by", "by", default="hash", show_default=True, metavar="hash|embedding[:MODEL]",
              help="Rank by a hash, or by the cosine distance of the vectors of `indexer embed`.")
@click.option("--hash", "hash_name", default="phash", show_default=True, metavar="phash|dhash|ahash",
              help="The hash ranked by.")
@click.option("--format", "fmt", type=click.Choice(OUT_FORMATS), default="table", show_default=True,
              help="Output format.")
def similar_cmd(db_path: Path | None, image_file: Path | None, image_id: int | None, image_path: Path | None,
                top: int, max_distance: float | None, by: str, hash_name: str, fmt: str) -> None:
    """The indexed images nearest to an image, with their distances in bits.

    \b
    indexer similar photo.jpg             # any file: decoded once, as the scan does
    indexer similar --id 1234 --top 20
    indexer similar --path /data/traps/site1/cam01/IMG_0001.JPG --max-distance 10
    """
    if sum(x is not None for x in (image_file, image_id, image_path)) != 1:
        raise click.UsageError("give exactly one of IMAGE_FILE, --id ID or --path PATH")
    from ..similar import similar
    max_distance = _bound(max_distance, by)
    with open_db(db_path, write=None) as db:
        found = similar(db, image_file, id=image_id, path=image_path, top=top, max_distance=max_distance,
                        hash=hash_name, by=by)
    if fmt == "json":
        click.echo(json.dumps([f.as_dict() for f in found], indent=1, ensure_ascii=False))
    elif fmt == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")
        cos = ["distance"] if by != "hash" else []
        w.writerow(["id", "path", "bits", "dhash_bits", "phash_bits", "ahash_bits", *cos])
        for f in found:
            w.writerow([f.id, f.path, f.bits, f.dhash_bits, f.phash_bits, f.ahash_bits,
                        *([f.distance] if cos else [])])
    else:
        for f in found:
            head = f"cos {f.distance:.4f}" if f.distance is not None else f"{f.bits:>2}"
            click.echo(f"{head}  d{f.dhash_bits:>2} p{f.phash_bits:>2} a{f.ahash_bits:>2}  {f.path}")


def _bound(max_distance: float | None, by: str) -> float | int | None:
    """--max-distance: whole bits for hashes, a cosine distance from 0 to 2 with --by embedding."""
    if max_distance is None:
        return None
    if by == "hash":
        if not float(max_distance).is_integer():
            raise click.UsageError(f"--max-distance counts bits of a hash: a whole number, not {max_distance}")
        return int(max_distance)
    if not 0 <= max_distance <= 2:
        raise click.UsageError(f"--max-distance is a cosine distance from 0 to 2 with --by embedding, not {max_distance}")
    return float(max_distance)
