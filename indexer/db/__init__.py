"""The only module that opens connections and runs SQL.

Connections run in autocommit mode; writes go through `Database.transaction()` (BEGIN IMMEDIATE
... COMMIT), so one batch of results is one transaction: the checkpoint a restart resumes from.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import BusyError, DatabaseError, ReadOnlyError
from ..lock import WriterLock, writer_active
from ..migrations import applied_version, load_migrations, migrate
from ..names import from_db, rel_raw, split_raw, to_raw, to_text
from ..records import ImageResult, State
from . import functions
from .guard import check_expression, corruption_error, explain, is_corruption, read_only, view_columns

__all__ = ["Database", "KnownFile", "check_expression", "read_only", "default_db_path", "utcnow"]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000

_KNOWN_COLUMNS = "id, name, rel_raw, state, size, mtime_ns, error IS NOT NULL AS failed"  # -> KnownFile

FEATURE_COLUMNS = (
    "format", "mode", "width", "height", "dhash", "ahash", "phash", "brightness",
    "color_variance", "is_gray", "sharpness", "captured_at", "camera_make", "camera_model",
    "features_source",
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
    """A migrated connection to an index database.

    `write=True` opens it for writing (refused with ReadOnlyError where the file, its folder or the
    mount cannot be written); `write=False` opens it read-only: nothing is ever written, not even
    the WAL switch; `write=None` reads through a read-only connection and opens a short-lived writer
    only inside `transaction()` (the select cache), where the file can be written. Read-only
    connections matter to other readers: closing a read-write connection makes SQLite try an
    exclusive lock (to checkpoint if it was the last one), and a plain `sqlite3` reader that starts
    at that instant gets "database is locked". `check=True` runs
    `PRAGMA quick_check` first (the writers that add images do, so they never write into a
    damaged file). A database whose schema is older than this indexer is migrated where it can be
    written; a read-only one must be migrated by its owner first.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False, write: bool | None = True,
                 check: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise DatabaseError(f"no index database at {self.path} (run `indexer scan ROOT` to make one, or pass --db)")
        if self.path.exists() and self.path.is_dir():
            raise DatabaseError(f"{self.path} is a folder, not a database file")
        self._writer_lock = WriterLock(self.path)
        self._immutable = False
        self._writer_on_demand = write is None and self.path.exists()
        self.readonly = write is False or self._writer_on_demand
        if self.readonly:
            self.conn = self._open_reader()
            if self._writer_on_demand and not self._immutable and _writable(self.path):
                self.readonly = False  # transaction() opens a writer for the moment it writes
            else:
                self._writer_on_demand = False
        else:
            self.conn = self._open_writer(check)

    def _open_writer(self, check: bool) -> sqlite3.Connection:
        conn = self._connect(str(self.path), uri=False)
        try:
            if check:
                self._quick_check(conn)
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise DatabaseError(f"cannot switch {self.path} to WAL mode (got {mode})")
            # FULL makes every committed batch durable across a power cut, at one fsync per batch.
            conn.execute("PRAGMA synchronous = FULL")
            migrate(conn)
        except BaseException as exc:
            conn.close()
            raise self._open_error(exc) from exc
        return conn

    def _open_reader(self) -> sqlite3.Connection:
        """A read-only connection. In a read-only folder SQLite cannot make the WAL's shared-memory
        file; then the file is read as immutable (nobody can be writing it there)."""
        base = "file:" + quote(str(self.path.resolve()))
        conn = None
        for uri in (base + "?mode=ro", base + "?mode=ro&immutable=1"):
            try:
                conn = self._connect(uri, uri=True)
                self._check_schema(conn)
                self._immutable = uri.endswith("immutable=1")
                return conn
            except sqlite3.OperationalError as exc:
                if conn is not None:
                    conn.close()
                    conn = None
                if "unable to open" not in str(exc) and "readonly" not in str(exc):
                    raise self._open_error(exc) from exc
            except BaseException as exc:
                if conn is not None:
                    conn.close()
                raise self._open_error(exc) from exc
        raise DatabaseError(f"cannot open {self.path} for reading")

    def _connect(self, target: str, *, uri: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(target, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, uri=uri)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        conn.execute("PRAGMA foreign_keys = ON")
        functions.register(conn)
        return conn

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """A reader never migrates: an older schema is upgraded by a short writer where the file can
        be written (a new indexer on an old index), else refused with the way out."""
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the file now
        latest = load_migrations()[-1].version
        current = applied_version(conn)
        if current >= latest:
            migrate(conn)  # only checks: raises SchemaTooNewError for a newer database
            return
        try:
            Database(self.path, write=True).close()
        except ReadOnlyError:
            raise DatabaseError(
                f"{self.path} has schema version {current} and this indexer needs {latest}; it is "
                "read-only here, so ask its owner to run `indexer status` once with write access") from None
        log.info("upgraded the schema of %s from version %d to %d", self.path, current, latest)

    def _quick_check(self, conn: sqlite3.Connection) -> None:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]
        if rows != ["ok"]:
            raise corruption_error(self.path, sqlite3.DatabaseError("; ".join(rows)))

    def _open_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, DatabaseError) or not isinstance(exc, sqlite3.Error):
            return exc
        msg = str(exc)
        if is_corruption(exc):
            return corruption_error(self.path, exc)
        if "readonly" in msg or "read-only" in msg or "unable to open" in msg:
            return ReadOnlyError(
                f"{self.path} cannot be written here (read-only file, folder or mount): reading commands "
                "(status, export, select without --save) work; scan, watch, labels and --save need write access")
        return DatabaseError(f"cannot open {self.path} as an index database: {exc}")

    def close(self) -> None:
        self._writer_lock.release()
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, *, wait: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT. With wait=False, BusyError at once when another connection
        (or a running scan) holds the write lock. ReadOnlyError when the database cannot be written."""
        if self.readonly:
            raise ReadOnlyError(f"{self.path} was opened read-only")
        if not self._writer_on_demand:
            with self._write(self.conn, wait):
                yield self.conn
            return
        if not wait and self.writer_active():  # do not even open (and close) a writer beside a scan
            raise BusyError(f"{self.path} is being written by a scan or watch")
        conn = self._open_writer(check=False)
        try:
            with self._write(conn, wait):
                yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self, conn: sqlite3.Connection, wait: bool) -> Iterator[None]:
        if not wait:
            conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise BusyError(f"{self.path} is being written by another process") from exc
            raise self._open_error(exc) from exc
        finally:
            if not wait:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- roots -------------------------------------------------------------------------------

    def roots(self) -> list[dict[str, Any]]:
        """Roots with their paths as the file system has them (exact bytes of non-UTF-8 paths)."""
        rows = self.conn.execute("SELECT * FROM roots ORDER BY id").fetchall()
        return [{**dict(r), "path": from_db(r["path"], r["path_raw"])} for r in rows]

    def add_root(self, path: str) -> int:
        with self.transaction() as c:
            c.execute("INSERT OR IGNORE INTO roots (path, path_raw, added_at) VALUES (?, ?, ?)",
                      (to_text(path), to_raw(path), utcnow()))
            return c.execute("SELECT id FROM roots WHERE path = ?", (to_text(path),)).fetchone()[0]

    def mark_root_scanned(self, root_id: int) -> None:
        with self.transaction() as c:
            c.execute("UPDATE roots SET last_scan_at = ? WHERE id = ?", (utcnow(), root_id))

    def move_root(self, old: str, new: str) -> int:
        """Point a root at a new location; returns the number of images under it."""
        with self.transaction() as c:
            row = c.execute("SELECT id FROM roots WHERE path = ?", (to_text(old),)).fetchone()
            if row is None:
                raise DatabaseError(f"no root {to_text(old)} in this database (see `indexer status`)")
            if c.execute("SELECT 1 FROM roots WHERE path = ?", (to_text(new),)).fetchone():
                raise DatabaseError(f"{to_text(new)} is already a root of this database")
            c.execute("UPDATE roots SET path = ?, path_raw = ? WHERE id = ?", (to_text(new), to_raw(new), row[0]))
            return c.execute("SELECT COUNT(*) FROM images WHERE root_id = ?", (row[0],)).fetchone()[0]

    def absorb_root(self, old_id: int, new_id: int, prefix: str) -> None:
        """Fold a root that lies inside another into it: its folders get `prefix` in front."""
        with self.transaction() as c:
            exact = [(i, from_db(f, split_raw(raw)[0]), from_db(n, split_raw(raw)[1])) for i, f, n, raw in c.execute(
                "SELECT id, folder, name, rel_raw FROM images WHERE root_id = ? AND (rel_raw IS NOT NULL OR ?)",
                (old_id, to_raw(prefix) is not None)).fetchall()]
            c.execute(
                "UPDATE images SET root_id = ?, folder = CASE WHEN folder = '' THEN ? ELSE ? || '/' || folder END "
                "WHERE root_id = ?",
                (new_id, to_text(prefix), to_text(prefix), old_id),
            )
            c.executemany("UPDATE images SET rel_raw = ? WHERE id = ?",
                          [(rel_raw(f"{prefix}/{f}" if f else prefix, n), i) for i, f, n in exact])
            c.execute("DELETE FROM roots WHERE id = ?", (old_id,))

    # -- change detection ----------------------------------------------------------------------

    def files_in_folder(self, root_id: int, folder: str) -> dict[str, KnownFile]:
        rows = self.conn.execute(
            f"SELECT {_KNOWN_COLUMNS} FROM images WHERE root_id = ? AND folder = ?",
            (root_id, to_text(folder)),
        )
        return {k.name: k for k in map(_known, rows)}

    def known_file(self, root_id: int, folder: str, name: str) -> KnownFile | None:
        r = self.conn.execute(
            f"SELECT {_KNOWN_COLUMNS} FROM images WHERE root_id = ? AND folder = ? AND name = ?",
            (root_id, to_text(folder), to_text(name)),
        ).fetchone()
        return _known(r) if r else None

    def live_ids_under(self, root_id: int, folder: str) -> list[int]:
        """Live (not missing) images in `folder` and below it."""
        rows = self.conn.execute(
            "SELECT id FROM images WHERE root_id = ? AND state != 'missing' "
            "AND (folder = ? OR substr(folder, 1, ?) = ? OR ? = '')",
            (root_id, to_text(folder), len(to_text(folder)) + 1, to_text(folder) + "/", folder),
        )
        return [r[0] for r in rows]

    def live_folders(self, root_id: int, under: str) -> list[str]:
        """Folders (at or below `under`) that still hold files not marked missing."""
        sql = "SELECT folder, MAX(rel_raw) FROM images WHERE root_id = ? AND state != 'missing'"
        if under:
            text = to_text(under)
            rows = self.conn.execute(sql + " AND (folder = ? OR substr(folder, 1, ?) = ?) GROUP BY folder",
                                     (root_id, text, len(text) + 1, text + "/"))
        else:
            rows = self.conn.execute(sql + " GROUP BY folder", (root_id,))
        return [from_db(r[0], split_raw(r[1])[0]) for r in rows]

    def find_by_inode(self, device: int, inode: int, size: int, mtime_ns: int) -> dict[str, Any] | None:
        """A row whose file has this identity and content stamp (a moved or renamed file): id,
        root_id, root, folder, name as the file system has them."""
        rows = self.find_by_inodes([(device, inode)]).get((device, inode), [])
        return next((r for r in rows if (r["size"], r["mtime_ns"]) == (size, mtime_ns)), None)

    def find_by_inodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[dict[str, Any]]]:
        """The rows of these (device, inode) pairs, in id order: one query per 500 pairs (a folder
        of new files asks once, not once per file)."""
        found: dict[tuple[int, int], list[dict[str, Any]]] = {}
        keys = list(dict.fromkeys(keys))
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            rows = self.conn.execute(  # a join from the keys: the (device, inode) index is searched per key
                f"WITH k(device, inode) AS (VALUES {', '.join(['(?, ?)'] * len(part))}) "
                "SELECT i.id, i.root_id, i.folder, i.name, i.rel_raw, i.device, i.inode, i.size, i.mtime_ns, "
                "r.path AS root, r.path_raw FROM k JOIN images i ON i.device = k.device AND i.inode = k.inode "
                "JOIN roots r ON r.id = i.root_id ORDER BY i.id",
                [v for key in part for v in key])
            for r in rows:
                folder, name = split_raw(r["rel_raw"])
                found.setdefault((r["device"], r["inode"]), []).append({
                    "id": r["id"], "root_id": r["root_id"], "root": from_db(r["root"], r["path_raw"]),
                    "folder": from_db(r["folder"], folder), "name": from_db(r["name"], name),
                    "size": r["size"], "mtime_ns": r["mtime_ns"]})
        return found

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
                "UPDATE images SET root_id = ?, folder = ?, name = ?, rel_raw = ?, missing_since = NULL, "
                "state = CASE WHEN error IS NULL THEN 'indexed' ELSE 'failed' END WHERE id = ?",
                (root_id, to_text(folder), to_text(name), rel_raw(folder, name), image_id),
            )

    def write_results(self, results: Iterable[ImageResult], run_id: int | None) -> None:
        """Store decoded (or failed) files: one transaction, the checkpoint."""
        now = utcnow()
        rows = []
        for r in results:
            f = r.features
            row: dict[str, Any] = {
                "root_id": r.item.root_id, "folder": to_text(r.item.folder), "name": to_text(r.item.name),
                "rel_raw": rel_raw(r.item.folder, r.item.name),
                "state": State.INDEXED.value if f else State.FAILED.value,
                "size": r.size, "mtime_ns": r.mtime_ns, "inode": r.inode, "device": r.device,
                "error": to_text(r.error) if r.error else None, "now": now, "run_id": run_id,
            }
            for col in FEATURE_COLUMNS:
                value = getattr(f, col) if f else None
                row[col] = to_text(value) if isinstance(value, str) else value  # EXIF text may hold any bytes
            rows.append(row)
        cols = ("root_id", "folder", "name", "rel_raw", "state", "size", "mtime_ns", "inode", "device",
                *FEATURE_COLUMNS, "error")
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
        """Take the one-writer lock and record a new run. Refused (BusyError) while another scan or
        watch holds the lock, wherever it runs; runs still marked running are dead: marked crashed."""
        import socket  # here: only a writer records its host (~5 ms of every reader's start)
        host, pid, now = socket.gethostname(), os.getpid(), utcnow()
        try:
            holder = self._writer_lock.acquire(f"`indexer {command}` (pid {pid} on {host}, started {now})")
        except OSError as exc:
            raise ReadOnlyError(f"cannot make the lock file {self._writer_lock.path}: {exc.strerror}") from exc
        if holder is not None:
            raise BusyError(f"another {holder} is writing to this database; wait for it to finish or stop it")
        with self.transaction() as c:
            c.execute("UPDATE runs SET status = 'crashed', ended_at = heartbeat_at WHERE status = 'running'")
            cur = c.execute(
                "INSERT INTO runs (command, status, started_at, heartbeat_at, pid, host, params) "
                "VALUES (?, 'running', ?, ?, ?, ?, ?)",
                (command, now, now, pid, host, json.dumps(params, sort_keys=True)),
            )
            return int(cur.lastrowid)

    def writer_active(self) -> bool:
        """Whether a scan or watch holds this database's writer lock now (reads only)."""
        return self._writer_lock.held or writer_active(self.path)

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
        # Copy the WAL into the database file and empty it now: a checkpoint run as a statement
        # takes no lock a reader needs (TRUNCATE waits, up to the busy timeout, for reads still
        # on older snapshots). Left to the close, it would run under the file's EXCLUSIVE lock,
        # through its fsyncs, whenever this is the last connection: a plain sqlite3 reader
        # starting then gets "database is locked" (tests/test_concurrent_readers.py).
        try:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            log.debug("checkpoint at the end of the run failed: %s", exc)
        self._writer_lock.release()

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

    def features_sources(self) -> dict[str, int]:
        """Indexed images by the source of their features ('draft', 'exif-thumbnail'); {} for an
        index older than schema 0004 opened read-only (all of it is 'draft')."""
        try:
            rows = self.conn.execute("SELECT features_source, COUNT(*) FROM images WHERE state = 'indexed' "
                                     "AND features_source IS NOT NULL GROUP BY 1 ORDER BY 1")
            return {str(source): int(n) for source, n in rows}
        except sqlite3.OperationalError:
            return {}

    def failed_files(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT path, error, attempts, indexed_at FROM image_files WHERE state = 'failed' ORDER BY root, rel_path"
        )
        return [dict(r) for r in rows]

    def query(self, view: str, where: str | None, order_by: str = "id") -> tuple[list[str], Iterator[tuple]]:
        """Rows of a view filtered by a user's SQL expression, run read-only. Paths come back as the
        file system has them (the exact bytes of names that are not valid UTF-8)."""
        if where is not None:
            check_expression(where)
        columns = view_columns(self.conn, view)
        order = ", ".join("v." + c.strip() for c in order_by.split(","))
        sql = (f"SELECT v.*, (SELECT rel_raw FROM images WHERE id = v.id) AS rel_raw, "
               f"(SELECT path_raw FROM roots WHERE id = v.root_id) AS path_raw FROM {view} v"
               + (f" WHERE (\n{where}\n)" if where else "") + f" ORDER BY {order}")
        with read_only(self.conn):
            try:
                rows = self.conn.execute(sql).fetchall()
            except sqlite3.Error as exc:
                raise explain(exc, "--where expression", columns, self.path) from exc
        return columns, (_exact_row(columns, r) for r in rows)


_PATH_COLUMNS = ("path", "root", "rel_path", "folder", "name")


def _exact_row(columns: list[str], row: sqlite3.Row) -> tuple:
    """A view row with its path columns as the file system has them."""
    values = list(row)[: len(columns)]
    raw, root_raw = row["rel_raw"], row["path_raw"]
    if raw is None and root_raw is None:
        return tuple(values)
    at = {c: i for i, c in enumerate(columns)}
    folder_raw, name_raw = split_raw(raw)
    exact = {"root": from_db(row["root"], root_raw), "folder": from_db(row["folder"], folder_raw),
             "name": from_db(row["name"], name_raw)}
    exact["rel_path"] = f"{exact['folder']}/{exact['name']}" if exact["folder"] else exact["name"]
    exact["path"] = f"{exact['root']}/{exact['rel_path']}"
    for c in _PATH_COLUMNS:
        if c in at:
            values[at[c]] = exact[c]
    return tuple(values)


def _writable(path: Path) -> bool:
    """The file and its folder can be written (the WAL and shared-memory files live beside it)."""
    return os.access(path, os.W_OK) and os.access(path.parent if str(path.parent) else Path("."), os.W_OK)


def _known(r: sqlite3.Row) -> KnownFile:
    name = from_db(r["name"], split_raw(r["rel_raw"])[1])
    return KnownFile(r["id"], name, State(r["state"]), r["size"], r["mtime_ns"], bool(r["failed"]))


