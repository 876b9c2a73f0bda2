"""Move the duplicates that are not kept out of the archive, with a manifest, and put them back.

Nothing is ever deleted. `move_duplicates` moves every non-kept member of every group to
DIR/<path below its scan root> (DIR/<root folder name>/... when the groups span several roots),
appending one manifest row (from, to, group, reason, id, size, mtime_ns) after each file is in
place and flushed, so a move stopped half way (an error, Ctrl-C, a full disk) leaves a manifest
listing exactly the files that were moved. Each move is recorded in the `moves` table and the
image's row is marked missing in one transaction. Everything that can be checked is checked
before the first file moves (the target is writable and outside every root, no destination
exists, every source is as the index saw it); a refusal moves nothing.

`undo_moves` reads a manifest back: every row must match a move recorded in the index for that
manifest and not undone (a row edited by hand does not), each moved file must still have its size
and mtime, and its old place must be free; otherwise nothing moves. Then every file goes back.
Both hold the database's writer lock (no scan runs meanwhile).
"""
from __future__ import annotations

import csv
import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .db import Database
from .db import duplicates as dq
from .duplicates import Duplicates
from .errors import BusyError, DuplicatesError
from .names import printable

MANIFEST_FIELDS = ("from", "to", "group", "reason", "id", "size", "mtime_ns")


@dataclass(frozen=True)
class PlannedMove:
    id: int
    group: int
    keeper: int
    source: str
    dest: str
    reason: str
    size: int


@dataclass(frozen=True)
class MoveSummary:
    manifest: str
    moved: tuple[PlannedMove, ...]
    bytes: int


@dataclass(frozen=True)
class UndoSummary:
    manifest: str
    restored: int
    already: int  # rows undone before


def plan(result: Duplicates, move_to: str | os.PathLike[str]) -> list[PlannedMove]:
    """Where each non-kept member goes, below move_to."""
    target = Path(os.path.abspath(move_to))
    roots = {m.root for g in result.groups for m in g.others}
    several = len(roots) > 1
    out = []
    for g in result.groups:
        keeper = next(m for m in g.members if m.keep)
        for m in g.others:
            rel = f"{Path(m.root).name}/{m.rel_path}" if several else m.rel_path
            reason = f"near copy of {keeper.rel_path} (kept: {g.reason})"
            out.append(PlannedMove(m.id, g.number, keeper.id, m.path, str(target / rel), reason, m.size))
    return out


def move_duplicates(db: Database, result: Duplicates, move_to: str | os.PathLike[str],
                    manifest: str | os.PathLike[str] | None = None) -> MoveSummary:
    """Move the non-kept members of result's groups below move_to; see the module docstring."""
    target = Path(os.path.abspath(move_to))
    moves = plan(result, target)
    if not moves:
        raise DuplicatesError("no duplicates to move: every group is only its keeper (or no group was found)")
    _check_target(db, target)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    man = Path(os.path.abspath(manifest)) if manifest else target / f"indexer-moves-{stamp}.csv"
    if man.exists():
        raise DuplicatesError(f"the manifest {printable(str(man))} exists already: give another --manifest")
    stats = _check_sources(db, moves)
    for mv in moves:
        if os.path.lexists(mv.dest):
            raise DuplicatesError(f"{printable(mv.dest)} exists already: nothing was moved (never overwritten)")
    done: list[PlannedMove] = []
    with _writer(db), _open_manifest(man) as (f, w):
        for mv, st in zip(moves, stats):
            _move_file(mv.source, mv.dest)
            w.writerow([mv.source, mv.dest, mv.group, mv.reason, mv.id, st.st_size, st.st_mtime_ns])
            f.flush()
            os.fsync(f.fileno())
            dq.record_move(db, mv.id, str(man), mv.source, mv.dest, mv.group, mv.keeper, mv.reason,
                           st.st_size, st.st_mtime_ns)
            done.append(mv)
    return MoveSummary(str(man), tuple(done), sum(m.size for m in done))


def _check_target(db: Database, target: Path) -> None:
    real = os.path.realpath(target)
    for _, root in dq.roots(db):
        r = os.path.realpath(root)
        if real == r or real.startswith(r.rstrip("/") + "/"):
            raise DuplicatesError(f"--move-to {printable(str(target))} is inside the scan root {printable(root)}: "
                                  "the next scan would index the moved files again; choose a folder outside the archive")
    try:
        target.mkdir(parents=True, exist_ok=True)
        probe = target / f".indexer-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DuplicatesError(f"cannot write into --move-to {printable(str(target))}: "
                              f"{exc.strerror or exc}; nothing was moved") from None


def _check_sources(db: Database, moves: list[PlannedMove]) -> list[os.stat_result]:
    info = dq.image_info(db, [m.id for m in moves])
    out = []
    for mv in moves:
        try:
            st = os.stat(mv.source)
        except OSError:
            raise DuplicatesError(f"{printable(mv.source)} is gone since the last scan: run `indexer scan` first; "
                                  "nothing was moved") from None
        i = info.get(mv.id)
        if i is None or st.st_size != i.size or st.st_mtime_ns != i.mtime_ns:
            raise DuplicatesError(f"{printable(mv.source)} changed since it was indexed: run `indexer scan` first; "
                                  "nothing was moved")
        out.append(st)
    return out


@contextmanager
def _writer(db: Database) -> Iterator[None]:
    """The database's writer lock, held while files move (no scan or watch meanwhile)."""
    lock = db._writer_lock  # noqa: SLF001 (the Database's own lock object)
    had = lock.held
    holder = None if had else lock.acquire(f"`indexer duplicates` (pid {os.getpid()})")
    if holder is not None:
        raise BusyError(f"another {holder} is writing to this database; wait for it to finish; nothing was moved")
    try:
        yield
    finally:
        if not had:
            lock.release()


@contextmanager
def _open_manifest(path: Path) -> Iterator[tuple[object, object]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", newline="", encoding="utf-8", errors="surrogateescape") as f:
        w = csv.writer(f)
        w.writerow(MANIFEST_FIELDS)
        f.flush()
        yield f, w


def _move_file(src: str, dest: str) -> None:
    """Rename when on one file system, else copy (with times) beside the destination, rename it
    into place, then remove the source: the destination never holds half a file."""
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(dest):
        raise DuplicatesError(f"{printable(dest)} appeared during the move; it was left alone")
    try:
        os.rename(src, dest)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise DuplicatesError(f"cannot move {printable(src)}: {exc.strerror}; the manifest lists the files "
                                  "moved before it") from None
    tmp = f"{dest}.indexer-tmp"
    shutil.copy2(src, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.rename(tmp, dest)
    os.unlink(src)


# -- undo ------------------------------------------------------------------------------------------

def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise DuplicatesError(f"no manifest at {printable(str(path))}") from None
    except (OSError, csv.Error) as exc:
        raise DuplicatesError(f"cannot read the manifest {printable(str(path))}: {exc}") from None
    if rows and set(MANIFEST_FIELDS) - set(rows[0]):
        raise DuplicatesError(f"{printable(str(path))} is not a manifest of `indexer duplicates --move-to` "
                              f"(columns {', '.join(MANIFEST_FIELDS)})")
    return rows


def undo_moves(db: Database, manifest: str | os.PathLike[str]) -> UndoSummary:
    """Put back every file the manifest lists; see the module docstring."""
    man = os.path.abspath(manifest)
    rows = read_manifest(man)
    recorded = dq.moves_of(db, man)
    if not recorded:
        raise DuplicatesError(f"the index records no move listed in {printable(man)}: "
                              "was it made with another database (--db)?")
    if len(rows) != len(recorded):
        raise DuplicatesError(f"{printable(man)} lists {len(rows)} files but the index recorded {len(recorded)} moves "
                              "for it: the manifest was edited; nothing was moved")
    todo, already = [], 0
    for n, (row, rec) in enumerate(zip(rows, recorded), start=2):
        if (row["from"], row["to"], row["id"], row["size"], row["mtime_ns"]) != (
                rec.from_path, rec.to_path, str(rec.image_id), str(rec.size), str(rec.mtime_ns)):
            raise DuplicatesError(f"{printable(man)} line {n} differs from the move the index recorded "
                                  "(edited by hand?); nothing was moved")
        if rec.undone_at is not None:
            already += 1
            continue
        todo.append(rec)
    for rec in todo:
        try:
            st = os.stat(rec.to_path)
        except OSError:
            raise DuplicatesError(f"{printable(rec.to_path)} is not there any more; nothing was moved") from None
        if st.st_size != rec.size or st.st_mtime_ns != rec.mtime_ns:
            raise DuplicatesError(f"{printable(rec.to_path)} changed since it was moved; nothing was moved")
        if os.path.lexists(rec.from_path):
            raise DuplicatesError(f"{printable(rec.from_path)} exists again (never overwritten); nothing was moved")
    with _writer(db):
        for rec in todo:
            _move_file(rec.to_path, rec.from_path)
            st = os.stat(rec.from_path)
            dq.record_undo(db, rec.id, rec.image_id, st.st_ino, st.st_dev)
    return UndoSummary(man, len(todo), already)
