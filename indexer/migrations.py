"""Find the numbered migrations/NNNN_*.sql files, apply pending ones in order, record them."""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .errors import MigrationError, SchemaTooNewError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_dir() -> Path:
    """The folder of migrations: inside the installed wheel, else the checkout's top level."""
    packaged = Path(__file__).resolve().parent / "_migrations"  # as importlib.resources finds it on disk
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "migrations"
    if checkout.is_dir():
        return checkout
    raise MigrationError("cannot find the migrations folder of this indexer install")


def load_migrations(folder: Path | None = None) -> list[Migration]:
    """All migrations in version order; a gap, duplicate or badly named file is an error."""
    folder = folder or migrations_dir()
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"badly named migration {path.name} (want NNNN_description.sql)")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"two migrations numbered {version:04d}: {found[version].name}, {path.name}")
        found[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    versions = sorted(found)
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migration numbers must run 0001, 0002, ... without gaps; found {versions}")
    return [found[v] for v in versions]


def applied_version(conn: sqlite3.Connection) -> int:
    """The highest migration recorded in the database (0 for a new database)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return row[0] or 0


def migrate(conn: sqlite3.Connection, folder: Path | None = None) -> list[int]:
    """Apply pending migrations, each in its own transaction with its record; return their versions."""
    known = load_migrations(folder)
    latest = known[-1].version if known else 0
    current = applied_version(conn)
    if current > latest:
        raise SchemaTooNewError(
            f"this database has schema version {current}, newer than this indexer knows ({latest}); "
            "upgrade indexer (pip install -U indexer) to use it"
        )
    done = []
    for mig in known:
        if mig.version <= current:
            continue
        _apply(conn, mig)
        done.append(mig.version)
    return done


def _apply(conn: sqlite3.Connection, mig: Migration) -> None:
    # executescript commits any open transaction first, so the whole migration and its record
    # go in one explicit BEGIN ... COMMIT script. Version and name come from a validated file name.
    script = (
        f"BEGIN IMMEDIATE;\n{_BOOTSTRAP};\n{mig.sql}\n;\n"
        f"INSERT INTO schema_migrations (version, name, applied_at) "
        f"VALUES ({mig.version:d}, '{mig.name}', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));\n"
        f"PRAGMA user_version = {mig.version:d};\nCOMMIT;"
    )
    try:
        conn.executescript(script)
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.rollback()
        if applied_version(conn) >= mig.version:
            return  # another process applied it while we waited for the write lock
        raise MigrationError(f"migration {mig.name} failed: {exc}") from exc
