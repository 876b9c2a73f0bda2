"""The SQL of `indexer report`: the per-image facts a report shows beside the selection features.

Everything else the report reads comes from public functions of the other db modules
(`Database.state_counts`, `root_summaries`, `failed_files`; `db.select.get_selection`, `member_ids`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..names import from_db, split_raw
from . import Database


@dataclass(frozen=True)
class ImageRow:
    """One live indexed image as the report shows it."""

    id: int
    root: str
    folder: str
    name: str
    size: int
    mtime_ns: int
    width: int | None
    height: int | None
    brightness: float | None
    sharpness: float | None
    color_variance: float | None
    is_gray: bool
    captured_at: str | None
    camera_make: str | None
    camera_model: str | None

    @property
    def rel_path(self) -> str:
        return f"{self.folder}/{self.name}" if self.folder else self.name

    @property
    def path(self) -> str:
        return f"{self.root}/{self.rel_path}"


def image_rows(db: Database) -> dict[int, ImageRow]:
    """Every live indexed image, by id (one pass; a few hundred ms per 100,000 images)."""
    cur = db.conn.cursor()
    cur.row_factory = None  # plain tuples
    cur.execute(
        "SELECT i.id, r.path, i.folder, i.name, i.size, i.mtime_ns, i.width, i.height, i.brightness, i.sharpness, "
        "i.color_variance, COALESCE(i.is_gray, 0), i.captured_at, i.camera_make, i.camera_model, i.rel_raw, r.path_raw "
        "FROM images i JOIN roots r ON r.id = i.root_id WHERE i.state = 'indexed'"
    )
    out: dict[int, ImageRow] = {}
    for row in cur:
        root, folder, name = row[1], row[2], row[3]
        if row[15] is not None or row[16] is not None:  # names that are not UTF-8: the real bytes
            folder_raw, name_raw = split_raw(row[15])
            root, folder, name = from_db(root, row[16]), from_db(folder, folder_raw), from_db(name, name_raw)
        out[row[0]] = ImageRow(row[0], root, folder, name, row[4], row[5], row[6], row[7], row[8], row[9],
                               row[10], bool(row[11]), row[12], row[13], row[14])
    return out


def image_classes(db: Database) -> dict[int, str]:
    """The class (label of the highest-precedence source, as image_view.class) of each labelled live image."""
    if db.conn.execute("SELECT NOT EXISTS (SELECT 1 FROM labels)").fetchone()[0]:
        return {}
    cur = db.conn.cursor()
    cur.row_factory = None
    cur.execute("SELECT id, class FROM image_view WHERE class IS NOT NULL")
    return dict(cur.fetchall())
