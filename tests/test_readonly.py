"""An index on a read-only mount (shared with colleagues) serves every reading command and is
never written; a damaged index is named as damaged, by writers before they write and by readers."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def indexer(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indexer", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r


def one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for w in words:
        assert w in lines[0], r.stderr


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def scanned(archive: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    db = folder / "index.db"
    ok(indexer("scan", str(archive), "--db", str(db), "--workers", "1", "--quiet"))
    ok(indexer("labels", "from-folders", "--level", "1", "--db", str(db)))
    return folder


@pytest.fixture
def read_only(scanned: Path, tmp_path: Path) -> Iterator[Path]:
    """The folder of the index as a read-only mount (root), or with its write bits off (others)."""
    if os.geteuid() == 0:
        view = tmp_path / "ro-mount"
        view.mkdir()
        if subprocess.run(["mount", "--bind", str(scanned), str(view)], capture_output=True).returncode != 0:
            pytest.skip("running as root without the right to mount: cannot make a read-only place")
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True, capture_output=True)
            yield view
        finally:
            subprocess.run(["umount", str(view)], check=False)
    else:
        for p in scanned.iterdir():
            p.chmod(0o444)
        scanned.chmod(0o555)
        try:
            yield scanned
        finally:
            scanned.chmod(0o755)


def test_reading_commands_work_on_a_read_only_index_and_write_nothing(read_only, tmp_path):
    db = str(read_only / "index.db")
    before = digest(read_only)
    status = ok(indexer("status", "--db", db))
    assert "images: 12 indexed" in status.stdout
    export = ok(indexer("export", "--db", db, "--where", "class = 'site1' AND level1 = 'site1'"))
    assert len(export.stdout.strip().splitlines()) == 1 + 6
    picked = ok(indexer("select", "--db", db, "--target", "2", "--per", "class"))
    assert len(picked.stdout.splitlines()) == 4
    ok(indexer("buckets", "--db", db))
    ok(indexer("selections", "--db", db))
    ok(indexer("labels", "show", "--db", db))
    ok(indexer("report", "--db", db, "--out", str(tmp_path / "report"), "--quiet", "--workers", "1"))
    assert digest(read_only) == before


def test_writing_commands_on_a_read_only_index_say_why_in_one_line(read_only, archive):
    db = str(read_only / "index.db")
    one_line_error(indexer("scan", str(archive), "--db", db, "--quiet"), "cannot be written")
    one_line_error(indexer("select", "--db", db, "--target", "2", "--save", "x"), "cannot be written")
    one_line_error(indexer("labels", "from-folders", "--level", "2", "--db", db), "cannot be written")


def scribble(db: Path) -> None:
    """Overwrite the first pages of the images table, as a bad disk or a stray write would (where
    they are depends on the schema, not on the size of the file: a new migration's tables moved
    the middle of the file onto pages that export never reads)."""
    import sqlite3
    conn = sqlite3.connect(db)
    try:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'images'").fetchone()[0]
    finally:
        conn.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * page)
        f.write(os.urandom(4 * page))


def test_a_damaged_index_is_named_damaged_and_not_written(scanned, archive, tmp_path):
    db = scanned / "index.db"
    scribble(db)
    before = digest(scanned)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.jpg").write_bytes((archive / "site1" / "cam01" / "IMG_0001.JPG").read_bytes())
    one_line_error(indexer("scan", str(other), "--db", str(db), "--quiet"), "damaged")
    assert digest(scanned) == before
    r = indexer("export", "--db", str(db))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "damaged" in r.stderr and "--where" not in r.stderr, r.stderr
