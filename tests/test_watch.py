"""`indexer watch` in a subprocess: files copied in appear in the DB within a bound."""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from imaging import make_archive, save_jpeg, scene

BOUND = 30.0  # seconds a file may take from arrival to its committed row (generous for CI)


class WatchProc:
    def __init__(self, root: Path, db: Path, *extra: str) -> None:
        self.db = db
        cmd = [sys.executable, "-m", "indexer", "watch", str(root), "--db", str(db), "--workers", "1",
               "--settle", "0.5", "--batch", "64", "--quiet", *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for_line("watching for changes")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = BOUND) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(f"watch exited ({self.proc.returncode}):\n{self.stderr}")
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r} after {timeout} s:\n{self.stderr}")

    def query(self, sql: str, *args: object) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def wait_until(self, sql: str, expected: object, timeout: float = BOUND) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            got = self.query(sql)[0][0]
            if got == expected:
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"{sql} -> {got!r}, wanted {expected!r} after {timeout} s:\n{self.stderr}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        finally:
            self._reader.join(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def watcher(tmp_path):
    procs: list[WatchProc] = []

    def start(root: Path, *extra: str) -> WatchProc:
        w = WatchProc(root, tmp_path / "index.db", *extra)
        procs.append(w)
        return w

    yield start
    for w in procs:
        w.kill()


def live(name_like: str = "%") -> str:
    return f"SELECT COUNT(*) FROM images WHERE state = 'indexed' AND name LIKE '{name_like}'"


def test_catches_up_then_indexes_arrivals(tmp_path, watcher):
    root = tmp_path / "archive"
    make_archive(root, cameras=1, per_camera=4)
    w = watcher(root)
    assert w.query(live())[0][0] == 4  # the catch-up scan
    src = tmp_path / "incoming"
    make_archive(src, cameras=2, per_camera=3)
    t0 = time.monotonic()
    shutil.copytree(src / "site1" / "cam01", root / "site1" / "cam09")
    delay = w.wait_until(live(), 7)
    print(f"\narrival to commit: {time.monotonic() - t0:.2f} s (settle 0.5 s)")
    assert delay < BOUND
    # a new folder (a new camera) is watched at once
    shutil.copytree(src / "site2", root / "site2")
    w.wait_until(live(), 10)
    assert w.query("SELECT COUNT(*) FROM images WHERE attempts != 1") == [(0,)]
    assert w.stop() == 0
    assert "Traceback" not in w.stderr
    assert w.query("SELECT status FROM runs ORDER BY id DESC LIMIT 1") == [("interrupted",)]


def test_slowly_written_file_is_indexed_once_complete(tmp_path, watcher):
    root = tmp_path / "archive"
    root.mkdir()
    w = watcher(root, "--settle", "1.5")
    data = save_jpeg(scene(7, (640, 480)), tmp_path / "whole.jpg").read_bytes()
    target = root / "cam" / "IMG_0001.JPG"
    target.parent.mkdir()
    with open(target, "wb") as fh:
        for i in range(4):
            fh.write(data[i * len(data) // 4:(i + 1) * len(data) // 4])
            fh.flush()
            time.sleep(0.4)  # pauses shorter than --settle
    w.wait_until(live(), 1)
    rows = w.query("SELECT state, size, attempts, error FROM images")
    assert rows == [("indexed", len(data), 1, None)]
    w.stop()


def test_incomplete_file_is_failed_then_retried_when_it_changes(tmp_path, watcher):
    root = tmp_path / "archive"
    (root / "cam").mkdir(parents=True)
    w = watcher(root)
    data = save_jpeg(scene(8, (640, 480)), tmp_path / "whole.jpg").read_bytes()
    target = root / "cam" / "IMG_0002.JPG"
    target.write_bytes(data[: len(data) // 3])  # a copy that stalls longer than --settle
    w.wait_until("SELECT COUNT(*) FROM images WHERE state = 'failed'", 1)
    with open(target, "ab") as fh:
        fh.write(data[len(data) // 3:])
    w.wait_until(live(), 1)
    assert w.query("SELECT attempts, error FROM images") == [(2, None)]
    w.stop()


def test_rename_keeps_features_and_delete_marks_missing(tmp_path, watcher):
    root = tmp_path / "archive"
    make_archive(root, cameras=1, per_camera=4)
    w = watcher(root)
    cam = root / "site1" / "cam01"
    before = w.query("SELECT id, dhash, attempts FROM images WHERE name = 'IMG_0001.JPG'")
    os.rename(cam / "IMG_0001.JPG", cam / "renamed.JPG")
    w.wait_until(live("renamed.JPG"), 1)
    assert w.query("SELECT id, dhash, attempts FROM images WHERE name = 'renamed.JPG'") == before
    (cam / "IMG_0002.JPG").unlink()
    w.wait_until("SELECT COUNT(*) FROM images WHERE state = 'missing'", 1)
    assert w.query("SELECT name FROM images WHERE state = 'missing'") == [("IMG_0002.JPG",)]
    w.stop()


def test_burst_is_batched_and_readable_while_written(tmp_path, watcher):
    root = tmp_path / "archive"
    root.mkdir()
    w = watcher(root)
    src = tmp_path / "card"
    make_archive(src, cameras=6, per_camera=50, size=(160, 120))  # 300 files
    errors: list[Exception] = []
    counts: list[int] = []
    stop = threading.Event()

    def reader() -> None:  # a second process-like reader during the writes
        while not stop.is_set():
            try:
                counts.append(w.query(live())[0][0])
            except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
                errors.append(exc)
            time.sleep(0.02)

    t = threading.Thread(target=reader)
    t.start()
    t0 = time.monotonic()
    shutil.copytree(src, root, dirs_exist_ok=True)
    w.wait_until(live(), 300, timeout=120)
    elapsed = time.monotonic() - t0
    stop.set()
    t.join()
    status = subprocess.run([sys.executable, "-m", "indexer", "status", "--db", str(w.db)],
                            capture_output=True, text=True, timeout=60)
    w.stop()
    print(f"\n300-file dump indexed by watch in {elapsed:.1f} s")
    assert not errors
    assert status.returncode == 0 and "300 indexed" in status.stdout
    assert counts == sorted(counts)  # readers see batches land, never a regression
    batches = [line for line in w.lines if "committed" in line]
    assert 1 <= len(batches) < 300 / 4  # batched, not a transaction per file


def test_sigterm_and_sigint_stop_cleanly(tmp_path, watcher):
    root = tmp_path / "archive"
    make_archive(root, cameras=1, per_camera=2)
    for sig in (signal.SIGTERM, signal.SIGINT):
        w = watcher(root)
        assert w.stop(sig) == 0
        assert "Traceback" not in w.stderr
        assert "watch stopped" in w.stderr


def test_polling_mode(tmp_path, watcher):
    root = tmp_path / "archive"
    make_archive(root, cameras=1, per_camera=2)
    w = watcher(root, "--polling", "--poll-interval", "0.3")
    save_jpeg(scene(11), root / "site1" / "cam01" / "IMG_0100.JPG")
    w.wait_until(live(), 3)
    (root / "site1" / "cam01" / "IMG_0001.JPG").unlink()
    w.wait_until("SELECT COUNT(*) FROM images WHERE state = 'missing'", 1)
    w.stop()


def test_root_that_disappears_is_not_marked_missing(tmp_path, watcher):
    root = tmp_path / "archive"
    make_archive(root, cameras=2, per_camera=2)
    w = watcher(root, "--polling", "--poll-interval", "0.3")
    away = tmp_path / "unmounted"
    os.rename(root, away)  # the share goes away
    w.wait_for_line("unavailable")
    time.sleep(1.5)
    assert w.query("SELECT COUNT(*) FROM images WHERE state = 'missing'")[0][0] == 0
    save_jpeg(scene(12), away / "site1" / "cam01" / "IMG_0200.JPG")  # arrives while away
    os.rename(away, root)  # and comes back
    w.wait_for_line("is back")
    w.wait_until(live(), 5)
    assert w.query("SELECT COUNT(*) FROM images WHERE state = 'missing'")[0][0] == 0
    w.stop()


def test_kill_9_then_scan_resumes(tmp_path, watcher):
    root = tmp_path / "archive"
    make_archive(root, cameras=1, per_camera=3)
    w = watcher(root)
    w.kill()  # SIGKILL
    save_jpeg(scene(13), root / "site1" / "cam01" / "IMG_0300.JPG")
    r = subprocess.run([sys.executable, "-m", "indexer", "scan", str(root), "--db", str(w.db), "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert w.query(live())[0][0] == 4
    assert w.query("SELECT command, status FROM runs ORDER BY id") == [("watch", "crashed"), ("scan", "completed")]


def test_a_root_that_cannot_be_watched_is_a_one_line_error(tmp_path, monkeypatch):
    """inotify's watch limit (or any OSError from watchdog) is reported, not a traceback."""
    from click.testing import CliRunner
    from watchdog.observers.api import BaseObserver

    from indexer.cli import cli

    def refuse(self, *args, **kwargs):
        raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(BaseObserver, "schedule", refuse)
    root = tmp_path / "archive"
    make_archive(root, cameras=1, per_camera=1)
    r = CliRunner().invoke(cli, ["watch", str(root), "--db", str(tmp_path / "i.db"), "--workers", "1", "--quiet"])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    assert r.stderr.strip().splitlines()[-1].startswith("Error: cannot watch")
    assert "--polling" in r.stderr
