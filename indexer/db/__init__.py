"""The only module that opens connections and runs SQL.

Connections run in autocommit mode; writes go through `Database.transaction()` (BEGIN IMMEDIATE
... COMMIT), so one batch of results is one transaction: the checkpoint a restart resumes from.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..errors import BusyError, DatabaseError, QueryError
from ..migrations import migrate
from ..records import ImageResult, State

BUSY_TIMEOUT_MS = 10_000
# A run on another host whose heartbeat is older than this is taken as dead.
STALE_HEARTBEAT = timedelta(minutes=10)

_KNOWN_COLUMNS = "id, name, state, size, mtime_ns, error IS NOT NULL AS failed"  # -> KnownFile

FEATURE_COLUMNS = (
    "format", "mode", "width", "height", "dhash", "ahash", "phash", "brightness",
    "color_variance", "is_gray", "sharpness", "captured_at", "camera_make", "camera_model",
)


def utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_db_path() -> Path:
    return Path(os.environ.get("INDEXER_DB") or "index.db")


@dataclass(frozen=True)
class KnownFile:
    """What the database holds about one file, for change detection."""

    id: int
    name: str
    state: State
    size: int
    mtime_ns: int
    failed: bool  # the last decode failed (kept while the file is missing)


class Database:
    """A migrated connection to an index database."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise DatabaseError(f"no index database at {self.path} (run `indexer scan ROOT` to make one, or pass --db)")
        if self.path.exists() and self.path.is_dir():
            raise DatabaseError(f"{self.path} is a folder, not a database file")
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
            self.conn.execute("PRAGMA foreign_keys = ON")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise DatabaseError(f"cannot switch {self.path} to WAL mode (got {mode})")
            # FULL makes every committed batch durable across a power cut, at one fsync per batch.
            self.conn.execute("PRAGMA synchronous = FULL")
            migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise DatabaseError(f"cannot open {self.path} as an index database: {exc}") from exc
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- roots -------------------------------------------------------------------------------

    def roots(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM roots ORDER BY id").fetchall()

    def add_root(self, path: str) -> int:
        with self.transaction() as c:
            c.execute("INSERT OR IGNORE INTO roots (path, added_at) VALUES (?, ?)", (path, utcnow()))
            return c.execute("SELECT id FROM roots WHERE path = ?", (path,)).fetchone()[0]

    def mark_root_scanned(self, root_id: int) -> None:
        with self.transaction() as c:
            c.execute("UPDATE roots SET last_scan_at = ? WHERE id = ?", (utcnow(), root_id))

    def move_root(self, old: str, new: str) -> int:
        """Point a root at a new location; returns the number of images under it."""
        with self.transaction() as c:
            row = c.execute("SELECT id FROM roots WHERE path = ?", (old,)).fetchone()
            if row is None:
                raise DatabaseError(f"no root {old} in this database (see `indexer status`)")
            if c.execute("SELECT 1 FROM roots WHERE path = ?", (new,)).fetchone():
                raise DatabaseError(f"{new} is already a root of this database")
            c.execute("UPDATE roots SET path = ? WHERE id = ?", (new, row[0]))
            return c.execute("SELECT COUNT(*) FROM images WHERE root_id = ?", (row[0],)).fetchone()[0]

    def absorb_root(self, old_id: int, new_id: int, prefix: str) -> None:
        """Fold a root that lies inside another into it: its folders get `prefix` in front."""
        with self.transaction() as c:
            c.execute(
                "UPDATE images SET root_id = ?, folder = CASE WHEN folder = '' THEN ? ELSE ? || '/' || folder END "
                "WHERE root_id = ?",
                (new_id, prefix, prefix, old_id),
            )
            c.execute("DELETE FROM roots WHERE id = ?", (old_id,))

    # -- change detection ----------------------------------------------------------------------

    def files_in_folder(self, root_id: int, folder: str) -> dict[str, KnownFile]:
        rows = self.conn.execute(
            f"SELECT {_KNOWN_COLUMNS} FROM images WHERE root_id = ? AND folder = ?",
            (root_id, folder),
        )
        return {r["name"]: _known(r) for r in rows}

    def known_file(self, root_id: int, folder: str, name: str) -> KnownFile | None:
        r = self.conn.execute(
            f"SELECT {_KNOWN_COLUMNS} FROM images WHERE root_id = ? AND folder = ? AND name = ?",
            (root_id, folder, name),
        ).fetchone()
        return _known(r) if r else None

    def live_ids_under(self, root_id: int, folder: str) -> list[int]:
        """Live (not missing) images in `folder` and below it."""
        rows = self.conn.execute(
            "SELECT id FROM images WHERE root_id = ? AND state != 'missing' "
            "AND (folder = ? OR substr(folder, 1, ?) = ? OR ? = '')",
            (root_id, folder, len(folder) + 1, folder + "/", folder),
        )
        return [r[0] for r in rows]

    def live_folders(self, root_id: int, under: str) -> list[str]:
        """Folders (at or below `under`) that still hold files not marked missing."""
        if under:
            rows = self.conn.execute(
                "SELECT DISTINCT folder FROM images WHERE root_id = ? AND state != 'missing' "
                "AND (folder = ? OR substr(folder, 1, ?) = ?)",
                (root_id, under, len(under) + 1, under + "/"),
            )
        else:
            rows = self.conn.execute(
                "SELECT DISTINCT folder FROM images WHERE root_id = ? AND state != 'missing'", (root_id,)
            )
        return [r[0] for r in rows]

    def find_by_inode(self, device: int, inode: int, size: int, mtime_ns: int) -> sqlite3.Row | None:
        """A row whose file has this identity and content stamp (a moved or renamed file)."""
        return self.conn.execute(
            "SELECT i.id, i.root_id, i.folder, i.name, r.path AS root FROM images i JOIN roots r ON r.id = i.root_id "
            "WHERE i.device = ? AND i.inode = ? AND i.size = ? AND i.mtime_ns = ? LIMIT 1",
            (device, inode, size, mtime_ns),
        ).fetchone()

    # -- writes --------------------------------------------------------------------------------

    def mark_missing(self, ids: Sequence[int]) -> None:
        now = utcnow()
        with self.transaction() as c:
            c.executemany(
                "UPDATE images SET state = 'missing', missing_since = ? WHERE id = ? AND state != 'missing'",
                [(now, i) for i in ids],
            )

    def restore(self, found: Sequence[tuple[int, int | None, int | None]]) -> None:
        """Files back on disk unchanged, as (id, inode, device): live again with the features they
        had, under their current identity (a file restored from a copy has a new inode)."""
        with self.transaction() as c:
            c.executemany(
                "UPDATE images SET state = CASE WHEN error IS NULL THEN 'indexed' ELSE 'failed' END, "
                "missing_since = NULL, inode = ?, device = ? WHERE id = ?",
                [(inode, device, i) for i, inode, device in found],
            )

    def move(self, image_id: int, root_id: int, folder: str, name: str) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE images SET root_id = ?, folder = ?, name = ?, missing_since = NULL, "
                "state = CASE WHEN error IS NULL THEN 'indexed' ELSE 'failed' END WHERE id = ?",
                (root_id, folder, name, image_id),
            )

    def write_results(self, results: Iterable[ImageResult], run_id: int | None) -> None:
        """Store decoded (or failed) files: one transaction, the checkpoint."""
        now = utcnow()
        rows = []
        for r in results:
            f = r.features
            row: dict[str, Any] = {
                "root_id": r.item.root_id, "folder": r.item.folder, "name": r.item.name,
                "state": State.INDEXED.value if f else State.FAILED.value,
                "size": r.size, "mtime_ns": r.mtime_ns, "inode": r.inode, "device": r.device,
                "error": r.error, "now": now, "run_id": run_id,
            }
            for col in FEATURE_COLUMNS:
                row[col] = getattr(f, col) if f else None
            rows.append(row)
        cols = ("root_id", "folder", "name", "state", "size", "mtime_ns", "inode", "device", *FEATURE_COLUMNS, "error")
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols[3:])
        sql = (
            f"INSERT INTO images ({', '.join(cols)}, attempts, first_seen_at, indexed_at, missing_since, run_id) "
            f"VALUES ({', '.join(':' + c for c in cols)}, 1, :now, :now, NULL, :run_id) "
            f"ON CONFLICT (root_id, folder, name) DO UPDATE SET {updates}, attempts = images.attempts + 1, "
            "indexed_at = excluded.indexed_at, missing_since = NULL, run_id = excluded.run_id"
        )
        with self.transaction() as c:
            c.executemany(sql, rows)
            if run_id is not None:
                c.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (now, run_id))

    # -- runs ----------------------------------------------------------------------------------

    def start_run(self, command: str, params: dict[str, Any]) -> int:
        """Record a new run, refusing while another live run writes to this database."""
        host, pid, now = socket.gethostname(), os.getpid(), utcnow()
        with self.transaction() as c:
            for run in c.execute("SELECT * FROM runs WHERE status = 'running'").fetchall():
                if _run_alive(run, host):
                    raise BusyError(
                        f"another `indexer {run['command']}` (pid {run['pid']} on {run['host']}, started "
                        f"{run['started_at']}) is writing to this database; wait for it to finish or stop it"
                    )
                c.execute("UPDATE runs SET status = 'crashed', ended_at = heartbeat_at WHERE id = ?", (run["id"],))
            cur = c.execute(
                "INSERT INTO runs (command, status, started_at, heartbeat_at, pid, host, params) "
                "VALUES (?, 'running', ?, ?, ?, ?, ?)",
                (command, now, now, pid, host, json.dumps(params, sort_keys=True)),
            )
            return int(cur.lastrowid)

    def heartbeat(self, run_id: int, counts: dict[str, int]) -> None:
        sets = ", ".join(f"n_{k} = :{k}" for k in counts)
        with self.transaction() as c:
            c.execute(f"UPDATE runs SET heartbeat_at = :now, {sets} WHERE id = :id",
                      {**counts, "now": utcnow(), "id": run_id})

    def finish_run(self, run_id: int, status: str, counts: dict[str, int], elapsed: float,
                   error: str | None = None, problems: list[dict[str, str]] | None = None) -> None:
        sets = ", ".join(f"n_{k} = :{k}" for k in counts)
        with self.transaction() as c:
            c.execute(
                f"UPDATE runs SET status = :status, ended_at = :now, heartbeat_at = :now, elapsed_s = :elapsed, "
                f"error = :error, problems = :problems, {sets} WHERE id = :id",
                {**counts, "status": status, "now": utcnow(), "elapsed": elapsed, "error": error,
                 "problems": json.dumps(problems) if problems else None, "id": run_id},
            )

    # -- reading -------------------------------------------------------------------------------

    def state_counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in State}
        for row in self.conn.execute("SELECT state, COUNT(*) FROM images GROUP BY state"):
            counts[row[0]] = row[1]
        return counts

    def root_summaries(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT r.id, r.path, r.added_at, r.last_scan_at, "
            "SUM(i.state = 'indexed') AS indexed, SUM(i.state = 'failed') AS failed, "
            "SUM(i.state = 'missing') AS missing "
            "FROM roots r LEFT JOIN images i ON i.root_id = r.id GROUP BY r.id ORDER BY r.id"
        )
        return [{k: (r[k] or 0) if k in ("indexed", "failed", "missing") else r[k] for k in r.keys()} for r in rows]

    def recent_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        out = []
        for r in rows:
            d = dict(r)
            d["params"] = json.loads(d["params"])
            d["problems"] = json.loads(d["problems"]) if d["problems"] else []
            out.append(d)
        return out

    def failed_files(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT path, error, attempts, indexed_at FROM image_files WHERE state = 'failed' ORDER BY root, rel_path"
        )
        return [dict(r) for r in rows]

    def query(self, view: str, where: str | None, order_by: str = "id") -> tuple[list[str], Iterator[tuple]]:
        """Rows of a view filtered by a user's SQL expression, run read-only."""
        if where is not None:
            check_expression(where)
        sql = f"SELECT * FROM {view}" + (f" WHERE ({where})" if where else "") + f" ORDER BY {order_by}"
        with read_only(self.conn):
            try:
                cur = self.conn.execute(sql)
            except sqlite3.Error as exc:
                raise QueryError(f"bad --where expression: {exc}") from exc
            cols = [d[0] for d in cur.description]
            rows = cur.fetchall()
        return cols, iter(rows)


def check_expression(expr: str, what: str = "--where") -> None:
    """Refuse an SQL expression that is not one self-contained expression: a ')' closing more
    than it opened, or a ';', outside quotes and comments. It is pasted inside parentheses."""
    depth, i, n = 0, 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            end = expr.find(close, i + 1)
            while end != -1 and close != "]" and expr[end + 1:end + 2] == close:  # doubled quote
                end = expr.find(close, end + 2)
            if end == -1:
                raise QueryError(f"bad {what} expression (unterminated quote {ch}): {expr}")
            i = end + 1
            continue
        if expr.startswith("--", i):
            raise QueryError(f"bad {what} expression (no comments allowed): {expr}")
        if expr.startswith("/*", i):
            raise QueryError(f"bad {what} expression (no comments allowed): {expr}")
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise QueryError(f"bad {what} expression (a ')' closes more than it opened): {expr}")
        elif ch == ";":
            raise QueryError(f"bad {what} expression (no ';' allowed): {expr}")
        i += 1
    if depth:
        raise QueryError(f"bad {what} expression (unbalanced '('): {expr}")


def _known(r: sqlite3.Row) -> KnownFile:
    return KnownFile(r["id"], r["name"], State(r["state"]), r["size"], r["mtime_ns"], bool(r["failed"]))


_DENIED = {
    sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA, sqlite3.SQLITE_INSERT,
    sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE, sqlite3.SQLITE_TRANSACTION,
}


def _authorize(action: int, *args: object) -> int:
    return sqlite3.SQLITE_DENY if action in _DENIED else sqlite3.SQLITE_OK


@contextmanager
def read_only(conn: sqlite3.Connection) -> Iterator[None]:
    """Run user SQL with writes refused twice over: query_only and an authorizer."""
    conn.execute("PRAGMA query_only = ON")
    conn.set_authorizer(_authorize)
    try:
        yield
    finally:
        conn.set_authorizer(None)
        conn.execute("PRAGMA query_only = OFF")


def _run_alive(run: sqlite3.Row, host: str) -> bool:
    if run["host"] == host:
        if run["pid"] == os.getpid():
            return False
        try:
            os.kill(run["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    beat = datetime.strptime(run["heartbeat_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc) - beat < STALE_HEARTBEAT
