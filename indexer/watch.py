"""`indexer watch`: catch up like a scan, then follow the file system with watchdog.

The watchdog handler only filters and queues events. The main thread turns them into work for
the same Pipeline and Scanner classification that `scan` uses: a file is decoded once it has
stopped changing for `settle` seconds; deletions mark rows missing; moves keep features.
A root that disappears (an unmounted share) pauses its watch, nothing is marked missing, and it
is caught up again when it returns.
"""
from __future__ import annotations

import logging
import os
import queue
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from .db import Database
from .discover import Filters, stat_file, walk
from .errors import WatchError
from .pipeline import Pipeline
from .progress import Progress
from .records import ImageResult, WorkItem
from .scan import Root, Scanner, ScanSummary, root_available

log = logging.getLogger(__name__)

ROOT_CHECK_SECONDS = 2.0
HEARTBEAT_SECONDS = 60.0
IDLE_SLEEP = 0.2


@dataclass(frozen=True)
class Event:
    kind: str  # 'file' (created/modified), 'deleted', 'moved', 'dir' (walk it), 'dir_deleted'
    path: str
    dest: str | None = None


class _Handler(FileSystemEventHandler):
    """Filters watchdog events and queues them; does no I/O of its own."""

    def __init__(self, events: queue.SimpleQueue[Event]) -> None:
        self.events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if getattr(event, "dest_path", None) else None
        kind = event.event_type
        if event.is_directory:
            if kind == "created":
                self.events.put(Event("dir", src))
            elif kind == "deleted":
                self.events.put(Event("dir_deleted", src))
            elif kind == "moved" and dest:
                self.events.put(Event("dir_deleted", src))
                self.events.put(Event("dir", dest))
        elif kind in ("created", "modified", "closed"):
            self.events.put(Event("file", src))
        elif kind == "deleted":
            self.events.put(Event("deleted", src))
        elif kind == "moved" and dest:
            self.events.put(Event("moved", src, dest))


class Watcher:
    """One `indexer watch` run over some roots."""

    def __init__(self, db: Database, *, workers: int | None = None, batch: int = 256, settle: float = 3.0,
                 polling: bool = False, filters: Filters = Filters(), progress: bool | None = None,
                 report: Callable[[str], None] | None = None, poll_interval: float = 1.0,
                 thumbnails: bool = False, cluster: str | None = None,
                 worker_roots: Sequence[tuple[str, str]] = ()) -> None:
        self.db = db
        # Batch report lines are the progress of a watch; a tqdm bar would garble them.
        self.scanner = Scanner(db, workers=workers, batch=batch, filters=filters, progress=False,
                               command="watch", thumbnails=thumbnails, cluster=cluster, worker_roots=worker_roots)
        self.settle = settle
        self.polling = polling
        self.poll_interval = poll_interval
        self.report = report or (lambda msg: log.info("%s", msg))
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.pending: dict[str, tuple[int, int, float]] = {}  # path -> (size, mtime_ns, stable since)
        self.roots: list[Root] = []
        self.watches: dict[int, ObservedWatch | None] = {}
        self.catch_up: list[Root] = []
        self.committed = 0
        self._available: dict[int, bool] = {}

    # -- event intake ----------------------------------------------------------------------------

    def _locate(self, path: str) -> tuple[Root, str, str] | None:
        path = path.replace(os.sep, "/")
        for root in self.roots:
            prefix = root.path.rstrip("/") + "/"
            if path.startswith(prefix):
                rel = path[len(prefix):]
                if root.start and not (rel == root.start or rel.startswith(root.start + "/")):
                    continue
                folder, _, name = rel.rpartition("/")
                return root, folder, name
        return None

    def _wanted(self, root: Root, folder: str, name: str) -> bool:
        f = self.scanner.filters
        if not f.hidden and any(part.startswith(".") for part in folder.split("/") if part):
            return False
        rel = f"{folder}/{name}" if folder else name
        return f.wants_file(rel, name)

    def _drain_events(self) -> bool:
        """Apply queued events; True if there were any."""
        deleted: list[int] = []
        self._available: dict[int, bool] = {}
        seen = False
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                break
            seen = True
            if ev.kind == "file":
                self._queue_file(ev.path)
            elif ev.kind == "deleted":
                self._deleted(ev.path, deleted)
            elif ev.kind == "moved":
                self._moved(ev.path, ev.dest or "", deleted)
            elif ev.kind == "dir":
                self._walk_new_dir(ev.path)
            elif ev.kind == "dir_deleted":
                self._dir_deleted(ev.path, deleted)
        if deleted:
            self.db.mark_missing(deleted)
            self.scanner.counts.missing += len(deleted)
        return seen

    def _queue_file(self, path: str) -> None:
        loc = self._locate(path)
        if loc and self._wanted(*loc):
            self.pending.setdefault(path, (-1, -1, time.monotonic()))

    def _deleted(self, path: str, deleted: list[int]) -> None:
        self.pending.pop(path, None)
        loc = self._locate(path)
        if loc is None or not self._root_ok(loc[0]) or os.path.lexists(path):
            return
        k = self.db.known_file(loc[0].id, loc[1], loc[2])
        if k is not None and k.state.value != "missing":
            deleted.append(k.id)

    def _moved(self, src: str, dest: str, deleted: list[int]) -> None:
        """A rename inside a root keeps the row (and its features) when the content stamp matches."""
        self.pending.pop(src, None)
        s, d = self._locate(src), self._locate(dest)
        if s and d and self._wanted(*d):
            k = self.db.known_file(s[0].id, s[1], s[2])
            try:
                st = os.stat(dest)
            except OSError:
                st = None
            if k is not None and st is not None and (k.size, k.mtime_ns) == (st.st_size, st.st_mtime_ns) \
                    and self.db.known_file(d[0].id, d[1], d[2]) is None:
                self.db.move(k.id, d[0].id, d[1], d[2])
                self.scanner.counts.moved += 1
                return
        if s:
            self._deleted(src, deleted)
        if d:
            self._queue_file(dest)

    def _dir_deleted(self, path: str, deleted: list[int]) -> None:
        loc = self._locate(path.rstrip("/") + "/x")
        if loc is None or os.path.isdir(path) or not self._root_ok(loc[0]):
            return
        for p in [p for p in self.pending if p.startswith(path.rstrip("/") + "/")]:
            del self.pending[p]
        deleted.extend(self.db.live_ids_under(loc[0].id, loc[1]))

    def _walk_new_dir(self, path: str) -> None:
        """A new folder (a new camera): files copied in before its watch existed are found by a walk."""
        loc = self._locate(path.rstrip("/") + "/x")
        if loc is None:
            return
        root, folder, _ = loc
        for listing in walk(root.path, folder, self.scanner.filters, problems=self.scanner.problems):
            for entry in listing.files:
                self._queue_file("/".join(p for p in (root.path, listing.folder, entry.name) if p))

    # -- settling ----------------------------------------------------------------------------------

    def _settled(self) -> Iterator[WorkItem]:
        """Files whose size and mtime have not changed for `settle` seconds, classified like scan."""
        now = time.monotonic()
        for path, (size, mtime_ns, since) in list(self.pending.items()):
            entry = stat_file(path, os.path.basename(path))
            if entry is None:  # gone before it settled
                del self.pending[path]
                continue
            if (entry.size, entry.mtime_ns) != (size, mtime_ns):
                self.pending[path] = (entry.size, entry.mtime_ns, now)
                continue
            if now - since < self.settle:
                continue
            del self.pending[path]
            loc = self._locate(path)
            if loc is None:
                continue
            root, folder, name = loc
            restore: list[tuple[int, int | None, int | None]] = []
            item = self.scanner.classify(root, folder, entry, self.db.known_file(root.id, folder, name), restore)
            if restore:
                self.db.restore(restore)
            if item is not None:
                yield item

    # -- roots -----------------------------------------------------------------------------------

    def _root_ok(self, root: Root) -> bool:
        """Deletions count only while the root is watched and visibly mounted (checked once a drain)."""
        if root.id not in self._available:
            self._available[root.id] = self.watches.get(root.id) is not None and root_available(self.db, root)
        return self._available[root.id]

    def _check_roots(self, observer: BaseObserver) -> None:
        for root in self.roots:
            ok = root_available(self.db, root)
            watched = self.watches.get(root.id)
            if not ok and watched is not None:
                observer.unschedule(watched)
                self.watches[root.id] = None
                self.report(f"watch: root {root.path} is unavailable (unmounted?); nothing is marked "
                            "missing; waiting for it to return")
            elif ok and watched is None:
                self._schedule(observer, root)
                self.catch_up.append(root)
                self.report(f"watch: root {root.path} is back; catching up")

    def _schedule(self, observer: BaseObserver, root: Root) -> None:
        base = os.path.join(root.path, *root.start.split("/")) if root.start else root.path
        try:
            self.watches[root.id] = observer.schedule(_Handler(self.events), base, recursive=True)
        except OSError as exc:  # inotify's watch or instance limit, mostly
            raise WatchError(
                f"cannot watch {base}: {exc.strerror or exc}. With many folders, raise the limit "
                "(sysctl fs.inotify.max_user_watches=1048576) or use --polling"
            ) from exc

    # -- the run -----------------------------------------------------------------------------------

    def _feed(self, roots: list[Root], progress: Progress, pipe: Pipeline) -> Iterator[WorkItem | None]:
        self.roots = roots
        # watchdog warns when a new sub-folder's inotify watch replaces one it already had; harmless.
        warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)
        observer: BaseObserver = PollingObserver(timeout=self.poll_interval) if self.polling else Observer()
        for root in roots:  # watch before catching up, so nothing arriving meanwhile is lost
            self._schedule(observer, root)
        observer.start()
        try:
            yield from self._follow(observer, progress, pipe)
        finally:
            observer.stop()
            observer.join(10)

    def _follow(self, observer: BaseObserver, progress: Progress, pipe: Pipeline) -> Iterator[WorkItem | None]:
        yield from self.scanner.work(self.roots, progress)
        yield None  # flushes the last partial chunk into the pool
        while pipe.busy:  # let the catch-up land before saying so
            yield None
        c = self.scanner.counts
        self.report(f"watch: caught up ({c.new} new, {c.changed} changed, {c.missing} missing); "
                    "watching for changes")
        last_root_check = last_beat = time.monotonic()
        while True:
            now = time.monotonic()
            if now - last_root_check >= ROOT_CHECK_SECONDS:
                self._check_roots(observer)
                last_root_check = now
            if self.catch_up:
                roots, self.catch_up = self.catch_up, []
                yield from self.scanner.work(roots, progress)
            got = self._drain_events()
            for item in self._settled():
                got = True
                yield item
            if now - last_beat >= HEARTBEAT_SECONDS:
                self.db.heartbeat(self.scanner.run_id, self.scanner.counts.as_dict())  # type: ignore[arg-type]
                last_beat = now
            if not got:
                yield None
                time.sleep(IDLE_SLEEP)

    def _batch_done(self, results: list[ImageResult]) -> None:
        self.committed += len(results)
        failed = sum(1 for r in results if r.error)
        self.report(f"watch: committed {len(results)} images ({failed} failed); {self.committed} this run")

    def run(self, paths: Sequence[str]) -> ScanSummary:
        """Until Ctrl-C/SIGTERM (raised as Interrupted with the summary of the run)."""
        return self.scanner.execute(paths, self._feed, {"settle": self.settle, "polling": self.polling},
                                    flush_seconds=1.0, on_batch=self._batch_done)


def watch(db: Database, roots: Sequence[str], **options: object) -> ScanSummary:
    """Index `roots` and keep the index current until stopped (Ctrl-C / SIGTERM)."""
    return Watcher(db, **options).run(roots)  # type: ignore[arg-type]


__all__ = ["Watcher", "watch"]
