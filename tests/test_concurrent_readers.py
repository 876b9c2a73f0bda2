"""Readers of the index while a scan writes it: a plain `sqlite3` reader with no busy timeout (what
a user's notebook or dashboard does) must never get `database is locked`, and our reading commands
(status, export, select) running at the same time must all succeed.

In WAL mode a reader only needs a SHARED lock on the database file, which nothing refuses while a
scan holds the database open except a connection being *closed*: by default SQLite tries the
database file's EXCLUSIVE lock at every close (to checkpoint and delete the WAL if it was the last
connection). On the unix VFS the try write-locks the PENDING byte until the close ends, so a reader
starting at that instant fails with SQLITE_BUSY (a `select` closing its read-write connection);
when the closing connection is the last one (the scan's own close, if no reader is connected at
that instant) the lock is held through a whole checkpoint and its fsyncs. A connection opened
read-only, or with SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, never takes it; a checkpoint run as a
statement (PRAGMA wal_checkpoint) takes no lock a reader needs.

Whether a given close meets a read is a matter of timing, so the test runs several scans (each
adds a new folder to the archive) under one reader. The reader opens a fresh connection per read;
its attempts count from each scan's first committed batch until that scan process has exited (its
final close included). Between scans they do not count: with no scan holding the database, the
last connection to close and the first to open (WAL recovery) lock readers out by SQLite's design.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROUNDS = 6            # scans at most, each of a new folder of PER_ROUND images
PER_ROUND = 200
N_SEED = 30           # indexed before, so the commands have images to read from the start
BATCH = 16            # a commit every 16 images: the scan writes all the time
BUDGET = 35.0         # seconds: no new round is started that would end after it (a round takes
                      # 4-8 s on a 2-core machine, more when it is busy with other work)

RAW_READER = textwrap.dedent("""
    import json, os, sqlite3, sys, time
    db, stop, out = sys.argv[1:4]
    queries = ["SELECT COUNT(*) FROM images",
               "SELECT * FROM image_files ORDER BY id DESC LIMIT 3",
               "SELECT * FROM image_view LIMIT 3"]
    reads, errors = 0, []
    while not os.path.exists(stop):
        started = time.time()
        try:
            conn = sqlite3.connect(db, timeout=0)  # no busy timeout, a fresh connection each time
            try:
                for sql in queries:
                    conn.execute(sql).fetchall()
                    reads += 1
            finally:
                conn.close()
        except sqlite3.Error as exc:
            errors.append({"started": started, "failed": time.time(), "error": str(exc)})
        time.sleep(0.005)  # connected a small part of the time: a scan often closes as the last
    with open(out, "w") as f:
        json.dump({"reads": reads, "errors": errors}, f)
""")


def indexer(*args: str) -> list[str]:
    return [sys.executable, "-m", "indexer", *args]


def make_images(folder: Path, n: int, seed: int) -> None:
    """Small distinct JPEGs in a few camera folders (cheap to decode: the scan mostly commits)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        path = folder / f"cam{i % 4 + 1:02d}" / f"IMG_{i:05d}.JPG"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, "JPEG", quality=80)


def image_count(db: Path) -> int:
    """Through a read-only connection: closing it takes no lock that could refuse the reader."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    finally:
        conn.close()


def test_plain_reader_never_locked_out_while_scan_runs(tmp_path: Path) -> None:
    db, archive, staging = tmp_path / "index.db", tmp_path / "archive", tmp_path / "staging"
    make_images(archive / "site0", N_SEED, seed=0)
    for r in range(1, ROUNDS + 1):
        make_images(staging / f"site{r}", PER_ROUND, seed=r)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    first = subprocess.run(indexer("scan", "--db", str(db), "-q", str(archive)), cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr

    stop, raw_out = tmp_path / "STOP", tmp_path / "raw.json"
    raw = subprocess.Popen([sys.executable, "-c", RAW_READER, str(db), str(stop), str(raw_out)],
                           cwd=tmp_path, env=env)
    results: dict[str, list[subprocess.CompletedProcess[str]]] = {}
    done = threading.Event()

    def loop(name: str, args: list[str]) -> None:
        runs = results.setdefault(name, [])
        while not done.is_set():
            runs.append(subprocess.run(indexer(*args), cwd=tmp_path, env=env, capture_output=True,
                                       text=True, timeout=60))
            done.wait(0.1)  # leave the scan some CPU

    loops = [threading.Thread(target=loop, args=(name, args)) for name, args in (
        ("status", ["status", "--db", str(db)]),
        ("export", ["export", "--db", str(db), "-o", os.devnull]),
        ("select", ["select", "--db", str(db), "--target", "5", "-q"]),
    )]
    windows: list[tuple[float, float]] = []  # (first batch seen, scan exited), wall clock
    scans: list[tuple[int, str]] = []
    began = time.monotonic()
    deadline = began + 90.0  # a hung scan
    try:
        for t in loops:
            t.start()
        for r in range(1, ROUNDS + 1):
            if r > 1 and (time.monotonic() - began) * r / (r - 1) > BUDGET:
                break
            before = image_count(db)
            shutil.move(str(staging / f"site{r}"), str(archive / f"site{r}"))
            scan = subprocess.Popen(indexer("scan", "--db", str(db), "-q", "--batch", str(BATCH), str(archive)),
                                    cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                while image_count(db) <= before:  # the scan holds the database and has committed
                    assert scan.poll() is None, f"scan {r} ended before its first batch: {scan.communicate()}"
                    assert time.monotonic() < deadline, f"scan {r} committed nothing in time"
                    time.sleep(0.02)
                opened = time.time()
                _, err = scan.communicate(timeout=max(1.0, deadline - time.monotonic()))
                windows.append((opened, time.time()))
                scans.append((scan.returncode, err))
            finally:
                if scan.poll() is None:
                    scan.kill()
                    scan.communicate()
    finally:
        stop.write_text("stop")
        done.set()
        for t in loops:
            t.join(90)
        raw.wait(30)

    for returncode, err in scans:
        assert returncode == 0, err
    assert image_count(db) == N_SEED + len(scans) * PER_ROUND
    raw_result = json.loads(raw_out.read_text())
    assert raw_result["reads"] > 200, f"the reader hardly ran: {raw_result['reads']} reads"

    def during(e: dict) -> str | None:
        for i, (start, end) in enumerate(windows, 1):
            if start <= e["started"] <= end:
                return f"scan {i}, {e['failed'] - end:+.3f} s from its exit"
        return None

    refused = [(e["error"], where) for e in raw_result["errors"] if (where := during(e))]
    assert not refused, (
        f"a plain sqlite3 reader (timeout=0) was refused {len(refused)} times in {raw_result['reads']} "
        f"reads while scans ran: {refused[:8]}")
    for name, runs in results.items():
        assert runs, f"`indexer {name}` never ran"
        failed = [r for r in runs if r.returncode != 0]
        assert not failed, f"`indexer {name}` failed {len(failed)} of {len(runs)} times: {failed[0].stderr[-500:]}"
    assert set(results) == {"status", "export", "select"}
