"""Every SQL statement of label imports and exports: labels, detections, image_meta, label_imports.

An import writes in ONE transaction (`write_import`): a file that fails half-way leaves the index
as it was. Values are always parameters.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import Database, utcnow

# Rows as ImportWriter.write inserts them, made complete by labels.common.Collector:
# (image_id, label, source, confidence, created_at, rank)
LabelRow = tuple[Any, ...]
# (image_id, source, category, conf, x, y, w, h, classification, classification_conf, extra JSON)
DetectionRow = tuple[Any, ...]
# (image_id, source, is_empty, location, seq_id, frame_num, file_time, failure, extra JSON)
MetaRow = tuple[Any, ...]


def live_image_paths(db: Database) -> Iterator[tuple[int, str, str, str]]:
    """(id, root path, folder, name) of every live image, as the TEXT columns hold them."""
    yield from db.conn.execute(
        "SELECT i.id, r.path, i.folder, i.name FROM images i JOIN roots r ON r.id = i.root_id "
        "WHERE i.state = 'indexed'")


def image_sizes(db: Database, ids: Sequence[int]) -> dict[int, tuple[int | None, int | None]]:
    out: dict[int, tuple[int | None, int | None]] = {}
    for chunk in _chunks(ids):
        for i, w, h in db.conn.execute("SELECT id, width, height FROM images WHERE id IN "
                                       "(SELECT value FROM json_each(?))", (json.dumps(chunk),)):
            out[i] = (w, h)
    return out


class ImportWriter:
    """Writes one import inside the transaction of `import_writer`, batch by batch."""

    def __init__(self, conn: Any, source: str, replace: bool) -> None:
        self.c = conn
        self.source = source
        self.replace = replace
        self.now = utcnow()
        self.removed = 0
        # nothing of this source yet (a first import): no per-batch deletes to run
        self.fresh = not any(conn.execute(f"SELECT 1 FROM {t} WHERE source = ? LIMIT 1", (source,)).fetchone()
                             for t in ("labels", "detections", "image_meta"))
        if replace:
            self.removed = conn.execute("DELETE FROM labels WHERE source = ?", (source,)).rowcount
            conn.execute("DELETE FROM detections WHERE source = ?", (source,))
            conn.execute("DELETE FROM image_meta WHERE source = ?", (source,))

    def write(self, image_ids: Sequence[int], labels: Iterable[LabelRow], detections: Iterable[DetectionRow],
              metas: Iterable[MetaRow]) -> None:
        """This source's earlier labels, boxes and facts of these images are replaced."""
        c, source = self.c, self.source
        if not (self.replace or self.fresh):
            for chunk in _chunks(image_ids):
                arg = (source, json.dumps(chunk))
                self.removed += c.execute("DELETE FROM labels WHERE source = ? AND image_id IN "
                                          "(SELECT value FROM json_each(?))", arg).rowcount
                c.execute("DELETE FROM detections WHERE source = ? AND image_id IN (SELECT value FROM json_each(?))",
                          arg)
                c.execute("DELETE FROM image_meta WHERE source = ? AND image_id IN (SELECT value FROM json_each(?))",
                          arg)
        c.executemany("INSERT INTO labels (image_id, label, source, confidence, created_at, rank) "
                      "VALUES (?, ?, ?, ?, ?, ?)", labels)
        c.executemany("INSERT INTO detections (image_id, source, category, conf, x, y, w, h, classification, "
                      "classification_conf, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", detections)
        c.executemany("INSERT INTO image_meta (image_id, source, is_empty, location, seq_id, frame_num, file_time, "
                      "failure, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", metas)

    def record(self, fmt: str, file: str, threshold: float | None, meta: dict[str, Any]) -> None:
        self.c.execute(
            "INSERT INTO label_imports (source, format, file, imported_at, threshold, meta) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (source) DO UPDATE SET format = excluded.format, file = excluded.file, "
            "imported_at = excluded.imported_at, threshold = excluded.threshold, meta = excluded.meta",
            (self.source, fmt, file, self.now, threshold, json.dumps(meta, ensure_ascii=False)))


@contextmanager
def import_writer(db: Database, source: str, replace: bool) -> Iterator[ImportWriter]:
    """One transaction for a whole import: an error anywhere inside leaves the index as it was."""
    size = db.conn.execute("PRAGMA cache_size").fetchone()[0]
    fk = db.conn.execute("PRAGMA foreign_keys").fetchone()[0]
    db.conn.execute("PRAGMA cache_size = -131072")  # 128 MB: a million-image import spills less
    # every image id written comes from the live index read inside this same transaction
    # (PathMatcher), so the per-row foreign-key lookups (a fifth of the time) are skipped
    db.conn.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.transaction() as c:
            yield ImportWriter(c, source, replace)
    finally:
        db.conn.execute(f"PRAGMA cache_size = {int(size)}")
        db.conn.execute(f"PRAGMA foreign_keys = {'ON' if fk else 'OFF'}")


@dataclass(frozen=True)
class ImportInfo:
    """A row of label_imports."""

    source: str
    format: str
    file: str
    imported_at: str
    threshold: float | None
    meta: dict[str, Any]


def imports(db: Database) -> list[ImportInfo]:
    """Every import, the most recent first."""
    return [ImportInfo(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in db.conn.execute(
        "SELECT source, format, file, imported_at, threshold, meta FROM label_imports ORDER BY imported_at DESC")]


def labels_of(db: Database, ids: Sequence[int], source: str | None) -> dict[int, list[tuple[str, float | None, str]]]:
    """image id -> [(label, confidence, source)] in class order (the image_view rule), of one
    source or of every source."""
    out: dict[int, list[tuple[str, float | None, str]]] = {}
    for chunk in _chunks(ids):
        rows = db.conn.execute(
            "SELECT l.image_id, l.label, l.confidence, l.source FROM labels l "
            "LEFT JOIN label_sources s ON s.source = l.source "
            "WHERE l.image_id IN (SELECT value FROM json_each(?)) AND (? IS NULL OR l.source = ?) "
            "ORDER BY l.image_id, COALESCE(s.precedence, 1000000), l.rank, l.confidence IS NULL, "
            "l.confidence DESC, l.id", (json.dumps(chunk), source, source))
        for i, lab, conf, src in rows:
            out.setdefault(i, []).append((lab, conf, src))
    return out


def detections_of(db: Database, ids: Sequence[int], source: str) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for chunk in _chunks(ids):
        rows = db.conn.execute(
            "SELECT image_id, category, conf, x, y, w, h, classification, classification_conf, extra "
            "FROM detections WHERE source = ? AND image_id IN (SELECT value FROM json_each(?)) ORDER BY id",
            (source, json.dumps(chunk)))
        for r in rows:
            out.setdefault(r[0], []).append({
                "category": r[1], "conf": r[2], "bbox": None if r[3] is None else [r[3], r[4], r[5], r[6]],
                "classification": r[7], "classification_conf": r[8], "extra": json.loads(r[9]) if r[9] else {}})
    return out


def meta_of(db: Database, ids: Sequence[int], source: str | None) -> dict[int, dict[str, Any]]:
    """image id -> the image_meta row of `source` (or, without one, of the source of lowest precedence)."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        rows = db.conn.execute(
            "SELECT m.image_id, m.is_empty, m.location, m.seq_id, m.frame_num, m.file_time, m.failure, m.extra "
            "FROM image_meta m LEFT JOIN label_sources s ON s.source = m.source "
            "WHERE m.image_id IN (SELECT value FROM json_each(?)) AND (? IS NULL OR m.source = ?) "
            "ORDER BY COALESCE(s.precedence, 1000000) DESC", (json.dumps(chunk), source, source))
        for r in rows:  # the lowest precedence comes last and wins
            out[r[0]] = {"is_empty": r[1], "location": r[2], "seq_id": r[3], "frame_num": r[4], "file_time": r[5],
                         "failure": r[6], "extra": json.loads(r[7]) if r[7] else {}}
    return out


def file_sequences(conn: Any) -> list[tuple[int, str]]:
    """(image id, seq_id) of live images whose label files give a sequence (the source of lowest
    precedence when several do)."""
    return conn.execute(
        "SELECT v.image_id, v.seq_id FROM (SELECT m.image_id, m.seq_id, ROW_NUMBER() OVER (PARTITION BY m.image_id "
        "ORDER BY COALESCE(s.precedence, 1000000)) AS k FROM image_meta m "
        "LEFT JOIN label_sources s ON s.source = m.source WHERE m.seq_id IS NOT NULL) v "
        "JOIN images i ON i.id = v.image_id WHERE v.k = 1 AND i.state = 'indexed'").fetchall()


def _chunks(ids: Sequence[int], size: int = 30_000) -> Iterator[list[int]]:
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def replace_labels(db: Database, source: str, rows: Sequence[tuple[int, str, float | None]],
                   clear_ids: Sequence[int] | None = None, clear_all: bool = False) -> int:
    """One label per image for `source` (folders, csv): drop this source's labels of `clear_ids`
    (all of them with clear_all), then set the label of each image in `rows` (replacing its
    earlier one). One transaction; returns how many labels the first step dropped."""
    now = utcnow()
    given = {int(r[0]): (r[1], r[2]) for r in rows}
    with db.transaction() as c:
        removed = 0
        if clear_all:
            removed = c.execute("DELETE FROM labels WHERE source = ?", (source,)).rowcount
        for ids, count in ((clear_ids or (), True), (list(given), False)):
            for chunk in _chunks(ids):
                n = c.execute("DELETE FROM labels WHERE source = ? AND image_id IN (SELECT value FROM json_each(?))",
                              (source, json.dumps(chunk))).rowcount
                removed += n if count and not clear_all else 0
        c.executemany("INSERT INTO labels (image_id, label, source, confidence, created_at, rank) "
                      "VALUES (?, ?, ?, ?, ?, 0)", [(i, lab, source, conf, now) for i, (lab, conf) in given.items()])
    return removed


def class_scores(db: Database) -> dict[int, float]:
    """image_view.class_score of each live image whose class has one (for the report)."""
    cur = db.conn.cursor()
    cur.row_factory = None
    cur.execute("SELECT id, class_score FROM image_view WHERE class_score IS NOT NULL")
    return dict(cur.fetchall())


def report_boxes(db: Database, ids: Sequence[int]) -> dict[int, tuple[tuple[str, float, float, float, float], ...]]:
    """The boxes to draw on each image's thumbnail: (category, x, y, w, h), normalized, of every
    detection at or above its import's threshold (ground-truth boxes, without confidence, all)."""
    out: dict[int, list[tuple[str, float, float, float, float]]] = {}
    for chunk in _chunks(ids):
        for i, cat, x, y, w, h in db.conn.execute(
                "SELECT d.image_id, d.category, d.x, d.y, d.w, d.h FROM detections d "
                "JOIN label_imports li ON li.source = d.source "
                "WHERE d.image_id IN (SELECT value FROM json_each(?)) AND d.x IS NOT NULL "
                "AND (d.conf IS NULL OR d.conf >= COALESCE(li.threshold, 0)) ORDER BY d.image_id, d.id",
                (json.dumps(chunk),)):
            out.setdefault(i, []).append((cat, x, y, w, h))
    return {i: tuple(b) for i, b in out.items()}
