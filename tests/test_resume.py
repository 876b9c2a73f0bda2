"""A scan stopped half-way (SIGKILL, Ctrl-C, SIGTERM) resumes to the same index as a scan never stopped.

The scan runs as a real `python -m indexer scan` subprocess; the test watches the database through a
read-only connection and stops the scan once some batches are committed but not all. Worker
processes carry a unique environment variable, so the test can find them and check that none
outlives the scan that started it.
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from imaging import save_jpeg, scene
from indexer import Database, Interrupted, scan
from indexer.db import FEATURE_COLUMNS

N_FILES = 600  # 640x480 JPEGs: about 3 s for one worker, so a stop lands mid-run
BATCH = 16
MARKER = "INDEXER_TEST_RUN"

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(),
                                reason="finds the scan's processes through /proc")


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume") / "archive"
    bases = [save_jpeg(scene(i, (640, 480), gray=i % 3 == 0), root / f"base{i}.JPG") for i in range(12)]
    for i in range(N_FILES):
        folder = root / f"site{i // 200 + 1}" / f"cam{i // 50 % 4 + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(bases[i % len(bases)], folder / f"IMG_{i:04d}.JPG")
    for b in bases:
        b.unlink()
    return root


@pytest.fixture(scope="module")
def reference(big_archive, tmp_path_factory) -> dict:
    """The content of an index made by one uninterrupted scan."""
    db_path = tmp_path_factory.mktemp("reference") / "index.db"
    with Database(db_path, create=True) as db:
        s = scan(db, [str(big_archive)], workers=2, progress=False)
    assert s.status == "completed" and s.counts.new == N_FILES
    return content(db_path)


def content(db_path: Path) -> dict:
    """What a user gets out of the index: per file, its state, stat stamp, error and features."""
    cols = ("state", "size", "mtime_ns", "error", *FEATURE_COLUMNS)
    conn = sqlite3.connect(db_path)
    try:
        return {(r[0], r[1]): r[2:] for r in conn.execute(f"SELECT folder, name, {', '.join(cols)} FROM images")}
    finally:
        conn.close()


def query(db_path: Path, sql: str) -> list[tuple]:
    """Read-only, as a second program would: never takes a write lock on the scan's database."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _default_sigint() -> None:
    # A shell without job control starts background commands with SIGINT ignored, and children
    # inherit that: give the scan the Ctrl-C a user at a terminal has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ScanProcess:
    """`python -m indexer scan` in its own session, its processes tagged with a unique marker."""

    def __init__(self, root: Path, db_path: Path) -> None:
        self.marker = uuid.uuid4().hex
        self.args = [sys.executable, "-m", "indexer", "scan", str(root), "--db", str(db_path),
                     "--workers", "1", "--batch", str(BATCH), "--quiet"]
        self.db_path = db_path
        self.proc = subprocess.Popen(self.args, env={**os.environ, MARKER: self.marker}, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True,
                                     preexec_fn=_default_sigint)

    def committed(self) -> int:
        try:
            return query(self.db_path, "SELECT COUNT(*) FROM images")[0][0]
        except sqlite3.Error:  # not created, or not migrated yet
            return 0

    def wait_until_partly_done(self, at_least: int = 2 * BATCH, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = self.committed()
            if n >= at_least:
                assert n < N_FILES, "the scan finished before it could be stopped: make the archive bigger"
                return n
            if self.proc.poll() is not None:
                pytest.fail(f"the scan exited early ({self.proc.returncode}): {self.proc.stderr.read()}")
            time.sleep(0.02)
        pytest.fail("no batch was committed in time")

    def processes(self) -> list[int]:
        """Live (not zombie) processes carrying this run's marker: the scan, its workers, their helpers."""
        tag = f"{MARKER}={self.marker}".encode()
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if tag not in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    continue
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                found.append(int(pid))
        return found

    def survivors(self, timeout: float = 10) -> list[int]:
        deadline = time.monotonic() + timeout
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def cleanup(self) -> None:
        """Only if a test failed half-way: stop what this run started, by pid."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def scans():
    started: list[ScanProcess] = []

    def start(root: Path, db_path: Path) -> ScanProcess:
        started.append(ScanProcess(root, db_path))
        return started[-1]

    yield start
    for s in started:
        s.cleanup()


def run_to_completion(root: Path, db_path: Path) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "indexer", "scan", str(root), "--db", str(db_path), "--workers", "1",
            "--batch", str(BATCH), "--quiet"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def first_run_rows(db_path: Path) -> tuple[int, dict]:
    (run_id,) = query(db_path, "SELECT id FROM runs WHERE status = 'running'")[0]
    rows = {(f, n): (a, r) for f, n, a, r in query(db_path, "SELECT folder, name, attempts, run_id FROM images")}
    return run_id, rows


def assert_resumed(db_path: Path, first_id: int, first_rows: dict, reference: dict) -> None:
    now = {(f, n): (a, r) for f, n, a, r in query(db_path, "SELECT folder, name, attempts, run_id FROM images")}
    for key, (attempts, run_id) in first_rows.items():
        assert (attempts, run_id) == (1, first_id), key  # committed before the stop: never decoded again
        assert now[key] == (1, first_id), key
    assert {a for a, _ in now.values()} == {1}  # nothing was decoded twice
    assert content(db_path) == reference


def test_sigkill_mid_scan_then_rerun_gives_the_uninterrupted_result(big_archive, reference, tmp_path, scans):
    db_path = tmp_path / "index.db"
    s = scans(big_archive, db_path)
    s.wait_until_partly_done()
    workers = [pid for pid in s.processes() if pid != s.proc.pid]
    assert workers, "expected the scan to have started worker processes"
    s.proc.kill()
    s.proc.wait()
    first_id, first_rows = first_run_rows(db_path)
    assert 2 * BATCH <= len(first_rows) < N_FILES
    assert not s.survivors(), "worker processes outlived the killed scan"

    done = run_to_completion(big_archive, db_path)
    assert done.stderr.startswith("completed:")
    runs = dict(query(db_path, "SELECT id, status FROM runs"))
    assert runs[first_id] == "crashed"
    assert sorted(runs.values()) == ["completed", "crashed"]
    (n_new, n_unchanged), = query(db_path, "SELECT n_new, n_unchanged FROM runs WHERE status = 'completed'")
    assert (n_new, n_unchanged) == (N_FILES - len(first_rows), len(first_rows))
    assert_resumed(db_path, first_id, first_rows, reference)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_stopping_a_scan_is_clean_and_resumable(how, big_archive, reference, tmp_path, scans):
    db_path = tmp_path / "index.db"
    s = scans(big_archive, db_path)
    s.wait_until_partly_done()
    if how == "ctrl-c":
        os.killpg(s.proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
    else:
        s.proc.send_signal(signal.SIGTERM)  # `kill PID` reaches the scan alone
    try:
        _, stderr = s.proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the scan did not stop within 15 s of {how}")
    assert s.proc.returncode == 130, stderr
    assert "resume" in stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("interrupted:"), stderr
    assert not s.survivors(), f"worker processes outlived the scan stopped by {how}"

    (first_id, status, n_new), = query(db_path, "SELECT id, status, n_new FROM runs")
    assert status == "interrupted"
    assert 0 < n_new <= N_FILES
    first_rows = {(f, n): (a, r) for f, n, a, r in query(db_path, "SELECT folder, name, attempts, run_id FROM images")}
    assert 2 * BATCH <= len(first_rows) < N_FILES
    assert all(state == "indexed" for (state,) in query(db_path, "SELECT state FROM images"))

    run_to_completion(big_archive, db_path)
    runs = dict(query(db_path, "SELECT id, status FROM runs"))
    assert runs[first_id] == "interrupted"  # an orderly stop is not taken for a crash
    assert sorted(runs.values()) == ["completed", "interrupted"]
    assert_resumed(db_path, first_id, first_rows, reference)


def test_an_interrupt_just_after_a_batch_commit_does_not_write_it_twice(tmp_path, db_path, monkeypatch):
    # Ctrl-C lands while the run's heartbeat is written, just after a batch was committed (the
    # widest such window: one more fsync'ed transaction); the subprocess tests hit it now and then.
    root = tmp_path / "archive"
    for i in range(12):
        save_jpeg(scene(i, (160, 120)), root / f"IMG_{i:04d}.JPG")
    beats = []

    def heartbeat(self, run_id, counts):
        beats.append(run_id)
        if len(beats) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(Database, "heartbeat", heartbeat)
    with Database(db_path, create=True) as db:
        with pytest.raises(Interrupted):
            scan(db, [str(root)], workers=1, batch=4, progress=False)
        attempts = [a for (a,) in db.conn.execute("SELECT attempts FROM images")]
        status = db.conn.execute("SELECT status FROM runs").fetchone()[0]
    assert status == "interrupted"
    assert attempts and set(attempts) == {1}, attempts
