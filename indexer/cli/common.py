"""Options and helpers shared by the commands."""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..db import Database

# The choices of --method and --format, needed when the options are declared: the library
# modules that own them import numpy. tests/test_startup.py checks they are the same tuples.
METHOD_NAMES = ("diverse", "kcenter", "buckets", "window", "random")  # indexer.selection.METHOD_NAMES
LABEL_FORMATS = ("md", "coco", "camtrapdp", "timelapse")  # indexer.output.LABEL_FORMATS
FORMATS = ("paths", "csv", "json") + LABEL_FORMATS  # indexer.output.FORMATS


@lru_cache(maxsize=1)
def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as dist_version
    try:
        return dist_version("indexer")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


def db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="The index database [default: index.db here, or $INDEXER_DB].",
    )(f)


def roots_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("roots", nargs=-1, required=True,
                          type=click.Path(exists=True, file_okay=False, path_type=Path))(f)


def indexing_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--workers, --batch, --include, --exclude, --hidden: shared by scan and watch."""
    options = [
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Decoding processes [default: number of cores]."),
        click.option("--batch", type=click.IntRange(min=1), default=256, show_default=True,
                     help="Results committed per transaction (the checkpoint)."),
        click.option("--include", multiple=True, metavar="GLOB",
                     help="Only files whose relative path or name matches (repeatable)."),
        click.option("--exclude", multiple=True, metavar="GLOB",
                     help="Skip files and folders whose relative path or name matches (repeatable)."),
        click.option("--hidden", is_flag=True, help="Also index hidden files and folders."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def cluster_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--cluster and --worker-root: shared by scan and watch (see indexer.cluster)."""
    f = click.option("--worker-root", "worker_roots", multiple=True, metavar="LOCAL=REMOTE",
                     help="With --cluster: the workers see the folder LOCAL of this machine as REMOTE "
                          "(repeatable).")(f)
    return click.option("--cluster", metavar="ADDRESS",
                        help="Decode on a Dask cluster: a scheduler address (tcp://host:8786) or local:N for N "
                             "local worker processes; this process stays the only writer. Needs "
                             "pip install 'indexer[dask]'.")(f)


def pool_options(cluster: str | None, worker_roots: tuple[str, ...], workers: int | None) -> dict[str, object]:
    """The local pool's size, or the Dask cluster and its root mapping (checked before the database opens)."""
    if not cluster and not worker_roots:
        return {"workers": workers}
    from ..cluster import cluster_options
    return cluster_options(cluster, worker_roots, workers)


def quiet_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar.")(f)


def open_db(db_path: Path | None, *, create: bool = False, write: bool | None = True,
            check: bool = False) -> Database:
    """write=False for commands that only read (read-only mounts work; nothing is written), None
    for those that keep a cache where they can, True for writers; check=True where a writer adds
    images (a damaged file is refused before anything is written into it)."""
    from ..db import Database, default_db_path
    return Database(db_path or default_db_path(), create=create, write=write, check=check)


def sources_note(sources: dict[str, int]) -> str | None:
    """What a command that compares features says about where they came from (Database.features_sources):
    nothing when every image was measured by the draft decode (the default)."""
    thumbs = sources.get("exif-thumbnail", 0)
    if not thumbs:
        return None
    draft = sum(n for s, n in sources.items() if s != "exif-thumbnail")
    if not draft:
        return "the features of every image come from its embedded EXIF thumbnail (scan --exif-thumbnails)"
    return (f"features of {thumbs} images come from their embedded EXIF thumbnail and of {draft} from the draft "
            "decode: hashes compared across the two sources differ by a few bits more than within one "
            "(an index scanned with one setting compares like with like)")


def echo_err(message: str) -> None:
    click.echo(message, err=True)
