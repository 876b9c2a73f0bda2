"""`indexer scan`: walk roots, diff against the index by stat, decode only what is new or changed."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial

from .db import Database, KnownFile
from .discover import FileEntry, Filters, Listing, Problem, count_files, walk
from .errors import Interrupted, RootError
from .interrupts import held_interrupts
from .names import printable
from .pipeline import Pipeline, extract_many
from .progress import Progress
from .records import ImageResult, State, WorkItem

log = logging.getLogger(__name__)


@dataclass
class Counts:
    """What a run did; the runs table holds the same numbers as n_<name>."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    restored: int = 0
    moved: int = 0
    missing: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class ScanSummary:
    run_id: int
    status: str
    counts: Counts
    elapsed: float
    problems: list[Problem] = field(default_factory=list)

    @property
    def decoded(self) -> int:
        return self.counts.new + self.counts.changed

    @property
    def rate(self) -> float:
        return self.decoded / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class Root:
    id: int
    path: str
    start: str  # the sub-folder to walk ('' for the whole root)


# What a run decodes: given the resolved roots, the progress bar and the pipeline, the work items
# (None = nothing new for now). Scan walks the roots; watch walks them, then follows events.
Feed = Callable[[list[Root], Progress, Pipeline], Generator[WorkItem | None, None, None]]


def normalize_root(path: str) -> str:
    p = os.path.normpath(os.path.abspath(os.path.expanduser(path)))
    return p.replace(os.sep, "/")


def check_root_exists(raw: str) -> None:
    path = normalize_root(raw)
    if not os.path.isdir(path):
        what = "does not exist" if not os.path.exists(path) else "is not a folder"
        raise RootError(f"scan root {printable(raw)} {what}")


def resolve_roots(db: Database, paths: Sequence[str]) -> list[Root]:
    """Map folders to roots: a folder inside a known root is scanned as part of it; a folder that
    contains known roots absorbs them (their rows are re-rooted, not re-hashed)."""
    out = []
    for raw in paths:
        check_root_exists(raw)
        path = normalize_root(raw)
        out.append(_known_root(db, path) or _new_root(db, path))
    return out


def root_holding(db: Database, path: str | os.PathLike[str]) -> str | None:
    """The scan root that `path` is, or lies inside of (symlinks resolved on both sides): files
    written there would be indexed by the next scan. None when it is outside every root."""
    real = os.path.realpath(path)
    for row in db.roots():
        root = os.path.realpath(row["path"])
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return str(row["path"])
    return None


def _real(path: str) -> str:
    return os.path.realpath(path).replace(os.sep, "/")


def _inside(path: str, base: str) -> str | None:
    """The part of `path` below `base` ('' for base itself), or None when it is outside."""
    if path == base:
        return ""
    prefix = base.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else None


def _known_root(db: Database, path: str) -> Root | None:
    """The known root that `path` is, or is inside of, as written or through symlinks on either
    side (`scan link` then `scan real`, or the reverse, must not index the archive twice)."""
    rows = db.roots()
    for row in rows:  # as written first: a root spelled the same keeps its own name
        below = _inside(path, row["path"])
        if below is not None:
            return Root(row["id"], row["path"], below)
    real = _real(path)
    for row in rows:
        if not os.path.isdir(row["path"]):
            continue
        below = _inside(real, _real(row["path"]))
        if below is not None:
            return Root(row["id"], row["path"], below)
    return None


def _new_root(db: Database, path: str) -> Root:
    root_id = db.add_root(path)
    real = _real(path)
    for row in db.roots():
        if row["id"] == root_id:
            continue
        below = _inside(row["path"], path)
        if below is None and os.path.isdir(row["path"]):
            below = _inside(_real(row["path"]), real)
        if below:
            db.absorb_root(row["id"], root_id, below)
            log.info("%s is inside the new root %s: its images were re-rooted", printable(row["path"]),
                     printable(path))
    return Root(root_id, path, "")


def root_available(db: Database, root: Root) -> bool:
    """False when the root folder is gone, or empty while the index holds live files under it:
    an unmounted share looks like that, and must not turn every image of it into 'missing'."""
    base = os.path.join(root.path, *root.start.split("/")) if root.start else root.path
    if not os.path.isdir(base):
        return False
    try:
        with os.scandir(base) as it:
            if next(it, None) is not None:
                return True
    except OSError:
        return False
    return not db.live_folders(root.id, root.start)


def check_root_available(db: Database, root: Root) -> None:
    if not root_available(db, root):
        where = printable(root.path + ("/" + root.start if root.start else ""))
        raise RootError(f"{where} is missing or empty but the index holds images there: is the share "
                        "mounted? Nothing was marked missing.")


class Scanner:
    """One scan run: classification of files by stat, the pool, and the run record."""

    def __init__(self, db: Database, *, workers: int | None = None, batch: int = 256,
                 filters: Filters = Filters(), retry_errors: bool = False, progress: bool | None = None,
                 command: str = "scan", thumbnails: bool = False, cluster: str | None = None,
                 worker_roots: Sequence[tuple[str, str]] = (),
                 decode: Callable[[list[WorkItem]], list[ImageResult]] | None = None) -> None:
        """thumbnails=True: features of JPEGs from their embedded EXIF preview where usable
        (features_source 'exif-thumbnail'), else from the draft decode ('draft').
        cluster: decode on a Dask cluster (`local:N` or a scheduler address, see indexer.cluster)
        whose workers see each root under the path `worker_roots` maps it to (local, remote).
        decode: the workers' task instead of `features.extract_many` (a module-level function of a
        chunk of items, importable by the workers)."""
        self.db = db
        self.decode = decode
        self.cluster = cluster
        self.worker_roots = tuple(worker_roots)
        self.thumbnails = thumbnails
        self.workers = workers or os.cpu_count() or 1
        self.batch = batch
        self.filters = filters
        self.retry_errors = retry_errors
        self.progress_enabled = progress
        self.command = command
        self.counts = Counts()
        self.problems: list[Problem] = []
        self.run_id: int | None = None
        self._marked_missing: set[int] = set()  # by this run: a move found later un-counts them
        self._moved: set[int] = set()  # rows this run moved to a new path
        # Files handed to the pool, by (root_id, folder, name): 'new' or 'changed'. They count
        # when their result is stored, so an interrupted run reports what it committed.
        self._queued: dict[tuple[int, str, str], str] = {}
        # while a folder is classified: its new files' candidate source rows by (device, inode)
        self._inode_rows: dict[tuple[int, int], list[dict[str, object]]] | None = None

    # -- classification ---------------------------------------------------------------------

    def classify_folder(self, root: Root, listing: Listing, progress: Progress | None = None
                        ) -> Iterator[WorkItem]:
        """Compare one folder's files with the index; yield those that need decoding (the others
        count on the progress bar here; decoded ones count when their result arrives)."""
        known = self.db.files_in_folder(root.id, listing.folder)
        restore: list[tuple[int, int | None, int | None]] = []
        settled = 0
        # the rows that files new to this folder may have moved from, in one query
        self._inode_rows = self.db.find_by_inodes([
            (e.device, e.inode) for e in listing.files
            if e.name not in known and e.inode is not None and e.device is not None and not e.error])
        try:
            for entry in listing.files:
                item = self.classify(root, listing.folder, entry, known.pop(entry.name, None), restore)
                if item is None:
                    settled += 1
                else:
                    yield item
        finally:
            self._inode_rows = None
        if listing.complete:  # a file renamed inside this folder took its row along: not gone
            self._mark_missing([k.id for k in known.values() if k.state is not State.MISSING
                                and k.id not in self._moved and self._judged(root, listing.folder, k.name)])
        if restore:
            self.db.restore(restore)
        if progress is not None:
            progress.update(settled)

    def classify(self, root: Root, folder: str, entry: FileEntry, k: KnownFile | None,
                 restore: list[tuple[int, int | None, int | None]]) -> WorkItem | None:
        """The work item for one file on disk if it must be decoded; otherwise count what it is.
        Unchanged files that were missing are appended to `restore` as (id, inode, device), for the
        caller to write with Database.restore."""
        item = WorkItem(root.id, root.path, folder, entry.name, entry.size, entry.mtime_ns)
        if entry.error and k is not None and k.failed and (k.size, k.mtime_ns) == (0, 0) \
                and k.state is not State.MISSING and not self.retry_errors:
            self.counts.unchanged += 1  # could not be stat'ed last time either: recorded already
        elif entry.error:
            self._record_failure(item, entry)
        elif k is None:
            moved = self._try_move(root, folder, entry)
            if moved is not None:
                self.counts.moved += 1
                self._moved.add(moved)
                if moved in self._marked_missing:  # its old folder was walked first: not missing after all
                    self._marked_missing.discard(moved)
                    self.counts.missing -= 1
            else:
                return self._queue(item, "new")
        elif (k.size, k.mtime_ns) != (entry.size, entry.mtime_ns):
            return self._queue(item, "changed")
        elif k.state is State.MISSING:
            restore.append((k.id, entry.inode, entry.device))
            self.counts.restored += 1
        elif k.failed and self.retry_errors:
            return self._queue(item, "changed")
        else:
            self.counts.unchanged += 1
        return None

    def _queue(self, item: WorkItem, kind: str) -> WorkItem:
        self._queued[(item.root_id, item.folder, item.name)] = kind
        return item

    def _record_failure(self, item: WorkItem, entry: FileEntry) -> None:
        self.db.write_results([ImageResult(item, None, entry.error, 0, 0, None, None)], self.run_id)
        self.counts.failed += 1

    def _try_move(self, root: Root, folder: str, entry: FileEntry) -> int | None:
        """A new path whose inode, size and mtime match a row whose old path is gone: a move.
        Returns the id of the row moved to the new path."""
        if entry.inode is None or entry.device is None:
            return None
        key = (entry.device, entry.inode)
        if self._inode_rows is None:
            row = self.db.find_by_inode(entry.device, entry.inode, entry.size, entry.mtime_ns)
        else:
            rows = self._inode_rows.get(key, [])
            row = next((r for r in rows if (r["size"], r["mtime_ns"]) == (entry.size, entry.mtime_ns)), None)
        if row is None:
            return None
        old = "/".join(p for p in (row["root"], row["folder"], row["name"]) if p)  # exact: a real path
        if os.path.lexists(old):
            return None  # a hard link or a copy: both paths are live files
        self.db.move(row["id"], root.id, folder, entry.name)
        if self._inode_rows is not None:  # its old path is no longer the row's: not a source for others
            self._inode_rows[key] = [r for r in self._inode_rows.get(key, []) if r["id"] != row["id"]]
        return int(row["id"])

    def _mark_missing(self, ids: list[int]) -> None:
        if ids:
            self.db.mark_missing(ids)
            self._marked_missing.update(ids)
            self.counts.missing += len(ids)

    def _judged(self, root: Root, folder: str, name: str) -> bool:
        """Whether this scan's walk would meet the file: files its filters leave out are not missing."""
        parts = folder.split("/") if folder else []
        skip = len(root.start.split("/")) if root.start else 0  # the walk starts inside these
        for i in range(skip, len(parts)):
            if not self.filters.wants_dir("/".join(parts[: i + 1]), parts[i]):
                return False
        return self.filters.wants_file("/".join([*parts, name]), name)

    # -- the run ----------------------------------------------------------------------------

    def work(self, roots: Sequence[Root], progress: Progress) -> Iterator[WorkItem]:
        for root in roots:
            check_root_available(self.db, root)
            visited: set[str] = set()
            incomplete: list[str] = []
            for listing in walk(root.path, root.start, self.filters, problems=self.problems):
                visited.add(listing.folder)
                if not listing.complete:
                    incomplete.append(listing.folder)
                    continue
                yield from self.classify_folder(root, listing, progress)
            self._sweep_unvisited(root, visited, incomplete)
            self.db.mark_root_scanned(root.id)

    def _sweep_unvisited(self, root: Root, visited: set[str], incomplete: list[str]) -> None:
        """Folders the index knows that the complete walk did not meet are gone: mark them missing."""
        def under_incomplete(folder: str) -> bool:
            return any(folder == f or folder.startswith(f + "/") or f == "" for f in incomplete)

        for folder in self.db.live_folders(root.id, root.start):
            if folder in visited or under_incomplete(folder):
                continue
            known = self.db.files_in_folder(root.id, folder)
            self._mark_missing([k.id for k in known.values()
                                if k.state is not State.MISSING and self._judged(root, folder, k.name)])

    def run(self, paths: Sequence[str], params: dict[str, object] | None = None) -> ScanSummary:
        return self.execute(paths, lambda roots, progress, pipe: self.work(roots, progress), params or {})

    def execute(self, paths: Sequence[str], feed: Feed, params: dict[str, object], *,
                flush_seconds: float = 5.0, on_batch: Callable[[list[ImageResult]], None] | None = None
                ) -> ScanSummary:
        """One run: take the writer lock, resolve roots, drive `feed` through the pool, record the run.

        Nothing is written before the lock is held; a refused run leaves the database untouched.
        """
        for raw in paths:
            check_root_exists(raw)
        self.run_id = self.db.start_run(self.command, {
            "roots": [normalize_root(p) for p in paths], "workers": self.workers, "batch": self.batch,
            "include": list(self.filters.include), "exclude": list(self.filters.exclude),
            "hidden": self.filters.hidden, "retry_errors": self.retry_errors,
            **({"exif_thumbnails": True} if self.thumbnails else {}),
            **({"cluster": self.cluster} if self.cluster else {}), **params,
        })
        started = time.monotonic()
        progress = Progress(self.command, enabled=self.progress_enabled)
        status, error, items = "failed", None, None

        def on_result(result: ImageResult) -> None:
            progress.update(1)

        def sink(results: list[ImageResult]) -> None:
            with held_interrupts():  # stored and counted together: the summary says what was committed
                self.store(results)
                self.db.heartbeat(self.run_id, self.counts.as_dict())  # type: ignore[arg-type]
            if on_batch:
                on_batch(results)

        try:
            roots = resolve_roots(self.db, paths)
            if progress.enabled:
                threading.Thread(target=self._count_total, args=(roots, progress), daemon=True).start()
            with self._pipeline(roots, flush_seconds) as pipe:
                items = feed(roots, progress, pipe)
                pipe.run(items, sink, on_result)
            status = "completed"
        except KeyboardInterrupt:
            status = "interrupted"
        except BaseException as exc:
            error = str(exc)
            raise
        finally:
            if items is not None:
                items.close()  # a watcher's observer stops in its feed's finally
            progress.close()
            elapsed = time.monotonic() - started
            self.db.finish_run(self.run_id, status, self.counts.as_dict(), elapsed, error,
                               [{"path": p.path, "error": p.error} for p in self.problems])
        summary = ScanSummary(self.run_id, status, self.counts, elapsed, self.problems)
        if status == "interrupted":
            raise Interrupted(summary)
        return summary

    def _pipeline(self, roots: Sequence[Root], flush_seconds: float) -> Pipeline:
        """The local pool, or with `cluster` the same loop on a Dask cluster."""
        decode = self.decode or (partial(extract_many, thumbnails=True) if self.thumbnails else None)
        options = {"decode": decode} if decode else {}
        if self.cluster:
            from .cluster import ClusterPipeline
            return ClusterPipeline(self.cluster, worker_roots=self.worker_roots, roots=[r.path for r in roots],
                                   batch=self.batch, flush_seconds=flush_seconds, **options)
        return Pipeline(self.workers, batch=self.batch, flush_seconds=flush_seconds, **options)

    def store(self, results: list[ImageResult]) -> None:
        """Write a batch; files that vanished before decoding are marked missing instead. The
        counts grow only once the batch is committed."""
        gone = [r for r in results if r.vanished]
        if gone:
            found = [self.db.known_file(r.item.root_id, r.item.folder, r.item.name) for r in gone]
            self._mark_missing([k.id for k in found if k is not None and k.state is not State.MISSING])
        kept = [r for r in results if not r.vanished]
        self.db.write_results(kept, self.run_id)
        for r in results:
            kind = self._queued.pop((r.item.root_id, r.item.folder, r.item.name), None)
            if r.vanished:
                continue
            if kind is not None:
                setattr(self.counts, kind, getattr(self.counts, kind) + 1)
            if r.error:
                self.counts.failed += 1

    def _count_total(self, roots: Sequence[Root], progress: Progress) -> None:
        try:
            progress.set_total(sum(count_files(r.path, r.start, self.filters) for r in roots))
        except Exception:  # the total only feeds the ETA
            log.debug("could not count files for the progress bar", exc_info=True)


def scan(db: Database, roots: Sequence[str], **options: object) -> ScanSummary:
    """Index new and changed images under `roots` into `db`; see Scanner for the options."""
    return Scanner(db, **options).run(roots)  # type: ignore[arg-type]
