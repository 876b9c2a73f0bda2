"""Every SQL statement of `indexer duplicates` and `indexer similar`.

Reads go through image_view (live images); the writes are ours (moves and the images they move),
each move in one transaction with values as parameters.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..names import from_db, to_raw, to_text
from . import Database, utcnow


@dataclass(frozen=True)
class ImageInfo:
    """What the keep rules and the output need of one live image (paths exact)."""

    id: int
    path: str
    root: str
    rel_path: str
    size: int
    mtime_ns: int
    width: int
    height: int
    sharpness: float
    time: str | None       # captured_at, else mtime (UTC), ISO-8601
    dhash: int
    ahash: int
    phash: int


def image_info(db: Database, ids: Sequence[int]) -> dict[int, ImageInfo]:
    """id -> ImageInfo of live images (ids not live are left out)."""
    out: dict[int, ImageInfo] = {}
    id_list = [int(i) for i in ids]
    cur = db.conn.cursor()
    cur.row_factory = None
    for start in range(0, len(id_list), 50_000):
        cur.execute(
            "SELECT i.id, r.path, r.path_raw, CASE WHEN i.folder = '' THEN i.name ELSE i.folder || '/' || i.name END, "
            "i.rel_raw, i.size, i.mtime_ns, COALESCE(i.width, 0), COALESCE(i.height, 0), COALESCE(i.sharpness, 0), "
            "COALESCE(i.captured_at, strftime('%Y-%m-%dT%H:%M:%S', i.mtime_ns / 1e9, 'unixepoch')), "
            "COALESCE(i.dhash, 0), COALESCE(i.ahash, 0), COALESCE(i.phash, 0) "
            "FROM json_each(?) j CROSS JOIN images i ON i.id = j.value JOIN roots r ON r.id = i.root_id "
            "WHERE i.state = 'indexed'", (json.dumps(id_list[start:start + 50_000]),))
        for (i, root, root_raw, rel, raw, size, mtime_ns, w, h, sharp, time, dh, ah, ph) in cur:
            root, rel = from_db(root, root_raw), from_db(rel, raw)
            out[i] = ImageInfo(i, f"{root}/{rel}", root, rel, size, mtime_ns, w, h, sharp, time, dh, ah, ph)
    return out


def ids_under(db: Database, prefix: str) -> list[int]:
    """Live images whose absolute path is `prefix` or below it (a root or a folder of one)."""
    text = to_text(prefix.rstrip("/"))
    rows = db.conn.execute("SELECT id FROM image_view WHERE path = ? OR substr(path, 1, ?) = ?",
                           (text, len(text) + 1, text + "/"))
    return [r[0] for r in rows]


def find_by_path(db: Database, path: str) -> int | None:
    """The row id of the image at this absolute path (any state), None if not indexed."""
    for root_id, root in roots(db):
        if path == root or not path.startswith(root.rstrip("/") + "/"):
            continue
        rel = path[len(root.rstrip("/")) + 1:]
        folder, _, name = rel.rpartition("/")
        r = db.conn.execute("SELECT id FROM images WHERE root_id = ? AND folder = ? AND name = ?",
                            (root_id, to_text(folder), to_text(name))).fetchone()
        if r is not None:
            return int(r[0])
    return None


def image_row(db: Database, image_id: int) -> dict[str, Any] | None:
    r = db.conn.execute("SELECT id, state, dhash, ahash, phash FROM images WHERE id = ?", (image_id,)).fetchone()
    return dict(r) if r is not None else None


def roots(db: Database) -> list[tuple[int, str]]:
    """(id, path as the file system has it)."""
    return [(r[0], from_db(r[1], r[2])) for r in db.conn.execute("SELECT id, path, path_raw FROM roots ORDER BY id")]


# -- moves ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MoveRecord:
    id: int
    image_id: int
    manifest: str
    from_path: str
    to_path: str
    group_no: int
    keeper_id: int | None
    reason: str
    size: int
    mtime_ns: int
    undone_at: str | None


def record_move(db: Database, image_id: int, manifest: str, src: str, dest: str, group_no: int,
                keeper_id: int | None, reason: str, size: int, mtime_ns: int) -> None:
    """One moved file: its row in `moves`, its image marked missing. One transaction."""
    now = utcnow()
    with db.transaction() as c:
        c.execute("INSERT INTO moves (image_id, manifest, from_path, to_path, from_raw, to_raw, group_no, keeper_id, "
                  "reason, size, mtime_ns, moved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (image_id, to_text(manifest), to_text(src), to_text(dest), to_raw(src), to_raw(dest), group_no,
                   keeper_id, to_text(reason), size, mtime_ns, now))
        c.execute("UPDATE images SET state = 'missing', missing_since = ? WHERE id = ? AND state != 'missing'",
                  (now, image_id))


def moves_of(db: Database, manifest: str) -> list[MoveRecord]:
    rows = db.conn.execute(
        "SELECT id, image_id, manifest, from_path, from_raw, to_path, to_raw, group_no, keeper_id, reason, size, "
        "mtime_ns, undone_at FROM moves WHERE manifest = ? ORDER BY id", (to_text(manifest),))
    return [MoveRecord(r[0], r[1], r[2], from_db(r[3], r[4]), from_db(r[5], r[6]), r[7], r[8], r[9], r[10], r[11],
                       r[12]) for r in rows]


def record_undo(db: Database, move_id: int, image_id: int, inode: int, device: int) -> None:
    """A file put back: its image live again (with its features), the move marked undone."""
    with db.transaction() as c:
        c.execute("UPDATE moves SET undone_at = ? WHERE id = ?", (utcnow(), move_id))
        c.execute("UPDATE images SET state = CASE WHEN error IS NULL THEN 'indexed' ELSE 'failed' END, "
                  "missing_since = NULL, inode = ?, device = ? WHERE id = ?", (inode, device, image_id))
