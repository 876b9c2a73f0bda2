"""One writer, decided by a lock the operating system releases when its holder dies: two real
scans at once, a scan in another pid namespace (a container), a scan killed with SIGKILL, and
what `status` says about a run whose process is gone."""
from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imaging import copies_archive

N_FILES = 1000


@pytest.fixture(scope="module")
def slow_archive(tmp_path_factory) -> Path:
    """Enough 640x480 frames that one worker takes a few seconds."""
    return copies_archive(tmp_path_factory.mktemp("lock") / "archive", N_FILES, 250, bases=8)


def start_scan(archive: Path, db: Path, *prefix: str) -> subprocess.Popen:
    return subprocess.Popen([*prefix, sys.executable, "-m", "indexer", "scan", str(archive), "--db", str(db),
                             "--workers", "1", "--batch", "8", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def committed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def wait_for_rows(db: Path, proc: subprocess.Popen, at_least: int = 8, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while committed(db) < at_least:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the scan committed nothing"
        time.sleep(0.05)


def run(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "indexer", *args], capture_output=True, text=True,
                          timeout=120)


def attempts(db: Path) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT attempts FROM images")]
    finally:
        conn.close()


def can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    return r.returncode == 0


def second_scan_is_refused(archive: Path, db: Path, prefix: tuple[str, ...] = ()) -> None:
    first = start_scan(archive, db)
    try:
        wait_for_rows(db, first)
        r = run("scan", str(archive), "--db", str(db), "--workers", "1", "--quiet", prefix=prefix)
        assert first.poll() is None, "the first scan ended before the second was tried: make the archive bigger"
        assert r.returncode == 1, r.stderr
        assert r.stderr.startswith("Error: another `indexer scan`") and len(r.stderr.strip().splitlines()) == 1
        assert f"pid {first.pid}" in r.stderr
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert attempts(db) == [1] * N_FILES  # nothing decoded twice
    conn = sqlite3.connect(db)
    statuses = [r[0] for r in conn.execute("SELECT status FROM runs ORDER BY id")]
    conn.close()
    assert statuses == ["completed"]  # the live run was never marked crashed


def test_a_second_scan_is_refused_while_the_first_runs(slow_archive, tmp_path):
    second_scan_is_refused(slow_archive, tmp_path / "index.db")


@pytest.mark.skipif(not can_unshare(), reason="needs `unshare --pid` (root or user namespaces)")
def test_a_scan_in_another_pid_namespace_is_refused_too(slow_archive, tmp_path):
    # the second scan sees the first's pid as some unrelated (or no) process: only the lock can tell
    second_scan_is_refused(slow_archive, tmp_path / "index.db", prefix=("unshare", "--pid", "--fork", "--mount-proc"))


@pytest.mark.parametrize("contained", [False, True])
def test_a_killed_scan_blocks_nothing_and_status_says_its_holder_is_gone(slow_archive, tmp_path, contained):
    if contained and not can_unshare():
        pytest.skip("needs `unshare --pid` (root or user namespaces)")
    db = tmp_path / "index.db"
    prefix = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child") if contained else ()
    first = start_scan(slow_archive, db, *prefix)
    wait_for_rows(db, first)
    live = json.loads(run("status", "--db", str(db), "--json").stdout)
    assert live["writer_active"] and live["runs"][0]["status"] == "running" and not live["runs"][0]["holder_gone"]
    if contained:  # the whole container goes: its pid 1 (the scan) and everything under it
        subprocess.run(["pkill", "-KILL", "-f", f"indexer scan {slow_archive} --db {db}"], check=False)
    else:
        first.send_signal(signal.SIGKILL)
    first.wait(30)
    time.sleep(0.5)  # the workers notice their parent is gone
    status = run("status", "--db", str(db))
    assert status.returncode == 0, status.stderr
    assert "running, but its process is gone" in status.stdout, status.stdout
    r = run("scan", str(slow_archive), "--db", str(db), "--workers", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    conn = sqlite3.connect(db)
    statuses = [row[0] for row in conn.execute("SELECT status FROM runs ORDER BY id")]
    n = conn.execute("SELECT COUNT(*) FROM images WHERE state = 'indexed'").fetchone()[0]
    conn.close()
    assert statuses == ["crashed", "completed"] and n == N_FILES
    assert max(attempts(db)) == 1  # what the killed scan committed was not decoded again
