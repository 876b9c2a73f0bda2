"""`indexer labels`: from-folders, import (any label format), show, export."""
from __future__ import annotations

import json
from pathlib import Path

import click

from . import cli
from .common import db_option, echo_err, open_db

# indexer.labels.FORMATS and indexer.output.LABEL_FORMATS (the library modules import numpy)
IMPORT_FORMATS = ("auto", "md", "speciesnet", "coco", "camtrapdp", "timelapse", "csv")
EXPORT_FORMATS = ("md", "coco", "camtrapdp", "timelapse")
TAXON_LEVELS = ("common", "species", "genus", "family", "order", "class")


@cli.group("labels")
def labels_group() -> None:
    """Fill the labels table that `--per class` and `--where "class = ..."` read, from folders or the
    field's files (MegaDetector, SpeciesNet, COCO, Camtrap DP, Timelapse); export subsets in them."""


@labels_group.command("from-folders")
@db_option
@click.option("--level", type=click.IntRange(min=1), required=True, metavar="N",
              help="The folder at this depth below the scan root is the class (1 = first folder).")
@click.option("--where", metavar="SQL", help="Only images for which this SQL expression over image_view is true.")
def labels_from_folders_cmd(db_path: Path | None, level: int, where: str | None) -> None:
    """Label images with the name of their folder at --level (e.g. species folders)."""
    from ..labels import labels_from_folders
    with open_db(db_path) as db:
        s = labels_from_folders(db, level, where=where)
    _label_report(s.labeled, s.labels)
    if s.removed:
        echo_err(f"replaced {s.removed} labels of source 'folders'")
    if s.skipped:
        echo_err(f"{s.skipped} images are in folders shallower than level {level}: not labelled"
                 + (", and no 'folders' label is left on them" if s.removed else ""))


@labels_group.command("import")
@click.argument("label_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
@click.option("--format", "fmt", type=click.Choice(IMPORT_FORMATS), default="auto", show_default=True,
              help="The file's format; auto reads it from the content.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Relative paths are below this folder [default: whichever scan root holds them, or a "
                   "unique suffix].")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None, metavar="CONF",
              help="MegaDetector/SpeciesNet: boxes below this confidence do not label the image [default: 0.2].")
@click.option("--source", default=None, help="Source name stored with the labels [default: the format's: "
                                             "megadetector, speciesnet, coco, camtrapdp, timelapse, csv].")
@click.option("--replace", is_flag=True, help="First drop every label (and box) of this source.")
@click.option("--taxon-level", type=click.Choice(TAXON_LEVELS), default="common", show_default=True,
              help="SpeciesNet: which level of the taxonomy string is the label.")
@click.option("--label-column", default=None, metavar="NAME",
              help="Timelapse: the data column holding the class [default: Species, Label or Class].")
def labels_import_cmd(label_file: Path, db_path: Path | None, fmt: str, root: Path | None, threshold: float | None,
                      source: str | None, replace: bool, taxon_level: str, label_column: str | None) -> None:
    """Import labels: MegaDetector batch output, SpeciesNet predictions, COCO Camera Traps JSON,
    a Camtrap DP datapackage.json, a Timelapse CSV, or path,label[,confidence] rows.

    \b
    indexer labels import md_output.json --threshold 0.5
    indexer labels import lila_set.json --root /data/lila
    indexer labels import package/datapackage.json
    indexer labels import timelapse.csv --label-column Species
    """
    from ..labels import import_file
    with open_db(db_path) as db:
        s = import_file(db, label_file, fmt=fmt, root=root, threshold=threshold, source=source, replace=replace,
                        taxon_level=taxon_level, label_column=label_column)
    if replace:
        echo_err(f"removed {s.removed} labels of source {s.source!r} first (--replace)")
    at = f" at threshold {s.threshold:g}" if s.threshold is not None else ""
    echo_err(f"{s.format} file, source {s.source!r}{at}: {s.rows} entries, {s.matched} matched indexed images, "
             f"{len(s.unknown)} unknown, {len(s.ambiguous)} ambiguous; {s.detections} boxes stored")
    _label_report(s.labeled, s.labels)
    for what, items in (("paths of {} are not in the index", s.unknown),
                        ("paths of {} match images under several roots or folders (use --root)", s.ambiguous),
                        ("entries of {} are listed more than once (the first kept)", s.duplicates),
                        ("files of {} failed in the detector (counted, no label)", s.failures),
                        ("entries of {} were skipped", s.bad_rows)):
        if items:
            echo_err(f"warning: {len(items)} {what.format(label_file)}:")
            for p in items[:10]:
                echo_err(f"  {p}")
            if len(items) > 10:
                echo_err(f"  ... and {len(items) - 10} more")


@labels_group.command("show")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def labels_show_cmd(db_path: Path | None, as_json: bool) -> None:
    """Live images per label source and label."""
    from ..labels import label_counts
    with open_db(db_path, write=False) as db:
        rows = label_counts(db)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['source']}\t{r['label']}\t{r['images']}")


@labels_group.command("export")
@db_option
@click.option("--selection", metavar="NAME", default=None, help="The live members of this saved selection.")
@click.option("--where", metavar="SQL", default=None, help="Or: the images for which this SQL expression is true.")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), required=True,
              help="md (MegaDetector batch output), coco (COCO Camera Traps), camtrapdp (a folder), timelapse (CSV).")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The file to write (a folder for camtrapdp).")
@click.option("--source", default=None, help="The label import whose boxes and records go out [default: the "
                                             "latest import of that format].")
@click.option("--copy-to", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Also copy the images here; the file's paths are relative to DIR either way.")
def labels_export_cmd(db_path: Path | None, selection: str | None, where: str | None, fmt: str, output: Path,
                      source: str | None, copy_to: Path | None) -> None:
    """Write a subset in the format its labels came in, holding only its images.

    \b
    indexer select --target 500 --per class --save train-v1
    indexer labels export --selection train-v1 --format coco -o train.json --copy-to train/
    """
    if (selection is None) == (where is None):
        raise click.UsageError("give one of --selection NAME or --where SQL")
    from ..output import export_selection
    with open_db(db_path, write=False) as db:
        done, copied = export_selection(db, fmt, output, selection=selection, where=where, source=source,
                                        copy_to=copy_to)
    if copied is not None:
        echo_err(f"copied {copied.created} files into {copy_to} ({copied.existing} already there)")
        if copied.conflicts or copied.failed:
            raise click.ClickException(f"{len(copied.conflicts) + len(copied.failed)} files could not be copied "
                                       f"into {copy_to} (a different file in the way, or unreadable)")
    origin = f"records of import {done.source!r}" if done.source else "built from the labels"
    echo_err(f"wrote {done.images} images and {done.records} records ({origin}) as {done.format}: "
             f"{', '.join(done.files)}")


def _label_report(labeled: int, labels: dict[str, int]) -> None:
    top = ", ".join(f"{k} {v}" for k, v in list(labels.items())[:8])
    more = f", ... ({len(labels)} labels)" if len(labels) > 8 else ""
    echo_err(f"labelled {labeled} images: {top}{more}")
