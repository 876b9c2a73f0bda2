"""Bad inputs never stop a scan: each bad file is recorded 'failed' with a one-line reason.

One archive holds good images, odd-but-valid images (CMYK, 16-bit, palette, RGBA) and every kind
of bad input; a scan must complete, index what is good, and describe what is not.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import struct
import sys
import time
import zlib
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imaging import save_jpeg, scene
from indexer import Database, WorkItem, extract_one, scan
from indexer.cli import cli
from indexer.features import extract_many
from indexer.pipeline import CRASH_ERROR, Pipeline
from indexer.records import ImageResult
from indexer.scan import Scanner

GOOD = ["good/IMG_0001.JPG", "good/IMG_0002.JPG", "good/IMG_0003.JPG"]
ODD = {"odd/cmyk.jpg": "CMYK", "odd/gray16.png": "I;16", "odd/palette.png": "P", "odd/rgba.png": "RGBA"}
# the bad files and a substring their error must contain
BAD = {
    "bad/empty.jpg": "empty file",
    "bad/truncated.jpg": "truncated",
    "bad/text.jpg": "cannot identify",
    "bad/bomb.png": "decompression bomb",
    "bad/bomb-warning.png": "decompression bomb",
    "bad/x.jpg": "broken symlink",
}


# -- making the archive ----------------------------------------------------------------------------

def png_1bit(path: Path, width: int, height: int) -> Path:
    """A black 1-bit PNG written by hand: huge in pixels, a few dozen KB on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def jpeg_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    scene(seed, (320, 240)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_bad_archive(root: Path) -> Path:
    for i, rel in enumerate(GOOD):
        save_jpeg(scene(i, (160, 120)), root / rel)
    odd = root / "odd"
    odd.mkdir(parents=True)
    scene(10, (160, 120)).convert("CMYK").save(odd / "cmyk.jpg", "JPEG")
    ramp = (np.arange(120 * 160).reshape(120, 160) * 37 % 65536).astype(np.uint16)
    Image.fromarray(ramp).save(odd / "gray16.png")
    scene(11, (160, 120)).convert("P").save(odd / "palette.png")
    scene(12, (160, 120)).convert("RGBA").save(odd / "rgba.png")
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    whole = jpeg_bytes(20)
    (bad / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (bad / "text.jpg").write_text("this is a text file, not a JPEG\n")
    png_1bit(bad / "bomb.png", 20000, 20000)  # 400 Mpx: over Pillow's error limit (2 x 89 Mpx)
    png_1bit(bad / "bomb-warning.png", 10000, 10000)  # 100 Mpx: over the warning limit only
    os.symlink(bad / "no-such-target.jpg", bad / "x.jpg")
    os.symlink(root / "good", root / "good" / "loop")  # good/loop/loop/... forever, if followed blindly
    return root


@pytest.fixture
def bad_archive(tmp_path: Path) -> Path:
    return make_bad_archive(tmp_path / "archive")


def rows(db_path: Path) -> dict[str, dict]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return {(f"{r['folder']}/" if r["folder"] else "") + r["name"]: dict(r)
                for r in conn.execute("SELECT * FROM images")}
    finally:
        conn.close()


def cli_scan(runner, root: Path, db_path: Path, *extra: str):
    r = runner.invoke(cli, ["scan", str(root), "--db", str(db_path), "--workers", "1", "--quiet", *extra])
    assert "Traceback" not in r.output, r.output
    return r


# -- one scan over everything ----------------------------------------------------------------------

def test_a_scan_over_bad_inputs_completes_and_describes_each_failure(bad_archive, db_path, runner):
    r = cli_scan(runner, bad_archive, db_path, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["status"] == "completed"
    assert summary["new"] == len(GOOD) + len(ODD) + len(BAD) - 1  # the broken symlink is never decoded
    assert summary["failed"] == len(BAD)

    got = rows(db_path)
    assert set(got) == {*GOOD, *ODD, *BAD}
    for rel in GOOD:
        assert got[rel]["state"] == "indexed" and got[rel]["error"] is None, rel
    for rel, mode in ODD.items():
        assert (got[rel]["state"], got[rel]["mode"], got[rel]["error"]) == ("indexed", mode, None), rel
        assert got[rel]["dhash"] is not None
    assert got["odd/gray16.png"]["is_gray"] == 1
    assert got["odd/cmyk.jpg"]["is_gray"] == 0
    for rel, words in BAD.items():
        row = got[rel]
        assert row["state"] == "failed", rel
        assert words in row["error"], (rel, row["error"])
        assert "\n" not in row["error"] and "Traceback" not in row["error"]
        assert row["dhash"] is None and row["attempts"] == 1

    run = sqlite3.connect(db_path).execute("SELECT status, n_failed, problems FROM runs").fetchone()
    assert run[:2] == ("completed", len(BAD))
    assert any("symlink loop" in p["error"] and p["path"].endswith("loop") for p in json.loads(run[2]))


def test_status_errors_lists_every_failed_file(bad_archive, db_path, runner):
    r = cli_scan(runner, bad_archive, db_path)
    assert r.exit_code == 0, r.output
    assert f"{len(BAD)} failed" in r.stderr
    assert "indexer status --errors" in r.stderr
    r = runner.invoke(cli, ["status", "--db", str(db_path), "--errors"])
    assert r.exit_code == 0, r.output
    listed = [line.strip() for line in r.output.splitlines() if line.startswith("  ") and "\t" in line]
    assert len(listed) == len(BAD)
    for rel, words in BAD.items():
        line = next(x for x in listed if x.startswith(f"{bad_archive}/{rel}\t"))
        assert words in line
    r = runner.invoke(cli, ["status", "--db", str(db_path), "--errors", "--json"])
    info = json.loads(r.output)
    assert info["images"] == {"indexed": len(GOOD) + len(ODD), "failed": len(BAD), "missing": 0}
    assert {f["path"] for f in info["failed_files"]} == {f"{bad_archive}/{rel}" for rel in BAD}


def test_a_symlink_loop_is_a_problem_not_a_crash(bad_archive, db_path, runner):
    r = cli_scan(runner, bad_archive / "good", db_path)
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "symlink loop" in warnings[0] and "good/loop" in warnings[0]
    assert set(rows(db_path)) == {rel.split("/", 1)[1] for rel in GOOD}  # nothing indexed twice via the loop


def test_unreadable_file_fails_with_permission_denied(bad_archive, db_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: mode bits cannot deny root a read")
    locked = bad_archive / "good" / "locked.jpg"
    save_jpeg(scene(5, (160, 120)), locked)
    locked.chmod(0)
    try:
        with Database(db_path, create=True) as db:
            s = scan(db, [str(bad_archive / "good")], workers=1, progress=False)
        assert s.counts.failed == 1
        row = rows(db_path)["locked.jpg"]
        assert row["state"] == "failed" and "permission denied" in row["error"]
    finally:
        locked.chmod(0o644)


def test_permission_denied_is_a_failed_result_even_as_root(tmp_path, monkeypatch):
    """Root reads mode-0 files, so the denial is simulated where the worker opens the file."""
    import indexer.features as features

    path = save_jpeg(scene(5, (160, 120)), tmp_path / "locked.jpg")
    real_open = os.open

    def deny(p, *args, **kwargs):
        if os.fspath(p) == str(path):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, *args, **kwargs)

    monkeypatch.setattr(features.os, "open", deny)
    result = extract_one(WorkItem(1, str(tmp_path), "", "locked.jpg"))
    assert result.features is None and result.error == "permission denied: Permission denied"


# -- what later scans do with failed files ---------------------------------------------------------

def failed_stamps(db_path: Path) -> dict[str, tuple]:
    return {k: (r["attempts"], r["indexed_at"], r["error"]) for k, r in rows(db_path).items() if r["state"] == "failed"}


def test_unchanged_failed_files_are_not_retried(bad_archive, db_path, runner):
    assert cli_scan(runner, bad_archive, db_path).exit_code == 0
    before = failed_stamps(db_path)
    assert len(before) == len(BAD)
    r = cli_scan(runner, bad_archive, db_path, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert (summary["new"], summary["changed"], summary["failed"]) == (0, 0, 0)
    assert summary["unchanged"] == len(GOOD) + len(ODD) + len(BAD)
    assert failed_stamps(db_path) == before


def test_retry_errors_decodes_failed_files_again(bad_archive, db_path, runner):
    assert cli_scan(runner, bad_archive, db_path).exit_code == 0
    before = failed_stamps(db_path)
    good_before = {k: r["attempts"] for k, r in rows(db_path).items() if r["state"] == "indexed"}
    r = cli_scan(runner, bad_archive, db_path, "--json", "--retry-errors")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["failed"] == len(BAD)
    after = failed_stamps(db_path)
    assert set(after) == set(before)
    for rel in BAD:
        assert after[rel][0] == before[rel][0] + 1, rel
        assert BAD[rel] in after[rel][2]
    assert {k: r["attempts"] for k, r in rows(db_path).items() if r["state"] == "indexed"} == good_before


def test_a_fixed_file_is_indexed_on_the_next_scan(bad_archive, db_path, runner):
    assert cli_scan(runner, bad_archive, db_path).exit_code == 0
    fixed = bad_archive / "bad" / "truncated.jpg"
    old = rows(db_path)["bad/truncated.jpg"]
    fixed.write_bytes(jpeg_bytes(20))
    os.utime(fixed, ns=(old["mtime_ns"] + 10**9, old["mtime_ns"] + 10**9))
    r = cli_scan(runner, bad_archive, db_path, "--json")
    summary = json.loads(r.stdout)
    assert (summary["changed"], summary["failed"]) == (1, 0)
    row = rows(db_path)["bad/truncated.jpg"]
    assert (row["state"], row["error"], row["attempts"]) == ("indexed", None, 2)
    assert (row["width"], row["height"]) == (320, 240)
    # the broken symlink, once pointed at an image, is indexed too
    os.remove(bad_archive / "bad" / "x.jpg")
    os.symlink(bad_archive / "good" / "IMG_0001.JPG", bad_archive / "bad" / "x.jpg")
    cli_scan(runner, bad_archive, db_path)
    assert rows(db_path)["bad/x.jpg"]["state"] == "indexed"


# -- files that vanish mid-scan --------------------------------------------------------------------

def test_extract_one_reports_a_file_that_vanished(tmp_path):
    path = save_jpeg(scene(1, (160, 120)), tmp_path / "gone.jpg")
    item = WorkItem(1, str(tmp_path), "", "gone.jpg", path.stat().st_size, path.stat().st_mtime_ns)
    path.unlink()
    result = extract_one(item)
    assert result.vanished
    assert result.features is None and "vanished" in result.error


def test_a_known_file_that_vanished_before_decoding_is_marked_missing(tmp_path, db_path):
    root = tmp_path / "archive"
    for i in range(3):
        save_jpeg(scene(i, (160, 120)), root / f"IMG_{i:04d}.JPG")
    with Database(db_path, create=True) as db:
        scan(db, [str(root)], workers=1, progress=False)
        root_id = db.roots()[0]["id"]
        known = WorkItem(root_id, str(root), "", "IMG_0001.JPG")
        unknown = WorkItem(root_id, str(root), "", "IMG_0099.JPG")
        (root / "IMG_0001.JPG").unlink()
        results = [extract_one(known), extract_one(unknown)]
        assert all(r.vanished for r in results)
        scanner = Scanner(db, workers=1, progress=False)
        scanner.store(results)
        assert scanner.counts.missing == 1 and scanner.counts.failed == 0
    got = rows(db_path)
    assert got["IMG_0001.JPG"]["state"] == "missing"
    assert got["IMG_0001.JPG"]["dhash"] is not None  # features kept
    assert "IMG_0099.JPG" not in got  # nothing is written for a file the index never had
    assert {got[n]["state"] for n in ("IMG_0000.JPG", "IMG_0002.JPG")} == {"indexed"}


# -- a decoder that kills its worker ---------------------------------------------------------------

def crashing_decode(items: list[WorkItem]) -> list[ImageResult]:
    """Like extract_many, but dies like a segfaulting decoder on files named boom.jpg."""
    if any(item.name == "boom.jpg" for item in items):
        os._exit(70)
    return extract_many(items)


def live_pool_workers() -> list[int]:
    """Pids of this process's children that are multiprocessing pool workers and not zombies."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"spawn_main" in cmdline:
            out.append(int(pid))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to list child processes")
def test_a_worker_crash_fails_only_the_file_that_caused_it(tmp_path, db_path, monkeypatch):
    root = tmp_path / "archive"
    for i in range(6):
        save_jpeg(scene(i, (160, 120)), root / f"IMG_{i:04d}.JPG")
    shutil.copy(root / "IMG_0003.JPG", root / "boom.jpg")
    # `indexer.scan` the attribute is the function: patch the module the scanner looks Pipeline up in
    monkeypatch.setattr(sys.modules["indexer.scan"], "Pipeline", partial(Pipeline, decode=crashing_decode))
    before = set(live_pool_workers())
    with Database(db_path, create=True) as db:
        s = scan(db, [str(root)], workers=2, batch=4, progress=False)
    assert s.status == "completed"
    assert (s.counts.new, s.counts.failed) == (7, 1)
    got = rows(db_path)
    assert got["boom.jpg"]["state"] == "failed"
    assert "crashed" in got["boom.jpg"]["error"] and got["boom.jpg"]["error"] == CRASH_ERROR
    assert {got[f"IMG_{i:04d}.JPG"]["state"] for i in range(6)} == {"indexed"}
    assert all(got[f"IMG_{i:04d}.JPG"]["attempts"] == 1 for i in range(6))
    deadline = time.monotonic() + 5
    while set(live_pool_workers()) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not set(live_pool_workers()) - before, "pool workers outlived the scan"
