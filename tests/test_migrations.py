"""Numbered migrations: applied in order, recorded, never twice; a broken folder or DB is an error."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from indexer import Database, MigrationError, SchemaTooNewError
from indexer import migrations
from indexer.cli import cli

LATEST = migrations.load_migrations()[-1].version


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def recorded(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    return [tuple(r) for r in conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")]


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql, encoding="utf-8")
    return folder


# -- the shipped migrations ----------------------------------------------------------------------


def test_shipped_migrations_are_numbered_from_one():
    known = migrations.load_migrations()
    assert [m.version for m in known] == list(range(1, len(known) + 1))
    assert known[0].name == "0001_initial.sql"


def test_empty_database_reaches_latest_version_and_records_each(tmp_path):
    conn = connect(tmp_path / "new.db")
    applied = migrations.migrate(conn)
    assert applied == list(range(1, LATEST + 1))
    assert recorded(conn) == [(m.version, m.name) for m in migrations.load_migrations()]
    assert user_version(conn) == LATEST
    assert migrations.applied_version(conn) == LATEST
    assert {"roots", "runs", "images", "image_files", "schema_migrations"} <= tables(conn)
    stamp = conn.execute("SELECT applied_at FROM schema_migrations WHERE version = 1").fetchone()[0]
    assert stamp.endswith("Z") and "T" in stamp
    conn.close()


def test_reopening_applies_nothing(tmp_path):
    path = tmp_path / "index.db"
    with Database(path, create=True) as db:
        first = db.conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    with Database(path) as db:
        assert [tuple(r) for r in db.conn.execute("SELECT version, applied_at FROM schema_migrations")] == \
            [tuple(r) for r in first]
        assert migrations.migrate(db.conn) == []
        assert user_version(db.conn) == LATEST


def test_database_has_wal_and_foreign_keys(tmp_path):
    with Database(tmp_path / "index.db", create=True) as db:
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError):  # foreign keys are enforced, not just declared
            db.conn.execute(
                "INSERT INTO images (root_id, folder, name, state, size, mtime_ns, first_seen_at, indexed_at) "
                "VALUES (999, '', 'x.jpg', 'indexed', 1, 1, 'now', 'now')"
            )


def test_missing_database_is_not_created_without_create(tmp_path):
    from indexer import DatabaseError

    with pytest.raises(DatabaseError, match="no index database"):
        Database(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()


# -- a database newer than this indexer ----------------------------------------------------------


@pytest.fixture
def too_new_db(tmp_path: Path) -> Path:
    path = tmp_path / "future.db"
    with Database(path, create=True):
        pass
    conn = connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '2099-01-01T00:00:00Z')",
                 (LATEST + 1, f"{LATEST + 1:04d}_from_the_future.sql"))
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    return path


def test_schema_too_new_is_refused(too_new_db):
    with pytest.raises(SchemaTooNewError, match=str(LATEST + 1)):
        Database(too_new_db)
    conn = connect(too_new_db)
    assert migrations.applied_version(conn) == LATEST + 1  # left as it was
    conn.close()


def test_schema_too_new_via_cli_is_one_line(too_new_db, runner):
    r = runner.invoke(cli, ["status", "--db", str(too_new_db)])
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "newer" in lines[0]
    assert r.stdout == ""


# -- inconsistent migration folders --------------------------------------------------------------


@pytest.mark.parametrize("files, message", [
    ({"0001_a.sql": "CREATE TABLE a (x);", "0003_c.sql": "CREATE TABLE c (x);"}, "gaps"),
    ({"0002_b.sql": "CREATE TABLE b (x);"}, "gaps"),  # must start at 0001
    ({"0001_a.sql": "CREATE TABLE a (x);", "0001_b.sql": "CREATE TABLE b (x);"}, "two migrations"),
    ({"0001_a.sql": "CREATE TABLE a (x);", "2_b.sql": "CREATE TABLE b (x);"}, "badly named"),
    ({"0001_a.sql": "CREATE TABLE a (x);", "0002-Add-B.sql": "CREATE TABLE b (x);"}, "badly named"),
], ids=["gap", "no-0001", "duplicate", "short-number", "bad-characters"])
def test_inconsistent_folder_is_an_error(tmp_path, files, message):
    folder = write_folder(tmp_path / "migrations", files)
    with pytest.raises(MigrationError, match=message):
        migrations.load_migrations(folder)
    conn = connect(tmp_path / "x.db")
    with pytest.raises(MigrationError):
        migrations.migrate(conn, folder)
    assert migrations.applied_version(conn) == 0  # nothing applied from a broken folder
    conn.close()


def test_other_files_in_folder_are_ignored(tmp_path):
    folder = write_folder(tmp_path / "migrations", {
        "0001_a.sql": "CREATE TABLE a (x);", "0002_b.sql": "CREATE TABLE b (x);", "README.md": "notes",
    })
    assert [m.name for m in migrations.load_migrations(folder)] == ["0001_a.sql", "0002_b.sql"]


def test_migrations_apply_in_numeric_order_and_pending_ones_only(tmp_path):
    folder = write_folder(tmp_path / "migrations", {
        "0001_a.sql": "CREATE TABLE a (x);",
        "0002_b.sql": "ALTER TABLE a ADD COLUMN y; -- needs 0001 first",
    })
    conn = connect(tmp_path / "x.db")
    assert migrations.migrate(conn, folder) == [1, 2]
    write_folder(folder, {"0003_c.sql": "CREATE TABLE c (z)"})  # no trailing semicolon or newline
    assert migrations.migrate(conn, folder) == [3]
    assert recorded(conn) == [(1, "0001_a.sql"), (2, "0002_b.sql"), (3, "0003_c.sql")]
    assert user_version(conn) == 3
    conn.close()


def test_failing_migration_leaves_previous_version(tmp_path):
    folder = write_folder(tmp_path / "migrations", {
        "0001_a.sql": "CREATE TABLE a (x);",
        "0002_b.sql": "CREATE TABLE b (x);\nINSERT INTO a VALUES (1);\nINSERT INTO no_such_table VALUES (1);",
    })
    path = tmp_path / "x.db"
    conn = connect(path)
    with pytest.raises(MigrationError, match="0002_b.sql"):
        migrations.migrate(conn, folder)
    assert not conn.in_transaction
    conn.close()
    conn = connect(path)  # what a later process sees
    assert migrations.applied_version(conn) == 1
    assert user_version(conn) == 1
    assert recorded(conn) == [(1, "0001_a.sql")]
    assert "b" not in tables(conn)  # the failed migration's own changes are rolled back
    assert conn.execute("SELECT COUNT(*) FROM a").fetchone()[0] == 0
    conn.close()


def test_failing_first_migration_leaves_empty_database(tmp_path):
    folder = write_folder(tmp_path / "migrations", {"0001_a.sql": "CREATE TABLE a (x);\nSELEC nonsense;"})
    conn = connect(tmp_path / "x.db")
    with pytest.raises(MigrationError):
        migrations.migrate(conn, folder)
    assert migrations.applied_version(conn) == 0
    assert user_version(conn) == 0
    assert "a" not in tables(conn)
    conn.close()


def test_fixed_migration_applies_after_a_failure(tmp_path):
    folder = write_folder(tmp_path / "migrations", {
        "0001_a.sql": "CREATE TABLE a (x);", "0002_b.sql": "CREATE TABLE a (x);",  # clashes: fails
    })
    conn = connect(tmp_path / "x.db")
    with pytest.raises(MigrationError):
        migrations.migrate(conn, folder)
    write_folder(folder, {"0002_b.sql": "CREATE TABLE b (x);"})
    assert migrations.migrate(conn, folder) == [2]
    assert user_version(conn) == 2
    conn.close()
