"""Behaviour of `indexer scan`: what is decoded, what is skipped, and what the index says afterwards.

Each test builds its own small archive (site{1,2}/cam{01,02}/IMG_000N.JPG, 12 images) and scans it
with one worker; "decoded" is observed through the rows' attempts and indexed_at, never timing.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from imaging import save_jpeg, scene
from indexer import BusyError, Database, Filters, RootError, State, scan
from indexer.cli import cli
from indexer.db import FEATURE_COLUMNS

CAM1 = "site1/cam01"
CAM2 = "site2/cam02"


# -- helpers ---------------------------------------------------------------------------------------

def run_scan(root: Path | str, db_path: Path, **options: object):
    options.setdefault("workers", 1)
    options.setdefault("progress", False)
    with Database(db_path, create=True) as db:
        return scan(db, [str(root)], **options)


def rows(db_path: Path) -> dict[tuple[str, str], dict]:
    """Every images row by (folder, name)."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return {(r["folder"], r["name"]): dict(r) for r in conn.execute("SELECT * FROM images")}
    finally:
        conn.close()


def table(db_path: Path, sql: str, params: tuple = ()) -> list[dict]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def decode_stamps(db_path: Path) -> dict[tuple[str, str], tuple]:
    """What changes when a file is decoded again: attempts, indexed_at, run_id."""
    return {k: (r["id"], r["attempts"], r["indexed_at"], r["run_id"]) for k, r in rows(db_path).items()}


def features(row: dict) -> dict:
    return {c: row[c] for c in FEATURE_COLUMNS}


def counts(summary) -> dict[str, int]:
    return summary.counts.as_dict()


def expect(**nonzero: int) -> dict[str, int]:
    base = dict(new=0, changed=0, unchanged=0, restored=0, moved=0, missing=0, failed=0)
    base.update(nonzero)
    return base


def fingerprint(root: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime_ns of every file under root."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


@pytest.fixture
def indexed(archive: Path, db_path: Path) -> Path:
    """The archive, scanned once."""
    s = run_scan(archive, db_path)
    assert counts(s) == expect(new=12)
    return archive


# -- first and second scan -------------------------------------------------------------------------

def test_first_scan_indexes_every_image(archive, db_path):
    s = run_scan(archive, db_path)
    assert s.status == "completed"
    assert counts(s) == expect(new=12)
    assert s.decoded == 12
    got = rows(db_path)
    assert len(got) == 12
    assert {r["state"] for r in got.values()} == {"indexed"}
    assert {r["attempts"] for r in got.values()} == {1}
    assert all(r["error"] is None for r in got.values())
    r = got[(CAM1, "IMG_0001.JPG")]
    assert (r["format"], r["mode"], r["width"], r["height"]) == ("JPEG", "RGB", 320, 240)
    assert r["captured_at"] == "2024-05-01T10:00:00"
    assert (r["camera_make"], r["camera_model"]) == ("TESTCAM", "T1")
    assert got[(CAM1, "IMG_0006.JPG")]["is_gray"] == 1  # the second half of each camera is night frames
    assert got[(CAM1, "IMG_0001.JPG")]["is_gray"] == 0
    with Database(db_path) as db:
        assert db.state_counts() == {"indexed": 12, "failed": 0, "missing": 0}


def test_paths_are_stored_relative_to_the_root(indexed, db_path):
    roots = table(db_path, "SELECT * FROM roots")
    assert [r["path"] for r in roots] == [str(indexed).replace(os.sep, "/")]
    assert roots[0]["last_scan_at"] is not None
    assert set(rows(db_path)) == {(cam, f"IMG_{i:04d}.JPG") for cam in (CAM1, CAM2) for i in range(1, 7)}
    paths = {r["path"] for r in table(db_path, "SELECT path FROM image_files")}
    assert f"{indexed}/{CAM1}/IMG_0001.JPG" in paths


def test_second_scan_decodes_nothing(indexed, db_path):
    before = decode_stamps(db_path)
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(unchanged=12)
    assert s.decoded == 0
    assert decode_stamps(db_path) == before


def test_only_added_files_are_decoded(indexed, db_path):
    before = decode_stamps(db_path)
    save_jpeg(scene(501), indexed / CAM1 / "IMG_0007.JPG")
    save_jpeg(scene(502), indexed / "site3" / "cam03" / "IMG_0001.JPG")
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(new=2, unchanged=12)
    after = decode_stamps(db_path)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {(CAM1, "IMG_0007.JPG"), ("site3/cam03", "IMG_0001.JPG")}
    assert rows(db_path)[("site3/cam03", "IMG_0001.JPG")]["run_id"] == s.run_id


def test_rewritten_file_is_decoded_again(indexed, db_path):
    path = indexed / CAM1 / "IMG_0001.JPG"
    old = rows(db_path)[(CAM1, "IMG_0001.JPG")]
    save_jpeg(scene(999, (400, 300)), path)
    os.utime(path, ns=(old["mtime_ns"] + 10**9, old["mtime_ns"] + 10**9))  # a new mtime whatever the clock
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(changed=1, unchanged=11)
    new = rows(db_path)[(CAM1, "IMG_0001.JPG")]
    assert new["id"] == old["id"]
    assert new["attempts"] == 2
    assert new["run_id"] == s.run_id
    assert (new["width"], new["height"]) == (400, 300)
    assert new["dhash"] != old["dhash"]
    assert (new["size"], new["mtime_ns"]) == (path.stat().st_size, path.stat().st_mtime_ns)


def test_touched_file_is_decoded_again(indexed, db_path):
    path = indexed / CAM2 / "IMG_0003.JPG"
    old = rows(db_path)[(CAM2, "IMG_0003.JPG")]
    os.utime(path, ns=(old["mtime_ns"] + 5 * 10**9, old["mtime_ns"] + 5 * 10**9))
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(changed=1, unchanged=11)
    new = rows(db_path)[(CAM2, "IMG_0003.JPG")]
    assert new["attempts"] == 2
    assert new["mtime_ns"] == old["mtime_ns"] + 5 * 10**9
    assert features(new) == features(old)  # same bytes, same features


# -- missing, restored, moved ----------------------------------------------------------------------

def test_deleted_file_is_missing_and_keeps_its_features(indexed, db_path, tmp_path):
    path = indexed / CAM1 / "IMG_0002.JPG"
    old = rows(db_path)[(CAM1, "IMG_0002.JPG")]
    path.unlink()
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(unchanged=11, missing=1)
    gone = rows(db_path)[(CAM1, "IMG_0002.JPG")]
    assert gone["state"] == "missing"
    assert gone["missing_since"] is not None
    assert features(gone) == features(old)
    assert gone["attempts"] == 1
    with Database(db_path) as db:
        assert db.state_counts() == {"indexed": 11, "failed": 0, "missing": 1}
    # a third scan does not count it missing again
    assert counts(run_scan(indexed, db_path)) == expect(unchanged=11)


def test_restored_file_is_indexed_again_without_decoding(indexed, db_path, tmp_path):
    path = indexed / CAM1 / "IMG_0002.JPG"
    backup = tmp_path / "backup.JPG"
    shutil.copy2(path, backup)
    path.unlink()
    run_scan(indexed, db_path)
    before = decode_stamps(db_path)
    shutil.copy2(backup, path)  # same bytes, same mtime
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(unchanged=11, restored=1)
    back = rows(db_path)[(CAM1, "IMG_0002.JPG")]
    assert back["state"] == "indexed"
    assert back["missing_since"] is None
    assert decode_stamps(db_path) == before  # attempts, indexed_at, run_id untouched


def test_restored_file_can_then_be_moved(indexed, db_path, tmp_path):
    path = indexed / CAM1 / "IMG_0002.JPG"
    backup = tmp_path / "backup.JPG"
    os.rename(path, backup)  # out of the archive: the backup keeps the inode
    run_scan(indexed, db_path)
    shutil.copy2(backup, path)  # same bytes and mtime, certainly a new inode
    assert run_scan(indexed, db_path).counts.restored == 1
    old = rows(db_path)[(CAM1, "IMG_0002.JPG")]
    os.rename(path, indexed / CAM1 / "renamed.JPG")
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(unchanged=11, moved=1)
    assert rows(db_path)[(CAM1, "renamed.JPG")]["id"] == old["id"]


def test_deleted_camera_folder_is_all_missing(indexed, db_path):
    shutil.rmtree(indexed / CAM2)
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(unchanged=6, missing=6)
    got = rows(db_path)
    assert {r["state"] for k, r in got.items() if k[0] == CAM2} == {"missing"}
    assert {r["state"] for k, r in got.items() if k[0] == CAM1} == {"indexed"}
    assert all(r["dhash"] is not None for r in got.values())


def test_deleted_site_folder_is_all_missing(indexed, db_path):
    shutil.rmtree(indexed / "site1")
    s = run_scan(indexed, db_path)
    assert s.counts.missing == 6
    assert {r["state"] for k, r in rows(db_path).items() if k[0] == CAM1} == {"missing"}


def test_file_moved_to_another_folder_keeps_its_row(indexed, db_path):
    old = rows(db_path)[(CAM2, "IMG_0004.JPG")]
    (indexed / "site1" / "sorted").mkdir()
    os.rename(indexed / CAM2 / "IMG_0004.JPG", indexed / "site1" / "sorted" / "fox.JPG")
    s = run_scan(indexed, db_path)
    assert s.counts.moved == 1
    assert s.counts.new == 0 and s.counts.changed == 0
    got = rows(db_path)
    assert (CAM2, "IMG_0004.JPG") not in got
    moved = got[("site1/sorted", "fox.JPG")]
    assert moved["id"] == old["id"]
    assert moved["state"] == "indexed"
    assert features(moved) == features(old)
    assert (moved["attempts"], moved["indexed_at"], moved["run_id"]) == (old["attempts"], old["indexed_at"], old["run_id"])


def test_moved_file_is_not_also_counted_missing(indexed, db_path):
    # site1/cam01 is walked before site2/cam02: the old path is met gone before the new one is found
    os.rename(indexed / CAM1 / "IMG_0001.JPG", indexed / CAM2 / "IMG_0101.JPG")
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(unchanged=11, moved=1)
    with Database(db_path) as db:
        assert db.state_counts() == {"indexed": 12, "failed": 0, "missing": 0}


def test_file_renamed_in_its_folder_keeps_its_row(indexed, db_path):
    old = rows(db_path)[(CAM1, "IMG_0003.JPG")]
    os.rename(indexed / CAM1 / "IMG_0003.JPG", indexed / CAM1 / "badger.JPG")
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(unchanged=11, moved=1)
    got = rows(db_path)
    assert (CAM1, "IMG_0003.JPG") not in got
    renamed = got[(CAM1, "badger.JPG")]
    assert renamed["id"] == old["id"]
    assert renamed["state"] == "indexed"
    assert features(renamed) == features(old)
    assert renamed["attempts"] == 1


def test_copy_is_new_not_a_move(indexed, db_path):
    shutil.copy2(indexed / CAM1 / "IMG_0001.JPG", indexed / CAM1 / "copy.JPG")
    os.link(indexed / CAM1 / "IMG_0002.JPG", indexed / CAM1 / "hardlink.JPG")
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(new=2, unchanged=12)
    got = rows(db_path)
    assert got[(CAM1, "IMG_0001.JPG")]["state"] == got[(CAM1, "copy.JPG")]["state"] == "indexed"
    assert got[(CAM1, "IMG_0002.JPG")]["state"] == got[(CAM1, "hardlink.JPG")]["state"] == "indexed"


def test_a_moved_file_and_its_hard_link_in_one_folder_are_one_move_and_one_new_file(indexed, db_path):
    """The folder's move sources are looked up in one query: the row the first name took along
    is no longer a source for the second."""
    old = rows(db_path)[(CAM2, "IMG_0004.JPG")]
    (indexed / "site1" / "sorted").mkdir()
    os.rename(indexed / CAM2 / "IMG_0004.JPG", indexed / "site1" / "sorted" / "a.JPG")
    os.link(indexed / "site1" / "sorted" / "a.JPG", indexed / "site1" / "sorted" / "b.JPG")
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(unchanged=11, moved=1, new=1)
    got = rows(db_path)
    assert got[("site1/sorted", "a.JPG")]["id"] == old["id"]
    assert got[("site1/sorted", "b.JPG")]["id"] != old["id"]


def test_renamed_camera_folder_is_moved_not_decoded(indexed, db_path):
    before = {r["id"]: features(r) for k, r in rows(db_path).items() if k[0] == CAM2}
    os.rename(indexed / CAM2, indexed / "site2" / "cam02-renamed")
    s = run_scan(indexed, db_path)
    assert counts(s) == expect(unchanged=6, moved=6)
    got = {r["id"]: (k, features(r), r["state"]) for k, r in rows(db_path).items()}
    for image_id, feats in before.items():
        (folder, _), now, state = got[image_id]
        assert (folder, now, state) == ("site2/cam02-renamed", feats, "indexed")


# -- roots -------------------------------------------------------------------------------------------

def test_scanning_a_subfolder_reuses_its_root_and_touches_only_that_subtree(indexed, db_path):
    (indexed / CAM1 / "IMG_0001.JPG").unlink()  # inside the scanned subtree
    (indexed / CAM2 / "IMG_0001.JPG").unlink()  # outside it
    save_jpeg(scene(77), indexed / CAM1 / "IMG_0010.JPG")
    s = run_scan(indexed / "site1", db_path)
    assert counts(s) == expect(new=1, unchanged=5, missing=1)
    assert len(table(db_path, "SELECT * FROM roots")) == 1
    got = rows(db_path)
    assert got[(CAM1, "IMG_0001.JPG")]["state"] == "missing"
    assert got[(CAM2, "IMG_0001.JPG")]["state"] == "indexed"  # not walked: not judged
    assert got[(CAM1, "IMG_0010.JPG")]["state"] == "indexed"
    run = table(db_path, "SELECT params FROM runs WHERE id = ?", (s.run_id,))[0]
    assert json.loads(run["params"])["roots"] == [f"{indexed}/site1"]


def test_scanning_a_parent_folder_absorbs_the_known_root(archive, db_path):
    s = run_scan(archive / "site1", db_path)
    assert counts(s) == expect(new=6)
    assert set(rows(db_path)) == {("cam01", f"IMG_{i:04d}.JPG") for i in range(1, 7)}
    before = {k[1]: v for k, v in decode_stamps(db_path).items()}
    s = run_scan(archive, db_path)
    assert counts(s) == expect(new=6, unchanged=6)
    roots = table(db_path, "SELECT path FROM roots")
    assert [r["path"] for r in roots] == [str(archive)]
    got = decode_stamps(db_path)
    assert {k[1]: v for k, v in got.items() if k[0] == CAM1} == before  # re-rooted, not re-decoded
    assert {k[0] for k in got} == {CAM1, CAM2}


# -- filters ---------------------------------------------------------------------------------------

def test_include_and_exclude_globs(archive, db_path, runner):
    r = runner.invoke(cli, ["scan", str(archive), "--db", str(db_path), "--workers", "1", "--quiet",
                            "--include", "IMG_000[12].JPG"])
    assert r.exit_code == 0, r.output
    assert {k[1] for k in rows(db_path)} == {"IMG_0001.JPG", "IMG_0002.JPG"}
    assert len(rows(db_path)) == 4
    other = db_path.with_name("other.db")
    r = runner.invoke(cli, ["scan", str(archive), "--db", str(other), "--workers", "1", "--quiet",
                            "--exclude", "cam02", "--exclude", "*_0006.JPG"])
    assert r.exit_code == 0, r.output
    assert set(rows(other)) == {(CAM1, f"IMG_{i:04d}.JPG") for i in range(1, 6)}
    run = table(other, "SELECT params FROM runs")[0]
    params = json.loads(run["params"])
    assert params["exclude"] == ["cam02", "*_0006.JPG"] and params["include"] == []


def test_globs_ignore_case_like_the_extension_check(archive, db_path):
    s = run_scan(archive, db_path, filters=Filters(include=("*_000[12].jpg",), exclude=("CAM02",)))
    assert s.counts.new == 2
    assert {k for k in rows(db_path)} == {(CAM1, "IMG_0001.JPG"), (CAM1, "IMG_0002.JPG")}


def test_a_filtered_scan_does_not_mark_filtered_out_files_missing(indexed, db_path):
    s = run_scan(indexed, db_path, filters=Filters(exclude=("cam02",)))
    assert s.counts.missing == 0
    s = run_scan(indexed, db_path, filters=Filters(include=("IMG_0001.JPG",)))
    assert s.counts.missing == 0
    with Database(db_path) as db:
        assert db.state_counts() == {"indexed": 12, "failed": 0, "missing": 0}
    # files in hidden folders, indexed by a --hidden scan, are not judged by a scan without it
    save_jpeg(scene(8), indexed / "site1" / ".trash" / "x.JPG")
    assert run_scan(indexed, db_path, filters=Filters(hidden=True)).counts.new == 1
    assert run_scan(indexed, db_path).counts.missing == 0
    # a deleted file the filter does take is still found missing
    (indexed / CAM1 / "IMG_0001.JPG").unlink()
    (indexed / CAM2 / "IMG_0001.JPG").unlink()
    s = run_scan(indexed, db_path, filters=Filters(exclude=("cam02",)))
    assert s.counts.missing == 1
    assert rows(db_path)[(CAM2, "IMG_0001.JPG")]["state"] == "indexed"


def test_hidden_files_and_folders_are_skipped_by_default(archive, db_path, tmp_path):
    save_jpeg(scene(1), archive / ".thumbnails" / "IMG_0001.JPG")
    save_jpeg(scene(2), archive / CAM1 / ".IMG_0009.JPG")
    s = run_scan(archive, db_path)
    assert counts(s) == expect(new=12)
    assert all(not part.startswith(".") for k in rows(db_path) for part in (*k[0].split("/"), k[1]))
    s = run_scan(archive, tmp_path / "hidden.db", filters=Filters(hidden=True))
    assert counts(s) == expect(new=14)


def test_extensions_are_matched_case_insensitively(tmp_path, db_path):
    root = tmp_path / "mixed"
    root.mkdir()
    img = scene(3, (160, 120))
    img.save(root / "a.JPG", "JPEG")
    img.save(root / "b.jpeg", "JPEG")
    img.save(root / "c.Png", "PNG")
    img.save(root / "d.tif", "TIFF")
    img.save(root / "e.bmp", "BMP")
    img.save(root / "f.webp", "WEBP")
    img.save(root / "g.TIFF", "TIFF")
    img.save(root / "h.gif", "GIF")  # not an extension the index takes
    (root / "notes.txt").write_text("not an image")
    (root / "a.JPG.bak").write_bytes((root / "a.JPG").read_bytes())
    s = run_scan(root, db_path)
    assert counts(s) == expect(new=7)
    formats = {k[1]: r["format"] for k, r in rows(db_path).items()}
    assert formats == {"a.JPG": "JPEG", "b.jpeg": "JPEG", "c.Png": "PNG", "d.tif": "TIFF", "e.bmp": "BMP",
                       "f.webp": "WEBP", "g.TIFF": "TIFF"}
    assert {r["state"] for r in rows(db_path).values()} == {"indexed"}


# -- the runs table and the CLI --------------------------------------------------------------------

def test_each_scan_records_a_completed_run_matching_its_summary(archive, db_path, runner):
    args = ["scan", str(archive), "--db", str(db_path), "--workers", "1", "--batch", "5", "--quiet", "--json"]
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    (archive / CAM1 / "IMG_0001.JPG").unlink()
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output
    second = json.loads(r.stdout)
    runs = table(db_path, "SELECT * FROM runs ORDER BY id")
    assert [run["id"] for run in runs] == [first["run_id"], second["run_id"]]
    for run, summary in zip(runs, (first, second)):
        assert run["status"] == summary["status"] == "completed"
        assert run["command"] == "scan"
        assert run["pid"] > 0 and run["host"] == socket.gethostname()
        assert run["ended_at"] is not None and run["elapsed_s"] is not None
        for name in ("new", "changed", "unchanged", "restored", "moved", "missing", "failed"):
            assert run[f"n_{name}"] == summary[name], name
        params = json.loads(run["params"])
        assert params["roots"] == [str(archive)]
        assert (params["workers"], params["batch"], params["retry_errors"]) == (1, 5, False)
    assert (first["new"], second["unchanged"], second["missing"]) == (12, 11, 1)


def test_cli_prints_a_one_line_summary(archive, db_path, runner):
    r = runner.invoke(cli, ["scan", str(archive), "--db", str(db_path), "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert r.stderr.startswith("completed: 12 new, 0 changed, 0 unchanged")
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_root_that_does_not_exist_is_refused(tmp_path, db_path, runner):
    with Database(db_path, create=True) as db, pytest.raises(RootError, match="does not exist"):
        scan(db, [str(tmp_path / "nope")], workers=1, progress=False)
    r = runner.invoke(cli, ["scan", str(tmp_path / "nope"), "--db", str(db_path), "--quiet"])
    assert r.exit_code in (1, 2)  # an error or a usage error: either way a one-line reason, no traceback
    assert "does not exist" in r.stderr and "Traceback" not in r.output
    assert table(db_path, "SELECT * FROM roots") == [] and table(db_path, "SELECT * FROM runs") == []


@pytest.fixture
def live_pid(db_path):
    """Another process that holds the database's writer lock for the test's duration, as a live
    scan does (the lock, not the runs row, says who writes)."""
    Database(db_path, create=True).close()
    code = ("import sys, time; from indexer.lock import WriterLock; import os; l = WriterLock(sys.argv[1]); "
            "assert l.acquire(f'`indexer scan` (pid {os.getpid()} on here, started now)') is None; "
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc.pid
    proc.kill()
    proc.wait()


def insert_running(db_path: Path, pid: int, host: str | None = None) -> int:
    with Database(db_path, create=True) as db:
        cur = db.conn.execute(
            "INSERT INTO runs (command, status, started_at, heartbeat_at, pid, host, params) "
            "VALUES ('scan', 'running', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', ?, ?, '{}')",
            (pid, host or socket.gethostname()),
        )
        return int(cur.lastrowid)


def test_a_second_scan_at_once_is_refused(indexed, db_path, runner, live_pid):
    run_id = insert_running(db_path, live_pid)
    before = decode_stamps(db_path)
    with Database(db_path) as db, pytest.raises(BusyError, match=f"pid {live_pid}"):
        scan(db, [str(indexed)], workers=1, progress=False)
    r = runner.invoke(cli, ["scan", str(indexed), "--db", str(db_path), "--workers", "1", "--quiet"])
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    message = r.stderr.strip()
    assert len(message.splitlines()) == 1
    assert message.startswith("Error: another `indexer scan`") and f"pid {live_pid}" in message
    runs = table(db_path, "SELECT id, status FROM runs ORDER BY id")
    assert runs[-1] == {"id": run_id, "status": "running"}  # no run of the refused scans was recorded
    assert decode_stamps(db_path) == before


def test_a_refused_scan_changes_no_root(indexed, db_path, live_pid):
    # the refused scan of a parent folder must not re-root the live scan's images under its feet
    insert_running(db_path, live_pid)
    roots_before = table(db_path, "SELECT * FROM roots")
    rows_before = rows(db_path)
    with Database(db_path) as db, pytest.raises(BusyError):
        scan(db, [str(indexed.parent)], workers=1, progress=False)
    assert table(db_path, "SELECT * FROM roots") == roots_before
    assert rows(db_path) == rows_before


def test_a_stale_running_row_is_marked_crashed(indexed, db_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_id = insert_running(db_path, dead.pid)
    s = run_scan(indexed, db_path)
    assert s.status == "completed"
    runs = {r["id"]: r for r in table(db_path, "SELECT * FROM runs")}
    assert runs[run_id]["status"] == "crashed"
    assert runs[run_id]["ended_at"] is not None
    assert runs[s.run_id]["status"] == "completed"


def test_a_running_row_whose_pid_lives_on_but_holds_no_lock_is_stale(indexed, db_path):
    # a scan killed inside a container leaves "pid 1": alive here, but not the writer
    run_id = insert_running(db_path, 1)
    s = run_scan(indexed, db_path)
    assert s.status == "completed"
    assert table(db_path, "SELECT status FROM runs WHERE id = ?", (run_id,))[0]["status"] == "crashed"


def test_a_run_on_another_host_that_holds_no_lock_is_stale(indexed, db_path):
    run_id = insert_running(db_path, 1, host="some-other-host.invalid")
    run_scan(indexed, db_path)
    assert table(db_path, "SELECT status FROM runs WHERE id = ?", (run_id,))[0]["status"] == "crashed"


# -- sources are read-only -------------------------------------------------------------------------

def test_source_files_are_never_modified(archive, db_path, tmp_path):
    (archive / "bad.jpg").write_bytes(b"not a jpeg at all")
    (archive / "empty.jpg").write_bytes(b"")
    before = fingerprint(archive)
    listing = sorted(os.listdir(archive / CAM1))
    run_scan(archive, db_path)
    assert fingerprint(archive) == before
    os.utime(archive / CAM2 / "IMG_0002.JPG")  # one change, so the second scan decodes something
    before = fingerprint(archive)
    run_scan(archive, db_path, retry_errors=True)
    assert fingerprint(archive) == before
    assert sorted(os.listdir(archive / CAM1)) == listing  # no side files next to the images
    assert State.INDEXED.value in {r["state"] for r in rows(db_path).values()}


def test_a_symlink_to_a_known_root_is_that_root(archive, db_path, tmp_path):
    run_scan(archive, db_path)
    link = tmp_path / "link"
    link.symlink_to(archive)
    s = run_scan(link, db_path)
    assert counts(s) == expect(unchanged=12)
    assert len(table(db_path, "SELECT * FROM roots")) == 1
    s = run_scan(link / "site1", db_path)  # inside it, through the link
    assert s.counts.new == 0 and s.counts.unchanged > 0


def test_a_symlinked_root_then_its_real_path_is_one_root(archive, db_path, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(archive)
    assert counts(run_scan(link, db_path)) == expect(new=12)
    assert counts(run_scan(archive, db_path)) == expect(unchanged=12)  # not a second copy of the archive
    assert counts(run_scan(archive / "site1", db_path)).get("new") == 0
    assert len(table(db_path, "SELECT * FROM roots")) == 1 and len(rows(db_path)) == 12


def test_a_fifo_named_like_an_image_fails_instead_of_hanging(archive, db_path):
    fifo = archive / "site1" / "cam01" / "pipe.jpg"
    os.mkfifo(fifo)
    s = run_scan(archive, db_path)  # would block forever on open() before the fix
    assert s.counts.new == 12 and s.counts.failed == 1
    got = rows(db_path)[(CAM1, "pipe.jpg")]
    assert got["state"] == "failed" and "not a regular file" in got["error"]


def test_folder_symlinks_inside_the_root_are_aliases_not_walked(tmp_path, db_path):
    root = tmp_path / "arch"
    for i in range(2):
        save_jpeg(scene(i, (96, 72)), root / "b" / f"IMG_{i}.JPG")
    (root / "a").symlink_to(root / "b")  # sorts before its target: the real folder must win
    outside = tmp_path / "elsewhere"
    save_jpeg(scene(9, (96, 72)), outside / "IMG_9.JPG")
    (root / "ext").symlink_to(outside)  # pointing outside the root: followed
    s = run_scan(root, db_path)
    assert s.counts.new == 3 and not s.problems
    assert set(rows(db_path)) == {("b", "IMG_0.JPG"), ("b", "IMG_1.JPG"), ("ext", "IMG_9.JPG")}
