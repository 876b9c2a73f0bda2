"""The worker pool: Ctrl-C while workers start, workers that cannot start at all."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from imaging import make_archive
from indexer import Database, scan
from indexer.errors import IndexerError, WorkerPoolError
from indexer.pipeline import CRASH_ERROR, Pipeline, _WorkerContext, spawn_pool, stop_pool
from indexer.records import ImageResult, WorkItem

HAS_PROC = Path("/proc/self/stat").exists()
SIGNAL_AT = (0.05, 0.15, 0.3, 0.6)  # seconds after the driver starts its pool

# Starts a Pipeline over the archive's files (80 times over: the run must outlast the last Ctrl-C) right after printing "ready".
# "raise": Ctrl-C raises KeyboardInterrupt in the parent, which catches it (the CLI's own early
# Ctrl-C is not this test's business). "finish": the parent only counts Ctrl-Cs and lets the run
# finish, so a worker that a Ctrl-C killed has all the time it needs to print its traceback.
DRIVER = textwrap.dedent('''
    import signal, sys
    from indexer.pipeline import Pipeline
    from indexer.records import WorkItem

    def main(mode: str, root: str, files: list[str]) -> None:
        hits = []
        if mode == "finish":
            signal.signal(signal.SIGINT, lambda *args: hits.append(1))
        items = [WorkItem(1, root, *f.rpartition("/")[::2]) for f in files] * 80
        results = []
        print("ready", flush=True)
        try:
            with Pipeline(2, batch=16, chunk=2) as pipe:
                pipe.run(iter(items), results.extend)
        except KeyboardInterrupt:
            print("parent interrupted", flush=True)
            return
        print(f"decoded {sum(r.error is None for r in results)} of {len(items)}; ctrl-c {len(hits)}", flush=True)

    if __name__ == "__main__":
        main(sys.argv[1], sys.argv[2], sys.argv[3:])
''')


def _files(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in make_archive(root, cameras=2, per_camera=6)]


def _group_alive(pgid: int) -> list[str]:
    """The live (not zombie) processes of a process group, as 'pid cmdline'."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(f"{pid} {cmd[:120]}")
    return out


def _run_driver(tmp_path: Path, mode: str, delays: tuple[float, ...]) -> tuple[str, str]:
    """Run the driver in its own process group, Ctrl-C the whole group `delays` after its pool
    starts; its stdout and stderr, once it and every process of its group are gone."""
    root = tmp_path / "archive"
    files = _files(root) if not root.exists() else [p.relative_to(root).as_posix() for p in root.rglob("*.JPG")]
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script), mode, str(root), *files], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        started = time.monotonic()
        for at in delays:
            time.sleep(max(0.0, started + at - time.monotonic()))
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _group_alive(proc.pid)
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not left, f"processes left running after the driver exited: {left}"
    assert proc.returncode == 0, err
    return "ready\n" + out, err


@pytest.mark.skipif(not HAS_PROC or not hasattr(signal, "pthread_sigmask"), reason="needs /proc and signal masks")
@pytest.mark.parametrize("at", SIGNAL_AT)
def test_ctrl_c_while_workers_start_prints_no_worker_traceback(tmp_path, at):
    out, err = _run_driver(tmp_path, "raise", (at,))
    assert "Traceback" not in err, err
    assert "KeyboardInterrupt" not in err, err


@pytest.mark.skipif(not HAS_PROC or not hasattr(signal, "pthread_sigmask"), reason="needs /proc and signal masks")
def test_workers_outlive_ctrl_c_at_any_instant_of_their_start(tmp_path):
    # the parent ignores the Ctrl-Cs: every worker must survive them and the run must complete
    out, err = _run_driver(tmp_path, "finish", SIGNAL_AT)
    assert "Traceback" not in err, err
    assert f"decoded 960 of 960; ctrl-c {len(SIGNAL_AT)}" in out, (out, err)


def _status_file_copied_by_a_worker(tmp_path: Path) -> dict[str, str]:
    import shutil

    target = tmp_path / "status.txt"
    proc = _WorkerContext().Process(target=shutil.copyfile, args=("/proc/self/status", str(target)))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    return dict(line.split(":\t", 1) for line in target.read_text().splitlines() if ":\t" in line)


@pytest.mark.skipif(not HAS_PROC or not hasattr(signal, "pthread_sigmask"), reason="needs /proc and signal masks")
def test_a_worker_runs_its_first_instruction_with_sigint_blocked(tmp_path):
    # the mask is inherited through multiprocessing's spawn (fork, then exec) on this Python
    status = _status_file_copied_by_a_worker(tmp_path)
    assert int(status["SigBlk"], 16) & (1 << (signal.SIGINT - 1))
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())  # the parent's is restored


@pytest.mark.skipif(not HAS_PROC or not hasattr(signal, "pthread_sigmask"), reason="needs /proc and signal masks")
def test_pool_workers_ignore_sigint_and_have_it_unblocked(tmp_path):
    ex = spawn_pool(1)
    try:
        status = ex.submit(Path("/proc/self/status").read_text).result(60)
    finally:
        ex.shutdown()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    bit = 1 << (signal.SIGINT - 1)
    assert int(fields["SigIgn"], 16) & bit
    assert not int(fields["SigBlk"], 16) & bit


# -- a pool that cannot run at all ------------------------------------------------------------------

def _die_at_start() -> None:
    os._exit(3)


class DeadPool(Pipeline):
    """Workers that die before doing anything (as every worker did when spawn re-ran a `__main__`
    read from stdin)."""

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=_WorkerContext(), initializer=_die_at_start)


def test_a_pool_whose_workers_cannot_start_raises_and_blames_no_file(archive):
    items = [WorkItem(1, str(archive), p.parent.relative_to(archive).as_posix(), p.name)
             for p in sorted(archive.rglob("*.JPG"))]
    got: list[ImageResult] = []
    # The exit status is 3 when the pool's own thread has not reaped and closed the dead workers
    # first (a race on a busy machine): then the message says so instead of guessing.
    with pytest.raises(WorkerPoolError, match=r"die before doing any work \(exit status (3|unknown);") as info:
        with DeadPool(2, batch=4, chunk=2) as pipe:
            pipe.run(iter(items), got.extend)
    assert isinstance(info.value, IndexerError)
    assert not [r for r in got if r.error == CRASH_ERROR]


def test_a_scan_whose_workers_cannot_start_fails_its_run_and_stores_no_failure(archive, db_path, monkeypatch):
    monkeypatch.setattr(sys.modules["indexer.scan"], "Pipeline", DeadPool)
    with Database(db_path, create=True) as db:
        with pytest.raises(WorkerPoolError):
            scan(db, [str(archive)], workers=2, batch=4, progress=False)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT COUNT(*) FROM images WHERE error IS NOT NULL").fetchone() == (0,)
    status, error = conn.execute("SELECT status, error FROM runs ORDER BY id DESC").fetchone()
    assert status == "failed" and "worker processes die before doing any work" in error


def test_stop_pool_ends_every_worker_it_started():
    ex = spawn_pool(2)
    for _ in range(4):
        ex.submit(time.sleep, 0.5)
    started = list(ex._mp_context.started)  # type: ignore[attr-defined]
    assert len(started) == 2
    stop_pool(ex)
    assert not [p for p in started if p.is_alive()]


def test_workers_start_with_one_blas_thread_and_a_malloc_that_keeps_memory(monkeypatch):
    """Each worker's environment has the pipeline's defaults (one OpenBLAS thread; glibc keeps
    freed blocks instead of faulting fresh pages in for every image) unless the user set a
    variable; this process's own environment is left as it was."""
    from indexer.pipeline import WORKER_ENV

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "12345")  # the user's own setting wins
    for k in WORKER_ENV:
        if k != "MALLOC_TRIM_THRESHOLD_":
            monkeypatch.delenv(k, raising=False)
    before = dict(os.environ)
    ex = spawn_pool(1)
    try:
        got = {k: ex.submit(os.getenv, k).result(timeout=60) for k in WORKER_ENV}
    finally:
        stop_pool(ex)
    assert got == {**WORKER_ENV, "MALLOC_TRIM_THRESHOLD_": "12345"}
    assert dict(os.environ) == before
