"""The `indexer` command as users meet it: help, one-line errors, export and status output, reroot."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from imaging import make_archive, save_jpeg, scene
from indexer.cli import COMMANDS, all_commands, cli
from indexer.features import features_from_file
from indexer.migrations import load_migrations

HEX16 = re.compile(r"^[0-9a-f]{16}$")
HASHES = ("dhash", "ahash", "phash")


def invoke(runner: CliRunner, args: list[str], **kw) -> Result:
    return runner.invoke(cli, [str(a) for a in args], **kw)


def ok(r: Result) -> Result:
    assert r.exit_code == 0, f"exit {r.exit_code}\nstdout: {r.stdout}\nstderr: {r.stderr}\n{r.exception!r}"
    return r


def assert_error(r: Result, code: int = 1, *, contains: str = "") -> str:
    """Exit non-zero through click (not an escaped exception), no traceback, one `Error:` line on stderr."""
    assert r.exit_code == code, f"exit {r.exit_code}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    # CliRunner turns an escaped exception into exit code 1 too: make sure it was click that exited
    assert isinstance(r.exception, SystemExit), f"unhandled {r.exception!r}"
    assert "Traceback" not in r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, r.stderr
    if code == 1:  # library errors: exactly one line, nothing else
        assert r.stderr.strip().splitlines() == errors, r.stderr
    assert contains.lower() in errors[0].lower(), errors[0]
    return errors[0]


def scan(runner: CliRunner, root: Path, db: Path, *extra: str) -> dict:
    r = ok(invoke(runner, ["scan", root, "--db", db, "--workers", "1", "--quiet", "--json", *extra]))
    return json.loads(r.stdout)


def export(runner: CliRunner, db: Path, *extra: str) -> list[dict]:
    r = ok(invoke(runner, ["export", "--db", db, *extra]))
    return list(csv.DictReader(io.StringIO(r.stdout)))


def image_rows(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT * FROM images ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> tuple[Path, Path]:
    """An archive of 12 generated frames, scanned, then one deleted and a broken file added, rescanned:
    11 indexed (5 day, 6 night), 1 failed, 1 missing. Tests must not write to it."""
    base = tmp_path_factory.mktemp("indexed")
    root, db = base / "archive", base / "index.db"
    make_archive(root)
    runner = CliRunner()
    scan(runner, root, db)
    (root / "site1" / "cam01" / "IMG_0001.JPG").unlink()  # a day frame
    (root / "site1" / "cam01" / "broken.jpg").write_text("not a JPEG at all\n")
    summary = scan(runner, root, db)
    assert (summary["missing"], summary["failed"], summary["new"]) == (1, 1, 1)
    return root, db


# -- help ----------------------------------------------------------------------------------------


def test_group_has_help(runner):
    r = ok(invoke(runner, ["--help"]))
    assert cli.help and cli.help.strip()
    for name in all_commands():
        assert name in r.stdout


def test_every_command_module_is_in_the_lazy_map():
    """A command is found by `indexer NAME` only through COMMANDS: every command that a module of
    indexer.cli registers must be listed there, under that module."""
    import importlib
    import pkgutil

    import indexer.cli as package
    for mod in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"indexer.cli.{mod.name}")
    assert set(cli.commands) == set(COMMANDS)
    for name, cmd in cli.commands.items():
        assert cmd.callback.__module__ == f"indexer.cli.{COMMANDS[name]}", name


@pytest.mark.parametrize("name", sorted(all_commands()))
def test_every_command_has_help(runner, name):
    cmd = all_commands()[name]
    assert cmd.help and cmd.help.strip(), f"`indexer {name}` has no docstring / help text"
    r = ok(invoke(runner, [name, "--help"]))
    assert r.stdout.startswith(f"Usage: cli {name}") or r.stdout.startswith(f"Usage: indexer {name}")
    assert cmd.help.strip().splitlines()[0][:30] in " ".join(r.stdout.split())
    for param in cmd.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help and param.help.strip(), f"`indexer {name} {param.opts[0]}` has no help text"


def test_python_dash_m_indexer_help(tmp_path):
    r = subprocess.run([sys.executable, "-m", "indexer", "--help"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: indexer")
    assert "scan" in r.stdout and "export" in r.stdout


# -- one-line errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "export"])
def test_missing_database(runner, tmp_path, command):
    db = tmp_path / "nope.db"
    assert_error(invoke(runner, [command, "--db", db]), contains="no index database")
    assert not db.exists()  # reading commands never create a database


@pytest.mark.parametrize("command", ["status", "export"])
def test_database_path_is_a_folder(runner, tmp_path, command):
    folder = tmp_path / "adir"
    folder.mkdir()
    assert_error(invoke(runner, [command, "--db", folder]), code=2, contains="directory")  # click's own check
    # via $INDEXER_DB click cannot check it: the library says so
    assert_error(invoke(runner, [command], env={"INDEXER_DB": str(folder)}), contains="is a folder")


@pytest.mark.parametrize("command", ["status", "export", "scan"])
def test_file_that_is_not_sqlite(runner, tmp_path, command):
    db = tmp_path / "notes.db"
    content = b"these are my field notes, not a database\n" * 100
    db.write_bytes(content)
    root = tmp_path / "root"
    root.mkdir()
    args = [command, "--db", db] + ([root, "--workers", "1", "--quiet"] if command == "scan" else [])
    assert_error(invoke(runner, args), contains="not a database")
    assert db.read_bytes() == content  # never overwritten


def test_scan_of_missing_root(runner, tmp_path):
    assert_error(invoke(runner, ["scan", tmp_path / "no_such_folder", "--db", tmp_path / "i.db", "--quiet"]),
                 code=2, contains="does not exist")
    assert not (tmp_path / "i.db").exists()  # a bad argument leaves no empty database behind


def test_scan_of_a_file_as_root(runner, tmp_path):
    f = save_jpeg(scene(1, (64, 64)), tmp_path / "one.jpg")
    r = invoke(runner, ["scan", f, "--db", tmp_path / "i.db", "--quiet"])
    assert r.exit_code in (1, 2)
    assert_error(r, code=r.exit_code)


@pytest.mark.parametrize("option", [["--workers", "0"], ["--workers", "-3"], ["--batch", "0"]])
def test_scan_bad_numbers_are_usage_errors(runner, tmp_path, option):
    assert_error(invoke(runner, ["scan", tmp_path, "--db", tmp_path / "i.db", *option]), code=2)
    assert not (tmp_path / "i.db").exists()


@pytest.mark.parametrize("where", [
    "is_gray = ",  # syntax error
    "no_such_column = 1",
    "no_such_function(width) > 1",
    "is_gray = 1 ORDER BY id",  # not an expression
])
def test_bad_where(runner, indexed, where):
    _, db = indexed
    assert_error(invoke(runner, ["export", "--db", db, "--where", where]), contains="--where")


@pytest.mark.parametrize("where", [
    "1); DELETE FROM images; --",
    "(SELECT 1 FROM (DELETE FROM images))",
    "1; DROP TABLE images",
    "id IN (SELECT id FROM images); UPDATE images SET state = 'missing'",
    "1) ; ATTACH DATABASE 'evil.db' AS evil; --",
])
def test_where_cannot_write(runner, indexed, tmp_path, where):
    _, db = indexed
    before = image_rows(db)
    r = invoke(runner, ["export", "--db", db, "--where", where])
    assert_error(r)
    assert image_rows(db) == before
    assert not Path("evil.db").exists()
    assert len(export(runner, db)) == 11  # the database still works


def test_where_with_table_valued_pragmas_changes_nothing(runner, indexed):
    _, db = indexed
    before = image_rows(db)
    for where in ("(SELECT COUNT(*) FROM pragma_optimize) >= 0",
                  "(SELECT COUNT(*) FROM pragma_table_info('images')) > 0"):
        r = invoke(runner, ["export", "--db", db, "--where", where])
        assert isinstance(r.exception, (SystemExit, type(None))), repr(r.exception)
    assert image_rows(db) == before
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'").fetchall() == []
    finally:
        conn.close()


@pytest.mark.parametrize("sql", [
    "DELETE FROM images",
    "UPDATE images SET state = 'missing'",
    "INSERT INTO roots (path, added_at) VALUES ('/x', 'now')",
    "PRAGMA user_version = 99",
    "ATTACH DATABASE ':memory:' AS evil",
    "BEGIN",
])
def test_user_sql_runs_read_only(tmp_path, sql):
    """What --where runs inside: writes are refused, and the connection can write again afterwards."""
    from indexer import Database
    from indexer.db import read_only

    with Database(tmp_path / "i.db", create=True) as db:
        with read_only(db.conn):
            with pytest.raises(sqlite3.Error):
                db.conn.execute(sql)
            assert db.conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0
        assert not db.conn.in_transaction
        db.add_root("/after")  # writable again
        assert [r["path"] for r in db.roots()] == ["/after"]
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == load_migrations()[-1].version


# -- export --------------------------------------------------------------------------------------


def test_export_csv(runner, indexed):
    root, db = indexed
    rows = export(runner, db)
    on_disk = sorted(str(p) for p in root.rglob("IMG_*.JPG"))
    assert sorted(r["path"] for r in rows) == on_disk  # one row per indexed image, absolute paths
    for row in rows:
        assert os.path.isabs(row["path"]) and Path(row["path"]).is_file()
        assert row["state"] == "indexed"
        assert all(HEX16.match(row[h]) for h in HASHES), row
        assert int(row["width"]) == 320 and int(row["height"]) == 240
    # the hex is the 64-bit hash, not its signed decimal: it matches a fresh measurement
    f = features_from_file(rows[0]["path"])
    assert rows[0]["dhash"] == f"{f.dhash & (2 ** 64 - 1):016x}"
    assert rows[0]["phash"] == f"{f.phash & (2 ** 64 - 1):016x}"


def test_export_jsonl_matches_csv(runner, indexed):
    _, db = indexed
    r = ok(invoke(runner, ["export", "--db", db, "--format", "jsonl"]))
    records = [json.loads(line) for line in r.stdout.splitlines()]
    rows = export(runner, db)
    assert [rec["path"] for rec in records] == [row["path"] for row in rows]
    for rec, row in zip(records, rows):
        assert all(HEX16.match(rec[h]) for h in HASHES)
        assert rec["dhash"] == row["dhash"]
        assert isinstance(rec["width"], int) and rec["is_gray"] in (0, 1)
        assert isinstance(rec["brightness"], float)
        assert rec["camera_make"] == "TESTCAM" and rec["camera_model"] == "T1"
        assert re.match(r"^2024-05-0\dT\d\d:00:00$", rec["captured_at"])


def test_export_where_filters(runner, indexed):
    _, db = indexed
    night = export(runner, db, "--where", "is_gray = 1")
    day = export(runner, db, "--where", "is_gray = 0")
    assert len(night) == 6 and len(day) == 5
    assert all(r["is_gray"] == "1" for r in night)
    assert export(runner, db, "--where", "name = 'IMG_0002.JPG' AND rel_path LIKE 'site1/%'")[0]["rel_path"] == \
        "site1/cam01/IMG_0002.JPG"
    # --where does not bring back failed or missing files unless --all is given
    assert export(runner, db, "--where", "state != 'indexed'") == []


def test_where_cannot_escape_its_parentheses(runner, indexed):
    _, db = indexed
    r = invoke(runner, ["export", "--db", db, "--where", "state != 'indexed') OR (0"])
    if r.exit_code == 0:
        assert [row["state"] for row in csv.DictReader(io.StringIO(r.stdout))] == []
    else:
        assert_error(r, contains="--where")


def test_export_all_includes_failed_and_missing(runner, indexed):
    _, db = indexed
    rows = export(runner, db, "--all")
    states = sorted(r["state"] for r in rows)
    assert states.count("indexed") == 11 and states.count("failed") == 1 and states.count("missing") == 1
    failed = next(r for r in rows if r["state"] == "failed")
    assert failed["path"].endswith("/site1/cam01/broken.jpg")
    assert failed["error"] and failed["dhash"] == ""
    missing = next(r for r in rows if r["state"] == "missing")
    assert missing["path"].endswith("/site1/cam01/IMG_0001.JPG") and missing["missing_since"]
    assert HEX16.match(missing["dhash"])  # a missing file keeps the features it had


def test_export_to_file(runner, indexed, tmp_path):
    _, db = indexed
    out = tmp_path / "out.jsonl"
    r = ok(invoke(runner, ["export", "--db", db, "--format", "jsonl", "-o", out]))
    assert r.stdout == ""
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 11
    assert ok(invoke(runner, ["export", "--db", db, "--format", "jsonl"])).stdout.splitlines() == lines


# -- status --------------------------------------------------------------------------------------


def test_status_json(runner, indexed):
    root, db = indexed
    info = json.loads(ok(invoke(runner, ["status", "--db", db, "--json"])).stdout)
    assert {"db", "schema_version", "images", "roots", "runs"} <= set(info)
    assert Path(info["db"]) == db.resolve()
    assert info["schema_version"] == load_migrations()[-1].version
    assert info["images"] == {"indexed": 11, "failed": 1, "missing": 1}
    [r] = info["roots"]
    assert r["path"] == str(root) and (r["indexed"], r["failed"], r["missing"]) == (11, 1, 1)
    assert r["last_scan_at"]
    runs = info["runs"]
    assert len(runs) == 2 and runs[0]["id"] > runs[1]["id"]  # newest first
    assert all(run["command"] == "scan" and run["status"] == "completed" for run in runs)
    assert runs[1]["n_new"] == 12 and runs[0]["n_missing"] == 1 and runs[0]["n_failed"] == 1
    assert "failed_files" not in info


def test_status_errors_lists_failed_file_with_reason(runner, indexed):
    root, db = indexed
    broken = str(root / "site1" / "cam01" / "broken.jpg")
    text = ok(invoke(runner, ["status", "--db", db, "--errors"])).stdout
    [line] = [line for line in text.splitlines() if broken in line]
    assert "cannot identify image file" in line
    info = json.loads(ok(invoke(runner, ["status", "--db", db, "--errors", "--json"])).stdout)
    [failed] = info["failed_files"]
    assert failed["path"] == broken and "cannot identify image file" in failed["error"]


def test_status_text(runner, indexed):
    root, db = indexed
    r = ok(invoke(runner, ["status", "--db", db]))
    assert "11 indexed, 1 failed, 1 missing" in r.stdout
    assert str(root) in r.stdout
    assert r.stderr == ""


# -- environment, streams ------------------------------------------------------------------------


def test_indexer_db_env_var(runner, tmp_path, monkeypatch):
    root = tmp_path / "a"
    save_jpeg(scene(1, (96, 72)), root / "x.jpg")
    db = tmp_path / "elsewhere" / "env.db"
    db.parent.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    here = cwd
    ok(invoke(runner, ["scan", root, "--workers", "1", "--quiet"], env={"INDEXER_DB": str(db)}))
    assert not (Path(here) / "index.db").exists()
    info = json.loads(ok(invoke(runner, ["status", "--json"], env={"INDEXER_DB": str(db)})).stdout)
    # --db wins over the environment
    assert_error(invoke(runner, ["status", "--db", "other.db"], env={"INDEXER_DB": str(db)}),
                 contains="no index database")
    assert db.is_file()
    assert info["images"]["indexed"] == 1 and Path(info["db"]) == db.resolve()


def test_data_on_stdout_messages_on_stderr(runner, tmp_path):
    root = tmp_path / "a"
    save_jpeg(scene(1, (96, 72)), root / "x.jpg")
    save_jpeg(scene(2, (96, 72)), root / "y.jpg")
    db = tmp_path / "i.db"
    r = ok(invoke(runner, ["scan", root, "--db", db, "--workers", "1", "--quiet"]))
    assert r.stdout == ""
    assert "2 new" in r.stderr
    r = ok(invoke(runner, ["scan", root, "--db", db, "--workers", "1", "--quiet", "--json"]))
    summary = json.loads(r.stdout)
    assert (summary["new"], summary["unchanged"], summary["status"]) == (0, 2, "completed")
    r = ok(invoke(runner, ["export", "--db", db]))
    assert r.stderr == "" and len(r.stdout.splitlines()) == 3
    r = ok(invoke(runner, ["status", "--db", db, "--json"]))
    assert r.stderr == "" and json.loads(r.stdout)["images"]["indexed"] == 2


# -- reroot --------------------------------------------------------------------------------------


def test_reroot_after_moving_the_archive(runner, tmp_path):
    old = tmp_path / "card" / "archive"
    make_archive(old, cameras=2, per_camera=3, size=(160, 120))
    db = tmp_path / "i.db"
    assert scan(runner, old, db)["new"] == 6
    new = tmp_path / "nas" / "camtraps"
    new.parent.mkdir()
    shutil.move(old, new)

    r = ok(invoke(runner, ["reroot", old, new, "--db", db]))
    assert r.stdout == "" and "6 images" in r.stderr
    paths = [row["path"] for row in export(runner, db)]
    assert len(paths) == 6
    assert all(p.startswith(str(new) + "/") and Path(p).is_file() for p in paths)

    summary = scan(runner, new, db)
    assert (summary["new"], summary["changed"], summary["unchanged"], summary["missing"]) == (0, 0, 6, 0)
    info = json.loads(ok(invoke(runner, ["status", "--db", db, "--json"])).stdout)
    assert [r["path"] for r in info["roots"]] == [str(new)]
    assert info["images"] == {"indexed": 6, "failed": 0, "missing": 0}


def test_reroot_unknown_root_is_an_error(runner, indexed, tmp_path):
    _, db = indexed
    before = image_rows(db)
    assert_error(invoke(runner, ["reroot", tmp_path / "never_scanned", tmp_path, "--db", db]), contains="no root")
    assert image_rows(db) == before


# -- one column vocabulary -------------------------------------------------------------------------

def test_export_takes_the_same_columns_and_functions_as_select(runner, indexed, tmp_path):
    root, db = indexed
    work = tmp_path / "index.db"
    shutil.copy(db, work)  # labels are written: keep the shared fixture untouched
    ok(invoke(runner, ["labels", "from-folders", "--level", "1", "--db", work]))
    rows = export(runner, work, "--where", "class = 'site2'")
    assert len(rows) == 6 and {r["class"] for r in rows} == {"site2"} and {r["level1"] for r in rows} == {"site2"}
    assert len(export(runner, work, "--where", "level(folder, 2) = 'cam01' AND level1 = 'site1'")) == 5
    picked = ok(invoke(runner, ["select", "--db", work, "--where", "class = 'site2'", "--target", "100"]))
    assert sorted(picked.stdout.split()) == sorted(r["path"] for r in rows)
    view = [r[1] for r in sqlite3.connect(work).execute("PRAGMA table_info(image_view)")]
    assert list(rows[0]) == view  # export's columns are the view select, buckets and report read


def test_hour_and_is_night_come_from_the_exif_time(runner, indexed):
    _, db = indexed
    rows = export(runner, db)
    for r in rows:
        hour = int(r["captured_at"][11:13])
        assert int(r["hour"]) == hour
        assert r["is_night"] == ("1" if hour >= 20 or hour < 6 else "0")  # the report's day is 06-20h too
    assert len(export(runner, db, "--where", "hour BETWEEN 10 AND 12")) == \
        sum(1 for r in rows if 10 <= int(r["hour"]) <= 12) > 0


def test_a_typo_in_a_column_name_suggests_the_column(runner, indexed):
    _, db = indexed
    for command in (["export"], ["select", "--target", "1"], ["buckets"]):
        r = invoke(runner, [*command, "--db", db, "--where", "is_grey = 1"])
        assert "did you mean is_gray?" in assert_error(r, contains="no such column: is_grey"), command
