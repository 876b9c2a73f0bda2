"""What every format's reader fills: matched images, their labels, boxes and facts, and the
rows it skipped (with why). The store step (db.labels.write_import) takes it in one transaction."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from ..names import to_text
from ..db.labels import ImportWriter
from .match import PathMatcher

EMPTY_LABELS = ("empty", "blank")
BATCH = 20_000  # images per write inside the import's one transaction


@dataclass(frozen=True)
class ImportSummary:
    """What `labels import` did."""

    source: str
    format: str
    rows: int                                                # images (or rows) the file lists
    labeled: int                                             # indexed images that got labels
    labels: dict[str, int] = field(default_factory=dict)     # class (rank-0 label) -> images
    detections: int = 0                                      # boxes stored
    unknown: list[str] = field(default_factory=list)         # paths not in the index
    ambiguous: list[str] = field(default_factory=list)       # paths matching several images
    bad_rows: list[str] = field(default_factory=list)        # skipped rows and why
    duplicates: list[str] = field(default_factory=list)      # paths listed twice (first kept)
    failures: list[str] = field(default_factory=list)        # MD: files the detector failed on
    removed: int = 0                                         # earlier labels of this source dropped
    threshold: float | None = None
    matched: int = 0                                         # indexed images the file names


class Collector:
    """Rows for one import, keyed by matched image id."""

    def __init__(self, matcher: PathMatcher, writer: ImportWriter | None = None, batch: int | None = None) -> None:
        self.matcher = matcher
        self.writer = writer          # None: keep everything until flush(force=True)
        self.source = writer.source if writer else ""
        self.sink: Callable[[tuple[Any, ...]], None] | None = None
        self.now = writer.now if writer else ""
        self.batch = batch or BATCH
        self.labeled = 0
        self.n_detections = 0
        self.rows = 0
        self.seen: set[int] = set()
        self.ids: list[int] = []
        self.labels: list[tuple[Any, ...]] = []
        self.detections: list[tuple[Any, ...]] = []
        self.metas: list[tuple[Any, ...]] = []
        self.bad: list[str] = []
        self.duplicates: list[str] = []
        self.failures: list[str] = []
        self.classes: Counter[str] = Counter()

    def image(self, path: Any, where: str) -> int | None:
        """The image id of a listed path, once; None (counted) when it is unknown, ambiguous, not a
        string or listed before."""
        self.rows += 1
        if not isinstance(path, str) or not path.strip():
            self.bad.append(f"{where}: no file path")
            return None
        i = self.matcher.match(path)
        if i is None:
            return None
        if i in self.seen:
            self.duplicates.append(path)
            return None
        self.seen.add(i)
        self.ids.append(i)
        return i

    def flush(self, force: bool = False) -> None:
        """Hand the pending rows to the writer (every `batch` images, and at the end), or to
        `sink` when a reader thread fills this collector (see read_in_thread)."""
        if self.writer is None or not (force or len(self.ids) >= self.batch):
            return
        batch = (self.ids, self.labels, self.detections, self.metas)
        if self.sink is not None:
            self.sink(batch)
        else:
            self.writer.write(*batch)
        self.labeled += len({r[0] for r in self.labels})
        self.n_detections += len(self.detections)
        self.ids, self.labels, self.detections, self.metas = [], [], [], []

    def set_labels(self, image_id: int, labels: list[tuple[str, float | None]]) -> None:
        """Labels in rank order (the first is the image's class in this source); repeats merged."""
        done: set[str] = set()
        for rank, (lab, conf) in enumerate(labels):
            lab = to_text(str(lab)).strip()
            if not lab or lab in done:
                continue
            if not done:
                self.classes[lab] += 1
            done.add(lab)
            self.labels.append((image_id, lab, self.source, conf, self.now, rank))

    def box(self, image_id: int, category: str, conf: float | None, bbox: list[float] | None,
            classification: str | None = None, classification_conf: float | None = None,
            extra: dict[str, Any] | None = None) -> None:
        x, y, w, h = bbox if bbox is not None else (None, None, None, None)
        self.detections.append((image_id, self.source, to_text(category), conf, x, y, w, h, classification,
                                classification_conf, json.dumps(extra, ensure_ascii=False) if extra else None))

    def meta(self, image_id: int, *, is_empty: int | None = None, location: Any = None, seq_id: Any = None,
             frame_num: Any = None, file_time: Any = None, failure: str | None = None,
             extra: dict[str, Any] | None = None) -> None:
        self.metas.append((image_id, self.source, is_empty, _text(location), _text(seq_id), _int(frame_num), _text(file_time),
                           failure, json.dumps(extra, ensure_ascii=False, default=str) if extra else None))


def check_bbox(b: Any) -> list[float] | None:
    """A normalized [x, y, w, h] inside [0, 1] (a hair of rounding allowed), else None."""
    if type(b) is not list or len(b) != 4:
        if not isinstance(b, (list, tuple)) or len(b) != 4:
            return None
    x, y, w, h = b
    if not (type(x) is float or type(x) is int) or not (type(y) is float or type(y) is int) \
            or not (type(w) is float or type(w) is int) or not (type(h) is float or type(h) is int):
        try:
            x, y, w, h = (float(v) for v in b)
        except (TypeError, ValueError):
            return None
    if x < -1e-3 or y < -1e-3 or w < -1e-3 or h < -1e-3 or x + w > 1.001 or y + h > 1.001 or x != x or w != w:
        return None
    return [x, y, w, h]


def number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def _text(v: Any) -> str | None:
    return None if v is None or v == "" else to_text(str(v))


def _int(v: Any) -> int | None:
    try:
        return None if v is None or v == "" else int(v)
    except (TypeError, ValueError):
        return None


def read_in_thread(col: Collector, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `read` (a streaming reader filling `col`) in a thread while this thread writes its
    batches: SQLite's inserts release the GIL, so parsing and writing overlap on two cores. The
    database is only ever touched from this (the calling) thread. Returns what `read` returns;
    its exception is raised here, after which the caller's transaction rolls back."""
    import queue
    import threading

    assert col.writer is not None
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def sink(batch: tuple[Any, ...]) -> None:
        while not stop.is_set():
            try:
                q.put(("batch", batch), timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stopped

    def run() -> None:
        try:
            result = read()
            col.flush(force=True)
            q.put(("done", result))
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the writing thread, raised there
            q.put(("error", exc))

    col.sink = sink
    t = threading.Thread(target=run, name="label-reader", daemon=True)
    t.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "batch":
                col.writer.write(*value)
            elif kind == "error":
                raise value
            else:
                return value
    finally:
        stop.set()
        t.join()
        col.sink = None


class _Stopped(Exception):
    """The writing thread gave up: the reader thread ends quietly."""
