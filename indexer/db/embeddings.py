"""Every SQL statement of embeddings (schema 0007): models, vectors, what is left to embed.

Functions take a `Database`. Writes are ours, one transaction per batch, values as parameters;
the user's --where runs read-only (select.where_ids).
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..names import from_db
from . import Database, utcnow


@dataclass(frozen=True)
class ModelRow:
    id: int
    name: str
    sha256: str
    path: str
    dim: int
    preset: str
    resize: int
    crop: int
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_name: str
    output_name: str
    created_at: str
    last_used_at: str
    vectors: int = 0     # live images with a vector of this model
    failed: int = 0      # live images this model failed on

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)


def has_schema(db: Database) -> bool:
    """False for an index older than schema 0007 opened read-only."""
    return db.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'embedding_models'").fetchone() is not None


def register_model(db: Database, info: dict[str, Any]) -> int:
    """The id of this model and preprocessing, added when new; its path and last use updated."""
    keys = ("sha256", "resize", "crop", "interpolation", "mean", "std", "output_name")
    now = utcnow()
    with db.transaction() as c:
        row = c.execute("SELECT id FROM embedding_models WHERE " + " AND ".join(f"{k} = ?" for k in keys),
                        [info[k] for k in keys]).fetchone()
        if row is not None:
            c.execute("UPDATE embedding_models SET path = ?, name = ?, last_used_at = ? WHERE id = ?",
                      (info["path"], info["name"], now, row[0]))
            return int(row[0])
        cols = ("name", "sha256", "path", "dim", "preset", "resize", "crop", "interpolation", "mean", "std",
                "input_name", "output_name")
        cur = c.execute(
            f"INSERT INTO embedding_models ({', '.join(cols)}, created_at, last_used_at) "
            f"VALUES ({', '.join('?' for _ in cols)}, ?, ?)", [info[k] for k in cols] + [now, now])
        return int(cur.lastrowid)


def models(db: Database) -> list[ModelRow]:
    """Every model, most recently used first, with its counts over live images."""
    if not has_schema(db):
        return []
    rows = db.conn.execute(
        "SELECT m.*, "
        "(SELECT COUNT(*) FROM embeddings e JOIN images i ON i.id = e.image_id "
        " WHERE e.model_id = m.id AND i.state = 'indexed' AND e.vector IS NOT NULL) AS vectors, "
        "(SELECT COUNT(*) FROM embeddings e JOIN images i ON i.id = e.image_id "
        " WHERE e.model_id = m.id AND i.state = 'indexed' AND e.error IS NOT NULL) AS failed "
        "FROM embedding_models m ORDER BY m.last_used_at DESC, m.id DESC").fetchall()
    return [_model(r) for r in rows]


def _model(r: sqlite3.Row) -> ModelRow:
    d = {k: r[k] for k in r.keys()}
    d["mean"], d["std"] = tuple(json.loads(d["mean"])), tuple(json.loads(d["std"]))
    return ModelRow(**d)


def pending(db: Database, model_id: int, ids: Sequence[int] | None, retry_errors: bool, page: int = 2048
            ) -> Iterator[tuple[int, str, str, int, int]]:
    """(image id, exact root, exact path below it, size, mtime_ns) of live images without a vector of this model (or
    without any row: failed ones only with retry_errors), in id order, read a page at a time so a
    million pending images never sit in memory. `ids` restricts them (a --where)."""
    skip = "e.vector IS NOT NULL" if retry_errors else "1"
    sql = ("SELECT i.id, r.path, r.path_raw, CASE WHEN i.folder = '' THEN i.name ELSE i.folder || '/' || i.name END, "
           "i.rel_raw, i.size, i.mtime_ns FROM images i JOIN roots r ON r.id = i.root_id "
           "WHERE i.state = 'indexed' AND i.id > ? {only} AND NOT EXISTS (SELECT 1 FROM embeddings e "
           f"WHERE e.model_id = ? AND e.image_id = i.id AND {skip}) ORDER BY i.id LIMIT ?")
    wanted = sorted(set(int(i) for i in ids)) if ids is not None else None
    last = 0
    while True:
        if wanted is None:
            rows = db.conn.execute(sql.format(only=""), (last, model_id, page)).fetchall()
        else:
            chunk = [i for i in wanted[_bisect(wanted, last):][:page * 4]]
            if not chunk:
                return
            rows = db.conn.execute(sql.format(only="AND i.id IN (SELECT value FROM json_each(?))"),
                                   (last, json.dumps(chunk), model_id, page)).fetchall()
            if not rows:
                last = chunk[-1]
                continue
        if not rows:
            return
        for i, root, root_raw, rel, raw, size, mtime in rows:
            yield int(i), from_db(root, root_raw), from_db(rel, raw), int(size), int(mtime)
        last = int(rows[-1][0])


def _bisect(a: list[int], x: int) -> int:
    import bisect
    return bisect.bisect_right(a, x)


def write(db: Database, model_id: int, rows: Sequence[tuple[int, bytes | None, str | None]], run_id: int | None) -> None:
    """Store (image id, vector, error) rows: one transaction, the checkpoint. An image whose row
    changed since (no longer indexed) is left out."""
    now = utcnow()
    with db.transaction() as c:
        c.executemany(
            "INSERT INTO embeddings (image_id, model_id, vector, error, run_id, created_at) "
            "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM images WHERE id = ? AND state = 'indexed') "
            "ON CONFLICT (model_id, image_id) DO UPDATE SET vector = excluded.vector, error = excluded.error, "
            "run_id = excluded.run_id, created_at = excluded.created_at",
            [(i, model_id, v, e, run_id, now, i) for i, v, e in rows])
        if run_id is not None:
            c.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (now, run_id))


def vectors(db: Database, model_id: int, dim: int, ids: Any = None) -> tuple[Any, Any]:
    """(image ids int64, vectors (n, dim) float16) of live images with a vector of this model, in
    id order; with `ids`, only those (any order in, id order out)."""
    import numpy as np

    sql = ("SELECT e.image_id, e.vector FROM embeddings e JOIN images i ON i.id = e.image_id "
           "WHERE e.model_id = ? AND e.vector IS NOT NULL AND i.state = 'indexed'")
    if ids is not None:
        sql += " AND e.image_id IN (SELECT value FROM json_each(?))"
        params: tuple[Any, ...] = (model_id, json.dumps([int(x) for x in ids]))
    else:
        params = (model_id,)
    count = db.conn.execute(sql.replace("e.image_id, e.vector", "COUNT(*)", 1), params).fetchone()[0]
    out_ids = np.empty(count, np.int64)
    mat = np.empty((count, dim), "<f2")  # filled in place: a million vectors are never held twice
    cur = db.conn.cursor()
    cur.row_factory = None
    cur.execute(sql + " ORDER BY e.image_id", params)
    n, width = 0, 2 * dim
    while n < count and (rows := cur.fetchmany(8192)):
        rows = [r for r in rows if r[1] is not None and len(r[1]) == width][: count - n]
        if rows:
            out_ids[n:n + len(rows)] = [r[0] for r in rows]
            mat[n:n + len(rows)] = np.frombuffer(b"".join(r[1] for r in rows), "<f2").reshape(len(rows), dim)
            n += len(rows)
    return out_ids[:n], mat[:n]


def vector_of(db: Database, model_id: int, image_id: int) -> bytes | None:
    row = db.conn.execute("SELECT vector FROM embeddings WHERE model_id = ? AND image_id = ?",
                          (model_id, image_id)).fetchone()
    return None if row is None else row[0]


def failures(db: Database, model_id: int, limit: int = 1000) -> list[tuple[str, str]]:
    """(path, error) of live images this model failed on."""
    rows = db.conn.execute(
        "SELECT f.path, e.error FROM embeddings e JOIN image_files f ON f.id = e.image_id "
        "WHERE e.model_id = ? AND e.error IS NOT NULL AND f.state = 'indexed' ORDER BY f.path LIMIT ?",
        (model_id, limit)).fetchall()
    return [(r[0], r[1]) for r in rows]
