"""Every SQL statement of `indexer select`, `labels`, `buckets` and `selections`.

Functions take a `Database`. User expressions (--where, --per) only ever run inside
`read_only()`; the writes here (the feature cache, sequences, labels, selections) are ours, each in
one transaction, with values as parameters.
"""
from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..names import from_db, to_text
from . import Database, functions, read_only, utcnow
from . import check_expression as check_shape
from .guard import explain, view_columns

VIEW = "image_view"

# Column order of feature_rows(); the cache stores the same arrays.
FEATURE_DTYPE = np.dtype([
    ("id", "i8"), ("dhash", "i8"), ("ahash", "i8"), ("phash", "i8"), ("brightness", "f4"),
    ("color_variance", "f4"), ("is_gray", "u1"), ("time", "f8"), ("sequence", "i8"),
])


# -- user queries, read-only --------------------------------------------------------------------

def register_functions(db: Database) -> None:
    """SQL functions for --where and --per: level(path, n), hamming(a, b) (every connection has
    them already; kept for callers that register explicitly)."""
    functions.register(db.conn)


def _explain(exc: sqlite3.Error, what: str, db: Database | None = None) -> Exception:
    columns = view_columns(db.conn, VIEW) if db is not None else ()
    return explain(exc, what, columns, db.path if db is not None else "the index")


def _user_sql(where: str | None) -> str:
    # The newlines keep a trailing `--` comment in the user's text from eating our SQL.
    return f" WHERE (\n{where}\n)" if where else ""


def check_expression(db: Database, expr: str, what: str = "--where") -> None:
    """Refuse anything but one self-contained expression (db.check_expression), then compile it
    against image_view without reading a row: a bad column or an attempt to write fails here."""
    check_shape(expr, what)
    with read_only(db.conn):
        try:
            db.conn.execute(f"SELECT (\n{expr}\n) FROM {VIEW} LIMIT 0").fetchall()
        except sqlite3.Error as exc:
            raise _explain(exc, f"{what} expression", db) from exc


def where_ids(db: Database, where: str) -> np.ndarray:
    """Ids of live images matching a --where expression."""
    sql = f"SELECT id FROM {VIEW}{_user_sql(where)}"
    with read_only(db.conn):
        try:
            cur = db.conn.execute(sql)
            return np.fromiter((r[0] for r in cur), dtype=np.int64)
        except sqlite3.Error as exc:
            raise _explain(exc, "--where expression", db) from exc


def group_values(db: Database, per: str, where: str | None, what: str = "--per expression",
                 ids: Sequence[int] | None = None) -> tuple[np.ndarray, list[Any]]:
    """(ids, values of the --per expression) of live images matching --where (or with these ids)."""
    sql = f"SELECT id, (\n{per}\n) FROM {VIEW}{_user_sql(where)}"
    params: tuple[Any, ...] = ()
    if ids is not None:
        sql = f"SELECT id, (\n{per}\n) FROM {VIEW} WHERE id IN (SELECT value FROM json_each(?))"
        params = (json.dumps([int(i) for i in ids]),)
    with read_only(db.conn):
        try:
            rows = db.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _explain(exc, what if where is None else f"{what} or --where expression", db) from exc
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, [r[1] for r in rows]


# -- the feature cache (derived from images; rebuilt when images change) -----------------------

@dataclass(frozen=True)
class CacheState:
    dirty: bool
    burst_gap: float | None
    computed_at: str | None


@dataclass(frozen=True)
class FolderRow:
    root_id: int
    root: str
    folder: str
    count: int
    uneven_names: bool  # names of different lengths: byte order may differ from natural order


def cache_state(db: Database) -> CacheState:
    r = db.conn.execute("SELECT dirty, burst_gap, computed_at FROM select_cache_state WHERE id = 1").fetchone()
    has_cache = db.conn.execute("SELECT COUNT(*) FROM select_cache").fetchone()[0] > 0
    return CacheState(bool(r[0]) or not has_cache, r[1], r[2])


def folder_rows(conn: sqlite3.Connection) -> list[FolderRow]:
    """Folders of live images in (root_id, folder) byte order, the order of feature_rows()."""
    rows = conn.execute(
        "SELECT i.root_id, r.path, i.folder, COUNT(*), MIN(length(i.name)) != MAX(length(i.name)) "
        "FROM images i JOIN roots r ON r.id = i.root_id WHERE i.state = 'indexed' "
        "GROUP BY i.root_id, i.folder ORDER BY i.root_id, i.folder"
    )
    return [FolderRow(a, b, c, d, bool(e)) for a, b, c, d, e in rows]


def feature_rows(conn: sqlite3.Connection) -> np.ndarray:
    """All live images' selection features, ordered by (root_id, folder, name), as one record array.
    `time` is captured_at (camera clock) else mtime, in seconds; `sequence` is -1 when unset."""
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: np.fromiter reads them without a Row object each
    cur.execute(
        "SELECT id, COALESCE(dhash, 0), COALESCE(ahash, 0), COALESCE(phash, 0), COALESCE(brightness, 0), "
        "COALESCE(color_variance, 0), COALESCE(is_gray, 0), "
        "COALESCE((julianday(captured_at) - 2440587.5) * 86400.0, mtime_ns / 1e9), COALESCE(sequence_id, -1) "
        "FROM images WHERE +state = 'indexed' ORDER BY root_id, folder, name"
    )
    return np.fromiter(cur, dtype=FEATURE_DTYPE)


def names_in_folder(conn: sqlite3.Connection, root_id: int, folder: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM images WHERE root_id = ? AND folder = ? AND state = 'indexed' ORDER BY name",
        (root_id, folder))]


def write_cache(conn: sqlite3.Connection, arrays: dict[str, bytes], burst_gap: float,
                sequence_updates: Iterable[tuple[int, int]]) -> None:
    """Store the arrays and new sequence ids; mark the cache clean. Call inside a transaction."""
    conn.executemany("UPDATE images SET sequence_id = ? WHERE id = ?", sequence_updates)
    conn.execute("DELETE FROM select_cache")
    conn.executemany("INSERT INTO select_cache (key, value) VALUES (?, ?)", arrays.items())
    conn.execute("UPDATE select_cache_state SET dirty = 0, burst_gap = ?, computed_at = ? WHERE id = 1",
                 (burst_gap, utcnow()))


@contextmanager
def snapshot(db: Database) -> Iterator[sqlite3.Connection]:
    """A read transaction: consistent reads of a database we may not write to."""
    db.conn.execute("BEGIN")
    try:
        yield db.conn
    finally:
        db.conn.execute("ROLLBACK")


def read_cache(db: Database) -> dict[str, bytes]:
    return {k: v for k, v in db.conn.execute("SELECT key, value FROM select_cache")}


# -- paths --------------------------------------------------------------------------------------

class ImagePath(NamedTuple):
    """One image's path (a named tuple, not a dataclass: `select --per sequence` makes ~200k of
    them, and a tuple is built several times faster)."""

    id: int
    path: str
    root: str
    rel_path: str


_PATH_CHUNK = 100_000  # ids per query (one JSON array each)


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector off for a block that builds many small acyclic objects."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def image_paths(db: Database, ids: Sequence[int]) -> list[ImagePath]:
    """Paths of these images, in the order given (ids that are not live are left out; an id
    given twice comes back twice).

    One query per 100,000 ids: json_each walks the ids in the order given and each is looked up
    by its rowid (never a scan of images). Roots are read once; a relative path is decoded from
    its exact bytes only when it has them (names that are not UTF-8)."""
    roots = {rid: from_db(path, raw) for rid, path, raw in
             db.conn.execute("SELECT id, path, path_raw FROM roots").fetchall()}
    id_list = [int(i) for i in ids]
    cur = db.conn.cursor()
    cur.row_factory = None
    out: list[ImagePath] = []
    keys: list[int] = []
    with no_gc():  # ~10 objects a row, none in a cycle: the collector would only walk them again and again
        for start in range(0, len(id_list), _PATH_CHUNK):
            cur.execute(
                "SELECT j.key, i.id, i.root_id, CASE WHEN i.folder = '' THEN i.name ELSE i.folder || '/' || i.name "
                "END, i.rel_raw FROM json_each(?) j CROSS JOIN images i ON i.id = j.value "  # CROSS JOIN: look each
                "WHERE i.state = 'indexed'", (json.dumps(id_list[start:start + _PATH_CHUNK]),))  # id up, no scan
            _collect(cur, roots, start, out, keys)
    if any(b <= a for a, b in zip(keys, keys[1:])):  # never seen: SQLite gave rows out of the given order
        out = [p for _, p in sorted(zip(keys, out), key=lambda kp: kp[0])]
    return out


def _collect(rows: Iterable[tuple], roots: dict[int, str], start: int, out: list[ImagePath], keys: list[int]) -> None:
    """ImagePaths of (json key, id, root id, folder/name, rel_raw) rows, with their positions."""
    new = ImagePath._make
    for key, i, rid, rel, raw in rows:
        root = roots.get(rid)
        if root is None:
            continue
        if raw is not None:
            rel = from_db(rel, raw)  # the exact bytes of a name that is not UTF-8
        keys.append(start + key)
        out.append(new((i, f"{root}/{rel}", root, rel)))


def image_ids_for_files(db: Database, root_id: int, files: Sequence[tuple[str, str]]) -> list[int | None]:
    """Row ids of (folder, name) files of a root, None where the index has no row."""
    out: list[int | None] = []
    for folder, name in files:
        r = db.conn.execute("SELECT id FROM images WHERE root_id = ? AND folder = ? AND name = ?",
                            (root_id, to_text(folder), to_text(name))).fetchone()
        out.append(r[0] if r else None)
    return out


def image_states(db: Database, ids: Sequence[int]) -> dict[int, tuple[str, str | None, int]]:
    """id -> (state, error, attempts)."""
    out = {}
    for start in range(0, len(ids), 30_000):
        chunk = [int(i) for i in ids[start:start + 30_000]]
        for i, state, error, attempts in db.conn.execute(
                "SELECT id, state, error, attempts FROM images WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(chunk),)):
            out[i] = (state, error, attempts)
    return out


def ids_first_seen_after(db: Database, cutoff: str) -> np.ndarray:
    cur = db.conn.execute("SELECT id FROM images WHERE state = 'indexed' AND first_seen_at > ?", (cutoff,))
    return np.fromiter((r[0] for r in cur), dtype=np.int64)


# -- selections ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SavedSelection:
    id: int
    name: str
    created_at: str
    updated_at: str
    method: str
    seed: int
    params: dict[str, Any]
    members: int = 0
    live_members: int = 0
    rounds: int = 0


def get_selection(db: Database, name: str) -> SavedSelection | None:
    r = db.conn.execute("SELECT id, name, created_at, updated_at, method, seed, params FROM selections "
                        "WHERE name = ?", (name,)).fetchone()
    if r is None:
        return None
    return SavedSelection(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))


def list_selections(db: Database) -> list[SavedSelection]:
    rows = db.conn.execute(
        "SELECT s.id, s.name, s.created_at, s.updated_at, s.method, s.seed, s.params, "
        "COUNT(m.image_id), COALESCE(SUM(i.state = 'indexed'), 0), COALESCE(MAX(m.round), 0) "
        "FROM selections s LEFT JOIN selection_members m ON m.selection_id = s.id "
        "LEFT JOIN images i ON i.id = m.image_id GROUP BY s.id ORDER BY s.name"
    )
    return [SavedSelection(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8], r[9]) for r in rows]


def member_ids(db: Database, selection_id: int) -> np.ndarray:
    cur = db.conn.execute("SELECT image_id FROM selection_members WHERE selection_id = ? ORDER BY image_id",
                          (selection_id,))
    return np.fromiter((r[0] for r in cur), dtype=np.int64)


def next_round(db: Database, selection_id: int) -> int:
    r = db.conn.execute("SELECT COALESCE(MAX(round), 0) FROM selection_members WHERE selection_id = ?",
                        (selection_id,)).fetchone()
    return int(r[0]) + 1


def save_selection(db: Database, name: str, method: str, seed: int, params: dict[str, Any],
                   ids: Sequence[int], now: str) -> int:
    """A new selection with these members as round 1, made at `now` (UTC ISO-8601): images first
    seen after it are the candidates of the next --extend."""
    with db.transaction() as c:
        cur = c.execute("INSERT INTO selections (name, created_at, updated_at, method, seed, params) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (name, now, now, method, seed, json.dumps(params)))
        sid = int(cur.lastrowid)
        c.executemany("INSERT INTO selection_members (selection_id, image_id, added_at, round) VALUES (?, ?, ?, 1)",
                      [(sid, int(i), now) for i in ids])
    return sid


def extend_selection(db: Database, selection_id: int, rnd: int, params: dict[str, Any], ids: Sequence[int],
                     now: str) -> None:
    """Add members as round `rnd` (made at `now`) and store the updated parameters."""
    with db.transaction() as c:
        c.executemany("INSERT OR IGNORE INTO selection_members (selection_id, image_id, added_at, round) "
                      "VALUES (?, ?, ?, ?)", [(selection_id, int(i), now, rnd) for i in ids])
        c.execute("UPDATE selections SET updated_at = ?, params = ? WHERE id = ?",
                  (now, json.dumps(params), selection_id))


def delete_selection(db: Database, name: str) -> bool:
    with db.transaction() as c:
        return c.execute("DELETE FROM selections WHERE name = ?", (name,)).rowcount > 0


# -- labels -------------------------------------------------------------------------------------

def live_folders_of(db: Database, ids: np.ndarray | None) -> list[tuple[int, str]]:
    """(id, folder) of live images, all of them or those with these ids."""
    if ids is None:
        return db.conn.execute("SELECT id, folder FROM images WHERE state = 'indexed'").fetchall()
    out: list[tuple[int, str]] = []
    id_list = [int(i) for i in ids]
    for start in range(0, len(id_list), 30_000):
        out += db.conn.execute("SELECT id, folder FROM images WHERE state = 'indexed' AND id IN "
                               "(SELECT value FROM json_each(?))", (json.dumps(id_list[start:start + 30_000]),)
                               ).fetchall()
    return out


def label_counts(db: Database) -> list[tuple[str, str, int]]:
    """(source, label, live images) for every label."""
    return db.conn.execute(
        "SELECT l.source, l.label, COUNT(*) FROM labels l JOIN images i ON i.id = l.image_id "
        "WHERE i.state = 'indexed' GROUP BY l.source, l.label ORDER BY l.source, l.label").fetchall()


def roots(db: Database) -> list[tuple[int, str]]:
    """(id, path as the file system has it), longest path first."""
    rows = db.conn.execute("SELECT id, path, path_raw FROM roots ORDER BY length(path) DESC, id")
    return [(r[0], from_db(r[1], r[2])) for r in rows]


def find_image(db: Database, root_id: int, folder: str, name: str) -> int | None:
    r = db.conn.execute("SELECT id FROM images WHERE root_id = ? AND folder = ? AND name = ?",
                        (root_id, to_text(folder), to_text(name))).fetchone()
    return r[0] if r else None
