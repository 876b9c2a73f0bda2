"""File and folder names that are not valid UTF-8 (Latin-1 names from old cameras and Windows
shares) are indexed like any other and leave the index byte for byte: export, select -o,
select --copy-to. Run as the user runs it: the `indexer` command in a subprocess."""
from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from imaging import save_jpeg, scene

BAD_FILE = b"IMG_\xff.JPG"
BAD_FOLDER = b"cam\xe9"  # Latin-1 'camé'


def indexer(*args: str | bytes, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indexer", *args], capture_output=True, timeout=120, cwd=cwd,
                          env=env)


@pytest.fixture
def odd_archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    fs = os.fsdecode
    save_jpeg(scene(1), root / "site" / "cam01" / "IMG_0001.JPG", taken="2024:05:01 10:00:00")
    save_jpeg(scene(2), root / "site" / "cam01" / fs(BAD_FILE), taken="2024:05:01 11:00:00")
    save_jpeg(scene(3), root / "site" / fs(BAD_FOLDER) / "IMG_0002.JPG", taken="2024:05:01 12:00:00")
    save_jpeg(scene(4), root / "site" / fs(BAD_FOLDER) / fs(BAD_FILE), taken="2024:05:01 13:00:00")
    return root


def on_disk(root: Path) -> set[bytes]:
    return {os.fsencode(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files}


def test_names_that_are_not_utf8_are_indexed_and_rescanned_unchanged(odd_archive, tmp_path):
    db = tmp_path / "index.db"
    r = indexer("scan", str(odd_archive), "--db", str(db), "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    assert b"completed: 4 new" in r.stderr and b"0 failed" in r.stderr
    r = indexer("scan", str(odd_archive), "--db", str(db), "--workers", "1", "--quiet")
    assert b"0 new, 0 changed, 4 unchanged" in r.stderr, r.stderr
    conn = sqlite3.connect(db)  # a plain reader of the documented schema: valid UTF-8 text + exact bytes
    got = {(f, n): raw for f, n, raw in conn.execute("SELECT folder, name, rel_raw FROM images")}
    conn.close()
    assert got[("site/cam01", "IMG_0001.JPG")] is None
    assert got[("site/cam01", "IMG_\\xff.JPG")] == b"site/cam01/" + BAD_FILE
    assert got[("site/cam\\xe9", "IMG_\\xff.JPG")] == b"site/" + BAD_FOLDER + b"/" + BAD_FILE


def test_export_and_select_give_the_paths_back_byte_exact(odd_archive, tmp_path):
    db = tmp_path / "index.db"
    assert indexer("scan", str(odd_archive), "--db", str(db), "--workers", "1", "--quiet").returncode == 0
    exported = indexer("export", "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout.decode("utf-8", "surrogateescape"))))
    assert {os.fsencode(r["path"]) for r in rows} == on_disk(odd_archive)
    selected = indexer("select", "--db", str(db), "--target", "4", "--quiet")
    assert selected.returncode == 0, selected.stderr
    assert set(selected.stdout.splitlines()) == on_disk(odd_archive)
    out = tmp_path / "picked"
    r = indexer("select", "--db", str(db), "--target", "4", "--copy-to", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    copied = {os.fsencode(os.path.relpath(p, out)) for p in map(os.fsdecode, on_disk(out))}
    assert copied == {os.fsencode(os.path.relpath(p, odd_archive)) for p in map(os.fsdecode, on_disk(odd_archive))}


def test_a_renamed_odd_file_keeps_its_row(odd_archive, tmp_path):
    db = tmp_path / "index.db"
    assert indexer("scan", str(odd_archive), "--db", str(db), "--workers", "1", "--quiet").returncode == 0
    folder = os.fsencode(odd_archive / "site") + b"/" + BAD_FOLDER
    os.rename(folder + b"/" + BAD_FILE, folder + b"/IMG_\xfe.JPG")
    r = indexer("scan", str(odd_archive), "--db", str(db), "--workers", "1", "--quiet")
    assert b"0 new" in r.stderr and b"1 moved" in r.stderr and b"0 missing" in r.stderr, r.stderr


@pytest.mark.parametrize("option", ["--where", "--per"])
def test_expressions_that_are_not_utf8_are_a_one_line_error(odd_archive, tmp_path, option):
    db = tmp_path / "index.db"
    assert indexer("scan", str(odd_archive), "--db", str(db), "--workers", "1", "--quiet").returncode == 0
    r = indexer("select", "--db", str(db), "--target", "1", option, b"name = 'IMG_\xff.JPG'")
    assert r.returncode in (1, 2)
    assert b"Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and b"UTF-8" in r.stderr, r.stderr
    r = indexer("export", "--db", str(db), "--where", b"name = 'IMG_\xff.JPG'")
    assert r.returncode in (1, 2) and b"Traceback" not in r.stderr and b"UTF-8" in r.stderr, r.stderr


def test_the_report_makes_a_thumbnail_of_every_odd_file(odd_archive, tmp_path):
    db = tmp_path / "index.db"
    assert indexer("scan", str(odd_archive), "--db", str(db), "--workers", "1", "--quiet").returncode == 0
    r = indexer("report", "--db", str(db), "--out", str(tmp_path / "report"), "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert b"thumbnails 4 made, 0 cached, 0 placeholders" in r.stderr, r.stderr
    page = (tmp_path / "report" / "index.html").read_bytes()
    assert b"IMG_\\xff.JPG" in page  # shown readably, as \xff
    page.decode("utf-8")  # and the page stays valid UTF-8
