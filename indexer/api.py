"""The Python API of selection.

`select(...)` mirrors `indexer select`. `select_distinct(...)` and `sample_diverse(...)` are
drop-ins for smartdownsample's functions of those names (same parameter names and defaults): they
index the given files into a cache database (resumable: an interrupted call keeps what it decoded;
the next call decodes only new or changed files) and select from it, so a user switches with one
import. Display parameters are honoured: `show_summary` prints a text summary;
`save_distribution` / `save_thumbnails` write the kept-vs-excluded chart and the per-bucket
thumbnail grids as PNG files there, and `show_distribution` / `show_thumbnails` /
`show_verification` write them (and the verification sheet) beside the cache database and open
them where a display exists (indexer.report.plots). The pictures need matplotlib
(`pip install 'indexer[plots]'`); without it they are skipped with a warning saying so, and the
selection is made as usual.
"""
from __future__ import annotations

import os
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .db import Database, KnownFile, default_db_path
from .db import select as q
from .discover import FileEntry, stat_file
from .errors import ImageLoadingError
from .pipeline import CRASH_ERROR
from .progress import Progress
from .records import WorkItem
from .scan import Root, Scanner
from .selection import Selection
from .selection import select as _select

CACHE_ENV = "INDEXER_CACHE_DB"


def select(db: Database | str | os.PathLike[str] | None = None, *, target: int | None = None,
           fraction: float | None = None, total: int | None = None, per: str | None = None, balance: bool = False,
           where: str | None = None, method: str | None = None, seed: int | None = None,
           burst_gap: float | None = None, save: str | None = None, extend: str | None = None,
           exclude_selections: Sequence[str] = (), stats: bool = False, against: str | None = None,
           min_distance: int | None = None) -> Selection:
    """`indexer select` from Python: the same options, a Selection back (.paths, .images, .groups,
    .notes, .stats). `db` is a Database or a path (default: index.db or $INDEXER_DB); a path is
    opened read-only unless the call saves or extends a selection."""
    kwargs: dict[str, Any] = dict(target=target, fraction=fraction, total=total, per=per, balance=balance,
                                  where=where, method=method, seed=seed, burst_gap=burst_gap, save=save,
                                  extend=extend, exclude_selections=exclude_selections, stats=stats,
                                  against=against, min_distance=min_distance)
    if isinstance(db, Database):
        return _select(db, **kwargs)
    write = True if (save or extend) else None
    with Database(db if db is not None else default_db_path(), write=write) as opened:
        return _select(opened, **kwargs)


def sample_diverse(image_paths: Sequence[str | os.PathLike[str]], target_count: int,
                   distance_threshold: float = 0.5, n_workers: int | None = None, show_progress: bool = True,
                   show_summary: bool = True, save_distribution: str | None = None,
                   save_thumbnails: str | None = None, image_loading_errors: str = "raise",
                   return_indices: bool = False, *, hash_size: int = 8, random_seed: int = 42,
                   show_distribution: bool = False, show_thumbnails: bool = False, method: str = "diverse",
                   db: str | os.PathLike[str] | None = None) -> list[str] | list[int]:
    """smartdownsample.sample_diverse: exactly min(target_count, readable images) paths (or
    indices into image_paths with return_indices), in the order given.

    Parameters of smartdownsample 2.x come first in its order; those of 1.x (hash_size,
    random_seed, show_distribution, show_thumbnails) are keyword-only. distance_threshold and
    hash_size are accepted and ignored (indexer's `diverse` method needs no threshold; its hashes
    are always 8x8). `method` picks another indexer method; `db` is the cache database
    (default $INDEXER_CACHE_DB, else ~/.cache/indexer/smartdownsample.db). save_distribution and
    save_thumbnails are PNG paths; show_distribution and show_thumbnails write the PNG beside the
    cache database (indexer-pictures/), print its path and open it where a display exists."""
    cache = _cache_db(db, None)
    pictures = _Pictures.asked(cache, save_distribution=save_distribution, save_thumbnails=save_thumbnails,
                               show_distribution=show_distribution, show_thumbnails=show_thumbnails)
    return _drop_in(image_paths, target_count, seed=random_seed, method=method, n_workers=n_workers,
                    show_progress=show_progress, show_summary=show_summary, errors=image_loading_errors,
                    return_indices=return_indices, db=cache, batch=256, pictures=pictures)


def select_distinct(image_paths: Sequence[str | os.PathLike[str]], target_count: int, window_size: int = 100,
                    random_seed: int = 42, show_progress: bool = True, show_verification: bool = False,
                    n_workers: int | None = None, cache_dir: str | os.PathLike[str] | None = None,
                    hash_size: int = 8, batch_size: int = 100, *, method: str = "diverse",
                    db: str | os.PathLike[str] | None = None) -> list[str]:
    """smartdownsample 0.2's select_distinct: exactly min(target_count, readable images) paths, in
    the order given. Unreadable files are skipped, as in 0.2. The cache database goes in
    `cache_dir` (indexer-cache.db) when given. window_size belongs to 0.2's rolling window: it is
    accepted and ignored (method='window' runs indexer's version of that window). show_verification
    writes the verification sheet (excluded images beside their nearest kept image) beside the
    cache database (indexer-pictures/verification.png), prints its path and opens it where a
    display exists."""
    cache = _cache_db(db, cache_dir)
    pictures = _Pictures.asked(cache, show_verification=show_verification)
    out = _drop_in(image_paths, target_count, seed=random_seed, method=method, n_workers=n_workers,
                   show_progress=show_progress, show_summary=False, errors="skip", return_indices=False,
                   db=cache, batch=max(1, batch_size), pictures=pictures)
    return out  # type: ignore[return-value]


# -- the shared path -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Pictures:
    """The PNG pictures a drop-in call asked for: where each goes, which to open, and the
    parameters that asked (for the warning when they cannot be drawn)."""

    paths: dict[str, Path]
    show: frozenset[str]
    params: tuple[str, ...]
    folder: Path  # thumbnails cache and the pictures that were only asked to be shown

    @classmethod
    def asked(cls, cache_db: Path, **params: object) -> _Pictures:
        folder = cache_db.parent / "indexer-pictures"
        paths: dict[str, Path] = {}
        show: set[str] = set()
        for name, value in params.items():
            kind = name.split("_", 1)[1]
            if name.startswith("save_") and value:
                paths[kind] = Path(value)  # type: ignore[arg-type]
            elif name.startswith("show_") and value:
                show.add(kind)
        for kind in show:
            paths.setdefault(kind, folder / f"{kind}.png")
        return cls(paths, frozenset(show), tuple(k for k, v in params.items() if v), folder)

    def draw(self, db: Database, sel: Selection, ids: list[int], *, seed: int, workers: int | None,
             progress: bool) -> None:
        """Write the pictures (and open those to show); a warning instead when matplotlib is missing."""
        from .report import selection_pngs
        from .report.plots import open_file
        from .report.records import PlotsUnavailable

        try:
            written = selection_pngs(db, sel, {k: str(p) for k, p in self.paths.items()}, self.folder,
                                     only_ids=ids, seed=seed, workers=workers, progress=None if progress else False)
        except PlotsUnavailable as exc:
            warnings.warn(f"indexer does not draw {', '.join(self.params)}: {exc}; the selection is made as usual",
                          stacklevel=4)
            return
        for kind in sorted(self.show):
            print(f"{kind} chart: {written[kind]}")
            open_file(written[kind])


def _cache_db(db: str | os.PathLike[str] | None, cache_dir: str | os.PathLike[str] | None) -> Path:
    if db is not None:
        path = Path(db)
    elif cache_dir is not None:
        path = Path(cache_dir) / "indexer-cache.db"
    elif os.environ.get(CACHE_ENV):
        path = Path(os.environ[CACHE_ENV])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        path = base / "indexer" / "smartdownsample.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _drop_in(image_paths: Sequence[str | os.PathLike[str]], target_count: int, *, seed: int, method: str,
             n_workers: int | None, show_progress: bool, show_summary: bool, errors: str, return_indices: bool,
             db: Path, batch: int, pictures: _Pictures) -> list[str] | list[int]:
    if errors not in ("raise", "skip"):
        raise ValueError(f"image_loading_errors must be 'raise' or 'skip', got {errors!r}")
    if isinstance(target_count, bool) or not isinstance(target_count, int):
        raise ValueError(f"target_count must be a whole number, got {target_count!r}")
    given = [str(p) for p in image_paths]
    first: dict[str, int] = {}
    for i, p in enumerate(given):
        first.setdefault(_absolute(p), i)
    if target_count <= 0:
        return []
    if target_count >= len(first):  # as smartdownsample: everything, without reading a file
        if pictures.params:
            warnings.warn(f"indexer does not draw {', '.join(pictures.params)} when every image is kept "
                          "(target_count >= number of images)", stacklevel=3)
        return sorted(first.values()) if return_indices else [given[i] for i in sorted(first.values())]
    with Database(db, create=True) as database:
        ids = index_files(database, list(first), workers=n_workers, progress=None if show_progress else False,
                          batch=batch)
        states = q.image_states(database, [i for i in ids.values() if i is not None])
        bad = [p for p, i in ids.items() if i is None or states.get(i, ("missing",))[0] != "indexed"]
        if bad and errors == "raise":
            why = {p: (states[ids[p]][1] if ids[p] in states else None) or "not indexed" for p in bad[:3]}
            raise ImageLoadingError(f"{len(bad)} of the given images cannot be read, e.g. "
                                    + "; ".join(f"{p}: {w}" for p, w in why.items())
                                    + ". Use image_loading_errors='skip' to continue with the others")
        bad_set = set(bad)
        good = {i: p for p, i in ids.items() if p not in bad_set and i is not None}
        sel = _select(database, target=target_count, method=method, seed=seed, only_ids=list(good),
                      stats=show_summary)
        if pictures.paths:
            pictures.draw(database, sel, list(good), seed=seed, workers=n_workers, progress=show_progress)
    if show_summary:
        _print_summary(sel, len(good), len(bad))
    chosen = sorted(first[good[i]] for i in sel.ids)
    return chosen if return_indices else [given[i] for i in chosen]


def _absolute(p: str) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(p))).replace(os.sep, "/")


def _print_summary(sel: Selection, n: int, unreadable: int) -> None:
    print(f"Selected {len(sel.images)} of {n} images (indexer {sel.method}, seed {sel.seed})"
          + (f"; {unreadable} unreadable images skipped" if unreadable else ""))
    overall = (sel.stats or {}).get("overall")
    if overall:
        c, r = overall["chosen"], overall["random"]
        print(f"  coverage (mean / largest distance to the nearest pick): {c['coverage_mean']:.1f} / "
              f"{c['coverage_max']:.0f}, random subset {r['coverage_mean']:.1f} / {r['coverage_max']:.0f}")
        print(f"  dHash bits to the nearest pick: {c['hamming_mean']:.1f} / {c['hamming_max']:.0f}, "
              f"random {r['hamming_mean']:.1f} / {r['hamming_max']:.0f}")
        print(f"  redundancy: {c['redundancy']:.2f} (random {r['redundancy']:.2f}); buckets covered "
              f"{c['buckets_covered']} of {overall['buckets_in_pool']} (random {r['buckets_covered']})")


# -- indexing explicit files -------------------------------------------------------------------------

class FileScanner(Scanner):
    """A scan of given files only (not of whole folders): nothing else under the root is listed,
    and nothing is marked missing. Runs, checkpoints and resumption work as in `scan`.

    A file whose stored error is a worker crash (CRASH_ERROR) is decoded again even unchanged:
    earlier versions stored a pool whose workers could not start at all (a drop-in called from
    stdin or from a script without a main guard) as a crash of every file of the call."""

    def __init__(self, db: Database, files: Sequence[str], **options: Any) -> None:
        super().__init__(db, **options)
        self.files = list(files)

    def classify(self, root: Root, folder: str, entry: FileEntry, k: KnownFile | None,
                 restore: list[tuple[int, int | None, int | None]]) -> WorkItem | None:
        retry_all = self.retry_errors
        self.retry_errors = retry_all or (k is not None and k.failed and self._crashed(k.id))
        try:
            return super().classify(root, folder, entry, k, restore)
        finally:
            self.retry_errors = retry_all

    def _crashed(self, image_id: int) -> bool:
        """Whether this failed file's stored error is a worker crash (asked of failed files only)."""
        return q.image_states(self.db, [image_id]).get(image_id, ("", None, 0))[1] == CRASH_ERROR

    def work(self, roots: Sequence[Root], progress: Progress) -> Iterator[Any]:
        for root in roots:
            prefix = root.path.rstrip("/") + "/"
            folders: dict[str, list[str]] = defaultdict(list)
            for f in self.files:
                if f.startswith(prefix):
                    folder, _, name = f[len(prefix):].rpartition("/")
                    folders[folder].append(name)
            for folder, names in folders.items():
                known = self.db.files_in_folder(root.id, folder)
                restore: list[tuple[int, int | None, int | None]] = []
                for name in names:
                    entry = stat_file(prefix + (f"{folder}/" if folder else "") + name, name) \
                        or FileEntry(name, error="file not found")
                    item = self.classify(root, folder, entry, known.get(name), restore)
                    if item is None:
                        progress.update(1)
                    else:
                        yield item
                if restore:
                    self.db.restore(restore)

    def _count_total(self, roots: Sequence[Root], progress: Progress) -> None:
        progress.set_total(len(self.files))


def _existing(folder: str) -> str:
    """The folder, or its nearest existing parent (files that do not exist are recorded as failed)."""
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    return folder.replace(os.sep, "/")


def index_files(db: Database, files: Sequence[str], *, workers: int | None = None, progress: bool | None = None,
                batch: int = 256) -> dict[str, int | None]:
    """Index these files (absolute, '/'-separated) under their common folder; {file: row id}."""
    by_base: dict[str, list[str]] = defaultdict(list)
    for f in files:
        drive = os.path.splitdrive(f)[0]
        by_base[drive].append(f)
    bases = [_existing(os.path.commonpath([os.path.dirname(f) for f in fs])) for fs in by_base.values()]
    if files:
        FileScanner(db, files, workers=workers, progress=progress, batch=batch).run(bases, {"files": len(files)})
    out: dict[str, int | None] = {}
    for root_id, root in q.roots(db):  # longest root first
        prefix = root.rstrip("/") + "/"
        mine = [f for f in files if f not in out and f.startswith(prefix)]
        pairs = [tuple(f[len(prefix):].rpartition("/")[::2]) for f in mine]
        for f, i in zip(mine, q.image_ids_for_files(db, root_id, pairs)):  # type: ignore[arg-type]
            out[f] = i
    return {f: out.get(f) for f in files}
